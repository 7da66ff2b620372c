//! A mock [`RpcBackend`]: a real chain of Basalt blocks with signed commits (4 validators), a tx
//! index, a mempool and an event channel the tests publish on.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, dead_code)]

use std::sync::{Arc, Mutex};

use basalt_consensus::types::{
    Block, BlockId, ChainId, Commit, CommitSig, Hash, Header, PrivateKey, Tx, ValidatorSet, Vote,
};
use basalt_consensus::{Height, Round, VoteType};
use basalt_node::rpc::backend::BoxFuture;
use basalt_node::rpc::{
    BackendError, BroadcastError, ConsensusEvent, ConsensusStateView, IndexedTx, NetInfo,
    NewBlockEvent, NodeEvent, NodeInfo, PeerInfo, QueryMatch, RoundStep, RpcBackend, SearchError,
    SyncInfo, TxQuery, UnconfirmedTxs, ValidatorInfo,
};
use basalt_state::app::{AppInfo, CheckTxResult, Event, QueryResult, TxResult};
use basalt_state::ics23;
use tokio::sync::broadcast;

pub const CHAIN: &str = "basalt-mock-1";
pub const LATEST: u64 = 5;
pub const SENDER: &str = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
pub const RECIPIENT: &str = "BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB";

pub fn keys() -> Vec<PrivateKey> {
    (1..=4u8).map(|i| PrivateKey::from_seed(&[i; 32])).collect()
}

pub fn validator_set() -> ValidatorSet {
    ValidatorSet::new(keys().iter().map(|k| (k.public_key(), 10)).collect()).unwrap()
}

fn chain_id() -> ChainId {
    ChainId::new(CHAIN).unwrap()
}

/// A commit for `id` at `height`: validator 0..2 sign for the block, the last is absent (so both
/// flags appear), except that at height 2 validator 2 precommits nil.
pub fn sign_commit(set: &ValidatorSet, height: u64, id: BlockId) -> Commit {
    let keys = keys();
    let signatures = set
        .validators()
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let key = keys
                .iter()
                .find(|k| k.public_key().address() == v.address)
                .unwrap();
            let block_id = if height == 2 && i == 2 {
                None
            } else {
                Some(id)
            };
            let vote = Vote {
                vote_type: VoteType::Precommit,
                height: Height(height),
                round: Round(0),
                block_id,
                validator_index: basalt_consensus::ValidatorIndex(i as u32),
            };
            let sig = key.sign(&vote.sign_bytes(&chain_id()));
            match (i, block_id) {
                (3, _) => CommitSig::Absent,
                (_, None) => CommitSig::Nil(sig),
                _ => CommitSig::ForBlock(sig),
            }
        })
        .collect();
    Commit {
        height: Height(height),
        round: Round(0),
        block_id: id,
        signatures,
    }
}

pub fn time_ms(height: u64) -> u64 {
    1_700_000_000_000 + height * 1000 + 250
}

/// A block at `height` after `last` (with its commit), holding `txs`.
pub fn make_block(height: u64, last: Option<&Commit>, txs: Vec<Tx>) -> Block {
    let set = validator_set();
    let (data_hash, evidence_hash, last_commit_hash) = Block::content_hashes(&txs, &[], last);
    let header = Header {
        chain_id: chain_id(),
        height: Height(height),
        time_ms: time_ms(height),
        last_block_id: last.map(|c| c.block_id),
        last_commit_hash,
        data_hash,
        validators_hash: set.hash(),
        next_validators_hash: set.hash(),
        app_hash: Hash::digest(&height.to_le_bytes()),
        last_results_hash: Hash::ZERO,
        evidence_hash,
        proposer_address: set.validators()[0].address,
    };
    Block::new(header, txs, Vec::new(), last.cloned()).unwrap()
}

pub fn transfer_result(sender: &str) -> TxResult {
    TxResult {
        code: 0,
        log: String::new(),
        gas_wanted: 100,
        gas_used: 60,
        events: vec![Event::new(
            "transfer",
            &[
                ("sender", sender.to_owned()),
                ("recipient", RECIPIENT.to_owned()),
                ("amount", "7".to_owned()),
            ],
        )],
    }
}

