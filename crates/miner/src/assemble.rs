//! Schema-driven assembly of `standardized_data`, and schema inference from live responses.
//!
//! [`conform`] walks the target schema and fills it from a primary value (normally the synthesis
//! step's structured output) and, for anything missing or ill-typed there, from the first value
//! under the same key anywhere in the other sub-responses. Only what the schema can hold is kept
//! (extra keys are dropped, so `additionalProperties: false` never fails), and a required field
//! nothing supplies gets the smallest value its schema accepts, so the output is schema-valid by
//! construction while every value that can be traced to a sub-response is.
//!
//! Only the schema keywords Orchestra's templates use are understood (`type`, `properties`,
//! `required`, `items`, `enum`, `minimum`/`maximum`, `minLength`, `minItems`/`maxItems`); `$ref`
//! and combinators are not followed, as in `orchestra_mechanism::schema`.

use serde_json::{Map, Value};

/// Fill `schema` from `primary` and `sources` (see the module docs).
pub fn conform(schema: &Value, primary: Option<&Value>, sources: &[&Value]) -> Value {
    conform_at(schema, primary, sources, None)
}

fn type_of(schema: &Value) -> Option<&str> {
    match schema.get("type") {
        Some(Value::String(t)) => Some(t.as_str()),
        // A union: the first non-null type is what we produce.
        Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).find(|t| *t != "null"),
        _ => {
            if schema.get("properties").is_some() {
                Some("object")
            } else if schema.get("items").is_some() {
                Some("array")
            } else {
                None
            }
        }
    }
}

fn conform_at(
    schema: &Value,
    value: Option<&Value>,
    sources: &[&Value],
    key: Option<&str>,
) -> Value {
    let value = value.filter(|v| !v.is_null());
    if let Some(choices) = schema.get("enum").and_then(Value::as_array) {
        return match value {
            Some(v) if choices.contains(v) => v.clone(),
            _ => key
                .and_then(|k| find_key(sources, k, |v| choices.contains(v)))
                .or_else(|| choices.first())
                .cloned()
                .unwrap_or(Value::Null),
        };
    }
    match type_of(schema) {
        Some("object") => conform_object(schema, value, sources),
        Some("array") => conform_array(schema, value, sources, key),
        Some("string") => conform_string(schema, value, sources, key),
        Some(t @ ("number" | "integer")) => {
            conform_number(schema, value, sources, key, t == "integer")
        }
        Some("boolean") => value
            .filter(|v| v.is_boolean())
            .or_else(|| key.and_then(|k| find_key(sources, k, Value::is_boolean)))
            .cloned()
            .unwrap_or(Value::Bool(false)),
        Some("null") => Value::Null,
        _ => value.cloned().unwrap_or(Value::Null),
    }
}

fn conform_object(schema: &Value, value: Option<&Value>, sources: &[&Value]) -> Value {
    let empty = Map::new();
    let props = schema
        .get("properties")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    let required: Vec<&str> = schema
        .get("required")
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let obj = value.and_then(Value::as_object);
    let mut out = Map::new();
    for (name, sub) in props {
        let own = obj.and_then(|o| o.get(name)).filter(|v| !v.is_null());
        let is_required = required.contains(&name.as_str());
        if own.is_some() || is_required {
            out.insert(
                name.clone(),
                conform_at(sub, own, sources, Some(name.as_str())),
            );
        } else if let Some(found) = find_key(sources, name, |v| fits_type(sub, v)) {
            out.insert(
                name.clone(),
                conform_at(sub, Some(found), sources, Some(name.as_str())),
            );
        }
    }
    // A required name without a property schema: keep whatever we have, or null.
    for name in required {
        if !out.contains_key(name) {
            let v = obj
                .and_then(|o| o.get(name))
                .cloned()
                .unwrap_or(Value::Null);
            out.insert(name.to_string(), v);
        }
    }
    Value::Object(out)
}

fn conform_array(
    schema: &Value,
    value: Option<&Value>,
    sources: &[&Value],
    key: Option<&str>,
) -> Value {
    let items_schema = schema.get("items").unwrap_or(&Value::Null);
    let min = schema.get("minItems").and_then(Value::as_u64).unwrap_or(0) as usize;
    let max = schema
        .get("maxItems")
        .and_then(Value::as_u64)
        .map_or(usize::MAX, |m| m as usize);
    let found = value.and_then(Value::as_array).or_else(|| {
        key.and_then(|k| find_key(sources, k, Value::is_array))
            .and_then(Value::as_array)
    });
    let mut out: Vec<Value> = found
        .map(|items| {
            items
                .iter()
                .take(max)
                .map(|i| conform_at(items_schema, Some(i), sources, None))
                .collect()
        })
        .unwrap_or_default();
    while out.len() < min.min(max) {
        out.push(conform_at(items_schema, None, sources, None));
    }
    Value::Array(out)
}

