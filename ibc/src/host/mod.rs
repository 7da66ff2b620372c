//! The IBC host: ibc-rs's `ValidationContext` and `ExecutionContext` (and the client contexts) over a
//! Basalt chain's state, for one block at a time.
//!
//! - Every ICS-24 path is one state key (`ibc/` ‖ path, [`crate::commitment::path_key`]), so a
//!   counterparty can prove any of them, present or absent, with `abci_query` (`prove=true`).
//! - Values are encoded as ibc-go encodes them: client and consensus states as protobuf `Any`,
//!   connection and channel ends as their protobuf messages, sequences and counters as big-endian
//!   `u64`, packet and acknowledgement commitments as their hashes, a receipt as the byte `1`.
//! - Writes go to the current transaction's layer ([`store::TxStore`]) and events to its list: a
//!   transaction that fails leaves neither behind ([`IbcHost::finish_tx`]).
//! - Every message must go through `ibc_core::entrypoint::dispatch` (validate, then execute, on the same
//!   state): the client's execution steps act on what its validation step verified and do not check
//!   signatures again ([`crate::client::ics02`]). Calling `execute` alone would store unverified headers.
//! - Time is the block's (never the wall clock); the host's consensus states are rebuilt from the
//!   chain's own stored headers.
//! - The one index IBC needs in order, the heights of each client's consensus states, is a sorted list
//!   under `ibc-host/` (the state tree hashes its keys, so it cannot be scanned), capped at
//!   [`MAX_CONSENSUS_STATES`]: a full client drops its oldest state.

use std::time::Duration;

use basalt_consensus::types::{Address, ChainId, Header};
use basalt_consensus::Height;
use ibc_core::channel::types::channel::ChannelEnd;
use ibc_core::channel::types::commitment::{AcknowledgementCommitment, PacketCommitment};
use ibc_core::channel::types::packet::Receipt;
use ibc_core::client::context::{
    ClientExecutionContext, ClientValidationContext, ExtClientValidationContext,
};
use ibc_core::client::types::Height as IbcHeight;
use ibc_core::commitment_types::commitment::CommitmentPrefix;
use ibc_core::connection::types::ConnectionEnd;
use ibc_core::handler::types::events::IbcEvent;
use ibc_core::host::types::error::HostError;
use ibc_core::host::types::identifiers::{ClientId, ConnectionId, Sequence};
use ibc_core::host::types::path::{
    AckPath, ChannelEndPath, ClientConnectionPath, ClientConsensusStatePath, ClientStatePath,
    ClientUpdateHeightPath, ClientUpdateTimePath, CommitmentPath, ConnectionPath,
    NextChannelSequencePath, NextClientSequencePath, NextConnectionSequencePath, Path, ReceiptPath,
    SeqAckPath, SeqRecvPath, SeqSendPath,
};
use ibc_core::host::{ExecutionContext, ValidationContext};
use ibc_core::primitives::proto::{Any, Protobuf};
use ibc_core::primitives::{Signer, Timestamp};
use prost::Message;

use crate::client::ics02::{BasaltClientState, BasaltConsensusState};
use crate::client::wire::revision_number;
use crate::client::ConsensusState;
use crate::commitment::{commitment_prefix, path_key};

pub mod store;

use store::{StateRead, TxStore};

#[cfg(test)]
mod tests;

/// Most consensus states one client keeps (its height index is one value of 8 bytes per state).
pub const MAX_CONSENSUS_STATES: usize = 8192;
/// Most connections one client may be the base of (`clients/{id}/connections` is one list, up to ~20 KiB).
/// `ConnOpenInit` needs no proof, so anyone can fill it at the price of as many fee-paying transactions;
/// a full client takes no new connection (a new client can be created).
pub const MAX_CONNECTIONS_PER_CLIENT: usize = 1024;
/// Most events and log lines one transaction may leave.
pub const MAX_TX_EVENTS: usize = 256;

