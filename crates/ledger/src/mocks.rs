//! Seeding a Ledger from mock subnets (`mocks/subnets/*.toml`).
//!
//! The files are read and checked by `orchestra_mocks::MockSet` — the one loader the simulator,
//! `orchestra-mock-subnet`, the miner's `--mocks`, `orchestra-ledger seed` and the validator's
//! `--ledger.seed` share, so every tool accepts and refuses the same files; this module turns
//! its entries (`MockSet::entries`) into the `new_subnet` changes that seed a Ledger.

use crate::model::{Credit, ProposalKind};
use crate::node::ChangeInput;
use orchestra_protocol::hash_canonical;
use orchestra_protocol::ledger::{Entry, ProbeEvidence, Proposal, ProposalChange};

/// The `new_subnet` change that seeds `entry`, attributed to `validator` at `block`.
pub fn seed_change(
    entry: &Entry,
    validator: &str,
    block: u64,
) -> Result<ChangeInput, orchestra_protocol::hash::CanonicalError> {
    let proposal = Proposal {
        netuid: entry.netuid,
        change: ProposalChange::NewSubnet {
            entry: Box::new(entry.clone()),
        },
        evidence: Vec::new(),
        observed_block: block,
    };
    let new =
        serde_json::to_value(entry).map_err(orchestra_protocol::hash::CanonicalError::from)?;
    Ok(ChangeInput {
        block,
        proposal_id: proposal.content_id()?,
        kind: ProposalKind::NewSubnet,
        netuid: entry.netuid,
        path: String::new(),
        old: serde_json::Value::Null,
        new,
        proposer: validator.to_string(),
        credit: Credit::First,
        verifiers: vec![validator.to_string()],
        evidence_hash: hash_canonical(&Vec::<ProbeEvidence>::new())?,
    })
}
