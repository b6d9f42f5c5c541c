//! Sub-subnet mechanisms against the chain's own tests, value for value.
//!
//! Each vector names its source: repository, file (commit as the source index reported it) and
//! test. "OT" is opentensor/subtensor (the `split_emissions` of runtimes up to spec ≈ 440, 425
//! included); "RF" is RaoFoundation/subtensor at spec 459 (`runtime/src/lib.rs` @ 005a8dc0), the
//! newest source read. Where the two runtimes differ the vector runs under both [`SplitRule`]s.

use orchestra_yuma::{
    DEFAULT_MAX_MECHANISM_COUNT, GLOBAL_MAX_SUBNET_COUNT, MAX_MECHANISM_COUNT_PER_SUBNET,
    MechanismRuleError, SplitRule, check_emission_split, check_mechanism_count,
    mechanism_storage_index, split_mechanism_emission,
};

const BOTH: [SplitRule; 2] = [SplitRule::TrimOrPad, SplitRule::EvenIfMalformed];

/// OT `pallets/subtensor/src/tests/mechanism.rs` @ 0c6868f7, `split_emissions_even_division`
/// (RF has the same test): 5 mechanisms, no split, alpha 25.
#[test]
fn split_emissions_even_division() {
    for rule in BOTH {
        assert_eq!(split_mechanism_emission(25, 5, None, rule), vec![5; 5]);
    }
}

/// OT `tests/mechanism.rs` @ 0c6868f7, `split_emissions_rounding_to_first`: 4 mechanisms, no
/// split, alpha 10; the truncation goes to mechanism 0.
#[test]
fn split_emissions_rounding_to_first() {
    for rule in BOTH {
        assert_eq!(
            split_mechanism_emission(10, 4, None, rule),
            vec![4, 2, 2, 2]
        );
    }
}

/// OT `tests/mechanism.rs` @ 0c6868f7, `split_emissions_fibbonacci`: 5 mechanisms, alpha 19. The
/// test writes this split straight into storage; its parts sum to 65538, so the setter would
/// never have stored it (checked too).
#[test]
fn split_emissions_fibbonacci() {
    let split = [3450, 6899, 10348, 17247, 27594];
    for rule in BOTH {
        assert_eq!(
            split_mechanism_emission(19, 5, Some(&split), rule),
            vec![1, 2, 3, 5, 8]
        );
        assert_eq!(
            check_emission_split(&split, 5, rule),
            Err(MechanismRuleError::SplitSum { sum: 65_538 })
        );
    }
}

/// RF `pallets/subtensor/src/tests/mechanism.rs` @ 0bb2cb30,
/// `split_emissions_treats_legacy_malformed_split_as_unset`: 3 mechanisms, a stored split of one
/// part (or four), alpha 10. Spec 459 splits evenly; the older trim-or-pad rule gives mechanism 0
/// everything (this vector is what tells the two runtimes apart).
#[test]
fn split_emissions_treats_legacy_malformed_split_as_unset() {
    for split in [&[65_535u16][..], &[65_535, 0, 0, 0][..]] {
        assert_eq!(
            split_mechanism_emission(10, 3, Some(split), SplitRule::EvenIfMalformed),
            vec![4, 3, 3]
        );
        assert_eq!(
            split_mechanism_emission(10, 3, Some(split), SplitRule::TrimOrPad),
            vec![10, 0, 0]
        );
    }
}

/// RF `tests/mechanism.rs` @ 0bb2cb30, `emission_split_requires_one_entry_per_mechanism`: with 2
/// mechanisms, `[65535]` is refused at spec 459 (the older setter took `len ≤ count`), and
/// `[32767, 32768]` is stored.
#[test]
fn emission_split_requires_one_entry_per_mechanism() {
    assert!(matches!(
        check_emission_split(&[65_535], 2, SplitRule::EvenIfMalformed),
        Err(MechanismRuleError::SplitLength {
            len: 1,
            count: 2,
            ..
        })
    ));
    assert_eq!(
        check_emission_split(&[65_535], 2, SplitRule::TrimOrPad),
        Ok(())
    );
    for rule in BOTH {
        assert_eq!(check_emission_split(&[32_767, 32_768], 2, rule), Ok(()));
    }
}

/// RF `pallets/admin-utils/src/tests/mechanisms.rs` @ a4e25986,
/// `test_sudo_set_mechanism_count_and_emissions`: 2 mechanisms; three parts and a sum of 65534
/// are refused (`InvalidValue`), `[13107, 52428]` is stored.
#[test]
fn sudo_set_mechanism_count_and_emissions() {
    let fifth = u16::MAX / 5;
    for rule in BOTH {
        assert!(matches!(
            check_emission_split(&[fifth * 2, fifth * 2, fifth], 2, rule),
            Err(MechanismRuleError::SplitLength { len: 3, .. })
        ));
        assert_eq!(
            check_emission_split(&[fifth * 4, fifth - 1], 2, rule),
            Err(MechanismRuleError::SplitSum { sum: 65_534 })
        );
        assert_eq!(check_emission_split(&[13_107, 52_428], 2, rule), Ok(()));
        assert_eq!(
            check_emission_split(&[], 2, rule),
            Err(MechanismRuleError::EmptySplit)
        );
    }
}

