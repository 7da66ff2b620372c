//! The Basalt light client's types on the wire: protobuf messages packed in `google.protobuf.Any`, as
//! IBC carries every client's states and headers (`MsgCreateClient`, `MsgUpdateClient`, the client and
//! consensus state paths a counterparty proves).
//!
//! Messages (package `basalt.lightclient.v1`, documented in docs/IBC.md):
//! - `ClientState { string chain_id = 1; Fraction trust_level = 2; uint64 trusting_period_ms = 3;
//!   uint64 max_clock_drift_ms = 4; ibc.core.client.v1.Height latest_height = 5;
//!   ibc.core.client.v1.Height frozen_height = 6; }` (`Fraction { uint64 numerator = 1; uint64 denominator = 2; }`)
//! - `ConsensusState { bytes root = 1; uint64 time_ms = 2; bytes next_validators_hash = 3; }`
//! - `Header { bytes header = 1; bytes commit = 2; bytes validators = 3;
//!   ibc.core.client.v1.Height trusted_height = 4; bytes trusted_next_validators = 5; }`, whose byte
//!   fields hold Basalt's canonical (Borsh) encodings of its header, commit and validator sets — the bytes
//!   Basalt hashes and signs, so nothing is re-encoded between the chain and its light client.
//! - `Misbehaviour { Header header_1 = 1; Header header_2 = 2; }`
//!
//! Decoding is the only way these bytes become client types, and it checks everything the types promise
//! (sizes first, then chain id, trust level, heights and revision numbers, every Borsh invariant), so a
//! decoded value is a valid one.

use basalt_consensus::light::{LightBlock, TrustLevel};
use basalt_consensus::types::encoding::{decode, encode, MAX_TX_BYTES};
use basalt_consensus::types::{ChainId, Commit, Hash, Header, ValidatorSet};
use basalt_consensus::Height;
use ibc_core::client::types::Height as IbcHeight;
use ibc_core::host::types::identifiers::ChainId as IbcChainId;
use ibc_core::primitives::proto::Any;
use prost::Message;

use super::{ClientHeader, ClientState, ConsensusState, FROZEN_HEIGHT};

#[cfg(test)]
mod tests;

/// `Any` type URL of a [`ClientState`].
pub const CLIENT_STATE_TYPE_URL: &str = "/basalt.lightclient.v1.ClientState";
/// `Any` type URL of a [`ConsensusState`].
pub const CONSENSUS_STATE_TYPE_URL: &str = "/basalt.lightclient.v1.ConsensusState";
/// `Any` type URL of a [`ClientHeader`].
pub const HEADER_TYPE_URL: &str = "/basalt.lightclient.v1.Header";
/// `Any` type URL of a [`Misbehaviour`].
pub const MISBEHAVIOUR_TYPE_URL: &str = "/basalt.lightclient.v1.Misbehaviour";

/// Largest encoded client or consensus state (a chain id is at most 50 bytes: these are far smaller).
pub const MAX_STATE_BYTES: usize = 1024;
/// Largest encoded header or misbehaviour: it arrives inside one transaction.
pub const MAX_CLIENT_MESSAGE_BYTES: usize = MAX_TX_BYTES;

