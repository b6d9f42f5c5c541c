//! A Ledger replica bound to a store and a signing hotkey: every append is validated, committed
//! durably (records + entries + signed head in one transaction), and only then made visible.

use crate::engine::{EngineError, Ledger};
use crate::log::{ConsistencyProof, InclusionProof, SignedTreeHead, TreeHead};
use crate::merkle::ProofError;
use crate::model::{ChangeRecord, Credit, FieldBlocks, LedgerState, ProposalKind};
use crate::store::{Commit, Store, StoreError};
use crate::verify::VerifyParams;
use orchestra_protocol::ledger::Entry;
use orchestra_protocol::{Hash32, Hotkey};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

/// A change a validator submits for appending: a [`ChangeRecord`] without its `seq`, which the
/// node assigns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChangeInput {
    /// Block at which it was verified.
    pub block: u64,
    /// Proposal content id.
    pub proposal_id: Hash32,
    /// Kind.
    pub kind: ProposalKind,
    /// Subnet.
    pub netuid: u16,
    /// JSON pointer.
    pub path: String,
    /// Old value.
    pub old: Value,
    /// New value.
    pub new: Value,
    /// Proposer ss58.
    pub proposer: String,
    /// First or confirmation.
    pub credit: Credit,
    /// Verifying validators.
    pub verifiers: Vec<String>,
    /// Evidence hash.
    pub evidence_hash: Hash32,
}

impl ChangeInput {
    /// The record at position `seq`.
    pub fn into_record(self, seq: u64) -> ChangeRecord {
        ChangeRecord {
            seq,
            block: self.block,
            proposal_id: self.proposal_id,
            kind: self.kind,
            netuid: self.netuid,
            path: self.path,
            old: self.old,
            new: self.new,
            proposer: self.proposer,
            credit: self.credit,
            verifiers: self.verifiers,
            evidence_hash: self.evidence_hash,
        }
    }
}

