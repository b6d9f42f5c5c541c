//! Output schemas compiled once into generator plans.
//!
//! A plan is a small tree of typed nodes with every decision that does not depend on the
//! request already taken: which kind of text a string holds (judged from its property name and
//! `format`), numeric ranges, array sizing rules, which output fields echo request fields. At
//! call time generation is a walk of that tree with a seeded RNG, never a JSON Schema
//! interpretation. Only a documented subset of JSON Schema is accepted; anything else is a load
//! error rather than a response that would silently fail validation.

use crate::words::{self, pick};
use orchestra_mechanism::agreement::pieces;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{Map, Number, Value};
use std::collections::BTreeMap;

/// Request parameters that set how many results a list holds.
const COUNT_PARAMS: &[&str] = &[
    "count",
    "limit",
    "max_results",
    "num_results",
    "n",
    "top_k",
    "k",
    "size_limit",
];
/// Request arrays whose elements each get one output item (embeddings, sentiment scores).
const PARALLEL_PARAMS: &[&str] = &["input", "inputs", "texts", "documents", "sentences"];
/// Keywords with no effect on generation (annotations or constraints the generator meets
/// by construction).
const IGNORED_KEYWORDS: &[&str] = &[
    "$schema",
    "$id",
    "$comment",
    "title",
    "description",
    "examples",
    "default",
    "deprecated",
    "readOnly",
    "writeOnly",
    "contentMediaType",
    "additionalProperties",
    "required",
];

/// Dates of deterministic responses count back from here, not from the clock, so equal
/// requests stay byte-equal at any time (2026-01-01T00:00:00Z).
pub(crate) const BASE_MS: u64 = 1_767_225_600_000;

/// One compiled schema node.
#[derive(Debug, Clone)]
pub(crate) enum Node {
    Null,
    Bool,
    Const(Value),
    Enum(Vec<Value>),
    Str(StrNode),
    Int(IntNode),
    Num(NumNode),
    Arr(Box<ArrNode>),
    Obj(Vec<(String, Node)>),
}

#[derive(Debug, Clone)]
pub(crate) struct StrNode {
    kind: StrKind,
    min_len: usize,
    max_len: usize,
    /// Top-level request field of the same name, echoed when it fits.
    echo: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum StrKind {
    Title,
    Url,
    Snippet,
    Text,
    Translation,
    Tweet,
    Id,
    TweetId,
    User,
    Date,
    Model,
    Role,
    FinishReason,
    Status,
    Lang,
    Base64,
    Source,
    Label,
    Email,
    Ss58,
    Mime,
    Word,
}

#[derive(Debug, Clone)]
pub(crate) struct IntNode {
    kind: IntKind,
    min: i64,
    max: i64,
    echo: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum IntKind {
    Index,
    StatusCode,
    /// Tokens of the request: fixed by its text, so equal requests report equal usage.
    PromptTokens,
    Tokens,
    Millis,
    Seed,
    Count,
    /// How many items a sibling list holds.
    Returned,
    Generic,
}

#[derive(Debug, Clone)]
pub(crate) struct NumNode {
    kind: NumKind,
    min: f64,
    max: f64,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum NumKind {
    Embedding,
    Score,
    Generic,
}

#[derive(Debug, Clone)]
pub(crate) struct ArrNode {
    items: Node,
    min: usize,
    max: usize,
    sizing: Sizing,
}

#[derive(Debug, Clone)]
enum Sizing {
    /// As many as the request's count-like parameter asks (capped).
    Count(String),
    /// One per element of a request array.
    Parallel(String),
    /// A fixed length (embedding dimension).
    Fixed(usize),
    /// Exactly the minimum (at least one): chat `choices`.
    Minimal,
    /// One to three.
    Small,
}

/// What the request says about the endpoint's input, used to wire echoes and array sizes.
#[derive(Debug, Clone, Default)]
pub(crate) struct InputShape {
    /// Top-level input properties and their declared `type` (`""` when untyped).
    props: BTreeMap<String, String>,
}

impl InputShape {
    pub(crate) fn from_schema(schema: &Value) -> InputShape {
        let mut props = BTreeMap::new();
        if let Some(p) = schema.get("properties").and_then(Value::as_object) {
            for (k, v) in p {
                let t = v.get("type").and_then(Value::as_str).unwrap_or("");
                props.insert(k.clone(), t.to_string());
            }
        }
        InputShape { props }
    }