/// Why bytes are not a Basalt light client value.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    /// The `Any` holds another type.
    #[error("expected {expected}, got type URL {got:?}")]
    TypeUrl {
        /// The type URL this decoder reads.
        expected: &'static str,
        /// The one it got (cut to 128 characters).
        got: String,
    },
    /// Larger than any valid value of its kind.
    #[error("{kind}: {len} bytes exceeds the limit of {max} bytes")]
    TooLarge {
        /// What was being decoded.
        kind: &'static str,
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// Not protobuf of the expected message.
    #[error("{kind}: {source}")]
    Protobuf {
        /// What was being decoded.
        kind: &'static str,
        /// The decoder's reason.
        #[source]
        source: prost::DecodeError,
    },
    /// An embedded Basalt value does not decode.
    #[error(transparent)]
    Basalt(#[from] basalt_consensus::types::encoding::DecodeError),
    /// A field breaks the type's rules.
    #[error("{kind}: {reason}")]
    Invalid {
        /// What was being decoded.
        kind: &'static str,
        /// Which rule.
        reason: String,
    },
}

/// A trust level as a fraction.
#[derive(Clone, PartialEq, Message)]
pub struct RawFraction {
    /// Numerator.
    #[prost(uint64, tag = "1")]
    pub numerator: u64,
    /// Denominator.
    #[prost(uint64, tag = "2")]
    pub denominator: u64,
}

/// An IBC height (`ibc.core.client.v1.Height`).
#[derive(Clone, PartialEq, Message)]
pub struct RawHeight {
    /// The counterparty's revision (from its chain id's `-N` suffix).
    #[prost(uint64, tag = "1")]
    pub revision_number: u64,
    /// The block height.
    #[prost(uint64, tag = "2")]
    pub revision_height: u64,
}

/// `basalt.lightclient.v1.ClientState`.
#[derive(Clone, PartialEq, Message)]
pub struct RawClientState {
    /// The counterparty chain.
    #[prost(string, tag = "1")]
    pub chain_id: String,
    /// Share of a trusted set that must sign a skipping update.
    #[prost(message, optional, tag = "2")]
    pub trust_level: Option<RawFraction>,
    /// Trusting period, ms.
    #[prost(uint64, tag = "3")]
    pub trusting_period_ms: u64,
    /// Maximum clock drift, ms.
    #[prost(uint64, tag = "4")]
    pub max_clock_drift_ms: u64,
    /// The latest height with a consensus state.
    #[prost(message, optional, tag = "5")]
    pub latest_height: Option<RawHeight>,
    /// Zero (or absent) while the client is not frozen.
    #[prost(message, optional, tag = "6")]
    pub frozen_height: Option<RawHeight>,
}

/// `basalt.lightclient.v1.ConsensusState`.
#[derive(Clone, PartialEq, Message)]
pub struct RawConsensusState {
    /// The counterparty's state root (32 bytes).
    #[prost(bytes = "vec", tag = "1")]
    pub root: Vec<u8>,
    /// The header's time, ms since the Unix epoch.
    #[prost(uint64, tag = "2")]
    pub time_ms: u64,
    /// The header's next validator set hash (32 bytes).
    #[prost(bytes = "vec", tag = "3")]
    pub next_validators_hash: Vec<u8>,
}

/// `basalt.lightclient.v1.Header`.
#[derive(Clone, PartialEq, Message)]
pub struct RawHeader {
    /// The counterparty header, Basalt-encoded.
    #[prost(bytes = "vec", tag = "1")]
    pub header: Vec<u8>,
    /// Its commit, Basalt-encoded.
    #[prost(bytes = "vec", tag = "2")]
    pub commit: Vec<u8>,
    /// The validator set of its height, Basalt-encoded.
    #[prost(bytes = "vec", tag = "3")]
    pub validators: Vec<u8>,
    /// The stored height it is verified from.
    #[prost(message, optional, tag = "4")]
    pub trusted_height: Option<RawHeight>,
    /// The trusted state's next validator set, Basalt-encoded.
    #[prost(bytes = "vec", tag = "5")]
    pub trusted_next_validators: Vec<u8>,
}

/// `basalt.lightclient.v1.Misbehaviour`.
#[derive(Clone, PartialEq, Message)]
pub struct RawMisbehaviour {
    /// One header.
    #[prost(message, optional, tag = "1")]
    pub header_1: Option<RawHeader>,
    /// A header conflicting with it.
    #[prost(message, optional, tag = "2")]
    pub header_2: Option<RawHeader>,
}

/// Evidence that the counterparty's validators signed two conflicting headers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Misbehaviour {
    /// One header.
    pub first: ClientHeader,
    /// The other.
    pub second: ClientHeader,
}

/// The IBC height of block `height` of `chain_id` (the revision number is the chain id's `-N` suffix, 0
/// when it has none, as ibc-rs and ibc-go read it).
pub fn ibc_height(chain_id: &ChainId, height: Height) -> Result<IbcHeight, WireError> {
    IbcHeight::new(revision_number(chain_id), height.0).map_err(|e| WireError::Invalid {
        kind: "height",
        reason: e.to_string(),
    })
}

/// The revision number IBC reads from `chain_id`.
pub fn revision_number(chain_id: &ChainId) -> u64 {
    IbcChainId::new(chain_id.as_str()).map_or(0, |id| id.revision_number())
}

