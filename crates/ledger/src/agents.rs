//! The Ledger (and, on a validator, orchestration) for agent frameworks: the tools of
//! `schemas/agents.json` served over MCP (streamable HTTP, `POST /mcp`, via the official Rust
//! SDK `rmcp`), the same tools as A2A 1.0 skills (`POST /a2a`, JSON-RPC binding), and the A2A
//! agent card naming them (`/.well-known/agent-card.json`).
//!
//! Tools answer from the same immutable [`Snapshot`](crate::server::Snapshot) the REST routes
//! serve, so an MCP call costs what a REST call costs; `get_entry` reads one record and its
//! audit path from the store. Arguments are checked against the tool's input schema first, and
//! every refusal is a tool error (`isError: true`) whose text says which argument is wrong and
//! why, so an agent can correct itself. Tool errors are not protocol errors: MCP clients show
//! the former to the model and swallow the latter.

use crate::server::{AppState, RankedEndpoint};
use orchestra_protocol::ledger::Status;
use rmcp::handler::server::ServerHandler;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ErrorData, Implementation,
    InitializeResult, JsonObject, ListToolsResult, PaginatedRequestParams, ServerCapabilities,
    Tool, ToolAnnotations,
};
use rmcp::service::{RequestContext, RoleServer};
use serde_json::{Map, Value, json};
use std::collections::BTreeSet;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, LazyLock};

/// The tool schemas (JSON Schema 2020-12), embedded.
pub const AGENTS_JSON: &str = include_str!("../schemas/agents.json");

/// A boxed `Send` future (what [`Objectives::submit`] returns).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Why a tool call was refused or failed: a short code and a sentence for the agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolFailure {
    /// Machine-readable code (the REST API's `error` codes where one exists).
    pub code: String,
    /// What went wrong and what to do.
    pub message: String,
}

impl ToolFailure {
    /// A failure with `code` and `message`.
    pub fn new(code: &str, message: impl Into<String>) -> Self {
        ToolFailure {
            code: code.to_string(),
            message: message.into(),
        }
    }
}

/// Orchestration for the `submit_objective` tool: a validator implements it over its miners.
pub trait Objectives: Send + Sync + 'static {
    /// Run the `submit_objective` input (already schema-checked) to an answer matching the
    /// tool's output schema.
    fn submit(&self, input: Value) -> BoxFuture<'_, Result<Value, ToolFailure>>;
}

/// One tool of the catalogue.
#[derive(Debug)]
pub struct ToolSpec {
    /// Its name.
    pub name: String,
    /// Human title.
    pub title: String,
    /// What it does (for the model).
    pub description: String,
    /// Input schema, self-contained (`$defs` it needs copied in).
    pub input: Value,
    /// Output schema, self-contained.
    pub output: Value,
    /// Served only where orchestration is (a validator).
    pub validator_only: bool,
    validator: jsonschema::Validator,
}

/// Every tool of `schemas/agents.json`, parsed once.
#[derive(Debug)]
pub struct Catalog {
    /// The tools, in file order.
    pub tools: Vec<ToolSpec>,
}

/// Copy into `schema` the `$defs` it refers to, transitively, so it stands alone.
fn self_contained(schema: &Value, defs: &Map<String, Value>) -> Value {
    fn refs(v: &Value, out: &mut BTreeSet<String>) {
        match v {
            Value::Object(m) => {
                if let Some(Value::String(r)) = m.get("$ref")
                    && let Some(name) = r.strip_prefix("#/$defs/")
                {
                    out.insert(name.to_string());
                }
                m.values().for_each(|x| refs(x, out));
            }
            Value::Array(a) => a.iter().for_each(|x| refs(x, out)),
            _ => {}
        }
    }
    let mut needed = BTreeSet::new();
    refs(schema, &mut needed);
    let mut queue: Vec<String> = needed.iter().cloned().collect();
    while let Some(name) = queue.pop() {
        if let Some(d) = defs.get(&name) {
            let mut more = BTreeSet::new();
            refs(d, &mut more);
            for m in more {
                if needed.insert(m.clone()) {
                    queue.push(m);
                }
            }
        }
    }
    let mut out = schema.clone();
    if !needed.is_empty()
        && let Value::Object(m) = &mut out
    {
        let picked: Map<String, Value> = needed
            .into_iter()
            .filter_map(|n| defs.get(&n).map(|d| (n, d.clone())))
            .collect();
        m.insert("$defs".into(), Value::Object(picked));
    }
    out
}

