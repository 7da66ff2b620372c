//! What the RPC server needs from the running node: the [`RpcBackend`] trait and the plain data types
//! it returns. The server only reads through this trait (and submits transactions), so it can be tested
//! against a mock and the node can change its internals freely.

use std::sync::Arc;

use basalt_consensus::types::{
    Address, Block, Commit, DuplicateVoteEvidence, Hash, PublicKey, SignedVote, Tx, ValidatorSet,
};
use basalt_state::app::{AppInfo, CheckTxResult, Event, QueryResult, TxResult};

use super::query::TxQuery;

/// A storage failure while answering a read; reported to the client as an internal error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("backend failed reading {what}: {reason}")]
pub struct BackendError {
    /// What was being read, e.g. `block 5`.
    pub what: String,
    /// Why it failed.
    pub reason: String,
}

impl BackendError {
    /// Reading `what` failed because of `reason`.
    pub fn new(what: impl Into<String>, reason: impl std::fmt::Display) -> Self {
        BackendError {
            what: what.into(),
            reason: reason.to_string(),
        }
    }
}

/// Why `tx_search` gave no answer. A search is answered completely or not at all: never a silently
/// shortened list.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SearchError {
    /// Answering would take more reads than one call may make; the message says how to narrow the query.
    #[error("{0}")]
    TooBroad(String),
    /// Storage failed.
    #[error(transparent)]
    Backend(#[from] BackendError),
}

/// Why the mempool did not admit a transaction (as opposed to the application rejecting it, which is a
/// [`CheckTxResult`] with a non-zero code).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BroadcastError {
    /// The mempool holds its maximum number of transactions or bytes.
    #[error("mempool is full: number of txs {count} (max: {max_count}), total txs bytes {bytes} (max: {max_bytes})")]
    MempoolFull {
        /// Transactions held.
        count: usize,
        /// The count limit.
        max_count: usize,
        /// Bytes held.
        bytes: usize,
        /// The byte limit.
        max_bytes: usize,
    },
    /// The transaction is larger than the mempool accepts.
    #[error("tx too large. Max size is {max}, but got {len}")]
    TooLarge {
        /// Its size.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The same transaction was seen recently.
    #[error("tx already exists in cache")]
    AlreadyInCache,
    /// Refused for another reason (e.g. the node is shutting down or still syncing).
    #[error("tx rejected: {reason}")]
    Rejected {
        /// Why.
        reason: String,
    },
}

/// This node's identity and addresses (the `node_info` of `/status`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeInfo {
    /// The node's id. Basalt nodes have libp2p peer ids; CometBFT clients expect 40 hex characters, so
    /// the server reports a 40-hex id as is and otherwise the first 20 bytes of its BLAKE2s hash (see
    /// `docs/RPC.md`).
    pub id: String,
    /// The p2p listen address.
    pub listen_addr: String,
    /// The chain id.
    pub network: String,
    /// The node software version.
    pub version: String,
    /// The operator-chosen name.
    pub moniker: String,
    /// The RPC listen address, e.g. `tcp://127.0.0.1:26657`.
    pub rpc_address: String,
    /// Whether the tx index is on (`tx`, `tx_search`).
    pub tx_index: bool,
}

/// Where the node's chain is (the `sync_info` of `/status`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncInfo {
    /// Hash of the latest committed block ([`Hash::ZERO`] before the first block).
    pub latest_block_hash: Hash,
    /// App hash in the latest block's header (the state before that block), as CometBFT reports it.
    pub latest_app_hash: Hash,
    /// Latest committed height (0 before the first block).
    pub latest_block_height: u64,
    /// Its header time, ms since the Unix epoch.
    pub latest_block_time_ms: u64,
    /// Hash of the earliest block still stored.
    pub earliest_block_hash: Hash,
    /// App hash in the earliest stored block's header (the state before that block).
    pub earliest_app_hash: Hash,
    /// Earliest height still stored (after pruning).
    pub earliest_block_height: u64,
    /// Its header time, ms since the Unix epoch.
    pub earliest_block_time_ms: u64,
    /// Whether the node is block-syncing.
    pub catching_up: bool,
}