/// Prefix of Basalt's own IBC bookkeeping keys (not ICS-24 paths).
const HOST_PREFIX: &str = "ibc-host/";

/// The block being executed.
#[derive(Clone, Debug)]
pub struct BlockInfo {
    /// This chain.
    pub chain_id: ChainId,
    /// The block's height.
    pub height: Height,
    /// The block's time, ms since the Unix epoch.
    pub time_ms: u64,
    /// The block's header (the host's consensus state at its height).
    pub header: Header,
}

/// The host chain's own parameters that IBC's handlers depend on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HostParams {
    /// Expected time between blocks (ibc-rs derives connection delays in blocks from it).
    pub max_expected_time_per_block: Duration,
    /// The longest trusting period a counterparty's client of this chain may have (checked when a
    /// connection handshake shows this chain its own client): the chain's evidence max age, genesis
    /// `consensus_params.evidence.max_age_duration` — Basalt's counterpart of ibc-go's unbonding period.
    /// A client must stop trusting a header before misbehaviour of its signers stops being evidence here.
    pub max_client_trusting_period: Duration,
}

/// The chain's stored headers (the host's consensus states of earlier heights).
pub trait HostHeaders {
    /// The header of committed block `height`, if stored.
    fn header(&self, height: Height) -> Result<Option<Header>, HostError>;
}

/// The IBC host over state `R` and headers `H` for one block (see the module docs).
pub struct IbcHost<R, H> {
    store: TxStore<R>,
    headers: H,
    block: BlockInfo,
    params: HostParams,
    /// The current transaction's signer: only it may sign its messages.
    signer: Option<Address>,
    tx_events: Vec<IbcEvent>,
    tx_logs: Vec<String>,
    /// [`MAX_CONSENSUS_STATES`] (smaller in tests).
    max_consensus_states: usize,
}

impl<R: StateRead, H: HostHeaders> IbcHost<R, H> {
    /// A host executing `block` over `base`.
    pub fn new(base: R, headers: H, block: BlockInfo, params: HostParams) -> IbcHost<R, H> {
        IbcHost {
            store: TxStore::new(base),
            headers,
            block,
            params,
            signer: None,
            tx_events: Vec::new(),
            tx_logs: Vec::new(),
            max_consensus_states: MAX_CONSENSUS_STATES,
        }
    }

    /// Starts a transaction signed by `signer`.
    pub fn begin_tx(&mut self, signer: Address) {
        self.store.discard_tx();
        self.tx_events.clear();
        self.tx_logs.clear();
        self.signer = Some(signer);
    }

    /// Ends the transaction: on success its writes join the block's and its events are returned; on
    /// failure nothing it did remains.
    pub fn finish_tx(&mut self, succeeded: bool) -> (Vec<IbcEvent>, Vec<String>) {
        self.signer = None;
        let events = std::mem::take(&mut self.tx_events);
        let logs = std::mem::take(&mut self.tx_logs);
        if succeeded {
            self.store.commit_tx();
            (events, logs)
        } else {
            self.store.discard_tx();
            (Vec::new(), Vec::new())
        }
    }

    /// The block's writes.
    pub fn into_writes(self) -> Vec<basalt_state::Write> {
        self.store.into_writes()
    }

    /// The host's chain as a client of it sees it.
    pub fn chain_id(&self) -> &ChainId {
        &self.block.chain_id
    }

    /// Whether the packet of `path` is still committed here (sent, neither acknowledged nor timed out).
    pub fn packet_committed(&self, path: &CommitmentPath) -> Result<bool, HostError> {
        Ok(self.get(path.clone())?.is_some())
    }

    fn get(&self, path: impl Into<Path>) -> Result<Option<Vec<u8>>, HostError> {
        self.get_key(&path_key(&path.into()))
    }

    fn get_key(&self, key: &[u8]) -> Result<Option<Vec<u8>>, HostError> {
        self.store.get(key).map_err(HostError::failed_to_retrieve)
    }

