//! When a subnet's epoch runs, and the owner's levers on it (dynamic tempo).
//!
//! Two runtimes, two rules ([`EpochRule`]):
//!
//! - **Legacy** (the spec-103 test runtime and opentensor/subtensor up to the `dynamic_tempo_v1`
//!   migration): the epoch runs in the block where `(block + netuid + 1) % (tempo + 1) == 0`.
//! - **Stateful** (RaoFoundation/subtensor, spec 459:
//!   `pallets/subtensor/src/coinbase/run_coinbase/drain_pending_emissions.rs`,
//!   `coinbase/tempo_control.rs`, `utils/misc/subnet_hyperparams.rs`): the epoch runs when
//!   `block − LastEpochBlock ≥ tempo`, when an owner's `trigger_epoch` comes due
//!   (`PendingEpochAt`), or when `BlocksSinceLastStep > tempo` (the safety net); every run
//!   sets `LastEpochBlock = block` and advances `SubnetEpochIndex`. `sudo_set_tempo` restarts
//!   the cycle at the block it lands in.
//!
//! Not modelled, because a one-subnet simulation never meets them: `MaxEpochsPerBlock` (the
//! chain defers the epochs of further subnets due in the same block by one block) and the
//! skipped epoch of a subnet whose epoch keys repeat a hotkey.

use serde::{Deserialize, Serialize};

/// Lowest tempo an owner may set (`MIN_TEMPO`); also `sudo_set_tempo`'s cooldown in blocks.
pub const MIN_TEMPO: u16 = 360;
/// Highest tempo an owner may set (`MAX_TEMPO`, ≈ 7 days of 12 s blocks).
pub const MAX_TEMPO: u16 = 50_400;
/// Lowest `ActivityCutoffFactorMilli` (one tempo).
pub const MIN_ACTIVITY_CUTOFF_FACTOR_MILLI: u32 = 1_000;
/// Highest `ActivityCutoffFactorMilli` (50 tempos).
pub const MAX_ACTIVITY_CUTOFF_FACTOR_MILLI: u32 = 50_000;
/// `INITIAL_ACTIVITY_CUTOFF_FACTOR_MILLI`: 13.889 tempos, the legacy 5000 blocks at tempo 360.
pub const INITIAL_ACTIVITY_CUTOFF_FACTOR_MILLI: u32 = 13_889;
/// `DefaultAdminFreezeWindow`: blocks before an epoch in which owners may not change
/// hyperparameters, and the delay of a triggered epoch.
pub const DEFAULT_ADMIN_FREEZE_WINDOW: u64 = 10;
/// `DefaultOwnerHyperparamRateLimit`, in tempos: how often an owner may trigger an epoch.
pub const OWNER_HYPERPARAM_RATE_LIMIT_TEMPOS: u64 = 2;

/// The activity cutoff the spec-459 epoch uses, in blocks: `max(1, factor_milli · tempo / 1000)`
/// (`get_activity_cutoff_blocks`). At the default factor: 5000 blocks at tempo 360, 138 at 10,
/// 13 at 1.
pub fn activity_cutoff_blocks(factor_milli: u32, tempo: u16) -> u64 {
    (u64::from(factor_milli) * u64::from(tempo) / 1000).max(1)
}

/// Which runtime's scheduler decides when the epoch runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EpochRule {
    /// `(block + netuid + 1) % (tempo + 1) == 0`: a period of `tempo + 1` blocks at a fixed phase.
    Legacy,
    /// `LastEpochBlock + tempo`, owner triggers, the safety net: a period of `tempo` blocks.
    #[default]
    Stateful,
}

/// Who calls `sudo_set_tempo`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// The subnet owner: bounded to `MIN_TEMPO..=MAX_TEMPO`, rate-limited, freeze window.
    Owner,
    /// Root (governance): any tempo, no rate limit; the freeze window still applies.
    Root,
}

