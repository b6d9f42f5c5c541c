//! RFC 8785 (JCS) conformance: the RFC's own examples for numbers, string escaping and key order.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use orchestra_protocol::canonical_json;
use serde_json::Value;

fn jcs(text: &str) -> String {
    let value: Value = serde_json::from_str(text).unwrap();
    String::from_utf8(canonical_json(&value).unwrap()).unwrap()
}

/// RFC 8785 §3.2.2 / §3.2.3: the worked example with numbers, strings and literals.
#[test]
fn rfc8785_main_example() {
    let input = r#"{
        "numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],
        "string": "\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/",
        "literals": [null, true, false]
    }"#;
    let expected = r#"{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],"string":"€$\u000f\nA'B\"\\\\\"/"}"#;
    assert_eq!(jcs(input), expected);
}

/// RFC 8785 §3.2.3: properties sorted by UTF-16 code units (the emoji's surrogates sort before
/// U+FB33 although its code point is larger).
#[test]
fn rfc8785_sorting_example() {
    let input = r#"{
        "\u20ac": "Euro Sign",
        "\r": "Carriage Return",
        "\ufb33": "Hebrew Letter Dalet With Dagesh",
        "1": "One",
        "\ud83d\ude00": "Emoji: Grinning Face",
        "\u0080": "Control",
        "\u00f6": "Latin Small Letter O With Diaeresis"
    }"#;
    let out = jcs(input);
    let keys: Vec<String> = {
        // Re-parse preserving order: serde_json's Value sorts, so walk the text instead.
        let mut keys = Vec::new();
        let mut rest = out.as_str();
        while let Some(start) = rest.find("\":\"") {
            let head = &rest[..start];
            let open = head.rfind("{\"").or_else(|| head.rfind(",\"")).unwrap();
            keys.push(head[open + 2..].to_string());
            rest = &rest[start + 3..];
        }
        keys
    };
    assert_eq!(keys, ["\\r", "1", "\u{80}", "ö", "€", "😀", "\u{fb33}"]);
    assert!(
        out.starts_with(r#"{"\r":"Carriage Return","1":"One""#),
        "{out}"
    );
}

/// RFC 8785 Appendix B: IEEE-754 doubles rendered as ECMAScript does.
#[test]
fn rfc8785_number_serialisation() {
    let cases: &[(f64, &str)] = &[
        (0.0, "0"),
        (-0.0, "0"),
        (5e-324, "5e-324"),
        (-5e-324, "-5e-324"),
        (1.7976931348623157e308, "1.7976931348623157e+308"),
        (-1.7976931348623157e308, "-1.7976931348623157e+308"),
        (9007199254740992.0, "9007199254740992"),
        (-9007199254740992.0, "-9007199254740992"),
        (295147905179352830000.0, "295147905179352830000"),
        (9.999999999999997e22, "9.999999999999997e+22"),
        (1e23, "1e+23"),
        (1.0000000000000001e23, "1.0000000000000001e+23"),
        (999999999999999700000.0, "999999999999999700000"),
        (999999999999999900000.0, "999999999999999900000"),
        (1e21, "1e+21"),
        (9.999999999999997e-7, "9.999999999999997e-7"),
        (0.000001, "0.000001"),
        (333333333.3333332, "333333333.3333332"),
        (333333333.33333325, "333333333.33333325"),
        (333333333.3333333, "333333333.3333333"),
        (333333333.3333334, "333333333.3333334"),
        (333333333.33333343, "333333333.33333343"),
        (-0.0000033333333333333333, "-0.0000033333333333333333"),
        (1424953923781206.2, "1424953923781206.2"),
    ];
    for &(value, expected) in cases {
        let got = String::from_utf8(canonical_json(&value).unwrap()).unwrap();
        assert_eq!(got, expected, "number {value:e}");
    }
}

/// Non-finite numbers have no JSON form; canonicalisation must refuse rather than invent one.
#[test]
fn non_finite_numbers_are_refused() {
    assert!(canonical_json(&f64::NAN).is_err());
    assert!(canonical_json(&f64::INFINITY).is_err());
}

/// Whitespace and key order in the input do not matter.
#[test]
fn equal_values_have_equal_bytes() {
    assert_eq!(
        jcs(r#"{ "b" : 1, "a" : [ 1 , 2 ] }"#),
        jcs(r#"{"a":[1,2],"b":1}"#)
    );
}