    fn must_get(&self, path: impl Into<Path>) -> Result<Vec<u8>, HostError> {
        let path = path.into();
        self.get(path.clone())?
            .ok_or_else(|| HostError::missing_state(format!("nothing at {path}")))
    }

    fn set(&mut self, path: impl Into<Path>, value: Vec<u8>) {
        self.store.set(path_key(&path.into()), value);
    }

    fn delete(&mut self, path: impl Into<Path>) {
        self.store.delete(path_key(&path.into()));
    }

    fn counter(&self, path: impl Into<Path>) -> Result<u64, HostError> {
        match self.get(path)? {
            Some(bytes) => decode_u64(&bytes),
            None => Ok(0),
        }
    }

    fn increase(&mut self, path: impl Into<Path> + Clone) -> Result<(), HostError> {
        let next = self
            .counter(path.clone())?
            .checked_add(1)
            .ok_or_else(|| HostError::invalid_state("counter overflow"))?;
        self.set(path, next.to_be_bytes().to_vec());
        Ok(())
    }

    fn ibc_height(&self, height: Height) -> Result<IbcHeight, HostError> {
        IbcHeight::new(revision_number(&self.block.chain_id), height.0)
            .map_err(HostError::invalid_state)
    }

    /// The sorted consensus heights (revision heights) of `client_id`.
    fn heights(&self, client_id: &ClientId) -> Result<Vec<u64>, HostError> {
        let Some(bytes) = self.get_key(&heights_key(client_id))? else {
            return Ok(Vec::new());
        };
        if bytes.len() % 8 != 0 || bytes.len() / 8 > self.max_consensus_states {
            return Err(HostError::invalid_state(format!(
                "consensus height index of {client_id} is {} bytes",
                bytes.len()
            )));
        }
        Ok(bytes
            .chunks_exact(8)
            .map(|c| u64::from_be_bytes(c.try_into().unwrap_or([0; 8])))
            .collect())
    }

    fn set_heights(&mut self, client_id: &ClientId, heights: &[u64]) {
        let key = heights_key(client_id);
        if heights.is_empty() {
            self.store.delete(key);
        } else {
            let bytes = heights.iter().flat_map(|h| h.to_be_bytes()).collect();
            self.store.set(key, bytes);
        }
    }

    fn consensus_at(
        &self,
        client_id: &ClientId,
        revision_height: u64,
        revision: u64,
    ) -> Result<BasaltConsensusState, HostError> {
        let path = ClientConsensusStatePath::new(client_id.clone(), revision, revision_height);
        self.consensus_state(&path)
    }

    fn client_revision(&self, client_id: &ClientId) -> Result<u64, HostError> {
        let client = self.client_state(client_id)?;
        Ok(revision_number(&client.0.chain_id))
    }
}

impl<R: StateRead, H: HostHeaders> ClientValidationContext for IbcHost<R, H> {
    type ClientStateRef = BasaltClientState;
    type ConsensusStateRef = BasaltConsensusState;

    fn client_state(&self, client_id: &ClientId) -> Result<BasaltClientState, HostError> {
        let bytes = self.must_get(ClientStatePath::new(client_id.clone()))?;
        let any = Any::decode(bytes.as_slice()).map_err(HostError::invalid_state)?;
        BasaltClientState::try_from(any).map_err(HostError::invalid_state)
    }

    fn consensus_state(
        &self,
        path: &ClientConsensusStatePath,
    ) -> Result<BasaltConsensusState, HostError> {
        let bytes = self.must_get(path.clone())?;
        let any = Any::decode(bytes.as_slice()).map_err(HostError::invalid_state)?;
        BasaltConsensusState::try_from(any).map_err(HostError::invalid_state)
    }

