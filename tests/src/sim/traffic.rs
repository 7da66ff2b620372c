//! Transactions in the simulation: clients' signed transfers submitted to honest nodes, the node's real
//! mempool and gossip-batch admission (`basalt_node::runtime::txs::admit`), and the transactions a
//! byzantine node crafts to get an honest forwarder punished (issue 14, hole 3).
//!
//! Transactions are real bank transfers (`basalt_state::bank::tx`): decoded and signature-checked as the
//! bank's `check_tx` does. Nonces and balances are not modelled (the simulated application has no
//! accounts), so every well-signed transfer is valid here.

use basalt_consensus::types::{encode, Address, ChainId, PrivateKey, PublicKey, Tx};
use basalt_node::mempool::{Mempool, MempoolConfig};
use basalt_state::app::{CheckTxResult, CODE_OK};
use basalt_state::bank::{BankTx, TransferBody, TxCode, MAX_BANK_TX_BYTES, TRANSFER_GAS};

/// Largest gossiped transaction batch (the node's default `p2p.max_tx_batch_bytes`).
pub const MAX_TX_BATCH_BYTES: usize = basalt_p2p::DEFAULT_MAX_TX_BATCH_BYTES;

/// Most bytes of transactions an honest node gossips per tick (one batch, well inside the limit).
pub const GOSSIP_BYTES: usize = 32 * 1024;

/// Most transactions an honest proposer takes from its mempool into one block.
pub const BLOCK_TXS: usize = 64;

/// Client transfers submitted per run at most (each costs a signature and one check per node).
pub const MAX_CLIENT_TXS: u64 = 40;

/// A fresh mempool for an honest node (mempools are RAM only: a crash empties it).
pub fn mempool() -> Mempool {
    Mempool::new(MempoolConfig {
        max_txs: 1_000,
        max_bytes: 1 << 20,
        cache_size: 10_000,
        max_tx_bytes: MAX_BANK_TX_BYTES,
    })
}

/// The bank's stateless checks: the bytes decode to a transfer whose signature verifies (code
/// `Decode` or `BadSignature` otherwise, as the bank's `check_tx`).
pub fn check(tx: &Tx) -> CheckTxResult {
    let transfer = match BankTx::decode(tx.as_bytes()) {
        Ok(BankTx::Transfer(t)) => t,
        Err(e) => return CheckTxResult::rejected(TxCode::Decode.as_u32(), e.to_string()),
    };
    if let Err(e) = transfer.verify() {
        return CheckTxResult::rejected(TxCode::BadSignature.as_u32(), e.to_string());
    }
    let body = transfer.body();
    CheckTxResult {
        code: CODE_OK,
        log: String::new(),
        gas_wanted: body.gas_limit,
        gas_used: TRANSFER_GAS,
        sender: Some(body.sender()),
        nonce: body.nonce,
        priority: 0,
    }
}

/// A transfer of 1 from `from`'s account, signed by `signer`: valid when `signer` is `from`'s key, a
/// forgery (bad signature) otherwise. (`None` cannot happen: a transfer is far below the size limit.)
pub fn transfer(
    chain_id: &ChainId,
    from: PublicKey,
    signer: &PrivateKey,
    nonce: u64,
    to: Address,
) -> Option<Tx> {
    let body = TransferBody {
        chain_id: chain_id.clone(),
        from,
        to,
        amount: 1,
        fee: 0,
        nonce,
        gas_limit: TRANSFER_GAS,
    };
    Tx::new(body.sign(signer).to_tx_bytes()).ok()
}

/// The data of one message on the transactions topic, as the node publishes it: the gossip envelope
/// (a sequence number) and the borsh `Vec<Tx>`.
pub fn batch_bytes(seq: u64, txs: &[Tx]) -> Vec<u8> {
    let mut data = seq.to_le_bytes().to_vec();
    data.extend_from_slice(&encode(&txs.to_vec()));
    data
}
