//! `config/genesis.json` (CometBFT v0.38 shape) and its validation into chain types.
//!
//! [`GenesisDoc`] is the file as written, with CometBFT's field names and encodings (int64 as decimal
//! strings, addresses as upper-case hex, keys as `{type, value}` objects). [`GenesisDoc::validate`] turns it
//! into a [`Genesis`] of chain types, or an error naming the offending field
//! (`validators[2].pub_key.value: …`). The `app_state` is the bank's genesis
//! ([`basalt_state::bank::BankGenesis`]) and is validated by the bank's own parser.
//!
//! Basalt differences from CometBFT: a validator address is the first 20 bytes of BLAKE2s-256 of the public
//! key (not SHA-256), and `consensus_params.block.max_bytes` is capped at
//! [`MAX_BLOCK_BYTES`] (`-1` means that cap).

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use basalt_consensus::types::encoding::MAX_BLOCK_BYTES;
use basalt_consensus::types::{Address, ChainId, PublicKey, ValidatorSet};
use basalt_state::bank::BankGenesis;
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use serde::{Deserialize, Deserializer, Serialize};

use crate::home::{write_file_durably, FileMode};
use crate::keys::{read_pub_key, TypedKey, PUB_KEY_TYPE};

/// Largest genesis file read (a million funded accounts is about 100 MB).
pub const MAX_GENESIS_FILE_BYTES: u64 = 256 * 1024 * 1024;

/// Longest validator name accepted.
pub const MAX_VALIDATOR_NAME_LEN: usize = 256;

/// `consensus_params.block.max_bytes` written by `basalt init` and `basalt testnet` (8 MiB: 20,000
/// transfers of ~220 bytes fit with room to spare).
pub const DEFAULT_MAX_BLOCK_BYTES: usize = 8 * 1024 * 1024;

/// The voting power `basalt init` and `basalt testnet` give each validator.
pub const DEFAULT_VALIDATOR_POWER: u64 = 10;

/// Why a genesis file cannot be read, written or used.
#[derive(Debug, thiserror::Error)]
pub enum GenesisError {
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
    /// The file is larger than [`MAX_GENESIS_FILE_BYTES`].
    #[error("{}: {len} bytes, more than the limit of {max}", path.display())]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// Its length.
        len: u64,
        /// The limit.
        max: u64,
    },
    /// Not JSON of the genesis shape (serde's message names the field, line and column).
    #[error("{}: not a genesis file: {reason}", path.display())]
    Json {
        /// The file.
        path: PathBuf,
        /// serde_json's reason.
        reason: String,
    },
    /// A field has a bad value.
    #[error("{field}: {reason}")]
    Field {
        /// Field path, e.g. `validators[2].pub_key.value`.
        field: String,
        /// What is wrong with it.
        reason: String,
    },
    /// An error about the contents of a file, with the file's path in front.
    #[error("{}: {source}", path.display())]
    InFile {
        /// The file.
        path: PathBuf,
        /// The error inside it.
        #[source]
        source: Box<GenesisError>,
    },
}

fn field_error(field: impl Into<String>, reason: impl Into<String>) -> GenesisError {
    GenesisError::Field {
        field: field.into(),
        reason: reason.into(),
    }
}

/// Accepts an int64 as a JSON string (CometBFT's encoding) or a JSON number, keeping it as text; the value
/// is checked by [`GenesisDoc::validate`], where the error can name the field.
fn int_string<'de, D: Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum IntOrString {
        Int(i64),
        Text(String),
    }
    Ok(match IntOrString::deserialize(deserializer)? {
        IntOrString::Int(n) => n.to_string(),
        IntOrString::Text(text) => text,
    })
}

/// The genesis file, field for field as CometBFT v0.38 writes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenesisDoc {
    /// Chain start time, RFC 3339 in UTC with nanoseconds (`2024-01-01T00:00:00.000000000Z`).
    pub genesis_time: String,
    /// The chain id.
    pub chain_id: String,
    /// First block height (int64 as a string, at least 1).
    #[serde(deserialize_with = "int_string")]
    pub initial_height: String,
    /// Consensus parameters.
    pub consensus_params: ConsensusParams,
    /// The initial validators.
    #[serde(default)]
    pub validators: Vec<GenesisValidator>,
    /// Initial application hash (hex, usually empty).
    #[serde(default)]
    pub app_hash: String,
    /// The application's genesis state (the bank's accounts).
    #[serde(default)]
    pub app_state: serde_json::Value,
}

