//! The consensus driver: the pure engine connected to the WAL, the signer, the network, timers, the
//! application and block sync. One task owns all of it, so there is no locking and every input is
//! processed in one order — the order the WAL records.
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

use basalt_consensus::engine::{
    ConsensusMessage, Engine, EngineConfig, EngineError, EngineInput, EngineOutput, OutputQueue,
    PeerPositions,
};
use basalt_consensus::types::{encode, Address, Block, Commit, Hash, ProposalMessage, Tx};
use basalt_consensus::{Height, Round, Timeout};
use basalt_p2p::{
    GossipId, Misbehaviour, NetworkEvent, NetworkHandle, PeerId, SyncRequest, SyncResponse, Verdict,
};
use basalt_state::app::{results_hash, Application, BankApp};
use basalt_state::StateStore;
use tokio::sync::{mpsc, oneshot, watch};

use super::chain::{ChainState, EvidenceRefused};
use super::evidence::EvidencePool;
use super::shared::Shared;
use super::sync::{BlockRequest, BlockSync};
use super::walrec::WalRecord;
use super::NodeError;
use crate::config::ConsensusConfig;
use crate::durability::privval::{PrivValidator, PrivvalError, SignRefusal};
use crate::durability::wal::{Wal, WalError};
use crate::failpoint;
use crate::mempool::Mempool;
use crate::rpc::backend::{IndexedTx, NewBlockEvent, NodeEvent};

/// The consensus WAL is rewritten with only the current height's records once it grows past this.
const WAL_COMPACT_BYTES: u64 = 32 * 1024 * 1024;

/// How long block sync waits at start-up to hear from a peer before joining consensus alone.
const SYNC_STARTUP_WAIT: Duration = Duration::from_secs(3);
/// Room left in a block for the header, last commit and evidence.
const BLOCK_OVERHEAD_BYTES: usize = 256 * 1024;
/// Longest pause between re-gossip rounds while stuck (the pause doubles from `gossip_interval`).
const MAX_REGOSSIP_INTERVAL: Duration = Duration::from_secs(2);
/// Proposals (whole blocks, up to megabytes) are re-gossiped at most this often: re-sending them at the vote
/// cadence saturates the gossip queues of a loaded network and turns a slow round into a stall.
const PROPOSAL_REGOSSIP_INTERVAL: Duration = Duration::from_secs(2);
/// Share of `timeout_propose` a proposed block's execution may take (estimated from recent blocks), so a
/// full mempool cannot produce blocks the network cannot execute within its timeouts.
const EXECUTION_BUDGET_SHARE: u32 = 2;
/// How long consensus makes no progress before the node asks a peer that claims later blocks for them.
const PROBE_AFTER_STALL: Duration = Duration::from_secs(1);
/// The most peers whose consensus position is tracked (connections are capped lower by the transport).
const MAX_TRACKED_PEERS: usize = 1024;

/// A timer the driver set.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum TimerKind {
    /// A round timeout of the engine.
    Round { height: Height, timeout: Timeout },
    /// `timeout_commit` after a decision: start this height.
    StartHeight(Height),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Timer {
    at: Instant,
    seq: u64,
    kind: TimerKind,
}

/// Whether the node follows consensus or catches up by block sync.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Syncing { since: Instant },
    Consensus,
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
}