impl Catalog {
    /// Parse a catalogue document (the shape of `schemas/agents.json`).
    pub fn parse(text: &str) -> Result<Catalog, String> {
        let doc: Value = serde_json::from_str(text).map_err(|e| format!("agents.json: {e}"))?;
        let defs = doc["$defs"].as_object().cloned().unwrap_or_default();
        let tools = doc["tools"]
            .as_array()
            .ok_or("agents.json: no `tools` array")?;
        let mut out = Vec::new();
        for t in tools {
            let name = t["name"]
                .as_str()
                .ok_or("agents.json: a tool without a name")?;
            let text = |k: &str| t[k].as_str().unwrap_or_default().to_string();
            let input = self_contained(&t["input"], &defs);
            let output = self_contained(&t["output"], &defs);
            let validator = jsonschema::draft202012::new(&input)
                .map_err(|e| format!("agents.json: tool {name}: input schema: {e}"))?;
            jsonschema::draft202012::new(&output)
                .map_err(|e| format!("agents.json: tool {name}: output schema: {e}"))?;
            out.push(ToolSpec {
                name: name.to_string(),
                title: text("title"),
                description: text("description"),
                input,
                output,
                validator_only: t["validator_only"].as_bool().unwrap_or(false),
                validator,
            });
        }
        Ok(Catalog { tools: out })
    }

    /// The embedded catalogue.
    pub fn embedded() -> &'static Catalog {
        static CATALOG: LazyLock<Catalog> = LazyLock::new(|| {
            // The file is embedded and checked by a unit test, so this cannot fail at run time.
            Catalog::parse(AGENTS_JSON).unwrap_or(Catalog { tools: Vec::new() })
        });
        &CATALOG
    }

    /// A tool by name.
    pub fn get(&self, name: &str) -> Option<&ToolSpec> {
        self.tools.iter().find(|t| t.name == name)
    }
}

impl ToolSpec {
    /// Check `args` against the input schema; the refusal names each bad argument.
    pub fn check_input(&self, args: &Value) -> Result<(), ToolFailure> {
        let problems: Vec<String> = self
            .validator
            .iter_errors(args)
            .take(5)
            .map(|e| {
                let at = e.instance_path().to_string();
                let at = if at.is_empty() {
                    "arguments".into()
                } else {
                    format!("argument {at}")
                };
                format!("{at}: {e}")
            })
            .collect();
        if problems.is_empty() {
            Ok(())
        } else {
            Err(ToolFailure::new(
                "invalid_arguments",
                format!(
                    "{}; the tool's inputSchema lists what it takes",
                    problems.join("; ")
                ),
            ))
        }
    }

    fn to_mcp(&self) -> Tool {
        let obj =
            |v: &Value| -> Arc<JsonObject> { Arc::new(v.as_object().cloned().unwrap_or_default()) };
        let read_only = !self.validator_only;
        Tool::new(
            self.name.clone(),
            self.description.clone(),
            obj(&self.input),
        )
        .with_title(self.title.clone())
        .with_raw_output_schema(obj(&self.output))
        .with_annotations(
            ToolAnnotations::with_title(self.title.clone())
                .read_only(read_only)
                .destructive(false)
                .idempotent(read_only)
                .open_world(!read_only),
        )
    }
}

/// The tools a server offers: the Ledger's, plus orchestration where `objectives` is set.
#[derive(Clone)]
pub struct AgentTools {
    state: Arc<AppState>,
    objectives: Option<Arc<dyn Objectives>>,
}

impl std::fmt::Debug for AgentTools {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgentTools")
            .field("objectives", &self.objectives.is_some())
            .finish()
    }
}

/// A whole number argument, also when it arrives as a float (`42.0`): JSON Schema counts that as
/// an integer, and clients that go through protobuf (A2A's) send every number as a double.
fn whole(v: &Value) -> Option<u64> {
    v.as_u64().or_else(|| {
        v.as_f64()
            .filter(|f| f.fract() == 0.0 && *f >= 0.0 && *f < 2f64.powi(53))
            .map(|f| f as u64)
    })
}

fn stale_any(s: &crate::model::Staleness) -> bool {
    s.metrics || s.schemas
}

impl AgentTools {
    /// Tools over `state`, with orchestration if `objectives` is given.
    pub fn new(state: Arc<AppState>, objectives: Option<Arc<dyn Objectives>>) -> Self {
        AgentTools { state, objectives }
    }

