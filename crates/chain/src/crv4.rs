//! Commit-reveal v4: weights committed timelock-encrypted to a future drand round, which the
//! chain decrypts and applies itself when the reveal epoch comes (no reveal extrinsic).
//!
//! Followed sources (RaoFoundation/subtensor, spec 459): the payload and the chain's decryption
//! in `pallets/subtensor/src/coinbase/reveal_commits.rs` (`WeightsTlockPayload`, decrypted with
//! `tle::tlock::tld::<TinyBLS381, AESGCMStreamCipherProvider>`, the pulse signature of the
//! commit's round from `pallet_drand::Pulses`); the client side in the SDK's `bittensor-core`
//! (`bittensor-core/src/timelock/mod.rs`, shipped as `bittensor_core` 0.1.5 with `bittensor`
//! 11.3.0): `Identity::new(b"", sha256(round.to_be_bytes()))` against drand quicknet's public key,
//! a random 32-byte key, AES-GCM for the payload, and the reveal round predicted by simulating the
//! epoch schedule (`generate_commit_v2`).
//!
//! The encryption is the `timelock` crate's (ideal-lab5, the library subtensor uses). Its 0.3.0
//! release writes the IBE header's two 32-byte halves without the u64 length prefix the chain's
//! revision (`tle` at git 5416406c) reads, so [`encrypt`] writes the chain's layout itself:
//! `u` (96-byte compressed G2) ‖ `len64 ‖ v` ‖ `len64 ‖ w` ‖ `len64 ‖ body` ‖ `len64 ‖ "AES_GCM_"`,
//! `payload.len() + 244` bytes. `tests/crv4_python.rs` checks both directions against the SDK.

use ark_serialize::{CanonicalDeserialize, CanonicalSerialize};
use parity_scale_codec::{Decode, Encode};
use rand08::SeedableRng;
use rand08::rngs::StdRng;
use sha2::Digest;
use timelock::block_ciphers::AESGCMBlockCipherProvider;
use timelock::engines::EngineBLS;
use timelock::engines::drand::TinyBLS381;
use timelock::ibe::fullident::Identity;
use timelock::tlock::{TLECiphertext, tld, tle};

/// drand quicknet's public key (a compressed G2 point; chain hash `52db9ba7…84e971`), which
/// mainnet's `pallet_drand` verifies pulses against.
pub const QUICKNET_PUBLIC_KEY: &str = "83cf0f2896adee7eb8b5f01fcad3912212c437e0073e911fb90022d3e760183c8c4b450b6a0a6c3ac6a5776a2d1064510d1fec758c921cc22b0e17e63aaf4bcb5ed66304de9cf809bd274ca73bab4af5a6e9c76a4bc09e76eae8991ef5ece45a";
/// Quicknet round 1000's signature: a real pulse, the conformance vector a commit to round 1000
/// must open with (RaoFoundation/subtensor `pallets/drand/src/tests/mod.rs`; the `timelock`
/// crate's `tlock_encrypt_decrypt_drand_quicknet_works`).
pub const QUICKNET_ROUND_1000_SIGNATURE: &str = "b44679b9a59af2ec876b1a6b1ad52ea9b1615fc3982b19576350f93447cb1125e342b73a8dd2bacbe47e4b6b63ed5e39";
/// Unix time of quicknet's round 1.
pub const QUICKNET_GENESIS_S: u64 = 1_692_803_367;
/// Seconds between quicknet rounds.
pub const QUICKNET_PERIOD_S: u64 = 3;
/// Blocks the SDK adds after the predicted reveal block before the round must exist
/// (`SECURITY_BLOCK_OFFSET`).
pub const SECURITY_BLOCK_OFFSET: u64 = 3;
/// `MAX_TEMPO`, which bounds the SDK's schedule simulation (in tempos).
pub const MAX_TEMPO: u64 = 50_400;
/// The `commit_reveal_version` a timelocked commit carries (`CommitRevealWeightsVersion`'s
/// default, the only one the chain accepts there).
pub const COMMIT_REVEAL_VERSION: u16 = 4;
/// The IBE header, then the body's and the suite's length prefixes: what [`encrypt`] adds to
/// the payload (u 96 + 8+32 + 8+32, body length 8 + AES-GCM's inner lengths 8+8, tag 16, nonce
/// 12, suite 8+8).
pub const CIPHERTEXT_OVERHEAD: usize = 244;