/// This node's validator key and power.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidatorInfo {
    /// Its address.
    pub address: Address,
    /// Its consensus key.
    pub public_key: PublicKey,
    /// Its voting power now (0 if the key is not in the current set).
    pub power: u64,
}

/// A consensus round step, numbered as CometBFT's `RoundStepType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RoundStep {
    /// Waiting for the next height to start.
    #[default]
    NewHeight = 1,
    /// A new round started.
    NewRound = 2,
    /// Waiting for or making a proposal.
    Propose = 3,
    /// Prevoting.
    Prevote = 4,
    /// Waiting for more prevotes.
    PrevoteWait = 5,
    /// Precommitting.
    Precommit = 6,
    /// Waiting for more precommits.
    PrecommitWait = 7,
    /// Committing a decided block.
    Commit = 8,
}

impl RoundStep {
    /// CometBFT's name of the step (`RoundStepType.String()`), as round-state events carry it.
    pub fn name(self) -> &'static str {
        match self {
            RoundStep::NewHeight => "RoundStepNewHeight",
            RoundStep::NewRound => "RoundStepNewRound",
            RoundStep::Propose => "RoundStepPropose",
            RoundStep::Prevote => "RoundStepPrevote",
            RoundStep::PrevoteWait => "RoundStepPrevoteWait",
            RoundStep::Precommit => "RoundStepPrecommit",
            RoundStep::PrecommitWait => "RoundStepPrecommitWait",
            RoundStep::Commit => "RoundStepCommit",
        }
    }
}

/// Where consensus is (CometBFT's `EventDataRoundState`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RoundState {
    /// Height being decided.
    pub height: u64,
    /// Round.
    pub round: u32,
    /// Step.
    pub step: RoundStep,
}

/// What the consensus state machine did: CometBFT v0.38's internal consensus events (`tm.event` =
/// `NewRound`, `NewRoundStep`, `CompleteProposal`, `Vote`, `Polka`, `Lock`, `Relock`, `ValidBlock`,
/// `TimeoutPropose`, `TimeoutWait`), published as they happen, never while replaying the WAL or block
/// syncing. Basalt's algorithm never releases a lock, so CometBFT's `Unlock` has no counterpart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConsensusEvent {
    /// A round started; `proposer` is its proposer's address and index in the validator set.
    NewRound {
        /// The new round (its step is `RoundStepNewRound`).
        state: RoundState,
        /// The round's proposer.
        proposer: (Address, u32),
    },
    /// The step changed.
    NewRoundStep(RoundState),
    /// A proposal with its whole block arrived for the current height (Basalt proposals carry the
    /// block, so a proposal is complete when it is accepted).
    CompleteProposal {
        /// Where consensus is.
        state: RoundState,
        /// The proposed block.
        block: Hash,
    },
    /// A vote of the current height was accepted (ours included).
    Vote {
        /// The vote.
        vote: SignedVote,
        /// The voter's address.
        validator: Address,
    },
    /// +2/3 prevoted for one block or for nil, and consensus moved to precommit.
    Polka(RoundState),
    /// We locked on a block.
    Lock(RoundState),
    /// We saw a new polka for the block we were locked on and moved the lock to this round.
    Relock(RoundState),
    /// The valid block changed (a polka for a proposed block).
    ValidBlock(RoundState),
    /// The propose timeout fired in the propose step.
    TimeoutPropose(RoundState),
    /// A prevote or precommit wait timeout fired.
    TimeoutWait(RoundState),
}

impl ConsensusEvent {
    /// The round state it carries (all but `Vote`).
    pub fn round_state(&self) -> Option<RoundState> {
        match self {
            ConsensusEvent::NewRound { state, .. }
            | ConsensusEvent::CompleteProposal { state, .. } => Some(*state),
            ConsensusEvent::Vote { .. } => None,
            ConsensusEvent::NewRoundStep(s)
            | ConsensusEvent::Polka(s)
            | ConsensusEvent::Lock(s)
            | ConsensusEvent::Relock(s)
            | ConsensusEvent::ValidBlock(s)
            | ConsensusEvent::TimeoutPropose(s)
            | ConsensusEvent::TimeoutWait(s) => Some(*s),
        }
    }

