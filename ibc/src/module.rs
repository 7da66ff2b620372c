//! IBC transactions (kind `1`) executed by the application: [`IbcModule`] is the bank's
//! [`TxModule`] for them (register it with `BankApp::with_module`).
//!
//! The bank applies its ante rules first (signature, chain id, exact nonce, fee covered, gas limit at
//! least [`ante_gas`]) and takes the fee; then every message of the transaction goes through ibc-rs's
//! `dispatch` (validate, then execute; ICS-20's `MsgTransfer` through its `send_transfer`) on one
//! [`IbcHost`] over the block's state, in order, with ICS-20 ([`crate::transfer`]) routed on port
//! `transfer`. The first
//! message that fails fails the transaction and nothing any of its messages wrote or emitted remains
//! (the fee does). Time is the block's; the host's own consensus states are the chain's stored headers.
//!
//! Gas: [`BASE_GAS`] plus [`GAS_PER_TX_BYTE`] per transaction byte (what the signature checks and
//! decoding of a header cost grows with its size) before any message runs, plus
//! [`GAS_PER_WRITTEN_BYTE`] per byte written (keys and values: state grows forever).

use basalt_consensus::types::{Block, Header};
use basalt_consensus::Height;
use basalt_state::app::{
    Ante, BlockContext, Effects, Event, EventAttribute, Executed, StateView, TxModule,
};
use basalt_state::bank::{TxCode, TxFailure};
use basalt_state::StateStore;
use ibc_app_transfer::handler::send_transfer;
use ibc_app_transfer::types::{MODULE_ID_STR, PORT_ID_STR};
use ibc_core::channel::types::msgs::PacketMsg;
use ibc_core::channel::types::timeout::{TimeoutHeight, TimeoutTimestamp};
use ibc_core::entrypoint::dispatch;
use ibc_core::handler::types::events::IbcEvent;
use ibc_core::handler::types::msgs::MsgEnvelope;
use ibc_core::host::types::error::HostError;
use ibc_core::host::types::identifiers::PortId;
use ibc_core::host::types::path::CommitmentPath;
use ibc_core::router::module::Module;
use ibc_core::router::router::Router;
use ibc_core::router::types::module::ModuleId;

use crate::host::store::StateRead;
use crate::host::{BlockInfo, HostHeaders, HostParams, IbcHost};
use crate::transfer::Transfers;
use crate::tx::{IbcAction, SignedIbcTx, IBC_TX_KIND};

/// Gas every IBC transaction costs before its messages run.
pub const BASE_GAS: u64 = 20_000;
/// Gas per byte of the transaction (a 1 MiB header costs ~5.2M).
pub const GAS_PER_TX_BYTE: u64 = 5;
/// Gas per byte the transaction's messages write (keys and values).
pub const GAS_PER_WRITTEN_BYTE: u64 = 10;

/// The gas an IBC transaction of `len` bytes costs before its messages run: its gas limit must cover it.
pub fn ante_gas(len: usize) -> u64 {
    let len = u64::try_from(len).unwrap_or(u64::MAX);
    BASE_GAS.saturating_add(GAS_PER_TX_BYTE.saturating_mul(len))
}

/// The IBC transaction kind as a bank module (see the module docs).
#[derive(Clone, Debug)]
pub struct IbcModule {
    /// The chain's parameters its IBC host depends on.
    pub params: HostParams,
}

impl IbcModule {
    /// A module for a chain with `params`.
    pub fn new(params: HostParams) -> IbcModule {
        IbcModule { params }
    }
}

fn decode(tx: &[u8]) -> Result<SignedIbcTx, TxFailure> {
    SignedIbcTx::decode(tx).map_err(|e| TxFailure::new(TxCode::Decode, e.to_string()))
}

impl TxModule for IbcModule {
    fn kind(&self) -> u8 {
        IBC_TX_KIND
    }

    fn decode(&self, tx: &[u8]) -> Result<Ante, TxFailure> {
        let signed = decode(tx)?;
        let body = signed.body();
        Ok(Ante {
            chain_id: body.chain_id.clone(),
            signer: body.signer(),
            nonce: body.nonce,
            fee: body.fee,
            gas_limit: body.gas_limit,
            min_gas: ante_gas(tx.len()),
        })
    }

    fn verify(&self, tx: &[u8]) -> Result<(), TxFailure> {
        decode(tx)?
            .verify()
            .map_err(|e| TxFailure::new(TxCode::BadSignature, e.to_string()))
    }

