//! The official Python MCP and A2A SDKs as test clients, shared by this crate's agent test and
//! the node's devnet test (which includes this file by path).
//!
//! It runs in the venv named by `ORCHESTRA_MCP_PYTHON`, or one `scripts/py-venv.sh` creates
//! under the target dir with [`PINS`]; when neither can be had the tests fail, never skip.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The client's packages: the MCP SDK and what the script verifies proofs with.
pub const PINS: &[&str] = &[
    "mcp==2.3.0",
    "a2a-sdk==1.3.0",
    "blake3==1.0.11",
    "rfc8785==0.1.4",
    "py-sr25519-bindings==0.2.4",
];

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The venv's python: `ORCHESTRA_MCP_PYTHON` if set (it must exist), else created.
pub fn mcp_python() -> PathBuf {
    if let Some(p) = std::env::var_os("ORCHESTRA_MCP_PYTHON") {
        let p = PathBuf::from(p);
        assert!(
            p.exists(),
            "ORCHESTRA_MCP_PYTHON={} does not exist; create the venv with scripts/py-venv.sh DIR {}",
            p.display(),
            PINS.join(" ")
        );
        return p;
    }
    let venv = Path::new(env!("CARGO_TARGET_TMPDIR")).join("venv-agents");
    let out = Command::new("bash")
        .arg(workspace().join("scripts/py-venv.sh"))
        .arg(&venv)
        .args(PINS)
        .output()
        .expect("run scripts/py-venv.sh");
    assert!(
        out.status.success(),
        "could not create the MCP client venv (needs python3 and PyPI; or set \
         ORCHESTRA_MCP_PYTHON):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    PathBuf::from(String::from_utf8(out.stdout).unwrap().trim())
}

/// Run `support/mcp_client.py` against `url` (`ledger` or `validator` mode); its JSON summary.
pub fn run_mcp_client(url: &str, api_key: &str, mode: &str, objective_kind: Option<&str>) -> Value {
    run_script("mcp_client.py", &[url, api_key, mode], objective_kind)
}

/// Run `support/a2a_client.py` against the server at `base_url`; its JSON summary.
pub fn run_a2a_client(base_url: &str, api_key: &str, mode: &str) -> Value {
    run_script("a2a_client.py", &[base_url, api_key, mode], None)
}

fn run_script(name: &str, args: &[&str], extra: Option<&str>) -> Value {
    let script = workspace().join("crates/ledger/tests/support").join(name);
    let out = Command::new(mcp_python())
        .arg(script)
        .args(args)
        .args(extra)
        .output()
        .unwrap_or_else(|e| panic!("run {name}: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{name} failed:\nstdout: {stdout}\nstderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = stdout.lines().last().unwrap_or_default();
    serde_json::from_str(line).unwrap_or_else(|e| panic!("summary {line:?}: {e}"))
}
