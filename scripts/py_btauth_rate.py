"""Requests per second the Python SDK's btauth/1 verifier sustains on one core (3.4 KB bodies).

The Rust figure to compare with: `cargo bench -p orchestra-benches --bench protocol -- btauth/verify`.
Run with the interop venv: `$(scripts/py-venv.sh target/py-venv) scripts/py_btauth_rate.py`.
"""

import time

import bittensor_core
from bittensor import http_auth

BOB = "5FHneW46xGXgs5mUiveU4sbTyGBzmstUspZC92UhjJM694ty"
alice = bittensor_core.Keypair.create_from_uri("//Alice")
body = b"x" * 3400
now = time.time_ns()
requests = [
    http_auth.sign(alice, method="POST", path="/orchestrate", body=body, receiver_ss58=BOB, nonce_ns=now - i)
    for i in range(3000)
]
store = http_auth.InMemoryNonceStore()
start = time.perf_counter()
for headers in requests:
    http_auth.verify(headers, body, method="POST", path="/orchestrate", self_hotkey_ss58=BOB, now_ns=now, nonce_store=store)
elapsed = time.perf_counter() - start
print(f"python btauth/1 verify: {len(requests) / elapsed:.0f} requests/s")
