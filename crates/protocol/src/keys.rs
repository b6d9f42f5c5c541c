//! Hotkeys: loading them from the SDK's wallet layout or from dev URIs, signing, and verifying.
//!
//! A hotkey is an sr25519 key (the Bittensor default) or an ed25519 one. Signatures over
//! sr25519 use Substrate's `substrate` signing context, as `sp_core` and the Python SDK do.

use crate::ss58;
use serde::Deserialize;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use subxt_signer::sr25519;
use subxt_signer::{SecretUri, bip39};

/// The signature scheme of a key, as `X-Bittensor-Crypto` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scheme {
    /// Schnorr over Ristretto25519, the Bittensor default (`cryptoType` 1).
    Sr25519,
    /// Ed25519 (`cryptoType` 0).
    Ed25519,
}

impl Scheme {
    /// The scheme's name in btauth/1 payloads and headers.
    pub fn name(self) -> &'static str {
        match self {
            Scheme::Sr25519 => "sr25519",
            Scheme::Ed25519 => "ed25519",
        }
    }

    /// The scheme named `name`, if btauth/1 supports it.
    pub fn from_name(name: &str) -> Option<Scheme> {
        match name {
            "sr25519" => Some(Scheme::Sr25519),
            "ed25519" => Some(Scheme::Ed25519),
            _ => None,
        }
    }

    /// The scheme an `X-Bittensor-Crypto` value names, read as the SDK's `parse_crypto_type`
    /// (`bittensor/wallets.py`, 11.3.0) reads it: surrounding whitespace and case ignored, and
    /// the wallet `cryptoType` codes `0` (ed25519) and `1` (sr25519) accepted. `Err` carries
    /// why anything else is refused (`ecdsa`, code 2, is a wallet type btauth/1 cannot sign
    /// with, in the SDK as here).
    pub fn from_header(value: &str) -> Result<Scheme, &'static str> {
        match value.trim().to_ascii_lowercase().as_str() {
            "sr25519" | "1" => Ok(Scheme::Sr25519),
            "ed25519" | "0" => Ok(Scheme::Ed25519),
            "ecdsa" | "2" => Err(
                "unsupported X-Bittensor-Crypto: ecdsa keys cannot sign btauth/1 (sr25519 or ed25519)",
            ),
            _ => Err("unsupported X-Bittensor-Crypto (expected sr25519 or ed25519)"),
        }
    }
}

/// Why a hotkey could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The wallet file could not be read.
    #[error("cannot read hotkey file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// The wallet file is not the SDK's hotkey JSON.
    #[error("hotkey file {path} is not a Bittensor keyfile: {reason}")]
    Format {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// A secret URI or phrase could not be parsed or derived.
    #[error("invalid secret URI or phrase: {0}")]
    Secret(String),
    /// The file's public key or address does not match the key derived from its secret.
    #[error("hotkey file {path}: secret does not match the stored public key")]
    Mismatch {
        /// The file.
        path: PathBuf,
    },
}

/// A hotkey that can sign: what a miner or validator identifies itself with.
#[derive(Clone)]
pub enum Hotkey {
    /// An sr25519 keypair.
    Sr25519(sr25519::Keypair),
    /// An ed25519 keypair.
    Ed25519(ed25519_dalek::SigningKey),
}

impl fmt::Debug for Hotkey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print secrets.
        write!(f, "Hotkey({} {})", self.scheme().name(), self.ss58())
    }
}

impl Hotkey {
    /// An sr25519 key from a secret URI: a dev path like `//Alice`, a mnemonic phrase with
    /// optional `//hard/soft` derivations and `///password`, or a `0x…` 32-byte seed.
    pub fn from_uri(uri: &str) -> Result<Hotkey, KeyError> {
        let parsed = SecretUri::from_str(uri).map_err(|e| KeyError::Secret(e.to_string()))?;
        let pair =
            sr25519::Keypair::from_uri(&parsed).map_err(|e| KeyError::Secret(e.to_string()))?;
        Ok(Hotkey::Sr25519(pair))
    }

    /// An sr25519 key from a 32-byte mini-secret seed (the keyfile's `secretSeed`).
    pub fn sr25519_from_seed(seed: [u8; 32]) -> Result<Hotkey, KeyError> {
        sr25519::Keypair::from_secret_key(seed)
            .map(Hotkey::Sr25519)
            .map_err(|e| KeyError::Secret(e.to_string()))
    }

    /// An ed25519 key from its 32-byte seed.
    pub fn ed25519_from_seed(seed: [u8; 32]) -> Hotkey {
        Hotkey::Ed25519(ed25519_dalek::SigningKey::from_bytes(&seed))
    }

