//! The content check of an audit (docs/mechanism.md §3 check 5, `audit_agreement_min`): how far
//! a committed non-deterministic response agrees with the validator's re-execution of the same
//! request.
//!
//! Both bodies are read as sequences of *parts*, each at a position: every scalar (number,
//! boolean, null) is one part at its JSON pointer, and every whitespace-separated word of a
//! string is one part at (pointer, word index), a word longer than [`PIECE_CHARS`] characters
//! being read as pieces of that length (a base64 image or a hash is not one part; see
//! [`pieces`]). Objects are matched by key and arrays by index.
//! [`agreement`] is the number of positions where both bodies hold the same part, over the larger
//! body's part count: 1 for equal bodies, 0 for bodies sharing nothing, and an invented or
//! borrowed answer scores only what chance (constants, echoes of the request, small
//! vocabularies) gives it.

use serde_json::Value;

/// Longest part of a string, characters.
pub const PIECE_CHARS: usize = 16;

/// The parts of a string, in order: its whitespace-separated words, each longer than
/// [`PIECE_CHARS`] characters cut into pieces of that length. Mock subnets vary their answers
/// at the same grain, so the measure and the model agree on what a part is.
pub fn pieces(s: &str) -> impl Iterator<Item = &str> {
    s.split_whitespace().flat_map(|word| {
        let mut rest = word;
        std::iter::from_fn(move || {
            if rest.is_empty() {
                return None;
            }
            let cut = rest
                .char_indices()
                .nth(PIECE_CHARS)
                .map_or(rest.len(), |(i, _)| i);
            let (head, tail) = rest.split_at(cut);
            rest = tail;
            Some(head)
        })
    })
}

/// Agreement of two response bodies in `[0, 1]` (see the module docs). Symmetric; two bodies
/// without any part agree fully.
pub fn agreement(committed: &Value, live: &Value) -> f64 {
    let total = parts(committed).max(parts(live));
    if total == 0 {
        return 1.0;
    }
    shared(committed, live) as f64 / total as f64
}

/// Parts in `v`.
fn parts(v: &Value) -> usize {
    match v {
        Value::String(s) => pieces(s).count(),
        Value::Array(items) => items.iter().map(parts).sum(),
        Value::Object(m) => m.values().map(parts).sum(),
        _ => 1,
    }
}

/// Positions where `a` and `b` hold the same part.
fn shared(a: &Value, b: &Value) -> usize {
    match (a, b) {
        (Value::String(x), Value::String(y)) => {
            pieces(x).zip(pieces(y)).filter(|(p, q)| p == q).count()
        }
        (Value::Array(x), Value::Array(y)) => x.iter().zip(y).map(|(p, q)| shared(p, q)).sum(),
        (Value::Object(x), Value::Object(y)) => x
            .iter()
            .filter_map(|(k, p)| y.get(k).map(|q| shared(p, q)))
            .sum(),
        (Value::Array(_) | Value::Object(_) | Value::String(_), _)
        | (_, Value::Array(_) | Value::Object(_) | Value::String(_)) => 0,
        (x, y) => usize::from(x == y),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    #[test]
    fn counts_words_and_scalars_at_their_positions() {
        let committed = json!({"results": [{"title": "Bittensor subnets: a survey", "score": 0.5}],
                               "ok": true});
        let live = json!({"results": [{"title": "Bittensor miners: a survey", "score": 0.7}],
                          "ok": true});
        // Parts: 4 words + score + ok = 6 on each side; shared: 3 words + ok.
        assert!((agreement(&committed, &live) - 4.0 / 6.0).abs() < 1e-12);
        // Shifting a word breaks its position; missing keys and items count against.
        assert_eq!(
            agreement(&json!({"t": "a b c"}), &json!({"t": "x a b c"})),
            0.0
        );
        assert!((agreement(&json!([1, 2]), &json!([1, 2, 3, 4])) - 0.5).abs() < 1e-12);
        assert_eq!(agreement(&json!({"a": 1}), &json!({"b": 1})), 0.0);
        // A scalar never matches a word or a container.
        assert_eq!(agreement(&json!({"a": "1"}), &json!({"a": 1})), 0.0);
        assert_eq!(agreement(&json!({}), &json!([])), 1.0);
    }

    #[test]
    fn long_words_are_read_in_pieces() {
        let image = "iVBORw0KGgoAAAAN".repeat(2) + "tail";
        assert_eq!(
            pieces(&format!("a {image} é")).collect::<Vec<_>>(),
            ["a", "iVBORw0KGgoAAAAN", "iVBORw0KGgoAAAAN", "tail", "é"]
        );
        let other = "iVBORw0KGgoAAAAN".to_string() + "xxxxxxxxxxxxxxxx" + "tail";
        assert!((agreement(&json!(image), &json!(other)) - 2.0 / 3.0).abs() < 1e-12);
        // Multi-byte characters are counted, not bytes.
        assert_eq!(pieces(&"é".repeat(17)).count(), 2);
    }

    fn body() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            (0i64..4).prop_map(|n| json!(n)),
            prop::collection::vec(prop::sample::select(vec!["a", "b", "c"]), 0..5)
                .prop_map(|w| Value::String(w.join(" "))),
        ];
        leaf.prop_recursive(3, 24, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::btree_map(
                    prop::sample::select(vec!["x", "y", "z"]).prop_map(String::from),
                    inner,
                    0..3
                )
                .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn is_a_symmetric_share_that_is_one_for_equal_bodies(a in body(), b in body()) {
            let ab = agreement(&a, &b);
            prop_assert!((0.0..=1.0).contains(&ab));
            prop_assert_eq!(ab, agreement(&b, &a));
            prop_assert_eq!(agreement(&a, &a), 1.0);
        }
    }
}