    /// The tools this server offers.
    pub fn specs(&self) -> impl Iterator<Item = &'static ToolSpec> + '_ {
        Catalog::embedded()
            .tools
            .iter()
            .filter(|t| !t.validator_only || self.objectives.is_some())
    }

    /// Run tool `name` on `args` (a JSON object): the structured result, or why not.
    pub async fn call(&self, name: &str, args: Value) -> Result<Value, ToolFailure> {
        let Some(spec) = self.specs().find(|t| t.name == name) else {
            let known: Vec<&str> = self.specs().map(|t| t.name.as_str()).collect();
            return Err(ToolFailure::new(
                "unknown_tool",
                format!("no tool {name:?} here; tools: {}", known.join(", ")),
            ));
        };
        spec.check_input(&args)?;
        match name {
            "list_capabilities" => Ok(self.list_capabilities()),
            "find_subnets" => self.find_subnets(&args),
            "get_entry" => self.get_entry(&args).await,
            "compare_subnets" => self.compare_subnets(&args),
            "get_head" => Ok(json!({ "head": self.state.snapshot().sth })),
            "submit_objective" => match &self.objectives {
                Some(o) => o.submit(args).await,
                None => Err(ToolFailure::new(
                    "unknown_tool",
                    "orchestration is not served here",
                )),
            },
            other => Err(ToolFailure::new(
                "internal",
                format!("tool {other} is catalogued but not implemented"),
            )),
        }
    }

    fn list_capabilities(&self) -> Value {
        let snap = self.state.snapshot();
        let caps: Vec<Value> = snap
            .ranked
            .iter()
            .map(|(tag, v)| json!({ "capability": tag, "endpoints": v.len() }))
            .collect();
        json!({ "capabilities": caps, "tree_size": snap.sth.as_ref().map_or(0, |h| h.head.tree_size) })
    }

    fn unknown_capability(&self, tag: &str) -> ToolFailure {
        let snap = self.state.snapshot();
        let known: Vec<&str> = snap.ranked.keys().map(String::as_str).collect();
        ToolFailure::new(
            "unknown_capability",
            format!(
                "no active endpoint serves capability {tag:?}; known capabilities: {}",
                if known.is_empty() {
                    "(none yet)".to_string()
                } else {
                    known.join(", ")
                }
            ),
        )
    }

    fn find_subnets(&self, args: &Value) -> Result<Value, ToolFailure> {
        let tag = args["capability"].as_str().unwrap_or_default();
        let limit = whole(&args["limit"]).unwrap_or(10) as usize;
        let include_stale = args["include_stale"].as_bool().unwrap_or(true);
        let snap = self.state.snapshot();
        let Some(ranked) = snap.ranked.get(tag) else {
            return Err(self.unknown_capability(tag));
        };
        let endpoints: Vec<&RankedEndpoint> = ranked
            .iter()
            .filter(|e| include_stale || !e.stale)
            .take(limit)
            .collect();
        Ok(json!({ "capability": tag, "endpoints": endpoints, "head": snap.sth }))
    }

    async fn get_entry(&self, args: &Value) -> Result<Value, ToolFailure> {
        // The input schema bounds it to 0..=65535.
        let netuid = whole(&args["netuid"])
            .and_then(|n| u16::try_from(n).ok())
            .ok_or_else(|| {
                ToolFailure::new("invalid_arguments", "argument /netuid: expected 0..=65535")
            })?;
        // The entry comes from a snapshot and the proof from the node: build the proof only
        // while the node's head is the snapshot's, so the two always agree, and keep it with
        // the snapshot (a write replaces both).
        for _ in 0..3 {
            let snap = self.state.snapshot();
            let Some((entry, stale)) = snap.entries.get(&netuid).cloned() else {
                return Err(ToolFailure::new(
                    "unknown_subnet",
                    format!(
                        "subnet {netuid} is not in the Ledger ({} subnets are; \
                         list_capabilities and find_subnets name them)",
                        snap.entries.len()
                    ),
                ));
            };
            let cached = snap
                .entry_proofs
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .get(&netuid)
                .cloned();
            let proof = match cached {
                Some(p) => p,
                None => {
                    let (st, head) = (self.state.clone(), snap.sth.clone());
                    let built = tokio::task::spawn_blocking(move || {
                        let node = st.lock_node();
                        if Some(node.signed_head()) != head.as_ref() {
                            return Ok(None);
                        }
                        node.entry_proof(netuid).map(Some)
                    })
                    .await
                    .map_err(|_| ToolFailure::new("internal", "proof worker failed"))?
                    .map_err(|e| {
                        ToolFailure::new("internal", format!("cannot build the proof: {e}"))
                    })?;
                    let Some(built) = built else {
                        continue; // a write landed meanwhile: read the new snapshot
                    };
                    let built = built.ok_or_else(|| {
                        ToolFailure::new(
                            "internal",
                            format!("no change record names subnet {netuid}"),
                        )
                    })?;
                    let value = Arc::new(serde_json::to_value(&built).map_err(|e| {
                        ToolFailure::new("internal", format!("cannot encode the proof: {e}"))
                    })?);
                    snap.entry_proofs
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .insert(netuid, value.clone());
                    value
                }
            };
            return Ok(json!({ "entry": entry, "stale": stale, "proof": *proof }));
        }
        Err(ToolFailure::new(
            "busy",
            "the Ledger changed three times while the proof was being built; retry",
        ))
    }