/// What a timelocked commit decrypts to (`WeightsTlockPayload`, SCALE-encoded): the committer's
/// 32-byte public key, which the chain checks against the signer, and the weights.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
pub struct WeightsTlockPayload {
    /// The committing hotkey's public key.
    pub hotkey: Vec<u8>,
    /// Destination uids.
    pub uids: Vec<u16>,
    /// u16 weights, parallel to `uids`.
    pub values: Vec<u16>,
    /// The version key.
    pub version_key: u64,
}

impl WeightsTlockPayload {
    /// The SCALE bytes the chain decodes.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.encode()
    }
}

/// 32 bytes from the operating system's entropy: the seed a live commit must be encrypted with
/// (anything predictable would let others open it before its round).
pub fn fresh_seed() -> [u8; 32] {
    let mut seed = [0u8; 32];
    rand08::RngCore::fill_bytes(&mut rand08::rngs::OsRng, &mut seed);
    seed
}

/// The payload without the hotkey, which the chain still accepts (`LegacyWeightsTlockPayload`).
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
pub struct LegacyWeightsTlockPayload {
    /// Destination uids.
    pub uids: Vec<u16>,
    /// u16 weights.
    pub values: Vec<u16>,
    /// The version key.
    pub version_key: u64,
}

/// Why a timelocked commit could not be made or opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Crv4Error {
    /// A key or signature is not a valid curve point.
    #[error("not a valid {0}")]
    BadPoint(&'static str),
    /// The bytes are not a timelocked commit in the chain's layout.
    #[error("not a timelocked commit: {0}")]
    Malformed(&'static str),
    /// The signature does not open the commit (wrong round or beacon).
    #[error("the round signature does not open this commit")]
    WrongSignature,
    /// Encryption failed (only on a broken cipher provider).
    #[error("timelock encryption failed")]
    Encrypt,
}

type PublicKey = <TinyBLS381 as EngineBLS>::PublicKeyGroup;
type Signature = <TinyBLS381 as EngineBLS>::SignatureGroup;

/// A drand beacon's public key, which commits are encrypted to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Beacon {
    public_key: PublicKey,
}

impl Beacon {
    /// drand quicknet, the beacon the chain uses.
    pub fn quicknet() -> Beacon {
        let bytes = hex::decode(QUICKNET_PUBLIC_KEY).unwrap_or_default();
        // A constant: the unit test `quicknet_key_parses` holds it.
        Beacon::from_public_key(&bytes).unwrap_or_else(|_| Beacon {
            public_key: PublicKey::default(),
        })
    }

    /// A beacon from its 96-byte compressed G2 public key.
    pub fn from_public_key(bytes: &[u8]) -> Result<Beacon, Crv4Error> {
        let public_key = PublicKey::deserialize_compressed(bytes)
            .map_err(|_| Crv4Error::BadPoint("G2 public key"))?;
        Ok(Beacon { public_key })
    }

    /// The public key, compressed.
    pub fn public_key_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        // Serializing a valid point into a Vec cannot fail.
        let _ = self.public_key.serialize_compressed(&mut out);
        out
    }
}

/// A beacon whose secret key is known: the simulator's drand, which signs its own rounds (a
/// round's signature is the IBE secret of the round's identity).
#[derive(Debug, Clone)]
pub struct SimBeacon {
    secret: <TinyBLS381 as EngineBLS>::Scalar,
    beacon: Beacon,
}

impl SimBeacon {
    /// A beacon keyed from `seed`.
    pub fn from_seed(seed: [u8; 32]) -> SimBeacon {
        let mut rng = StdRng::from_seed(seed);
        let secret = <TinyBLS381 as EngineBLS>::generate(&mut rng);
        let public_key = <PublicKey as ark_ec::PrimeGroup>::generator() * secret;
        SimBeacon {
            secret,
            beacon: Beacon { public_key },
        }
    }

    /// Its public key.
    pub fn beacon(&self) -> &Beacon {
        &self.beacon
    }