/// Why a node operation failed.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// The store failed; nothing was applied.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A submitted change does not apply; nothing was applied.
    #[error("change rejected: {0}")]
    Rejected(#[from] EngineError),
    /// The stored log does not reproduce the stored entries or head.
    #[error("stored Ledger is inconsistent: {0}")]
    Inconsistent(String),
    /// A proof could not be built.
    #[error(transparent)]
    Proof(#[from] ProofError),
}

/// One replica: pure engine + store + hotkey.
pub struct LedgerNode<S: Store> {
    ledger: Ledger,
    store: S,
    hotkey: Hotkey,
    sth: SignedTreeHead,
    /// netuid → seq of the latest record about it (what an entry's inclusion proof proves).
    latest: BTreeMap<u16, u64>,
}

impl<S: Store> LedgerNode<S> {
    /// Open a replica: replay the stored log, check it reproduces the stored entries and head,
    /// and re-sign the head if it was signed by another key (or never).
    pub fn open(store: S, hotkey: Hotkey, params: VerifyParams) -> Result<Self, NodeError> {
        let p = store.load()?;
        let ledger = Ledger::replay(&p.records, params)
            .map_err(|e| NodeError::Inconsistent(format!("replaying the log failed: {e}")))?;
        if ledger.tree().size() as usize != p.leaves.len()
            || (0..p.leaves.len()).any(|i| ledger.tree().leaf(i as u64) != Some(p.leaves[i]))
        {
            return Err(NodeError::Inconsistent(
                "leaf hashes differ from the records".into(),
            ));
        }
        let replayed: Vec<(&Entry, FieldBlocks)> = ledger
            .state()
            .entries
            .iter()
            .map(|(n, e)| (e, ledger.state().fields.get(n).copied().unwrap_or_default()))
            .collect();
        let stored: Vec<(&Entry, FieldBlocks)> = p.entries.values().map(|(e, f)| (e, *f)).collect();
        if replayed != stored {
            return Err(NodeError::Inconsistent(
                "entries table differs from a replay of the change log".into(),
            ));
        }
        let head = ledger.head();
        let sth = match p.head {
            Some(s) if s.head == head && s.signer == hotkey.ss58() && s.verify().is_ok() => s,
            Some(s) if s.head != head => {
                return Err(NodeError::Inconsistent(format!(
                    "stored head (size {}) differs from the replayed log (size {})",
                    s.head.tree_size, head.tree_size
                )));
            }
            _ => head.sign(&hotkey),
        };
        let latest = p.records.iter().map(|r| (r.netuid, r.seq)).collect();
        Ok(LedgerNode {
            ledger,
            store,
            hotkey,
            sth,
            latest,
        })
    }

    /// The engine (state, tree, head).
    pub fn ledger(&self) -> &Ledger {
        &self.ledger
    }

    /// The current signed head.
    pub fn signed_head(&self) -> &SignedTreeHead {
        &self.sth
    }

    /// The store.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// The store, mutably (API keys, usage).
    pub fn store_mut(&mut self) -> &mut S {
        &mut self.store
    }

    /// The node's hotkey address.
    pub fn ss58(&self) -> String {
        self.hotkey.ss58()
    }

    /// Append changes atomically: all validate and commit durably, or none is applied.
    pub fn append(&mut self, inputs: Vec<ChangeInput>) -> Result<Vec<ChangeRecord>, NodeError> {
        let start = self.ledger.tree().size();
        let records: Vec<ChangeRecord> = inputs
            .into_iter()
            .enumerate()
            .map(|(i, c)| c.into_record(start + i as u64))
            .collect();
        self.append_records(records)
    }

    /// Append fully formed records (seqs must continue the log), atomically and durably.
    pub fn append_records(
        &mut self,
        records: Vec<ChangeRecord>,
    ) -> Result<Vec<ChangeRecord>, NodeError> {
        // Apply in memory first (all or none), then persist; undo if persisting fails, so the
        // visible state never runs ahead of the durable one.
        let cp = self.ledger.checkpoint();
        let leaves = self.ledger.append_all(&records)?;
        let next = &self.ledger;
        let head: TreeHead = next.head();
        let sth = head.sign(&self.hotkey);
        let touched: std::collections::BTreeSet<u16> = records.iter().map(|r| r.netuid).collect();
        let entries: Vec<(Entry, FieldBlocks)> = touched
            .iter()
            .filter_map(|n| {
                let e = next.state().entries.get(n)?;
                Some((
                    e.clone(),
                    next.state().fields.get(n).copied().unwrap_or_default(),
                ))
            })
            .collect();
        if let Err(e) = self.store.commit(Commit {
            records: &records,
            leaves: &leaves,
            entries: &entries,
            head: &sth,
        }) {
            self.ledger.restore(cp);
            return Err(e.into());
        }
        self.sth = sth;
        self.latest
            .extend(records.iter().map(|r| (r.netuid, r.seq)));
        Ok(records)
    }

    /// The state.
    pub fn state(&self) -> &LedgerState {
        self.ledger.state()
    }

    /// Inclusion proof of record `seq` against the current signed head.
    pub fn inclusion_proof(&self, seq: u64) -> Result<InclusionProof, NodeError> {
        let size = self.sth.head.tree_size;
        let path = self.ledger.tree().inclusion_proof(seq, size)?;
        let record = self
            .store
            .records(seq, 1)?
            .into_iter()
            .next()
            .ok_or(ProofError::OutOfRange("no such record"))?;
        let leaf_hash = self
            .ledger
            .tree()
            .leaf(seq)
            .ok_or(ProofError::OutOfRange("no such record"))?;
        Ok(InclusionProof {
            record,
            leaf_hash,
            path,
            head: self.sth.clone(),
        })
    }

    /// Seq of the latest record about `netuid`, if any.
    pub fn latest_seq(&self, netuid: u16) -> Option<u64> {
        self.latest.get(&netuid).copied()
    }

    /// Inclusion proof of the latest record about `netuid` (the one that made its entry what it
    /// is now, or confirmed it) against the current signed head.
    pub fn entry_proof(&self, netuid: u16) -> Result<Option<InclusionProof>, NodeError> {
        self.latest_seq(netuid)
            .map(|seq| self.inclusion_proof(seq))
            .transpose()
    }

    /// Consistency proof between sizes `from` and `to`.
    pub fn consistency_proof(&self, from: u64, to: u64) -> Result<ConsistencyProof, NodeError> {
        let tree = self.ledger.tree();
        Ok(ConsistencyProof {
            from,
            to,
            from_root: tree.root_at(from)?,
            to_root: tree.root_at(to)?,
            path: tree.consistency_proof(from, to)?,
        })
    }
}
