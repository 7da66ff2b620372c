//! The application interface: ABCI 2.0 in spirit, in-process, as a Rust trait.
//!
//! The node drives an [`Application`] through a block's life:
//!
//! 1. [`Application::init_chain`] once, with the genesis `app_state`; returns the initial app hash (the
//!    `app_hash` of the first block's header).
//! 2. [`Application::check_tx`] for every transaction entering the mempool, and
//!    [`Application::recheck_tx`] for those still in it after each commit.
//! 3. [`Application::prepare_proposal`] when this node proposes, [`Application::process_proposal`] when
//!    another validator's proposal arrives.
//! 4. [`Application::finalize_block`] once the block is decided: per-transaction results and events and
//!    the app hash the block leads to, nothing persisted yet.
//! 5. [`Application::commit`]: the state writes, the block, its commit bytes and its indexes (block
//!    hash, transactions with their results, events) land in one synced write
//!    ([`crate::StateStore::commit_block`]); returns the app hash, which the *next* block's header
//!    carries (CometBFT's deferred execution).
//! 6. [`Application::query`] at any retained height, with an ICS-23 proof on request.
//!
//! On start, [`handshake::handshake`] reconciles the block store, the state and the application.
//!
//! Determinism: implementations must give the same results and app hash on every node and platform —
//! no `HashMap` iteration order, no floats, no clocks, no randomness.

pub mod bank_app;
pub mod handshake;
pub mod module;
pub mod query;
pub mod sigcache;
pub mod testkit;
pub mod validators;

use basalt_consensus::types::{merkle_root, Address, Block, Hash, Tx};
use borsh::{BorshDeserialize, BorshSerialize};

use crate::bank::{BankError, GenesisError};
use crate::error::StateError;

pub use bank_app::{BankApp, BankAppConfig, Preverified, IBC_STORE_PREFIX};
pub use handshake::{handshake, HandshakeError, HandshakeOutcome};
pub use module::{Ante, BlockContext, Effects, Executed, Move, StateView, TxModule};
pub use query::{verify_answer, AnswerError, QueryPathError, QueryTarget};
pub use sigcache::SignatureCache;

/// Result code of success (CometBFT's convention: 0 is OK, anything else is an error).
pub const CODE_OK: u32 = 0;

/// Longest `log` an application returns (logs travel in RPC responses and are not consensus-critical).
pub const MAX_LOG_BYTES: usize = 1024;

/// A key/value attribute of an [`Event`] (CometBFT's `EventAttribute`).
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct EventAttribute {
    /// Attribute name, e.g. `sender`.
    pub key: String,
    /// Attribute value, e.g. an upper-case hex address or a decimal amount.
    pub value: String,
    /// Whether the tx indexer should index it.
    pub index: bool,
}

/// An event emitted by a transaction or a block (CometBFT's `Event`: a type and attributes).
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct Event {
    /// Event type, e.g. `transfer`.
    pub kind: String,
    /// Its attributes, in emission order.
    pub attributes: Vec<EventAttribute>,
}

impl Event {
    /// An event with indexed attributes.
    pub fn new(kind: &str, attributes: &[(&str, String)]) -> Event {
        Event {
            kind: kind.to_owned(),
            attributes: attributes
                .iter()
                .map(|(key, value)| EventAttribute {
                    key: (*key).to_owned(),
                    value: value.clone(),
                    index: true,
                })
                .collect(),
        }
    }
}

/// The mempool's view of a transaction, from [`Application::check_tx`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckTxResult {
    /// [`CODE_OK`] if the transaction may enter the mempool.
    pub code: u32,
    /// Why not, or empty.
    pub log: String,
    /// Gas the transaction asks for (its gas limit).
    pub gas_wanted: u64,
    /// Gas it will use if executed.
    pub gas_used: u64,
    /// Sender's account, for per-sender ordering and limits in the mempool.
    pub sender: Option<Address>,
    /// Sender's nonce carried by the transaction; the mempool orders a sender's transactions by it.
    pub nonce: u64,
    /// Higher is included first (the fee, saturated to u64).
    pub priority: u64,
}

