//! `orchestra-sim epoch` end to end: the real binary, JSON in and out.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::{Value, json};
use std::io::Write;
use std::process::{Command, Output, Stdio};

fn sim(args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_orchestra-sim"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn epoch_stdin(input: &Value) -> Output {
    sim(&["epoch", "-"], &input.to_string())
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Two validators (3:1) and two miners; only the required fields plus the ones we vary.
fn scenario(yuma3: bool, liquid: bool) -> Value {
    json!({
        "block": 100,
        "tempo": 100,
        "emission": 1_000_000_000u64,
        "yuma3": yuma3,
        "liquid_alpha": liquid,
        "neurons": [
            {"stake": 3_000_000_000u64, "validator_permit": true, "last_update": 100,
             "weights": [[2, 65535], [3, 20000]]},
            {"stake": 1_000_000_000u64, "validator_permit": true, "last_update": 100,
             "weights": [[3, 65535]]},
            {"stake": 0, "last_update": 100},
            {"stake": 0, "last_update": 100}
        ]
    })
}

/// Runs `epochs` epochs through the binary, feeding permits and bonds back through JSON; checks
/// each stdout byte for byte against the library's output serialised the same way.
fn run_cli(yuma3: bool, liquid: bool, epochs: usize) -> Vec<Value> {
    let mut input = scenario(yuma3, liquid);
    let mut outs = Vec::new();
    for e in 0..epochs {
        if e == 1 {
            input["neurons"][1]["weights"] = json!([[2, 65535]]);
        }
        let o = epoch_stdin(&input);
        assert!(o.status.success(), "{}", stderr(&o));
        let stdout = String::from_utf8(o.stdout).unwrap();

        let lib_in: orchestra_yuma::EpochInput = serde_json::from_value(input.clone()).unwrap();
        let lib_out = orchestra_yuma::run_epoch(&lib_in).unwrap();
        assert_eq!(
            stdout,
            format!("{}\n", serde_json::to_string_pretty(&lib_out).unwrap())
        );

        let out: Value = serde_json::from_str(&stdout).unwrap();
        for i in 0..4 {
            input["neurons"][i]["validator_permit"] = out["validator_permit"][i].clone();
            input["neurons"][i]["bonds"] = out["bonds"][i].clone();
            input["neurons"][i]["last_update"] = json!(100 + 100 * (e + 1));
        }
        input["block"] = json!(100 + 100 * (e + 1));
        outs.push(out);
    }
    outs
}

fn bond(out: &Value, i: usize, j: u64) -> u64 {
    out["bonds"][i]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p[0] == j)
        .map_or(0, |p| p[1].as_u64().unwrap())
}

#[test]
fn original_yuma_bonds_evolve_through_json() {
    let outs = run_cli(false, false, 5);
    let v1: Vec<u64> = outs.iter().map(|o| bond(o, 1, 2)).collect();
    assert_eq!(v1[0], 0);
    for w in v1[1..].windows(2) {
        assert!(w[1] > w[0], "{v1:?}");
    }
    assert!(outs.iter().all(|o| bond(o, 0, 2) == 65535));
}

#[test]
fn yuma3_bonds_evolve_through_json() {
    for liquid in [false, true] {
        let outs = run_cli(true, liquid, 5);
        let b: Vec<u64> = outs.iter().map(|o| bond(o, 0, 2)).collect();
        for w in b.windows(2) {
            assert!(w[1] > w[0], "liquid={liquid}: {b:?}");
        }
    }
}

