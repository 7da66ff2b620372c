//! The Basalt light client's rules (IBC client type [`CLIENT_TYPE`]): a client of another Basalt chain
//! kept on this chain, updated with headers of that chain, frozen when it sees misbehaviour. Pure: the
//! caller passes the consensus states it stores and the block time (never the wall clock); the ibc-rs
//! client traits are a thin layer over these functions.
//!
//! Rules (as ICS-07 applies them to Tendermint chains):
//! - An update is a header of the counterparty with its commit and validator set, plus the height of a
//!   stored consensus state it is verified from and that height's next validator set. It is verified
//!   with [`basalt_consensus::light::verify`] (trusting period, clock drift, adjacent or skipping
//!   verification, validator-set changes).
//! - A verified header conflicting with what the client stored freezes the client: another consensus
//!   state at the same height, or a time that breaks the order of the stored states around it.
//! - The same header twice changes nothing; a header below the latest height fills in its consensus
//!   state and leaves the latest height alone.
//! - Misbehaviour evidence (two verified headers: one height with different blocks, or a higher height
//!   with a time not after the lower's) freezes the client.
//! - A frozen client accepts nothing; an expired one (its latest state older than the trusting period)
//!   cannot verify anything.

use basalt_consensus::light::{self, LightBlock, Options, TrustLevel, TrustedBlock, VerifyError};
use basalt_consensus::types::{ChainId, Hash, Header, ValidatorSet};
use basalt_consensus::Height;

pub mod ics02;
#[cfg(test)]
mod tests;
pub mod wire;

/// The client type of a Basalt light client (ICS-02 custom clients need at least 7 characters).
pub const CLIENT_TYPE: &str = "99-basalt";

/// The height a frozen client is frozen at (ICS-07's convention: any non-zero height means frozen).
pub const FROZEN_HEIGHT: Height = Height(1);

/// The client's parameters and where it is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientState {
    /// The counterparty chain.
    pub chain_id: ChainId,
    /// The highest height whose consensus state is stored.
    pub latest_height: Height,
    /// Share of a trusted set that must sign a skipping update.
    pub trust_level: TrustLevel,
    /// How long a consensus state may be built on, ms (less than the counterparty's unbonding period).
    pub trusting_period_ms: u64,
    /// How far a header's time may be ahead of this chain's block time, ms.
    pub max_clock_drift_ms: u64,
    /// Set once misbehaviour was seen.
    pub frozen_height: Option<Height>,
}

/// Why a client state cannot be created.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClientStateError {
    /// A trusting period of zero trusts nothing.
    #[error("trusting period must be positive")]
    ZeroTrustingPeriod,
    /// Height 0 is no block.
    #[error("latest height must be at least 1")]
    ZeroHeight,
}

impl ClientState {
    /// A new, unfrozen client at `latest_height`.
    pub fn new(
        chain_id: ChainId,
        latest_height: Height,
        trust_level: TrustLevel,
        trusting_period_ms: u64,
        max_clock_drift_ms: u64,
    ) -> Result<ClientState, ClientStateError> {
        if trusting_period_ms == 0 {
            return Err(ClientStateError::ZeroTrustingPeriod);
        }
        if latest_height.0 == 0 {
            return Err(ClientStateError::ZeroHeight);
        }
        Ok(ClientState {
            chain_id,
            latest_height,
            trust_level,
            trusting_period_ms,
            max_clock_drift_ms,
            frozen_height: None,
        })
    }

    /// The verifier's options.
    pub fn options(&self) -> Options {
        Options {
            trust_level: self.trust_level,
            trusting_period_ms: self.trusting_period_ms,
            max_clock_drift_ms: self.max_clock_drift_ms,
        }
    }

    /// Whether misbehaviour froze it.
    pub fn is_frozen(&self) -> bool {
        self.frozen_height.is_some()
    }

    /// Its status at block time `now_ms`, given its latest consensus state.
    pub fn status(&self, latest: &ConsensusState, now_ms: u64) -> Status {
        if self.is_frozen() {
            Status::Frozen
        } else if latest.time_ms.saturating_add(self.trusting_period_ms) <= now_ms {
            Status::Expired
        } else {
            Status::Active
        }
    }

    fn frozen(&self) -> ClientState {
        ClientState {
            frozen_height: Some(FROZEN_HEIGHT),
            ..self.clone()
        }
    }
}

/// ICS-02 client status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// Usable.
    Active,
    /// Misbehaviour was seen.
    Frozen,
    /// The latest consensus state is older than the trusting period.
    Expired,
}

/// What the client keeps of each counterparty header it accepted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConsensusState {
    /// The counterparty's state root: the header's app hash (the state before that block, so proofs
    /// made at height h are checked against the consensus state of height h + 1, as with CometBFT).
    pub root: Hash,
    /// The header's time, ms since the Unix epoch.
    pub time_ms: u64,
    /// The header's next validator set hash.
    pub next_validators_hash: Hash,
}

impl ConsensusState {
    /// What to keep of `header`.
    pub fn of(header: &Header) -> ConsensusState {
        ConsensusState {
            root: header.app_hash,
            time_ms: header.time_ms,
            next_validators_hash: header.next_validators_hash,
        }
    }
}

/// An update: a counterparty header (with commit and set), verified from the stored consensus state at
/// `trusted_height`, whose next validator set is `trusted_next_validators`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientHeader {
    /// The header, its commit and its validator set.
    pub block: LightBlock,
    /// The stored height it is verified from.
    pub trusted_height: Height,
    /// The validator set the trusted state names as next.
    pub trusted_next_validators: ValidatorSet,
}

