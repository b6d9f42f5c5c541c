//! The graceful shutdown signal of every server binary.

/// The environment variable a supervisor (`orchestra-devnet`) sets to its own pid when it starts
/// a server: [`shutdown_signal`] then also resolves once that process is no longer this one's
/// parent, so a supervisor killed with SIGKILL leaves no children behind.
pub const PARENT_PID_ENV: &str = "ORCHESTRA_PARENT_PID";

/// Resolves on Ctrl-C or SIGTERM (what systemd and container runtimes send), or when the
/// supervisor named by [`PARENT_PID_ENV`] has gone.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
        () = parent_gone() => tracing::warn!("the supervising process has gone: shutting down"),
    }
}

/// Resolves once this process's parent is no longer the pid in [`PARENT_PID_ENV`] (it died and
/// this process was re-parented); never when the variable is unset.
async fn parent_gone() {
    #[cfg(unix)]
    if let Some(pid) = std::env::var(PARENT_PID_ENV)
        .ok()
        .and_then(|v| v.trim().parse::<u32>().ok())
    {
        let mut tick = tokio::time::interval(std::time::Duration::from_millis(250));
        loop {
            tick.tick().await;
            if std::os::unix::process::parent_id() != pid {
                return;
            }
        }
    }
    std::future::pending::<()>().await
}