    fn compare_subnets(&self, args: &Value) -> Result<Value, ToolFailure> {
        let snap = self.state.snapshot();
        let netuids: Vec<u16> = match (args["netuids"].as_array(), args["capability"].as_str()) {
            (Some(list), _) => {
                let ids: Vec<u16> = list.iter().filter_map(whole).map(|n| n as u16).collect();
                let missing: Vec<String> = ids
                    .iter()
                    .filter(|n| !snap.entries.contains_key(n))
                    .map(u16::to_string)
                    .collect();
                if !missing.is_empty() {
                    return Err(ToolFailure::new(
                        "unknown_subnet",
                        format!("not in the Ledger: subnet {}", missing.join(", ")),
                    ));
                }
                ids
            }
            (None, Some(tag)) => {
                let Some(ranked) = snap.ranked.get(tag) else {
                    return Err(self.unknown_capability(tag));
                };
                let mut seen = BTreeSet::new();
                ranked
                    .iter()
                    .map(|e| e.netuid)
                    .filter(|n| seen.insert(*n))
                    .collect()
            }
            (None, None) => {
                return Err(ToolFailure::new(
                    "invalid_arguments",
                    "give `netuids` or `capability`",
                ));
            }
        };
        let rows: Vec<(u16, Value, &orchestra_protocol::ledger::Metrics)> = netuids
            .iter()
            .filter_map(|n| snap.entries.get(n).map(|(e, s)| (n, e, s)))
            .map(|(n, e, s)| {
                let score = crate::server::rank_score(&e.metrics, e.status, s.metrics);
                let row = json!({
                    "netuid": n, "name": e.name, "status": e.status, "stale": stale_any(s),
                    "cost_per_query_rao": e.metrics.cost_per_query_rao,
                    "p50_latency_ms": e.metrics.p50_latency_ms,
                    "p95_latency_ms": e.metrics.p95_latency_ms,
                    "reliability": e.metrics.reliability,
                    "score": score,
                });
                (*n, row, &e.metrics)
            })
            .collect();
        let live = || {
            rows.iter().filter(|(n, _, _)| {
                snap.entries
                    .get(n)
                    .is_some_and(|(e, _)| e.status != Status::Deprecated)
            })
        };
        // Deprecated subnets are listed but never recommended; ties go to the lower netuid.
        let pick = |key: &dyn Fn(&orchestra_protocol::ledger::Metrics) -> f64| {
            live()
                .min_by(|a, b| key(a.2).total_cmp(&key(b.2)).then(a.0.cmp(&b.0)))
                .or_else(|| rows.first())
                .map(|r| r.0)
        };
        let cheapest = pick(&|m| m.cost_per_query_rao as f64);
        let fastest = pick(&|m| m.p50_latency_ms as f64);
        let most_reliable = pick(&|m| -m.reliability);
        let rows: Vec<Value> = rows.into_iter().map(|r| r.1).collect();
        Ok(json!({
            "rows": rows, "cheapest": cheapest, "fastest": fastest,
            "most_reliable": most_reliable, "head": snap.sth,
        }))
    }
}