/// RF `pallets/admin-utils/src/tests/mechanisms.rs` @ a4e25986, `test_sudo_set_mechanism_count`:
/// with `MaxAllowedUids = 256`, `MaxMechanismCount + 1` is `InvalidValue` and
/// `MaxMechanismCount` (2) is `TooManyUIDsPerMechanism`; at 128 uids it is accepted.
#[test]
fn sudo_set_mechanism_count() {
    let max = DEFAULT_MAX_MECHANISM_COUNT;
    assert!(matches!(
        check_mechanism_count(max + 1, max, 256),
        Err(MechanismRuleError::TooManyMechanisms { count: 3, max: 2 })
    ));
    assert!(matches!(
        check_mechanism_count(max, max, 256),
        Err(MechanismRuleError::TooManyUidsPerMechanism {
            max_uids: 256,
            count: 2,
            limit: 256
        })
    ));
    assert_eq!(check_mechanism_count(max, max, 128), Ok(()));
}

/// OT `tests/mechanism.rs` @ 0c6868f7: `do_set_mechanism_count_ok_minimal` (1),
/// `do_set_mechanism_count_ok_at_effective_cap` (`min(MaxMechanismCount, 16)` at 128 uids),
/// `do_set_fails_for_zero`, `do_set_fails_when_over_runtime_cap` (9) and
/// `do_set_fails_when_over_compile_time_cap` (17, with the runtime cap raised to 16, the most
/// `sudo_set_max_mechanism_count` allows).
#[test]
fn do_set_mechanism_count() {
    let max = DEFAULT_MAX_MECHANISM_COUNT;
    assert_eq!(check_mechanism_count(1, max, 256), Ok(()));
    assert_eq!(
        check_mechanism_count(max.min(MAX_MECHANISM_COUNT_PER_SUBNET), max, 128),
        Ok(())
    );
    assert_eq!(
        check_mechanism_count(0, max, 128),
        Err(MechanismRuleError::ZeroMechanisms)
    );
    assert!(matches!(
        check_mechanism_count(9, max, 16),
        Err(MechanismRuleError::TooManyMechanisms { count: 9, .. })
    ));
    assert!(matches!(
        check_mechanism_count(17, 16, 1),
        Err(MechanismRuleError::TooManyMechanisms { count: 17, max: 16 })
    ));
    assert_eq!(check_mechanism_count(16, 16, 16), Ok(()));
}

/// OT `tests/mechanism.rs` @ 0c6868f7, `test_index_from_netuid_and_subnet`,
/// `test_netuid_and_subnet_from_index` and `test_netuid_index_math_constants`.
#[test]
fn storage_index_math() {
    assert_eq!(
        u32::from(GLOBAL_MAX_SUBNET_COUNT) * u32::from(MAX_MECHANISM_COUNT_PER_SUBNET),
        0x10000
    );
    for (netuid, mecid) in [
        (0u16, 0u8),
        (2048, 1),
        (2048, 7),
        (2048, 14),
        (2048, 15),
        (4095, 1),
        (4095, 7),
        (4095, 14),
        (4095, 15),
    ] {
        let idx = mechanism_storage_index(netuid, mecid);
        assert_eq!(u32::from(idx), u32::from(mecid) * 4096 + u32::from(netuid));
    }
    for idx in [
        0u16, 1, 14, 15, 16, 17, 4095, 4096, 4097, 0x7FFF, 0xFFFE, 0xFFFF,
    ] {
        let (netuid, mecid) = (idx % 4096, u8::try_from(idx / 4096).unwrap());
        assert_eq!(mechanism_storage_index(netuid, mecid), idx);
    }
    // The chain saturates where it would overflow (a mechanism it never creates).
    assert_eq!(mechanism_storage_index(4095, 16), u16::MAX);
}

/// Not chain output: computed by hand from the formula both runtimes share
/// (`alpha · s / 65535` in u128, the remainder to mechanism 0), for the splits this project sets
/// (`emission_split_u16`: 60/40 is `[39321, 26214]`, the tuned 0.497 is `[32571, 32964]`) and
/// the chain test's `[u16::MAX/4, u16::MAX − u16::MAX/4]`.
#[test]
fn derived_splits() {
    let cases: [(u64, &[u16], &[u64]); 5] = [
        (
            1_000_000_000,
            &[39_321, 26_214],
            &[600_000_000, 400_000_000],
        ),
        (
            1_000_000_000,
            &[32_571, 32_964],
            &[497_001_603, 502_998_397],
        ),
        (
            1_000_000_000,
            &[16_383, 49_152],
            &[249_988_556, 750_011_444],
        ),
        (1_000_000_000, &[1, 65_534], &[15_260, 999_984_740]),
        (
            u64::MAX,
            &[32_767, 32_768],
            &[9_223_231_297_218_904_063, 9_223_512_776_490_647_552],
        ),
    ];
    for (alpha, split, want) in cases {
        for rule in BOTH {
            assert_eq!(check_emission_split(split, 2, rule), Ok(()));
            assert_eq!(split_mechanism_emission(alpha, 2, Some(split), rule), want);
        }
    }
    for rule in BOTH {
        assert_eq!(split_mechanism_emission(7, 2, None, rule), vec![4, 3]);
        assert_eq!(split_mechanism_emission(1, 3, None, rule), vec![1, 0, 0]);
    }
}
