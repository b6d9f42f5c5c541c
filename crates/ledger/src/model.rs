//! The Ledger state (one [`Entry`] per subnet), field TTLs and staleness, and the change records
//! that are the only way the state changes (docs/mechanism.md §5).
//!
//! Pure: no clock, no IO, no randomness. Blocks are arguments.

use crate::pointer::{self, PointerError};
use orchestra_protocol::Hash32;
use orchestra_protocol::ledger::{Entry, Status};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

/// Seconds per block on subtensor.
pub const BLOCK_SECONDS: u64 = 12;

/// How long verified fields stay fresh, in blocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ttl {
    /// Metrics go stale after this many blocks (default 1 day).
    pub metrics_blocks: u64,
    /// Schemas go stale after this many blocks (default 7 days).
    pub schema_blocks: u64,
}

impl Ttl {
    /// TTLs given as durations in seconds, converted at `block_seconds` per block (rounded up, so
    /// a TTL is never shorter than asked).
    pub fn from_seconds(metrics_secs: u64, schema_secs: u64, block_seconds: u64) -> Ttl {
        let b = block_seconds.max(1);
        Ttl {
            metrics_blocks: metrics_secs.div_ceil(b),
            schema_blocks: schema_secs.div_ceil(b),
        }
    }
}

impl Default for Ttl {
    /// docs/mechanism.md §5: metrics 1 day, schemas 7 days, at 12 s per block.
    fn default() -> Self {
        Ttl::from_seconds(86_400, 7 * 86_400, BLOCK_SECONDS)
    }
}

/// Blocks at which an entry's fields were last verified.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct FieldBlocks {
    /// Last block the metrics were verified.
    pub metrics_block: u64,
    /// Last block the schemas (endpoints) were verified.
    pub schema_block: u64,
}

/// Which fields of an entry are past their TTL.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Staleness {
    /// Metrics are past their TTL.
    pub metrics: bool,
    /// Schemas are past their TTL.
    pub schemas: bool,
}

impl Staleness {
    /// Whether any field is stale.
    pub fn any(&self) -> bool {
        self.metrics || self.schemas
    }
}

/// How a valid proposal was credited (docs/mechanism.md §5): the earliest of valid duplicates is
/// `first`, later ones inside the window `confirmation`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Credit {
    /// Earliest valid proposal of this content: full credit, and it changes the Ledger.
    First,
    /// A later valid duplicate inside the window: confirmation credit, no state change.
    Confirmation,
}

/// The proposal kinds, as change records name them (the protocol's one kind tag).
pub use orchestra_protocol::ledger::ProposalKind;

/// One append-only change-log record.
///
/// `path`/`old`/`new` describe the change as one JSON-pointer replacement inside the entry:
/// `new_subnet` uses path `""` (old `null`, new the proposed entry), `metrics_update` `/metrics`,
/// `deprecation` `/status`, and `schema_update` the longest common prefix of its changes (the
/// change's own path when there is one). Replaying records in order from an empty Ledger gives
/// back the exact state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChangeRecord {
    /// Position in the log, from 0.
    pub seq: u64,
    /// Block at which the change was verified (non-decreasing along the log).
    pub block: u64,
    /// The proposal's content id.
    pub proposal_id: Hash32,
    /// Proposal kind.
    pub kind: ProposalKind,
    /// Subnet concerned.
    pub netuid: u16,
    /// JSON pointer inside the entry.
    pub path: String,
    /// Value at `path` before.
    pub old: Value,
    /// Value at `path` after.
    pub new: Value,
    /// Proposer hotkey (ss58).
    pub proposer: String,
    /// First or confirmation.
    pub credit: Credit,
    /// Validators (ss58) that verified it.
    pub verifiers: Vec<String>,
    /// BLAKE3 of the canonical evidence list.
    pub evidence_hash: Hash32,
}