impl ServerHandler for AgentTools {
    fn get_info(&self) -> InitializeResult {
        let what = if self.objectives.is_some() {
            "the verified Subnet Ledger of Bittensor subnets and orchestration of objectives \
             across them"
        } else {
            "the verified Subnet Ledger of Bittensor subnets"
        };
        InitializeResult::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(
                Implementation::new("orchestra", env!("CARGO_PKG_VERSION"))
                    .with_title("Orchestra")
                    .with_description(format!("Orchestra: {what}")),
            )
            .with_instructions(format!(
                "Orchestra serves {what}. Entries are verified by validators with live probes \
                 and kept in a Merkle change log: get_entry returns an inclusion proof against \
                 the validator-signed tree head, which you can check offline. Start with \
                 list_capabilities, then find_subnets or compare_subnets."
            ))
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        Ok(ListToolsResult::with_all_items(
            self.specs().map(ToolSpec::to_mcp).collect(),
        ))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        if !self.specs().any(|t| t.name == request.name) {
            return Err(ErrorData::invalid_params(
                format!("unknown tool {:?}", request.name),
                None,
            ));
        }
        let args = Value::Object(request.arguments.unwrap_or_default());
        let result = match self.call(&request.name, args).await {
            Ok(v) => CallToolResult::structured(v),
            Err(f) => CallToolResult::structured_error(json!({
                "error": f.code, "message": f.message,
            })),
        };
        Ok(result.into())
    }
}

