//! The consensus driver's shell: the deterministic [`DriverCore`] connected to the WAL, the signer, the
//! network, timers, the application and block sync. One task owns all of it, so there is no locking and
//! every input is processed in one order — the order the WAL records. What is decided about an input
//! (checked? logged? forwarded? punished? which output next?) is the core's; this module does the I/O it
//! asks for ([`Host`]) and owns what depends on the wall clock: timers, re-gossip pacing, block sync.
//!
//! Durability contract (issue: never sign two conflicting messages, survive `kill -9` anywhere):
//! 1. Every engine input of the current/next height is appended to the WAL before it is processed.
//! 2. When the engine asks for a signature, the signer signs and persists its last-signed state (file +
//!    directory fsynced) while, at the same time, the signed message is appended to the WAL and the WAL is
//!    fsynced (which also makes durable the inputs that led to the request); only when both are on disk
//!    does the message leave the process. A crash before that leaves at most a signature nobody saw: on
//!    restart the signer returns it again for the same sign bytes or refuses anything else.
//! 3. On restart the WAL is replayed through a fresh engine: it asks for the same messages again, the signer
//!    returns the same signatures (same sign bytes) or refuses (regression/conflict) — never signs anew.
//! 4. A decided block is executed and committed (one synced RocksDB batch) before the next height starts;
//!    replay then takes only the next height's records (the engine replays its buffered ones at start), and
//!    the WAL is compacted to those once it is larger than [`WAL_COMPACT_BYTES`].

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use basalt_consensus::core::Validity;
use basalt_consensus::engine::{ConsensusMessage, Engine, EngineConfig};
use basalt_consensus::types::{
    encode, Address, Block, Commit, DuplicateVoteEvidence, Hash, Proposal, ProposalMessage, Tx,
    ValidatorSet, Vote,
};
use basalt_consensus::{Height, Round, Timeout};
use basalt_p2p::{
    GossipId, Misbehaviour, NetworkEvent, NetworkHandle, PeerId, SyncRequest, SyncResponse, Verdict,
};
use basalt_state::app::{results_hash, Application, BankApp};
use basalt_state::StateStore;
use tokio::sync::{mpsc, oneshot, watch};

use super::chain::{ChainState, EvidenceRefused};
use super::core::{DriverCore, Host};
use super::regossip::{RegossipConfig, RegossipPacer};
use super::shared::Shared;
use super::sync::{BlockRequest, BlockSync};
use super::walrec::WalRecord;
use super::NodeError;
use crate::config::ConsensusConfig;
use crate::durability::privval::{PrivValidator, PrivvalError, SignRefusal};
use crate::durability::wal::{Wal, WalError};
use crate::failpoint;
use crate::mempool::Mempool;
use crate::rpc::backend::{ConsensusEvent, IndexedTx, NewBlockEvent, NodeEvent};

/// The consensus WAL is rewritten with only the current height's records once it grows past this.
const WAL_COMPACT_BYTES: u64 = 32 * 1024 * 1024;

/// Room left in a block for the header, last commit and evidence.
const BLOCK_OVERHEAD_BYTES: usize = 256 * 1024;
/// Share of `timeout_propose` a proposed block's execution may take (estimated from recent blocks), so a
/// full mempool cannot produce blocks the network cannot execute within its timeouts.
const EXECUTION_BUDGET_SHARE: u32 = 2;

/// A timer the driver set.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum TimerKind {
    /// A round timeout of the engine.
    Round { height: Height, timeout: Timeout },
    /// `timeout_commit` after a decision: start this height (or wait for a transaction).
    StartHeight(Height),
    /// `create_empty_blocks_interval` after a height began waiting for a transaction: start it.
    EmptyBlockDue(Height),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Timer {
    at: Instant,
    seq: u64,
    kind: TimerKind,
}

/// Answers of requests the driver sent to peers.
#[derive(Debug)]
pub enum SyncAnswer {
    /// A peer's stored range.
    Status {
        /// The peer.
        peer: PeerId,
        /// Its oldest stored block.
        base: u64,
        /// Its latest block.
        latest: u64,
    },
    /// Blocks for a request.
    Blocks {
        /// The request.
        request: BlockRequest,
        /// The blocks or why the request failed.
        result: Result<Vec<(Block, Commit)>, super::sync::RequestFailed>,
    },
}

