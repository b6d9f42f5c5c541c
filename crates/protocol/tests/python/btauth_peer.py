"""A btauth/1 peer backed by the real Python SDK (bittensor 11.3.0), driven by the Rust tests.

Reads one JSON command per line on stdin and answers one JSON line on stdout:
  {"op": "sign", "uri"|"ed25519_seed_hex", "method", "path", "body_hex", "receiver", "nonce"}
      -> {"headers": {...}}
  {"op": "verify", "headers", "body_hex", "method", "path", "self_hotkey", "now_ns"}
      -> {"ok": "<caller ss58>"} or {"error": "<AuthError subclass name>"}
"""

import json
import sys

import bittensor_core
from bittensor import http_auth


def keypair(cmd):
    if "ed25519_seed_hex" in cmd:
        return bittensor_core.Keypair.create_from_seed(bytes.fromhex(cmd["ed25519_seed_hex"]), 0)
    return bittensor_core.Keypair.create_from_uri(cmd["uri"])


def handle(cmd):
    body = bytes.fromhex(cmd["body_hex"])
    if cmd["op"] == "sign":
        headers = http_auth.sign(
            keypair(cmd),
            method=cmd["method"],
            path=cmd["path"],
            body=body,
            receiver_ss58=cmd.get("receiver"),
            nonce_ns=cmd["nonce"],
        )
        return {"headers": headers}
    if cmd["op"] == "verify":
        try:
            caller = http_auth.verify(
                cmd["headers"],
                body,
                method=cmd["method"],
                path=cmd["path"],
                self_hotkey_ss58=cmd["self_hotkey"],
                now_ns=cmd["now_ns"],
                nonce_store=http_auth.InMemoryNonceStore(),
            )
            return {"ok": caller.hotkey_ss58}
        except http_auth.AuthError as e:
            return {"error": type(e).__name__}
    return {"error": "unknown op"}


for line in sys.stdin:
    if line.strip():
        print(json.dumps(handle(json.loads(line))), flush=True)
