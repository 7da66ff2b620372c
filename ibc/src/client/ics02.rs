//! The Basalt light client as ibc-rs sees it: the ICS-02 client traits (`ClientStateCommon`,
//! `ClientStateValidation`, `ClientStateExecution`, `ConsensusState`) over the pure rules of
//! [`super`] and the proof checks of [`crate::commitment`]. ibc-rs's handlers call these for
//! `MsgCreateClient`, `MsgUpdateClient`, `MsgSubmitMisbehaviour` and every proof a handshake or packet
//! carries; the host supplies the stored states and the block time through its client contexts.
//!
//! What this layer adds to the pure rules: the `Any` encodings ([`super::wire`]), IBC heights (the
//! counterparty's revision number is its chain id's `-N` suffix), ibc-rs's error types, and the writes
//! an accepted update makes — consensus state, client state and the update's host time and height
//! (`store_update_meta`, which connection delay periods are measured from). Upgrades and recovery need a
//! governance process Basalt chains do not have: they are refused.

use std::cell::RefCell;

use basalt_consensus::Height;
use ibc_core::client::context::client_state::{
    ClientStateCommon, ClientStateExecution, ClientStateValidation,
};
use ibc_core::client::context::consensus_state::ConsensusState as ConsensusStateTrait;
use ibc_core::client::context::{
    ClientExecutionContext, ClientValidationContext, ExtClientValidationContext,
};
use ibc_core::client::types::error::{ClientError as IbcClientError, UpgradeClientError};
use ibc_core::client::types::{Height as IbcHeight, Status as IbcStatus};
use ibc_core::commitment_types::commitment::{
    CommitmentPrefix, CommitmentProofBytes, CommitmentRoot,
};
use ibc_core::host::types::error::HostError;
use ibc_core::host::types::identifiers::{ClientId, ClientType};
use ibc_core::host::types::path::{ClientConsensusStatePath, ClientStatePath, Path, PathBytes};
use ibc_core::primitives::proto::Any;
use ibc_core::primitives::Timestamp;

use super::wire::{
    ibc_height, revision_number, Misbehaviour, WireError, HEADER_TYPE_URL, MISBEHAVIOUR_TYPE_URL,
};
use super::{
    classify_verified, conflicting_verified, misbehaviour, update, ClientHeader, ClientState,
    ConsensusState, ConsensusStates, Status, Update, CLIENT_TYPE,
};
use crate::commitment;

#[cfg(test)]
mod tests;

/// A consensus state as ibc-rs holds it: the rules' value and its root as a `CommitmentRoot` (the trait
/// lends the root out by reference).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BasaltConsensusState {
    state: ConsensusState,
    root: CommitmentRoot,
}

impl BasaltConsensusState {
    /// Wraps `state`.
    pub fn new(state: ConsensusState) -> BasaltConsensusState {
        let root = CommitmentRoot::from_bytes(&state.root.0);
        BasaltConsensusState { state, root }
    }

    /// The rules' value.
    pub fn state(&self) -> &ConsensusState {
        &self.state
    }
}

impl From<ConsensusState> for BasaltConsensusState {
    fn from(state: ConsensusState) -> Self {
        BasaltConsensusState::new(state)
    }
}

impl TryFrom<Any> for BasaltConsensusState {
    type Error = IbcClientError;

    fn try_from(any: Any) -> Result<Self, Self::Error> {
        Ok(BasaltConsensusState::new(
            ConsensusState::from_any(&any).map_err(decoding)?,
        ))
    }
}

impl From<BasaltConsensusState> for Any {
    fn from(state: BasaltConsensusState) -> Any {
        state.state.to_any()
    }
}

impl ConsensusStateTrait for BasaltConsensusState {
    fn root(&self) -> &CommitmentRoot {
        &self.root
    }

    fn timestamp(&self) -> Result<Timestamp, IbcClientError> {
        timestamp_of_ms(self.state.time_ms)
    }
}

/// A client state as ibc-rs holds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BasaltClientState(pub ClientState);

impl TryFrom<Any> for BasaltClientState {
    type Error = IbcClientError;

    fn try_from(any: Any) -> Result<Self, Self::Error> {
        Ok(BasaltClientState(
            ClientState::from_any(&any).map_err(decoding)?,
        ))
    }
}

impl From<BasaltClientState> for Any {
    fn from(state: BasaltClientState) -> Any {
        state.0.to_any()
    }
}

