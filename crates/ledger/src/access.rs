//! API keys, tiers, rate limits and usage metering, kept in memory off the SQLite hot path.
//!
//! - Keys: only `BLAKE3(key)` is stored; the in-memory table maps that hash to the key's state.
//!   It is refreshed from the store periodically, so `keys create` / `keys revoke` run against a
//!   live server take effect within one refresh interval.
//! - Limits: `free` keys get `free_per_minute` requests per UTC minute (fixed window); `developer`
//!   keys `developer_per_month` lookups per UTC calendar month; `production` keys are unlimited.
//!   Every authenticated `/v1` request with a key counts as one lookup; refused requests do not.
//! - Metering: counts are taken in memory and flushed to the store in batches ([`Access::drain`]
//!   then `Store::add_usage`, one transaction per flush). The trade-off: a crash loses at most one
//!   flush interval of *usage counts* — always in the customer's favour (under-billing, a little
//!   extra quota) — and never any Ledger data, which is committed synchronously before it is
//!   acknowledged. A graceful shutdown flushes.
//!
//! Time is an argument (`now_secs`), so the rules are testable without a clock.

use crate::store::{ApiKey, Tier};
use orchestra_protocol::Hash32;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, RwLock};

/// Limits per tier.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Requests per minute for `free` keys.
    pub free_per_minute: u64,
    /// Lookups per calendar month for `developer` keys.
    pub developer_per_month: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            free_per_minute: 60,
            developer_per_month: 1_000,
        }
    }
}

/// BLAKE3 of an API key's text: what is stored and looked up.
pub fn hash_key(key: &str) -> Hash32 {
    blake3::hash(key.as_bytes()).into()
}

/// A fresh random key: `olk_` + 64 hex digits (256 bits).
pub fn generate_key() -> String {
    let bytes: [u8; 32] = rand::random();
    format!("olk_{}", hex::encode(bytes))
}

/// Days since 1970-01-01 → (year, month), proleptic Gregorian (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m)
}

/// (year, month) → days since 1970-01-01 of its first day.
fn days_from_civil(y: i64, m: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The metering period (`YYYY-MM`, UTC) of `now_secs`, and the seconds until it ends.
pub fn month_period(now_secs: u64) -> (String, u64) {
    let days = (now_secs / 86_400) as i64;
    let (y, m) = civil_from_days(days);
    let (ny, nm) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
    let next = days_from_civil(ny, nm) as u64 * 86_400;
    (
        format!("{y:04}-{m:02}"),
        next.saturating_sub(now_secs).max(1),
    )
}

/// Why a key was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Denied {
    /// No such key.
    Unknown,
    /// The key was revoked.
    Revoked,
    /// Over quota; retry after this many seconds.
    OverQuota {
        /// Seconds until the window resets.
        retry_after: u64,
        /// The tier's limit.
        limit: u64,
        /// Which window (`minute` or `month`).
        window: &'static str,
    },
}

/// An authenticated key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyCaller {
    /// Key id.
    pub id: i64,
    /// Tier.
    pub tier: Tier,
}

#[derive(Debug, Default)]
struct Counters {
    minute: u64,
    minute_count: u64,
    period: String,
    month_count: u64,
    /// Not yet flushed: period → count.
    pending: BTreeMap<String, u64>,
}

#[derive(Debug)]
struct KeyState {
    id: i64,
    tier: Tier,
    revoked: bool,
    counters: Mutex<Counters>,
}

/// The in-memory key table and meters.
#[derive(Debug, Default)]
pub struct Access {
    limits: Limits,
    keys: RwLock<HashMap<Hash32, Arc<KeyState>>>,
}

impl Access {
    /// An empty table with these limits.
    pub fn new(limits: Limits) -> Self {
        Access {
            limits,
            keys: RwLock::new(HashMap::new()),
        }
    }

