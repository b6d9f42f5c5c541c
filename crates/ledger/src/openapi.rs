//! The hand-written OpenAPI 3.1 document served at `/openapi.json`; a test checks that its paths
//! are exactly the router's.

/// OpenAPI 3.1 description of the query API.
pub const OPENAPI_JSON: &str = r##"{
  "openapi": "3.1.0",
  "info": {
    "title": "Orchestra Subnet Ledger API",
    "version": "1",
    "description": "Verified registry of Bittensor subnets: capabilities, endpoints, schemas, prices and latency, with a Merkle change log. Authenticate with `Authorization: Bearer <key>` (tiers: free = N requests/minute, developer = 1,000 lookups/month, production = unlimited) or btauth/1 headers signed for the server's hotkey (free for miners and validators). A server started with `--x402.pay-to` also sells each read per call: a read without credentials answers 402 with an x402 v2 quote in the PAYMENT-REQUIRED header; pay with a TAO transfer and retry with PAYMENT-SIGNATURE (docs/agents.md). Agents can use the same data as MCP tools at /mcp. Errors are `{\"error\": code, \"message\": text}`."
  },
  "components": {
    "securitySchemes": {
      "apiKey": {"type": "http", "scheme": "bearer"},
      "btauth": {"type": "apiKey", "in": "header", "name": "X-Bittensor-Signature", "description": "btauth/1: X-Bittensor-Version, -Hotkey, -Receiver, -Nonce, -Signature (+ -Crypto)"}
    },
    "schemas": {
      "Error": {"type": "object", "required": ["error", "message"], "properties": {"error": {"type": "string"}, "message": {"type": "string"}}},
      "TreeHead": {"type": "object", "required": ["tree_size", "root", "block", "signer", "scheme", "signature"], "properties": {"tree_size": {"type": "integer"}, "root": {"type": "string"}, "block": {"type": "integer"}, "signer": {"type": "string"}, "scheme": {"type": "string"}, "signature": {"type": "string", "description": "sig over \"orchestra-ledger/sth/1\\0\" || u64be(tree_size) || u64be(block) || root"}}},
      "ChangeRecord": {"type": "object", "required": ["seq", "block", "proposal_id", "kind", "netuid", "path", "old", "new", "proposer", "credit", "verifiers", "evidence_hash"]}
    },
    "responses": {
      "Error": {"description": "error", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
      "PaymentRequired": {"description": "pay per call (x402 v2): the quote is in the PAYMENT-REQUIRED header (base64 JSON) and in the body's `x402` field; every /v1 read except /v1/changes may answer it", "headers": {"PAYMENT-REQUIRED": {"schema": {"type": "string"}}}, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
    }
  },
  "security": [{"apiKey": []}, {"btauth": []}],
  "paths": {
    "/healthz": {"get": {"security": [], "summary": "Liveness", "responses": {"200": {"description": "ok"}}}},
    "/openapi.json": {"get": {"security": [], "summary": "This document", "responses": {"200": {"description": "OpenAPI 3.1"}}}},
    "/.well-known/agent-card.json": {"get": {"security": [], "summary": "A2A 1.0 agent card: the skills (one per MCP tool), the /a2a interface, the MCP endpoint and the pay-per-call quotes", "responses": {"200": {"description": "A2A 0.3 AgentCard"}}}},
    "/a2a": {"post": {"summary": "A2A 1.0 JSON-RPC binding (header A2A-Version: 1.0): SendMessage with a data part {skill, arguments} runs a skill and answers with an agent message holding its result", "responses": {"200": {"description": "JSON-RPC response"}, "401": {"$ref": "#/components/responses/Error"}}}},
    "/mcp": {"post": {"summary": "MCP (streamable HTTP, stateless; JSON-RPC 2.0): tools list_capabilities, find_subnets, get_entry, compare_subnets, get_head (and submit_objective on a validator); schemas in crates/ledger/schemas/agents.json", "responses": {"200": {"description": "JSON-RPC response"}, "401": {"$ref": "#/components/responses/Error"}}}},
    "/v1/subnets": {"get": {"summary": "All entries (summary)", "responses": {"200": {"description": "subnets and head"}, "401": {"$ref": "#/components/responses/Error"}, "402": {"$ref": "#/components/responses/PaymentRequired"}, "429": {"$ref": "#/components/responses/Error"}}}},
    "/v1/subnets/{netuid}": {"get": {"summary": "One entry", "parameters": [{"name": "netuid", "in": "path", "required": true, "schema": {"type": "integer", "minimum": 0, "maximum": 65535}}], "responses": {"200": {"description": "entry and staleness"}, "400": {"$ref": "#/components/responses/Error"}, "404": {"$ref": "#/components/responses/Error"}}}},
    "/v1/capabilities/{tag}": {"get": {"summary": "Endpoints for a capability, best first (score = reliability^2 * 500/(500+p50_ms) * 2e6/(2e6+cost_rao) * status * freshness)", "parameters": [{"name": "tag", "in": "path", "required": true, "schema": {"type": "string"}}], "responses": {"200": {"description": "ranked endpoints"}, "404": {"$ref": "#/components/responses/Error"}}}},
    "/v1/log": {"get": {"summary": "Change log page", "parameters": [{"name": "since", "in": "query", "schema": {"type": "integer", "minimum": 0}}, {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 0, "maximum": 1000}}], "responses": {"200": {"description": "records, next seq, head"}, "400": {"$ref": "#/components/responses/Error"}}}},
    "/v1/proof/{seq}": {"get": {"summary": "Inclusion proof of a record against the current signed head (RFC 6962, BLAKE3)", "parameters": [{"name": "seq", "in": "path", "required": true, "schema": {"type": "integer", "minimum": 0}}], "responses": {"200": {"description": "record, leaf hash, audit path, head"}, "404": {"$ref": "#/components/responses/Error"}}}},
    "/v1/consistency": {"get": {"summary": "Consistency proof between two tree sizes", "parameters": [{"name": "from", "in": "query", "required": true, "schema": {"type": "integer"}}, {"name": "to", "in": "query", "schema": {"type": "integer"}}], "responses": {"200": {"description": "proof and head"}, "404": {"$ref": "#/components/responses/Error"}}}},
    "/v1/head": {"get": {"summary": "Current signed tree head", "responses": {"200": {"description": "head", "content": {"application/json": {"schema": {"type": "object", "properties": {"head": {"$ref": "#/components/schemas/TreeHead"}}}}}}}}},
    "/v1/changes": {"post": {"security": [{"btauth": []}], "summary": "Append verified changes (validators only, btauth/1)", "requestBody": {"required": true, "content": {"application/json": {"schema": {"type": "object", "required": ["changes"], "properties": {"changes": {"type": "array", "items": {"$ref": "#/components/schemas/ChangeRecord"}}}}}}}, "responses": {"200": {"description": "assigned seqs and new head"}, "400": {"$ref": "#/components/responses/Error"}, "401": {"$ref": "#/components/responses/Error"}, "403": {"$ref": "#/components/responses/Error"}, "409": {"$ref": "#/components/responses/Error"}, "413": {"$ref": "#/components/responses/Error"}}}}
  }
}"##;
