//! Leaf-field analysis of target JSON Schemas (used by `schema_valid` and `completeness`).
//!
//! A **leaf field** is a property whose schema is not itself a container. Containers are:
//! - an object schema with a non-empty `properties` map: its properties are walked;
//! - an array schema whose `items` is a container: the item schema is walked **once**, so
//!   `competitors: [{name, url}]` contributes two leaves (`competitors[].name`,
//!   `competitors[].url`), however many items the data holds.
//!
//! Anything else (`string`, `number`, arrays of scalars, objects without `properties`) is a leaf.
//! A **required leaf** is reached only through properties listed in `required` at every level.
//! `$ref`, `allOf`/`anyOf`/`oneOf` and `patternProperties` are not followed: target schemas are
//! written out in full (the templates under `mocks/objectives` do so).

use serde_json::Value;
use thiserror::Error;

/// A target schema that cannot be used.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum SchemaError {
    /// The schema does not compile as JSON Schema 2020-12.
    #[error("invalid JSON Schema: {0}")]
    Invalid(String),
}

/// One step of a path to a leaf field.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum PathSeg {
    /// An object property.
    Key(String),
    /// Every item of an array.
    Items,
}

/// A path from the document root to a leaf field.
pub type LeafPath = Vec<PathSeg>;

fn is_container(schema: &Value) -> bool {
    properties(schema).is_some() || schema.get("items").is_some_and(is_container)
}

fn properties(schema: &Value) -> Option<&serde_json::Map<String, Value>> {
    schema
        .get("properties")
        .and_then(Value::as_object)
        .filter(|p| !p.is_empty())
}

fn required_names(schema: &Value) -> Vec<&str> {
    schema
        .get("required")
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

fn walk(schema: &Value, path: &mut LeafPath, required_only: bool, out: &mut Vec<LeafPath>) {
    if let Some(props) = properties(schema) {
        let required = required_names(schema);
        for (name, sub) in props {
            if required_only && !required.contains(&name.as_str()) {
                continue;
            }
            path.push(PathSeg::Key(name.clone()));
            walk(sub, path, required_only, out);
            path.pop();
        }
    } else if let Some(items) = schema.get("items").filter(|i| is_container(i)) {
        path.push(PathSeg::Items);
        walk(items, path, required_only, out);
        path.pop();
    } else if !path.is_empty() {
        out.push(path.clone());
    }
}

/// Paths of every leaf field of `schema` (see the module docs).
pub fn leaf_paths(schema: &Value) -> Vec<LeafPath> {
    let mut out = Vec::new();
    walk(schema, &mut Vec::new(), false, &mut out);
    out
}

/// Paths of every required leaf field of `schema` (see the module docs).
pub fn required_leaf_paths(schema: &Value) -> Vec<LeafPath> {
    let mut out = Vec::new();
    walk(schema, &mut Vec::new(), true, &mut out);
    out
}

/// Number of leaf fields of `schema`; a schema without properties has 0.
pub fn leaf_fields(schema: &Value) -> usize {
    leaf_paths(schema).len()
}

/// Number of required leaf fields of `schema`.
pub fn required_leaf_fields(schema: &Value) -> usize {
    required_leaf_paths(schema).len()
}

/// Whether `data` has the leaf at `path` present and non-null; through an [`PathSeg::Items`]
/// step the array must be non-empty and **every** item must satisfy the rest of the path.
pub fn path_satisfied(data: &Value, path: &[PathSeg]) -> bool {
    match path.split_first() {
        None => !data.is_null(),
        Some((PathSeg::Key(k), rest)) => data
            .get(k.as_str())
            .is_some_and(|v| path_satisfied(v, rest)),
        Some((PathSeg::Items, rest)) => data.as_array().is_some_and(|items| {
            !items.is_empty() && items.iter().all(|i| path_satisfied(i, rest))
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn counts_nested_objects_and_arrays_once() {
        let s = json!({
            "type": "object",
            "required": ["a", "list"],
            "properties": {
                "a": {"type": "string"},
                "b": {"type": "array", "items": {"type": "string"}},
                "list": {"type": "array", "items": {"type": "object", "required": ["x"],
                         "properties": {"x": {"type": "number"}, "y": {"type": "number"},
                                        "deep": {"type": "object", "required": ["z"],
                                                 "properties": {"z": {"type": "string"}}}}}},
                "grid": {"type": "array", "items": {"type": "array", "items": {"type": "object",
                         "properties": {"c": {"type": "integer"}}}}}
            }
        });
        // a, b, list[].x, list[].y, list[].deep.z, grid[][].c
        assert_eq!(leaf_fields(&s), 6);
        // a, list[].x (deep is not required, so deep.z is not reached)
        assert_eq!(required_leaf_fields(&s), 2);
        assert!(required_leaf_paths(&s).contains(&vec![
            PathSeg::Key("list".into()),
            PathSeg::Items,
            PathSeg::Key("x".into())
        ]));
        assert_eq!(leaf_fields(&json!({"type": "string"})), 0);
        assert_eq!(leaf_fields(&json!({"type": "object", "properties": {}})), 0);
    }

    #[test]
    fn path_satisfaction() {
        let p = vec![
            PathSeg::Key("l".into()),
            PathSeg::Items,
            PathSeg::Key("x".into()),
        ];
        assert!(path_satisfied(&json!({"l": [{"x": 0}, {"x": false}]}), &p));
        assert!(!path_satisfied(&json!({"l": [{"x": 0}, {"x": null}]}), &p));
        assert!(!path_satisfied(&json!({"l": []}), &p));
        assert!(!path_satisfied(&json!({"l": {"x": 1}}), &p));
        assert!(!path_satisfied(&json!(null), &p));
    }
}
