//! Helpers to build structurally valid chains of blocks without running consensus: for tests,
//! benchmarks and tools that drive an [`super::Application`] directly.
//!
//! The commits built here carry no signatures (the application never checks them; consensus does).

use basalt_consensus::types::{
    encode, Address, Block, BlockError, BlockId, ChainId, Commit, Hash, Header, PrivateKey,
    Signature, Tx, TxError,
};
use basalt_consensus::{Height, Round};

use crate::bank::{SignedTransfer, TransferBody, TxDecodeError};

/// Builds consecutive blocks of one chain.
#[derive(Clone, Debug)]
pub struct ChainBuilder {
    chain_id: ChainId,
    proposer: Address,
    next_height: u64,
    last: Option<BlockId>,
    last_results_hash: Hash,
    validators_hash: Hash,
}

impl ChainBuilder {
    /// A builder whose first block is at `initial_height`, proposed by `proposer`.
    pub fn new(chain_id: ChainId, initial_height: u64, proposer: Address) -> ChainBuilder {
        ChainBuilder {
            chain_id,
            proposer,
            next_height: initial_height,
            last: None,
            last_results_hash: Hash::ZERO,
            validators_hash: Hash::ZERO,
        }
    }

    /// Headers name `validators_hash` as their (and the next) validator set (zero otherwise): for
    /// headers that a light client checks against a signed commit.
    pub fn with_validators_hash(mut self, validators_hash: Hash) -> ChainBuilder {
        self.validators_hash = validators_hash;
        self
    }

    /// Height of the next block.
    pub fn next_height(&self) -> u64 {
        self.next_height
    }

    /// Sets the `last_results_hash` the next block will carry.
    pub fn set_last_results_hash(&mut self, hash: Hash) {
        self.last_results_hash = hash;
    }

    /// The next block, carrying `app_hash` (the application's hash after the previous block) and
    /// `txs`; advances the builder.
    pub fn block(&mut self, app_hash: Hash, txs: Vec<Tx>) -> Result<Block, BlockError> {
        let height = Height(self.next_height);
        let last_commit = self.last.map(|block_id| Commit {
            height: Height(self.next_height.saturating_sub(1)),
            round: Round(0),
            block_id,
            signatures: Vec::new(),
        });
        let (data_hash, evidence_hash, last_commit_hash) =
            Block::content_hashes(&txs, &[], last_commit.as_ref());
        let header = Header {
            chain_id: self.chain_id.clone(),
            height,
            time_ms: 1_700_000_000_000u64.saturating_add(self.next_height.saturating_mul(1000)),
            last_block_id: self.last,
            last_commit_hash,
            data_hash,
            validators_hash: self.validators_hash,
            next_validators_hash: self.validators_hash,
            app_hash,
            last_results_hash: self.last_results_hash,
            evidence_hash,
            proposer_address: self.proposer,
        };
        let block = Block::new(header, txs, Vec::new(), last_commit)?;
        self.last = Some(block.id());
        self.next_height = self.next_height.saturating_add(1);
        Ok(block)
    }

    /// Encoded (signature-less) commit for `block`, as passed to [`super::Application::commit`].
    pub fn commit_bytes(block: &Block) -> Vec<u8> {
        encode(&Commit {
            height: block.height(),
            round: Round(0),
            block_id: block.id(),
            signatures: Vec::new(),
        })
    }
}

/// Why a test transaction could not be made.
#[derive(Debug, thiserror::Error)]
pub enum TestTxError {
    /// The transfer's body is invalid.
    #[error(transparent)]
    Body(#[from] TxDecodeError),
    /// The bytes are not a transaction (size).
    #[error(transparent)]
    Tx(#[from] TxError),
}

/// A transfer from `from`'s account carrying the signature `sign` makes over its sign bytes — another
/// key's, or a crafted one — for tests of signature checks.
#[allow(clippy::too_many_arguments)]
pub fn transfer_tx_signed_with(
    from: &PrivateKey,
    chain_id: &ChainId,
    to: Address,
    amount: u128,
    fee: u128,
    nonce: u64,
    sign: impl FnOnce(&[u8]) -> Signature,
) -> Result<Tx, TestTxError> {
    let body = transfer_body(from, chain_id, to, amount, fee, nonce);
    let signature = sign(&body.sign_bytes());
    Ok(Tx::new(
        SignedTransfer::new(body, signature)?.to_tx_bytes(),
    )?)
}

/// A signed transfer transaction from `key`.
pub fn transfer_tx(
    key: &PrivateKey,
    chain_id: &ChainId,
    to: Address,
    amount: u128,
    fee: u128,
    nonce: u64,
) -> Result<Tx, TxError> {
    Tx::new(
        transfer_body(key, chain_id, to, amount, fee, nonce)
            .sign(key)
            .to_tx_bytes(),
    )
}

/// The body of a transfer of `amount` from `from`'s account to `to`, with the standard gas limit.
fn transfer_body(
    from: &PrivateKey,
    chain_id: &ChainId,
    to: Address,
    amount: u128,
    fee: u128,
    nonce: u64,
) -> TransferBody {
    TransferBody {
        chain_id: chain_id.clone(),
        from: from.public_key(),
        to,
        amount,
        fee,
        nonce,
        gas_limit: crate::bank::TRANSFER_GAS,
    }
}