/// `consensus_params`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsensusParams {
    /// `block`.
    pub block: BlockParams,
    /// `evidence`.
    pub evidence: EvidenceParams,
    /// `validator`.
    pub validator: ValidatorParams,
    /// `version`.
    #[serde(default)]
    pub version: VersionParams,
    /// `abci` (CometBFT v0.38; vote extensions are not supported, so only "0" is accepted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub abci: Option<AbciParams>,
}

/// `consensus_params.block`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BlockParams {
    /// Largest block in bytes (int64 string; `-1` means the protocol maximum).
    #[serde(deserialize_with = "int_string")]
    pub max_bytes: String,
    /// Most gas per block (int64 string; `-1` means unlimited).
    #[serde(deserialize_with = "int_string")]
    pub max_gas: String,
}

/// `consensus_params.evidence`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvidenceParams {
    /// Oldest evidence accepted, in blocks (int64 string).
    #[serde(deserialize_with = "int_string")]
    pub max_age_num_blocks: String,
    /// Oldest evidence accepted, in nanoseconds (int64 string).
    #[serde(deserialize_with = "int_string")]
    pub max_age_duration: String,
    /// Most evidence bytes per block (int64 string).
    #[serde(deserialize_with = "int_string")]
    pub max_bytes: String,
}

/// `consensus_params.validator`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ValidatorParams {
    /// Accepted validator key types (only `"ed25519"`).
    pub pub_key_types: Vec<String>,
}

/// `consensus_params.version`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VersionParams {
    /// Application protocol version (uint64 as a string).
    #[serde(deserialize_with = "int_string", default = "zero_string")]
    pub app: String,
}

/// `consensus_params.abci`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AbciParams {
    /// Height from which vote extensions are enabled ("0": never).
    #[serde(deserialize_with = "int_string")]
    pub vote_extensions_enable_height: String,
}

fn zero_string() -> String {
    "0".to_owned()
}

/// One entry of `validators`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenesisValidator {
    /// Upper-case hex address (may be empty: then derived from the key).
    #[serde(default)]
    pub address: String,
    /// The consensus key.
    pub pub_key: TypedKey,
    /// Voting power (int64 string, > 0).
    #[serde(deserialize_with = "int_string")]
    pub power: String,
    /// A label.
    #[serde(default)]
    pub name: String,
}

impl GenesisValidator {
    /// The entry for a key with a power and name.
    pub fn new(key: &PublicKey, power: u64, name: impl Into<String>) -> GenesisValidator {
        GenesisValidator {
            address: key.address().to_hex_upper(),
            pub_key: TypedKey {
                key_type: PUB_KEY_TYPE.to_owned(),
                value: BASE64.encode(key.to_bytes()),
            },
            power: power.to_string(),
            name: name.into(),
        }
    }
}

/// A validated genesis: what the node runs from.
#[derive(Debug, Clone)]
pub struct Genesis {
    /// The chain id.
    pub chain_id: ChainId,
    /// First block height (≥ 1).
    pub initial_height: u64,
    /// Chain start time, milliseconds since the Unix epoch.
    pub genesis_time_ms: u64,
    /// The initial validator set.
    pub validators: ValidatorSet,
    /// The application's genesis state, as in the file.
    pub app_state: serde_json::Value,
    /// The bank's parsed genesis (accounts and total supply).
    pub bank: BankGenesis,
    /// Largest block in bytes (`consensus_params.block.max_bytes`, `-1` resolved to the protocol cap).
    pub max_block_bytes: usize,
    /// How long misbehaviour stays evidence (`consensus_params.evidence.max_age_duration`).
    pub evidence_max_age: Duration,
    /// The document it came from.
    pub doc: GenesisDoc,
    /// The genesis JSON text (the file's text when loaded with [`load_genesis`], else the canonical
    /// rendering of `doc`), for the RPC `genesis` method.
    pub json: String,
}