impl ClientState {
    /// Packs it as an `Any`.
    pub fn to_any(&self) -> Any {
        let revision = revision_number(&self.chain_id);
        let raw = RawClientState {
            chain_id: self.chain_id.as_str().to_owned(),
            trust_level: Some(RawFraction {
                numerator: self.trust_level.numerator(),
                denominator: self.trust_level.denominator(),
            }),
            trusting_period_ms: self.trusting_period_ms,
            max_clock_drift_ms: self.max_clock_drift_ms,
            latest_height: Some(raw_height(revision, self.latest_height)),
            frozen_height: self.frozen_height.map(|h| raw_height(revision, h)),
        };
        any(CLIENT_STATE_TYPE_URL, &raw)
    }

    /// Unpacks and checks a client state.
    pub fn from_any(any: &Any) -> Result<ClientState, WireError> {
        const KIND: &str = "client state";
        let raw: RawClientState = unpack(any, CLIENT_STATE_TYPE_URL, KIND, MAX_STATE_BYTES)?;
        let chain_id = ChainId::new(raw.chain_id).map_err(|e| invalid(KIND, e))?;
        let fraction = raw
            .trust_level
            .ok_or_else(|| invalid(KIND, "no trust level"))?;
        let trust_level = TrustLevel::new(fraction.numerator, fraction.denominator)
            .map_err(|e| invalid(KIND, e))?;
        let revision = revision_number(&chain_id);
        let latest = raw
            .latest_height
            .ok_or_else(|| invalid(KIND, "no latest height"))?;
        let latest_height = block_height(&latest, revision, KIND)?;
        let frozen_height = match raw.frozen_height {
            Some(h) if h.revision_height != 0 || h.revision_number != 0 => {
                // Any non-zero height means frozen; the client keeps ICS-07's one marker.
                block_height(&h, revision, KIND)?;
                Some(FROZEN_HEIGHT)
            }
            _ => None,
        };
        let mut state = ClientState::new(
            chain_id,
            latest_height,
            trust_level,
            raw.trusting_period_ms,
            raw.max_clock_drift_ms,
        )
        .map_err(|e| invalid(KIND, e))?;
        state.frozen_height = frozen_height;
        Ok(state)
    }
}

impl ConsensusState {
    /// Packs it as an `Any`.
    pub fn to_any(&self) -> Any {
        let raw = RawConsensusState {
            root: self.root.0.to_vec(),
            time_ms: self.time_ms,
            next_validators_hash: self.next_validators_hash.0.to_vec(),
        };
        any(CONSENSUS_STATE_TYPE_URL, &raw)
    }

    /// Unpacks and checks a consensus state.
    pub fn from_any(any: &Any) -> Result<ConsensusState, WireError> {
        const KIND: &str = "consensus state";
        let raw: RawConsensusState = unpack(any, CONSENSUS_STATE_TYPE_URL, KIND, MAX_STATE_BYTES)?;
        Ok(ConsensusState {
            root: hash(&raw.root, KIND, "root")?,
            time_ms: raw.time_ms,
            next_validators_hash: hash(&raw.next_validators_hash, KIND, "next validators hash")?,
        })
    }
}

impl ClientHeader {
    /// Packs it as an `Any`.
    pub fn to_any(&self) -> Any {
        any(HEADER_TYPE_URL, &self.to_raw())
    }

    /// Unpacks and checks a header (its signatures are checked by the update, not here).
    pub fn from_any(any: &Any) -> Result<ClientHeader, WireError> {
        let raw: RawHeader = unpack(any, HEADER_TYPE_URL, "header", MAX_CLIENT_MESSAGE_BYTES)?;
        ClientHeader::from_raw(raw)
    }

    fn to_raw(&self) -> RawHeader {
        let revision = revision_number(&self.block.header.chain_id);
        RawHeader {
            header: encode(&self.block.header),
            commit: encode(&self.block.commit),
            validators: encode(&self.block.validators),
            trusted_height: Some(raw_height(revision, self.trusted_height)),
            trusted_next_validators: encode(&self.trusted_next_validators),
        }
    }

