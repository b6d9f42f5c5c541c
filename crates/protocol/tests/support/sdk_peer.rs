//! The reference Python SDK (`bittensor==11.3.0`) as a test peer, shared by the interop tests of
//! this crate and of `orchestra-node` (which include this file by path).
//!
//! The SDK runs in the venv named by `ORCHESTRA_SDK_PYTHON`, or one `scripts/py-venv.sh` creates
//! under the target dir; when neither can be had the tests fail, never skip.

use serde_json::Value;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

/// The repository root.
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The SDK venv's python: `ORCHESTRA_SDK_PYTHON` if set (it must exist), else created by
/// `scripts/py-venv.sh` (needs python3 and PyPI).
pub fn sdk_python() -> PathBuf {
    if let Some(p) = std::env::var_os("ORCHESTRA_SDK_PYTHON") {
        let p = PathBuf::from(p);
        assert!(
            p.exists(),
            "ORCHESTRA_SDK_PYTHON={} does not exist; create the venv with scripts/py-venv.sh DIR",
            p.display()
        );
        return p;
    }
    let venv = Path::new(env!("CARGO_TARGET_TMPDIR")).join("venv-bittensor-11.3.0");
    let out = Command::new("bash")
        .arg(workspace().join("scripts/py-venv.sh"))
        .arg(&venv)
        .output()
        .expect("run scripts/py-venv.sh");
    assert!(
        out.status.success(),
        "could not create the bittensor==11.3.0 venv (needs python3 and PyPI; or set \
         ORCHESTRA_SDK_PYTHON):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    PathBuf::from(String::from_utf8(out.stdout).unwrap().trim())
}

/// The Python btauth peer (`crates/protocol/tests/python/btauth_peer.py`), answering one JSON
/// line per command.
pub struct Peer {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl Peer {
    /// Start the peer in the SDK venv.
    pub fn start() -> Peer {
        let script = workspace().join("crates/protocol/tests/python/btauth_peer.py");
        let mut child = Command::new(sdk_python())
            .arg(script)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start the Python btauth peer");
        let stdin = child.stdin.take().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        Peer {
            child,
            stdin,
            stdout,
        }
    }

    /// Send one command, get its answer.
    pub fn call(&mut self, cmd: Value) -> Value {
        writeln!(self.stdin, "{cmd}").unwrap();
        let mut line = String::new();
        self.stdout.read_line(&mut line).unwrap();
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("peer said {line:?}: {e}"))
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