    /// Round `round`'s signature (48-byte compressed G1), as a pulse carries it.
    pub fn signature(&self, round: u64) -> Vec<u8> {
        let secret = round_identity(round).extract::<TinyBLS381>(self.secret);
        let mut out = Vec::new();
        let _ = secret.0.serialize_compressed(&mut out);
        out
    }
}

/// The IBE identity of a drand round: `sha256(round.to_be_bytes())`, quicknet's signed message.
fn round_identity(round: u64) -> Identity {
    Identity::new(b"", &sha2::Sha256::digest(round.to_be_bytes()))
}

/// Encrypts `payload` to `round` of `beacon`, in the chain's commit layout. `seed` draws the
/// secret key and the encryption's randomness (callers pass fresh entropy; the simulator a
/// derived seed, so runs replay).
pub fn encrypt(
    beacon: &Beacon,
    payload: &[u8],
    round: u64,
    seed: [u8; 32],
) -> Result<Vec<u8>, Crv4Error> {
    let mut rng = StdRng::from_seed(seed);
    let mut secret = [0u8; 32];
    rand08::RngCore::fill_bytes(&mut rng, &mut secret);
    let ct = tle::<TinyBLS381, AESGCMBlockCipherProvider, _>(
        beacon.public_key,
        secret,
        payload,
        round_identity(round),
        &mut rng,
    )
    .map_err(|_| Crv4Error::Encrypt)?;
    let mut out = Vec::with_capacity(payload.len() + CIPHERTEXT_OVERHEAD);
    let written = ct
        .header
        .u
        .serialize_compressed(&mut out)
        .and_then(|()| ct.header.v.to_vec().serialize_compressed(&mut out))
        .and_then(|()| ct.header.w.to_vec().serialize_compressed(&mut out))
        .and_then(|()| ct.body.serialize_compressed(&mut out))
        .and_then(|()| ct.cipher_suite.serialize_compressed(&mut out));
    written.map_err(|_| Crv4Error::Encrypt)?;
    Ok(out)
}

/// Opens a commit in the chain's layout with a round's signature (48-byte compressed G1), as
/// the chain's reveal does.
pub fn decrypt(commit: &[u8], signature: &[u8]) -> Result<Vec<u8>, Crv4Error> {
    const U: usize = 96;
    let prefix = 32u64.to_le_bytes();
    if commit.len() < U + 2 * (8 + 32)
        || commit[U..U + 8] != prefix
        || commit[U + 40..U + 48] != prefix
    {
        return Err(Crv4Error::Malformed("header"));
    }
    // The timelock crate reads the header halves without their length prefixes.
    let mut native = Vec::with_capacity(commit.len() - 16);
    native.extend_from_slice(&commit[..U]);
    native.extend_from_slice(&commit[U + 8..U + 40]);
    native.extend_from_slice(&commit[U + 48..]);
    check_lengths(&commit[U + 80..])?;
    let ct = TLECiphertext::<TinyBLS381>::deserialize_compressed(&native[..])
        .map_err(|_| Crv4Error::Malformed("ciphertext"))?;
    let signature = Signature::deserialize_compressed(signature)
        .map_err(|_| Crv4Error::BadPoint("G1 signature"))?;
    tld::<TinyBLS381, AESGCMBlockCipherProvider>(ct, signature)
        .map_err(|_| Crv4Error::WrongSignature)
}

/// Every length prefix after the header against the bytes that follow it: `body` (an AES-GCM
/// ciphertext and a 12-byte nonce, each length-prefixed), then the 8-byte suite, and nothing
/// after. The `timelock` crate would otherwise allocate whatever a forged prefix says.
fn check_lengths(rest: &[u8]) -> Result<(), Crv4Error> {
    fn take<'a>(b: &mut &'a [u8], what: &'static str) -> Result<&'a [u8], Crv4Error> {
        let len = b
            .get(..8)
            .and_then(|x| <[u8; 8]>::try_from(x).ok())
            .map(u64::from_le_bytes)
            .ok_or(Crv4Error::Malformed(what))?;
        let len = usize::try_from(len).map_err(|_| Crv4Error::Malformed(what))?;
        let end = 8usize.checked_add(len).ok_or(Crv4Error::Malformed(what))?;
        let field = b.get(8..end).ok_or(Crv4Error::Malformed(what))?;
        *b = &b[end..];
        Ok(field)
    }
    let mut rest = rest;
    let mut body = take(&mut rest, "body length")?;
    take(&mut body, "AES-GCM ciphertext length")?;
    let nonce = take(&mut body, "AES-GCM nonce length")?;
    let suite = take(&mut rest, "cipher suite")?;
    if nonce.len() != 12 || !body.is_empty() || suite != b"AES_GCM_" || !rest.is_empty() {
        return Err(Crv4Error::Malformed("body layout"));
    }
    Ok(())
}