    fn from_raw(raw: RawHeader) -> Result<ClientHeader, WireError> {
        const KIND: &str = "header";
        const MAX: usize = MAX_CLIENT_MESSAGE_BYTES;
        // The small parts first: the validator sets (up to thousands of keys, each checked as it is
        // decoded) only once the header and its heights hold.
        let header: Header = decode("header", &raw.header, MAX)?;
        let revision = revision_number(&header.chain_id);
        let trusted = raw
            .trusted_height
            .ok_or_else(|| invalid(KIND, "no trusted height"))?;
        let trusted_height = block_height(&trusted, revision, KIND)?;
        if trusted_height >= header.height {
            return Err(invalid(
                KIND,
                format!(
                    "trusted height {} is not below the header's {}",
                    trusted_height.0, header.height.0
                ),
            ));
        }
        let commit: Commit = decode("commit", &raw.commit, MAX)?;
        let validators: ValidatorSet = decode("validator set", &raw.validators, MAX)?;
        let trusted_next_validators: ValidatorSet =
            decode("validator set", &raw.trusted_next_validators, MAX)?;
        Ok(ClientHeader {
            block: LightBlock {
                header,
                commit,
                validators,
            },
            trusted_height,
            trusted_next_validators,
        })
    }
}

impl Misbehaviour {
    /// Packs it as an `Any`.
    pub fn to_any(&self) -> Any {
        let raw = RawMisbehaviour {
            header_1: Some(self.first.to_raw()),
            header_2: Some(self.second.to_raw()),
        };
        any(MISBEHAVIOUR_TYPE_URL, &raw)
    }

    /// Unpacks and checks misbehaviour (both headers for the same chain).
    pub fn from_any(any: &Any) -> Result<Misbehaviour, WireError> {
        const KIND: &str = "misbehaviour";
        let raw: RawMisbehaviour =
            unpack(any, MISBEHAVIOUR_TYPE_URL, KIND, MAX_CLIENT_MESSAGE_BYTES)?;
        let first = raw
            .header_1
            .ok_or_else(|| invalid(KIND, "no first header"))?;
        let second = raw
            .header_2
            .ok_or_else(|| invalid(KIND, "no second header"))?;
        let (first, second) = (
            ClientHeader::from_raw(first)?,
            ClientHeader::from_raw(second)?,
        );
        if first.block.header.chain_id != second.block.header.chain_id {
            return Err(invalid(KIND, "the headers are of different chains"));
        }
        Ok(Misbehaviour { first, second })
    }
}

fn raw_height(revision_number: u64, height: Height) -> RawHeight {
    RawHeight {
        revision_number,
        revision_height: height.0,
    }
}

/// A block height from an IBC height of revision `revision` (heights of other revisions are not this
/// chain's, and height 0 is no block).
fn block_height(raw: &RawHeight, revision: u64, kind: &'static str) -> Result<Height, WireError> {
    if raw.revision_number != revision {
        return Err(invalid(
            kind,
            format!(
                "revision number {} is not the chain's {revision}",
                raw.revision_number
            ),
        ));
    }
    if raw.revision_height == 0 {
        return Err(invalid(kind, "height 0"));
    }
    Ok(Height(raw.revision_height))
}

fn hash(bytes: &[u8], kind: &'static str, field: &str) -> Result<Hash, WireError> {
    let array: [u8; 32] = bytes
        .try_into()
        .map_err(|_| invalid(kind, format!("{field} is {} bytes, not 32", bytes.len())))?;
    Ok(Hash(array))
}

fn any(type_url: &str, message: &impl Message) -> Any {
    Any {
        type_url: type_url.to_owned(),
        value: message.encode_to_vec(),
    }
}

/// Checks the type URL and the size before decoding anything.
fn unpack<M: Message + Default>(
    any: &Any,
    expected: &'static str,
    kind: &'static str,
    max: usize,
) -> Result<M, WireError> {
    if any.type_url != expected {
        return Err(WireError::TypeUrl {
            expected,
            got: any.type_url.chars().take(128).collect(),
        });
    }
    if any.value.len() > max {
        return Err(WireError::TooLarge {
            kind,
            len: any.value.len(),
            max,
        });
    }
    M::decode(any.value.as_slice()).map_err(|source| WireError::Protobuf { kind, source })
}

fn invalid(kind: &'static str, reason: impl ToString) -> WireError {
    WireError::Invalid {
        kind,
        reason: reason.to_string(),
    }
}
