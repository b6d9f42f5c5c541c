#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Loading the shipped mock files, and the errors malformed ones give.

use orchestra_mocks::{MockError, MockSet, MockSubnet};
use std::collections::BTreeSet;
use std::path::PathBuf;

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../mocks/subnets")
}

fn apex_text() -> String {
    std::fs::read_to_string(dir().join("sn001_apex.toml")).unwrap()
}

#[test]
fn every_shipped_file_loads_and_covers_the_capabilities() {
    let set = MockSet::load_dir(dir()).unwrap();
    assert!(set.len() >= 12, "only {} subnets", set.len());
    let caps: BTreeSet<String> = set
        .iter()
        .flat_map(|s| s.entry().capabilities.iter().cloned())
        .collect();
    for want in [
        "web_search",
        "web_scrape",
        "llm_synthesis",
        "embedding",
        "image_generation",
        "data_query",
    ] {
        assert!(caps.contains(want), "no subnet offers {want}: {caps:?}");
    }
    // Schema drift needs somewhere to go: at least four subnets ship a second version.
    let with_v2 = set
        .iter()
        .filter(|s| {
            s.endpoint_names()
                .any(|e| s.schema_versions(e).unwrap().len() > 1)
        })
        .count();
    assert!(
        with_v2 >= 4,
        "only {with_v2} subnets have a second schema version"
    );
    assert!(
        set.iter().any(|s| s.receipt_key().is_some()),
        "no subnet signs receipts"
    );
    // Files load in name order and are keyed by netuid.
    let netuids: Vec<u16> = set.iter().map(MockSubnet::netuid).collect();
    assert_eq!(netuids.first(), Some(&1));
    assert!(netuids.windows(2).all(|w| w[0] < w[1]));
}

#[test]
fn the_entry_is_parsed_as_the_file_says() {
    let set = MockSet::load_dir(dir()).unwrap();
    let desearch = set.get(22).unwrap();
    assert_eq!(desearch.entry().name, "Desearch");
    assert_eq!(desearch.entry().metrics.cost_per_query_rao, 2_000_000);
    assert_eq!(desearch.entry().version, 1);
    assert_eq!(desearch.price_rao("web_search"), Some(2_000_000));
    // Defaults resolved from the entry when [behaviour] says nothing.
    let bare = apex_text();
    let cut = bare.find("\n[behaviour]").unwrap();
    let s = MockSubnet::from_toml_str("bare.toml", &bare[..cut]).unwrap();
    assert!((s.failure_rate() - (1.0 - s.entry().metrics.reliability)).abs() < 1e-12);
    assert_eq!(s.schema_versions("synthesize"), Some(vec![1]));
    assert!(s.receipt_key().is_none());
}

fn err(text: &str) -> MockError {
    MockSubnet::from_toml_str("bad.toml", text).unwrap_err()
}

fn assert_names(e: &MockError, key: &str) {
    let msg = e.to_string();
    assert!(msg.contains("bad.toml"), "no file name in: {msg}");
    assert!(msg.contains(key), "no `{key}` in: {msg}");
}

#[test]
fn malformed_files_name_the_file_and_the_key() {
    let good = apex_text();
    // Unknown key inside [behaviour]: the path and the field both appear.
    let e = err(&good.replace("receipts = false", "receipts = false\nreciepts = true"));
    assert!(matches!(e, MockError::Parse { .. }), "{e:?}");
    assert_names(&e, "reciepts");
    // Wrong type: the dotted key path.
    let e = err(&good.replace("failure_rate = 0.04", "failure_rate = \"often\""));
    assert_names(&e, "behaviour.failure_rate");
    // Out of range.
    let e = err(&good.replace("failure_rate = 0.04", "failure_rate = 1.5"));
    assert!(matches!(e, MockError::Invalid { .. }), "{e:?}");
    assert_names(&e, "behaviour.failure_rate");
    // p95 below p50.
    let e = err(&good.replace("p95_ms = 1300", "p95_ms = 10"));
    assert_names(&e, "behaviour.latency");
    // Unknown key inside [entry] stays an error (the Ledger loader's rule too).
    let e = err(&good.replace("netuid = 1\n", "netuid = 1\nnetuidd = 2\n"));
    assert_names(&e, "netuidd");
    // A schema version for an endpoint that does not exist.
    let e = err(&good.replace("endpoint = \"synthesize\"", "endpoint = \"synthesise\""));
    assert_names(&e, "behaviour.schema_versions[0].endpoint");
    // A stable field that does not resolve in its version.
    let e = err(&good.replace(
        "stable_fields = [\"/output/role\"]",
        "stable_fields = [\"/nope\"]",
    ));
    assert_names(&e, "behaviour.schema_versions[0].stable_fields");
    // A schema keyword the generator cannot honour is refused at load, not mid-run.
    let e = err(&good.replace(
        "text = { type = \"string\" }",
        "text = { type = \"string\", pattern = \"^a\" }",
    ));
    assert!(matches!(e, MockError::Schema { .. }), "{e:?}");
    assert_names(&e, "pattern");
    // A minimal input that its own input schema rejects.
    let e = err(&good.replace("max_tokens = 8 }", "max_tokens = 0 }"));
    assert_names(&e, "minimal_input");
    // Not TOML at all: line and column.
    let e = err("[entry\nnetuid = 1");
    assert!(e.to_string().contains("line"), "{e}");
}