/// The driver's mutable run state (built by [`Driver::run`]).
struct Running {
    d: Driver,
    engine: Engine,
    evidence: EvidencePool,
    timers: BinaryHeap<Reverse<Timer>>,
    timer_seq: u64,
    own_messages: Vec<ConsensusMessage>,
    /// Engine outputs not yet acted on, in the engine's order.
    outputs: OutputQueue,
    replaying: bool,
    deferred_builds: Vec<(Height, Round)>,
    mode: Mode,
    sync: BlockSync,
    sync_tx: mpsc::Sender<SyncAnswer>,
    last_progress: Instant,
    /// When the next re-gossip may happen and the pause after it (doubles while stuck).
    next_regossip: Instant,
    regossip_interval: Duration,
    last_proposal_regossip: Option<Instant>,
    /// (height, round) last seen, to count a new round as progress.
    position: (Height, Round),
    /// Where peers say they are: re-gossip relays the votes of earlier rounds they are still in.
    peer_positions: PeerPositions<PeerId>,
    /// Estimated execution time per transaction (EWMA over committed blocks).
    exec_per_tx: Option<Duration>,
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn step_name(step: basalt_consensus::core::Step) -> &'static str {
    use basalt_consensus::core::Step;
    match step {
        Step::Unstarted => "unstarted",
        Step::Propose => "propose",
        Step::Prevote => "prevote",
        Step::Precommit => "precommit",
        Step::Commit => "commit",
    }
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
        let mut r = Running {
            d: self,
            engine,
            evidence: EvidencePool::default(),
            timers: BinaryHeap::new(),
            timer_seq: 0,
            own_messages: Vec::new(),
            outputs: OutputQueue::new(),
            replaying: false,
            deferred_builds: Vec::new(),
            mode: Mode::Consensus,
            sync,
            sync_tx,
            last_progress: Instant::now(),
            next_regossip: Instant::now(),
            regossip_interval: Duration::ZERO,
            last_proposal_regossip: None,
            position: (Height(0), Round(0)),
            peer_positions: PeerPositions::new(MAX_TRACKED_PEERS),
            exec_per_tx: None,
        };
        if start_syncing {
            r.mode = Mode::Syncing {
                since: Instant::now(),
            };
            tracing::info!(
                height = r.d.chain.height(),
                "block sync: asking peers for their heights"
            );
        } else {
            r.enter_consensus()?;
        }
        r.publish_snapshot();
        let gossip_every = r.d.config.gossip_interval.max(Duration::from_millis(10));
        let mut gossip_tick = tokio::time::interval(gossip_every);
        gossip_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut status_tick = tokio::time::interval(Duration::from_millis(500));
        status_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let next_timer = r.timers.peek().map(|t| t.0.at);
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
                _ = gossip_tick.tick() => r.on_gossip_tick(),
                _ = status_tick.tick() => r.on_status_tick().await?,
            }
        }
        r.d.wal.sync()?;
        r.d.store.storage().flush()?;
        tracing::info!(
            height = r.d.chain.height(),
            "consensus driver stopped cleanly"
        );
        Ok(())
    }
}

impl Running {
    // ---- modes -------------------------------------------------------------------------------------

    /// Joins consensus at the next height, replaying the WAL if it belongs to that height.
    fn enter_consensus(&mut self) -> Result<(), NodeError> {
        self.mode = Mode::Consensus;
        self.engine = self.d.new_engine()?;
        let height = self.engine.height();
        let records: Vec<Vec<u8>> = self
            .d
            .wal_records
            .iter()
            .filter(|(h, _)| *h == height)
            .map(|(_, b)| b.clone())
            .collect();
        if records.len() != self.d.wal_records.len() {
            // Inputs of heights we no longer work on (block sync moved past them).
            self.d.wal_records.retain(|(h, _)| *h == height);
            self.d.wal.rewrite(&records)?;
        }
        tracing::info!(
            height = height.0,
            wal_records = records.len(),
            "joining consensus"
        );
        self.own_messages.clear();
        self.replaying = true;
        let outputs = self.engine.start()?;
        self.process(outputs)?;
        let own_index = self.engine.driver().own_index();
        for bytes in records {
            match WalRecord::from_bytes(&bytes) {
                Ok(record) => {
                    let input = record.into_input();
                    // Our own votes from before a restart are re-gossiped like new ones: the signer
                    // refuses to sign an older step anew, so a vote lost on its way (the crash came before
                    // it was re-sent) would otherwise reach no one and could stall the round for good.
                    if let EngineInput::Message(ConsensusMessage::Vote(vote)) = &input {
                        let message = ConsensusMessage::Vote(vote.clone());
                        if Some(vote.vote.validator_index) == own_index
                            && !self.own_messages.contains(&message)
                        {
                            self.own_messages.push(message);
                        }
                    }
                    match self.engine_handle(input) {
                        Ok(outputs) => self.process(outputs)?,
                        Err(e) => tracing::debug!(error = %e, "WAL replay: input refused again"),
                    }
                }
                Err(e) => return Err(NodeError::WalRecord(e)),
            }
        }
        self.replaying = false;
        let builds = std::mem::take(&mut self.deferred_builds);
        for (height, round) in builds {
            let answered = self.d.wal_records.iter().any(|(_, b)| {
                matches!(WalRecord::from_bytes(b), Ok(WalRecord::ProposeBlock { round: r, .. }) if r == round)
            });
            if !answered && height == self.engine.height() {
                self.build(height, round)?;
            }
        }
        self.progressed();
        self.publish_snapshot();
        Ok(())
    }