pub struct MockBackend {
    pub blocks: Vec<(Block, Commit)>,
    pub results: Vec<Vec<TxResult>>,
    pub indexed: Vec<IndexedTx>,
    pub mempool: Mutex<Vec<Tx>>,
    pub events: broadcast::Sender<NodeEvent>,
    /// Consensus events the tests publish.
    pub consensus: broadcast::Sender<Arc<ConsensusEvent>>,
    /// While closed, `tx_search` blocks its thread (as a search over a long chain would), for at most
    /// [`SEARCH_GATE_CAP`]: how the tests hold handlers busy.
    pub search_gate: (Mutex<bool>, std::sync::Condvar),
    /// `tx_search` calls that returned.
    pub searches_done: std::sync::atomic::AtomicUsize,
    /// The transactions of each `preverify_txs` call.
    pub preverified: Mutex<Vec<Vec<Tx>>>,
}

/// Longest a closed search gate holds a `tx_search` call.
pub const SEARCH_GATE_CAP: std::time::Duration = std::time::Duration::from_secs(5);

impl MockBackend {
    /// Blocks 1..=5; block 3 holds two transfers (from SENDER and from RECIPIENT), block 4 one.
    pub fn new() -> Arc<MockBackend> {
        let set = validator_set();
        let mut blocks: Vec<(Block, Commit)> = Vec::new();
        let mut results = Vec::new();
        let mut indexed = Vec::new();
        for h in 1..=LATEST {
            let txs: Vec<(Tx, TxResult)> = match h {
                3 => vec![
                    (
                        Tx::new(b"tx-3-0".to_vec()).unwrap(),
                        transfer_result(SENDER),
                    ),
                    (
                        Tx::new(b"tx-3-1".to_vec()).unwrap(),
                        transfer_result(RECIPIENT),
                    ),
                ],
                4 => vec![(
                    Tx::new(b"tx-4-0".to_vec()).unwrap(),
                    transfer_result(SENDER),
                )],
                _ => Vec::new(),
            };
            let last = blocks.last().map(|(_, c)| c);
            let block = make_block(h, last, txs.iter().map(|(t, _)| t.clone()).collect());
            let commit = sign_commit(&set, h, block.id());
            for (i, (tx, r)) in txs.iter().enumerate() {
                indexed.push(IndexedTx {
                    height: h,
                    index: i as u32,
                    tx: tx.clone(),
                    result: r.clone(),
                });
            }
            results.push(txs.into_iter().map(|(_, r)| r).collect());
            blocks.push((block, commit));
        }
        let (events, _) = broadcast::channel(1024);
        let (consensus, _) = broadcast::channel(1024);
        Arc::new(MockBackend {
            blocks,
            results,
            indexed,
            mempool: Mutex::new(vec![
                Tx::new(b"pending-1".to_vec()).unwrap(),
                Tx::new(b"pending-22".to_vec()).unwrap(),
            ]),
            events,
            consensus,
            search_gate: (Mutex::new(false), std::sync::Condvar::new()),
            searches_done: std::sync::atomic::AtomicUsize::new(0),
            preverified: Mutex::new(Vec::new()),
        })
    }

    /// Closes (`true`) or opens the search gate.
    pub fn set_search_gate(&self, closed: bool) {
        *self.search_gate.0.lock().unwrap() = closed;
        self.search_gate.1.notify_all();
    }

    fn get(&self, height: u64) -> Option<&(Block, Commit)> {
        self.blocks
            .get(usize::try_from(height).ok()?.checked_sub(1)?)
    }
}

impl RpcBackend for MockBackend {
    fn node_info(&self) -> NodeInfo {
        NodeInfo {
            id: "12D3KooWMockPeerId".into(),
            listen_addr: "/ip4/127.0.0.1/tcp/26656".into(),
            network: CHAIN.into(),
            version: "0.1.0".into(),
            moniker: "mock".into(),
            rpc_address: "tcp://127.0.0.1:26657".into(),
            tx_index: true,
        }
    }