/// Everything the driver owns.
pub struct Driver {
    pub(super) config: ConsensusConfig,
    pub(super) blocksync: bool,
    pub(super) sync_config: super::sync::SyncConfig,
    pub(super) max_block_bytes: usize,
    pub(super) chain: ChainState,
    pub(super) app: BankApp,
    pub(super) store: Arc<StateStore>,
    pub(super) privval: Option<PrivValidator>,
    pub(super) wal: Wal,
    /// The WAL's records since the last rewrite, with their heights.
    pub(super) wal_records: Vec<(Height, Vec<u8>)>,
    pub(super) mempool: Arc<Mempool>,
    /// `mempool.recheck`: recheck the pool after every commit (else the proposer drops what its proposal
    /// passed over and a check refuses; see [`Running::build`]).
    pub(super) recheck: bool,
    pub(super) ingest: mpsc::Sender<super::txs::Batch>,
    pub(super) network: NetworkHandle,
    pub(super) shared: Arc<Shared>,
    pub(super) observer: super::observe::Observer,
    /// Prunes old blocks and state versions off the consensus thread (`None`: an archive node).
    pub(super) pruner: Option<super::pruner::Pruner>,
    /// The state snapshots this node takes, served to peers that state-sync (`None`: it takes none).
    pub(super) snapshots: Option<Arc<super::snapshots::SnapshotDir>>,
}

/// The driver's run state (built by [`Driver::run`]): the core, and the shell it asks for I/O.
struct Running {
    core: DriverCore<PeerId>,
    shell: Shell,
}

/// Everything of the running driver that is not the core: the node's resources, timers and block sync.
struct Shell {
    d: Driver,
    timers: BinaryHeap<Reverse<Timer>>,
    timer_seq: u64,
    /// When block sync started (meaningful while the core is syncing).
    sync_since: Instant,
    sync: BlockSync,
    sync_tx: mpsc::Sender<SyncAnswer>,
    /// When consensus last progressed, and when to re-send our messages while it does not.
    regossip: RegossipPacer,
    /// Estimated execution time per transaction (EWMA over committed blocks).
    exec_per_tx: Option<Duration>,
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// CometBFT's `RoundStepType` names, as the `step` label of `step_duration_seconds`.
fn metric_step_name(step: basalt_consensus::core::Step) -> &'static str {
    use basalt_consensus::core::Step;
    match step {
        Step::Unstarted => "NewHeight",
        Step::Propose => "Propose",
        Step::Prevote => "Prevote",
        Step::Precommit => "Precommit",
        Step::Commit => "Commit",
    }
}

impl Driver {
    fn own_address(&self) -> Option<Address> {
        self.privval.as_ref().map(PrivValidator::address)
    }

    fn new_engine(&self) -> Result<Engine, NodeError> {
        let height = self.chain.next_height();
        Ok(Engine::new(
            self.chain.chain_id().clone(),
            EngineConfig::default(),
            self.own_address(),
            height,
            self.chain.validators_at(height.0),
            Some(self.chain.validators_at(height.0 + 1)),
        )?)
    }

    /// Runs until `shutdown` turns true or the network goes away.
    pub async fn run(
        self,
        mut net_rx: mpsc::Receiver<NetworkEvent>,
        mut shutdown: watch::Receiver<bool>,
        has_peers: bool,
    ) -> Result<(), NodeError> {
        let engine = self.new_engine()?;
        let (sync_tx, mut sync_rx) = mpsc::channel(1024);
        let sync = BlockSync::new(self.sync_config);
        let start_syncing = self.blocksync && has_peers;
        let regossip = RegossipPacer::new(
            RegossipConfig::node(self.config.gossip_interval),
            Instant::now(),
        );
        let mut r = Running {
            core: DriverCore::new(engine),
            shell: Shell {
                d: self,
                timers: BinaryHeap::new(),
                timer_seq: 0,
                sync_since: Instant::now(),
                sync,
                sync_tx,
                regossip,
                exec_per_tx: None,
            },
        };
        if start_syncing {
            r.core.enter_sync();
            tracing::info!(
                height = r.shell.d.chain.height(),
                "block sync: asking peers for their heights"
            );
        } else {
            r.enter_consensus()?;
        }
        r.publish_snapshot();
        let gossip_every = r
            .shell
            .d
            .config
            .gossip_interval
            .max(Duration::from_millis(10));
        let mut gossip_tick = tokio::time::interval(gossip_every);
        gossip_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut status_tick = tokio::time::interval(Duration::from_millis(500));
        status_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let txs_available = r.shell.d.mempool.txs_available_notify();
        loop {
            let next_timer = r.shell.timers.peek().map(|t| t.0.at);
            let sleep = async move {
                match next_timer {
                    Some(at) => tokio::time::sleep_until(at.into()).await,
                    None => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                changed = shutdown.changed() => {
                    if changed.is_err() || *shutdown.borrow() {
                        break;
                    }
                }
                event = net_rx.recv() => match event {
                    Some(event) => r.on_network(event)?,
                    None => break,
                },
                Some(answer) = sync_rx.recv() => r.on_sync_answer(answer)?,
                () = sleep => r.fire_timers()?,
                () = txs_available.notified(), if r.core.parked().is_some() => r.on_txs_available()?,
                _ = gossip_tick.tick() => r.on_gossip_tick(),
                _ = status_tick.tick() => r.on_status_tick().await?,
            }
        }
        r.shell.d.wal.sync()?;
        r.shell.d.store.storage().flush()?;
        tracing::info!(
            height = r.shell.d.chain.height(),
            "consensus driver stopped cleanly"
        );
        Ok(())
    }
}

impl Running {
    // ---- modes -------------------------------------------------------------------------------------