impl BasaltClientState {
    fn ibc_height(&self, height: Height) -> Result<IbcHeight, IbcClientError> {
        ibc_height(&self.0.chain_id, height).map_err(decoding)
    }

    fn consensus_path(&self, client_id: &ClientId, height: Height) -> ClientConsensusStatePath {
        ClientConsensusStatePath::new(
            client_id.clone(),
            revision_number(&self.0.chain_id),
            height.0,
        )
    }
}

impl ClientStateCommon for BasaltClientState {
    fn verify_consensus_state(
        &self,
        consensus_state: Any,
        host_timestamp: &Timestamp,
    ) -> Result<(), IbcClientError> {
        let state = ConsensusState::from_any(&consensus_state).map_err(decoding)?;
        match self.0.status(&state, ms_of_timestamp(host_timestamp)) {
            Status::Active => Ok(()),
            other => Err(IbcClientError::InvalidStatus(ibc_status(other))),
        }
    }

    fn client_type(&self) -> ClientType {
        client_type()
    }

    fn latest_height(&self) -> IbcHeight {
        // Heights are at least 1 (checked when the state was made or decoded): never refused.
        self.ibc_height(self.0.latest_height)
            .unwrap_or_else(|_| IbcHeight::min(revision_number(&self.0.chain_id)))
    }

    fn validate_proof_height(&self, proof_height: IbcHeight) -> Result<(), IbcClientError> {
        let latest = self.latest_height();
        if proof_height.revision_number() != latest.revision_number() || latest < proof_height {
            return Err(IbcClientError::InsufficientProofHeight {
                expected: latest,
                actual: proof_height,
            });
        }
        Ok(())
    }

    fn verify_upgrade_client(
        &self,
        _upgraded_client_state: Any,
        _upgraded_consensus_state: Any,
        _proof_upgrade_client: CommitmentProofBytes,
        _proof_upgrade_consensus_state: CommitmentProofBytes,
        _root: &CommitmentRoot,
    ) -> Result<(), IbcClientError> {
        Err(UpgradeClientError::MissingUpgradePath.into())
    }

    fn serialize_path(&self, path: Path) -> Result<PathBytes, IbcClientError> {
        Ok(PathBytes::from_bytes(path.to_string()))
    }

    fn verify_membership_raw(
        &self,
        prefix: &CommitmentPrefix,
        proof: &CommitmentProofBytes,
        root: &CommitmentRoot,
        path: PathBytes,
        value: Vec<u8>,
    ) -> Result<(), IbcClientError> {
        commitment::verify_membership(prefix, proof, root, &path, value).map_err(proof_refused)
    }

    fn verify_non_membership_raw(
        &self,
        prefix: &CommitmentPrefix,
        proof: &CommitmentProofBytes,
        root: &CommitmentRoot,
        path: PathBytes,
    ) -> Result<(), IbcClientError> {
        commitment::verify_non_membership(prefix, proof, root, &path).map_err(proof_refused)
    }
}

/// A header or misbehaviour, decoded by its type URL.
enum ClientMessage {
    Header(Box<ClientHeader>),
    Misbehaviour(Box<Misbehaviour>),
}

impl ClientMessage {
    fn decode(any: &Any) -> Result<ClientMessage, IbcClientError> {
        match any.type_url.as_str() {
            HEADER_TYPE_URL => Ok(ClientMessage::Header(Box::new(
                ClientHeader::from_any(any).map_err(decoding)?,
            ))),
            MISBEHAVIOUR_TYPE_URL => Ok(ClientMessage::Misbehaviour(Box::new(
                Misbehaviour::from_any(any).map_err(decoding)?,
            ))),
            other => Err(IbcClientError::InvalidHeaderType(
                other.chars().take(128).collect(),
            )),
        }
    }
}

/// The stored consensus states of one client, read through the host's context. The pure rules ask
/// for states and cannot fail; the first storage failure is kept and reported after them instead of
/// being taken for a missing state.
struct StoredStates<'a, V> {
    ctx: &'a V,
    client: &'a BasaltClientState,
    client_id: &'a ClientId,
    failure: RefCell<Option<HostError>>,
}