    fn enter_sync(&mut self) {
        tracing::info!(
            height = self.d.chain.height(),
            peers_at = self.sync.max_peer_height(),
            "fell behind: switching to block sync"
        );
        self.mode = Mode::Syncing {
            since: Instant::now(),
        };
        self.timers.clear();
        self.d.observer.syncing(true);
        self.publish_snapshot();
    }

    fn syncing(&self) -> bool {
        matches!(self.mode, Mode::Syncing { .. })
    }

    // ---- engine plumbing ---------------------------------------------------------------------------

    fn engine_handle(&mut self, input: EngineInput) -> Result<Vec<EngineOutput>, EngineError> {
        let chain = &self.d.chain;
        let app = &self.d.app;
        let now = now_ms();
        let mut validator = |b: &Block| chain.validity(b, app, now);
        self.engine.handle(input, &mut validator)
    }

    /// Processes an input and, if the engine accepted it (so it was checked: signatures, height, round
    /// window), logs it (current or next height only) before acting on the engine's outputs. Refused
    /// inputs are never logged, so nothing a peer sends reaches the WAL unchecked; and since every output
    /// — a signature above all — is acted on only after the append, the WAL still holds every input that
    /// led to a signature before the signature leaves the process (the module's durability contract).
    fn input(&mut self, input: EngineInput) -> Result<Result<(), EngineError>, NodeError> {
        let record = WalRecord::from_input(&input);
        let height = record.height();
        let current = self.engine.height();
        let log = !self.replaying
            && !self.syncing()
            && (height == current || Some(height) == current.next());
        match self.engine_handle(input) {
            Ok(outputs) => {
                if log {
                    let bytes = record.to_bytes();
                    self.d.wal.append(&bytes)?;
                    self.d.wal_records.push((height, bytes));
                }
                self.process(outputs)?;
                Ok(Ok(()))
            }
            Err(e) => Ok(Err(e)),
        }
    }

    /// Acts on the engine's outputs in the order it produced them: outputs that acting yields (an own
    /// vote fed back, the next height started) wait behind the rest ([`OutputQueue`]), so the signer is
    /// never asked for a step the engine has already passed.
    fn process(&mut self, outputs: Vec<EngineOutput>) -> Result<(), NodeError> {
        if !self.outputs.push(outputs) {
            return Ok(());
        }
        while let Some(output) = self.outputs.pop() {
            if let Err(e) = self.act(output) {
                self.outputs.clear();
                return Err(e);
            }
        }
        self.publish_snapshot();
        Ok(())
    }