#[test]
fn output_has_the_documented_shape_in_a_fixed_order() {
    let o = epoch_stdin(&scenario(false, false));
    assert!(o.status.success());
    let text = String::from_utf8(o.stdout).unwrap();
    let keys = [
        "\"active\"",
        "\"validator_permit\"",
        "\"stake\"",
        "\"consensus\"",
        "\"incentive\"",
        "\"dividends\"",
        "\"validator_trust\"",
        "\"bonds\"",
        "\"server_emission\"",
        "\"validator_emission\"",
        "\"emission\"",
        "\"normalized\"",
        "\"active_stake\"",
        "\"combined_emission\"",
    ];
    let mut at = 0;
    for k in keys {
        let pos = text[at..]
            .find(k)
            .unwrap_or_else(|| panic!("{k} missing or out of order"));
        at += pos;
    }
    // Deterministic: a second run prints the same bytes.
    let again = epoch_stdin(&scenario(false, false));
    assert_eq!(text.as_bytes(), &again.stdout[..]);
}

#[test]
fn reads_a_file_too() {
    let dir = std::env::temp_dir().join(format!("orchestra-sim-epoch-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("in.json");
    std::fs::write(&path, scenario(true, true).to_string()).unwrap();
    let o = sim(&["epoch", path.to_str().unwrap()], "");
    assert!(o.status.success(), "{}", stderr(&o));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn uid_out_of_range_names_neuron_and_entry() {
    let mut input = scenario(false, false);
    input["neurons"][1]["weights"] = json!([[3, 1], [9, 5]]);
    let o = epoch_stdin(&input);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("neurons[1].weights[1]: uid 9 out of range (n = 4)"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn bond_uid_out_of_range_and_duplicates_are_errors() {
    let mut input = scenario(false, false);
    input["neurons"][0]["bonds"] = json!([[4, 1]]);
    let o = epoch_stdin(&input);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("neurons[0].bonds[0]: uid 4 out of range (n = 4)"));

    let mut input = scenario(false, false);
    input["neurons"][0]["weights"] = json!([[2, 1], [2, 5]]);
    let o = epoch_stdin(&input);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("neurons[0].weights[1]: uid 2 appears twice"));
}

#[test]
fn misspelt_key_is_an_error_with_its_path() {
    let mut input = scenario(false, false);
    input["neurons"][3]["stak"] = json!(5);
    let o = epoch_stdin(&input);
    assert_eq!(o.status.code(), Some(2));
    let e = stderr(&o);
    assert!(
        e.contains("neurons[3]") && e.contains("unknown field `stak`"),
        "{e}"
    );
    assert!(e.contains("line 1 column"), "{e}");

    let mut input = scenario(false, false);
    input["kapa"] = json!(1);
    let o = epoch_stdin(&input);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("unknown field `kapa`"));
}

#[test]
fn wrong_types_and_missing_fields_are_errors() {
    let mut input = scenario(false, false);
    input["neurons"][2]["weights"] = json!([[70000, 1]]);
    let o = epoch_stdin(&input);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("neurons[2].weights[0]"),
        "{}",
        stderr(&o)
    );

    let mut input = scenario(false, false);
    input.as_object_mut().unwrap().remove("emission");
    let o = epoch_stdin(&input);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("missing field `emission`"));

    let o = sim(&["epoch", "-"], "{\"block\": 1,\n \"emission\": }");
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("line 2 column"), "{}", stderr(&o));
}

#[test]
fn empty_subnet_is_fine() {
    let o = epoch_stdin(&json!({"block": 5, "emission": 10, "neurons": []}));
    assert!(o.status.success(), "{}", stderr(&o));
    let out: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(out["emission"], json!([]));
}

#[test]
fn missing_file_exits_2() {
    let o = sim(&["epoch", "/nonexistent/epoch.json"], "");
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("/nonexistent/epoch.json"));
}

#[test]
fn the_readme_example_runs() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/epoch.json");
    let o = sim(&["epoch", path], "");
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out: Value = serde_json::from_slice(&o.stdout).unwrap();
    // Validator 2 splits its weight: dividends 0.25, 0.25, 0.5 (YUMA.md), as u16.
    assert_eq!(out["dividends"], json!([16383, 16383, 32767, 0, 0]));
}