    /// Joins consensus at the next height, replaying the WAL if it belongs to that height.
    fn enter_consensus(&mut self) -> Result<(), NodeError> {
        let engine = self.shell.d.new_engine()?;
        let height = engine.height();
        let d = &mut self.shell.d;
        let records: Vec<Vec<u8>> = d
            .wal_records
            .iter()
            .filter(|(h, _)| *h == height)
            .map(|(_, b)| b.clone())
            .collect();
        if records.len() != d.wal_records.len() {
            // Inputs of heights we no longer work on (block sync moved past them).
            d.wal_records.retain(|(h, _)| *h == height);
            d.wal.rewrite(&records)?;
        }
        tracing::info!(
            height = height.0,
            wal_records = records.len(),
            "joining consensus"
        );
        let records = records
            .iter()
            .map(|bytes| WalRecord::from_bytes(bytes))
            .collect::<Result<Vec<_>, _>>()
            .map_err(NodeError::WalRecord)?;
        self.core.start(&mut self.shell, engine, records)?;
        self.shell.progressed();
        self.publish_snapshot();
        Ok(())
    }

    fn enter_sync(&mut self) {
        tracing::info!(
            height = self.shell.d.chain.height(),
            peers_at = self.shell.sync.max_peer_height(),
            "fell behind: switching to block sync"
        );
        self.core.enter_sync();
        self.shell.sync_since = Instant::now();
        self.shell.timers.clear();
        self.shell.d.observer.syncing(true);
        self.publish_snapshot();
    }

    fn publish_snapshot(&mut self) {
        self.shell
            .publish_snapshot(self.core.engine(), self.core.syncing());
    }

    fn fire_timers(&mut self) -> Result<(), NodeError> {
        let now = Instant::now();
        while self.shell.timers.peek().is_some_and(|t| t.0.at <= now) {
            let Some(Reverse(timer)) = self.shell.timers.pop() else {
                break;
            };
            match timer.kind {
                TimerKind::Round { height, timeout } => {
                    self.core.timeout(&mut self.shell, height, timeout)?
                }
                TimerKind::StartHeight(height) => {
                    self.core.commit_timeout_elapsed(&mut self.shell, height)?
                }
                TimerKind::EmptyBlockDue(height) => {
                    self.core.start_height(&mut self.shell, height)?
                }
            }
        }
        Ok(())
    }

    /// A height waiting for transactions starts once the mempool holds one (a wake-up is a hint).
    fn on_txs_available(&mut self) -> Result<(), NodeError> {
        if self.core.parked().is_some() && self.shell.d.mempool.size() > 0 {
            self.core.txs_available(&mut self.shell)?;
        }
        Ok(())
    }

    // ---- network -----------------------------------------------------------------------------------

    fn on_network(&mut self, event: NetworkEvent) -> Result<(), NodeError> {
        match event {
            NetworkEvent::Consensus { id, from, message } => {
                self.on_consensus(id, from, message)?
            }
            NetworkEvent::Txs { id, from, txs } => self.shell.on_txs(id, from, txs),
            NetworkEvent::SyncRequest {
                from: _,
                request,
                reply,
            } => self.on_sync_request(request, reply),
            NetworkEvent::PeerConnected { peer, .. } => {
                tracing::debug!(%peer, "peer connected");
                self.shell.d.observer.peer_change(1);
            }
            NetworkEvent::PeerDisconnected { peer } => {
                tracing::debug!(%peer, "peer disconnected");
                self.shell.sync.remove_peer(&peer);
                self.core.forget_peer(&peer);
                self.shell.d.observer.peer_change(-1);
            }
        }
        Ok(())
    }

    fn on_consensus(
        &mut self,
        id: GossipId,
        from: PeerId,
        message: ConsensusMessage,
    ) -> Result<(), NodeError> {
        let observer = &self.shell.d.observer;
        observer.received(&message);
        // Signatures the engine will check (votes and proposals: one; decisions: the commit's).
        match &message {
            ConsensusMessage::Vote(_) => observer.verified("vote", 1),
            ConsensusMessage::Proposal(_) => observer.verified("proposal", 1),
            ConsensusMessage::Decision { commit, .. } => {
                observer.verified("commit", commit.signatures.len() as u64)
            }
            _ => {}
        }
        let judgement = self.core.on_message(&mut self.shell, &from, message)?;
        let network = &self.shell.d.network;
        network.report_validation(id, judgement.verdict);
        if let Some(offence) = judgement.offence {
            tracing::warn!(%from, ?offence, "peer sent an invalid consensus message");
            network.report_peer(from, offence);
        }
        Ok(())
    }