impl GenesisDoc {
    /// A new genesis with CometBFT's default consensus parameters (block size capped for Basalt), the given
    /// validators and app state, and `genesis_time` = `time`.
    pub fn new(
        chain_id: &ChainId,
        time: SystemTime,
        validators: Vec<GenesisValidator>,
        app_state: serde_json::Value,
    ) -> GenesisDoc {
        GenesisDoc {
            genesis_time: humantime::format_rfc3339_nanos(time).to_string(),
            chain_id: chain_id.as_str().to_owned(),
            initial_height: "1".to_owned(),
            consensus_params: ConsensusParams {
                block: BlockParams {
                    max_bytes: DEFAULT_MAX_BLOCK_BYTES.to_string(),
                    max_gas: "-1".to_owned(),
                },
                evidence: EvidenceParams {
                    max_age_num_blocks: "100000".to_owned(),
                    max_age_duration: "172800000000000".to_owned(),
                    max_bytes: "1048576".to_owned(),
                },
                validator: ValidatorParams {
                    pub_key_types: vec!["ed25519".to_owned()],
                },
                version: VersionParams {
                    app: "0".to_owned(),
                },
                abci: Some(AbciParams {
                    vote_extensions_enable_height: "0".to_owned(),
                }),
            },
            validators,
            app_hash: String::new(),
            app_state,
        }
    }

    /// Reads and parses `genesis.json` (shape only; see [`GenesisDoc::validate`]).
    pub fn load(path: &Path) -> Result<GenesisDoc, GenesisError> {
        read_text(path).and_then(|text| parse_doc(path, &text))
    }

    /// Writes the document as pretty JSON, durably.
    pub fn save(&self, path: &Path) -> Result<(), GenesisError> {
        write_file_durably(path, self.to_json().as_bytes(), FileMode::Public).map_err(|source| {
            GenesisError::Write {
                path: path.to_path_buf(),
                source,
            }
        })
    }

    /// The canonical rendering: pretty JSON with a trailing newline (what [`GenesisDoc::save`] writes).
    pub fn to_json(&self) -> String {
        // Serialising plain structs and a `serde_json::Value` cannot fail.
        let mut text = serde_json::to_string_pretty(self).unwrap_or_default();
        text.push('\n');
        text
    }

    /// Checks every field and builds the chain types; errors name the field.
    pub fn validate(&self) -> Result<Genesis, GenesisError> {
        self.validate_with_json(self.to_json())
    }

    fn validate_with_json(&self, json: String) -> Result<Genesis, GenesisError> {
        let chain_id = ChainId::new(self.chain_id.clone())
            .map_err(|e| field_error("chain_id", e.to_string()))?;
        let initial_height = parse_i64("initial_height", &self.initial_height)?;
        if initial_height < 1 {
            return Err(field_error(
                "initial_height",
                format!("{initial_height} is below 1"),
            ));
        }
        let genesis_time_ms = parse_genesis_time(&self.genesis_time)?;
        let (max_block_bytes, evidence_max_age) = self.validate_consensus_params()?;
        if !self.app_hash.is_empty() && hex::decode(&self.app_hash).is_err() {
            return Err(field_error(
                "app_hash",
                format!("{:?} is not hex", self.app_hash),
            ));
        }
        let validators = self.validate_validators()?;
        let bank = BankGenesis::from_json(&self.app_state)
            .map_err(|e| field_error("app_state", e.to_string()))?;
        Ok(Genesis {
            chain_id,
            initial_height: initial_height as u64,
            genesis_time_ms,
            validators,
            app_state: self.app_state.clone(),
            bank,
            max_block_bytes,
            evidence_max_age,
            doc: self.clone(),
            json,
        })
    }