impl CheckTxResult {
    /// A rejection with `code` and `log`.
    pub fn rejected(code: u32, log: impl Into<String>) -> CheckTxResult {
        CheckTxResult {
            code,
            log: bounded_log(log.into()),
            gas_wanted: 0,
            gas_used: 0,
            sender: None,
            nonce: 0,
            priority: 0,
        }
    }

    /// Whether the transaction was accepted.
    pub fn is_ok(&self) -> bool {
        self.code == CODE_OK
    }
}

/// The outcome of one transaction in [`Application::finalize_block`] (stored Borsh-encoded by the
/// tx index).
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct TxResult {
    /// [`CODE_OK`] if executed; failed transactions change no state.
    pub code: u32,
    /// Human-readable outcome (not hashed).
    pub log: String,
    /// Gas the transaction asked for.
    pub gas_wanted: u64,
    /// Gas it used.
    pub gas_used: u64,
    /// Events it emitted (not hashed).
    pub events: Vec<Event>,
}

/// What [`Application::finalize_block`] returns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FinalizeResult {
    /// One result per transaction, in block order.
    pub tx_results: Vec<TxResult>,
    /// Block-level events.
    pub events: Vec<Event>,
    /// The app hash after this block: what [`Application::commit`] will return and the next header
    /// will carry.
    pub app_hash: Hash,
    /// Validator-set changes the block made, net (its final validator state against the one before
    /// it: one per changed key, ordered by address; a validator added and removed within the block is
    /// none): the chain applies them to the set of height h + 2.
    pub validator_updates: Vec<basalt_consensus::types::ValidatorChange>,
}

/// Verdict of [`Application::process_proposal`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProposalVerdict {
    /// Vote for it.
    Accept,
    /// Prevote nil.
    Reject {
        /// Why (for logs).
        reason: String,
    },
}

/// What [`Application::info`] reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AppInfo {
    /// Last committed height (`initial_height - 1` right after [`Application::init_chain`]); `None`
    /// before `init_chain`.
    pub last_height: Option<u64>,
    /// App hash at `last_height` ([`Hash::ZERO`] before `init_chain`).
    pub last_app_hash: Hash,
}

/// What [`Application::query`] returns (CometBFT's `ResponseQuery`, minus the codespace).
#[derive(Clone, Debug, PartialEq)]
pub struct QueryResult {
    /// [`CODE_OK`] or an error code.
    pub code: u32,
    /// Why it failed, or empty.
    pub log: String,
    /// The state key the answer is about (what the proof proves).
    pub key: Vec<u8>,
    /// The answer; empty if the key is absent.
    pub value: Vec<u8>,
    /// ICS-23 proof of `key` (existence, or non-existence if absent) against the app hash of `height`,
    /// when asked for.
    pub proof: Option<ics23::CommitmentProof>,
    /// Height (state version) the answer is from.
    pub height: u64,
}

impl QueryResult {
    /// A failed query.
    pub fn error(code: u32, log: impl Into<String>, height: u64) -> QueryResult {
        QueryResult {
            code,
            log: bounded_log(log.into()),
            key: Vec::new(),
            value: Vec::new(),
            proof: None,
            height,
        }
    }
}