    fn on_sync_request(&mut self, request: SyncRequest, reply: oneshot::Sender<SyncResponse>) {
        match request {
            SyncRequest::Proposal { height, round } => {
                let engine = self.core.engine();
                let found = if height == engine.height().0 {
                    engine.relay_messages().into_iter().find_map(|m| match m {
                        ConsensusMessage::Proposal(p) if p.signed.proposal.round().0 == round => {
                            Some(p)
                        }
                        _ => None,
                    })
                } else {
                    None
                };
                let _ = reply.send(SyncResponse::Proposal(found));
            }
            request => self.shell.on_store_request(request, reply),
        }
    }

    // ---- periodic work -----------------------------------------------------------------------------

    /// Re-gossip while the round makes no progress: our own messages of this height, the proposals and
    /// proof-of-lock prevotes peers may have missed, and where we are.
    fn on_gossip_tick(&mut self) {
        let engine = self.core.engine();
        let shell = &mut self.shell;
        let position = (engine.height(), engine.round());
        let Some(proposals_due) =
            shell
                .regossip
                .tick(position, self.core.syncing(), Instant::now())
        else {
            return;
        };
        // Stuck since the last progress: re-send (the pacer waits twice as long before the next time).
        for message in &self.core.regossip_messages(proposals_due) {
            shell.d.network.publish_consensus(message);
            shell.d.observer.sent(message);
        }
        self.publish_status();
    }

    fn publish_status(&self) {
        let engine = self.core.engine();
        // A height waiting for a transaction is announced as where we are: our latest block is the one
        // before it, so a peer that missed that block's decision learns it can fetch it. Nothing else
        // would tell it — waiting, we send no message of either height — and it would wait for a
        // decision while we wait for a transaction (seen in CI: a node that joined late stayed at
        // height 1 while the others waited at 2).
        let (height, round) = match self.core.parked() {
            Some(parked) => (parked, Round(0)),
            None => (engine.height(), engine.round()),
        };
        self.shell
            .d
            .network
            .publish_consensus(&ConsensusMessage::Status { height, round });
    }

    async fn on_status_tick(&mut self) -> Result<(), NodeError> {
        self.publish_status();
        let shell = &mut self.shell;
        shell.d.observer.mempool(shell.d.mempool.stats());
        let peers = shell.d.network.peers().await;
        if self.core.syncing() || peers.len() != shell.sync.peer_count() {
            for peer in peers {
                let network = shell.d.network.clone();
                let tx = shell.sync_tx.clone();
                tokio::spawn(async move {
                    if let Ok(SyncResponse::Status { base, latest }) =
                        network.request(peer.id, SyncRequest::Status).await
                    {
                        let _ = tx
                            .send(SyncAnswer::Status {
                                peer: peer.id,
                                base,
                                latest,
                            })
                            .await;
                    }
                });
            }
        }
        self.drive_sync()
    }

    fn on_sync_answer(&mut self, answer: SyncAnswer) -> Result<(), NodeError> {
        let syncing = self.core.syncing();
        let shell = &mut self.shell;
        match answer {
            SyncAnswer::Status { peer, base, latest } => {
                shell
                    .sync
                    .peer_status(peer, Some(base), latest, Instant::now());
                shell.probe_ahead(syncing);
            }
            SyncAnswer::Blocks { request, result } => {
                if let Some(offence) = shell.sync.on_response(request, result, Instant::now()) {
                    tracing::warn!(peer = %request.peer, ?offence, "block sync: peer misbehaved");
                    shell.d.network.report_peer(request.peer, offence);
                    shell.sync.remove_peer(&request.peer);
                }
                // Behind: catch up by block sync (each block's commit is verified as it is applied).
                if !syncing && shell.sync.should_enter_sync(shell.d.chain.height()) {
                    self.enter_sync();
                }
            }
        }
        self.drive_sync()
    }

    /// Applies fetched blocks in order, sends new requests, and joins consensus once caught up.
    fn drive_sync(&mut self) -> Result<(), NodeError> {
        if !self.core.syncing() {
            return Ok(());
        }
        loop {
            let next = self.shell.d.chain.height() + 1;
            let Some((block, commit, peer)) = self.shell.sync.take(next) else {
                break;
            };
            if self.core.engine().height().0 != next {
                self.core.replace_engine(self.shell.d.new_engine()?);
            }
            self.shell
                .d
                .observer
                .verified("commit", commit.signatures.len() as u64);
            // Only `Decided` is acted on while syncing.
            if let Err(e) = self.core.apply_synced(&mut self.shell, block, commit)? {
                tracing::warn!(%peer, error = %e, "block sync: invalid block or commit");
                self.shell
                    .d
                    .network
                    .report_peer(peer, Misbehaviour::InvalidBlock);
                self.shell.sync.remove_peer(&peer);
                break;
            }
            if self.shell.d.chain.height() < next {
                break;
            }
        }
        let shell = &mut self.shell;
        let ours = shell.d.chain.height();
        if shell.sync.caught_up(ours, shell.sync_since.elapsed()) {
            shell.d.observer.syncing(false);
            tracing::info!(height = ours, "caught up");
            return self.enter_consensus();
        }
        for request in shell.sync.next_requests(ours, Instant::now()) {
            shell.send_block_request(request);
        }
        Ok(())
    }
}

impl Shell {
    /// Progress was made (a decision, consensus joined): re-gossip starts again from the base cadence.
    fn progressed(&mut self) {
        self.regossip.progressed(Instant::now());
    }