    /// Returns the block size limit and the evidence max age.
    fn validate_consensus_params(&self) -> Result<(usize, Duration), GenesisError> {
        let params = &self.consensus_params;
        let max_bytes = parse_i64("consensus_params.block.max_bytes", &params.block.max_bytes)?;
        let max_block_bytes = match max_bytes {
            -1 => MAX_BLOCK_BYTES,
            n if n >= 1024 && n as u64 <= MAX_BLOCK_BYTES as u64 => n as usize,
            n => {
                return Err(field_error(
                    "consensus_params.block.max_bytes",
                    format!("{n} is outside 1024..={MAX_BLOCK_BYTES} (or -1 for the maximum)"),
                ))
            }
        };
        let max_gas = parse_i64("consensus_params.block.max_gas", &params.block.max_gas)?;
        if max_gas < -1 {
            return Err(field_error(
                "consensus_params.block.max_gas",
                format!("{max_gas} is below -1"),
            ));
        }
        let evidence = &params.evidence;
        let age_blocks = parse_i64(
            "consensus_params.evidence.max_age_num_blocks",
            &evidence.max_age_num_blocks,
        )?;
        if age_blocks < 1 {
            return Err(field_error(
                "consensus_params.evidence.max_age_num_blocks",
                format!("{age_blocks} is below 1"),
            ));
        }
        let age_ns = parse_i64(
            "consensus_params.evidence.max_age_duration",
            &evidence.max_age_duration,
        )?;
        if age_ns < 1 {
            return Err(field_error(
                "consensus_params.evidence.max_age_duration",
                format!("{age_ns} is below 1 (nanoseconds)"),
            ));
        }
        let evidence_bytes = parse_i64("consensus_params.evidence.max_bytes", &evidence.max_bytes)?;
        if evidence_bytes < 0 || evidence_bytes as u64 > max_block_bytes as u64 {
            return Err(field_error(
                "consensus_params.evidence.max_bytes",
                format!("{evidence_bytes} is outside 0..=block.max_bytes ({max_block_bytes})"),
            ));
        }
        let types = &params.validator.pub_key_types;
        if types.is_empty() || types.iter().any(|t| t != "ed25519") {
            return Err(field_error(
                "consensus_params.validator.pub_key_types",
                format!("{types:?}: only [\"ed25519\"] is supported"),
            ));
        }
        params.version.app.parse::<u64>().map_err(|_| {
            field_error(
                "consensus_params.version.app",
                format!("{:?} is not an unsigned integer", params.version.app),
            )
        })?;
        if let Some(abci) = &params.abci {
            let height = parse_i64(
                "consensus_params.abci.vote_extensions_enable_height",
                &abci.vote_extensions_enable_height,
            )?;
            if height != 0 {
                return Err(field_error(
                    "consensus_params.abci.vote_extensions_enable_height",
                    "vote extensions are not supported; must be \"0\"",
                ));
            }
        }
        Ok((max_block_bytes, Duration::from_nanos(age_ns as u64)))
    }

    fn validate_validators(&self) -> Result<ValidatorSet, GenesisError> {
        if self.validators.is_empty() {
            return Err(field_error(
                "validators",
                "empty: a Basalt chain starts from its genesis validators",
            ));
        }
        let mut members = Vec::with_capacity(self.validators.len());
        let mut seen = std::collections::BTreeSet::new();
        for (i, v) in self.validators.iter().enumerate() {
            let at = |field: &str| format!("validators[{i}].{field}");
            let key = read_pub_key(&v.pub_key).map_err(|reason| {
                let field = if reason.starts_with("type") {
                    at("pub_key.type")
                } else {
                    at("pub_key.value")
                };
                field_error(field, reason)
            })?;
            if !v.address.is_empty() {
                let address = Address::from_hex(&v.address).map_err(|_| {
                    field_error(
                        at("address"),
                        format!("{:?} is not 40 hex characters", v.address),
                    )
                })?;
                if address != key.address() {
                    return Err(field_error(
                        at("address"),
                        format!(
                            "{} is not the key's address {} (first 20 bytes of BLAKE2s-256 of the key)",
                            v.address,
                            key.address()
                        ),
                    ));
                }
            }
            let power = parse_i64(&at("power"), &v.power)?;
            if power < 1 {
                return Err(field_error(at("power"), format!("{power} is not positive")));
            }
            if v.name.len() > MAX_VALIDATOR_NAME_LEN {
                return Err(field_error(
                    at("name"),
                    format!("longer than {MAX_VALIDATOR_NAME_LEN} bytes"),
                ));
            }
            if !seen.insert(key.address()) {
                return Err(field_error(
                    at("pub_key"),
                    format!("duplicate validator {}", key.address()),
                ));
            }
            members.push((key, power as u64));
        }
        ValidatorSet::new(members).map_err(|e| field_error("validators", e.to_string()))
    }
}

/// Reads, parses and validates a genesis file; [`Genesis::json`] is the file's own text.
pub fn load_genesis(path: &Path) -> Result<Genesis, GenesisError> {
    let text = read_text(path)?;
    let doc = parse_doc(path, &text)?;
    doc.validate_with_json(text)
        .map_err(|error| GenesisError::InFile {
            path: path.to_path_buf(),
            source: Box::new(error),
        })
}