/// Why a record cannot be applied to the state.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApplyError {
    /// `seq` is not the next position.
    #[error("record seq {got} is not the next position {expected}")]
    Seq {
        /// Expected seq.
        expected: u64,
        /// Found seq.
        got: u64,
    },
    /// Blocks must not go backwards along the log.
    #[error("record block {got} is before the previous record's block {previous}")]
    BlockOrder {
        /// Block of the last record.
        previous: u64,
        /// Block of this record.
        got: u64,
    },
    /// `new_subnet` for a subnet already present, or anything else for one that is absent.
    #[error("subnet {netuid}: {reason}")]
    Presence {
        /// The subnet.
        netuid: u16,
        /// What was wrong.
        reason: &'static str,
    },
    /// The Ledger value at `path` differs from the record's `old`.
    #[error("subnet {netuid}: value at {path:?} differs from the record's old value")]
    OldMismatch {
        /// The subnet.
        netuid: u16,
        /// The pointer.
        path: String,
    },
    /// The path is not allowed for this kind, or not a valid pointer.
    #[error("subnet {netuid}: bad path {path:?} for {kind:?}: {reason}")]
    Path {
        /// The subnet.
        netuid: u16,
        /// The pointer.
        path: String,
        /// The record kind.
        kind: ProposalKind,
        /// What was wrong.
        reason: String,
    },
    /// Applying the change does not give a well-formed entry.
    #[error("subnet {netuid}: the change gives a malformed entry: {reason}")]
    Malformed {
        /// The subnet.
        netuid: u16,
        /// What was wrong.
        reason: String,
    },
}

/// The Ledger: one entry per subnet plus when each entry's fields were last verified.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LedgerState {
    /// netuid → entry.
    pub entries: BTreeMap<u16, Entry>,
    /// netuid → when its fields were last verified.
    pub fields: BTreeMap<u16, FieldBlocks>,
}

impl LedgerState {
    /// An empty Ledger.
    pub fn new() -> Self {
        LedgerState::default()
    }

    /// The entry of `netuid`.
    pub fn get(&self, netuid: u16) -> Option<&Entry> {
        self.entries.get(&netuid)
    }

    /// Which fields of `netuid` are past their TTL at `current_block` (`None` if absent).
    pub fn staleness(&self, netuid: u16, current_block: u64, ttl: &Ttl) -> Option<Staleness> {
        self.entries.get(&netuid)?;
        let f = self.fields.get(&netuid).copied().unwrap_or_default();
        Some(Staleness {
            metrics: current_block.saturating_sub(f.metrics_block) > ttl.metrics_blocks,
            schemas: current_block.saturating_sub(f.schema_block) > ttl.schema_blocks,
        })
    }

    /// Non-deprecated subnets with a stale field, most overdue first: the re-probe order.
    pub fn stale_first(&self, current_block: u64, ttl: &Ttl) -> Vec<u16> {
        let mut out: Vec<(u64, u16)> = self
            .entries
            .iter()
            .filter(|(_, e)| e.status != Status::Deprecated)
            .filter_map(|(&n, _)| {
                let f = self.fields.get(&n).copied().unwrap_or_default();
                let over_m = current_block
                    .saturating_sub(f.metrics_block)
                    .saturating_sub(ttl.metrics_blocks);
                let over_s = current_block
                    .saturating_sub(f.schema_block)
                    .saturating_sub(ttl.schema_blocks);
                self.staleness(n, current_block, ttl)
                    .filter(Staleness::any)
                    .map(|_| (over_m.max(over_s), n))
            })
            .collect();
        out.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
        out.into_iter().map(|(_, n)| n).collect()
    }