    /// Load `<wallet_path>/<wallet>/hotkeys/<hotkey>`, the SDK's plaintext hotkey file.
    /// `wallet_path` is usually `~/.bittensor/wallets`.
    pub fn from_wallet(wallet_path: &Path, wallet: &str, hotkey: &str) -> Result<Hotkey, KeyError> {
        let path = wallet_path.join(wallet).join("hotkeys").join(hotkey);
        Hotkey::from_keyfile(&path)
    }

    /// Load one SDK hotkey file (JSON with `secretSeed` or `secretPhrase`, `publicKey`,
    /// `ss58Address`, `cryptoType`), checking that the secret matches the stored public key.
    pub fn from_keyfile(path: &Path) -> Result<Hotkey, KeyError> {
        let text = std::fs::read_to_string(path).map_err(|source| KeyError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let format = |reason: String| KeyError::Format {
            path: path.to_path_buf(),
            reason,
        };
        let file: Keyfile = serde_json::from_str(&text).map_err(|e| format(e.to_string()))?;
        let scheme = match file.crypto_type.unwrap_or(1) {
            1 => Scheme::Sr25519,
            0 => Scheme::Ed25519,
            other => return Err(format(format!("unsupported cryptoType {other}"))),
        };
        let key = match (&file.secret_seed, &file.secret_phrase, scheme) {
            (Some(seed), _, _) => {
                let bytes = hex::decode(seed.trim_start_matches("0x"))
                    .map_err(|_| format("secretSeed is not hex".into()))?;
                let seed: [u8; 32] = bytes
                    .try_into()
                    .map_err(|_| format("secretSeed is not 32 bytes".into()))?;
                match scheme {
                    Scheme::Sr25519 => Hotkey::sr25519_from_seed(seed)?,
                    Scheme::Ed25519 => Hotkey::ed25519_from_seed(seed),
                }
            }
            (None, Some(phrase), Scheme::Sr25519) => {
                let mnemonic = bip39::Mnemonic::parse(phrase)
                    .map_err(|e| KeyError::Secret(format!("secretPhrase: {e}")))?;
                let pair = sr25519::Keypair::from_phrase(&mnemonic, None)
                    .map_err(|e| KeyError::Secret(e.to_string()))?;
                Hotkey::Sr25519(pair)
            }
            (None, Some(_), Scheme::Ed25519) => {
                return Err(format("ed25519 keyfiles need a secretSeed".into()));
            }
            (None, None, _) => return Err(format("neither secretSeed nor secretPhrase".into())),
        };
        let public_hex = format!("0x{}", hex::encode(key.public_key()));
        let public_ok = file
            .public_key
            .as_deref()
            .is_none_or(|p| p.eq_ignore_ascii_case(&public_hex));
        let address_ok = file.ss58_address.as_deref().is_none_or(|a| a == key.ss58());
        if !public_ok || !address_ok {
            return Err(KeyError::Mismatch {
                path: path.to_path_buf(),
            });
        }
        Ok(key)
    }

    /// The signature scheme.
    pub fn scheme(&self) -> Scheme {
        match self {
            Hotkey::Sr25519(_) => Scheme::Sr25519,
            Hotkey::Ed25519(_) => Scheme::Ed25519,
        }
    }

    /// The 32-byte public key.
    pub fn public_key(&self) -> [u8; 32] {
        match self {
            Hotkey::Sr25519(pair) => pair.public_key().0,
            Hotkey::Ed25519(key) => key.verifying_key().to_bytes(),
        }
    }

    /// The SS58 address (prefix 42).
    pub fn ss58(&self) -> String {
        ss58::encode(&self.public_key(), ss58::BITTENSOR_PREFIX)
    }

    /// Sign `message` (sr25519 with the `substrate` context, or plain ed25519).
    pub fn sign(&self, message: &[u8]) -> [u8; 64] {
        match self {
            Hotkey::Sr25519(pair) => pair.sign(message).0,
            Hotkey::Ed25519(key) => {
                use ed25519_dalek::Signer;
                key.sign(message).to_bytes()
            }
        }
    }
}

/// A decoded public key, ready to check signatures. Decoding (point decompression) costs about a
/// tenth of a verification, so servers keep these around for callers they see often.
#[derive(Clone)]
pub enum VerifyingKey {
    /// An sr25519 public key.
    Sr25519(schnorrkel::PublicKey),
    /// An ed25519 public key.
    Ed25519(ed25519_dalek::VerifyingKey),
}

impl fmt::Debug for VerifyingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (scheme, public) = match self {
            VerifyingKey::Sr25519(k) => (Scheme::Sr25519, k.to_bytes()),
            VerifyingKey::Ed25519(k) => (Scheme::Ed25519, k.to_bytes()),
        };
        write!(
            f,
            "VerifyingKey({} 0x{})",
            scheme.name(),
            hex::encode(public)
        )
    }
}

