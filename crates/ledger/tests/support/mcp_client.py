"""An agent's view of Orchestra over MCP, with the official Python SDK (`mcp`).

Usage: python mcp_client.py URL API_KEY {ledger|validator} [OBJECTIVE_KIND]

Connects to URL (streamable HTTP) with the API key, lists the tools, calls each one (the SDK
checks every structured result against the tool's outputSchema), verifies get_entry's inclusion
proof and the tree head's signature offline, and sends each tool bad input expecting a tool
error that names the problem. Prints one JSON summary line and exits non-zero on any failure.
"""

import asyncio
import json
import struct
import sys
import time

import blake3
import httpx2
import jsonschema
import rfc8785
import sr25519
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

LEDGER_TOOLS = {"list_capabilities", "find_subnets", "get_entry", "compare_subnets", "get_head"}
B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


def ss58_public_key(address: str) -> bytes:
    n = 0
    for ch in address:
        n = n * 58 + B58.index(ch)
    raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
    raw = b"\x00" * (len(address) - len(address.lstrip("1"))) + raw
    prefix_len = 1 if raw[0] < 64 else 2
    return raw[prefix_len : prefix_len + 32]


def node(left: bytes, right: bytes) -> bytes:
    return blake3.blake3(b"\x01" + left + right).digest()


def verify_inclusion(index: int, size: int, leaf: bytes, path: list, root: bytes) -> bool:
    """RFC 9162 section 2.1.3.2, with BLAKE3."""
    if index >= size:
        return False
    fn, sn, r = index, size - 1, leaf
    for p in path:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node(p, r)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


def verify_head(head: dict) -> bool:
    msg = (
        b"orchestra-ledger/sth/1\x00"
        + struct.pack(">QQ", head["tree_size"], head["block"])
        + bytes.fromhex(head["root"])
    )
    sig = bytes.fromhex(head["signature"][2:])
    assert head["scheme"] == "sr25519", head["scheme"]
    return sr25519.verify(sig, msg, ss58_public_key(head["signer"]))


def verify_entry_proof(out: dict, netuid: int) -> None:
    proof = out["proof"]
    record = proof["record"]
    assert record["netuid"] == netuid, record["netuid"]
    leaf = blake3.blake3(b"\x00" + rfc8785.dumps(record)).digest()
    assert leaf.hex() == proof["leaf_hash"], "leaf hash is not H(0x00 || JCS(record))"
    path = [bytes.fromhex(h) for h in proof["path"]]
    head = proof["head"]
    root = bytes.fromhex(head["root"])
    assert verify_inclusion(record["seq"], head["tree_size"], leaf, path, root), "audit path fails"
    assert verify_head(head), "tree head signature does not verify"
    # A tampered record must fail: the check is not vacuous.
    forged = dict(record, new="forged")
    forged_leaf = blake3.blake3(b"\x00" + rfc8785.dumps(forged)).digest()
    assert not verify_inclusion(record["seq"], head["tree_size"], forged_leaf, path, root)


async def main() -> int:
    url, key, mode = sys.argv[1], sys.argv[2], sys.argv[3]
    kind = sys.argv[4] if len(sys.argv) > 4 else None
    http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {key}"}, timeout=120)
    summary = {"calls": {}, "bad_input": {}}
    async with Client(streamable_http_client(url, http_client=http)) as client:
        listed = await client.list_tools()
        tools = {t.name: t for t in listed.tools}
        expected = LEDGER_TOOLS | ({"submit_objective"} if mode == "validator" else set())
        assert set(tools) == expected, sorted(tools)
        summary["protocol_version"] = client.protocol_version
        summary["tools"] = sorted(tools)

        async def call(name, args):
            t0 = time.perf_counter()
            r = await client.call_tool(name, args)
            summary["calls"].setdefault(name, []).append(round((time.perf_counter() - t0) * 1e3, 2))
            assert not r.is_error, (name, r.content)
            # The SDK checked the schema already; check again so this script proves it.
            jsonschema.validate(r.structured_content, tools[name].output_schema)
            return r.structured_content

        caps = await call("list_capabilities", {})
        assert caps["capabilities"], caps
        tag = caps["capabilities"][0]["capability"]
        found = await call("find_subnets", {"capability": tag, "limit": 3})
        assert 1 <= len(found["endpoints"]) <= 3 and found["capability"] == tag
        assert verify_head(found["head"])
        netuid = found["endpoints"][0]["netuid"]
        entry = await call("get_entry", {"netuid": netuid})
        assert entry["entry"]["netuid"] == netuid
        verify_entry_proof(entry, netuid)
        summary["inclusion_proof"] = {"netuid": netuid, "seq": entry["proof"]["record"]["seq"]}
        cmp = await call("compare_subnets", {"capability": tag})
        assert cmp["cheapest"] in [r["netuid"] for r in cmp["rows"]]
        netuids = sorted({r["netuid"] for r in cmp["rows"]} | {netuid})[:4]
        cmp2 = await call("compare_subnets", {"netuids": netuids})
        assert [r["netuid"] for r in cmp2["rows"]] == netuids
        head = await call("get_head", {})
        assert verify_head(head["head"])

        bad = [
            ("list_capabilities", {"extra": 1}, "extra"),
            ("find_subnets", {}, "capability"),
            ("find_subnets", {"capability": "no_such_capability_xyz"}, "known capabilities"),
            ("find_subnets", {"capability": tag, "limit": 0}, "/limit"),
            ("get_entry", {"netuid": 70000}, "/netuid"),
            ("get_entry", {"netuid": "one"}, "/netuid"),
            ("get_entry", {"netuid": 65000}, "not in the Ledger"),
            ("compare_subnets", {}, "oneOf"),
            ("compare_subnets", {"netuids": []}, "/netuids"),
            ("compare_subnets", {"netuids": [netuid, 65001]}, "65001"),
            ("get_head", {"x": True}, "x"),
        ]
        if mode == "validator":
            bad += [
                ("submit_objective", {}, "objective"),
                ("submit_objective", {"objective": {"kind": "k"}}, "text"),
                ("submit_objective", {"objective": {"kind": "no_such_kind", "text": "t"}}, "no template"),
                (
                    "submit_objective",
                    {"objective": {"kind": "x", "text": "t"}, "target_schema": {"type": 12}},
                    "not a valid JSON Schema",
                ),
            ]
        for name, args, needle in bad:
            r = await client.call_tool(name, args)
            text = " ".join(getattr(c, "text", "") for c in r.content)
            assert r.is_error, (name, args, text)
            assert needle in text, (name, args, needle, text)
            summary["bad_input"].setdefault(name, 0)
            summary["bad_input"][name] += 1

        if mode == "validator":
            out = await call(
                "submit_objective",
                {"objective": {"kind": kind, "text": "an agent's objective", "params": {}}},
            )
            # Whether the proof held is the validator's verdict on the miner: report it and let
            # the caller, who knows which miner is honest, judge it.
            assert len(out["proof"]["root"]) == 64
            summary["objective"] = {
                "miner_uid": out["miner_uid"],
                "proof_verified": out["proof_verified"],
                "steps": len(out["pipeline"]),
            }
    print(json.dumps(summary, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