    fn schedule(&mut self, after: Duration, kind: TimerKind) {
        self.timer_seq += 1;
        self.timers.push(Reverse(Timer {
            at: Instant::now() + after,
            seq: self.timer_seq,
            kind,
        }));
    }

    fn on_txs(&mut self, id: GossipId, from: PeerId, txs: Vec<Tx>) {
        let batch = super::txs::Batch { id, from, txs };
        if let Err(e) = self.d.ingest.try_send(batch) {
            // Admission is saturated: do not forward what we could not check.
            let batch = match e {
                mpsc::error::TrySendError::Full(b) | mpsc::error::TrySendError::Closed(b) => b,
            };
            self.d.network.report_validation(batch.id, Verdict::Ignore);
        }
    }

    /// A peer's request for our stored range or blocks (served off the consensus thread).
    fn on_store_request(&mut self, request: SyncRequest, reply: oneshot::Sender<SyncResponse>) {
        match request {
            SyncRequest::Status => {
                let base = self
                    .d
                    .store
                    .base_height()
                    .ok()
                    .flatten()
                    .unwrap_or(self.d.chain.initial_height());
                let _ = reply.send(SyncResponse::Status {
                    base,
                    latest: self.d.chain.height(),
                });
            }
            SyncRequest::Blocks { from, count } => {
                let store = self.d.store.clone();
                let latest = self.d.chain.height();
                tokio::task::spawn_blocking(move || {
                    let answer = super::blocks::read_range(&store, from, count, latest);
                    let _ = reply.send(answer);
                });
            }
            SyncRequest::Proposal { .. } => {
                let _ = reply.send(SyncResponse::Proposal(None));
            }
            SyncRequest::Snapshots => match self.d.snapshots.clone() {
                None => {
                    let _ = reply.send(SyncResponse::Snapshots(Vec::new()));
                }
                Some(dir) => {
                    tokio::task::spawn_blocking(move || {
                        let _ = reply.send(SyncResponse::Snapshots(dir.offers()));
                    });
                }
            },
            SyncRequest::SnapshotChunk { height, index } => match self.d.snapshots.clone() {
                None => {
                    let _ = reply.send(SyncResponse::SnapshotChunk(None));
                }
                Some(dir) => {
                    tokio::task::spawn_blocking(move || {
                        let _ =
                            reply.send(SyncResponse::SnapshotChunk(dir.chunk(height, index).ok()));
                    });
                }
            },
        }
    }

    /// In consensus: asks a peer that claims later blocks for them once the round is stalled
    /// ([`BlockSync::probe_if_stalled`]; the answer is handled in [`Running::on_sync_answer`]).
    fn probe_ahead(&mut self, syncing: bool) {
        if syncing {
            return;
        }
        let ours = self.d.chain.height();
        let stalled_for = self.regossip.last_height_progress().elapsed();
        if let Some(request) = self
            .sync
            .probe_if_stalled(ours, stalled_for, Instant::now())
        {
            self.send_block_request(request);
        }
    }

    fn send_block_request(&self, request: BlockRequest) {
        let network = self.d.network.clone();
        let tx = self.sync_tx.clone();
        tokio::spawn(async move {
            let result = match network
                .request(
                    request.peer,
                    SyncRequest::Blocks {
                        from: request.from,
                        count: request.count,
                    },
                )
                .await
            {
                Ok(SyncResponse::Blocks(blocks)) => Ok(blocks),
                Ok(_) => Err(super::sync::RequestFailed::UnexpectedAnswer),
                Err(e) => Err(super::sync::RequestFailed::Transport(e.to_string())),
            };
            let _ = tx.send(SyncAnswer::Blocks { request, result }).await;
        });
    }

    /// The signer refused. A regression while replaying is expected (the signed message itself is in the
    /// WAL and replays next); anything else is logged loudly — it is the double-sign protection at work.
    fn refused(error: &PrivvalError, replaying: bool) {
        if replaying && matches!(error, PrivvalError::Refused(SignRefusal::Regression { .. })) {
            tracing::debug!(%error, "signer: regression during WAL replay");
        } else {
            tracing::error!(%error, "signer refused to sign");
        }
    }