/// Why the chain would refuse a `sudo_set_tempo` or `trigger_epoch`, by its error's name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    /// `TempoOutOfBounds`.
    #[error("tempo {tempo} is outside {MIN_TEMPO}..={MAX_TEMPO} (TempoOutOfBounds)")]
    TempoOutOfBounds {
        /// The tempo asked for.
        tempo: u16,
    },
    /// `AdminActionProhibitedDuringWeightsWindow`: inside the freeze window before an epoch.
    #[error("block {block} is inside the admin freeze window before the epoch at {epoch_at}")]
    FreezeWindow {
        /// The block of the call.
        block: u64,
        /// The epoch it is too close to.
        epoch_at: u64,
    },
    /// `TxRateLimitExceeded`.
    #[error("rate limited until block {until} (TxRateLimitExceeded)")]
    RateLimited {
        /// The first block the call is allowed again.
        until: u64,
    },
    /// `EpochTriggerAlreadyPending`.
    #[error("an epoch is already triggered for block {at} (EpochTriggerAlreadyPending)")]
    AlreadyPending {
        /// The pending epoch's block.
        at: u64,
    },
    /// `AutoEpochAlreadyImminent`: the automatic epoch comes sooner than a trigger would.
    #[error(
        "the automatic epoch is {remaining} blocks away, inside the window (AutoEpochAlreadyImminent)"
    )]
    AutoEpochImminent {
        /// Blocks to the automatic epoch.
        remaining: u64,
    },
    /// The legacy runtime has no such call.
    #[error("the legacy scheduler has no {0}")]
    Unsupported(&'static str),
}

/// One subnet's epoch schedule: the chain's scheduler state, advanced block by block.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EpochSchedule {
    /// The subnet (the legacy rule's phase).
    pub netuid: u16,
    /// `Tempo`; 0 means the subnet never runs an epoch.
    pub tempo: u16,
    /// Which runtime's rule.
    pub rule: EpochRule,
    /// `LastEpochBlock`.
    pub last_epoch_block: u64,
    /// `PendingEpochAt` (0: none).
    pub pending_epoch_at: u64,
    /// `BlocksSinceLastStep`, capped at `tempo + 1`.
    pub blocks_since_last_step: u64,
    /// `SubnetEpochIndex`: epochs run so far.
    pub epoch_index: u64,
    /// `AdminFreezeWindow`.
    pub admin_freeze_window: u64,
    last_tempo_set: Option<u64>,
    last_trigger: Option<u64>,
}

impl EpochSchedule {
    /// A subnet whose schedule starts at `block` (as a subnet added then: `LastEpochBlock =
    /// block`, no epoch run yet).
    pub fn new(netuid: u16, tempo: u16, rule: EpochRule, block: u64) -> Self {
        EpochSchedule {
            netuid,
            tempo,
            rule,
            last_epoch_block: block,
            pending_epoch_at: 0,
            blocks_since_last_step: 0,
            epoch_index: 0,
            admin_freeze_window: DEFAULT_ADMIN_FREEZE_WINDOW,
            last_tempo_set: None,
            last_trigger: None,
        }
    }

    /// Whether the epoch runs in `block` (`should_run_epoch`), before this block's bookkeeping.
    pub fn should_run(&self, block: u64) -> bool {
        if self.tempo == 0 {
            return false;
        }
        match self.rule {
            EpochRule::Legacy => {
                legacy_blocks_until_next_epoch(self.netuid, self.tempo, block) == 0
            }
            EpochRule::Stateful => {
                (self.pending_epoch_at > 0 && block >= self.pending_epoch_at)
                    || self.blocks_since_last_step > u64::from(self.tempo)
                    || block.saturating_sub(self.last_epoch_block) >= u64::from(self.tempo)
            }
        }
    }

    /// Block `block` is built: advance the scheduler as `drain_pending_subnet_emissions` does
    /// and say whether the subnet's epoch runs in it. Call once per block, in order.
    pub fn on_block(&mut self, block: u64) -> bool {
        let cap = u64::from(self.tempo) + 1;
        self.blocks_since_last_step = (self.blocks_since_last_step + 1).min(cap);
        if !self.should_run(block) {
            return false;
        }
        self.blocks_since_last_step = 0;
        self.last_epoch_block = block;
        self.pending_epoch_at = 0;
        self.epoch_index += 1;
        true
    }

    /// Blocks from `block` to the next automatic epoch (`blocks_until_next_auto_epoch`; the
    /// legacy rule's `blocks_until_next_epoch`); `u64::MAX` at tempo 0.
    pub fn blocks_until_next_auto_epoch(&self, block: u64) -> u64 {
        if self.tempo == 0 {
            return u64::MAX;
        }
        match self.rule {
            EpochRule::Legacy => legacy_blocks_until_next_epoch(self.netuid, self.tempo, block),
            EpochRule::Stateful => {
                (self.last_epoch_block + u64::from(self.tempo)).saturating_sub(block)
            }
        }
    }