    /// The limits.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Load or refresh keys from the store. `usage(id, period)` gives stored usage, used to seed
    /// the month counter of keys seen for the first time.
    pub fn refresh(&self, keys: &[ApiKey], now_secs: u64, usage: impl Fn(i64, &str) -> u64) {
        let (period, _) = month_period(now_secs);
        let mut table = self.keys.write().unwrap_or_else(|e| e.into_inner());
        for k in keys {
            let revoked = k.revoked_at.is_some();
            match table.get(&k.key_hash) {
                Some(s) if s.revoked == revoked && s.tier == k.tier => {}
                existing => {
                    // Carry counters over (a revocation must not reset metering).
                    let counters = match existing {
                        Some(s) => {
                            let c = s.counters.lock().unwrap_or_else(|e| e.into_inner());
                            Counters {
                                minute: c.minute,
                                minute_count: c.minute_count,
                                period: c.period.clone(),
                                month_count: c.month_count,
                                pending: c.pending.clone(),
                            }
                        }
                        None => Counters {
                            period: period.clone(),
                            month_count: usage(k.id, &period),
                            ..Counters::default()
                        },
                    };
                    if let Some(s) = existing {
                        // Its pending counts moved to the new state; don't flush them twice.
                        s.counters
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .pending
                            .clear();
                    }
                    table.insert(
                        k.key_hash,
                        Arc::new(KeyState {
                            id: k.id,
                            tier: k.tier,
                            revoked,
                            counters: Mutex::new(counters),
                        }),
                    );
                }
            }
        }
    }

    /// Authenticate a bearer key and count the request, or say why not.
    pub fn admit(&self, key: &str, now_secs: u64) -> Result<KeyCaller, Denied> {
        let h = hash_key(key);
        let state = {
            let table = self.keys.read().unwrap_or_else(|e| e.into_inner());
            table.get(&h).cloned().ok_or(Denied::Unknown)?
        };
        if state.revoked {
            return Err(Denied::Revoked);
        }
        let mut c = state.counters.lock().unwrap_or_else(|e| e.into_inner());
        let minute = now_secs / 60;
        if c.minute != minute {
            c.minute = minute;
            c.minute_count = 0;
        }
        let (period, month_left) = month_period(now_secs);
        if c.period != period {
            c.period = period.clone();
            c.month_count = 0;
        }
        match state.tier {
            Tier::Free if c.minute_count >= self.limits.free_per_minute => {
                return Err(Denied::OverQuota {
                    retry_after: 60 - now_secs % 60,
                    limit: self.limits.free_per_minute,
                    window: "minute",
                });
            }
            Tier::Developer if c.month_count >= self.limits.developer_per_month => {
                return Err(Denied::OverQuota {
                    retry_after: month_left,
                    limit: self.limits.developer_per_month,
                    window: "month",
                });
            }
            _ => {}
        }
        c.minute_count += 1;
        c.month_count += 1;
        *c.pending.entry(period).or_default() += 1;
        Ok(KeyCaller {
            id: state.id,
            tier: state.tier,
        })
    }

    /// Take every unflushed count as `(key id, period, count)`.
    pub fn drain(&self) -> Vec<(i64, String, u64)> {
        let table = self.keys.read().unwrap_or_else(|e| e.into_inner());
        let mut out = Vec::new();
        for s in table.values() {
            let mut c = s.counters.lock().unwrap_or_else(|e| e.into_inner());
            for (p, n) in std::mem::take(&mut c.pending) {
                out.push((s.id, p, n));
            }
        }
        out
    }

    /// Put counts back after a failed flush, so they are retried, not lost.
    pub fn restore(&self, deltas: Vec<(i64, String, u64)>) {
        let table = self.keys.read().unwrap_or_else(|e| e.into_inner());
        for (id, p, n) in deltas {
            if let Some(s) = table.values().find(|s| s.id == id) {
                let mut c = s.counters.lock().unwrap_or_else(|e| e.into_inner());
                *c.pending.entry(p).or_default() += n;
            }
        }
    }
}

