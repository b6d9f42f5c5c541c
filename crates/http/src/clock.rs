//! Wall-clock reads for the shells. Cores never call these: time reaches them as an argument.

use std::time::{SystemTime, UNIX_EPOCH};

fn since_epoch() -> std::time::Duration {
    // A clock before 1970 reads as the epoch itself.
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
}

/// Nanoseconds since the Unix epoch (btauth/1 nonces and freshness).
pub fn now_ns() -> i128 {
    since_epoch().as_nanos() as i128
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    since_epoch().as_millis() as u64
}

/// Seconds since the Unix epoch (API-key quotas).
pub fn now_secs() -> u64 {
    since_epoch().as_secs()
}