impl ClientHeader {
    /// Its height.
    pub fn height(&self) -> Height {
        self.block.header.height
    }
}

/// The consensus states a client stored, by height.
pub trait ConsensusStates {
    /// The state at `height`, if stored.
    fn get(&self, height: Height) -> Option<ConsensusState>;
    /// The stored state with the greatest height below `height`.
    fn below(&self, height: Height) -> Option<ConsensusState>;
    /// The stored state with the smallest height above `height`.
    fn above(&self, height: Height) -> Option<ConsensusState>;
}

/// What an update does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Update {
    /// Store `consensus` at `height` and replace the client state with `client`.
    Store {
        /// The new client state (its latest height raised if the header is above it).
        client: ClientState,
        /// The header's height.
        height: Height,
        /// Its consensus state.
        consensus: ConsensusState,
    },
    /// The header is one the client already stored: nothing changes.
    Known,
    /// The header conflicts with the client's states: store `client`, now frozen.
    Freeze {
        /// The frozen client state.
        client: ClientState,
    },
}

/// Why an update or misbehaviour is refused (nothing changes).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClientError {
    /// Frozen clients accept nothing.
    #[error("client is frozen")]
    Frozen,
    /// The header names a trusted height the client has no state for.
    #[error("no consensus state at trusted height {0}")]
    MissingTrustedState(Height),
    /// The header does not verify.
    #[error("header of height {height} does not verify: {source}")]
    Verify {
        /// The header's height.
        height: Height,
        /// Why.
        #[source]
        source: VerifyError,
    },
    /// Two headers that do not conflict are no misbehaviour.
    #[error("the two headers do not conflict")]
    NotMisbehaviour,
}

/// Verifies `header` from its trusted state.
fn verify_header(
    client: &ClientState,
    states: &impl ConsensusStates,
    header: &ClientHeader,
    now_ms: u64,
) -> Result<(), ClientError> {
    let trusted_state = states
        .get(header.trusted_height)
        .ok_or(ClientError::MissingTrustedState(header.trusted_height))?;
    let trusted = TrustedBlock {
        chain_id: client.chain_id.clone(),
        height: header.trusted_height,
        time_ms: trusted_state.time_ms,
        next_validators_hash: trusted_state.next_validators_hash,
    };
    light::verify(
        &trusted,
        &header.trusted_next_validators,
        &header.block,
        &client.options(),
        now_ms,
    )
    .map_err(|source| ClientError::Verify {
        height: header.height(),
        source,
    })
}

/// Applies an update at block time `now_ms` (see the module docs): verified first, then checked against
/// the stored states.
pub fn update(
    client: &ClientState,
    states: &impl ConsensusStates,
    header: &ClientHeader,
    now_ms: u64,
) -> Result<Update, ClientError> {
    if client.is_frozen() {
        return Err(ClientError::Frozen);
    }
    verify_header(client, states, header, now_ms)?;
    Ok(classify_verified(client, states, header))
}

/// What a header that [`update`] verified does to the stored states (no signature is checked here: the
/// ICS-02 execution steps run after ibc-rs's validation step verified the same header).
pub fn classify_verified(
    client: &ClientState,
    states: &impl ConsensusStates,
    header: &ClientHeader,
) -> Update {
    let height = header.height();
    let consensus = ConsensusState::of(&header.block.header);
    match states.get(height) {
        Some(existing) if existing == consensus => return Update::Known,
        Some(_) => {
            return Update::Freeze {
                client: client.frozen(),
            }
        }
        None => {}
    }
    // Times must keep the order of heights around the new state.
    let breaks_order = states
        .below(height)
        .is_some_and(|below| below.time_ms >= consensus.time_ms)
        || states
            .above(height)
            .is_some_and(|above| above.time_ms <= consensus.time_ms);
    if breaks_order {
        return Update::Freeze {
            client: client.frozen(),
        };
    }
    Update::Store {
        client: ClientState {
            latest_height: client.latest_height.max(height),
            ..client.clone()
        },
        height,
        consensus,
    }
}

/// Checks misbehaviour evidence: two headers that both verify from stored states and conflict — the
/// same height with different blocks, or a higher height whose time is not after the lower's. Returns
/// the frozen client state.
pub fn misbehaviour(
    client: &ClientState,
    states: &impl ConsensusStates,
    first: &ClientHeader,
    second: &ClientHeader,
    now_ms: u64,
) -> Result<ClientState, ClientError> {
    if client.is_frozen() {
        return Err(ClientError::Frozen);
    }
    verify_header(client, states, first, now_ms)?;
    verify_header(client, states, second, now_ms)?;
    conflicting_verified(client, first, second)
}

/// Whether two headers that [`misbehaviour`] verified conflict: the frozen client state if they do.
pub fn conflicting_verified(
    client: &ClientState,
    first: &ClientHeader,
    second: &ClientHeader,
) -> Result<ClientState, ClientError> {
    let (a, b) = (&first.block.header, &second.block.header);
    let conflicting = if a.height == b.height {
        a.hash() != b.hash()
    } else {
        let (low, high) = if a.height < b.height { (a, b) } else { (b, a) };
        high.time_ms <= low.time_ms
    };
    if conflicting {
        Ok(client.frozen())
    } else {
        Err(ClientError::NotMisbehaviour)
    }
}