/// The decrypted payload as the chain reads it: the current form, else the legacy one (whose
/// committer is the signer by definition).
pub fn decode_payload(bytes: &[u8]) -> Option<WeightsTlockPayload> {
    if let Ok(p) = WeightsTlockPayload::decode(&mut &bytes[..]) {
        return Some(p);
    }
    LegacyWeightsTlockPayload::decode(&mut &bytes[..])
        .ok()
        .map(|l| WeightsTlockPayload {
            hotkey: Vec::new(),
            uids: l.uids,
            values: l.values,
            version_key: l.version_key,
        })
}

/// The scheduler state the SDK reads to predict when a commit is revealed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScheduleState {
    /// `Tempo`.
    pub tempo: u16,
    /// `LastEpochBlock`.
    pub last_epoch_block: u64,
    /// `PendingEpochAt` (0: none).
    pub pending_epoch_at: u64,
    /// `SubnetEpochIndex`.
    pub epoch_index: u64,
    /// `BlocksSinceLastStep`.
    pub blocks_since_last_step: u64,
}

impl ScheduleState {
    fn should_run(&self, block: u64) -> bool {
        if self.tempo == 0 {
            return false;
        }
        (self.pending_epoch_at > 0 && block >= self.pending_epoch_at)
            || self.blocks_since_last_step > MAX_TEMPO
            || block.saturating_sub(self.last_epoch_block) >= u64::from(self.tempo)
    }

    fn epoch_with_lookahead(&self, block: u64) -> u64 {
        self.epoch_index + u64::from(self.should_run(block))
    }

    fn step(mut self, block: u64) -> Self {
        self.blocks_since_last_step += 1;
        if self.should_run(block) {
            self.last_epoch_block = block;
            self.pending_epoch_at = 0;
            self.epoch_index += 1;
            self.blocks_since_last_step = 0;
        }
        self
    }
}

/// The first block whose reveal pass opens a commit sent at `current_block` (which lands in
/// `current_block + 1`) with `RevealPeriodEpochs = reveal_period`, as the SDK's
/// `predict_first_reveal_block` simulates it; `None` if no such block comes within the bound
/// it simulates (`MAX_TEMPO` tempos).
pub fn first_reveal_block(
    state: ScheduleState,
    current_block: u64,
    reveal_period: u64,
) -> Option<u64> {
    let landing = current_block + 1;
    let target = state.epoch_with_lookahead(landing) + reveal_period;
    let bound = u64::from(state.tempo) * MAX_TEMPO + MAX_TEMPO;
    let mut s = state;
    for block in landing..=landing + bound {
        if s.epoch_with_lookahead(block) == target {
            return Some(block);
        }
        s = s.step(block);
    }
    None
}