    fn client_update_meta(
        &self,
        client_id: &ClientId,
        height: &IbcHeight,
    ) -> Result<(Timestamp, IbcHeight), HostError> {
        let (number, at) = (height.revision_number(), height.revision_height());
        let time = decode_u64(&self.must_get(ClientUpdateTimePath::new(
            client_id.clone(),
            number,
            at,
        ))?)?;
        let bytes = self.must_get(ClientUpdateHeightPath::new(client_id.clone(), number, at))?;
        let host_height = IbcHeight::decode_vec(&bytes).map_err(HostError::invalid_state)?;
        Ok((Timestamp::from_nanoseconds(time), host_height))
    }
}

impl<R: StateRead, H: HostHeaders> ClientExecutionContext for IbcHost<R, H> {
    type ClientStateMut = BasaltClientState;

    fn store_client_state(
        &mut self,
        path: ClientStatePath,
        state: BasaltClientState,
    ) -> Result<(), HostError> {
        self.set(path, Any::from(state).encode_to_vec());
        Ok(())
    }

    fn store_consensus_state(
        &mut self,
        path: ClientConsensusStatePath,
        state: BasaltConsensusState,
    ) -> Result<(), HostError> {
        let mut heights = self.heights(&path.client_id)?;
        if let Err(at) = heights.binary_search(&path.revision_height) {
            if at == 0 && heights.len() >= self.max_consensus_states {
                // It would be the oldest of a full client and dropped at once: refused rather than
                // stored without an index entry (nothing would ever prune it).
                return Err(HostError::invalid_state(format!(
                    "client {} keeps {} consensus states, all newer than height {}",
                    path.client_id, self.max_consensus_states, path.revision_height
                )));
            }
            heights.insert(at, path.revision_height);
            if heights.len() > self.max_consensus_states {
                // Full: the oldest state goes (the newest are the ones updates build on).
                let oldest = heights.remove(0);
                let revision = path.revision_number;
                self.delete(ClientConsensusStatePath::new(
                    path.client_id.clone(),
                    revision,
                    oldest,
                ));
                self.delete_update_meta(
                    path.client_id.clone(),
                    IbcHeight::new(revision, oldest).map_err(HostError::invalid_state)?,
                )?;
            }
            self.set_heights(&path.client_id, &heights);
        }
        self.set(path, Any::from(state).encode_to_vec());
        Ok(())
    }

    fn delete_consensus_state(&mut self, path: ClientConsensusStatePath) -> Result<(), HostError> {
        let mut heights = self.heights(&path.client_id)?;
        if let Ok(at) = heights.binary_search(&path.revision_height) {
            heights.remove(at);
            self.set_heights(&path.client_id, &heights);
        }
        self.delete(path);
        Ok(())
    }

    fn store_update_meta(
        &mut self,
        client_id: ClientId,
        height: IbcHeight,
        host_timestamp: Timestamp,
        host_height: IbcHeight,
    ) -> Result<(), HostError> {
        let (number, at) = (height.revision_number(), height.revision_height());
        self.set(
            ClientUpdateTimePath::new(client_id.clone(), number, at),
            host_timestamp.nanoseconds().to_be_bytes().to_vec(),
        );
        self.set(
            ClientUpdateHeightPath::new(client_id, number, at),
            host_height.encode_vec(),
        );
        Ok(())
    }

    fn delete_update_meta(
        &mut self,
        client_id: ClientId,
        height: IbcHeight,
    ) -> Result<(), HostError> {
        let (number, at) = (height.revision_number(), height.revision_height());
        self.delete(ClientUpdateTimePath::new(client_id.clone(), number, at));
        self.delete(ClientUpdateHeightPath::new(client_id, number, at));
        Ok(())
    }
}

impl<R: StateRead, H: HostHeaders> ExtClientValidationContext for IbcHost<R, H> {
    fn host_timestamp(&self) -> Result<Timestamp, HostError> {
        timestamp_of_ms(self.block.time_ms)
    }

    fn host_height(&self) -> Result<IbcHeight, HostError> {
        self.ibc_height(self.block.height)
    }

    fn consensus_state_heights(&self, client_id: &ClientId) -> Result<Vec<IbcHeight>, HostError> {
        let revision = self.client_revision(client_id)?;
        self.heights(client_id)?
            .into_iter()
            .map(|h| IbcHeight::new(revision, h).map_err(HostError::invalid_state))
            .collect()
    }

