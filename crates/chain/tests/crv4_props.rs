//! `crv4::decrypt` on hostile bytes: any input, and any corruption of a real commit, is an
//! error — never a panic, an abort on a forged length, or a wrong plaintext.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use orchestra_chain::crv4::{self, SimBeacon};
use proptest::prelude::*;

fn beacon() -> SimBeacon {
    SimBeacon::from_seed([4; 32])
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn arbitrary_bytes_are_refused(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
        prop_assert!(crv4::decrypt(&bytes, &beacon().signature(9)).is_err());
    }

    #[test]
    fn a_corrupted_commit_never_opens(
        payload in prop::collection::vec(any::<u8>(), 0..200),
        at in any::<prop::sample::Index>(),
        flip in 1u8..=255,
    ) {
        let b = beacon();
        let commit = crv4::encrypt(b.beacon(), &payload, 9, [1; 32]).unwrap();
        let sig = b.signature(9);
        prop_assert_eq!(crv4::decrypt(&commit, &sig).unwrap(), payload);
        let mut bad = commit.clone();
        let i = at.index(bad.len());
        bad[i] ^= flip;
        prop_assert!(crv4::decrypt(&bad, &sig).is_err(), "byte {} flipped by {}", i, flip);
        // Truncated or extended commits too.
        prop_assert!(crv4::decrypt(&commit[..i], &sig).is_err());
        let mut longer = commit.clone();
        longer.push(flip);
        prop_assert!(crv4::decrypt(&longer, &sig).is_err());
    }
}