    /// Its `tm.event` name.
    pub fn name(&self) -> &'static str {
        match self {
            ConsensusEvent::NewRound { .. } => "NewRound",
            ConsensusEvent::NewRoundStep(_) => "NewRoundStep",
            ConsensusEvent::CompleteProposal { .. } => "CompleteProposal",
            ConsensusEvent::Vote { .. } => "Vote",
            ConsensusEvent::Polka(_) => "Polka",
            ConsensusEvent::Lock(_) => "Lock",
            ConsensusEvent::Relock(_) => "Relock",
            ConsensusEvent::ValidBlock(_) => "ValidBlock",
            ConsensusEvent::TimeoutPropose(_) => "TimeoutPropose",
            ConsensusEvent::TimeoutWait(_) => "TimeoutWait",
        }
    }
}

/// The consensus engine's position (for `consensus_state`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsensusStateView {
    /// Height being decided.
    pub height: u64,
    /// Round.
    pub round: u32,
    /// Step within the round.
    pub step: RoundStep,
    /// The round's proposer: address and index in the validator set.
    pub proposer: Option<(Address, u32)>,
    /// When the round started, ms since the Unix epoch.
    pub start_time_ms: u64,
    /// The proposed block of this round, if received.
    pub proposal_block_hash: Option<Hash>,
    /// The locked block, if any.
    pub locked_block_hash: Option<Hash>,
    /// The valid block, if any.
    pub valid_block_hash: Option<Hash>,
}

/// A committed transaction with its position and result (the tx index's record).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexedTx {
    /// Block height.
    pub height: u64,
    /// Position in the block.
    pub index: u32,
    /// The transaction.
    pub tx: Tx,
    /// Its execution result.
    pub result: TxResult,
}

/// One page of `tx_search` results, as CometBFT pages them: `matched` in (height, index) order, reversed if
/// `desc`, then page `page` (1-based) of `per_page`; also returns the total count. Every backend pages
/// through this one function, so the RPC tests that use a test backend test the node's paging.
pub fn page_of(
    mut matched: Vec<IndexedTx>,
    page: usize,
    per_page: usize,
    desc: bool,
) -> (Vec<IndexedTx>, usize) {
    matched.sort_by_key(|t| (t.height, t.index));
    if desc {
        matched.reverse();
    }
    let total = matched.len();
    let start = page.saturating_sub(1).saturating_mul(per_page);
    let page = matched.into_iter().skip(start).take(per_page).collect();
    (page, total)
}

/// A page of the mempool.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UnconfirmedTxs {
    /// At most the requested number of transactions, in mempool order.
    pub txs: Vec<Tx>,
    /// Transactions in the mempool.
    pub total: usize,
    /// Their total size in bytes.
    pub total_bytes: usize,
}

/// One connected peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerInfo {
    /// Its node id (same rules as [`NodeInfo::id`]).
    pub node_id: String,
    /// Its IP address.
    pub remote_ip: std::net::IpAddr,
    /// Whether this node dialled it.
    pub is_outbound: bool,
    /// Its moniker, if known.
    pub moniker: Option<String>,
    /// Seconds connected.
    pub connected_secs: u64,
}

/// The node's network view (`net_info`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NetInfo {
    /// Whether the p2p layer is listening.
    pub listening: bool,
    /// Its listen addresses.
    pub listeners: Vec<String>,
    /// Connected peers.
    pub peers: Vec<PeerInfo>,
}

/// A block was committed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewBlockEvent {
    /// The block.
    pub block: Block,
    /// One result per transaction, in block order.
    pub tx_results: Vec<TxResult>,
    /// Block-level events from `finalize_block`.
    pub events: Vec<Event>,
    /// The app hash after executing the block.
    pub app_hash: Hash,
}

/// What the node publishes to subscribers. Cheap to clone (the broadcast channel clones per receiver).
#[derive(Debug, Clone)]
pub enum NodeEvent {
    /// A block was committed (published after it is durable).
    NewBlock(Arc<NewBlockEvent>),
    /// A transaction was committed (one per transaction of a block, after the block's event).
    Tx(Arc<IndexedTx>),
    /// Evidence was committed in the block at `height` (CometBFT's `NewEvidence`, after the block's
    /// event).
    Evidence {
        /// The evidence.
        evidence: Arc<DuplicateVoteEvidence>,
        /// The height of the block that committed it.
        height: u64,
        /// That block's time, ms since the Unix epoch (Basalt votes carry no time of their own).
        time_ms: u64,
    },
}