/// Errors that stop the node (the application cannot continue safely); transaction failures are
/// results, never errors.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The state store failed.
    #[error("state store: {source}")]
    Store {
        /// The store's error.
        #[from]
        source: StateError,
    },
    /// The bank failed (storage or corruption).
    #[error("bank: {source}")]
    Bank {
        /// The bank's error.
        #[from]
        source: BankError,
    },
    /// The genesis `app_state` is invalid.
    #[error("genesis: {source}")]
    Genesis {
        /// Why.
        #[from]
        source: GenesisError,
    },
    /// `init_chain` was called on a store that already has state.
    #[error("init_chain called but the state is already at height {height}")]
    AlreadyInitialized {
        /// The existing height.
        height: u64,
    },
    /// A block arrived before `init_chain`.
    #[error("no state: init_chain has not run")]
    NotInitialized,
    /// The initial height must be at least 1.
    #[error("initial height must be at least 1")]
    BadInitialHeight,
    /// The block is not the next one.
    #[error("block at height {got}, expected {expected}")]
    WrongHeight {
        /// The block's height.
        got: u64,
        /// The only acceptable height.
        expected: u64,
    },
    /// The block is for another chain.
    #[error("block is for chain {got}, the application runs {expected}")]
    WrongChain {
        /// The block's chain id.
        got: String,
        /// The application's.
        expected: String,
    },
    /// `commit` without a finalized block.
    #[error("call out of order: {reason}")]
    OutOfOrder {
        /// What was wrong.
        reason: &'static str,
    },
    /// The store computed another root than `finalize_block` announced: a bug, never ignored.
    #[error("app hash announced by finalize_block {announced} differs from the committed root {committed}")]
    RootMismatch {
        /// From `finalize_block`.
        announced: Hash,
        /// From the store.
        committed: Hash,
    },
    /// A module could not read its own state at the end of a block (a corrupt record).
    #[error("module state: {reason}")]
    Module {
        /// Why.
        reason: String,
    },
}

/// A Tendermint-style application, driven in-process by the node. See the module docs for the call
/// order. Implementations are deterministic.
pub trait Application {
    /// Last committed height and app hash.
    fn info(&self) -> Result<AppInfo, AppError>;

    /// Loads the genesis `app_state` and persists it as state version `initial_height - 1`; returns the
    /// initial app hash.
    fn init_chain(
        &mut self,
        initial_height: u64,
        app_state: &serde_json::Value,
    ) -> Result<Hash, AppError>;

    /// Whether `tx` may enter the mempool, checked against the last committed state.
    fn check_tx(&self, tx: &Tx) -> CheckTxResult;

    /// Re-checks a transaction already in the mempool against the state after a new commit; `previous`
    /// is its last check result. The mempool calls this for every remaining transaction after each
    /// commit, so implementations should skip what cannot have changed (signatures). The default
    /// repeats [`Application::check_tx`].
    fn recheck_tx(&self, tx: &Tx, previous: &CheckTxResult) -> CheckTxResult {
        let _ = previous;
        self.check_tx(tx)
    }

    /// Chooses the transactions of this node's proposal from the mempool's `txs` (in priority order),
    /// within `max_bytes` (each transaction counts its length plus its 4-byte length prefix).
    fn prepare_proposal(&self, txs: Vec<Tx>, max_bytes: usize) -> Vec<Tx>;

    /// Whether a proposed block is acceptable to the application.
    fn process_proposal(&self, block: &Block) -> ProposalVerdict;

    /// Executes a decided block in memory: results, events and the app hash it leads to.
    fn finalize_block(&mut self, block: &Block) -> Result<FinalizeResult, AppError>;

    /// Persists the finalized block's state writes together with the block and `commit_bytes` (the
    /// encoded [`basalt_consensus::types::Commit`] that decided it) in one synced write; returns the
    /// app hash.
    fn commit(&mut self, commit_bytes: Vec<u8>) -> Result<Hash, AppError>;

    /// Answers `path` (with `data`) at `height` (0 = latest), with an ICS-23 proof if `prove`.
    fn query(&self, path: &str, data: &[u8], height: u64, prove: bool) -> QueryResult;
}

/// The `last_results_hash` of the next header: the Merkle root ([`merkle_root`]) over one leaf per
/// transaction, each the Borsh encoding of `(code: u32, gas_wanted: u64, gas_used: u64)`. Logs and
/// events are not hashed (CometBFT hashes only the deterministic fields).
pub fn results_hash(results: &[TxResult]) -> Hash {
    let leaves: Vec<Vec<u8>> = results
        .iter()
        .map(|r| basalt_consensus::types::encode(&(r.code, r.gas_wanted, r.gas_used)))
        .collect();
    merkle_root(&leaves)
}

/// Truncates a log to [`MAX_LOG_BYTES`] on a character boundary.
pub(crate) fn bounded_log(mut log: String) -> String {
    if log.len() > MAX_LOG_BYTES {
        let mut end = MAX_LOG_BYTES;
        while !log.is_char_boundary(end) {
            end -= 1;
        }
        log.truncate(end);
    }
    log
}