    /// Our signed message is durable in the WAL: kept for compaction, counted, handed back to be sent.
    fn logged(&mut self, logged: LoggedOwn) -> ConsensusMessage {
        let LoggedOwn {
            message,
            bytes,
            fsync,
        } = logged;
        self.d.observer.wal_fsync(fsync);
        self.d.wal_records.push((message.height(), bytes));
        message
    }

    /// Folds a committed block's execution time into the per-transaction estimate.
    fn learn_execution_cost(&mut self, took: Duration, txs: usize) {
        if txs < 16 {
            return; // fixed costs dominate small blocks
        }
        let per_tx = took / u32::try_from(txs).unwrap_or(u32::MAX);
        self.exec_per_tx = Some(match self.exec_per_tx {
            None => per_tx,
            Some(old) => (old * 3 + per_tx) / 4,
        });
    }

    /// Most transactions for our next proposal: the configured cap, lowered so that executing the block is
    /// expected to take at most `timeout_propose / EXECUTION_BUDGET_SHARE`.
    fn max_proposal_txs(&self) -> usize {
        let cap = self.d.config.max_block_txs;
        match self.exec_per_tx {
            Some(per_tx) if !per_tx.is_zero() => {
                let budget = self.d.config.timeout_propose / EXECUTION_BUDGET_SHARE;
                let fit = budget.as_nanos() / per_tx.as_nanos();
                cap.min(usize::try_from(fit).unwrap_or(usize::MAX)).max(16)
            }
            _ => cap,
        }
    }

    /// The chain's part of what RPC reads (latest block, app hashes), published as soon as a block is
    /// committed: before its events, so a client woken by a `Tx` event (`broadcast_tx_commit`) never
    /// reads a `/status` that has not reached the block yet.
    fn publish_chain_snapshot(&self) {
        let chain = &self.d.chain;
        let last = chain.last();
        self.d.shared.update(|s| {
            s.height = chain.height();
            s.last_block_hash = last.map(|(b, _)| b.id().hash);
            s.last_block_time_ms = last.map_or(0, |(b, _)| b.header().time_ms);
            s.app_hash = chain.app_hash();
            s.last_header_app_hash = last.map_or(Hash::ZERO, |(b, _)| b.header().app_hash);
        });
    }

    fn publish_snapshot(&mut self, engine: &Engine, syncing: bool) {
        self.d
            .observer
            .step(metric_step_name(engine.driver().step()));
        self.publish_chain_snapshot();
        let chain = &self.d.chain;
        let driver = engine.driver();
        let set = chain.validators_at(engine.height().0);
        let proposer_index = set.proposer_for_round(engine.round());
        let proposer = set
            .get(proposer_index)
            .map(|v| (v.address, proposer_index.0));
        let state = driver.state();
        let locked = state.locked.as_ref().map(|v| v.value.hash);
        let valid = state.valid.as_ref().map(|v| v.value.hash);
        let catching_up = syncing;
        let max_peer_height = self.sync.max_peer_height();
        self.d.shared.update(|s| {
            if s.consensus_height != engine.height().0 || s.round != engine.round().0 {
                s.round_start_ms = now_ms();
            }
            s.consensus_height = engine.height().0;
            s.round = engine.round().0;
            s.step = super::core::events::round_step(engine);
            s.proposer = proposer;
            s.locked = locked;
            s.valid = valid;
            s.catching_up = catching_up;
            s.max_peer_height = max_peer_height;
        });
        self.d
            .observer
            .consensus_position(engine.height().0, engine.round().0);
    }
}

impl Host for Shell {
    type Peer = PeerId;
    type Error = NodeError;

    fn validity(&mut self, block: &Block) -> Validity {
        self.d.chain.validity(block, &self.d.app, now_ms())
    }

    fn log_input(&mut self, height: Height, record: Vec<u8>) -> Result<(), NodeError> {
        self.d.wal.append(&record)?;
        self.d.wal_records.push((height, record));
        Ok(())
    }

    fn sign_vote(
        &mut self,
        vote: Vote,
        replaying: bool,
    ) -> Result<Option<ConsensusMessage>, NodeError> {
        let Some(pv) = self.d.privval.as_mut() else {
            return Ok(None);
        };
        failpoint::hit("sign.before_privval");
        let wal = &mut self.d.wal;
        let signed = pv.sign_vote_alongside(self.d.chain.chain_id(), vote, |signed| {
            log_own(wal, ConsensusMessage::Vote(signed.clone()))
        });
        match signed {
            Ok((signed, logged)) => {
                self.d.observer.signed(signed.vote.height.0);
                if let Some(took) = pv.last_fsync() {
                    self.d.observer.privval_fsync(took);
                }
                Ok(Some(self.logged(logged?)))
            }
            Err(e) => {
                Shell::refused(&e, replaying);
                Ok(None)
            }
        }
    }

