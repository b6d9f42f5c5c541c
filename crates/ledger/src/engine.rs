//! The pure Ledger engine: state, Merkle tree and head, plus the duplicate book that decides
//! first vs confirmation credit. A simulator drives it directly; the node wraps it with a store.

use crate::log::{TreeHead, record_leaf_hash};
use crate::merkle::MerkleTree;
use crate::model::{ApplyError, ChangeRecord, Credit, LedgerState, ProposalKind};
use crate::pointer;
use crate::verify::{ProbeSet, RejectReason, Verdict, VerifyParams, verify};
use orchestra_protocol::ledger::{Entry, Proposal, ProposalChange, Status};
use orchestra_protocol::{Hash32, hash_canonical};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::HashMap;

/// What happened to one proposal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Outcome {
    /// Valid: credited as first or confirmation.
    Accepted {
        /// First or confirmation.
        credit: Credit,
    },
    /// Invalid or unjudgeable.
    Rejected {
        /// Why.
        reason: RejectReason,
        /// Whether the proposer is slashed (docs/mechanism.md §6: 0.5 unit).
        slashed: bool,
    },
}

/// Why the engine could not process a proposal or record (never the proposer's fault).
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// A record does not apply.
    #[error(transparent)]
    Apply(#[from] ApplyError),
    /// A value could not be canonicalised for hashing.
    #[error(transparent)]
    Canonical(#[from] orchestra_protocol::hash::CanonicalError),
}

/// A saved position of a [`Ledger`], see [`Ledger::checkpoint`].
#[derive(Debug, Clone)]
pub struct Checkpoint {
    state: LedgerState,
    size: u64,
    last_block: u64,
}

/// A first acceptance remembered for the window, to credit later duplicates.
#[derive(Debug, Clone)]
struct FirstSeen {
    arrival_block: u64,
    /// The entry before the first was applied: duplicates are judged against what the first saw.
    base: Option<Entry>,
    path: String,
    old: Value,
    new: Value,
    kind: ProposalKind,
}

/// State, log commitment and duplicate book of one validator's Ledger replica.
#[derive(Debug, Clone, Default)]
pub struct Ledger {
    state: LedgerState,
    tree: MerkleTree,
    last_block: u64,
    firsts: HashMap<Hash32, FirstSeen>,
    /// Evidence hash → (proposer, block) of every record appended in the last
    /// `evidence_memory_blocks`, local or a peer's: what the copied-evidence check looks up.
    evidence: HashMap<Hash32, (String, u64)>,
    evidence_pruned_at: u64,
    params: VerifyParams,
}

impl Ledger {
    /// An empty Ledger with the given verification parameters.
    pub fn new(params: VerifyParams) -> Self {
        Ledger {
            params,
            ..Ledger::default()
        }
    }

    /// A Ledger holding `entries` as of `block`, each recorded as a `new_subnet` change first
    /// verified by `validator`: how a validator's replica (or a devnet's) starts out.
    pub fn seeded<'a>(
        params: VerifyParams,
        entries: impl IntoIterator<Item = &'a Entry>,
        validator: &str,
        block: u64,
    ) -> Result<Self, EngineError> {
        let mut ledger = Ledger::new(params);
        let records = entries
            .into_iter()
            .enumerate()
            .map(|(seq, entry)| {
                crate::mocks::seed_change(entry, validator, block)
                    .map(|c| c.into_record(seq as u64))
            })
            .collect::<Result<Vec<_>, _>>()?;
        ledger.append_all(&records)?;
        Ok(ledger)
    }

    /// Rebuild from persisted parts (state, leaf hashes, block of the last record). The duplicate
    /// and evidence books start empty: a restarted replica forgets what it had not logged.
    pub fn from_parts(
        state: LedgerState,
        leaves: Vec<Hash32>,
        last_block: u64,
        params: VerifyParams,
    ) -> Self {
        Ledger {
            state,
            tree: MerkleTree::from_leaf_hashes(leaves),
            last_block,
            firsts: HashMap::new(),
            evidence: HashMap::new(),
            evidence_pruned_at: 0,
            params,
        }
    }

    /// Replay records from empty: the exact state and head they commit to.
    pub fn replay<'a>(
        records: impl IntoIterator<Item = &'a ChangeRecord>,
        params: VerifyParams,
    ) -> Result<Ledger, EngineError> {
        let mut l = Ledger::new(params);
        for r in records {
            l.append(r)?;
        }
        Ok(l)
    }

    /// The entries.
    pub fn state(&self) -> &LedgerState {
        &self.state
    }

    /// The Merkle tree of the log.
    pub fn tree(&self) -> &MerkleTree {
        &self.tree
    }

    /// The current (unsigned) head.
    pub fn head(&self) -> TreeHead {
        TreeHead {
            tree_size: self.tree.size(),
            root: self.tree.root(),
            block: self.last_block,
        }
    }

    /// Verification parameters.
    pub fn params(&self) -> &VerifyParams {
        &self.params
    }

    /// Replace the verification parameters (they judge proposals processed from now on).
    pub fn set_params(&mut self, params: VerifyParams) {
        self.params = params;
    }

    /// Validate a record against the current state and position without changing anything.
    pub fn check(&self, record: &ChangeRecord) -> Result<(), ApplyError> {
        if record.seq != self.tree.size() {
            return Err(ApplyError::Seq {
                expected: self.tree.size(),
                got: record.seq,
            });
        }
        if record.block < self.last_block {
            return Err(ApplyError::BlockOrder {
                previous: self.last_block,
                got: record.block,
            });
        }
        self.state.check(record).map(|_| ())
    }

    /// Append a record: apply it to the state and add its leaf. All or nothing.
    pub fn append(&mut self, record: &ChangeRecord) -> Result<Hash32, EngineError> {
        self.check(record)?;
        let leaf = record_leaf_hash(record)?;
        self.state.apply(record)?;
        self.tree.push(leaf);
        self.last_block = record.block;
        if record.evidence_hash != *NO_EVIDENCE {
            self.evidence
                .entry(record.evidence_hash)
                .or_insert_with(|| (record.proposer.clone(), record.block));
        }
        Ok(leaf)
    }

    /// Remember the current state and size, to undo appends whose storage failed.
    pub fn checkpoint(&self) -> Checkpoint {
        Checkpoint {
            state: self.state.clone(),
            size: self.tree.size(),
            last_block: self.last_block,
        }
    }

    /// Undo every append since `cp` (the duplicate book is kept: it only grants confirmations
    /// for content that was accepted, and a re-append of the same record restores that).
    pub fn restore(&mut self, cp: Checkpoint) {
        self.state = cp.state;
        self.tree.truncate(cp.size);
        self.last_block = cp.last_block;
    }

    /// Append several records, all or none.
    pub fn append_all(&mut self, records: &[ChangeRecord]) -> Result<Vec<Hash32>, EngineError> {
        let cp = self.checkpoint();
        let mut leaves = Vec::with_capacity(records.len());
        for r in records {
            match self.append(r) {
                Ok(l) => leaves.push(l),
                Err(e) => {
                    self.restore(cp);
                    return Err(e);
                }
            }
        }
        Ok(leaves)
    }

    /// Verify a proposal with the caller's probes, credit it against duplicates in the window,
    /// and on acceptance append the change record. `arrival_block` is when the proposal reached
    /// this validator; `current_block` when it is verified (and the record's block).
    pub fn process(
        &mut self,
        proposal: &Proposal,
        proposer: &str,
        probes: &ProbeSet,
        current_block: u64,
        arrival_block: u64,
        verifiers: &[String],
    ) -> Result<(Outcome, Option<ChangeRecord>), EngineError> {
        let window = self.params.window_blocks;
        // Forget firsts whose window closed: later duplicates are no longer confirmations.
        self.firsts
            .retain(|_, f| current_block.saturating_sub(f.arrival_block) <= 2 * window + 1);
        let id = proposal.content_id()?;
        let block = current_block.max(self.last_block);
        let evidence_hash = hash_canonical(&proposal.evidence)?;
        if self.params.reject_copied_evidence {
            let memory = self.params.evidence_memory_blocks;
            if current_block > self.evidence_pruned_at {
                self.evidence
                    .retain(|_, (_, at)| current_block.saturating_sub(*at) <= memory);
                self.evidence_pruned_at = current_block;
            }
            // Probes carry the prober's own request hashes and timings, so two miners'
            // independent evidence never coincides; the same evidence under another proposer is
            // a copy of what that proposer saw (a confirmation farmer's), not a confirmation.
            if let Some((original, _)) = self.evidence.get(&evidence_hash)
                && *original != proposer
                && evidence_hash != *NO_EVIDENCE
            {
                let original = original.clone();
                return Ok((reject(RejectReason::CopiedEvidence { original }), None));
            }
        }
        if let Some(first) = self.firsts.get(&id).cloned() {
            if arrival_block > first.arrival_block + window {
                return Ok((reject(RejectReason::AlreadyApplied), None));
            }
            let verdict = verify(
                first.base.as_ref(),
                proposal,
                probes,
                current_block,
                arrival_block,
                &self.params,
            );
            if let Verdict::Rejected { reason } = verdict {
                return Ok((reject(reason), None));
            }
            let record = ChangeRecord {
                seq: self.tree.size(),
                block,
                proposal_id: id,
                kind: first.kind,
                netuid: proposal.netuid,
                path: first.path,
                old: first.old,
                new: first.new,
                proposer: proposer.to_string(),
                credit: Credit::Confirmation,
                verifiers: verifiers.to_vec(),
                evidence_hash,
            };
            self.append(&record)?;
            return Ok((
                Outcome::Accepted {
                    credit: Credit::Confirmation,
                },
                Some(record),
            ));
        }
        let current = self.state.get(proposal.netuid).cloned();
        let verdict = verify(
            current.as_ref(),
            proposal,
            probes,
            current_block,
            arrival_block,
            &self.params,
        );
        if let Verdict::Rejected { reason } = verdict {
            return Ok((reject(reason), None));
        }
        let (kind, path, old, new) = match describe(current.as_ref(), proposal) {
            Ok(d) => d,
            Err(reason) => return Ok((reject(reason), None)),
        };
        let record = ChangeRecord {
            seq: self.tree.size(),
            block,
            proposal_id: id,
            kind,
            netuid: proposal.netuid,
            path: path.clone(),
            old: old.clone(),
            new: new.clone(),
            proposer: proposer.to_string(),
            credit: Credit::First,
            verifiers: verifiers.to_vec(),
            evidence_hash,
        };
        if let Err(e) = self.state.check(&record) {
            // The rules passed but the record would not apply: treat as malformed, not as a bug.
            return Ok((reject(RejectReason::Malformed(e.to_string())), None));
        }
        self.append(&record)?;
        self.firsts.insert(
            id,
            FirstSeen {
                arrival_block,
                base: current,
                path,
                old,
                new,
                kind,
            },
        );
        Ok((
            Outcome::Accepted {
                credit: Credit::First,
            },
            Some(record),
        ))
    }
}