impl<'a, V: ExtClientValidationContext> StoredStates<'a, V>
where
    V::ConsensusStateRef: Into<BasaltConsensusState>,
{
    fn new(ctx: &'a V, client: &'a BasaltClientState, client_id: &'a ClientId) -> Self {
        StoredStates {
            ctx,
            client,
            client_id,
            failure: RefCell::new(None),
        }
    }

    /// `result` of a pure rule, unless a read failed meanwhile.
    fn checked<T>(self, result: T) -> Result<T, IbcClientError> {
        match self.failure.into_inner() {
            Some(e) => Err(e.into()),
            None => Ok(result),
        }
    }

    fn note(&self, error: HostError) {
        self.failure.borrow_mut().get_or_insert(error);
    }

    /// The state the host finds next to `height` (its `prev_`/`next_consensus_state`).
    fn neighbour(
        &self,
        height: Height,
        read: impl Fn(&V, &ClientId, &IbcHeight) -> Result<Option<V::ConsensusStateRef>, HostError>,
    ) -> Option<ConsensusState> {
        let at = self.client.ibc_height(height).ok()?;
        match read(self.ctx, self.client_id, &at) {
            Ok(found) => found.map(|state| state.into().state),
            Err(e) => {
                self.note(e);
                None
            }
        }
    }
}

impl<V: ExtClientValidationContext> ConsensusStates for StoredStates<'_, V>
where
    V::ConsensusStateRef: Into<BasaltConsensusState>,
{
    fn get(&self, height: Height) -> Option<ConsensusState> {
        let path = self.client.consensus_path(self.client_id, height);
        match self.ctx.consensus_state(&path) {
            Ok(state) => Some(state.into().state),
            Err(HostError::MissingState { .. }) => None,
            Err(e) => {
                self.note(e);
                None
            }
        }
    }

    fn below(&self, height: Height) -> Option<ConsensusState> {
        self.neighbour(height, |ctx, id, at| ctx.prev_consensus_state(id, at))
    }

    fn above(&self, height: Height) -> Option<ConsensusState> {
        self.neighbour(height, |ctx, id, at| ctx.next_consensus_state(id, at))
    }
}

impl<V> ClientStateValidation<V> for BasaltClientState
where
    V: ClientValidationContext + ExtClientValidationContext,
    V::ConsensusStateRef: Into<BasaltConsensusState>,
{
    fn verify_client_message(
        &self,
        ctx: &V,
        client_id: &ClientId,
        client_message: Any,
    ) -> Result<(), IbcClientError> {
        // Verifying is what an update or misbehaviour check does first; what it then decides is
        // `check_for_misbehaviour`'s and `update_state`'s.
        self.judge(ctx, client_id, &client_message, Check::Verify)
            .map(|_| ())
    }

    fn check_for_misbehaviour(
        &self,
        ctx: &V,
        client_id: &ClientId,
        client_message: Any,
    ) -> Result<bool, IbcClientError> {
        Ok(matches!(
            self.judge(ctx, client_id, &client_message, Check::AlreadyVerified)?,
            Judged::Freeze(_)
        ))
    }

    fn status(&self, ctx: &V, client_id: &ClientId) -> Result<IbcStatus, IbcClientError> {
        if self.0.is_frozen() {
            return Ok(IbcStatus::Frozen);
        }
        let path = self.consensus_path(client_id, self.0.latest_height);
        let latest: BasaltConsensusState = match ctx.consensus_state(&path) {
            Ok(state) => state.into(),
            // No state to build on (as ICS-07: a client being created has none yet).
            Err(HostError::MissingState { .. }) => return Ok(IbcStatus::Expired),
            Err(e) => return Err(e.into()),
        };
        let now = ms_of_timestamp(&ctx.host_timestamp()?);
        Ok(ibc_status(self.0.status(latest.state(), now)))
    }

    fn check_substitute(&self, _ctx: &V, _substitute: Any) -> Result<(), IbcClientError> {
        Err(IbcClientError::FailedToVerifyClientRecoveryStates)
    }
}

/// What a verified client message does.
enum Judged {
    Store(Update),
    Freeze(ClientState),
}

/// Whether a client message's signatures are checked: in ibc-rs's validation step; its execution
/// steps (`check_for_misbehaviour`, `update_state`, `update_state_on_misbehaviour`) run on a message
/// that step verified, as ICS-07's do, so the signatures are checked once per message, not three times.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Check {
    Verify,
    AlreadyVerified,
}