    fn sign_proposal(
        &mut self,
        proposal: Proposal,
        block: Block,
        replaying: bool,
    ) -> Result<Option<ConsensusMessage>, NodeError> {
        let Some(pv) = self.d.privval.as_mut() else {
            return Ok(None);
        };
        failpoint::hit("sign.before_privval");
        let wal = &mut self.d.wal;
        let signed = pv.sign_proposal_alongside(self.d.chain.chain_id(), proposal, |signed| {
            log_own(
                wal,
                ConsensusMessage::Proposal(ProposalMessage {
                    signed: signed.clone(),
                    block,
                }),
            )
        });
        match signed {
            Ok((_, logged)) => Ok(Some(self.logged(logged?))),
            Err(e) => {
                Shell::refused(&e, replaying);
                Ok(None)
            }
        }
    }

    fn publish_own(&mut self, message: &ConsensusMessage) -> Result<(), NodeError> {
        self.d.network.publish_consensus(message);
        self.d.observer.sent(message);
        failpoint::hit("sign.after_send");
        Ok(())
    }

    fn publish_evidence(&mut self, message: &ConsensusMessage) -> Result<(), NodeError> {
        self.d.network.publish_consensus(message);
        self.d.observer.sent(message);
        Ok(())
    }

    fn schedule_timeout(&mut self, height: Height, timeout: Timeout) {
        let after = self.d.config.timeout(timeout.kind, timeout.round.0);
        self.schedule(after, TimerKind::Round { height, timeout });
    }

    fn schedule_start(&mut self, height: Height) {
        self.schedule(self.d.config.timeout_commit, TimerKind::StartHeight(height));
    }

    fn wait_for_txs(&mut self, _height: Height) -> bool {
        // As CometBFT's `WaitForTxs`: no empty blocks, or empty ones only every interval.
        let c = &self.d.config;
        (!c.create_empty_blocks || !c.create_empty_blocks_interval.is_zero())
            && !self.d.chain.needs_proof_block()
            && self.d.mempool.size() == 0
    }

    fn schedule_empty_block(&mut self, height: Height) {
        let interval = self.d.config.create_empty_blocks_interval;
        if !interval.is_zero() {
            self.schedule(interval, TimerKind::EmptyBlockDue(height));
        }
    }

    fn build_block(
        &mut self,
        _height: Height,
        _round: Round,
        evidence: Vec<DuplicateVoteEvidence>,
        complete_last_commit: &dyn Fn(&Commit) -> Commit,
    ) -> Result<Option<Block>, NodeError> {
        let Some(proposer) = self.d.own_address() else {
            return Ok(None);
        };
        let max_bytes = self.d.max_block_bytes.saturating_sub(BLOCK_OVERHEAD_BYTES);
        let reaped = self.d.mempool.reap(max_bytes, self.max_proposal_txs());
        let txs = if self.d.recheck {
            self.d.app.prepare_proposal(reaped, max_bytes)
        } else {
            // Without the recheck after each commit, a transaction a commit invalidated (a spent nonce,
            // drained funds) would stay in the pool for good, passed over by every proposal. Drop what
            // this proposal passed over and a check against the latest state now refuses; what was
            // only left out for lack of room passes the check and stays.
            let chosen = self.d.app.prepare_proposal(reaped.clone(), max_bytes);
            let kept: std::collections::HashSet<_> = chosen.iter().map(Tx::hash).collect();
            let stale: Vec<Tx> = reaped
                .into_iter()
                .filter(|tx| !kept.contains(&tx.hash()) && !self.d.app.check_tx(tx).is_ok())
                .collect();
            if !stale.is_empty() {
                let dropped = self.d.mempool.remove_invalid(&stale);
                tracing::debug!(dropped, "mempool: dropped transactions no longer valid");
            }
            chosen
        };
        let block =
            self.d
                .chain
                .build_block(proposer, now_ms(), txs, evidence, complete_last_commit)?;
        Ok(Some(block))
    }

