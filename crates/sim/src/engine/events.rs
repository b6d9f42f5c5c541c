//! Scenario events on the block timeline: a scenario's `[[events]]` (typed [`EventKind`]s)
//! become [`Scheduled`] [`Action`]s at blocks, and the names they are reported under in
//! `events.csv` come from the typed values, never from strings passed around.

use super::{RunError, scenario_err};
use crate::metrics::TruthChange;
use crate::scenario::{EventKind, ScenarioSpec};
use orchestra_mocks::SubnetEvent;

/// A scenario event scheduled at a block.
#[derive(Debug, Clone)]
pub(crate) struct Scheduled {
    /// The block it happens at.
    pub block: u64,
    /// File order, to break ties.
    pub seq: usize,
    /// What happens.
    pub action: Action,
}

/// What a scheduled event does to the run.
#[derive(Debug, Clone)]
pub(crate) enum Action {
    /// A subnet's behaviour changes.
    Subnet {
        /// The subnet.
        netuid: u16,
        /// The change.
        event: SubnetEvent,
    },
    /// An unlisted subnet starts serving.
    Launch(u16),
    /// Validators (by index) go offline until a block.
    ValidatorsDown {
        /// Validator indices.
        validators: Vec<u32>,
        /// First block they are back.
        until: u64,
    },
    /// Miners of a group leave and join.
    Churn {
        /// Group index.
        group: usize,
        /// How many leave.
        leave: u32,
        /// How many join.
        join: u32,
    },
    /// A group turns honest.
    AttackStop {
        /// Group index.
        group: usize,
    },
    /// The owner sets the tempo.
    SetTempo(u16),
    /// The owner triggers an epoch.
    TriggerEpoch,
    /// A group's miners commit `ResetBondsFlag`.
    ResetBonds {
        /// Group index.
        group: usize,
    },
}

/// The name a subnet event is reported under (`events.csv`, `kind` column).
pub(crate) fn subnet_event_name(event: &SubnetEvent) -> &'static str {
    match event {
        SubnetEvent::SchemaChange { .. } => "schema_change",
        SubnetEvent::OutageStart => "outage_start",
        SubnetEvent::OutageEnd => "outage_end",
        SubnetEvent::PriceMultiplier { .. } => "price_change",
        SubnetEvent::LatencyMultiplier { .. } => "latency_change",
        SubnetEvent::ExtraFailureRate { .. } => "failure_rate_change",
        SubnetEvent::Deprecate => "deprecation",
        SubnetEvent::RemoveEndpoint { .. } => "endpoint_removed",
        SubnetEvent::RestoreEndpoint { .. } => "endpoint_restored",
    }
}

/// The Ledger-visible truth a subnet event changes (what detection lags are measured on), if
/// any: an outage or a failure rate is not something the Ledger records.
pub(crate) fn truth_change(event: &SubnetEvent) -> Option<TruthChange> {
    match event {
        SubnetEvent::SchemaChange { .. } => Some(TruthChange::SchemaChange),
        SubnetEvent::PriceMultiplier { .. } => Some(TruthChange::PriceChange),
        SubnetEvent::LatencyMultiplier { .. } => Some(TruthChange::LatencyChange),
        SubnetEvent::Deprecate => Some(TruthChange::Deprecation),
        SubnetEvent::OutageStart
        | SubnetEvent::OutageEnd
        | SubnetEvent::ExtraFailureRate { .. }
        | SubnetEvent::RemoveEndpoint { .. }
        | SubnetEvent::RestoreEndpoint { .. } => None,
    }
}

/// Every event of `spec` at its block, in block order (file order on ties).
pub(crate) fn schedule(
    spec: &ScenarioSpec,
    labels: &[String],
    block_ms: u64,
) -> Result<Vec<Scheduled>, RunError> {
    let block_of = |day: f64| ((day * 86_400_000.0) / block_ms as f64).round().max(1.0) as u64;
    let hours_blocks = |h: f64| ((h * 3_600_000.0) / block_ms as f64).round().max(1.0) as u64;
    let mut out = Vec::new();
    for (i, e) in spec.events.iter().enumerate() {
        let block = block_of(e.at_day);
        let kind = e.kind.clone();
        let group_of = |g: &str| {
            labels.iter().position(|l| l == g).ok_or_else(|| {
                scenario_err(&format!("events[{i}].group"), "a miner group label", g)
            })
        };
        let mut push = |block: u64, action: Action| {
            let seq = out.len();
            out.push(Scheduled { block, seq, action });
        };
        let subnet = |netuid: u16, event: SubnetEvent| Action::Subnet { netuid, event };
        match kind {
            EventKind::SchemaChange {
                netuid,
                endpoint,
                version,
            } => push(
                block,
                subnet(netuid, SubnetEvent::SchemaChange { endpoint, version }),
            ),
            EventKind::Outage { netuid, hours } => {
                push(block, subnet(netuid, SubnetEvent::OutageStart));
                push(
                    block + hours_blocks(hours),
                    subnet(netuid, SubnetEvent::OutageEnd),
                );
            }
            EventKind::NewSubnet { netuid } => push(block, Action::Launch(netuid)),
            EventKind::Deprecation { netuid } => {
                push(block, subnet(netuid, SubnetEvent::Deprecate))
            }
            EventKind::PriceChange { netuid, multiplier } => push(
                block,
                subnet(netuid, SubnetEvent::PriceMultiplier { multiplier }),
            ),
            EventKind::LatencyChange { netuid, multiplier } => push(
                block,
                subnet(netuid, SubnetEvent::LatencyMultiplier { multiplier }),
            ),
            EventKind::ValidatorDown { validators, hours } => push(
                block,
                Action::ValidatorsDown {
                    validators,
                    until: block + hours_blocks(hours),
                },
            ),
            EventKind::MinerChurn { group, leave, join } => push(
                block,
                Action::Churn {
                    group: group_of(&group)?,
                    leave,
                    join,
                },
            ),
            EventKind::AttackStop { group } => push(
                block,
                Action::AttackStop {
                    group: group_of(&group)?,
                },
            ),
            EventKind::SetTempo { tempo } => push(block, Action::SetTempo(tempo)),
            EventKind::TriggerEpoch => push(block, Action::TriggerEpoch),
            EventKind::ResetBonds { group } => push(
                block,
                Action::ResetBonds {
                    group: group_of(&group)?,
                },
            ),
        }
    }
    out.sort_by_key(|s| (s.block, s.seq));
    Ok(out)
}
