//! IBC transactions (kind `1`) executed by the application: [`IbcModule`] is the bank's
//! [`TxModule`] for them (register it with `BankApp::with_module`).
//!
//! The bank applies its ante rules first (signature, chain id, exact nonce, fee covered, gas limit at
//! least [`ante_gas`]) and takes the fee; then every message of the transaction goes through ibc-rs's
//! `dispatch` (validate, then execute) on one [`IbcHost`] over the block's state, in order. The first
//! message that fails fails the transaction and nothing any of its messages wrote or emitted remains
//! (the fee does). Time is the block's; the host's own consensus states are the chain's stored headers.
//!
//! Gas: [`BASE_GAS`] plus [`GAS_PER_TX_BYTE`] per transaction byte (what the signature checks and
//! decoding of a header cost grows with its size) before any message runs, plus
//! [`GAS_PER_WRITTEN_BYTE`] per byte written (keys and values: state grows forever).

use std::time::Duration;

use basalt_consensus::types::{Block, Header};
use basalt_consensus::Height;
use basalt_state::app::{Ante, BlockContext, Event, EventAttribute, Executed, StateView, TxModule};
use basalt_state::bank::{TxCode, TxFailure};
use basalt_state::StateStore;
use ibc_core::entrypoint::dispatch;
use ibc_core::handler::types::events::IbcEvent;
use ibc_core::host::types::error::HostError;
use ibc_core::host::types::identifiers::PortId;
use ibc_core::router::module::Module;
use ibc_core::router::router::Router;
use ibc_core::router::types::module::ModuleId;

use crate::host::store::StateRead;
use crate::host::{BlockInfo, HostHeaders, IbcHost};
use crate::tx::{SignedIbcTx, IBC_TX_KIND};

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
    /// Expected time between blocks (ibc-rs derives connection delays in blocks from it).
    pub max_expected_time_per_block: Duration,
}

impl IbcModule {
    /// A module for a chain whose blocks come about every `max_expected_time_per_block`.
    pub fn new(max_expected_time_per_block: Duration) -> IbcModule {
        IbcModule {
            max_expected_time_per_block,
        }
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
        let envelopes = match signed.envelopes() {
            Ok(e) => e,
            Err(e) => return failed(e.to_string()),
        };
        let header = block.header;
        let mut host = IbcHost::new(
            View(state),
            StoredHeaders {
                store: block.store,
                below: header.height.0,
            },
            BlockInfo {
                chain_id: block.chain_id.clone(),
                height: header.height,
                time_ms: header.time_ms,
                header: header.clone(),
            },
            self.max_expected_time_per_block,
        );
        host.begin_tx(signed.body().signer());
        for (index, envelope) in envelopes.into_iter().enumerate() {
            if let Err(e) = dispatch(&mut host, &mut NoApplications, envelope) {
                host.finish_tx(false);
                return failed(format!("message {index}: {e}"));
            }
        }
        let (events, _logs) = host.finish_tx(true);
        let writes = host.into_writes();
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
            outcome: Ok((writes, events)),
        }
    }
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

/// The chain's committed blocks' headers (the host's own consensus states).
struct StoredHeaders<'a> {
    store: &'a StateStore,
    /// The block being executed: only heights below it are committed.
    below: u64,
}

impl HostHeaders for StoredHeaders<'_> {
    fn header(&self, height: Height) -> Result<Option<Header>, HostError> {
        if height.0 >= self.below {
            return Ok(None);
        }
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

/// No IBC applications yet (ICS-20 comes next): channel and packet messages find no module for their
/// port and fail.
pub struct NoApplications;

impl Router for NoApplications {
    fn get_route(&self, _: &ModuleId) -> Option<&dyn Module> {
        None
    }
    fn get_route_mut(&mut self, _: &ModuleId) -> Option<&mut dyn Module> {
        None
    }
    fn lookup_module(&self, _: &PortId) -> Option<ModuleId> {
        None
    }
}
