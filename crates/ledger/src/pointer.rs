//! JSON pointers (RFC 6901) over entry values, with "absent ≡ null" semantics so a change can
//! add a field (`old: null`) or remove one (`new: null`) and replay stays exact.

use serde_json::Value;

/// Why a pointer could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PointerError {
    /// The text is not a JSON pointer (must be empty or start with `/`).
    #[error("not a JSON pointer: {0:?}")]
    Syntax(String),
    /// A parent on the way does not exist or is not a container.
    #[error("no parent container for {0:?}")]
    NoParent(String),
    /// An array index is not a number inside the array.
    #[error("bad array index in {0:?}")]
    Index(String),
}

/// Split a pointer into unescaped reference tokens.
pub fn tokens(pointer: &str) -> Result<Vec<String>, PointerError> {
    if pointer.is_empty() {
        return Ok(Vec::new());
    }
    let rest = pointer
        .strip_prefix('/')
        .ok_or_else(|| PointerError::Syntax(pointer.to_string()))?;
    Ok(rest
        .split('/')
        .map(|t| t.replace("~1", "/").replace("~0", "~"))
        .collect())
}

/// Join tokens back into a pointer, escaping as RFC 6901 requires.
pub fn join(tokens: &[String]) -> String {
    tokens
        .iter()
        .map(|t| format!("/{}", t.replace('~', "~0").replace('/', "~1")))
        .collect()
}

/// The value at `pointer`, or `Null` when it is absent.
pub fn get(doc: &Value, pointer: &str) -> Result<Value, PointerError> {
    tokens(pointer)?;
    Ok(doc.pointer(pointer).cloned().unwrap_or(Value::Null))
}

/// Set the value at `pointer`; `Null` removes an object member. The parent must exist.
pub fn set(doc: &mut Value, pointer: &str, value: Value) -> Result<(), PointerError> {
    let toks = tokens(pointer)?;
    let Some((last, parents)) = toks.split_last() else {
        *doc = value;
        return Ok(());
    };
    let mut cur = doc;
    for t in parents {
        cur = match cur {
            Value::Object(m) => m
                .get_mut(t)
                .ok_or_else(|| PointerError::NoParent(pointer.to_string()))?,
            Value::Array(a) => {
                let i: usize = t.parse().map_err(|_| PointerError::Index(pointer.into()))?;
                a.get_mut(i)
                    .ok_or_else(|| PointerError::Index(pointer.to_string()))?
            }
            _ => return Err(PointerError::NoParent(pointer.to_string())),
        };
    }
    match cur {
        Value::Object(m) => {
            if value.is_null() {
                m.remove(last);
            } else {
                m.insert(last.clone(), value);
            }
            Ok(())
        }
        Value::Array(a) => {
            let i: usize = last
                .parse()
                .map_err(|_| PointerError::Index(pointer.to_string()))?;
            let slot = a
                .get_mut(i)
                .ok_or_else(|| PointerError::Index(pointer.to_string()))?;
            *slot = value;
            Ok(())
        }
        _ => Err(PointerError::NoParent(pointer.to_string())),
    }
}

/// The longest common prefix (as a pointer) of several pointers.
pub fn common_prefix(pointers: &[&str]) -> Result<String, PointerError> {
    let mut it = pointers.iter();
    let Some(first) = it.next() else {
        return Ok(String::new());
    };
    let mut prefix = tokens(first)?;
    for p in it {
        let t = tokens(p)?;
        let n = prefix.iter().zip(&t).take_while(|(a, b)| a == b).count();
        prefix.truncate(n);
    }
    Ok(join(&prefix))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn set_get_escape_and_prefix() {
        let mut v = json!({"a": {"b/c": [1, 2]}, "x": 1});
        assert_eq!(get(&v, "/a/b~1c/1").unwrap(), json!(2));
        set(&mut v, "/a/b~1c/0", json!(9)).unwrap();
        set(&mut v, "/a/new", json!("n")).unwrap();
        set(&mut v, "/x", Value::Null).unwrap();
        assert_eq!(v, json!({"a": {"b/c": [9, 2], "new": "n"}}));
        assert_eq!(get(&v, "/missing").unwrap(), Value::Null);
        assert!(set(&mut v, "/nope/deeper", json!(1)).is_err());
        assert!(tokens("bad").is_err());
        assert_eq!(
            common_prefix(&["/endpoints/0/output_schema", "/endpoints/0/input_schema"]).unwrap(),
            "/endpoints/0"
        );
        assert_eq!(join(&tokens("/a~1b/~0c").unwrap()), "/a~1b/~0c");
    }
}