    fn next_consensus_state(
        &self,
        client_id: &ClientId,
        height: &IbcHeight,
    ) -> Result<Option<BasaltConsensusState>, HostError> {
        let heights = self.heights(client_id)?;
        let at = heights.partition_point(|h| *h <= height.revision_height());
        heights
            .get(at)
            .map(|h| self.consensus_at(client_id, *h, height.revision_number()))
            .transpose()
    }

    fn prev_consensus_state(
        &self,
        client_id: &ClientId,
        height: &IbcHeight,
    ) -> Result<Option<BasaltConsensusState>, HostError> {
        let heights = self.heights(client_id)?;
        let at = heights.partition_point(|h| *h < height.revision_height());
        at.checked_sub(1)
            .and_then(|i| heights.get(i))
            .map(|h| self.consensus_at(client_id, *h, height.revision_number()))
            .transpose()
    }
}

impl<R: StateRead, H: HostHeaders> ValidationContext for IbcHost<R, H> {
    type V = Self;
    type HostClientState = BasaltClientState;
    type HostConsensusState = BasaltConsensusState;

    fn get_client_validation_context(&self) -> &Self {
        self
    }

    fn host_height(&self) -> Result<IbcHeight, HostError> {
        self.ibc_height(self.block.height)
    }

    fn host_timestamp(&self) -> Result<Timestamp, HostError> {
        timestamp_of_ms(self.block.time_ms)
    }

    fn host_consensus_state(&self, height: &IbcHeight) -> Result<BasaltConsensusState, HostError> {
        if height.revision_number() != revision_number(&self.block.chain_id) {
            return Err(HostError::invalid_state(format!(
                "height {height} is not of this chain's revision"
            )));
        }
        let at = Height(height.revision_height());
        let header = if at == self.block.height {
            self.block.header.clone()
        } else if at < self.block.height {
            self.headers
                .header(at)?
                .ok_or_else(|| HostError::missing_state(format!("no header at height {at}")))?
        } else {
            return Err(HostError::invalid_state(format!(
                "height {height} is after the current block"
            )));
        };
        Ok(BasaltConsensusState::new(ConsensusState::of(&header)))
    }

    fn client_counter(&self) -> Result<u64, HostError> {
        self.counter(NextClientSequencePath)
    }

    fn connection_end(&self, conn_id: &ConnectionId) -> Result<ConnectionEnd, HostError> {
        let bytes = self.must_get(ConnectionPath::new(conn_id))?;
        ConnectionEnd::decode_vec(&bytes).map_err(HostError::invalid_state)
    }

    /// A counterparty's client of this chain must follow this chain: same chain id and revision, not
    /// frozen, and not ahead of the current block.
    fn validate_self_client(&self, client: BasaltClientState) -> Result<(), HostError> {
        let client = client.0;
        if client.is_frozen() {
            return Err(HostError::invalid_state(
                "the client of this chain is frozen",
            ));
        }
        if client.chain_id != self.block.chain_id {
            return Err(HostError::invalid_state(format!(
                "the client follows chain {}, this is {}",
                client.chain_id.as_str(),
                self.block.chain_id.as_str()
            )));
        }
        if client.latest_height >= self.block.height {
            return Err(HostError::invalid_state(format!(
                "the client's latest height {} is not below this block's {}",
                client.latest_height.0, self.block.height.0
            )));
        }
        // ibc-go: trusting period < unbonding period. Equal is refused too: at the boundary a header
        // is still trusted the moment its signers' misbehaviour expires.
        let max_ms =
            u64::try_from(self.params.max_client_trusting_period.as_millis()).unwrap_or(u64::MAX);
        if client.trusting_period_ms >= max_ms {
            return Err(HostError::invalid_state(format!(
                "the client's trusting period of {} ms is not below this chain's evidence max age of {max_ms} ms",
                client.trusting_period_ms
            )));
        }
        Ok(())
    }

