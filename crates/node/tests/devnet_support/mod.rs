//! Shared by the devnet tests: the binaries under test and polling with the devnet's logs on
//! timeout.

use orchestra_node::devnet::{Binaries, Devnet};
use std::time::{Duration, Instant};

/// The node binaries Cargo built for this test.
pub fn binaries() -> Binaries {
    Binaries {
        validator: env!("CARGO_BIN_EXE_orchestra-validator").into(),
        miner: env!("CARGO_BIN_EXE_orchestra-miner").into(),
        mock_subnet: env!("CARGO_BIN_EXE_orchestra-mock-subnet").into(),
    }
}

/// Poll `f` every 250 ms until it returns `Some`, or panic with `what` and the logs.
pub async fn wait_for<T, F, Fut>(devnet: &Devnet, what: &str, timeout: Duration, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(x) = f().await {
            return x;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}\n{}",
            devnet.logs(25)
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}