/// The drand round to encrypt to (`generate_commit_v2`): the quicknet round current
/// [`SECURITY_BLOCK_OFFSET`] blocks after the predicted reveal block, at `block_time_s` seconds
/// per block from `now_unix_s`.
pub fn reveal_round(
    state: ScheduleState,
    current_block: u64,
    reveal_period: u64,
    block_time_s: f64,
    now_unix_s: f64,
) -> Option<u64> {
    let reveal = first_reveal_block(state, current_block, reveal_period)?;
    let ingest = reveal + SECURITY_BLOCK_OFFSET;
    let secs = (ingest - current_block) as f64 * block_time_s;
    let round =
        ((now_unix_s + secs - QUICKNET_GENESIS_S as f64) / QUICKNET_PERIOD_S as f64).floor();
    Some((round as u64).max(1))
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn quicknet_key_parses() {
        assert_eq!(
            hex::encode(Beacon::quicknet().public_key_bytes()),
            QUICKNET_PUBLIC_KEY
        );
    }

    /// The SCALE layout the chain decodes (compact lengths, little-endian integers).
    #[test]
    fn payload_encoding() {
        let mut want = vec![0x80];
        want.extend([7; 32]);
        want.extend(hex::decode("0c000001000200").unwrap());
        want.extend(hex::decode("0cffff64000000").unwrap());
        want.extend(12_345u64.to_le_bytes());
        assert_eq!(payload(), want);
        assert_eq!(decode_payload(&want).unwrap().version_key, 12_345);
    }

    /// Encrypted to quicknet round 1000 and opened with that round's real signature; any other
    /// signature or a damaged commit fails.
    #[test]
    fn quicknet_round_1000_opens_its_commit() {
        let p = payload();
        let commit = encrypt(&Beacon::quicknet(), &p, 1000, [9; 32]).unwrap();
        assert_eq!(commit.len(), p.len() + CIPHERTEXT_OVERHEAD);
        assert!(commit.ends_with(&hex::decode("08000000000000004145535f47434d5f").unwrap()));
        let sig = hex::decode(QUICKNET_ROUND_1000_SIGNATURE).unwrap();
        assert_eq!(decrypt(&commit, &sig).unwrap(), p);
        let other = SimBeacon::from_seed([1; 32]).signature(1000);
        assert!(decrypt(&commit, &other).is_err());
        let mut damaged = commit.clone();
        damaged[200] ^= 1;
        assert!(decrypt(&damaged, &sig).is_err());
        // Forged lengths are refused, not allocated.
        let mut forged = commit.clone();
        forged[176..184].copy_from_slice(&u64::MAX.to_le_bytes());
        assert_eq!(
            decrypt(&forged, &sig),
            Err(Crv4Error::Malformed("body length"))
        );
        let mut forged = commit.clone();
        forged[184..192].copy_from_slice(&(u64::MAX - 4).to_le_bytes());
        assert_eq!(
            decrypt(&forged, &sig),
            Err(Crv4Error::Malformed("AES-GCM ciphertext length"))
        );
        assert!(decrypt(&commit[..50], &sig).is_err());
        // Same seed, same bytes: the simulator's commits replay.
        assert_eq!(
            encrypt(&Beacon::quicknet(), &p, 1000, [9; 32]).unwrap(),
            commit
        );
    }

    #[test]
    fn a_simulated_beacon_signs_its_rounds() {
        let b = SimBeacon::from_seed([5; 32]);
        let commit = encrypt(b.beacon(), b"weights", 77, [2; 32]).unwrap();
        assert_eq!(decrypt(&commit, &b.signature(77)).unwrap(), b"weights");
        assert!(decrypt(&commit, &b.signature(78)).is_err());
    }

    /// The SDK's prediction on a tempo-360 subnet (the inputs `tests/crv4_python.rs` also gives
    /// the SDK): the commit lands in 1051, epoch index 10; the next epoch (11) fires at 1360,
    /// whose reveal pass opens index 10's bucket.
    #[test]
    fn the_reveal_block_follows_the_schedule() {
        let s = ScheduleState {
            tempo: 360,
            last_epoch_block: 1000,
            pending_epoch_at: 0,
            epoch_index: 10,
            blocks_since_last_step: 50,
        };
        assert_eq!(first_reveal_block(s, 1050, 1), Some(1360));
        assert_eq!(first_reveal_block(s, 1050, 3), Some(2080));
        // An owner trigger pulls it in.
        let triggered = ScheduleState {
            pending_epoch_at: 1100,
            ..s
        };
        assert_eq!(first_reveal_block(triggered, 1050, 1), Some(1100));
        let now = 1_764_000_000.0;
        let round = reveal_round(s, 1050, 1, 12.0, now).unwrap();
        let secs = (1360 + 3 - 1050) as f64 * 12.0;
        assert_eq!(
            round,
            ((now + secs - QUICKNET_GENESIS_S as f64) / 3.0).floor() as u64
        );
        assert_eq!(
            first_reveal_block(ScheduleState { tempo: 0, ..s }, 1050, 1),
            None
        );
    }
}