    fn commitment_prefix(&self) -> CommitmentPrefix {
        commitment_prefix()
    }

    fn connection_counter(&self) -> Result<u64, HostError> {
        self.counter(NextConnectionSequencePath)
    }

    fn channel_end(&self, path: &ChannelEndPath) -> Result<ChannelEnd, HostError> {
        let bytes = self.must_get(path.clone())?;
        ChannelEnd::decode_vec(&bytes).map_err(HostError::invalid_state)
    }

    fn get_next_sequence_send(&self, path: &SeqSendPath) -> Result<Sequence, HostError> {
        Ok(Sequence::from(decode_u64(&self.must_get(path.clone())?)?))
    }

    fn get_next_sequence_recv(&self, path: &SeqRecvPath) -> Result<Sequence, HostError> {
        Ok(Sequence::from(decode_u64(&self.must_get(path.clone())?)?))
    }

    fn get_next_sequence_ack(&self, path: &SeqAckPath) -> Result<Sequence, HostError> {
        Ok(Sequence::from(decode_u64(&self.must_get(path.clone())?)?))
    }

    fn get_packet_commitment(&self, path: &CommitmentPath) -> Result<PacketCommitment, HostError> {
        Ok(PacketCommitment::from(self.must_get(path.clone())?))
    }

    fn get_packet_receipt(&self, path: &ReceiptPath) -> Result<Receipt, HostError> {
        Ok(match self.get(path.clone())? {
            Some(_) => Receipt::Ok,
            None => Receipt::None,
        })
    }

    fn get_packet_acknowledgement(
        &self,
        path: &AckPath,
    ) -> Result<AcknowledgementCommitment, HostError> {
        Ok(AcknowledgementCommitment::from(
            self.must_get(path.clone())?,
        ))
    }

    fn channel_counter(&self) -> Result<u64, HostError> {
        self.counter(NextChannelSequencePath)
    }

    fn max_expected_time_per_block(&self) -> Duration {
        self.params.max_expected_time_per_block
    }

    /// A message may name only the transaction's own signer (ibc-rs never checks who signed): its
    /// address as 40 hex characters.
    fn validate_message_signer(&self, signer: &Signer) -> Result<(), HostError> {
        match self.signer {
            // Hex in either case, as every Basalt address is read.
            Some(address) if Address::from_hex(signer.as_ref()).ok() == Some(address) => Ok(()),
            Some(address) => Err(HostError::invalid_state(format!(
                "message signer {} is not the transaction's signer {address}",
                signer.as_ref().chars().take(64).collect::<String>()
            ))),
            None => Err(HostError::invalid_state("no transaction is being executed")),
        }
    }
}

impl<R: StateRead, H: HostHeaders> ExecutionContext for IbcHost<R, H> {
    type E = Self;

    fn get_client_execution_context(&mut self) -> &mut Self {
        self
    }

    fn increase_client_counter(&mut self) -> Result<(), HostError> {
        self.increase(NextClientSequencePath)
    }

    fn store_connection(
        &mut self,
        path: &ConnectionPath,
        connection_end: ConnectionEnd,
    ) -> Result<(), HostError> {
        self.set(path.clone(), connection_end.encode_vec());
        Ok(())
    }

    fn store_connection_to_client(
        &mut self,
        path: &ClientConnectionPath,
        conn_id: ConnectionId,
    ) -> Result<(), HostError> {
        let mut paths = match self.get(path.clone())? {
            Some(bytes) => {
                RawClientPaths::decode(bytes.as_slice())
                    .map_err(HostError::invalid_state)?
                    .paths
            }
            None => Vec::new(),
        };
        if paths.len() >= MAX_CONNECTIONS_PER_CLIENT {
            return Err(HostError::invalid_state(format!(
                "client {} already has {MAX_CONNECTIONS_PER_CLIENT} connections",
                path.0
            )));
        }
        paths.push(conn_id.to_string());
        self.set(path.clone(), RawClientPaths { paths }.encode_to_vec());
        Ok(())
    }