impl BasaltClientState {
    /// Checks `message` against the stored states at the host's block time and says what it does.
    fn judge<V>(
        &self,
        ctx: &V,
        client_id: &ClientId,
        message: &Any,
        check: Check,
    ) -> Result<Judged, IbcClientError>
    where
        V: ExtClientValidationContext,
        V::ConsensusStateRef: Into<BasaltConsensusState>,
    {
        let now = ms_of_timestamp(&ctx.host_timestamp()?);
        let states = StoredStates::new(ctx, self, client_id);
        match ClientMessage::decode(message)? {
            ClientMessage::Header(header) => {
                self.same_chain(&header)?;
                let result = match check {
                    Check::Verify => update(&self.0, &states, &header, now),
                    Check::AlreadyVerified => Ok(classify_verified(&self.0, &states, &header)),
                };
                match states.checked(result)?.map_err(header_refused)? {
                    Update::Freeze { client } => Ok(Judged::Freeze(client)),
                    other => Ok(Judged::Store(other)),
                }
            }
            ClientMessage::Misbehaviour(evidence) => {
                self.same_chain(&evidence.first)?;
                let (first, second) = (&evidence.first, &evidence.second);
                let result = match check {
                    Check::Verify => misbehaviour(&self.0, &states, first, second, now),
                    Check::AlreadyVerified => conflicting_verified(&self.0, first, second),
                };
                let frozen = states.checked(result)?.map_err(|e| {
                    IbcClientError::FailedToHandleMisbehaviour {
                        description: e.to_string(),
                    }
                })?;
                Ok(Judged::Freeze(frozen))
            }
        }
    }

    fn same_chain(&self, header: &ClientHeader) -> Result<(), IbcClientError> {
        if header.block.header.chain_id != self.0.chain_id {
            return Err(IbcClientError::FailedToVerifyHeader {
                description: format!(
                    "header of chain {} for a client of {}",
                    header.block.header.chain_id.as_str(),
                    self.0.chain_id.as_str()
                ),
            });
        }
        Ok(())
    }
}

impl<E> ClientStateExecution<E> for BasaltClientState
where
    E: ClientExecutionContext<ClientStateMut = BasaltClientState> + ExtClientValidationContext,
    E::ConsensusStateRef: Into<BasaltConsensusState> + From<BasaltConsensusState>,
{
    fn initialise(
        &self,
        ctx: &mut E,
        client_id: &ClientId,
        consensus_state: Any,
    ) -> Result<(), IbcClientError> {
        let state = BasaltConsensusState::try_from(consensus_state)?;
        let height = self.0.latest_height;
        self.store(ctx, client_id, self.clone(), height, state)
    }

    fn update_state(
        &self,
        ctx: &mut E,
        client_id: &ClientId,
        header: Any,
    ) -> Result<Vec<IbcHeight>, IbcClientError> {
        match self.judge(ctx, client_id, &header, Check::AlreadyVerified)? {
            Judged::Store(Update::Store {
                client,
                height,
                consensus,
            }) => {
                let state = BasaltConsensusState::new(consensus);
                self.store(ctx, client_id, BasaltClientState(client), height, state)?;
                self.prune_expired(ctx, client_id)?;
                Ok(vec![self.ibc_height(height)?])
            }
            // The same header again: nothing to write, the height it names is stored.
            Judged::Store(_) => {
                let header = ClientHeader::from_any(&header).map_err(decoding)?;
                Ok(vec![self.ibc_height(header.height())?])
            }
            Judged::Freeze(_) => Err(IbcClientError::FailedToHandleMisbehaviour {
                description: "an update that conflicts with stored states is misbehaviour"
                    .to_owned(),
            }),
        }
    }

    fn update_state_on_misbehaviour(
        &self,
        ctx: &mut E,
        client_id: &ClientId,
        client_message: Any,
    ) -> Result<(), IbcClientError> {
        let frozen = match self.judge(ctx, client_id, &client_message, Check::AlreadyVerified)? {
            Judged::Freeze(frozen) => frozen,
            Judged::Store(_) => {
                return Err(IbcClientError::FailedToHandleMisbehaviour {
                    description: "no misbehaviour found".to_owned(),
                })
            }
        };
        ctx.store_client_state(
            ClientStatePath::new(client_id.clone()),
            BasaltClientState(frozen),
        )?;
        Ok(())
    }

    fn update_state_on_upgrade(
        &self,
        _ctx: &mut E,
        _client_id: &ClientId,
        _upgraded_client_state: Any,
        _upgraded_consensus_state: Any,
    ) -> Result<IbcHeight, IbcClientError> {
        Err(UpgradeClientError::MissingUpgradePath.into())
    }

    fn update_on_recovery(
        &self,
        _ctx: &mut E,
        _subject_client_id: &ClientId,
        _substitute_client_state: Any,
        _substitute_consensus_state: Any,
    ) -> Result<(), IbcClientError> {
        Err(IbcClientError::FailedToVerifyClientRecoveryStates)
    }
}