    /// The block the next epoch is expected in, a trigger included (`get_next_epoch_start_block`);
    /// `None` at tempo 0.
    pub fn next_epoch_block(&self, block: u64) -> Option<u64> {
        if self.tempo == 0 {
            return None;
        }
        let auto = block.saturating_add(self.blocks_until_next_auto_epoch(block));
        match self.rule {
            EpochRule::Legacy => Some(auto),
            EpochRule::Stateful => Some((self.last_epoch_block + u64::from(self.tempo)).min(
                if self.pending_epoch_at > 0 {
                    self.pending_epoch_at
                } else {
                    u64::MAX
                },
            )),
        }
    }

    /// The epoch index a commit made in `block` is filed under (`current_epoch_with_lookahead`:
    /// the next index if the epoch runs in this block).
    pub fn epoch_index_with_lookahead(&self, block: u64) -> u64 {
        self.epoch_index + u64::from(self.should_run(block))
    }

    /// Whether owners' hyperparameter changes are frozen at `block` (`is_in_admin_freeze_window`).
    pub fn in_admin_freeze_window(&self, block: u64) -> bool {
        (self.pending_epoch_at > block)
            || self.blocks_until_next_auto_epoch(block) < self.admin_freeze_window
    }

    fn ensure_admin_window_open(&self, block: u64) -> Result<(), ScheduleError> {
        if self.in_admin_freeze_window(block) {
            return Err(ScheduleError::FreezeWindow {
                block,
                epoch_at: self.next_epoch_block(block).unwrap_or(u64::MAX),
            });
        }
        Ok(())
    }

    /// `sudo_set_tempo` in `block` (`do_set_tempo` / `apply_tempo_with_cycle_reset`):
    /// `LastEpochBlock = block`, so the new tempo counts from here. `BlocksSinceLastStep` is
    /// left alone, as the chain leaves it, so the safety net still runs the epoch `tempo + 1`
    /// blocks after the previous one if that comes first. The legacy runtime sets the tempo
    /// without a reset.
    pub fn set_tempo(
        &mut self,
        tempo: u16,
        block: u64,
        origin: Origin,
    ) -> Result<(), ScheduleError> {
        if self.rule == EpochRule::Legacy {
            self.tempo = tempo;
            return Ok(());
        }
        if origin == Origin::Owner && !(MIN_TEMPO..=MAX_TEMPO).contains(&tempo) {
            return Err(ScheduleError::TempoOutOfBounds { tempo });
        }
        self.ensure_admin_window_open(block)?;
        if origin == Origin::Owner
            && let Some(last) = self.last_tempo_set
            && block < last + u64::from(MIN_TEMPO)
        {
            return Err(ScheduleError::RateLimited {
                until: last + u64::from(MIN_TEMPO),
            });
        }
        self.tempo = tempo;
        self.last_epoch_block = block;
        if origin == Origin::Owner {
            self.last_tempo_set = Some(block);
        }
        Ok(())
    }

    /// The owner's `trigger_epoch` in `block` (`do_trigger_epoch`): the epoch runs
    /// `admin_freeze_window` blocks later. Refused while one is pending, when the automatic
    /// epoch is nearer than the window, and more often than every 2 tempos.
    pub fn trigger_epoch(&mut self, block: u64) -> Result<u64, ScheduleError> {
        if self.rule == EpochRule::Legacy {
            return Err(ScheduleError::Unsupported("trigger_epoch"));
        }
        if self.pending_epoch_at != 0 {
            return Err(ScheduleError::AlreadyPending {
                at: self.pending_epoch_at,
            });
        }
        let remaining = self.blocks_until_next_auto_epoch(block);
        if remaining < self.admin_freeze_window {
            return Err(ScheduleError::AutoEpochImminent { remaining });
        }
        let limit = OWNER_HYPERPARAM_RATE_LIMIT_TEMPOS * u64::from(self.tempo);
        if let Some(last) = self.last_trigger
            && block < last + limit
        {
            return Err(ScheduleError::RateLimited {
                until: last + limit,
            });
        }
        let fires_at = block + self.admin_freeze_window;
        self.pending_epoch_at = fires_at;
        self.last_trigger = Some(block);
        Ok(fires_at)
    }
}

/// Blocks until the next epoch of `netuid` under the legacy rule (0 if it runs in `block`),
/// as the old runtime's `blocks_until_next_epoch`; `u64::MAX` at tempo 0.
pub fn legacy_blocks_until_next_epoch(netuid: u16, tempo: u16, block: u64) -> u64 {
    if tempo == 0 {
        return u64::MAX;
    }
    let period = u64::from(tempo) + 1;
    let phase = (block + u64::from(netuid) + 1) % period;
    if phase == 0 { 0 } else { period - phase }
}