    fn has(&self, name: &str, ty: &str) -> bool {
        self.props.get(name).is_some_and(|t| t == ty)
    }
}

/// Compiles schemas into plans for one endpoint.
pub(crate) struct Compiler<'a> {
    pub(crate) input: &'a InputShape,
    pub(crate) embedding_dim: usize,
    primary_taken: bool,
}

impl<'a> Compiler<'a> {
    pub(crate) fn new(input: &'a InputShape, embedding_dim: usize) -> Compiler<'a> {
        Compiler {
            input,
            embedding_dim,
            primary_taken: false,
        }
    }

    /// Compile a whole output schema.
    pub(crate) fn compile_root(&mut self, schema: &Value) -> Result<Node, String> {
        self.primary_taken = false;
        self.compile(schema, "", "", "#")
    }

    fn compile(
        &mut self,
        schema: &Value,
        name: &str,
        parent: &str,
        at: &str,
    ) -> Result<Node, String> {
        let obj = match schema {
            Value::Bool(true) => return Ok(self.string_node(name, parent, None)),
            Value::Object(o) => o,
            _ => return Err(format!("{at}: a schema must be an object or `true`")),
        };
        for key in obj.keys() {
            let known = IGNORED_KEYWORDS.contains(&key.as_str())
                || matches!(
                    key.as_str(),
                    "type"
                        | "const"
                        | "enum"
                        | "properties"
                        | "items"
                        | "minItems"
                        | "maxItems"
                        | "minLength"
                        | "maxLength"
                        | "minimum"
                        | "maximum"
                        | "exclusiveMinimum"
                        | "exclusiveMaximum"
                        | "format"
                        | "contentEncoding"
                        | "anyOf"
                        | "oneOf"
                );
            if !known {
                return Err(format!(
                    "{at}: keyword `{key}` is not supported by the generator"
                ));
            }
        }
        if let Some(c) = obj.get("const") {
            return Ok(Node::Const(c.clone()));
        }
        if let Some(e) = obj.get("enum") {
            let values = e
                .as_array()
                .filter(|a| !a.is_empty())
                .ok_or(format!("{at}: empty enum"))?;
            return Ok(Node::Enum(values.clone()));
        }
        for alt in ["anyOf", "oneOf"] {
            if let Some(first) = obj
                .get(alt)
                .and_then(Value::as_array)
                .and_then(|a| a.first())
            {
                // The first alternative is the canonical shape; `oneOf` alternatives in
                // real APIs are disjoint, so meeting one meets exactly one.
                return self.compile(first, name, parent, &format!("{at}/{alt}/0"));
            }
        }
        let ty = match obj.get("type") {
            Some(Value::String(t)) => t.as_str(),
            Some(Value::Array(ts)) => ts
                .iter()
                .filter_map(Value::as_str)
                .find(|t| *t != "null")
                .or_else(|| ts.iter().filter_map(Value::as_str).next())
                .ok_or(format!("{at}: empty type list"))?,
            Some(_) => return Err(format!("{at}: `type` must be a string or a list")),
            None if obj.contains_key("properties") => "object",
            None if obj.contains_key("items") => "array",
            None => "string",
        };
        match ty {
            "null" => Ok(Node::Null),
            "boolean" => Ok(Node::Bool),
            "string" => Ok(self.string_node(name, parent, Some(obj))),
            "integer" => Ok(self.int_node(name, obj, at)?),
            "number" => {
                let in_embedding = is_embedding(parent);
                let kind = if in_embedding {
                    NumKind::Embedding
                } else if matches!(
                    name,
                    "score" | "confidence" | "probability" | "quality" | "relevance" | "similarity"
                ) {
                    NumKind::Score
                } else {
                    NumKind::Generic
                };
                let (dmin, dmax) = match kind {
                    NumKind::Embedding => (-1.0, 1.0),
                    NumKind::Score => (0.0, 1.0),
                    NumKind::Generic => (0.0, 1000.0),
                };
                let mut min = obj
                    .get("minimum")
                    .and_then(Value::as_f64)
                    .unwrap_or(f64::NAN);
                let mut max = obj
                    .get("maximum")
                    .and_then(Value::as_f64)
                    .unwrap_or(f64::NAN);
                if let Some(x) = obj.get("exclusiveMinimum").and_then(Value::as_f64) {
                    min = x + 1e-3;
                }
                if let Some(x) = obj.get("exclusiveMaximum").and_then(Value::as_f64) {
                    max = x - 1e-3;
                }
                match (min.is_nan(), max.is_nan()) {
                    (true, true) => (min, max) = (dmin, dmax),
                    (true, false) => {
                        min = if dmin <= max {
                            dmin.max(max - 1000.0)
                        } else {
                            max - 1.0
                        }
                    }
                    (false, true) => max = if dmax >= min { dmax } else { min + 1.0 },
                    (false, false) => {}
                }
                if min > max {
                    return Err(format!("{at}: minimum above maximum"));
                }
                Ok(Node::Num(NumNode { kind, min, max }))
            }
            "array" => {
                let items_schema = obj.get("items").cloned().unwrap_or(Value::Bool(true));
                let min = usize_kw(obj, "minItems").unwrap_or(0);
                let max = usize_kw(obj, "maxItems").unwrap_or(usize::MAX);
                if min > max {
                    return Err(format!("{at}: minItems above maxItems"));
                }
                let item_ty = items_schema
                    .get("type")
                    .and_then(Value::as_str)
                    .unwrap_or("");
                let sizing = if is_embedding(name) && matches!(item_ty, "number" | "integer") {
                    Sizing::Fixed(self.embedding_dim)
                } else if name == "choices" {
                    Sizing::Minimal
                } else if !self.primary_taken && !matches!(item_ty, "number" | "integer") {
                    self.primary_taken = true;
                    if let Some(p) = PARALLEL_PARAMS.iter().find(|p| self.input.has(p, "array")) {
                        Sizing::Parallel((*p).to_string())
                    } else if let Some(p) =
                        COUNT_PARAMS.iter().find(|p| self.input.has(p, "integer"))
                    {
                        Sizing::Count((*p).to_string())
                    } else {
                        Sizing::Small
                    }
                } else {
                    Sizing::Small
                };
                let items = self.compile(&items_schema, name, name, &format!("{at}/items"))?;
                Ok(Node::Arr(Box::new(ArrNode {
                    items,
                    min,
                    max,
                    sizing,
                })))
            }
            "object" => {
                let props = obj.get("properties").and_then(Value::as_object);
                let closed = obj.get("additionalProperties") == Some(&Value::Bool(false));
                let mut out = Vec::new();
                match props {
                    Some(props) => {
                        for (k, v) in props {
                            let node = self.compile(v, k, name, &format!("{at}/properties/{k}"))?;
                            out.push((k.clone(), node));
                        }
                    }
                    None if !closed => out = self.free_object(name),
                    None => {}
                }
                if let Some(req) = obj.get("required").and_then(Value::as_array) {
                    for r in req.iter().filter_map(Value::as_str) {
                        if !out.iter().any(|(k, _)| k == r) {
                            if closed {
                                return Err(format!("{at}: required `{r}` is not a property"));
                            }
                            out.push((r.to_string(), self.string_node(r, name, None)));
                        }
                    }
                }
                Ok(Node::Obj(out))
            }
            other => Err(format!("{at}: unknown type `{other}`")),
        }
    }

    /// A plausible record for an object schema that declares no properties (`rows`,
    /// `results`, `meta`): what a scraping subnet actually returns there.
    fn free_object(&self, name: &str) -> Vec<(String, Node)> {
        let s = |kind| {
            Node::Str(StrNode {
                kind,
                min_len: 0,
                max_len: usize::MAX,
                echo: None,
            })
        };
        if matches!(name, "meta" | "metadata" | "info") {
            return vec![
                ("cached".into(), Node::Bool),
                (
                    "took_ms".into(),
                    Node::Int(IntNode {
                        kind: IntKind::Millis,
                        min: 0,
                        max: 5000,
                        echo: None,
                    }),
                ),
            ];
        }
        vec![
            ("author".into(), s(StrKind::User)),
            ("created_at".into(), s(StrKind::Date)),
            ("id".into(), s(StrKind::TweetId)),
            ("text".into(), s(StrKind::Tweet)),
            ("url".into(), s(StrKind::Url)),
        ]
    }

    fn string_node(&self, name: &str, parent: &str, obj: Option<&Map<String, Value>>) -> Node {
        let get = |k: &str| obj.and_then(|o| o.get(k));
        let format = get("format").and_then(Value::as_str).unwrap_or("");
        let base64 = get("contentEncoding").and_then(Value::as_str) == Some("base64");
        let kind = if base64 || name.contains("b64") || name.contains("base64") {
            StrKind::Base64
        } else if format == "date-time"
            || format == "date"
            || matches!(name, "datetime" | "date" | "timestamp" | "time")
            || name.ends_with("_at")
        {
            StrKind::Date
        } else if format == "uri"
            || format == "url"
            || matches!(
                name,
                "url" | "link" | "uri" | "href" | "urls" | "links" | "citations" | "references"
            )
            || name.ends_with("_url")
        {
            StrKind::Url
        } else if name.contains("hotkey") || name.contains("coldkey") || name == "ss58" {
            StrKind::Ss58
        } else if name.ends_with("content_type") || name == "mime_type" {
            StrKind::Mime
        } else if format == "email" || name == "email" {
            StrKind::Email
        } else if matches!(name, "title" | "headline") {
            StrKind::Title
        } else if matches!(name, "snippet" | "summary" | "description" | "abstract") {
            StrKind::Snippet
        } else if name == "translation" || name == "translated_text" {
            StrKind::Translation
        } else if matches!(name, "text" | "content" | "body")
            && (parent.contains("tweet") || matches!(parent, "data" | "results" | "rows" | "posts"))
        {
            StrKind::Tweet
        } else if matches!(
            name,
            "text"
                | "content"
                | "body"
                | "answer"
                | "completion"
                | "message"
                | "output"
                | "markdown"
        ) {
            StrKind::Text
        } else if name == "id" || name.ends_with("_id") {
            if parent.contains("tweet") || parent == "data" {
                StrKind::TweetId
            } else {
                StrKind::Id
            }
        } else if matches!(
            name,
            "user" | "username" | "author" | "handle" | "screen_name"
        ) {
            StrKind::User
        } else if name == "model" {
            StrKind::Model
        } else if name == "role" {
            StrKind::Role
        } else if name == "finish_reason" {
            StrKind::FinishReason
        } else if name == "status" || name == "state" {
            StrKind::Status
        } else if name.ends_with("lang") || name.ends_with("language") {
            StrKind::Lang
        } else if name == "source" || name == "platform" {
            StrKind::Source
        } else if name == "label" || name == "category" {
            StrKind::Label
        } else {
            StrKind::Word
        };
        let min_len = get("minLength").and_then(Value::as_u64).unwrap_or(0) as usize;
        let max_len = get("maxLength")
            .and_then(Value::as_u64)
            .map_or(usize::MAX, |m| m as usize);
        let echo = (!name.is_empty() && self.input.has(name, "string")).then(|| name.to_string());
        Node::Str(StrNode {
            kind,
            min_len,
            max_len: max_len.max(min_len),
            echo,
        })
    }

    fn int_node(&self, name: &str, obj: &Map<String, Value>, at: &str) -> Result<Node, String> {
        let kind = match name {
            "index" | "idx" | "position" | "rank" => IntKind::Index,
            "status_code" | "code" | "http_status" => IntKind::StatusCode,
            "seed" => IntKind::Seed,
            "total" | "total_results" => IntKind::Count,
            "count" | "num_results" | "items_returned" | "returned" | "n_results" => {
                IntKind::Returned
            }
            "prompt_tokens" | "input_tokens" | "total_tokens" => IntKind::PromptTokens,
            n if n.ends_with("_tokens") => IntKind::Tokens,
            n if n.ends_with("_ms") => IntKind::Millis,
            _ => IntKind::Generic,
        };
        let num = |k: &str| obj.get(k).and_then(Value::as_f64);
        let mut min = num("minimum").map(|x| x.ceil() as i64);
        let mut max = num("maximum").map(|x| x.floor() as i64);
        if let Some(x) = num("exclusiveMinimum") {
            min = Some(x.floor() as i64 + 1);
        }
        if let Some(x) = num("exclusiveMaximum") {
            max = Some(x.ceil() as i64 - 1);
        }
        let (dmin, dmax) = match kind {
            IntKind::StatusCode => (200, 200),
            IntKind::Seed => (0, u32::MAX as i64),
            IntKind::Millis => (5, 2_000),
            IntKind::Tokens | IntKind::PromptTokens => (1, 400),
            IntKind::Count | IntKind::Returned => (1, 10_000),
            IntKind::Index | IntKind::Generic => (0, 1_000),
        };
        let min_v = min.unwrap_or_else(|| dmin.min(max.unwrap_or(dmin)));
        let max_v = max.unwrap_or_else(|| dmax.max(min_v));
        if min_v > max_v {
            return Err(format!("{at}: minimum above maximum"));
        }
        let echo = (!name.is_empty() && self.input.has(name, "integer")).then(|| name.to_string());
        Ok(Node::Int(IntNode {
            kind,
            min: min_v,
            max: max_v,
            echo,
        }))
    }
}

fn is_embedding(name: &str) -> bool {
    matches!(name, "embedding" | "embeddings" | "vector" | "values")
}

fn usize_kw(obj: &Map<String, Value>, k: &str) -> Option<usize> {
    obj.get(k).and_then(Value::as_u64).map(|v| v as usize)
}

/// Make sure the field at JSON pointer `pointer` is always generated (arrays on the path get
/// enough items) and return a copy of its node, generated separately from a deterministic RNG
/// so the field stays equal across calls.
pub(crate) fn pin_stable(root: &mut Node, pointer: &str) -> Result<(Node, usize), String> {
    if pointer.is_empty() {
        return Err("the whole response cannot be a stable field".into());
    }
    let Some(rest) = pointer.strip_prefix('/') else {
        return Err(format!("`{pointer}` is not a JSON pointer"));
    };
    let mut node = root;
    let mut last_index = 0;
    for raw in rest.split('/') {
        let token = raw.replace("~1", "/").replace("~0", "~");
        node = match node {
            Node::Obj(props) => props
                .iter_mut()
                .find(|(k, _)| *k == token)
                .map(|(_, n)| n)
                .ok_or(format!("`{pointer}`: no property `{token}`"))?,
            Node::Arr(arr) => {
                let i: usize = token
                    .parse()
                    .map_err(|_| format!("`{pointer}`: `{token}` is not an index"))?;
                if i >= arr.max {
                    return Err(format!("`{pointer}`: index {i} is beyond maxItems"));
                }
                arr.min = arr.min.max(i + 1);
                last_index = i;
                &mut arr.items
            }
            _ => return Err(format!("`{pointer}`: `{token}` goes inside a scalar")),
        };
    }
    Ok((node.clone(), last_index))
}

/// What generation needs from the call besides the plan.
pub(crate) struct GenCtx<'a> {
    pub(crate) request: &'a Value,
    /// What the request is about, woven into titles and texts.
    pub(crate) topic: &'a str,
    /// A request's `max_tokens`, bounding generated answer lengths.
    pub(crate) max_words: Option<usize>,
    /// Dates count back from here.
    pub(crate) base_ms: u64,
    /// Cap on array lengths.
    pub(crate) max_items: usize,
    pub(crate) target_lang: &'a str,
}

impl<'a> GenCtx<'a> {
    pub(crate) fn new(request: &'a Value, base_ms: u64, max_items: usize) -> GenCtx<'a> {
        let max_words = request
            .get("max_tokens")
            .and_then(Value::as_u64)
            .map(|t| (t as usize).clamp(1, 48));
        let target_lang = request
            .get("target_lang")
            .and_then(Value::as_str)
            .unwrap_or("en");
        GenCtx {
            request,
            topic: topic(request),
            max_words,
            base_ms,
            max_items,
            target_lang,
        }
    }
}

/// The request's subject: the first of its usual text fields, at most 48 bytes.
fn topic(request: &Value) -> &str {
    let s = ["prompt", "query", "text", "label", "url"]
        .iter()
        .find_map(|k| request.get(*k).and_then(Value::as_str))
        .or_else(|| {
            ["keywords", "texts", "input"].iter().find_map(|k| {
                request
                    .get(*k)
                    .and_then(Value::as_array)
                    .and_then(|a| a.first())
                    .and_then(Value::as_str)
            })
        })
        .or_else(|| {
            request
                .get("messages")
                .and_then(Value::as_array)
                .and_then(|m| m.last())
                .and_then(|m| m.get("content"))
                .and_then(Value::as_str)
        })
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .unwrap_or("bittensor");
    // A url's subject is its host: "example.com", not "https://example.com/...".
    let s = s
        .strip_prefix("https://")
        .or_else(|| s.strip_prefix("http://"))
        .map_or(s, |rest| rest.split(['/', '?', '#']).next().unwrap_or(rest));
    let mut end = s.len().min(48);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// Generate a value for `node`; `idx` is the position inside the innermost enclosing array.
pub(crate) fn generate(node: &Node, ctx: &GenCtx<'_>, rng: &mut ChaCha8Rng, idx: usize) -> Value {
    match node {
        Node::Null => Value::Null,
        Node::Bool => Value::Bool(rng.random_bool(0.5)),
        Node::Const(v) => v.clone(),
        Node::Enum(vs) => vs[rng.random_range(0..vs.len())].clone(),
        Node::Str(s) => Value::String(gen_string(s, ctx, rng, idx)),
        Node::Int(n) => Value::Number(gen_int(n, ctx, rng, idx).into()),
        Node::Num(n) => Value::Number(gen_num(n, rng)),
        Node::Arr(a) => {
            let len = array_len(a, ctx, rng);
            if let Sizing::Fixed(_) = a.sizing
                && let Node::Num(n) = &a.items
                && n.kind == NumKind::Embedding
            {
                return embedding(n, len, rng);
            }
            Value::Array((0..len).map(|i| generate(&a.items, ctx, rng, i)).collect())
        }
        Node::Obj(props) => object(props, |n| generate(n, ctx, rng, idx)),
    }
}

/// The streams a non-deterministic answer that partly agrees with other answers to the same
/// request draws from (`behaviour.agreement`).
pub(crate) struct Mix {
    /// The request's own answer: keyed by the request, the same for every call of it.
    pub(crate) keyed: ChaCha8Rng,
    /// This call's fresh draws.
    pub(crate) fresh: ChaCha8Rng,
    /// Where in the selection sequence this request starts, `[0, 1)`: keyed by the request too,
    /// so every call of a request keeps the same parts.
    pub(crate) offset: f64,
    /// Parts decided so far.
    pub(crate) decided: u64,
    /// Share of parts that come from the keyed answer.
    pub(crate) agreement: f64,
}

impl Mix {
    /// Whether the next part is the keyed answer's. Part `i` is kept when
    /// `frac(offset + i·φ⁻¹) < agreement`: a low-discrepancy sequence, so any run of `n` parts
    /// keeps `agreement·n` of them to within one or two, and a short answer agrees with a
    /// repeat of itself as much as a long one does.
    fn keep(&mut self) -> bool {
        const GOLDEN: f64 = 0.618_033_988_749_894_9;
        let x = (self.offset + self.decided as f64 * GOLDEN).fract();
        self.decided += 1;
        x < self.agreement
    }
}

/// [`generate`] for a non-deterministic endpoint whose answers to one request agree in part:
/// shapes (array lengths) follow the keyed answer; of its scalars and the words of its strings
/// (a long word piece by piece), the share `mix.agreement` is the keyed answer's and the rest
/// this call's own.
pub(crate) fn generate_mixed(node: &Node, ctx: &GenCtx<'_>, mix: &mut Mix, idx: usize) -> Value {
    match node {
        Node::Str(s) => {
            let keyed = gen_string(s, ctx, &mut mix.keyed, idx);
            let fresh = gen_string(s, ctx, &mut mix.fresh, idx);
            if keyed == fresh {
                // An echo of the request (or a constant) stays exactly what it was.
                return Value::String(keyed);
            }
            // Mixed word by word (a long word piece by piece, as the audit reads it), the
            // keyed answer's spacing kept.
            let fresh: Vec<&str> = pieces(&fresh).collect();
            let mut out = String::with_capacity(keyed.len());
            let mut i = 0;
            for word in keyed.split_whitespace() {
                if !out.is_empty() {
                    out.push(' ');
                }
                for piece in pieces(word) {
                    let own = if mix.keep() { None } else { fresh.get(i) };
                    out.push_str(own.copied().unwrap_or(piece));
                    i += 1;
                }
            }
            fit_length(&mut out, s.min_len, s.max_len);
            Value::String(out)
        }
        Node::Arr(a) => {
            let len = array_len(a, ctx, &mut mix.keyed);
            Value::Array(
                (0..len)
                    .map(|i| generate_mixed(&a.items, ctx, mix, i))
                    .collect(),
            )
        }
        Node::Obj(props) => object(props, |n| generate_mixed(n, ctx, mix, idx)),
        scalar => {
            let keyed = generate(scalar, ctx, &mut mix.keyed, idx);
            let fresh = generate(scalar, ctx, &mut mix.fresh, idx);
            if mix.keep() { keyed } else { fresh }
        }
    }
}

/// An object of `props`, each value from `value`, its counts and sentiment made consistent.
fn object(props: &[(String, Node)], mut value: impl FnMut(&Node) -> Value) -> Value {
    let mut m = Map::new();
    for (k, n) in props {
        m.insert(k.clone(), value(n));
    }
    align_sentiment(props, &mut m);
    align_counts(props, &mut m);
    Value::Object(m)
}

/// Counts agree with the list beside them (or beside their parent, for a `meta` block next
/// to `data`): `items_returned` equals its length and `total` is at least that.
fn align_counts(props: &[(String, Node)], m: &mut Map<String, Value>) {
    let Some(len) = m
        .values()
        .find_map(|v| v.as_array())
        .map(|a| a.len() as i64)
    else {
        return;
    };
    set_counts(props, m, len);
    for (k, node) in props {
        if let Node::Obj(child) = node
            && let Some(Value::Object(cm)) = m.get_mut(k)
            && !cm.values().any(Value::is_array)
        {
            set_counts(child, cm, len);
        }
    }
}

fn set_counts(props: &[(String, Node)], m: &mut Map<String, Value>, len: i64) {
    for (k, node) in props {
        let Node::Int(n) = node else { continue };
        let fixed = match n.kind {
            IntKind::Returned => len,
            IntKind::Count => match m.get(k).and_then(Value::as_i64) {
                Some(t) if t >= len => continue,
                _ => len,
            },
            _ => continue,
        };
        m.insert(k.clone(), Value::Number(fixed.clamp(n.min, n.max).into()));
    }
}

/// A signed sentiment score agrees with its label (a "negative" with score 0.8 looks broken).
fn align_sentiment(props: &[(String, Node)], m: &mut Map<String, Value>) {
    let Some(Node::Num(n)) = props.iter().find(|(k, _)| k == "score").map(|(_, n)| n) else {
        return;
    };
    if n.min >= 0.0 {
        return;
    }
    let label = ["label", "sentiment"]
        .iter()
        .find_map(|k| m.get(*k).and_then(Value::as_str));
    let sign = match label {
        Some("positive") => 1.0,
        Some("negative") => -1.0,
        Some("neutral") => 0.1,
        _ => return,
    };
    if let Some(x) = m.get("score").and_then(Value::as_f64) {
        let y = (x.abs() * sign).clamp(n.min, n.max);
        if let Some(num) = Number::from_f64((y * 1e4).round() / 1e4) {
            m.insert("score".into(), Value::Number(num));
        }
    }
}

fn array_len(a: &ArrNode, ctx: &GenCtx<'_>, rng: &mut ChaCha8Rng) -> usize {
    let want = match &a.sizing {
        Sizing::Count(p) => ctx
            .request
            .get(p)
            .and_then(Value::as_u64)
            .map_or(3, |n| n as usize),
        Sizing::Parallel(p) => ctx
            .request
            .get(p)
            .and_then(Value::as_array)
            .map_or(1, Vec::len),
        Sizing::Fixed(n) => *n,
        Sizing::Minimal => 1,
        Sizing::Small => rng.random_range(1..=3),
    };
    let cap = if let Sizing::Fixed(_) = a.sizing {
        usize::MAX
    } else {
        ctx.max_items
    };
    want.min(cap).min(a.max).max(a.min)
}

/// A unit-length vector, rounded to 4 decimals, inside the item bounds.
fn embedding(n: &NumNode, len: usize, rng: &mut ChaCha8Rng) -> Value {
    let mut v: Vec<f64> = (0..len)
        .map(|_| {
            // Sum of uniforms: close enough to Gaussian for a plausible direction.
            rng.random::<f64>() + rng.random::<f64>() + rng.random::<f64>() - 1.5
        })
        .collect();
    let norm = v.iter().map(|x| x * x).sum::<f64>().sqrt().max(1e-9);
    Value::Array(
        v.iter_mut()
            .map(|x| Value::Number(finite((*x / norm * 1e4).round() / 1e4, n.min, n.max)))
            .collect(),
    )
}

fn finite(x: f64, min: f64, max: f64) -> Number {
    Number::from_f64(x.clamp(min, max)).unwrap_or_else(|| Number::from(0))
}

fn gen_num(n: &NumNode, rng: &mut ChaCha8Rng) -> Number {
    let x = n.min + rng.random::<f64>() * (n.max - n.min);
    let r = (x * 1e4).round() / 1e4;
    // Rounding may step outside an exclusive bound's nudge; the raw draw never does.
    finite(if r < n.min || r > n.max { x } else { r }, n.min, n.max)
}

fn gen_int(n: &IntNode, ctx: &GenCtx<'_>, rng: &mut ChaCha8Rng, idx: usize) -> i64 {
    if let Some(k) = &n.echo
        && let Some(v) = ctx.request.get(k).and_then(Value::as_i64)
        && (n.min..=n.max).contains(&v)
    {
        return v;
    }
    let v = match n.kind {
        IntKind::Index => idx as i64,
        IntKind::StatusCode => {
            if (n.min..=n.max).contains(&200) {
                200
            } else {
                n.min
            }
        }
        IntKind::PromptTokens => (ctx.topic.len() / 4 + 1) as i64,
        IntKind::Tokens => match ctx.max_words {
            Some(w) => w as i64,
            None => rng.random_range(20..=160),
        },
        _ => rng.random_range(n.min..=n.max),
    };
    v.clamp(n.min, n.max)
}

fn gen_string(s: &StrNode, ctx: &GenCtx<'_>, rng: &mut ChaCha8Rng, idx: usize) -> String {
    if let Some(k) = &s.echo
        && let Some(v) = ctx.request.get(k).and_then(Value::as_str)
    {
        let n = v.chars().count();
        if n >= s.min_len && n <= s.max_len {
            return v.to_string();
        }
    }
    let mut out = String::with_capacity(48);
    match s.kind {
        StrKind::Title => {
            words::push_capitalised(&mut out, ctx.topic);
            out.push_str(": ");
            out.push_str(pick(rng, words::TITLE_TAILS));
        }
        StrKind::Url => {
            out.push_str("https://");
            out.push_str(pick(rng, words::DOMAINS));
            out.push('/');
            words::push_slug(&mut out, ctx.topic);
            out.push('-');
            words::push_hex(&mut out, rng, 6);
        }
        StrKind::Snippet => {
            out.push_str(pick(rng, words::SENTENCES));
            out.push_str(", according to a recent post on ");
            out.push_str(ctx.topic);
            out.push('.');
        }
        StrKind::Text => {
            let n = ctx.max_words.unwrap_or_else(|| rng.random_range(18..=40));
            words::push_sentences(&mut out, rng, n);
        }
        StrKind::Translation => {
            let n = ctx
                .request
                .get("text")
                .and_then(Value::as_str)
                .map_or(3, |t| t.split_whitespace().count());
            words::push_words(
                &mut out,
                rng,
                words::lang_words(ctx.target_lang),
                n.clamp(1, 40),
            );
        }
        StrKind::Tweet => {
            out.push_str(pick(rng, words::SENTENCES));
            out.push_str(" — ");
            out.push_str(ctx.topic);
            out.push(' ');
            out.push_str(pick(rng, words::HASHTAGS));
        }
        StrKind::Id => {
            out.push_str("req-");
            words::push_hex(&mut out, rng, 16);
        }
        StrKind::TweetId => words::push_digits(&mut out, rng, 19),
        StrKind::User => {
            out.push('@');
            out.push_str(pick(rng, words::HANDLES));
        }
        StrKind::Date => {
            // Results are spread over the last 30 days, newest first.
            let back = (idx as u64) * 3_600_000 + rng.random_range(0..30 * 86_400_000u64);
            words::push_iso(&mut out, ctx.base_ms.saturating_sub(back));
        }
        StrKind::Model => out.push_str(pick(rng, words::MODELS)),
        StrKind::Role => out.push_str("assistant"),
        StrKind::FinishReason => out.push_str(if ctx.max_words.is_some_and(|w| w < 16) {
            "length"
        } else {
            "stop"
        }),
        StrKind::Status => out.push_str("success"),
        StrKind::Lang => out.push_str(pick(rng, words::LANGS)),
        StrKind::Base64 => words::push_png_base64(&mut out, rng, 48),
        StrKind::Source => out.push_str(pick(rng, words::SOURCES)),
        StrKind::Label => out.push_str(pick(rng, words::LABELS)),
        StrKind::Email => {
            out.push_str(pick(rng, words::HANDLES));
            out.push_str("@example.org");
        }
        StrKind::Ss58 => {
            out.push('5');
            words::push_base58(&mut out, rng, 47);
        }
        StrKind::Mime => out.push_str("text/html; charset=utf-8"),
        StrKind::Word => {
            let n = rng.random_range(1..=3);
            words::push_words(&mut out, rng, words::WORDS, n);
        }
    }
    fit_length(&mut out, s.min_len, s.max_len);
    out
}

fn fit_length(out: &mut String, min_len: usize, max_len: usize) {
    let n = out.chars().count();
    if n > max_len {
        if let Some((cut, _)) = out.char_indices().nth(max_len) {
            out.truncate(cut);
        }
    } else if n < min_len {
        out.extend(std::iter::repeat_n('x', min_len - n));
    }
}

/// A ChaCha8 stream from 32 seed bytes.
pub(crate) fn rng_from(seed: [u8; 32]) -> ChaCha8Rng {
    ChaCha8Rng::from_seed(seed)
}