    fn act(&mut self, output: EngineOutput) -> Result<(), NodeError> {
        match output {
            EngineOutput::Decided {
                round,
                block,
                commit,
            } => self.on_decided(round, block, commit)?,
            _ if self.syncing() => {}
            EngineOutput::SignVote(vote) => {
                let Some(pv) = self.d.privval.as_mut() else {
                    return Ok(());
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
                        self.publish_own(logged?)?
                    }
                    Err(e) => self.refused(&e),
                }
            }
            EngineOutput::SignProposal { proposal, block } => {
                let Some(pv) = self.d.privval.as_mut() else {
                    return Ok(());
                };
                failpoint::hit("sign.before_privval");
                let wal = &mut self.d.wal;
                let signed =
                    pv.sign_proposal_alongside(self.d.chain.chain_id(), proposal, |signed| {
                        log_own(
                            wal,
                            ConsensusMessage::Proposal(ProposalMessage {
                                signed: signed.clone(),
                                block,
                            }),
                        )
                    });
                match signed {
                    Ok((_, logged)) => self.publish_own(logged?)?,
                    Err(e) => self.refused(&e),
                }
            }
            EngineOutput::ScheduleTimeout { height, timeout } => {
                let after = self.d.config.timeout(timeout.kind, timeout.round.0);
                self.schedule(after, TimerKind::Round { height, timeout });
            }
            EngineOutput::BuildBlock { height, round } => {
                if self.replaying {
                    self.deferred_builds.push((height, round));
                } else {
                    self.build(height, round)?;
                }
            }
            EngineOutput::Evidence(evidence) => {
                tracing::warn!(
                    height = evidence.height().0,
                    validator = evidence.validator_index().0,
                    "duplicate vote evidence"
                );
                if self
                    .d
                    .chain
                    .check_evidence(&evidence, evidence.height().0 + 1)
                    .is_ok()
                    && self.evidence.add(evidence.clone())
                {
                    self.d
                        .network
                        .publish_consensus(&ConsensusMessage::Evidence(evidence));
                }
            }
            EngineOutput::ProposerEquivocation { proposer, round } => {
                tracing::warn!(
                    proposer = proposer.0,
                    round = round.0,
                    "proposer equivocated"
                );
            }
        }
        Ok(())
    }

    /// The signer refused. A regression while replaying is expected (the signed message itself is in the
    /// WAL and replays next); anything else is logged loudly — it is the double-sign protection at work.
    fn refused(&self, error: &PrivvalError) {
        if self.replaying && matches!(error, PrivvalError::Refused(SignRefusal::Regression { .. }))
        {
            tracing::debug!(%error, "signer: regression during WAL replay");
        } else {
            tracing::error!(%error, "signer refused to sign");
        }
    }

    /// A message we just signed and logged (see [`log_own`]): sent, then fed back to the engine.
    fn publish_own(&mut self, logged: LoggedOwn) -> Result<(), NodeError> {
        let LoggedOwn {
            message,
            bytes,
            fsync,
        } = logged;
        self.d.observer.wal_fsync(fsync);
        self.d.wal_records.push((message.height(), bytes));
        self.d.network.publish_consensus(&message);
        self.d.observer.sent(&message);
        failpoint::hit("sign.after_send");
        self.own_messages.push(message.clone());
        match self.engine_handle(EngineInput::Message(message)) {
            Ok(outputs) => self.process(outputs),
            Err(e) => {
                tracing::error!(error = %e, "engine refused our own signed message");
                Ok(())
            }
        }
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

    fn build(&mut self, height: Height, round: Round) -> Result<(), NodeError> {
        let Some(proposer) = self.d.own_address() else {
            return Ok(());
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
        // Only what every validator will accept: the pool may hold evidence a block committed before a
        // restart (the pool's memory of committed evidence is not persisted; the store's index is).
        // What is refused now can never be included: it leaves the pool.
        let (evidence, stale): (Vec<_>, Vec<_>) = self
            .evidence
            .for_proposal(height.0)
            .into_iter()
            .partition(|e| self.d.chain.check_evidence(e, height.0).is_ok());
        self.evidence.committed(&stale);
        let block = self
            .d
            .chain
            .build_block(proposer, now_ms(), txs, evidence, |decided| {
                self.engine.complete_last_commit(decided)
            })?;
        match self.input(EngineInput::ProposeBlock { round, block })? {
            Ok(()) => Ok(()),
            Err(e) => {
                tracing::error!(error = %e, "engine refused our block");
                Ok(())
            }
        }
    }

    /// Executes and commits a decided block, then schedules the next height.
    fn on_decided(&mut self, round: Round, block: Block, commit: Commit) -> Result<(), NodeError> {
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
            .advance(block.clone(), commit.clone(), app_hash, results_hash);
        if let Some(pruner) = &self.d.pruner {
            pruner.committed(height.0);
        }
        self.evidence.committed(block.evidence());
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
        self.own_messages.clear();
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
        let syncing = self.syncing();
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
        self.d
            .shared
            .publish(NodeEvent::NewBlock(Arc::new(NewBlockEvent {
                block,
                tx_results: result.tx_results,
                events: result.events,
                app_hash,
            })));
        for event in tx_events {
            self.d.shared.publish(event);
        }
        if self.syncing() {
            self.start_height(next)?;
        } else {
            self.schedule(self.d.config.timeout_commit, TimerKind::StartHeight(next));
        }
        Ok(())
    }

    fn start_height(&mut self, height: Height) -> Result<(), NodeError> {
        if height != self.d.chain.next_height() || self.engine.height() >= height {
            return Ok(());
        }
        let set = self.d.chain.validators_at(height.0);
        let next_set = self.d.chain.validators_at(height.0 + 1);
        let chain = &self.d.chain;
        let app = &self.d.app;
        let now = now_ms();
        let mut validator = |b: &Block| chain.validity(b, app, now);
        let outputs = self
            .engine
            .start_height(height, set, Some(next_set), &mut validator)?;
        self.process(outputs)
    }

    fn schedule(&mut self, after: Duration, kind: TimerKind) {
        self.timer_seq += 1;
        self.timers.push(Reverse(Timer {
            at: Instant::now() + after,
            seq: self.timer_seq,
            kind,
        }));
    }

    fn fire_timers(&mut self) -> Result<(), NodeError> {
        let now = Instant::now();
        while self.timers.peek().is_some_and(|t| t.0.at <= now) {
            let Some(Reverse(timer)) = self.timers.pop() else {
                break;
            };
            match timer.kind {
                TimerKind::Round { height, timeout } => {
                    if height == self.engine.height() && !self.syncing() {
                        let _ = self.input(EngineInput::TimeoutElapsed { height, timeout })?;
                    }
                }
                TimerKind::StartHeight(height) => self.start_height(height)?,
            }
        }
        Ok(())
    }

    // ---- network -----------------------------------------------------------------------------------

    fn on_network(&mut self, event: NetworkEvent) -> Result<(), NodeError> {
        match event {
            NetworkEvent::Consensus { id, from, message } => {
                self.on_consensus(id, from, message)?
            }
            NetworkEvent::Txs { id, from, txs } => self.on_txs(id, from, txs),
            NetworkEvent::SyncRequest {
                from: _,
                request,
                reply,
            } => self.on_sync_request(request, reply),
            NetworkEvent::PeerConnected { peer, .. } => {
                tracing::debug!(%peer, "peer connected");
                self.d.observer.peer_change(1);
            }
            NetworkEvent::PeerDisconnected { peer } => {
                tracing::debug!(%peer, "peer disconnected");
                self.sync.remove_peer(&peer);
                self.peer_positions.forget(&peer);
                self.d.observer.peer_change(-1);
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
        self.d.observer.received(&message);
        match message {
            ConsensusMessage::Status { height, round } => {
                // A hint from that peer only: never forwarded, never answered to the mesh. If it says the
                // peer has blocks we lack, we ask that peer for them (`probe_ahead`); if it is in an
                // earlier round of our height, re-gossip relays that round's votes (`on_gossip_tick`).
                self.d.network.report_validation(id, Verdict::Ignore);
                self.peer_positions.record(from, height, round);
                let latest = height.0.saturating_sub(1);
                self.sync.peer_status(from, None, latest, Instant::now());
                self.probe_ahead();
            }
            ConsensusMessage::Evidence(evidence) if self.evidence.knows(&evidence) => {
                // Known offence: nothing new to check or forward.
                self.d.network.report_validation(id, Verdict::Ignore);
            }
            ConsensusMessage::Evidence(evidence) => {
                // `check_evidence` refuses heights after the one we work on before it looks anything up,
                // so the committing height below is at most one past it.
                let height = self
                    .d
                    .chain
                    .next_height()
                    .0
                    .max(evidence.height().0.saturating_add(1));
                match self.d.chain.check_evidence(&evidence, height) {
                    Ok(()) => {
                        let new = self.evidence.add(evidence);
                        let verdict = if new {
                            Verdict::Accept
                        } else {
                            Verdict::Ignore
                        };
                        self.d.network.report_validation(id, verdict);
                    }
                    Err(reason @ EvidenceRefused::Invalid(_)) => {
                        // Anyone can check the signatures: the sender forwarded what it could have refused.
                        tracing::debug!(%from, %reason, "invalid evidence");
                        self.d.network.report_validation(id, Verdict::Reject);
                    }
                    Err(reason) => {
                        // Too new or too old for us, perhaps not for the sender: not forwarded, not punished.
                        tracing::debug!(%from, %reason, "evidence not usable here");
                        self.d.network.report_validation(id, Verdict::Ignore);
                    }
                }
            }
            message => {
                // Signatures the engine will check (votes and proposals: one; decisions: the commit's).
                match &message {
                    ConsensusMessage::Vote(_) => self.d.observer.verified("vote", 1),
                    ConsensusMessage::Proposal(_) => self.d.observer.verified("proposal", 1),
                    ConsensusMessage::Decision { commit, .. } => self
                        .d
                        .observer
                        .verified("commit", commit.signatures.len() as u64),
                    _ => {}
                }
                if self.syncing() {
                    // Decisions for our next height still help; the rest waits for consensus.
                    let useful = matches!(&message, ConsensusMessage::Decision { block, .. }
                        if block.height() == self.engine.height());
                    if !useful {
                        self.d.network.report_validation(id, Verdict::Ignore);
                        return Ok(());
                    }
                }
                match self.input(EngineInput::Message(message))? {
                    Ok(()) => self.d.network.report_validation(id, Verdict::Accept),
                    Err(e) if e.is_misbehaviour() => {
                        tracing::warn!(%from, error = %e, "invalid consensus message");
                        self.d.network.report_validation(id, Verdict::Reject);
                        self.d.network.report_peer(from, misbehaviour_of(&e));
                    }
                    Err(e) => {
                        tracing::debug!(%from, error = %e, "consensus message ignored");
                        self.d.network.report_validation(id, Verdict::Ignore);
                    }
                }
            }
        }
        Ok(())
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

    fn on_sync_request(&mut self, request: SyncRequest, reply: oneshot::Sender<SyncResponse>) {
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
            SyncRequest::Proposal { height, round } => {
                let found = if height == self.engine.height().0 {
                    self.engine
                        .relay_messages()
                        .into_iter()
                        .find_map(|m| match m {
                            ConsensusMessage::Proposal(p)
                                if p.signed.proposal.round().0 == round =>
                            {
                                Some(p)
                            }
                            _ => None,
                        })
                } else {
                    None
                };
                let _ = reply.send(SyncResponse::Proposal(found));
            }
        }
    }

    // ---- periodic work -----------------------------------------------------------------------------

    /// Re-gossip while the round makes no progress: our own messages of this height, the proposals and
    /// proof-of-lock prevotes peers may have missed, and where we are.
    /// Progress was made (a decision or a new round): re-gossip starts again from the base cadence.
    fn progressed(&mut self) {
        self.last_progress = Instant::now();
        self.regossip_interval = self.d.config.gossip_interval;
        self.next_regossip = self.last_progress + self.regossip_interval;
    }

    fn on_gossip_tick(&mut self) {
        let position = (self.engine.height(), self.engine.round());
        if position != self.position {
            self.position = position;
            self.progressed();
        }
        let now = Instant::now();
        if self.syncing() || now < self.next_regossip {
            return;
        }
        // Stuck since the last progress: re-send, then wait twice as long before the next time.
        self.regossip_interval = (self.regossip_interval * 2)
            .max(self.d.config.gossip_interval)
            .min(MAX_REGOSSIP_INTERVAL);
        self.next_regossip = now + self.regossip_interval;
        let proposals_due = self
            .last_proposal_regossip
            .is_none_or(|t| now.duration_since(t) >= PROPOSAL_REGOSSIP_INTERVAL);
        if proposals_due {
            self.last_proposal_regossip = Some(now);
        }
        let messages =
            self.engine
                .regossip_messages(&self.own_messages, &self.peer_positions, proposals_due);
        for message in &messages {
            self.d.network.publish_consensus(message);
            self.d.observer.sent(message);
        }
        self.publish_status();
    }

    fn publish_status(&self) {
        self.d.network.publish_consensus(&ConsensusMessage::Status {
            height: self.engine.height(),
            round: self.engine.round(),
        });
    }

    async fn on_status_tick(&mut self) -> Result<(), NodeError> {
        self.publish_status();
        self.d.observer.mempool(self.d.mempool.stats());
        let peers = self.d.network.peers().await;
        if self.syncing() || peers.len() != self.sync.peer_count() {
            for peer in peers {
                let network = self.d.network.clone();
                let tx = self.sync_tx.clone();
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
        match answer {
            SyncAnswer::Status { peer, base, latest } => {
                self.sync
                    .peer_status(peer, Some(base), latest, Instant::now());
                self.probe_ahead();
            }
            SyncAnswer::Blocks { request, result } => {
                if let Some(offence) = self.sync.on_response(request, result, Instant::now()) {
                    tracing::warn!(peer = %request.peer, ?offence, "block sync: peer misbehaved");
                    self.d.network.report_peer(request.peer, offence);
                    self.sync.remove_peer(&request.peer);
                }
                // A peer served the block after ours: we are behind, by a height or by thousands. Catch up
                // by block sync (each block's commit is verified as it is applied), then rejoin consensus.
                // Claims alone never take a validator out of consensus; served blocks do.
                let next = self.d.chain.height().saturating_add(1);
                if !self.syncing() && self.sync.has_ready(next) {
                    self.enter_sync();
                }
            }
        }
        self.drive_sync()
    }

    /// In consensus, when a peer claims blocks after ours and the round has made no progress for
    /// [`PROBE_AFTER_STALL`], asks one such peer (one request at a time) for them. The answer, if it holds
    /// the next block, moves the node to block sync (see [`Running::on_sync_answer`]); a peer that fails
    /// to serve what it claimed loses its claim (`BlockSync::on_response`).
    fn probe_ahead(&mut self) {
        if self.syncing() || self.last_progress.elapsed() < PROBE_AFTER_STALL {
            return;
        }
        let ours = self.d.chain.height();
        if self.sync.max_peer_height() <= ours {
            return;
        }
        if let Some(request) = self.sync.probe(ours, Instant::now()) {
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

    /// Applies fetched blocks in order, sends new requests, and joins consensus once caught up.
    fn drive_sync(&mut self) -> Result<(), NodeError> {
        let Mode::Syncing { since } = self.mode else {
            return Ok(());
        };
        loop {
            let next = self.d.chain.height() + 1;
            let Some((block, commit, peer)) = self.sync.take(next) else {
                break;
            };
            if self.engine.height().0 != next {
                self.engine = self.d.new_engine()?;
            }
            self.d
                .observer
                .verified("commit", commit.signatures.len() as u64);
            let message = ConsensusMessage::Decision { block, commit };
            match self.engine_handle(EngineInput::Message(message)) {
                // Only `Decided` is acted on while syncing.
                Ok(outputs) => self.process(outputs)?,
                Err(e) => {
                    tracing::warn!(%peer, error = %e, "block sync: invalid block or commit");
                    self.d.network.report_peer(peer, Misbehaviour::InvalidBlock);
                    self.sync.remove_peer(&peer);
                    break;
                }
            }
            if self.d.chain.height() < next {
                break;
            }
        }
        let ours = self.d.chain.height();
        // Only peers whose claims still stand count: one that failed to serve what it claimed is not
        // waited for (otherwise a single peer claiming a huge height would keep us out of consensus).
        let best = self.sync.max_peer_height();
        let waited = since.elapsed() >= SYNC_STARTUP_WAIT;
        let heard = self.sync.credible_peers() > 0;
        if (heard && ours >= best) || (!heard && waited) {
            self.d.observer.syncing(false);
            tracing::info!(height = ours, "caught up");
            return self.enter_consensus();
        }
        for request in self.sync.next_requests(ours, Instant::now()) {
            self.send_block_request(request);
        }
        Ok(())
    }

    fn publish_snapshot(&mut self) {
        self.d
            .observer
            .step(metric_step_name(self.engine.driver().step()));
        let chain = &self.d.chain;
        let driver = self.engine.driver();
        let last = chain.last();
        let set = chain.validators_at(self.engine.height().0);
        let proposer_index = set.proposer_for_round(self.engine.round());
        let proposer = set
            .get(proposer_index)
            .map(|v| (v.address, proposer_index.0));
        let state = driver.state();
        let locked = state.locked.as_ref().map(|v| v.value.hash);
        let valid = state.valid.as_ref().map(|v| v.value.hash);
        let catching_up = self.syncing();
        let max_peer_height = self.sync.max_peer_height();
        self.d.shared.update(|s| {
            s.height = chain.height();
            s.last_block_hash = last.map(|(b, _)| b.id().hash);
            s.last_block_time_ms = last.map_or(0, |(b, _)| b.header().time_ms);
            s.app_hash = chain.app_hash();
            s.last_header_app_hash = last.map_or(Hash::ZERO, |(b, _)| b.header().app_hash);
            if s.consensus_height != self.engine.height().0 || s.round != self.engine.round().0 {
                s.round_start_ms = now_ms();
            }
            s.consensus_height = self.engine.height().0;
            s.round = self.engine.round().0;
            s.step = step_name(driver.step());
            s.proposer = proposer;
            s.locked = locked;
            s.valid = valid;
            s.catching_up = catching_up;
            s.max_peer_height = max_peer_height;
        });
        self.d
            .observer
            .consensus_position(self.engine.height().0, self.engine.round().0);
    }
}

fn misbehaviour_of(error: &EngineError) -> Misbehaviour {
    match error {
        EngineError::Vote(_) | EngineError::Proposal(_) => Misbehaviour::BadSignature,
        EngineError::Commit(_) | EngineError::BlockHeaderMismatch { .. } => {
            Misbehaviour::InvalidBlock
        }
        other => Misbehaviour::Other(other.to_string()),
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