    /// Executes and commits a decided block.
    fn commit(
        &mut self,
        round: Round,
        block: Block,
        commit: Commit,
        syncing: bool,
    ) -> Result<(), NodeError> {
        let started = Instant::now();
        let height = block.height();
        // A proposal was checked against our chain before we voted for it; a decision proven by a commit
        // alone (block sync, a peer's decision) was not: the same check, and a mismatch stops the node.
        self.d.chain.check_continues(&block)?;
        failpoint::hit("commit.before_store");
        let result = self.d.app.finalize_block(&block)?;
        let app_hash = self.d.app.commit(encode(&commit))?;
        failpoint::hit("commit.after_store");
        let processing = started.elapsed();
        self.learn_execution_cost(processing, block.txs().len());
        let results_hash = results_hash(&result.tx_results);
        let block_hash = block.id().hash;
        let txs = block.txs().len();
        self.d
            .chain
            .advance(
                block.clone(),
                commit.clone(),
                app_hash,
                results_hash,
                &result.validator_updates,
            )
            .map_err(|e| NodeError::Internal(format!("validator updates: {e}")))?;
        if let Some(pruner) = &self.d.pruner {
            pruner.committed(height.0);
        }
        let app = &self.d.app;
        if self.d.recheck {
            self.d.mempool.update(block.txs(), |tx, previous| {
                app.recheck_tx(tx, previous).is_ok()
            });
        } else {
            self.d.mempool.remove_committed(block.txs());
        }
        let next = self.d.chain.next_height();
        self.d.wal_records.retain(|(h, _)| *h == next);
        // Records of finished heights are dead weight (replay skips them) but harmless, so the log is
        // compacted only once it is large rather than at every height: a rewrite costs two fsyncs, which
        // were a fifth of the empty-block interval.
        if self.d.wal.len_bytes() > WAL_COMPACT_BYTES {
            let keep: Vec<Vec<u8>> = self.d.wal_records.iter().map(|(_, b)| b.clone()).collect();
            self.d.wal.rewrite(&keep)?;
        }
        self.progressed();
        tracing::info!(
            height = height.0,
            hash = %block_hash.to_hex_upper(),
            txs,
            round = round.0,
            app_hash = %app_hash.to_hex_upper(),
            took_ms = processing.as_millis() as u64,
            "committed block"
        );
        let set = self.d.chain.validators_at(height.0);
        self.d
            .observer
            .committed(&block, &set, round, processing, syncing);
        self.d.observer.mempool(self.d.mempool.stats());
        let tx_events: Vec<NodeEvent> = block
            .txs()
            .iter()
            .zip(result.tx_results.iter())
            .enumerate()
            .map(|(index, (tx, tx_result))| {
                NodeEvent::Tx(Arc::new(IndexedTx {
                    height: height.0,
                    index: u32::try_from(index).unwrap_or(u32::MAX),
                    tx: tx.clone(),
                    result: tx_result.clone(),
                }))
            })
            .collect();
        let time_ms = block.header().time_ms;
        let evidence_events: Vec<NodeEvent> = block
            .evidence()
            .iter()
            .map(|evidence| NodeEvent::Evidence {
                evidence: Arc::new(evidence.clone()),
                height: height.0,
                time_ms,
            })
            .collect();
        self.publish_chain_snapshot();
        self.d
            .shared
            .publish(NodeEvent::NewBlock(Arc::new(NewBlockEvent {
                block,
                tx_results: result.tx_results,
                events: result.events,
                app_hash,
            })));
        // CometBFT's order: the block, its transactions, then its evidence.
        for event in tx_events.into_iter().chain(evidence_events) {
            self.d.shared.publish(event);
        }
        Ok(())
    }

    fn next_height(&self) -> Height {
        self.d.chain.next_height()
    }

    fn validators_at(&mut self, height: Height) -> ValidatorSet {
        self.d.chain.validators_at(height.0)
    }

    fn check_evidence(
        &mut self,
        evidence: &DuplicateVoteEvidence,
        height: u64,
    ) -> Result<(), EvidenceRefused> {
        self.d.chain.check_evidence(evidence, height)
    }

    fn peer_claims(&mut self, peer: &PeerId, latest: u64, syncing: bool) {
        self.sync.peer_status(*peer, None, latest, Instant::now());
        self.probe_ahead(syncing);
    }

    fn detected(&mut self, evidence: &DuplicateVoteEvidence) {
        tracing::warn!(
            height = evidence.height().0,
            validator = evidence.validator_index().0,
            "duplicate vote evidence"
        );
    }

    fn settled(&mut self, engine: &Engine, syncing: bool) {
        self.publish_snapshot(engine, syncing);
    }

    fn wants_consensus_events(&self) -> bool {
        self.d.shared.has_consensus_subscribers()
    }

    fn consensus_event(&mut self, event: ConsensusEvent) {
        self.d.shared.publish_consensus(event);
    }
}

/// One of our own signed messages, durable in the WAL and not yet sent.
struct LoggedOwn {
    message: ConsensusMessage,
    /// Its WAL record, kept for a later compaction of the log.
    bytes: Vec<u8>,
    /// How long the WAL sync took (for the metrics).
    fsync: Duration,
}

/// Appends our signed `message` to the WAL and syncs it, which also makes durable every input appended
/// since the last sync: those led to the signature, and must survive a crash before the message may leave
/// the process (a restart that forgot a polka would unlock and could prevote against its own precommit).
/// Runs while the signer writes its state (see [`PrivValidator::sign_vote_alongside`]).
fn log_own(wal: &mut Wal, message: ConsensusMessage) -> Result<LoggedOwn, WalError> {
    let bytes = WalRecord::Message(message.clone()).to_bytes();
    wal.append(&bytes)?;
    let fsync = wal.sync()?;
    failpoint::hit("sign.after_wal");
    Ok(LoggedOwn {
        message,
        bytes,
        fsync,
    })
}