fn conform_string(
    schema: &Value,
    value: Option<&Value>,
    sources: &[&Value],
    key: Option<&str>,
) -> Value {
    let min_len = schema.get("minLength").and_then(Value::as_u64).unwrap_or(0) as usize;
    let long_enough = |v: &Value| v.as_str().is_some_and(|s| s.chars().count() >= min_len);
    if let Some(v) = value {
        if long_enough(v) {
            return v.clone();
        }
        if v.is_number() || v.is_boolean() {
            let s = v.to_string();
            if s.chars().count() >= min_len {
                return Value::String(s);
            }
        }
    }
    if let Some(v) = key.and_then(|k| find_key(sources, k, long_enough)) {
        return v.clone();
    }
    let mut s = String::from("unknown");
    while s.chars().count() < min_len {
        s.push('_');
    }
    Value::String(s)
}

fn conform_number(
    schema: &Value,
    value: Option<&Value>,
    sources: &[&Value],
    key: Option<&str>,
    integer: bool,
) -> Value {
    let lo = schema.get("minimum").and_then(Value::as_f64);
    let hi = schema.get("maximum").and_then(Value::as_f64);
    let in_range = |x: f64| lo.is_none_or(|l| x >= l) && hi.is_none_or(|h| x <= h);
    let fits = |v: &Value| {
        v.as_f64()
            .is_some_and(|x| in_range(x) && (!integer || x.fract() == 0.0))
    };
    if let Some(v) = value.filter(|v| fits(v)) {
        return v.clone();
    }
    if let Some(v) = key.and_then(|k| find_key(sources, k, fits)) {
        return v.clone();
    }
    // Clamp an ill-ranged number rather than inventing one.
    let base = value.and_then(Value::as_f64).unwrap_or(0.0);
    let mut x = base;
    if let Some(l) = lo {
        x = x.max(l);
    }
    if let Some(h) = hi {
        x = x.min(h);
    }
    if integer {
        let mut i = x.round();
        if lo.is_some_and(|l| i < l) {
            i += 1.0;
        }
        if hi.is_some_and(|h| i > h) {
            i -= 1.0;
        }
        Value::from(i as i64)
    } else {
        serde_json::Number::from_f64(x).map_or(Value::from(0), Value::Number)
    }
}

fn fits_type(schema: &Value, v: &Value) -> bool {
    match type_of(schema) {
        Some("object") => v.is_object(),
        Some("array") => v.is_array(),
        Some("string") => v.is_string(),
        Some("number") => v.is_number(),
        Some("integer") => v.as_f64().is_some_and(|x| x.fract() == 0.0),
        Some("boolean") => v.is_boolean(),
        _ => !v.is_null(),
    }
}

/// Property names that carry the objective itself when an endpoint asks for free text.
const QUERY_NAMES: [&str; 7] = [
    "query",
    "q",
    "prompt",
    "text",
    "input",
    "question",
    "objective",
];

/// A request for an endpoint whose input schema declares properties, built from the miner's
/// generic request (`request_id`, `capability`, `objective`, `params`, `inputs`,
/// `target_schema`): each declared property takes the generic field of that name, else the first
/// fitting value under that name in `sources` (the objective's parameters, then dependency
/// responses); a free-text property (`query`, `prompt`, …) or a required string nothing supplies
/// takes the objective text; other required properties get their schema's smallest value. Unless
/// the schema forbids extra properties, `request_id`, `orchestra_nonce` (replay binding),
/// `inputs` and `target_schema` ride along, so a subnet can echo the request id, receipts and
/// audits cover the nonce, and synthesis sees its material.
pub fn shape_request(
    input_schema: &Value,
    generic: &Map<String, Value>,
    sources: &[&Value],
    objective_text: &str,
) -> Value {
    let Some(mut out) = shape_declared(input_schema, generic, sources, objective_text) else {
        return Value::Object(generic.clone());
    };
    if input_schema.get("additionalProperties") != Some(&Value::Bool(false)) {
        for key in RIDE_ALONG {
            if let Some(v) = generic.get(key)
                && !out.contains_key(key)
            {
                out.insert(key.to_string(), v.clone());
            }
        }
    }
    Value::Object(out)
}