/// Hash of an empty evidence list: carries nothing to copy, so the copied-evidence check skips it.
static NO_EVIDENCE: std::sync::LazyLock<Hash32> = std::sync::LazyLock::new(|| {
    hash_canonical(&Vec::<orchestra_protocol::ledger::ProbeEvidence>::new())
        .unwrap_or(Hash32([0; 32]))
});

fn reject(reason: RejectReason) -> Outcome {
    Outcome::Rejected {
        slashed: reason.slashable(),
        reason,
    }
}

/// The single-pointer description (kind, path, old, new) of an accepted proposal.
fn describe(
    current: Option<&Entry>,
    proposal: &Proposal,
) -> Result<(ProposalKind, String, Value, Value), RejectReason> {
    let to_value = |v: &dyn erased::Ser| {
        v.value()
            .map_err(|e| RejectReason::Malformed(e.to_string()))
    };
    match (&proposal.change, current) {
        (ProposalChange::NewSubnet { entry }, _) => {
            let mut e = (**entry).clone();
            // Bookkeeping fields are the Ledger's to set, not the proposer's.
            e.version = 0;
            e.last_verified_block = 0;
            e.verified_by = Vec::new();
            Ok((
                ProposalKind::NewSubnet,
                String::new(),
                Value::Null,
                to_value(&e)?,
            ))
        }
        (_, None) => Err(RejectReason::UnknownSubnet),
        (ProposalChange::MetricsUpdate { metrics }, Some(cur)) => Ok((
            ProposalKind::MetricsUpdate,
            "/metrics".into(),
            to_value(&cur.metrics)?,
            to_value(metrics)?,
        )),
        (ProposalChange::Deprecation { .. }, Some(cur)) => Ok((
            ProposalKind::Deprecation,
            "/status".into(),
            to_value(&cur.status)?,
            to_value(&Status::Deprecated)?,
        )),
        (ProposalChange::SchemaUpdate { changes }, Some(cur)) => {
            let paths: Vec<&str> = changes.iter().map(|c| c.path.as_str()).collect();
            let prefix = pointer::common_prefix(&paths)
                .map_err(|e| RejectReason::Malformed(e.to_string()))?;
            let mut doc = to_value(cur)?;
            let old =
                pointer::get(&doc, &prefix).map_err(|e| RejectReason::Malformed(e.to_string()))?;
            for c in changes {
                pointer::set(&mut doc, &c.path, c.new.clone())
                    .map_err(|e| RejectReason::Malformed(e.to_string()))?;
            }
            let new =
                pointer::get(&doc, &prefix).map_err(|e| RejectReason::Malformed(e.to_string()))?;
            Ok((ProposalKind::SchemaUpdate, prefix, old, new))
        }
    }
}

/// A tiny object-safe "serialize to Value" so `describe` can convert mixed types in one closure.
mod erased {
    use serde::Serialize;
    use serde_json::Value;

    pub trait Ser {
        fn value(&self) -> Result<Value, serde_json::Error>;
    }

    impl<T: Serialize> Ser for T {
        fn value(&self) -> Result<Value, serde_json::Error> {
            serde_json::to_value(self)
        }
    }
}