/// A boxed future borrowing the backend (what `#[async_trait]` would generate, without the macro).
pub type BoxFuture<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;

/// What the running node provides to the RPC server. Reads are synchronous and should be quick (they
/// run on the async runtime); the two network-facing calls return boxed futures (implement them as
/// `Box::pin(async move { ... })`, or with `#[async_trait]` on the impl).
pub trait RpcBackend: Send + Sync + 'static {
    /// This node's identity.
    fn node_info(&self) -> NodeInfo;
    /// Where the chain is.
    fn sync_info(&self) -> SyncInfo;
    /// This node's validator key, if it has one.
    fn validator_info(&self) -> Option<ValidatorInfo>;
    /// The genesis file's text (a JSON object).
    fn genesis_json(&self) -> Arc<str>;
    /// The block at `height`, if stored.
    fn block(&self, height: u64) -> Result<Option<Block>, BackendError>;
    /// The height of the block whose header hashes to `hash`, if stored.
    fn block_height_by_hash(&self, hash: &Hash) -> Result<Option<u64>, BackendError>;
    /// The commit that decided the block at `height` (the "seen" commit for the latest block).
    fn commit(&self, height: u64) -> Result<Option<Commit>, BackendError>;
    /// The validator set that signs the block at `height`.
    fn validators(&self, height: u64) -> Result<Option<ValidatorSet>, BackendError>;
    /// The transaction results of the block at `height`.
    fn block_results(&self, height: u64) -> Result<Option<Vec<TxResult>>, BackendError>;
    /// The consensus engine's position.
    fn consensus_state(&self) -> ConsensusStateView;
    /// The application's last height and app hash.
    fn abci_info(&self) -> AppInfo;
    /// A state query (height 0 = latest).
    fn abci_query(&self, path: &str, data: &[u8], height: u64, prove: bool) -> QueryResult;
    /// Checks a transaction against the application without adding it to the mempool.
    fn check_tx(&self, tx: &Tx) -> CheckTxResult;
    /// Prepares the admission of several transactions submitted together (a JSON-RPC batch), e.g. by
    /// verifying their signatures in one batch; each is still submitted by [`RpcBackend::broadcast_tx`].
    /// Doing nothing is correct.
    fn preverify_txs(&self, txs: Vec<Tx>) -> BoxFuture<'_, ()> {
        drop(txs);
        Box::pin(async {})
    }
    /// Submits a transaction to the mempool (and gossip); returns the application's verdict.
    fn broadcast_tx(&self, tx: Tx) -> BoxFuture<'_, Result<CheckTxResult, BroadcastError>>;
    /// A committed transaction by hash.
    fn tx(&self, hash: &Hash) -> Result<Option<IndexedTx>, BackendError>;
    /// Committed transactions matching `query`: the `page` (1-based) of `per_page` results in height
    /// then index order (reversed if `desc`), and the total number of matches — complete and exact, or
    /// [`SearchError::TooBroad`]. [`TxQuery::matches`] decides membership.
    fn tx_search(
        &self,
        query: &TxQuery,
        page: usize,
        per_page: usize,
        desc: bool,
    ) -> Result<(Vec<IndexedTx>, usize), SearchError>;
    /// Up to `limit` mempool transactions and the mempool's totals.
    fn unconfirmed_txs(&self, limit: usize) -> UnconfirmedTxs;
    /// The p2p layer's view.
    fn net_info(&self) -> BoxFuture<'_, NetInfo>;
    /// A new receiver of node events.
    fn subscribe(&self) -> tokio::sync::broadcast::Receiver<NodeEvent>;
    /// A new receiver of consensus events (a channel of its own: block subscribers are not woken for
    /// every vote).
    fn subscribe_consensus(&self) -> tokio::sync::broadcast::Receiver<Arc<ConsensusEvent>>;
}