fn read_text(path: &Path) -> Result<String, GenesisError> {
    let read_error = |source| GenesisError::Read {
        path: path.to_path_buf(),
        source,
    };
    let len = std::fs::metadata(path).map_err(read_error)?.len();
    if len > MAX_GENESIS_FILE_BYTES {
        return Err(GenesisError::TooLarge {
            path: path.to_path_buf(),
            len,
            max: MAX_GENESIS_FILE_BYTES,
        });
    }
    std::fs::read_to_string(path).map_err(read_error)
}

fn parse_doc(path: &Path, text: &str) -> Result<GenesisDoc, GenesisError> {
    serde_json::from_str(text).map_err(|e| GenesisError::Json {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })
}

fn parse_i64(field: &str, text: &str) -> Result<i64, GenesisError> {
    text.parse::<i64>()
        .map_err(|_| field_error(field, format!("{text:?} is not an int64")))
}

/// Parses an RFC 3339 UTC time (`Z`, optional fraction up to nanoseconds) into ms since the epoch.
fn parse_genesis_time(text: &str) -> Result<u64, GenesisError> {
    let time = humantime::parse_rfc3339(text).map_err(|e| {
        field_error(
            "genesis_time",
            format!(
                "{text:?} is not an RFC 3339 UTC time such as 2024-01-01T00:00:00.000000000Z: {e}"
            ),
        )
    })?;
    let since_epoch = time
        .duration_since(UNIX_EPOCH)
        .map_err(|_| field_error("genesis_time", format!("{text:?} is before 1970")))?;
    u64::try_from(since_epoch.as_millis())
        .map_err(|_| field_error("genesis_time", format!("{text:?} is too far in the future")))
}