/// A JSON-RPC 2.0 error answer (`id` null: the request's id could not be read).
fn json_rpc_error(code: i64, message: String) -> axum::response::Response {
    use axum::response::IntoResponse;
    let body =
        json!({ "jsonrpc": "2.0", "id": null, "error": { "code": code, "message": message } });
    (
        axum::http::StatusCode::BAD_REQUEST,
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

/// In front of the MCP service: a POST body that is not JSON, or a `tools/call` whose
/// `arguments` is not an object, gets a JSON-RPC error that says so (`-32700` parse error,
/// `-32602` invalid params) instead of the transport's bare refusal. The body was buffered by
/// the authentication layer, so reading it again costs a parse, not a copy from the network.
pub async fn json_rpc_guard(
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    if req.method() != axum::http::Method::POST {
        return next.run(req).await;
    }
    let (parts, body) = req.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, usize::MAX).await else {
        return json_rpc_error(-32700, "Parse error: the body could not be read".into());
    };
    match serde_json::from_slice::<Value>(&bytes) {
        Err(e) => {
            return json_rpc_error(-32700, format!("Parse error: the body is not JSON ({e})"));
        }
        Ok(v) => {
            let bad_args = v["method"] == "tools/call"
                && v["params"]
                    .get("arguments")
                    .is_some_and(|a| !a.is_object() && !a.is_null());
            if bad_args {
                return json_rpc_error(
                    -32602,
                    "Invalid params: `params.arguments` must be an object of the tool's arguments"
                        .into(),
                );
            }
        }
    }
    next.run(axum::extract::Request::from_parts(
        parts,
        axum::body::Body::from(bytes),
    ))
    .await
}

/// The A2A protocol version the card and `POST /a2a` speak.
pub const A2A_VERSION: &str = "1.0";

/// The A2A agent card (A2A 1.0 `AgentCard`) for a server reachable at `base_url`: one skill per
/// tool, the JSON-RPC interface at `/a2a`, the MCP endpoint and pay per call (`paid`:
/// `{routes, accepts}` per paywall) as extensions, API keys and btauth/1 as security schemes.
pub fn agent_card(base_url: &str, tools: &AgentTools, paid: &[Value]) -> Value {
    let base = base_url.trim_end_matches('/');
    let skills: Vec<Value> = tools
        .specs()
        .map(|t| {
            let tags = if t.validator_only {
                ["bittensor", "orchestration"]
            } else {
                ["bittensor", "subnet-ledger"]
            };
            json!({
                "id": t.name, "name": t.title, "description": t.description, "tags": tags,
                "examples": [format!(
                    "a data part {{\"skill\": \"{}\", \"arguments\": {{…}}}}: arguments as the MCP tool's inputSchema",
                    t.name
                )],
                "inputModes": ["application/json"], "outputModes": ["application/json"],
            })
        })
        .collect();
    let mut extensions = vec![json!({
        "uri": "https://modelcontextprotocol.io/specification",
        "description": "Every skill is also an MCP tool at this endpoint (streamable HTTP); the tool's inputSchema and outputSchema are the skill's JSON Schemas.",
        "required": false,
        "params": { "endpoint": format!("{base}/mcp"), "transport": "streamable-http" },
    })];
    if !paid.is_empty() {
        extensions.push(json!({
            "uri": "https://github.com/coinbase/x402/blob/main/specs/x402-specification-v2.md",
            "description": "These REST routes can be paid per call without an API key: a call without credentials answers 402 with an x402 v2 quote in PAYMENT-REQUIRED; pay with a TAO transfer and retry with PAYMENT-SIGNATURE.",
            "required": false,
            "params": { "paid": paid },
        }));
    }
    json!({
        "name": "Orchestra",
        "description": tools.get_info().server_info.description,
        "version": env!("CARGO_PKG_VERSION"),
        "supportedInterfaces": [{
            "url": format!("{base}/a2a"), "protocolBinding": "JSONRPC", "protocolVersion": A2A_VERSION,
        }],
        "provider": { "organization": "Orchestra subnet", "url": "https://github.com/orchestra-subnet/orchestra" },
        "documentationUrl": format!("{base}/openapi.json"),
        "capabilities": { "streaming": false, "pushNotifications": false, "extensions": extensions },
        "securitySchemes": {
            "apiKey": { "httpAuthSecurityScheme": { "scheme": "bearer", "description": "an Orchestra Ledger API key" } },
            "btauth": { "apiKeySecurityScheme": { "location": "header", "name": "X-Bittensor-Signature", "description": "btauth/1: a request signed by a hotkey (X-Bittensor-Version, -Hotkey, -Receiver, -Nonce, -Signature)" } },
        },
        "securityRequirements": [
            { "schemes": { "apiKey": { "list": [] } } },
            { "schemes": { "btauth": { "list": [] } } },
        ],
        "defaultInputModes": ["application/json"],
        "defaultOutputModes": ["application/json"],
        "skills": skills,
    })
}

/// A2A JSON-RPC error codes this binding answers with.
mod a2a_code {
    pub const PARSE: i64 = -32700;
    pub const INVALID_REQUEST: i64 = -32600;
    pub const METHOD_NOT_FOUND: i64 = -32601;
    pub const INVALID_PARAMS: i64 = -32602;
    pub const INTERNAL: i64 = -32603;
    pub const TASK_NOT_FOUND: i64 = -32001;
    pub const UNSUPPORTED_OPERATION: i64 = -32004;
    pub const VERSION_NOT_SUPPORTED: i64 = -32009;
}

fn rpc_error(id: &Value, code: i64, message: impl Into<String>, data: Option<Value>) -> Value {
    let mut error = json!({ "code": code, "message": message.into() });
    if let Some(d) = data {
        error["data"] = d;
    }
    json!({ "jsonrpc": "2.0", "id": id, "error": error })
}

impl AgentTools {
    /// One A2A JSON-RPC request (`POST /a2a`, A2A 1.0): `SendMessage` runs the skill a data part
    /// names — `{"skill": <id>, "arguments": {...}}` — and answers with an agent message whose
    /// data part is the tool's structured result. Every skill answers at once, so no task is
    /// kept: `GetTask` and the like answer "task not found", streaming and push are
    /// unsupported. `version` is the request's `A2A-Version` header (absent means 0.3).
    pub async fn a2a(&self, body: &[u8], version: Option<&str>) -> Value {
        let req: Value = match serde_json::from_slice(body) {
            Ok(v) => v,
            Err(e) => {
                return rpc_error(
                    &Value::Null,
                    a2a_code::PARSE,
                    format!("Parse error: {e}"),
                    None,
                );
            }
        };
        let id = req.get("id").cloned().unwrap_or(Value::Null);
        let Some(method) = req["method"].as_str().filter(|_| req["jsonrpc"] == "2.0") else {
            return rpc_error(
                &id,
                a2a_code::INVALID_REQUEST,
                "Invalid request: expected a JSON-RPC 2.0 object with a `method`",
                None,
            );
        };
        let major = version.map(|v| v.trim().split('.').next().unwrap_or_default().to_string());
        if major.as_deref() != Some("1") {
            return rpc_error(
                &id,
                a2a_code::VERSION_NOT_SUPPORTED,
                format!(
                    "A2A-Version {:?} is not served here; send `A2A-Version: {A2A_VERSION}`",
                    version.unwrap_or("(absent: 0.3)")
                ),
                None,
            );
        }
        match method {
            "SendMessage" => self.a2a_send(&id, &req["params"]).await,
            "GetTask" | "CancelTask" | "SubscribeToTask" => rpc_error(
                &id,
                a2a_code::TASK_NOT_FOUND,
                "no such task: every skill here answers at once with a message, so no task is kept",
                None,
            ),
            "SendStreamingMessage"
            | "ListTasks"
            | "CreateTaskPushNotificationConfig"
            | "GetTaskPushNotificationConfig"
            | "ListTaskPushNotificationConfigs"
            | "DeleteTaskPushNotificationConfig"
            | "GetExtendedAgentCard" => rpc_error(
                &id,
                a2a_code::UNSUPPORTED_OPERATION,
                format!("{method} is not supported: skills answer at once (SendMessage)"),
                None,
            ),
            other => rpc_error(
                &id,
                a2a_code::METHOD_NOT_FOUND,
                format!("Method not found: {other}"),
                None,
            ),
        }
    }

    async fn a2a_send(&self, id: &Value, params: &Value) -> Value {
        let message = &params["message"];
        let skills: Vec<&str> = self.specs().map(|t| t.name.as_str()).collect();
        let how = format!(
            "send a data part {{\"skill\": <id>, \"arguments\": {{...}}}}; skills: {}",
            skills.join(", ")
        );
        let Some(call) = message["parts"]
            .as_array()
            .into_iter()
            .flatten()
            .find_map(|p| p["data"].as_object().filter(|d| d.contains_key("skill")))
        else {
            return rpc_error(
                id,
                a2a_code::INVALID_PARAMS,
                format!("Invalid params: {how}"),
                None,
            );
        };
        let Some(skill) = call["skill"].as_str() else {
            return rpc_error(
                id,
                a2a_code::INVALID_PARAMS,
                format!("Invalid params: `skill` must be a string; {how}"),
                None,
            );
        };
        let args = call.get("arguments").cloned().unwrap_or_else(|| json!({}));
        match self.call(skill, args).await {
            Ok(result) => {
                let mut reply = json!({
                    "messageId": format!("{:032x}", rand::random::<u128>()),
                    "role": "ROLE_AGENT",
                    "parts": [{ "data": result, "mediaType": "application/json" }],
                });
                for k in ["contextId", "taskId"] {
                    if let Some(v) = message.get(k).filter(|v| v.is_string()) {
                        reply[k] = v.clone();
                    }
                }
                json!({ "jsonrpc": "2.0", "id": id, "result": { "message": reply } })
            }
            Err(f) => {
                let code = match f.code.as_str() {
                    "internal" => a2a_code::INTERNAL,
                    _ => a2a_code::INVALID_PARAMS,
                };
                // A2A 1.0 carries details as google.rpc.ErrorInfo; its metadata holds the
                // project's error shape.
                let data = json!([{
                    "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                    "reason": f.code.to_ascii_uppercase(),
                    "domain": "orchestra",
                    "metadata": { "error": f.code, "message": f.message },
                }]);
                rpc_error(id, code, format!("{skill}: {}", f.message), Some(data))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_embedded_catalogue_parses_and_stands_alone() {
        let c = Catalog::parse(AGENTS_JSON).unwrap();
        let names: Vec<&str> = c.tools.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "list_capabilities",
                "find_subnets",
                "get_entry",
                "compare_subnets",
                "get_head",
                "submit_objective"
            ]
        );
        for t in &c.tools {
            assert_eq!(t.input["type"], "object", "{}", t.name);
            assert_eq!(t.output["type"], "object", "{}", t.name);
            // Every $ref resolves inside the tool's own schema.
            for s in [&t.input, &t.output] {
                let text = s.to_string();
                for r in text.split("\"#/$defs/").skip(1) {
                    let name = r.split('"').next().unwrap();
                    assert!(s["$defs"].get(name).is_some(), "{}: {name}", t.name);
                }
            }
        }
        let get = c.get("get_entry").unwrap();
        assert!(get.check_input(&json!({"netuid": 3})).is_ok());
        let e = get.check_input(&json!({"netuid": 70000})).unwrap_err();
        assert!(e.message.contains("/netuid"), "{}", e.message);
        let e = get.check_input(&json!({})).unwrap_err();
        assert!(e.message.contains("netuid"), "{}", e.message);
        let e = get.check_input(&json!({"netuid": 1, "x": 2})).unwrap_err();
        assert!(e.message.contains("x"), "{}", e.message);
    }
}