/// Fields of the generic request that go along unless the schema forbids extra properties (the
/// replay-binding nonce among them: `orchestra_protocol::messages::accepts_nonce` is the same
/// rule, so the auditor asks for it exactly where it can ride along).
const RIDE_ALONG: [&str; 4] = [
    "request_id",
    orchestra_protocol::messages::NONCE_FIELD,
    "inputs",
    "target_schema",
];

/// [`shape_request`] taking the generic request by value, with `sources` = `params`, then the
/// generic request's `inputs` (what a miner's execution passes): what rides along is moved
/// rather than copied, and the dependency bodies are not copied to serve as sources.
pub fn shape_request_owned(
    input_schema: &Value,
    mut generic: Map<String, Value>,
    params: &Value,
    objective_text: &str,
) -> Value {
    let shaped = {
        let mut sources = vec![params];
        sources.extend(generic.get("inputs"));
        shape_declared(input_schema, &generic, &sources, objective_text)
    };
    let Some(mut out) = shaped else {
        return Value::Object(generic);
    };
    if input_schema.get("additionalProperties") != Some(&Value::Bool(false)) {
        for key in RIDE_ALONG {
            if !out.contains_key(key)
                && let Some(v) = generic.remove(key)
            {
                out.insert(key.to_string(), v);
            }
        }
    }
    Value::Object(out)
}

/// The declared properties of a shaped request; `None` if the schema declares none.
fn shape_declared(
    input_schema: &Value,
    generic: &Map<String, Value>,
    sources: &[&Value],
    objective_text: &str,
) -> Option<Map<String, Value>> {
    let props = input_schema
        .get("properties")
        .and_then(Value::as_object)
        .filter(|p| !p.is_empty())?;
    let required: Vec<&str> = input_schema
        .get("required")
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let mut out = Map::new();
    for (name, sub) in props {
        let found = generic
            .get(name)
            .filter(|v| fits_type(sub, v))
            .or_else(|| find_key(sources, name, |v| fits_type(sub, v)));
        let free_text = type_of(sub) == Some("string")
            && sub.get("enum").is_none()
            && (QUERY_NAMES.contains(&name.as_str()) || required.contains(&name.as_str()));
        let value = match found {
            Some(v) => conform_at(sub, Some(v), sources, Some(name.as_str())),
            None if free_text => Value::String(objective_text.to_string()),
            None if required.contains(&name.as_str()) => {
                conform_at(sub, None, sources, Some(name.as_str()))
            }
            None => continue,
        };
        out.insert(name.clone(), value);
    }
    Some(out)
}

/// The first value under key `key`, depth first through `sources` in order, that satisfies `ok`.
pub fn find_key<'a>(
    sources: &[&'a Value],
    key: &str,
    ok: impl Fn(&Value) -> bool + Copy,
) -> Option<&'a Value> {
    sources.iter().find_map(|s| find_in(s, key, ok))
}

fn find_in<'a>(v: &'a Value, key: &str, ok: impl Fn(&Value) -> bool + Copy) -> Option<&'a Value> {
    match v {
        Value::Object(map) => {
            if let Some(hit) = map.get(key).filter(|x| ok(x)) {
                return Some(hit);
            }
            map.values().find_map(|x| find_in(x, key, ok))
        }
        Value::Array(items) => items.iter().find_map(|x| find_in(x, key, ok)),
        _ => None,
    }
}

/// A JSON Schema (2020-12) that `value` conforms to, generalised to types: objects list their
/// non-null keys as required, arrays take their first item's schema, numbers are `number` (an
/// integer today may be a float tomorrow), `null` accepts anything.
pub fn infer_schema(value: &Value) -> Value {
    match value {
        Value::Null => Value::Object(Map::new()),
        Value::Bool(_) => serde_json::json!({"type": "boolean"}),
        Value::Number(_) => serde_json::json!({"type": "number"}),
        Value::String(_) => serde_json::json!({"type": "string"}),
        Value::Array(items) => {
            let mut s = Map::new();
            s.insert("type".into(), "array".into());
            if let Some(first) = items.first() {
                s.insert("items".into(), infer_schema(first));
            }
            Value::Object(s)
        }
        Value::Object(map) => {
            let props: Map<String, Value> = map
                .iter()
                .map(|(k, v)| (k.clone(), infer_schema(v)))
                .collect();
            let required: Vec<Value> = map
                .iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, _)| Value::String(k.clone()))
                .collect();
            serde_json::json!({"type": "object", "required": required, "properties": props})
        }
    }
}