    fn increase_connection_counter(&mut self) -> Result<(), HostError> {
        self.increase(NextConnectionSequencePath)
    }

    fn store_packet_commitment(
        &mut self,
        path: &CommitmentPath,
        commitment: PacketCommitment,
    ) -> Result<(), HostError> {
        self.set(path.clone(), commitment.into_vec());
        Ok(())
    }

    fn delete_packet_commitment(&mut self, path: &CommitmentPath) -> Result<(), HostError> {
        self.delete(path.clone());
        Ok(())
    }

    fn store_packet_receipt(
        &mut self,
        path: &ReceiptPath,
        _receipt: Receipt,
    ) -> Result<(), HostError> {
        self.set(path.clone(), vec![1]);
        Ok(())
    }

    fn store_packet_acknowledgement(
        &mut self,
        path: &AckPath,
        ack_commitment: AcknowledgementCommitment,
    ) -> Result<(), HostError> {
        self.set(path.clone(), ack_commitment.into_vec());
        Ok(())
    }

    fn delete_packet_acknowledgement(&mut self, path: &AckPath) -> Result<(), HostError> {
        self.delete(path.clone());
        Ok(())
    }

    fn store_channel(
        &mut self,
        path: &ChannelEndPath,
        channel_end: ChannelEnd,
    ) -> Result<(), HostError> {
        self.set(path.clone(), channel_end.encode_vec());
        Ok(())
    }

    fn store_next_sequence_send(
        &mut self,
        path: &SeqSendPath,
        seq: Sequence,
    ) -> Result<(), HostError> {
        self.set(path.clone(), seq.value().to_be_bytes().to_vec());
        Ok(())
    }

    fn store_next_sequence_recv(
        &mut self,
        path: &SeqRecvPath,
        seq: Sequence,
    ) -> Result<(), HostError> {
        self.set(path.clone(), seq.value().to_be_bytes().to_vec());
        Ok(())
    }

    fn store_next_sequence_ack(
        &mut self,
        path: &SeqAckPath,
        seq: Sequence,
    ) -> Result<(), HostError> {
        self.set(path.clone(), seq.value().to_be_bytes().to_vec());
        Ok(())
    }

    fn increase_channel_counter(&mut self) -> Result<(), HostError> {
        self.increase(NextChannelSequencePath)
    }

    fn emit_ibc_event(&mut self, event: IbcEvent) -> Result<(), HostError> {
        if self.tx_events.len() >= MAX_TX_EVENTS {
            return Err(HostError::invalid_state(
                "too many events in one transaction",
            ));
        }
        self.tx_events.push(event);
        Ok(())
    }

    fn log_message(&mut self, message: String) -> Result<(), HostError> {
        if self.tx_logs.len() < MAX_TX_EVENTS {
            self.tx_logs.push(message.chars().take(1024).collect());
        }
        Ok(())
    }
}

/// `ibc.core.connection.v1.ClientPaths`: the connections built on one client.
#[derive(Clone, PartialEq, Message)]
struct RawClientPaths {
    #[prost(string, repeated, tag = "1")]
    paths: Vec<String>,
}

fn heights_key(client_id: &ClientId) -> Vec<u8> {
    format!("{HOST_PREFIX}clients/{client_id}/consensusHeights").into_bytes()
}

fn decode_u64(bytes: &[u8]) -> Result<u64, HostError> {
    let array: [u8; 8] = bytes
        .try_into()
        .map_err(|_| HostError::invalid_state(format!("{} bytes are no u64", bytes.len())))?;
    Ok(u64::from_be_bytes(array))
}

fn timestamp_of_ms(ms: u64) -> Result<Timestamp, HostError> {
    ms.checked_mul(1_000_000)
        .map(Timestamp::from_nanoseconds)
        .ok_or_else(|| HostError::invalid_state(format!("block time {ms} ms is out of range")))
}