#[test]
fn directories_without_files_or_with_duplicates_are_errors() {
    let empty = tempfile::tempdir().unwrap();
    assert!(matches!(
        MockSet::load_dir(empty.path()),
        Err(MockError::NoFiles { .. })
    ));
    let dup = tempfile::tempdir().unwrap();
    std::fs::write(dup.path().join("a.toml"), apex_text()).unwrap();
    std::fs::write(dup.path().join("b.toml"), apex_text()).unwrap();
    let e = MockSet::load_dir(dup.path()).unwrap_err();
    assert!(matches!(e, MockError::Duplicate { netuid: 1, .. }), "{e:?}");
    assert!(matches!(
        MockSet::load_dir("/nonexistent/dir"),
        Err(MockError::Io { .. })
    ));
}

#[test]
fn overrides_merge_onto_behaviour() {
    let text = apex_text();
    let mut o: toml::Table =
        toml::from_str("failure_rate = 0.5\n[overload]\nfailure_slope = 2.0").unwrap();
    let s = MockSubnet::from_toml_str_with_overrides("apex.toml", &text, &o).unwrap();
    assert_eq!(s.failure_rate(), 0.5);
    assert_eq!(s.behaviour().overload.failure_slope, 2.0);
    assert_eq!(
        s.behaviour().overload.latency_exponent,
        1.5,
        "sibling keys survive the merge"
    );
    o.insert("failur_rate".into(), toml::Value::Float(0.1));
    let e = MockSubnet::from_toml_str_with_overrides("apex.toml", &text, &o).unwrap_err();
    assert!(
        e.to_string().contains("apex.toml") && e.to_string().contains("failur_rate"),
        "{e}"
    );
    // Embedded sources with overrides by netuid.
    let over =
        std::collections::BTreeMap::from([(1u16, toml::from_str("receipts = true").unwrap())]);
    let set = MockSet::from_sources([("sn001_apex.toml", text.as_str())], &over).unwrap();
    assert!(set.get(1).unwrap().receipt_key().is_some());
    let bad = std::collections::BTreeMap::from([(99u16, toml::Table::new())]);
    assert!(MockSet::from_sources([("sn001_apex.toml", text.as_str())], &bad).is_err());
}

#[test]
fn the_shipped_set_is_the_directory() {
    let from_dir = MockSet::load_dir(dir()).unwrap();
    let shipped = MockSet::shipped(&std::collections::BTreeMap::new()).unwrap();
    assert_eq!(
        shipped.entries(),
        from_dir.entries(),
        "the embedded files are mocks/subnets"
    );
    let files: Vec<String> = std::fs::read_dir(dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".toml"))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let names: Vec<&str> = orchestra_mocks::SHIPPED.iter().map(|(n, _)| *n).collect();
    assert_eq!(names, files, "every file, in name order");
}

#[test]
fn directories_load_with_overrides_and_skip_other_files() {
    let d = tempfile::tempdir().unwrap();
    std::fs::write(d.path().join("sn001_apex.toml"), apex_text()).unwrap();
    std::fs::write(d.path().join("README.md"), "not a mock").unwrap();
    std::fs::create_dir(d.path().join("nested.toml")).unwrap();
    let over =
        std::collections::BTreeMap::from([(1u16, toml::from_str("failure_rate = 0.25").unwrap())]);
    let set = MockSet::load_dir_with_overrides(d.path(), &over).unwrap();
    assert_eq!(set.len(), 1);
    assert_eq!(set.get(1).unwrap().failure_rate(), 0.25);
    // A bad file is named by its path.
    std::fs::write(d.path().join("zz_bad.toml"), "[entry]\nnetuid = \"one\"\n").unwrap();
    let e = MockSet::load_dir(d.path()).unwrap_err().to_string();
    assert!(e.contains("zz_bad.toml") && e.contains("netuid"), "{e}");
    // An override for a subnet no file declares is a typo, not a no-op.
    let typo = std::collections::BTreeMap::from([(2u16, toml::Table::new())]);
    std::fs::remove_file(d.path().join("zz_bad.toml")).unwrap();
    assert!(MockSet::load_dir_with_overrides(d.path(), &typo).is_err());
}