    /// Check that `record` applies, and return the entry it produces (`None` for a
    /// confirmation, which changes nothing).
    pub fn check(&self, record: &ChangeRecord) -> Result<Option<Entry>, ApplyError> {
        let netuid = record.netuid;
        let current = self.entries.get(&netuid);
        let path_err = |reason: String| ApplyError::Path {
            netuid,
            path: record.path.clone(),
            kind: record.kind,
            reason,
        };
        if record.credit == Credit::Confirmation {
            return match current {
                Some(_) => Ok(None),
                None => Err(ApplyError::Presence {
                    netuid,
                    reason: "confirmation of a subnet that is not in the Ledger",
                }),
            };
        }
        let malformed = |reason: String| ApplyError::Malformed { netuid, reason };
        let mut entry = match (record.kind, current) {
            (ProposalKind::NewSubnet, Some(_)) => {
                return Err(ApplyError::Presence {
                    netuid,
                    reason: "new_subnet for a subnet already in the Ledger",
                });
            }
            (ProposalKind::NewSubnet, None) => {
                if !record.path.is_empty() || !record.old.is_null() {
                    return Err(path_err(
                        "new_subnet must use path \"\" and old null".into(),
                    ));
                }
                let mut e: Entry = serde_json::from_value(record.new.clone())
                    .map_err(|e| malformed(e.to_string()))?;
                if e.netuid != netuid {
                    return Err(malformed("entry netuid differs from the record's".into()));
                }
                e.version = 0;
                e
            }
            (_, None) => {
                return Err(ApplyError::Presence {
                    netuid,
                    reason: "change to a subnet that is not in the Ledger",
                });
            }
            (kind, Some(cur)) => {
                let allowed = match kind {
                    ProposalKind::MetricsUpdate => record.path == "/metrics",
                    ProposalKind::Deprecation => record.path == "/status",
                    _ => pointer::tokens(&record.path)
                        .is_ok_and(|t| t.first().is_some_and(|f| f == "endpoints")),
                };
                if !allowed {
                    return Err(path_err("path outside what this kind may change".into()));
                }
                let mut doc = serde_json::to_value(cur).map_err(|e| malformed(e.to_string()))?;
                let old = pointer::get(&doc, &record.path)
                    .map_err(|e: PointerError| path_err(e.to_string()))?;
                if old != record.old {
                    return Err(ApplyError::OldMismatch {
                        netuid,
                        path: record.path.clone(),
                    });
                }
                pointer::set(&mut doc, &record.path, record.new.clone())
                    .map_err(|e| path_err(e.to_string()))?;
                let e: Entry = serde_json::from_value(doc).map_err(|e| malformed(e.to_string()))?;
                if e.netuid != netuid {
                    return Err(malformed("a change may not move an entry".into()));
                }
                if kind == ProposalKind::Deprecation && e.status != Status::Deprecated {
                    return Err(malformed("deprecation must set status deprecated".into()));
                }
                e
            }
        };
        entry.version = entry.version.saturating_add(1);
        entry.last_verified_block = record.block;
        entry.verified_by = record.verifiers.clone();
        Ok(Some(entry))
    }

    /// Apply a record (after [`LedgerState::check`]); returns the entries it changed.
    pub fn apply(&mut self, record: &ChangeRecord) -> Result<Option<&Entry>, ApplyError> {
        let Some(entry) = self.check(record)? else {
            return Ok(None);
        };
        let f = self.fields.entry(record.netuid).or_default();
        match record.kind {
            ProposalKind::NewSubnet => {
                f.metrics_block = record.block;
                f.schema_block = record.block;
            }
            ProposalKind::SchemaUpdate => f.schema_block = record.block,
            ProposalKind::MetricsUpdate => f.metrics_block = record.block,
            ProposalKind::Deprecation => {}
        }
        self.entries.insert(record.netuid, entry);
        Ok(self.entries.get(&record.netuid))
    }
}

/// Whether `path` lies inside an endpoint (what `schema_update` may change): `/endpoints/<i>/…`.
pub fn is_schema_path(path: &str) -> bool {
    match pointer::tokens(path) {
        Ok(t) => t.len() >= 3 && t[0] == "endpoints" && t[1].parse::<usize>().is_ok(),
        Err(_) => false,
    }
}
