//! The real node behind the RPC server: reads from the block store and the application, the driver's
//! snapshot, the mempool and the network.

use std::sync::Arc;

use basalt_consensus::types::{decode, Address, Block, Commit, Hash, Tx, ValidatorSet};
use basalt_state::app::{AppInfo, Application, BankApp, CheckTxResult, QueryResult, TxResult};
use basalt_state::StateStore;
use tokio::sync::broadcast;

use super::blocks;
use super::shared::Shared;
use crate::mempool::{Known, Mempool, MempoolError};
use crate::rpc::backend::{
    BackendError, BoxFuture, BroadcastError, ConsensusEvent, ConsensusStateView, IndexedTx,
    NetInfo, NodeEvent, NodeInfo, PeerInfo, RpcBackend, SearchError, SyncInfo, UnconfirmedTxs,
    ValidatorInfo,
};
use crate::rpc::query::TxQuery;

/// What one `tx_search` may do: read and test at most 9,999 transactions against conditions no index
/// answers, and count at most 1,000,000 matches of an attribute equality (index keys only). A query that
/// would need more is refused with a hint on how to narrow it; an answer is never a shortened list.
const SEARCH_LIMITS: super::search::SearchLimits = super::search::SearchLimits {
    checked: basalt_state::index::MAX_SEARCH_RESULTS - 1,
    counted: 1_000_000,
};

/// The node's [`RpcBackend`].
pub struct NodeBackend {
    /// Static identity.
    pub node_info: NodeInfo,
    /// The genesis file text.
    pub genesis_json: Arc<str>,
    /// First height.
    pub initial_height: u64,
    /// This node's key.
    pub validator: Option<(Address, basalt_consensus::types::PublicKey)>,
    /// Block store and state.
    pub store: Arc<StateStore>,
    /// A read-only application instance (queries and checks only).
    pub app: Arc<BankApp>,
    /// The mempool.
    pub mempool: Arc<Mempool>,
    /// The network.
    pub network: basalt_p2p::NetworkHandle,
    /// The driver's snapshot and events.
    pub shared: Arc<Shared>,
    /// Metrics (signature checks and proof queries are counted here).
    pub metrics: Option<Arc<crate::metrics::Metrics>>,
    /// Validator sets of past heights (checkpointed rotations of the genesis set).
    pub sets: Arc<super::valsets::SetHistory>,
}

impl NodeBackend {
    fn set_at(&self, height: u64) -> ValidatorSet {
        self.sets.at(height)
    }
}

impl RpcBackend for NodeBackend {
    fn node_info(&self) -> NodeInfo {
        self.node_info.clone()
    }

    fn sync_info(&self) -> SyncInfo {
        let snap = self.shared.snapshot();
        let base = self
            .store
            .base_height()
            .ok()
            .flatten()
            .unwrap_or(self.initial_height)
            .min(snap.height);
        let earliest = blocks::read(&self.store, base).ok().flatten();
        // As CometBFT: the app hashes in the latest and earliest blocks' headers (each the state before
        // its block), not the states after them.
        let earliest_app_hash = earliest
            .as_ref()
            .map_or(Hash::ZERO, |(b, _)| b.header().app_hash);
        SyncInfo {
            latest_block_hash: snap.last_block_hash.unwrap_or(Hash::ZERO),
            latest_app_hash: snap.last_header_app_hash,
            latest_block_height: snap.height,
            latest_block_time_ms: snap.last_block_time_ms,
            earliest_block_hash: earliest.as_ref().map_or(Hash::ZERO, |(b, _)| b.id().hash),
            earliest_app_hash,
            earliest_block_height: earliest.as_ref().map_or(0, |_| base),
            earliest_block_time_ms: earliest.as_ref().map_or(0, |(b, _)| b.header().time_ms),
            catching_up: snap.catching_up,
        }
    }

    fn validator_info(&self) -> Option<ValidatorInfo> {
        let (address, public_key) = self.validator?;
        let snap = self.shared.snapshot();
        let set = self.set_at(snap.consensus_height.max(self.initial_height));
        let power = set
            .index_of(&address)
            .and_then(|i| set.get(i))
            .map_or(0, |v| v.voting_power);
        Some(ValidatorInfo {
            address,
            public_key,
            power,
        })
    }

    fn genesis_json(&self) -> Arc<str> {
        self.genesis_json.clone()
    }

    fn block(&self, height: u64) -> Result<Option<Block>, BackendError> {
        let Some(bytes) = self
            .store
            .block(height)
            .map_err(|e| BackendError::new(format!("block {height}"), e))?
        else {
            return Ok(None);
        };
        decode(
            "stored block",
            &bytes,
            basalt_consensus::types::encoding::MAX_BLOCK_BYTES,
        )
        .map(Some)
        .map_err(|e| BackendError::new(format!("block {height}"), e))
    }

    fn block_height_by_hash(&self, hash: &Hash) -> Result<Option<u64>, BackendError> {
        self.store
            .block_height_by_hash(&hash.0)
            .map_err(|e| BackendError::new(format!("block {}", hash.to_hex_upper()), e))
    }

    fn commit(&self, height: u64) -> Result<Option<Commit>, BackendError> {
        let Some(bytes) = self
            .store
            .commit(height)
            .map_err(|e| BackendError::new(format!("commit {height}"), e))?
        else {
            return Ok(None);
        };
        decode(
            "stored commit",
            &bytes,
            basalt_consensus::types::encoding::MAX_BLOCK_BYTES,
        )
        .map(Some)
        .map_err(|e| BackendError::new(format!("commit {height}"), e))
    }