    fn sync_info(&self) -> SyncInfo {
        let (first, _) = &self.blocks[0];
        let (last, _) = &self.blocks[self.blocks.len() - 1];
        SyncInfo {
            latest_block_hash: last.id().hash,
            latest_app_hash: Hash::digest(b"app-after-5"),
            latest_block_height: LATEST,
            latest_block_time_ms: last.header().time_ms,
            earliest_block_hash: first.id().hash,
            earliest_app_hash: first.header().app_hash,
            earliest_block_height: 1,
            earliest_block_time_ms: first.header().time_ms,
            catching_up: false,
        }
    }

    fn validator_info(&self) -> Option<ValidatorInfo> {
        let k = keys()[0].public_key();
        Some(ValidatorInfo {
            address: k.address(),
            public_key: k,
            power: 10,
        })
    }

    fn genesis_json(&self) -> Arc<str> {
        Arc::from(format!(
            r#"{{"genesis_time":"2023-11-14T22:13:20Z","chain_id":"{CHAIN}","initial_height":"1","app_state":{{"accounts":[]}}}}"#
        ))
    }

    fn block(&self, height: u64) -> Result<Option<Block>, BackendError> {
        Ok(self.get(height).map(|(b, _)| b.clone()))
    }

    fn block_height_by_hash(&self, hash: &Hash) -> Result<Option<u64>, BackendError> {
        Ok(self
            .blocks
            .iter()
            .find(|(b, _)| b.id().hash == *hash)
            .map(|(b, _)| b.height().0))
    }

    fn commit(&self, height: u64) -> Result<Option<Commit>, BackendError> {
        Ok(self.get(height).map(|(_, c)| c.clone()))
    }

    fn validators(&self, height: u64) -> Result<Option<ValidatorSet>, BackendError> {
        if height == 0 || height > LATEST + 1 {
            return Ok(None);
        }
        if height == 99 {
            return Err(BackendError {
                what: "validators".into(),
                reason: "disk".into(),
            });
        }
        Ok(Some(validator_set()))
    }

    fn block_results(&self, height: u64) -> Result<Option<Vec<TxResult>>, BackendError> {
        Ok(usize::try_from(height)
            .ok()
            .and_then(|h| h.checked_sub(1))
            .and_then(|i| self.results.get(i).cloned()))
    }

    fn consensus_state(&self) -> ConsensusStateView {
        ConsensusStateView {
            height: LATEST + 1,
            round: 0,
            step: RoundStep::Prevote,
            proposer: Some((validator_set().validators()[1].address, 1)),
            start_time_ms: time_ms(LATEST) + 500,
            proposal_block_hash: Some(Hash::digest(b"proposal")),
            locked_block_hash: None,
            valid_block_hash: None,
        }
    }

    fn abci_info(&self) -> AppInfo {
        AppInfo {
            last_height: Some(LATEST),
            last_app_hash: Hash::digest(b"app-after-5"),
        }
    }

    fn abci_query(&self, path: &str, data: &[u8], height: u64, prove: bool) -> QueryResult {
        if path != "/bank/account" {
            return QueryResult::error(1, format!("unknown query path {path:?}"), height);
        }
        let proof = prove.then(|| ics23::CommitmentProof {
            proof: Some(ics23::commitment_proof::Proof::Exist(
                ics23::ExistenceProof {
                    key: data.to_vec(),
                    value: b"balance".to_vec(),
                    leaf: None,
                    path: Vec::new(),
                },
            )),
        });
        QueryResult {
            code: 0,
            log: String::new(),
            key: data.to_vec(),
            value: b"balance".to_vec(),
            proof,
            height: if height == 0 { LATEST } else { height },
        }
    }

