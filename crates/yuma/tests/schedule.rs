//! The epoch scheduler against the chain's own tests.
//!
//! Sources: RaoFoundation/subtensor (spec 459) `pallets/subtensor/src/tests/epoch/epoch_timing.rs`
//! and opentensor/subtensor `pallets/subtensor/src/tests/tempo_control.rs` (the version whose
//! `get_next_epoch_start_block_uses_last_epoch_block_plus_tempo` expects `last + tempo`, the
//! stateful scheduler of spec 459's `coinbase/run_coinbase/drain_pending_emissions.rs`).

use orchestra_yuma::{
    EpochRule, EpochSchedule, INITIAL_ACTIVITY_CUTOFF_FACTOR_MILLI, Origin, ScheduleError,
    activity_cutoff_blocks, legacy_blocks_until_next_epoch,
};

/// Steps blocks `from+1 ..= from+n`, as the mock's `step_block(n)`; returns the last block.
fn step(s: &mut EpochSchedule, from: u64, n: u64) -> u64 {
    for b in from + 1..=from + n {
        s.on_block(b);
    }
    from + n
}

/// `epoch_timing.rs` `test_blocks_since_last_step`: tempo 7200, added at block 0.
#[test]
fn test_blocks_since_last_step() {
    let mut s = EpochSchedule::new(1, 7200, EpochRule::Stateful, 0);
    let mut block = step(&mut s, 0, 5);
    assert_eq!(s.blocks_since_last_step, 5);
    let n = s.blocks_until_next_auto_epoch(block) + 10;
    block = step(&mut s, block, n);
    assert_eq!(s.blocks_since_last_step, 10);
    let n = s.blocks_until_next_auto_epoch(block) + 20;
    block = step(&mut s, block, n);
    assert_eq!(s.blocks_since_last_step, 20);
    step(&mut s, block, 7);
    assert_eq!(s.blocks_since_last_step, 27);
    assert_eq!(s.epoch_index, 2);
}

/// `tempo_control.rs`: `get_next_epoch_start_block_uses_last_epoch_block_plus_tempo` (150),
/// `…_returns_pending_when_pending_is_earlier` (120), `…_ignores_pending_when_auto_is_earlier`
/// (150), `…_returns_none_when_tempo_zero`.
#[test]
fn get_next_epoch_start_block() {
    let mut s = EpochSchedule::new(1, 50, EpochRule::Stateful, 100);
    assert_eq!(s.next_epoch_block(100), Some(150));
    s.pending_epoch_at = 120;
    assert_eq!(s.next_epoch_block(100), Some(120));
    s.pending_epoch_at = 200;
    assert_eq!(s.next_epoch_block(100), Some(150));
    s.tempo = 0;
    assert_eq!(s.next_epoch_block(100), None);
    assert!(!s.should_run(10_000));
}

/// `tempo_control.rs` `get_next_epoch_start_block_reflects_set_tempo_cycle_reset` (freeze window
/// 0, block 10, the owner sets 720: next epoch at now + 720) and
/// `do_set_tempo_works_with_commit_reveal_enabled`; the owner's bounds and cooldown.
#[test]
fn set_tempo_resets_the_cycle() {
    let mut s = EpochSchedule::new(1, 360, EpochRule::Stateful, 1);
    s.admin_freeze_window = 0;
    s.set_tempo(720, 10, Origin::Owner).unwrap();
    assert_eq!((s.tempo, s.next_epoch_block(10)), (720, Some(730)));
    assert_eq!(
        s.set_tempo(360, 100, Origin::Owner),
        Err(ScheduleError::RateLimited { until: 370 })
    );
    assert_eq!(
        s.set_tempo(359, 400, Origin::Owner),
        Err(ScheduleError::TempoOutOfBounds { tempo: 359 })
    );
    assert_eq!(
        s.set_tempo(50_401, 400, Origin::Owner),
        Err(ScheduleError::TempoOutOfBounds { tempo: 50_401 })
    );
    // Root sets any tempo, without the cooldown.
    s.set_tempo(10, 101, Origin::Root).unwrap();
    assert_eq!(s.next_epoch_block(101), Some(111));
}