    fn execute(&self, tx: &[u8], block: &BlockContext<'_>, state: &dyn StateView) -> Executed {
        let gas = ante_gas(tx.len());
        let failed = |log: String| Executed {
            gas_used: gas,
            outcome: Err(TxFailure::new(TxCode::MessageFailed, log)),
        };
        let signed = match decode(tx) {
            Ok(s) => s,
            Err(f) => return failed(f.log),
        };
        let actions = match signed.actions() {
            Ok(a) => a,
            Err(e) => return failed(e.to_string()),
        };
        let header = block.header;
        let mut host = IbcHost::new(
            View(state),
            StoredHeaders {
                store: block.store,
                below: header.height.0,
                reads: std::cell::Cell::new(0),
            },
            BlockInfo {
                chain_id: block.chain_id.clone(),
                height: header.height,
                time_ms: header.time_ms,
                header: header.clone(),
            },
            self.params,
        );
        host.begin_tx(signed.body().signer());
        let mut router = Applications {
            transfer: Transfers::new(state),
        };
        for (index, action) in actions.into_iter().enumerate() {
            let result = match action {
                IbcAction::Core(envelope) => receivable(&envelope, header).and_then(|()| {
                    if settled(&host, &envelope)? {
                        return Ok(());
                    }
                    dispatch(&mut host, &mut router, envelope).map_err(|e| e.to_string())
                }),
                IbcAction::Transfer(msg) => {
                    send_transfer(&mut host, &mut router.transfer, msg).map_err(|e| e.to_string())
                }
            };
            if let Err(e) = result {
                host.finish_tx(false);
                return failed(format!("message {index}: {e}"));
            }
        }
        let (events, _logs) = host.finish_tx(true);
        let (moves, voucher_writes) = router.transfer.into_effects();
        let mut writes = host.into_writes();
        writes.extend(voucher_writes);
        let written: usize = writes
            .iter()
            .map(|(k, v)| k.len().saturating_add(v.as_ref().map_or(0, Vec::len)))
            .sum();
        let gas_used = gas.saturating_add(
            GAS_PER_WRITTEN_BYTE.saturating_mul(u64::try_from(written).unwrap_or(u64::MAX)),
        );
        let events = match events.into_iter().map(to_event).collect() {
            Ok(events) => events,
            Err(e) => return failed(e),
        };
        Executed {
            gas_used,
            outcome: Ok(Effects {
                writes,
                moves,
                events,
            }),
        }
    }
}

/// ICS-04's receive rule, which ibc-rs 0.57 relaxes by one: a packet may be received only in a block
/// *below* its timeout height and *before* its timeout time (`recvPacket` asserts
/// `height < timeoutHeight` and `time < timeoutTimestamp`; ibc-rs accepts it at the timeout height and
/// time). At the boundary a counterparty following the spec (ibc-go) may already prove the packet timed
/// out — its proof at height `h` shows the state before block `h` — so receiving it there too would
/// pay it out twice.
fn receivable(envelope: &MsgEnvelope, header: &Header) -> Result<(), String> {
    // Heights compare as IBC heights: revision number first (ours is the chain id's), then height.
    let MsgEnvelope::Packet(PacketMsg::Recv(msg)) = envelope else {
        return Ok(());
    };
    let packet = &msg.packet;
    if let TimeoutHeight::At(timeout) = packet.timeout_height_on_b {
        let here = crate::client::wire::ibc_height(&header.chain_id, header.height)
            .map_err(|e| e.to_string())?;
        if here >= timeout {
            return Err(format!(
                "packet {} timed out at height {timeout}; this block is {}",
                packet.seq_on_a, header.height.0
            ));
        }
    }
    if let TimeoutTimestamp::At(timeout) = packet.timeout_timestamp_on_b {
        let now_ns = u128::from(header.time_ms) * 1_000_000;
        if now_ns >= u128::from(timeout.nanoseconds()) {
            return Err(format!(
                "packet {} timed out at {} ns; this block's time is {now_ns} ns",
                packet.seq_on_a,
                timeout.nanoseconds()
            ));
        }
    }
    Ok(())
}

/// Whether `envelope` is an acknowledgement or timeout of a packet that is no longer committed here
/// (already acknowledged or timed out, or never sent): then it is a no-op, as in ibc-go — the
/// transaction succeeds (a relayer's batch is not lost to another relayer's race), nothing changes and
/// no packet event is emitted. ibc-rs 0.57 would emit `acknowledge_packet` / `timeout_packet` for it
/// anyway (an explorer would show an acknowledged packet as timed out) and first run the application's
/// checks, so a timeout after the acknowledgement failed or passed depending on the escrow's balance.
fn settled<R: StateRead, H: HostHeaders>(
    host: &IbcHost<R, H>,
    envelope: &MsgEnvelope,
) -> Result<bool, String> {
    let packet = match envelope {
        MsgEnvelope::Packet(PacketMsg::Ack(msg)) => &msg.packet,
        MsgEnvelope::Packet(PacketMsg::Timeout(msg)) => &msg.packet,
        MsgEnvelope::Packet(PacketMsg::TimeoutOnClose(msg)) => &msg.packet,
        _ => return Ok(false),
    };
    let path = CommitmentPath::new(&packet.port_id_on_a, &packet.chan_id_on_a, packet.seq_on_a);
    host.packet_committed(&path)
        .map(|committed| !committed)
        .map_err(|e| e.to_string())
}

