"""An agent's view of Orchestra over A2A 1.0, with the official Python SDK (`a2a-sdk`).

Usage: python a2a_client.py BASE_URL API_KEY {ledger|validator}

Reads the agent card (parsed by the SDK), connects through the interface it names, runs the
Ledger skills with SendMessage (a data part naming the skill and its arguments), verifies the
entry's inclusion proof offline, and checks that a bad call is refused with a reason. Prints one
JSON summary line and exits non-zero on any failure.
"""

import asyncio
import json
import sys
import uuid

import httpx
from a2a.client import ClientConfig, create_client
from a2a.client.card_resolver import parse_agent_card
from a2a.types import Message, Part, Role, SendMessageRequest
from google.protobuf import json_format, struct_pb2

from mcp_client import LEDGER_TOOLS, verify_entry_proof, verify_head


def plain(v):
    """protobuf Values carry numbers as doubles: integral ones back to int."""
    if isinstance(v, float) and v.is_integer():
        return int(v)
    if isinstance(v, list):
        return [plain(x) for x in v]
    if isinstance(v, dict):
        return {k: plain(x) for k, x in v.items()}
    return v


async def main() -> int:
    base, key, mode = sys.argv[1], sys.argv[2], sys.argv[3]
    http = httpx.AsyncClient(headers={"Authorization": f"Bearer {key}"}, timeout=120)
    raw = (await http.get(f"{base}/.well-known/agent-card.json")).json()
    card = parse_agent_card(raw)
    skills = {s.id for s in card.skills}
    expected = LEDGER_TOOLS | ({"submit_objective"} if mode == "validator" else set())
    assert skills == expected, sorted(skills)
    iface = card.supported_interfaces[0]
    assert (iface.protocol_binding, iface.protocol_version) == ("JSONRPC", "1.0"), iface
    assert iface.url == f"{base}/a2a", iface.url
    client = await create_client(card, client_config=ClientConfig(streaming=False, httpx_client=http))
    summary = {"skills": sorted(skills), "calls": {}, "refused": []}

    async def run(skill, arguments):
        data = struct_pb2.Value()
        json_format.ParseDict({"skill": skill, "arguments": arguments}, data)
        req = SendMessageRequest(
            message=Message(message_id=uuid.uuid4().hex, role=Role.ROLE_USER, parts=[Part(data=data)])
        )
        async for event in client.send_message(req):
            msg = event.message
            assert msg.role == Role.ROLE_AGENT, event
            out = plain(json_format.MessageToDict(msg.parts[0].data))
            summary["calls"][skill] = summary["calls"].get(skill, 0) + 1
            return out
        raise AssertionError(f"no answer to {skill}")

    caps = await run("list_capabilities", {})
    tag = caps["capabilities"][0]["capability"]
    found = await run("find_subnets", {"capability": tag, "limit": 2})
    assert verify_head(found["head"])
    netuid = found["endpoints"][0]["netuid"]
    entry = await run("get_entry", {"netuid": netuid})
    verify_entry_proof(entry, netuid)
    summary["inclusion_proof"] = {"netuid": netuid, "seq": entry["proof"]["record"]["seq"]}
    await run("compare_subnets", {"capability": tag})
    head = await run("get_head", {})
    assert verify_head(head["head"])

    for skill, args, needle in [
        ("get_entry", {"netuid": 70000}, "/netuid"),
        ("find_subnets", {"capability": "no_such_capability_xyz"}, "known capabilities"),
        ("no_such_skill", {}, "no tool"),
    ]:
        try:
            await run(skill, args)
        except Exception as e:  # the SDK raises its A2A error for a JSON-RPC error
            assert needle in str(e), (skill, str(e))
            summary["refused"].append(skill)
        else:
            raise AssertionError(f"{skill} {args} was not refused")
    print(json.dumps(summary, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
