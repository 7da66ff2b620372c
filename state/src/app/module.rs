//! Transaction kinds beyond the bank's transfer, executed by other modules over the same state.
//!
//! The first byte of a transaction is its kind: `0` is the bank's transfer; any other kind is handed to
//! the [`TxModule`] registered for it ([`crate::app::BankApp::with_module`]). Crates the state cannot
//! depend on (IBC) plug in this way, and the bank keeps what every kind shares — the *ante* rules:
//!
//! 1. The module decodes the bytes ([`TxModule::decode`]: size bound and strict decoding, no state),
//!    then checks the signature ([`TxModule::verify`]). Either failing changes nothing.
//! 2. The bank checks chain id, gas limit, nonce (exactly the account's) and that the balance covers
//!    the fee; failing changes nothing.
//! 3. The fee is paid to the block's proposer and the nonce incremented — **whatever happens next**: a
//!    module's work (light-client verification, proofs) costs the network whether or not it succeeds,
//!    so a failing transaction cannot be free.
//! 4. The module executes over the block's state ([`TxModule::execute`]) and returns its writes and
//!    events, or a failure. Writes are applied only on success and only within gas; a failure or a
//!    transaction over its gas limit leaves nothing but step 3 behind.
//!
//! A module never writes the bank's accounts: its writes under [`crate::bank::ACCOUNT_KEY_PREFIX`] make
//! the transaction fail (the bank owns balances and nonces). It may *move* the native token between
//! accounts ([`Effects::moves`], e.g. into and out of an IBC escrow account): the bank applies the moves
//! with its own checks (funds, overflow) and never lets a module create or destroy the native token.

use basalt_consensus::types::{Address, ChainId, Header, ValidatorChange};

use super::Event;
use crate::bank::TxFailure;
use crate::store::{StateStore, Write};
use crate::StateError;

/// What the bank's ante rules need from a transaction of any kind.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ante {
    /// The chain the transaction was signed for.
    pub chain_id: ChainId,
    /// The account that signed it and pays its fee.
    pub signer: Address,
    /// Must equal the signer's account nonce at execution.
    pub nonce: u64,
    /// Paid to the block's proposer once the ante rules pass.
    pub fee: u128,
    /// Most gas the signer pays for.
    pub gas_limit: u64,
    /// Gas the transaction costs before any message runs (its bytes, its signature): a gas limit below
    /// it fails the ante rules.
    pub min_gas: u64,
}

/// The block a module executes in.
#[derive(Clone, Copy, Debug)]
pub struct BlockContext<'a> {
    /// The chain.
    pub chain_id: &'a ChainId,
    /// The block's header (height, time, proposer).
    pub header: &'a Header,
    /// The store, for what is not state (earlier blocks' headers).
    pub store: &'a StateStore,
    /// The committed state version the block builds on.
    pub version: u64,
}

/// The block's state as a module reads it: the committed version with the block's earlier writes on
/// top (including earlier transactions' fees and messages).
pub trait StateView {
    /// The value of `key`.
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StateError>;
}

/// What a module's execution of one transaction did.
#[derive(Debug)]
pub struct Executed {
    /// Gas used (the ante's share included); over the gas limit the transaction fails.
    pub gas_used: u64,
    /// Its effects on success, or why it failed.
    pub outcome: Result<Effects, TxFailure>,
}

/// A native-token move a module asks the bank for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Move {
    /// Debited account.
    pub from: Address,
    /// Credited account.
    pub to: Address,
    /// Amount moved.
    pub amount: u128,
}

/// What a successful module transaction changes.
#[derive(Debug, Default)]
pub struct Effects {
    /// State writes (never of account records).
    pub writes: Vec<Write>,
    /// Native-token moves, applied in order, all or none.
    pub moves: Vec<Move>,
    /// Its events.
    pub events: Vec<Event>,
}

/// A transaction kind other than the bank's transfer (see the module docs).
pub trait TxModule: Send + Sync + std::fmt::Debug {
    /// The kind byte it handles (not `0`, the bank's).
    fn kind(&self) -> u8;

    /// Structural decoding, no state, no signature check: the transaction's ante fields.
    fn decode(&self, tx: &[u8]) -> Result<Ante, TxFailure>;

    /// Whether the signature verifies.
    fn verify(&self, tx: &[u8]) -> Result<(), TxFailure>;

    /// Executes a transaction whose ante rules passed (its fee is already paid) over `state`.
    fn execute(&self, tx: &[u8], block: &BlockContext<'_>, state: &dyn StateView) -> Executed;

    /// The validator updates a whole block made, from the state before it (`start`) and after its
    /// transactions (`end`): the net change, so a validator added and removed within one block is no
    /// update at all. Only the validator module has any; the default is none.
    fn validator_updates(
        &self,
        start: &dyn StateView,
        end: &dyn StateView,
    ) -> Result<Vec<ValidatorChange>, TxFailure> {
        let _ = (start, end);
        Ok(Vec::new())
    }
}