/// The smallest value `schema` accepts, as far as [`conform`] understands it: a placeholder a
/// driver or test can use for a response nothing else supplies.
pub fn example(schema: &Value) -> Value {
    conform(schema, None, &[])
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn valid(schema: &Value, v: &Value) -> bool {
        jsonschema::draft202012::new(schema).unwrap().is_valid(v)
    }

    #[test]
    fn conform_fills_from_primary_then_sources_then_defaults() {
        let schema = json!({
            "type": "object", "additionalProperties": false,
            "required": ["name", "size", "tags", "items", "kind"],
            "properties": {
                "name": {"type": "string", "minLength": 1},
                "size": {"type": "integer", "minimum": 1990, "maximum": 2100},
                "tags": {"type": "array", "items": {"type": "string"}},
                "kind": {"type": "string", "enum": ["a", "b"]},
                "items": {"type": "array", "minItems": 2,
                          "items": {"type": "object", "required": ["url"],
                                    "properties": {"url": {"type": "string", "minLength": 1}}}},
                "opt": {"type": "number"}
            }
        });
        let primary = json!({"name": "Acme", "extra": 1, "kind": "zzz"});
        let other = json!({"deep": {"size": 2024, "url": "https://x", "opt": 3.5}});
        let out = conform(&schema, Some(&primary), &[&other]);
        assert!(valid(&schema, &out), "{out}");
        assert_eq!(out["name"], "Acme");
        assert_eq!(out["size"], 2024);
        assert_eq!(out["kind"], "a");
        assert_eq!(out["opt"], 3.5);
        assert_eq!(out["items"][1]["url"], "https://x");
        assert!(out.get("extra").is_none());
        let bare = example(&schema);
        assert!(valid(&schema, &bare), "{bare}");
    }

    #[test]
    fn requests_are_shaped_to_declared_input_schemas() {
        let generic: Map<String, Value> = serde_json::from_value(json!({
            "request_id": "abc", "capability": "web_search", "objective": "Research rings",
            "params": {"region": "Japan", "max_players": 5}
        }))
        .unwrap();
        let params = generic["params"].clone();
        let schema = json!({
            "type": "object", "required": ["query", "limit"], "additionalProperties": false,
            "properties": {"query": {"type": "string"}, "limit": {"type": "integer", "minimum": 1},
                           "region": {"type": "string"}, "lang": {"type": "string"}}
        });
        let req = shape_request(&schema, &generic, &[&params], "Research rings");
        assert_eq!(
            req,
            json!({"query": "Research rings", "limit": 1, "region": "Japan"})
        );
        assert!(valid(&schema, &req));
        // Open schemas keep the request id so a subnet can echo it.
        let open = json!({"type": "object", "properties": {"prompt": {"type": "string"}}});
        let req = shape_request(&open, &generic, &[&params], "Research rings");
        assert_eq!(
            req,
            json!({"prompt": "Research rings", "request_id": "abc"})
        );
        // No declared properties: the generic request as it is.
        let req = shape_request(&json!({"type": "object"}), &generic, &[], "x");
        assert_eq!(req, Value::Object(generic));
    }

    #[test]
    fn owned_shaping_equals_borrowed_shaping() {
        let params = json!({"region": "Japan", "limit": 3});
        let inputs = json!({"search": {"results": [{"url": "https://x", "title": "T"}]}});
        let schemas = [
            json!({"type": "object", "required": ["query"],
                   "properties": {"query": {"type": "string"}, "limit": {"type": "integer"},
                                  "results": {"type": "array"}, "title": {"type": "string"}}}),
            json!({"type": "object", "additionalProperties": false,
                   "properties": {"prompt": {"type": "string"}, "inputs": {"type": "object"}}}),
            json!({"type": "object"}),
        ];
        for with_inputs in [false, true] {
            let mut generic: Map<String, Value> = serde_json::from_value(json!({
                "request_id": "abc", "capability": "llm", "objective": "Research rings",
                "params": params.clone(), "target_schema": {"type": "object"}
            }))
            .unwrap();
            if with_inputs {
                generic.insert("inputs".into(), inputs.clone());
            }
            let empty = json!({});
            let sources = [&params, if with_inputs { &inputs } else { &empty }];
            for schema in &schemas {
                assert_eq!(
                    shape_request_owned(schema, generic.clone(), &params, "Research rings"),
                    shape_request(schema, &generic, &sources, "Research rings"),
                    "{schema}"
                );
            }
        }
    }

    #[test]
    fn inferred_schema_accepts_its_value() {
        let v = json!({"a": 1, "b": [{"c": "x"}], "d": null, "e": {"f": true}});
        let s = infer_schema(&v);
        assert!(valid(&s, &v));
        assert!(!valid(&s, &json!({"a": 1})));
    }
}
