//! `orchestra-ledger serve` (the real binary) to the official Python MCP and A2A SDKs.
//!
//! MCP: the client lists the tools, calls each (the SDK checks every result against the tool's
//! outputSchema), verifies `get_entry`'s inclusion proof and the signed head offline, and gets a
//! clear tool error for bad input to every tool; a client of an earlier revision is served; a
//! request without a credential is refused. A2A: the SDK parses the card, connects through the
//! interface it names, runs the skills with `SendMessage`, verifies the proof, and sees bad
//! calls refused with a reason.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
#[path = "support/mcp_agent.rs"]
mod mcp_agent;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_orchestra-ledger");

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn run(args: &[&str]) -> String {
    let out = Command::new(BIN).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn python_mcp_and_a2a_agents_use_every_skill_and_verify_a_proof() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("ledger.db");
    let db = db.to_str().unwrap();
    let mocks = concat!(env!("CARGO_MANIFEST_DIR"), "/../../mocks/subnets");
    run(&["seed", "--db", db, "--mocks", mocks, "--hotkey", "//Alice"]);
    let key = run(&["keys", "create", "--db", db, "--tier", "production"]);
    let key = key
        .lines()
        .find(|l| l.starts_with("olk_"))
        .unwrap()
        .to_string();
    let mut child = Command::new(BIN)
        .args([
            "serve",
            "--db",
            db,
            "--hotkey",
            "//Alice",
            "--listen",
            "127.0.0.1:0",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let _server = Server(child);
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).unwrap();
    let addr = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap()
        .to_string();

    let summary = mcp_agent::run_mcp_client(&format!("http://{addr}/mcp"), &key, "ledger", None);
    assert_eq!(
        summary["tools"],
        serde_json::json!([
            "compare_subnets",
            "find_subnets",
            "get_entry",
            "get_head",
            "list_capabilities"
        ])
    );
    for tool in [
        "list_capabilities",
        "find_subnets",
        "get_entry",
        "compare_subnets",
        "get_head",
    ] {
        assert!(
            summary["calls"][tool]
                .as_array()
                .is_some_and(|c| !c.is_empty()),
            "{tool}"
        );
        assert!(
            summary["bad_input"][tool].as_u64().unwrap_or(0) >= 1,
            "{tool}"
        );
    }
    assert!(summary["inclusion_proof"]["seq"].is_u64());

    // The same skills over A2A 1.0, with the official Python A2A SDK and the card it reads.
    let a2a = mcp_agent::run_a2a_client(&format!("http://{addr}"), &key, "ledger");
    assert_eq!(a2a["skills"], summary["tools"]);
    assert!(a2a["inclusion_proof"]["seq"].is_u64(), "{a2a}");
    assert_eq!(a2a["refused"].as_array().map(Vec::len), Some(3), "{a2a}");

    // A client of an earlier revision (the initialize handshake, 2025-06-18) is served too.
    let json_rpc = |body: &str| {
        let headers = [
            ("Content-Type", "application/json".to_string()),
            ("Accept", "application/json, text/event-stream".to_string()),
            ("Authorization", format!("Bearer {key}")),
            ("MCP-Protocol-Version", "2025-06-18".to_string()),
        ];
        common::http(
            addr.parse().unwrap(),
            "POST",
            "/mcp",
            &headers,
            body.as_bytes(),
        )
        .unwrap()
    };
    let init = json_rpc(
        r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"#,
    );
    assert_eq!(init.status, 200, "{}", String::from_utf8_lossy(&init.body));
    let init = init.json();
    assert_eq!(init["result"]["protocolVersion"], "2025-06-18", "{init}");
    assert!(
        init["result"]["capabilities"]["tools"].is_object(),
        "{init}"
    );
    let listed = json_rpc(r#"{"jsonrpc":"2.0","id":2,"method":"tools/list"}"#).json();
    assert_eq!(
        listed["result"]["tools"].as_array().map(Vec::len),
        Some(5),
        "{listed}"
    );
    let unknown = json_rpc(
        r#"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"nope","arguments":{}}}"#,
    )
    .json();
    assert_eq!(unknown["error"]["code"], -32602, "{unknown}");
    let r = json_rpc("{not json");
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["error"]["code"], -32700);
    assert!(
        r.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("not JSON")
    );
    let r = json_rpc(
        r#"{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"get_entry","arguments":"x"}}"#,
    );
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["error"]["code"], -32602);
    assert!(
        r.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("arguments")
    );

    // No credential, no tools: the MCP endpoint sits behind the API's authentication.
    let body = br#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#;
    let headers = [
        ("Content-Type", "application/json".to_string()),
        ("Accept", "application/json, text/event-stream".to_string()),
    ];
    let r = common::http(addr.parse().unwrap(), "POST", "/mcp", &headers, body).unwrap();
    assert_eq!(r.status, 401);
    assert_eq!(r.json()["error"], "unauthenticated");
}
