//! Commit-reveal v4 against the reference Python SDK (`bittensor==11.3.0`, whose
//! `bittensor_core` 0.1.5 is built from the crates subtensor runs): a commit this crate encrypts
//! opens in the SDK with drand quicknet's real round-1000 signature, the SDK's ciphertext opens
//! here, and the SDK's `get_encrypted_commit_v2` makes commits of this crate's layout, to the
//! round this crate predicts. Fails, never skips, when the SDK cannot be had.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[allow(dead_code)]
#[path = "../../protocol/tests/support/sdk_peer.rs"]
mod sdk_peer;

use orchestra_chain::crv4::{self, Beacon, ScheduleState, WeightsTlockPayload};
use parity_scale_codec::{Decode, Encode};
use std::process::Command;

use crv4::QUICKNET_ROUND_1000_SIGNATURE as ROUND_1000;

/// What the SDK's `encrypt_at_round` returns and `decrypt_with_signature` takes.
#[derive(Encode, Decode)]
struct UserData {
    encrypted_data: Vec<u8>,
    reveal_round: u64,
}

/// Runs `code` in the SDK's python; its stdout, trimmed.
fn python(code: &str) -> String {
    let out = Command::new(sdk_peer::sdk_python())
        .args(["-c", code])
        .output()
        .expect("run the SDK's python");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

fn payload() -> Vec<u8> {
    WeightsTlockPayload {
        hotkey: vec![7; 32],
        uids: vec![0, 1, 2],
        values: vec![65535, 100, 0],
        version_key: 12_345,
    }
    .encode()
}

#[test]
fn commits_open_both_ways_with_quicknet_round_1000() {
    // Rust encrypts, the SDK decrypts.
    let p = payload();
    let commit = crv4::encrypt(&Beacon::quicknet(), &p, 1000, [3; 32]).unwrap();
    let wrapped = UserData {
        encrypted_data: commit,
        reveal_round: 1000,
    }
    .encode();
    let opened = python(&format!(
        "import bittensor_core as c; print(c.decrypt_with_signature(bytes.fromhex('{}'), '{ROUND_1000}').hex())",
        hex::encode(&wrapped)
    ));
    assert_eq!(opened, hex::encode(&p));

    // The SDK encrypts, Rust decrypts.
    let sealed = python(&format!(
        "import bittensor_core as c; ct, r = c.encrypt_at_round(bytes.fromhex('{}'), 1000); print(r, bytes(ct).hex())",
        hex::encode(&p)
    ));
    let (round, ct) = sealed.split_once(' ').unwrap();
    assert_eq!(round, "1000");
    let ud = UserData::decode(&mut &hex::decode(ct).unwrap()[..]).unwrap();
    assert_eq!(ud.reveal_round, 1000);
    assert_eq!(ud.encrypted_data.len(), p.len() + crv4::CIPHERTEXT_OVERHEAD);
    let sig = hex::decode(ROUND_1000).unwrap();
    assert_eq!(crv4::decrypt(&ud.encrypted_data, &sig).unwrap(), p);
}

#[test]
fn the_sdks_weight_commits_have_this_layout_and_round() {
    let state = ScheduleState {
        tempo: 360,
        last_epoch_block: 1000,
        pending_epoch_at: 0,
        epoch_index: 10,
        blocks_since_last_step: 50,
    };
    let now = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64()
    };
    let before = crv4::reveal_round(state, 1050, 1, 12.0, now()).unwrap();
    let out = python(
        "import bittensor_core as c\n\
         ct, r = c.get_encrypted_commit_v2(uids=[0, 1, 2], weights=[65535, 100, 0], version_key=12345, \
         last_epoch_block=1000, pending_epoch_at=0, subnet_epoch_index=10, tempo=360, \
         blocks_since_last_step=50, current_block=1050, subnet_reveal_period_epochs=1, block_time=12.0, \
         hotkey=bytes([7] * 32))\n\
         print(r, bytes(ct).hex())",
    );
    let after = crv4::reveal_round(state, 1050, 1, 12.0, now()).unwrap();
    let (round, ct) = out.split_once(' ').unwrap();
    let round: u64 = round.parse().unwrap();
    assert!(
        (before..=after).contains(&round),
        "SDK round {round}, ours {before}..={after}"
    );
    let ct = hex::decode(ct).unwrap();
    assert_eq!(ct.len(), payload().len() + crv4::CIPHERTEXT_OVERHEAD);
    // Its layout is ours: a wrong signature fails on the signature, not on the format.
    let wrong = crv4::SimBeacon::from_seed([1; 32]).signature(round);
    assert_eq!(
        crv4::decrypt(&ct, &wrong),
        Err(crv4::Crv4Error::WrongSignature)
    );
}