impl BasaltClientState {
    /// Writes an accepted state: consensus state at `height`, the client state, and when (host time
    /// and height) the update was processed.
    fn store<E>(
        &self,
        ctx: &mut E,
        client_id: &ClientId,
        client: BasaltClientState,
        height: Height,
        consensus: BasaltConsensusState,
    ) -> Result<(), IbcClientError>
    where
        E: ClientExecutionContext<ClientStateMut = BasaltClientState> + ExtClientValidationContext,
        E::ConsensusStateRef: From<BasaltConsensusState>,
    {
        let at = self.ibc_height(height)?;
        let (host_time, host_height) = (ctx.host_timestamp()?, ctx.host_height()?);
        ctx.store_consensus_state(self.consensus_path(client_id, height), consensus.into())?;
        ctx.store_client_state(ClientStatePath::new(client_id.clone()), client)?;
        ctx.store_update_meta(client_id.clone(), at, host_time, host_height)?;
        Ok(())
    }
}

/// Most expired consensus states one update deletes: every update stores at most one, so the store
/// shrinks back to the trusting period's states while no update does unbounded work.
pub const PRUNE_PER_UPDATE: usize = 4;

impl BasaltClientState {
    /// Deletes the oldest consensus states that expired (as ICS-07 does on every update), never the
    /// latest one: nothing can be verified from them, and without this the store grows forever.
    fn prune_expired<E>(&self, ctx: &mut E, client_id: &ClientId) -> Result<(), IbcClientError>
    where
        E: ClientExecutionContext + ExtClientValidationContext,
        E::ConsensusStateRef: Into<BasaltConsensusState>,
    {
        let now = ms_of_timestamp(&ctx.host_timestamp()?);
        let mut heights = ctx.consensus_state_heights(client_id)?;
        heights.sort();
        let latest = self.latest_height();
        for height in heights.into_iter().take(PRUNE_PER_UPDATE) {
            if height >= latest {
                break;
            }
            let path = ClientConsensusStatePath::new(
                client_id.clone(),
                height.revision_number(),
                height.revision_height(),
            );
            let state: BasaltConsensusState = ctx.consensus_state(&path)?.into();
            let expires = state
                .state()
                .time_ms
                .saturating_add(self.0.trusting_period_ms);
            if expires > now {
                break;
            }
            ctx.delete_consensus_state(path)?;
            ctx.delete_update_meta(client_id.clone(), height)?;
        }
        Ok(())
    }
}

/// The client type as ibc-rs names it.
pub fn client_type() -> ClientType {
    // "99-basalt" is a valid client type (lowercase, 9 ≥ 7 characters).
    ClientType::new(CLIENT_TYPE).unwrap_or_else(|_| unreachable!("{CLIENT_TYPE} is valid"))
}

fn ibc_status(status: Status) -> IbcStatus {
    match status {
        Status::Active => IbcStatus::Active,
        Status::Frozen => IbcStatus::Frozen,
        Status::Expired => IbcStatus::Expired,
    }
}

/// Block time in ms (Basalt's unit) from an IBC timestamp.
fn ms_of_timestamp(timestamp: &Timestamp) -> u64 {
    timestamp.nanoseconds() / 1_000_000
}

/// An IBC timestamp from ms since the epoch (refused past the year 2554, where nanoseconds overflow).
fn timestamp_of_ms(ms: u64) -> Result<Timestamp, IbcClientError> {
    ms.checked_mul(1_000_000)
        .map(Timestamp::from_nanoseconds)
        .ok_or_else(|| IbcClientError::ClientSpecific {
            description: format!("time {ms} ms is out of range"),
        })
}

fn decoding(error: WireError) -> IbcClientError {
    IbcClientError::ClientSpecific {
        description: error.to_string(),
    }
}

fn header_refused(error: super::ClientError) -> IbcClientError {
    IbcClientError::FailedToVerifyHeader {
        description: error.to_string(),
    }
}

fn proof_refused(error: commitment::ProofError) -> IbcClientError {
    match error {
        commitment::ProofError::Invalid(e) => IbcClientError::FailedICS23Verification(e),
        other => IbcClientError::ClientSpecific {
            description: other.to_string(),
        },
    }
}