/// An ibc-rs event as the chain's event (ibc-go's event types and attribute names, all indexed).
fn to_event(event: IbcEvent) -> Result<Event, String> {
    let abci = tendermint::abci::Event::try_from(event).map_err(|e| e.to_string())?;
    let attributes = abci
        .attributes
        .iter()
        .map(|a| {
            Ok(EventAttribute {
                key: a.key_str().map_err(|e| e.to_string())?.to_owned(),
                value: a.value_str().map_err(|e| e.to_string())?.to_owned(),
                index: true,
            })
        })
        .collect::<Result<_, String>>()?;
    Ok(Event {
        kind: abci.kind,
        attributes,
    })
}

/// The block's state as the host reads it.
struct View<'a>(&'a dyn StateView);

impl StateRead for View<'_> {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, basalt_state::StateError> {
        self.0.get(key)
    }
}

/// Most of its own earlier headers the host reads for one transaction. Each read decodes a stored block
/// (up to 16 MiB) and gas does not price it; an honest handshake message needs one.
pub const MAX_HEADER_READS_PER_TX: u32 = 4;

/// The chain's committed blocks' headers (the host's own consensus states).
struct StoredHeaders<'a> {
    store: &'a StateStore,
    /// The block being executed: only heights below it are committed.
    below: u64,
    /// Reads so far (bounded by [`MAX_HEADER_READS_PER_TX`]).
    reads: std::cell::Cell<u32>,
}

impl HostHeaders for StoredHeaders<'_> {
    fn header(&self, height: Height) -> Result<Option<Header>, HostError> {
        if height.0 >= self.below {
            return Ok(None);
        }
        let reads = self.reads.get().saturating_add(1);
        if reads > MAX_HEADER_READS_PER_TX {
            return Err(HostError::invalid_state(format!(
                "more than {MAX_HEADER_READS_PER_TX} of the host's own headers read in one transaction"
            )));
        }
        self.reads.set(reads);
        let Some(bytes) = self
            .store
            .block(height.0)
            .map_err(HostError::failed_to_retrieve)?
        else {
            return Ok(None);
        };
        let block: Block = basalt_consensus::types::decode(
            "block",
            &bytes,
            basalt_consensus::types::encoding::MAX_BLOCK_BYTES,
        )
        .map_err(HostError::invalid_state)?;
        Ok(Some(block.header().clone()))
    }
}

/// The IBC applications a transaction's messages are routed to: ICS-20 on port `transfer`.
#[derive(Debug)]
struct Applications<'a> {
    transfer: Transfers<'a>,
}

impl Router for Applications<'_> {
    fn get_route(&self, id: &ModuleId) -> Option<&dyn Module> {
        (id.to_string() == MODULE_ID_STR).then_some(&self.transfer as &dyn Module)
    }
    fn get_route_mut(&mut self, id: &ModuleId) -> Option<&mut dyn Module> {
        (id.to_string() == MODULE_ID_STR).then_some(&mut self.transfer as &mut dyn Module)
    }
    fn lookup_module(&self, port: &PortId) -> Option<ModuleId> {
        (port.as_str() == PORT_ID_STR).then(|| ModuleId::new(MODULE_ID_STR.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::sync::Arc;

    use basalt_consensus::types::{Address, ChainId};
    use basalt_state::app::testkit::ChainBuilder;
    use basalt_state::app::{Application, BankApp, BankAppConfig};
    use basalt_state::StoreConfig;

    use super::*;

    #[test]
    fn the_host_reads_a_bounded_number_of_its_own_headers_per_transaction() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(StateStore::open(dir.path(), StoreConfig::default()).unwrap());
        let chain = ChainId::new("basalt-a").unwrap();
        let mut app = BankApp::new(
            store.clone(),
            BankAppConfig {
                chain_id: chain.clone(),
            },
        );
        app.init_chain(1, &serde_json::json!({ "accounts": [] }))
            .unwrap();
        let mut blocks = ChainBuilder::new(chain, 1, Address([1; 20]));
        for _ in 0..6 {
            let block = blocks
                .block(app.info().unwrap().last_app_hash, vec![])
                .unwrap();
            app.finalize_block(&block).unwrap();
            app.commit(ChainBuilder::commit_bytes(&block)).unwrap();
        }
        let headers = StoredHeaders {
            store: &store,
            below: 7,
            reads: std::cell::Cell::new(0),
        };
        // Heights not yet committed cost nothing and are absent.
        assert!(headers.header(Height(7)).unwrap().is_none());
        for h in 1..=u64::from(MAX_HEADER_READS_PER_TX) {
            assert_eq!(
                headers.header(Height(h)).unwrap().unwrap().height,
                Height(h)
            );
        }
        assert!(headers.header(Height(5)).is_err());
    }
}