/// The genesis time for a new chain: now, truncated to whole milliseconds (so the text and
/// `genesis_time_ms` agree exactly).
pub fn genesis_time_now() -> SystemTime {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    UNIX_EPOCH + Duration::from_millis(now.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use basalt_consensus::types::PrivateKey;

    fn key(n: u8) -> PublicKey {
        PrivateKey::from_seed(&[n; 32]).public_key()
    }

    fn sample() -> GenesisDoc {
        let validators = (1..=3)
            .map(|n| GenesisValidator::new(&key(n), 10, format!("v{n}")))
            .collect();
        let app_state = serde_json::json!({"accounts": [
            {"address": key(9).address().to_hex_upper(), "balance": "1000"}
        ]});
        GenesisDoc::new(
            &ChainId::new("test-chain").unwrap(),
            UNIX_EPOCH + Duration::from_millis(1_700_000_000_123),
            validators,
            app_state,
        )
    }

    #[test]
    fn valid_genesis_builds_chain_types() {
        let genesis = sample().validate().unwrap();
        assert_eq!(genesis.chain_id.as_str(), "test-chain");
        assert_eq!(genesis.initial_height, 1);
        assert_eq!(genesis.genesis_time_ms, 1_700_000_000_123);
        assert_eq!(genesis.validators.len(), 3);
        assert_eq!(genesis.validators.total_power(), 30);
        assert_eq!(genesis.max_block_bytes, DEFAULT_MAX_BLOCK_BYTES);
        assert_eq!(genesis.evidence_max_age, Duration::from_secs(48 * 3_600));
        assert_eq!(genesis.bank.total_supply, 1000);
        assert_eq!(genesis.doc.genesis_time, "2023-11-14T22:13:20.123000000Z");
    }

    #[test]
    fn cometbft_shape_and_roundtrip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("genesis.json");
        let doc = sample();
        doc.save(&path).unwrap();
        assert_eq!(GenesisDoc::load(&path).unwrap(), doc);
        let loaded = load_genesis(&path).unwrap();
        assert_eq!(loaded.json, std::fs::read_to_string(&path).unwrap());
        let json: serde_json::Value = serde_json::from_str(&loaded.json).unwrap();
        assert_eq!(json["initial_height"], "1");
        assert_eq!(json["consensus_params"]["block"]["max_gas"], "-1");
        assert_eq!(
            json["consensus_params"]["validator"]["pub_key_types"][0],
            "ed25519"
        );
        assert_eq!(json["validators"][0]["power"], "10");
        assert_eq!(json["validators"][0]["pub_key"]["type"], PUB_KEY_TYPE);
        assert_eq!(json["app_hash"], "");
    }

    #[test]
    fn numbers_are_accepted_for_int64_strings() {
        let mut json: serde_json::Value = serde_json::from_str(&sample().to_json()).unwrap();
        json["initial_height"] = 5.into();
        json["validators"][0]["power"] = 7.into();
        let doc: GenesisDoc = serde_json::from_value(json).unwrap();
        let genesis = doc.validate().unwrap();
        assert_eq!(genesis.initial_height, 5);
        assert_eq!(genesis.validators.total_power(), 27);
    }

    /// Each class of bad genesis gives an error naming the field.
    #[test]
    fn bad_genesis_names_the_field() {
        type Edit = fn(&mut GenesisDoc);
        let cases: &[(Edit, &str)] = &[
            (|d| d.chain_id = String::new(), "chain_id"),
            (|d| d.chain_id = "has space".into(), "chain_id"),
            (|d| d.initial_height = "0".into(), "initial_height"),
            (|d| d.initial_height = "one".into(), "initial_height"),
            (|d| d.genesis_time = "yesterday".into(), "genesis_time"),
            (
                |d| d.consensus_params.block.max_bytes = (MAX_BLOCK_BYTES + 1).to_string(),
                "consensus_params.block.max_bytes",
            ),
            (
                |d| d.consensus_params.block.max_bytes = "0".into(),
                "consensus_params.block.max_bytes",
            ),
            (
                |d| d.consensus_params.block.max_gas = "-2".into(),
                "consensus_params.block.max_gas",
            ),
            (
                |d| d.consensus_params.evidence.max_age_num_blocks = "0".into(),
                "consensus_params.evidence.max_age_num_blocks",
            ),
            (
                |d| d.consensus_params.evidence.max_age_duration = "x".into(),
                "consensus_params.evidence.max_age_duration",
            ),
            (
                |d| d.consensus_params.evidence.max_bytes = "-1".into(),
                "consensus_params.evidence.max_bytes",
            ),
            (
                |d| d.consensus_params.validator.pub_key_types = vec!["secp256k1".into()],
                "consensus_params.validator.pub_key_types",
            ),
            (
                |d| d.consensus_params.version.app = "-1".into(),
                "consensus_params.version.app",
            ),
            (|d| d.app_hash = "zz".into(), "app_hash"),
            (|d| d.validators.clear(), "validators"),
            (
                |d| d.validators[2].pub_key.value = "AAAA".into(),
                "validators[2].pub_key.value",
            ),
            (
                |d| d.validators[1].pub_key.key_type = "tendermint/PubKeySecp256k1".into(),
                "validators[1].pub_key.type",
            ),
            (
                |d| d.validators[0].address = key(5).address().to_hex_upper(),
                "validators[0].address",
            ),
            (
                |d| d.validators[0].address = "nothex".into(),
                "validators[0].address",
            ),
            (
                |d| d.validators[1].power = "0".into(),
                "validators[1].power",
            ),
            (
                |d| d.validators[1].power = "ten".into(),
                "validators[1].power",
            ),
            (
                |d| d.validators[2] = d.validators[0].clone(),
                "validators[2].pub_key",
            ),
            (
                |d| d.validators[0].power = (i64::MAX / 4).to_string(),
                "validators",
            ),
            (
                |d| {
                    d.app_state =
                        serde_json::json!({"accounts": [{"address": "00", "balance": "1"}]})
                },
                "app_state",
            ),
            (
                |d| d.app_state = serde_json::json!({"acounts": []}),
                "app_state",
            ),
        ];
        for (edit, field) in cases {
            let mut doc = sample();
            edit(&mut doc);
            match doc.validate() {
                Err(GenesisError::Field {
                    field: named,
                    reason,
                }) => {
                    assert_eq!(&named, field, "{reason}")
                }
                other => panic!("{field}: {other:?}"),
            }
        }
    }

    #[test]
    fn empty_address_is_derived_and_load_errors_name_the_file() {
        let mut doc = sample();
        doc.validators[0].address.clear();
        doc.validate().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("genesis.json");
        std::fs::write(&path, "{\"chain_id\": 5}").unwrap();
        let error = GenesisDoc::load(&path).unwrap_err().to_string();
        assert!(
            error.contains("genesis.json") && error.contains("line 1"),
            "{error}"
        );
        let mut bad = sample();
        bad.validators[0].power = "0".into();
        bad.save(&path).unwrap();
        let error = load_genesis(&path).unwrap_err().to_string();
        assert!(
            error.contains("genesis.json: validators[0].power"),
            "{error}"
        );
    }
}
