//! `config/node_key.json` and `config/priv_validator_key.json` (CometBFT file formats).
//!
//! Both files hold an ed25519 key as CometBFT writes it: base64 of the 32-byte seed followed by the 32-byte
//! public key. Loading checks that the public half (and, for the validator key, the address and `pub_key`)
//! match the seed, so a hand-edited or mixed-up file is refused instead of signing with an unexpected key.
//! Both are written with mode 0600, durably.

use std::path::{Path, PathBuf};

use basalt_consensus::types::{Address, PrivateKey, PublicKey};
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use serde::{Deserialize, Serialize};

use crate::home::{write_file_durably, FileMode};

/// The amino type name of an ed25519 public key in CometBFT JSON.
pub const PUB_KEY_TYPE: &str = "tendermint/PubKeyEd25519";
/// The amino type name of an ed25519 private key in CometBFT JSON.
pub const PRIV_KEY_TYPE: &str = "tendermint/PrivKeyEd25519";

/// Largest key file read (a real one is under 500 bytes).
const MAX_KEY_FILE_BYTES: u64 = 64 * 1024;

/// Why a key file cannot be read or written.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The file could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The file could not be written.
    #[error("cannot write {}: {source}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not JSON of the expected shape.
    #[error("{}: not a key file: {reason}", path.display())]
    Json {
        /// The file.
        path: PathBuf,
        /// serde_json's reason (with line and column).
        reason: String,
    },
    /// A field has a bad value.
    #[error("{}: {field}: {reason}", path.display())]
    Field {
        /// The file.
        path: PathBuf,
        /// Dotted field name, e.g. `priv_key.value`.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
}

/// The `{"type": ..., "value": <base64>}` object CometBFT uses for keys.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TypedKey {
    /// Amino type name.
    #[serde(rename = "type")]
    pub key_type: String,
    /// Base64 of the key bytes.
    pub value: String,
}

/// The `pub_key` JSON object of a public key: `{"type":"tendermint/PubKeyEd25519","value":"<base64>"}`
/// (what `show-validator` prints and genesis and RPC carry).
pub fn pub_key_json(key: &PublicKey) -> serde_json::Value {
    serde_json::json!({
        "type": PUB_KEY_TYPE,
        "value": BASE64.encode(key.to_bytes()),
    })
}

fn typed_pub_key(key: &PublicKey) -> TypedKey {
    TypedKey {
        key_type: PUB_KEY_TYPE.to_owned(),
        value: BASE64.encode(key.to_bytes()),
    }
}

fn typed_priv_key(key: &PrivateKey) -> TypedKey {
    let mut bytes = Vec::with_capacity(64);
    bytes.extend_from_slice(&key.seed());
    bytes.extend_from_slice(&key.public_key().to_bytes());
    TypedKey {
        key_type: PRIV_KEY_TYPE.to_owned(),
        value: BASE64.encode(bytes),
    }
}

/// Reads a private key object: checks the type, the length (64 bytes: seed ‖ public key) and that the
/// public half is the seed's.
fn read_priv_key(
    path: &Path,
    field: &'static str,
    typed: &TypedKey,
) -> Result<PrivateKey, KeyError> {
    let bad = |reason: String| KeyError::Field {
        path: path.to_path_buf(),
        field,
        reason,
    };
    if typed.key_type != PRIV_KEY_TYPE {
        return Err(bad(format!(
            "type {:?} is not {PRIV_KEY_TYPE:?}",
            typed.key_type
        )));
    }
    let bytes = BASE64
        .decode(&typed.value)
        .map_err(|e| bad(format!("value is not base64: {e}")))?;
    let Ok(bytes) = <[u8; 64]>::try_from(bytes.as_slice()) else {
        return Err(bad(format!(
            "value is {} bytes, expected 64 (seed and public key)",
            bytes.len()
        )));
    };
    let mut seed = [0u8; 32];
    seed.copy_from_slice(&bytes[..32]);
    let key = PrivateKey::from_seed(&seed);
    if key.public_key().to_bytes()[..] != bytes[32..] {
        return Err(bad(
            "the public key half does not match the private key".to_owned()
        ));
    }
    Ok(key)
}

/// Reads a public key object (type and 32 valid bytes).
pub fn read_pub_key(typed: &TypedKey) -> Result<PublicKey, String> {
    if typed.key_type != PUB_KEY_TYPE {
        return Err(format!("type {:?} is not {PUB_KEY_TYPE:?}", typed.key_type));
    }
    let bytes = BASE64
        .decode(&typed.value)
        .map_err(|e| format!("value is not base64: {e}"))?;
    let bytes = <[u8; 32]>::try_from(bytes.as_slice())
        .map_err(|_| format!("value is {} bytes, expected 32", bytes.len()))?;
    PublicKey::from_bytes(&bytes).map_err(|e| e.to_string())
}

fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<T, KeyError> {
    let read_error = |source| KeyError::Read {
        path: path.to_path_buf(),
        source,
    };
    let len = std::fs::metadata(path).map_err(read_error)?.len();
    if len > MAX_KEY_FILE_BYTES {
        return Err(KeyError::Json {
            path: path.to_path_buf(),
            reason: format!("{len} bytes, more than the limit of {MAX_KEY_FILE_BYTES}"),
        });
    }
    let text = std::fs::read_to_string(path).map_err(read_error)?;
    serde_json::from_str(&text).map_err(|e| KeyError::Json {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })
}

fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<(), KeyError> {
    let write_error = |source| KeyError::Write {
        path: path.to_path_buf(),
        source,
    };
    let mut text =
        serde_json::to_string_pretty(value).map_err(|e| write_error(std::io::Error::other(e)))?;
    text.push('\n');
    write_file_durably(path, text.as_bytes(), FileMode::Private).map_err(write_error)
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct NodeKeyJson {
    priv_key: TypedKey,
}

/// The node's p2p identity key (`node_key.json`); its libp2p PeerId is the node id.
#[derive(Clone)]
pub struct NodeKey {
    seed: [u8; 32],
}

impl std::fmt::Debug for NodeKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print key material.
        write!(f, "NodeKey({})", self.peer_id())
    }
}

impl NodeKey {
    /// A fresh key from a cryptographic RNG.
    pub fn generate<R: rand_core::CryptoRngCore + ?Sized>(rng: &mut R) -> NodeKey {
        let mut seed = [0u8; 32];
        rng.fill_bytes(&mut seed);
        NodeKey { seed }
    }

    /// A key from its 32-byte seed.
    pub fn from_seed(seed: [u8; 32]) -> NodeKey {
        NodeKey { seed }
    }

    /// Reads `node_key.json`.
    pub fn load(path: &Path) -> Result<NodeKey, KeyError> {
        let json: NodeKeyJson = read_json(path)?;
        let key = read_priv_key(path, "priv_key", &json.priv_key)?;
        Ok(NodeKey { seed: key.seed() })
    }

    /// Writes `node_key.json` (mode 0600, durably).
    pub fn save(&self, path: &Path) -> Result<(), KeyError> {
        let json = NodeKeyJson {
            priv_key: typed_priv_key(&PrivateKey::from_seed(&self.seed)),
        };
        write_json(path, &json)
    }

    /// The 32-byte ed25519 seed.
    pub fn seed(&self) -> [u8; 32] {
        self.seed
    }

    /// The libp2p identity keypair of this key.
    pub fn keypair(&self) -> libp2p::identity::Keypair {
        // Infallible for 32 bytes: any 32 bytes are a valid ed25519 secret key.
        match libp2p::identity::Keypair::ed25519_from_bytes(self.seed) {
            Ok(keypair) => keypair,
            Err(_) => unreachable_keypair(),
        }
    }

    /// The node id: the libp2p PeerId of this key ("12D3KooW…").
    pub fn peer_id(&self) -> libp2p::PeerId {
        self.keypair().public().to_peer_id()
    }
}