impl VerifyingKey {
    /// Decode the 32-byte `public` key under `scheme`; `None` if it is not a valid point.
    pub fn from_bytes(scheme: Scheme, public: &[u8; 32]) -> Option<VerifyingKey> {
        match scheme {
            Scheme::Sr25519 => schnorrkel::PublicKey::from_bytes(public)
                .ok()
                .map(VerifyingKey::Sr25519),
            Scheme::Ed25519 => ed25519_dalek::VerifyingKey::from_bytes(public)
                .ok()
                .map(VerifyingKey::Ed25519),
        }
    }

    /// Check `signature` over `message` (sr25519 with the `substrate` context; strict ed25519).
    pub fn verify(&self, message: &[u8], signature: &[u8; 64]) -> bool {
        match self {
            VerifyingKey::Sr25519(key) => schnorrkel::Signature::from_bytes(signature)
                .is_ok_and(|sig| key.verify_simple(b"substrate", message, &sig).is_ok()),
            VerifyingKey::Ed25519(key) => key
                .verify_strict(message, &ed25519_dalek::Signature::from_bytes(signature))
                .is_ok(),
        }
    }
}

/// Check `signature` over `message` by the 32-byte `public` key under `scheme`.
pub fn verify_signature(
    scheme: Scheme,
    public: &[u8; 32],
    message: &[u8],
    signature: &[u8; 64],
) -> bool {
    VerifyingKey::from_bytes(scheme, public).is_some_and(|key| key.verify(message, signature))
}

/// The SDK's hotkey file. Unknown fields are tolerated: the SDK may add more.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Keyfile {
    secret_seed: Option<String>,
    secret_phrase: Option<String>,
    public_key: Option<String>,
    ss58_address: Option<String>,
    crypto_type: Option<u8>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dev_uris_give_the_well_known_addresses() {
        assert_eq!(
            Hotkey::from_uri("//Alice").unwrap().ss58(),
            "5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY"
        );
        assert_eq!(
            Hotkey::from_uri("//Bob").unwrap().ss58(),
            "5FHneW46xGXgs5mUiveU4sbTyGBzmstUspZC92UhjJM694ty"
        );
    }

    #[test]
    fn sign_then_verify_both_schemes() {
        for key in [
            Hotkey::from_uri("//Alice").unwrap(),
            Hotkey::ed25519_from_seed([9; 32]),
        ] {
            let sig = key.sign(b"hello");
            assert!(verify_signature(
                key.scheme(),
                &key.public_key(),
                b"hello",
                &sig
            ));
            assert!(!verify_signature(
                key.scheme(),
                &key.public_key(),
                b"hellO",
                &sig
            ));
        }
    }

    #[test]
    fn keyfile_loads_and_checks_public_key() {
        let dir = tempfile::tempdir().unwrap();
        let alice = Hotkey::sr25519_from_seed([1; 32]).unwrap();
        let hotkeys = dir.path().join("w").join("hotkeys");
        std::fs::create_dir_all(&hotkeys).unwrap();
        let file = serde_json::json!({
            "accountId": format!("0x{}", hex::encode(alice.public_key())),
            "publicKey": format!("0x{}", hex::encode(alice.public_key())),
            "secretSeed": format!("0x{}", hex::encode([1u8; 32])),
            "ss58Address": alice.ss58(),
            "cryptoType": 1,
        });
        std::fs::write(hotkeys.join("h"), file.to_string()).unwrap();
        let loaded = Hotkey::from_wallet(dir.path(), "w", "h").unwrap();
        assert_eq!(loaded.ss58(), alice.ss58());

        let mut wrong = file.clone();
        wrong["ss58Address"] = "5FHneW46xGXgs5mUiveU4sbTyGBzmstUspZC92UhjJM694ty".into();
        std::fs::write(hotkeys.join("bad"), wrong.to_string()).unwrap();
        assert!(matches!(
            Hotkey::from_wallet(dir.path(), "w", "bad"),
            Err(KeyError::Mismatch { .. })
        ));
        assert!(matches!(
            Hotkey::from_wallet(dir.path(), "w", "missing"),
            Err(KeyError::Io { .. })
        ));
        std::fs::write(hotkeys.join("junk"), "not json").unwrap();
        assert!(matches!(
            Hotkey::from_wallet(dir.path(), "w", "junk"),
            Err(KeyError::Format { .. })
        ));
    }
}