    fn check_tx(&self, tx: &Tx) -> CheckTxResult {
        if tx.as_bytes().starts_with(b"bad") {
            return CheckTxResult::rejected(5, "insufficient funds");
        }
        CheckTxResult {
            code: 0,
            log: String::new(),
            gas_wanted: 100,
            gas_used: 60,
            sender: None,
            nonce: 0,
            priority: 1,
        }
    }

    /// `bad…` is rejected by the app, `full…` by the mempool; `commit…` is committed at once (a Tx event
    /// at height 6); anything else just waits in the mempool.
    fn preverify_txs(&self, txs: Vec<Tx>) -> BoxFuture<'_, ()> {
        self.preverified.lock().unwrap().push(txs);
        Box::pin(async {})
    }

    fn broadcast_tx(&self, tx: Tx) -> BoxFuture<'_, Result<CheckTxResult, BroadcastError>> {
        Box::pin(async move {
            if tx.as_bytes().starts_with(b"full") {
                return Err(BroadcastError::MempoolFull {
                    count: 2,
                    max_count: 2,
                    bytes: 10,
                    max_bytes: 100,
                });
            }
            let r = self.check_tx(&tx);
            if r.is_ok() {
                self.mempool.lock().unwrap().push(tx.clone());
                if tx.as_bytes().starts_with(b"commit") {
                    let _ = self.events.send(NodeEvent::Tx(Arc::new(IndexedTx {
                        height: LATEST + 1,
                        index: 0,
                        tx,
                        result: transfer_result(SENDER),
                    })));
                }
            }
            Ok(r)
        })
    }

    fn tx(&self, hash: &Hash) -> Result<Option<IndexedTx>, BackendError> {
        Ok(self.indexed.iter().find(|t| t.tx.hash() == *hash).cloned())
    }

    fn tx_search(
        &self,
        query: &TxQuery,
        page: usize,
        per_page: usize,
        desc: bool,
    ) -> Result<(Vec<IndexedTx>, usize), SearchError> {
        let closed = self.search_gate.0.lock().unwrap();
        let _ = self
            .search_gate
            .1
            .wait_timeout_while(closed, SEARCH_GATE_CAP, |closed| *closed)
            .unwrap();
        self.searches_done
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let matched: Vec<IndexedTx> = self
            .indexed
            .iter()
            .filter(|t| query.matches(t))
            .cloned()
            .collect();
        Ok(basalt_node::rpc::backend::page_of(
            matched, page, per_page, desc,
        ))
    }

    fn unconfirmed_txs(&self, limit: usize) -> UnconfirmedTxs {
        let pool = self.mempool.lock().unwrap();
        UnconfirmedTxs {
            txs: pool.iter().take(limit).cloned().collect(),
            total: pool.len(),
            total_bytes: pool.iter().map(|t| t.as_bytes().len()).sum(),
        }
    }

    fn net_info(&self) -> BoxFuture<'_, NetInfo> {
        Box::pin(async {
            NetInfo {
                listening: true,
                listeners: vec!["/ip4/127.0.0.1/tcp/26656".into()],
                peers: vec![PeerInfo {
                    node_id: "12D3KooWOtherPeer".into(),
                    remote_ip: "127.0.0.2".parse().unwrap(),
                    is_outbound: true,
                    moniker: Some("other".into()),
                    connected_secs: 3,
                }],
            }
        })
    }

    fn subscribe(&self) -> broadcast::Receiver<NodeEvent> {
        self.events.subscribe()
    }

    fn subscribe_consensus(&self) -> broadcast::Receiver<Arc<ConsensusEvent>> {
        self.consensus.subscribe()
    }
}

/// A NewBlock event for a block at `height` with `txs` (no last commit, so it stands alone).
pub fn new_block_event(height: u64, txs: Vec<Tx>) -> NodeEvent {
    let results = txs.iter().map(|_| transfer_result(SENDER)).collect();
    NodeEvent::NewBlock(Arc::new(NewBlockEvent {
        block: make_block(height, None, txs),
        tx_results: results,
        events: Vec::new(),
        app_hash: Hash::digest(b"app"),
    }))
}