/// `tempo_control.rs` `do_trigger_epoch_works_with_commit_reveal_enabled` (window 5: pending at
/// now + 5) and `do_trigger_epoch_rejects_when_auto_epoch_already_imminent` (tempo 10,
/// LastEpochBlock 1, window 8, block 5: 6 blocks left, refused, nothing scheduled).
#[test]
fn trigger_epoch() {
    let mut s = EpochSchedule::new(1, 360, EpochRule::Stateful, 1);
    s.admin_freeze_window = 5;
    assert_eq!(s.trigger_epoch(2), Ok(7));
    assert_eq!(s.pending_epoch_at, 7);
    assert_eq!(
        s.trigger_epoch(3),
        Err(ScheduleError::AlreadyPending { at: 7 })
    );
    // It fires at 7 (not at 361), and the automatic cycle restarts from there.
    let fired: Vec<u64> = (3..=400).filter(|&b| s.on_block(b)).collect();
    assert_eq!(fired, vec![7, 367]);
    assert_eq!(s.pending_epoch_at, 0);
    // Twice per 2 tempos at most.
    assert_eq!(
        s.trigger_epoch(401),
        Err(ScheduleError::RateLimited { until: 2 + 720 })
    );

    let mut s = EpochSchedule::new(1, 10, EpochRule::Stateful, 1);
    s.admin_freeze_window = 8;
    assert_eq!(
        s.trigger_epoch(5),
        Err(ScheduleError::AutoEpochImminent { remaining: 6 })
    );
    assert_eq!(s.pending_epoch_at, 0);
}

/// The stateful period is `tempo`; the legacy one `tempo + 1` at phase `netuid + 1`
/// (`(block + netuid + 1) % (tempo + 1) == 0`, the spec-103 runtime).
#[test]
fn periods_of_the_two_rules() {
    let mut stateful = EpochSchedule::new(1, 10, EpochRule::Stateful, 0);
    let fired: Vec<u64> = (1..=40).filter(|&b| stateful.on_block(b)).collect();
    assert_eq!(fired, vec![10, 20, 30, 40]);
    let mut legacy = EpochSchedule::new(1, 10, EpochRule::Legacy, 0);
    let fired: Vec<u64> = (1..=40).filter(|&b| legacy.on_block(b)).collect();
    assert_eq!(fired, vec![9, 20, 31]);
    assert_eq!(legacy_blocks_until_next_epoch(1, 10, 12), 8);
    assert_eq!(
        legacy.trigger_epoch(41),
        Err(ScheduleError::Unsupported("trigger_epoch"))
    );
}

/// The safety net: after a tempo cut (root, no cycle reset of the counter) an overdue subnet
/// runs in the next block.
#[test]
fn blocks_since_last_step_is_a_safety_net() {
    let mut s = EpochSchedule::new(1, 100, EpochRule::Stateful, 0);
    s.admin_freeze_window = 0;
    step(&mut s, 0, 50);
    s.set_tempo(20, 50, Origin::Root).unwrap();
    // BlocksSinceLastStep (50) > tempo (20): the epoch runs at once.
    assert!(s.on_block(51));
    assert_eq!(s.next_epoch_block(51), Some(71));
}

/// `utils/misc/subnet_hyperparams.rs` `get_activity_cutoff_blocks` at the default factor, and
/// the `dynamic_tempo_v1` comment "13_889 * 360 / 1000 = 5_000".
#[test]
fn activity_cutoff_is_a_factor_of_tempo() {
    let f = INITIAL_ACTIVITY_CUTOFF_FACTOR_MILLI;
    assert_eq!(activity_cutoff_blocks(f, 360), 5_000);
    assert_eq!(activity_cutoff_blocks(f, 10), 138);
    assert_eq!(activity_cutoff_blocks(f, 1), 13);
    assert_eq!(activity_cutoff_blocks(f, 0), 1);
    assert_eq!(activity_cutoff_blocks(1_000, 99), 99);
}