/// The refusal a denied key answers with, in every server (statuses: `orchestra-http`'s
/// table).
impl From<Denied> for orchestra_http::Refusal {
    fn from(d: Denied) -> Self {
        match d {
            Denied::Unknown => orchestra_http::Refusal::UnknownKey,
            Denied::Revoked => orchestra_http::Refusal::RevokedKey,
            Denied::OverQuota {
                retry_after,
                limit,
                window,
            } => orchestra_http::Refusal::OverQuota {
                retry_after_s: retry_after,
                limit,
                window,
            },
        }
    }
}

/// The Ledger's key table behind `orchestra-http`'s authentication: API-key requests to the
/// Ledger API, and to routes an embedding node serves next to it, are admitted and metered here.
impl orchestra_http::ApiKeys for Access {
    fn admit_key(
        &self,
        key: &str,
        now_secs: u64,
    ) -> Result<orchestra_http::KeyCaller, orchestra_http::Refusal> {
        self.admit(key, now_secs)
            .map(|k| orchestra_http::KeyCaller {
                id: k.id,
                tier: k.tier.name(),
            })
            .map_err(orchestra_http::Refusal::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(id: i64, text: &str, tier: Tier, revoked: bool) -> ApiKey {
        ApiKey {
            id,
            key_hash: hash_key(text),
            tier,
            label: None,
            created_at: 0,
            revoked_at: revoked.then_some(1),
        }
    }

    #[test]
    fn months_and_periods() {
        // 2026-11-25T16:00:00Z
        let t = 1_795_564_800 + 16 * 3600;
        let (p, left) = month_period(t);
        assert_eq!(p, "2026-11");
        assert_eq!(t + left, 1_796_083_200); // 2026-12-01T00:00:00Z
        assert_eq!(month_period(1_796_083_200).0, "2026-12");
        assert_eq!(month_period(0).0, "1970-01");
        assert_eq!(month_period(951_782_400).0, "2000-02"); // 2000-02-29
    }

    #[test]
    fn tiers_limit_and_meter() {
        let a = Access::new(Limits {
            free_per_minute: 2,
            developer_per_month: 3,
        });
        a.refresh(
            &[
                key(1, "f", Tier::Free, false),
                key(2, "d", Tier::Developer, false),
                key(3, "p", Tier::Production, false),
                key(4, "r", Tier::Free, true),
            ],
            120,
            |id, _| if id == 2 { 1 } else { 0 },
        );
        assert!(a.admit("f", 120).is_ok());
        assert!(a.admit("f", 121).is_ok());
        assert!(matches!(
            a.admit("f", 150),
            Err(Denied::OverQuota {
                retry_after: 30,
                ..
            })
        ));
        assert!(a.admit("f", 180).is_ok(), "new minute");
        assert!(a.admit("d", 120).is_ok());
        assert!(a.admit("d", 120).is_ok());
        assert!(matches!(
            a.admit("d", 120),
            Err(Denied::OverQuota {
                window: "month",
                ..
            })
        ));
        for _ in 0..100 {
            assert!(a.admit("p", 120).is_ok());
        }
        assert_eq!(a.admit("r", 120), Err(Denied::Revoked));
        assert_eq!(a.admit("nope", 120), Err(Denied::Unknown));
        let mut d = a.drain();
        d.sort();
        assert_eq!(
            d,
            vec![
                (1, "1970-01".into(), 3),
                (2, "1970-01".into(), 2),
                (3, "1970-01".into(), 100)
            ]
        );
        assert!(a.drain().is_empty());
        a.restore(d);
        assert_eq!(a.drain().len(), 3);
        // Revocation picked up on refresh, without losing counts.
        a.refresh(&[key(1, "f", Tier::Free, true)], 200, |_, _| 0);
        assert_eq!(a.admit("f", 200), Err(Denied::Revoked));
    }
}