/// `ed25519_from_bytes` only fails for a length other than 32, which the type rules out; rather than
/// panic, fall back to a fixed keypair that can never be anyone's identity by accident.
#[cold]
fn unreachable_keypair() -> libp2p::identity::Keypair {
    libp2p::identity::Keypair::generate_ed25519()
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct PrivValidatorKeyJson {
    address: String,
    pub_key: TypedKey,
    priv_key: TypedKey,
}

/// The validator's consensus signing key (`priv_validator_key.json`).
#[derive(Clone, Debug)]
pub struct PrivValidatorKey {
    key: PrivateKey,
}

impl PrivValidatorKey {
    /// A fresh key from a cryptographic RNG.
    pub fn generate<R: rand_core::CryptoRngCore + ?Sized>(rng: &mut R) -> PrivValidatorKey {
        PrivValidatorKey {
            key: PrivateKey::generate(rng),
        }
    }

    /// Wraps an existing private key.
    pub fn from_private_key(key: PrivateKey) -> PrivValidatorKey {
        PrivValidatorKey { key }
    }

    /// Reads `priv_validator_key.json`, checking that `pub_key` and `address` belong to `priv_key`.
    pub fn load(path: &Path) -> Result<PrivValidatorKey, KeyError> {
        let json: PrivValidatorKeyJson = read_json(path)?;
        let key = read_priv_key(path, "priv_key", &json.priv_key)?;
        let bad = |field, reason: String| KeyError::Field {
            path: path.to_path_buf(),
            field,
            reason,
        };
        let pub_key = read_pub_key(&json.pub_key).map_err(|r| bad("pub_key", r))?;
        if pub_key != key.public_key() {
            return Err(bad("pub_key", "does not match the private key".to_owned()));
        }
        let address = Address::from_hex(&json.address).map_err(|_| {
            bad(
                "address",
                format!("{:?} is not 40 hex characters", json.address),
            )
        })?;
        if address != key.public_key().address() {
            return Err(bad(
                "address",
                format!(
                    "{} is not the key's address {} (first 20 bytes of BLAKE2s-256 of the public key)",
                    json.address,
                    key.public_key().address()
                ),
            ));
        }
        Ok(PrivValidatorKey { key })
    }

    /// Writes `priv_validator_key.json` (mode 0600, durably).
    pub fn save(&self, path: &Path) -> Result<(), KeyError> {
        let public = self.key.public_key();
        let json = PrivValidatorKeyJson {
            address: public.address().to_hex_upper(),
            pub_key: typed_pub_key(&public),
            priv_key: typed_priv_key(&self.key),
        };
        write_json(path, &json)
    }

    /// The signing key.
    pub fn private_key(&self) -> &PrivateKey {
        &self.key
    }

    /// The public key.
    pub fn public_key(&self) -> PublicKey {
        self.key.public_key()
    }

    /// The validator address.
    pub fn address(&self) -> Address {
        self.key.public_key().address()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    struct CountingRng(u8);
    impl rand_core::RngCore for CountingRng {
        fn next_u32(&mut self) -> u32 {
            rand_core::impls::next_u32_via_fill(self)
        }
        fn next_u64(&mut self) -> u64 {
            rand_core::impls::next_u64_via_fill(self)
        }
        fn fill_bytes(&mut self, dest: &mut [u8]) {
            for b in dest {
                self.0 = self.0.wrapping_add(1);
                *b = self.0;
            }
        }
        fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
            self.fill_bytes(dest);
            Ok(())
        }
    }
    impl rand_core::CryptoRng for CountingRng {}

    #[test]
    fn node_key_roundtrip_and_peer_id() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node_key.json");
        let key = NodeKey::generate(&mut CountingRng(0));
        key.save(&path).unwrap();
        let loaded = NodeKey::load(&path).unwrap();
        assert_eq!(loaded.seed(), key.seed());
        assert_eq!(loaded.peer_id(), key.peer_id());
        assert!(key.peer_id().to_base58().starts_with("12D3KooW"));
        let json: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(json["priv_key"]["type"], PRIV_KEY_TYPE);
        let raw = BASE64
            .decode(json["priv_key"]["value"].as_str().unwrap())
            .unwrap();
        assert_eq!(raw.len(), 64);
        assert_eq!(&raw[..32], &key.seed());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn priv_validator_key_roundtrip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pv.json");
        let key = PrivValidatorKey::generate(&mut CountingRng(7));
        key.save(&path).unwrap();
        let loaded = PrivValidatorKey::load(&path).unwrap();
        assert_eq!(loaded.public_key(), key.public_key());
        assert_eq!(loaded.address(), key.address());
        let json: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(json["address"], key.address().to_hex_upper());
        assert_eq!(json["pub_key"], pub_key_json(&key.public_key()));
    }

    /// Every mismatch or malformation is refused, naming the file and the field.
    #[test]
    fn priv_validator_key_mismatches_are_detected() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pv.json");
        let key = PrivValidatorKey::generate(&mut CountingRng(1));
        let other = PrivValidatorKey::generate(&mut CountingRng(100));
        key.save(&path).unwrap();
        let good: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let other_priv = typed_priv_key(other.private_key()).value;
        let mut swapped_half = BASE64
            .decode(good["priv_key"]["value"].as_str().unwrap())
            .unwrap();
        swapped_half[40] ^= 1;
        type Edit = Box<dyn Fn(&mut serde_json::Value)>;
        let other_address = other.address().to_hex_upper();
        let other_pub = pub_key_json(&other.public_key());
        let cases: Vec<(Edit, &str)> = vec![
            (
                Box::new(move |j| j["address"] = other_address.clone().into()),
                "address",
            ),
            (Box::new(|j| j["address"] = "XYZ".into()), "address"),
            (
                Box::new(move |j| j["pub_key"] = other_pub.clone()),
                "pub_key",
            ),
            (
                Box::new(move |j| j["priv_key"]["value"] = other_priv.clone().into()),
                "pub_key",
            ),
            (
                Box::new(move |j| j["priv_key"]["value"] = BASE64.encode(&swapped_half).into()),
                "priv_key",
            ),
            (
                Box::new(|j| j["priv_key"]["value"] = "AAAA".into()),
                "priv_key",
            ),
            (
                Box::new(|j| j["priv_key"]["type"] = "tendermint/PrivKeySecp256k1".into()),
                "priv_key",
            ),
            (Box::new(|j| j["pub_key"]["value"] = "!!".into()), "pub_key"),
        ];
        for (edit, field) in cases {
            let mut json = good.clone();
            edit(&mut json);
            std::fs::write(&path, json.to_string()).unwrap();
            let error = PrivValidatorKey::load(&path).unwrap_err();
            match &error {
                KeyError::Field { field: named, .. } => assert_eq!(named, &field, "{error}"),
                other => panic!("{field}: {other:?}"),
            }
            assert!(error.to_string().contains("pv.json"), "{error}");
        }
        std::fs::write(&path, "{\"address\": 1}").unwrap();
        assert!(matches!(
            PrivValidatorKey::load(&path),
            Err(KeyError::Json { .. })
        ));
    }
}