    fn validators(&self, height: u64) -> Result<Option<ValidatorSet>, BackendError> {
        let snap = self.shared.snapshot();
        if height < self.initial_height || height > snap.height.saturating_add(1) {
            return Ok(None);
        }
        Ok(Some(self.set_at(height)))
    }

    fn block_results(&self, height: u64) -> Result<Option<Vec<TxResult>>, BackendError> {
        self.store
            .block_results(height)
            .map_err(|e| BackendError::new(format!("results of block {height}"), e))
    }

    fn consensus_state(&self) -> ConsensusStateView {
        let snap = self.shared.snapshot();
        ConsensusStateView {
            height: snap.consensus_height,
            round: snap.round,
            step: snap.step,
            proposer: snap.proposer,
            start_time_ms: snap.round_start_ms,
            proposal_block_hash: None,
            locked_block_hash: snap.locked,
            valid_block_hash: snap.valid,
        }
    }

    fn abci_info(&self) -> AppInfo {
        self.app.info().unwrap_or(AppInfo {
            last_height: None,
            last_app_hash: Hash::ZERO,
        })
    }

    fn abci_query(&self, path: &str, data: &[u8], height: u64, prove: bool) -> QueryResult {
        if prove {
            if let Some(m) = &self.metrics {
                m.basalt.proof_queries_total.inc();
            }
        }
        self.app.query(path, data, height, prove)
    }

    fn check_tx(&self, tx: &Tx) -> CheckTxResult {
        self.app.check_tx(tx)
    }

    fn preverify_txs(&self, txs: Vec<Tx>) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            let app = self.app.clone();
            let mempool = self.mempool.clone();
            // Only what this node has not judged yet (a resubmitted transaction is answered from the
            // mempool's cache). A failed join only loses the speed-up: each is then checked alone.
            let _ = tokio::task::spawn_blocking(move || {
                app.preverify_signatures(
                    txs.iter()
                        .filter(|tx| mempool.known(&tx.hash()) == Known::Unknown),
                )
            })
            .await;
        })
    }

    fn broadcast_tx(&self, tx: Tx) -> BoxFuture<'_, Result<CheckTxResult, BroadcastError>> {
        Box::pin(async move {
            // Accepted while block-syncing too (as CometBFT's RPC does): the mempool is rechecked after
            // every applied block, and the transaction is proposed once the node is in consensus.
            let mempool = self.mempool.clone();
            let app = self.app.clone();
            let outcome =
                tokio::task::spawn_blocking(move || mempool.insert(tx, |t| app.check_tx(t)))
                    .await
                    .map_err(|e| BroadcastError::Rejected {
                        reason: format!("internal: {e}"),
                    })?;
            match outcome {
                Ok(result) => Ok(result),
                Err(MempoolError::Rejected { code, log }) => Ok(CheckTxResult::rejected(code, log)),
                Err(MempoolError::InCache(_)) => Err(BroadcastError::AlreadyInCache),
                Err(MempoolError::TooLarge { len, max }) => {
                    Err(BroadcastError::TooLarge { len, max })
                }
                Err(MempoolError::Full {
                    count,
                    max_count,
                    bytes,
                    max_bytes,
                }) => Err(BroadcastError::MempoolFull {
                    count,
                    max_count,
                    bytes,
                    max_bytes,
                }),
            }
        })
    }

    fn tx(&self, hash: &Hash) -> Result<Option<IndexedTx>, BackendError> {
        super::search::tx_by_hash(&self.store, hash)
    }

    fn tx_search(
        &self,
        query: &TxQuery,
        page: usize,
        per_page: usize,
        desc: bool,
    ) -> Result<(Vec<IndexedTx>, usize), SearchError> {
        let latest = self.shared.snapshot().height;
        let request = super::search::Request {
            query,
            page,
            per_page,
            desc,
        };
        super::search::tx_search(&self.store, latest, &request, SEARCH_LIMITS)
    }

    fn unconfirmed_txs(&self, limit: usize) -> UnconfirmedTxs {
        UnconfirmedTxs {
            txs: self.mempool.txs(limit),
            total: self.mempool.size(),
            total_bytes: usize::try_from(self.mempool.size_bytes()).unwrap_or(usize::MAX),
        }
    }

    fn net_info(&self) -> BoxFuture<'_, NetInfo> {
        Box::pin(async move {
            let peers = self.network.peers().await;
            NetInfo {
                listening: true,
                listeners: vec![self.node_info.listen_addr.clone()],
                peers: peers
                    .into_iter()
                    .map(|p| PeerInfo {
                        node_id: p.id.to_string(),
                        remote_ip: p
                            .addr
                            .map_or(std::net::IpAddr::from([0, 0, 0, 0]), |a| a.ip()),
                        is_outbound: p.outbound,
                        moniker: None,
                        connected_secs: std::time::SystemTime::now()
                            .duration_since(p.since)
                            .map_or(0, |d| d.as_secs()),
                    })
                    .collect(),
            }
        })
    }

    fn subscribe(&self) -> broadcast::Receiver<NodeEvent> {
        self.shared.subscribe()
    }

    fn subscribe_consensus(&self) -> broadcast::Receiver<Arc<ConsensusEvent>> {
        self.shared.subscribe_consensus()
    }
}
