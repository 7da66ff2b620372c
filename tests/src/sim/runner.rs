//! The seeded scheduler: simulated time, the event queue, honest nodes (the node's driver core, see
//! `honest`) and byzantine nodes (bare engines with scripted misbehaviour).

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap};
use std::rc::Rc;

use rand_chacha::ChaCha8Rng;
use rand_core::{RngCore, SeedableRng};

use basalt_consensus::engine::{
    ConsensusMessage, Engine, EngineConfig, EngineInput, EngineOutput, OutputQueue,
};
use basalt_consensus::types::{
    BlockId, ChainId, DuplicateVoteEvidence, Hash, PrivateKey, ProposalMessage, SignedProposal,
    SignedVote, Tx, ValidatorChange, ValidatorSet, Vote,
};
use basalt_consensus::{Height, Round, Timeout, TimeoutKind};

use super::app::{self, Chain, Genesis, POISON_TX};
use super::checker::{self, EquivocationKey, Expectations, Record, Violation};
use super::config::{Behaviour, SimConfig};
use super::network::{self, LinkProfile, NodeId, Partition};
use super::traffic;
use basalt_node::durability::privval::{encode_state, Hrs, LastSignState, SignPermit, SignRefusal};
use basalt_node::mempool::Mempool;
use basalt_node::runtime::core::DriverCore;
use basalt_node::runtime::sync::BlockRequest;
use basalt_node::runtime::valsets::SetHistory;
use basalt_node::runtime::walrec::WalRecord;

mod disk;
mod honest;
mod sync;
mod txs;

/// Genesis time of simulated chains (ms since the epoch).
const GENESIS_TIME_MS: u64 = 1_700_000_000_000;
/// Upper bound on processed events per run: a bug that floods the queue fails instead of hanging.
const MAX_EVENTS: u64 = 1_000_000;
/// Mixed into the seed for the transaction traffic's random stream.
const TRAFFIC_STREAM: u64 = 0x7478_7320_7472_6166;

/// The outcome of one run.
#[derive(Debug)]
pub struct SimReport {
    /// The configuration run.
    pub config: SimConfig,
    /// Hash over every processed event: equal seeds give equal traces.
    pub trace_hash: Hash,
    /// Violations found (empty for a correct run).
    pub violations: Vec<Violation>,
    /// What happened.
    pub record: Record,
    /// Events processed.
    pub events: u64,
    /// Simulated time at the end, ms.
    pub end_ms: u64,
    /// Each node's final consensus position, for diagnosing a failed run.
    pub final_states: Vec<String>,
}

impl SimReport {
    /// One line for logs, with the seed to replay.
    pub fn summary(&self) -> String {
        format!(
            "family={} seed={} n={} powers={:?} set_changes={:?} byzantine={:?} events={} end_ms={} heights={} equivocations={} evidence_committed={} violations={:?} (replay: SIM_SEED={} SIM_FAMILY={})",
            self.config.family,
            self.config.seed,
            self.config.powers.len(),
            self.config.powers,
            self.config.set_changes,
            self.config.byzantine,
            self.events,
            self.end_ms,
            self.record.decisions.len(),
            self.record.equivocations.len(),
            self.record.evidence_committed.len(),
            self.violations,
            self.config.seed,
            self.config.family,
        )
    }
}

#[derive(Debug)]
enum Event {
    Deliver {
        to: NodeId,
        from: NodeId,
        /// For split-brain senders: which side's engine sent it.
        side: Option<usize>,
        bytes: Rc<Vec<u8>>,
        /// Which publish this delivery belongs to: the network may deliver one publish more than once.
        publish: u64,
    },
    /// A message on the transactions topic (a gossiped batch).
    DeliverTxs {
        to: NodeId,
        from: NodeId,
        bytes: Rc<Vec<u8>>,
        publish: u64,
    },
    /// A client submits its next transfer to a node's RPC.
    SubmitTx,
    /// A block-sync request (status when `request` is `None`) reaches its server.
    SyncAsk {
        server: NodeId,
        client: NodeId,
        incarnation: u64,
        id: u64,
        request: Option<BlockRequest<NodeId>>,
    },
    /// A block-sync answer (or a request's timeout) reaches its client.
    SyncAnswer {
        client: NodeId,
        incarnation: u64,
        id: u64,
        server: NodeId,
        answer: sync::SyncAnswer,
    },
    Timer {
        node: NodeId,
        incarnation: u64,
        side: Option<usize>,
        height: Height,
        timeout: Timeout,
    },
    Gossip {
        node: NodeId,
        incarnation: u64,
    },
    /// An honest node's `timeout_commit` ran out: start the next height.
    StartHeight {
        node: NodeId,
        incarnation: u64,
        height: Height,
    },
    ArmCrash {
        node: NodeId,
        steps: u32,
        down_ms: u64,
    },
    Restart {
        node: NodeId,
    },
    SetPartition(Partition),
    Gst,
}

/// A node's crash was triggered mid-event: the rest of the event's work is lost.
struct Crashed;

/// State that survives a crash (the model of the on-disk block store, WAL and sign state).
#[derive(Default)]
struct Persisted {
    chain: Chain,
    /// The WAL file's bytes (honest nodes), appended by the node's driver core as it runs (`wal.rs`).
    wal_bytes: Vec<u8>,
    /// The WAL's records as the node holds them: read from `wal_bytes` at boot, appended with them,
    /// trimmed to the working height at each commit.
    wal: Vec<WalRecord>,
    /// `priv_validator_state.json`: the node's signer state in the node's own encoding
    /// (`privval::encode_state`), replaced whole on each signature, read back at boot (`decode_state`).
    sign_state_file: Vec<u8>,
}

struct Node {
    id: NodeId,
    key: PrivateKey,
    behaviour: Option<Behaviour>,
    /// Honest nodes: the node's own driver core (`None` while crashed).
    core: Option<DriverCore<NodeId>>,
    /// Honest nodes: the node's real mempool (RAM only: `None` while crashed, empty after a restart).
    mempool: Option<Mempool>,
    /// Honest nodes: block sync with the node's bookkeeping (RAM only).
    sync_state: Option<sync::SyncState>,
    /// Honest nodes: the signer's state as the running node holds it (loaded at boot).
    last_signed: LastSignState,
    /// Byzantine nodes: one engine, or one per side for split-brain; empty while crashed or silent.
    engines: Vec<Engine>,
    incarnation: u64,
    crashed: bool,
    /// Crash after this many more persistence/send steps.
    crash_budget: Option<(u32, u64)>,
    persisted: Persisted,
    /// Split-brain sides keep separate chains.
    side_chains: Vec<Chain>,
    /// Own signed messages of the current height, re-gossiped periodically.
    own_messages: Vec<(usize, ConsensusMessage)>,
    evidence_pool: Vec<DuplicateVoteEvidence>,
    /// Decisions already sent to (peer, height) since the last gossip tick.
    answered: BTreeSet<(NodeId, u64)>,
    /// Publishes already delivered at the current height: a second delivery of one publish is dropped
    /// before any signature work, as gossipsub's seen-cache does. Only duplicates of one publish: the
    /// node's envelope carries a sequence number, so a message re-gossiped later (by its signer or as a
    /// relay) is a new gossipsub message and reaches the engine again. Cleared at each new height
    /// (bounded by one height).
    seen: BTreeSet<u64>,
    /// Engine outputs not yet acted on, one queue per engine (side), in the engine's order — the node's
    /// real [`OutputQueue`], used as the driver uses it.
    output_queues: Vec<OutputQueue>,
}

/// One simulation.
pub struct Sim {
    config: SimConfig,
    rng: ChaCha8Rng,
    now_ms: u64,
    seq: u64,
    queue: BinaryHeap<Reverse<(u64, u64, usize)>>,
    events: BTreeMap<usize, Event>,
    next_event_id: usize,
    nodes: Vec<Node>,
    genesis: Genesis,
    partition: Partition,
    link: LinkProfile,
    record: Record,
    trace: Hash,
    processed: u64,
    /// Publishes so far (each send is one gossipsub publish; see `Node::seen`).
    publishes: u64,
    /// Height every honest node must reach (set at GST).
    target: u64,
    /// Randomness of the transaction traffic and of the transaction and evidence attacks: a stream of
    /// its own, so consensus schedules (and recorded regression seeds) are those of the seed alone.
    traffic_rng: ChaCha8Rng,
    /// Client accounts' keys.
    clients: Vec<PrivateKey>,
    /// Hashes of the transfers clients submitted so far.
    client_txs: BTreeSet<Hash>,
    /// The instant simulated time 0 maps to (block sync's bookkeeping works in `Instant`s; only
    /// differences matter, so runs stay deterministic).
    epoch: std::time::Instant,
    /// Sync requests so far (ids match answers to requests).
    next_request_id: u64,
}

impl Sim {
    /// Sets up a run.
    pub fn new(config: SimConfig) -> Sim {
        let rng = ChaCha8Rng::seed_from_u64(config.seed);
        let keys: Vec<PrivateKey> = (0..config.powers.len())
            .map(|i| {
                let mut seed = [0u8; 32];
                seed[..8].copy_from_slice(&(i as u64 + 1).to_le_bytes());
                seed[8..16].copy_from_slice(&config.seed.to_le_bytes());
                PrivateKey::from_seed(&seed)
            })
            .collect();
        let members = keys
            .iter()
            .zip(&config.powers)
            .filter(|(_, p)| **p > 0)
            .map(|(k, p)| (k.public_key(), *p))
            .collect();
        let set = match ValidatorSet::new(members) {
            Ok(set) => set,
            Err(e) => unreachable_config(&format!("invalid validator set: {e}")),
        };
        let chain_id = match ChainId::new(format!("sim-{}", config.seed)) {
            Ok(c) => c,
            Err(e) => unreachable_config(&format!("invalid chain id: {e}")),
        };
        let history = SetHistory::new(1, set);
        for (height, changes) in &config.set_changes {
            let updates = changes
                .iter()
                .map(|(node, power)| ValidatorChange {
                    public_key: keys[*node].public_key(),
                    power: *power,
                })
                .collect();
            if let Err(e) = history.record(*height, updates) {
                unreachable_config(&format!("invalid validator updates: {e}"));
            }
        }
        let genesis = Genesis {
            chain_id,
            time_ms: GENESIS_TIME_MS,
            history: std::rc::Rc::new(history),
        };
        let nodes = keys
            .into_iter()
            .enumerate()
            .map(|(id, key)| Node {
                id,
                key,
                behaviour: config.behaviour(id),
                core: None,
                mempool: None,
                sync_state: None,
                last_signed: LastSignState::default(),
                engines: Vec::new(),
                incarnation: 0,
                crashed: false,
                crash_budget: None,
                // As `basalt init` writes it.
                persisted: Persisted {
                    sign_state_file: encode_state(&LastSignState::default()),
                    ..Persisted::default()
                },
                side_chains: vec![Chain::default(), Chain::default()],
                own_messages: Vec::new(),
                evidence_pool: Vec::new(),
                answered: BTreeSet::new(),
                seen: BTreeSet::new(),
                output_queues: Vec::new(),
            })
            .collect();
        let link = config.link;
        let clients = (0..3u64)
            .map(|i| {
                let mut seed = [0u8; 32];
                seed[..8].copy_from_slice(&(1_000 + i).to_le_bytes());
                seed[8..16].copy_from_slice(&config.seed.to_le_bytes());
                PrivateKey::from_seed(&seed)
            })
            .collect();
        let traffic_rng = ChaCha8Rng::seed_from_u64(config.seed ^ TRAFFIC_STREAM);
        Sim {
            config,
            rng,
            now_ms: 0,
            seq: 0,
            queue: BinaryHeap::new(),
            events: BTreeMap::new(),
            next_event_id: 0,
            nodes,
            genesis,
            partition: Partition::healed(),
            link,
            record: Record::default(),
            trace: Hash::ZERO,
            processed: 0,
            publishes: 0,
            target: u64::MAX,
            traffic_rng,
            clients,
            client_txs: BTreeSet::new(),
            epoch: std::time::Instant::now(),
            next_request_id: 0,
        }
    }

    /// Runs to the deadline (or until every honest node reached the target) and checks the properties.
    pub fn run(mut self) -> SimReport {
        self.schedule_setup();
        for id in 0..self.nodes.len() {
            self.boot(id);
        }
        while let Some(Reverse((time, _, event_id))) = self.queue.pop() {
            if time > self.config.deadline_ms || self.processed >= MAX_EVENTS {
                break;
            }
            self.now_ms = time;
            let Some(event) = self.events.remove(&event_id) else {
                continue;
            };
            self.processed += 1;
            self.trace_event(&event);
            self.dispatch(event);
            if self.processed.is_multiple_of(256) && self.all_honest_reached_target() {
                break;
            }
        }
        self.finish()
    }

    fn schedule_setup(&mut self) {
        for (at, partition) in self.config.partitions.clone() {
            self.schedule(at, Event::SetPartition(partition));
        }
        for crash in self.config.crashes.clone() {
            self.schedule(
                crash.at_ms,
                Event::ArmCrash {
                    node: crash.node,
                    steps: crash.steps,
                    down_ms: crash.down_ms,
                },
            );
        }
        self.schedule(self.config.gst_ms, Event::Gst);
        let first = self.next_submission_ms();
        self.schedule(first, Event::SubmitTx);
    }

    fn schedule(&mut self, at_ms: u64, event: Event) {
        let id = self.next_event_id;
        self.next_event_id += 1;
        self.seq += 1;
        self.events.insert(id, event);
        self.queue.push(Reverse((at_ms, self.seq, id)));
    }

    fn trace_event(&mut self, event: &Event) {
        let summary = match event {
            Event::Deliver {
                to, from, bytes, ..
            } => {
                format!("D{to}<{from}:{}", Hash::digest(bytes))
            }
            Event::DeliverTxs {
                to, from, bytes, ..
            } => format!("X{to}<{from}:{}", Hash::digest(bytes)),
            Event::SubmitTx => "U".to_string(),
            Event::SyncAsk {
                server,
                client,
                request,
                ..
            } => format!("Q{server}<{client}:{request:?}"),
            Event::SyncAnswer { client, server, .. } => format!("A{client}<{server}"),
            Event::Timer {
                node,
                height,
                timeout,
                ..
            } => format!("T{node}:{height}:{timeout:?}"),
            Event::Gossip { node, .. } => format!("G{node}"),
            Event::StartHeight { node, height, .. } => format!("S{node}:{height}"),
            Event::ArmCrash { node, steps, .. } => format!("C{node}:{steps}"),
            Event::Restart { node } => format!("R{node}"),
            Event::SetPartition(p) => format!("P{p:?}"),
            Event::Gst => "GST".to_string(),
        };
        self.trace = Hash::digest_parts(&[
            &self.trace.0,
            &self.now_ms.to_le_bytes(),
            summary.as_bytes(),
        ]);
    }

    fn all_honest_reached_target(&self) -> bool {
        !self.config.partition_forever
            && self.now_ms > self.config.gst_ms
            && self
                .nodes
                .iter()
                .filter(|n| n.behaviour.is_none())
                .all(|n| n.persisted.chain.height() >= self.target)
    }

    fn dispatch(&mut self, event: Event) {
        match event {
            Event::Deliver {
                to,
                from,
                side,
                bytes,
                publish,
            } => self.deliver(to, from, side, &bytes, publish),
            Event::DeliverTxs {
                to,
                from,
                bytes,
                publish,
            } => self.deliver_txs(to, from, bytes, publish),
            Event::SubmitTx => self.submit_client_tx(),
            Event::SyncAsk {
                server,
                client,
                incarnation,
                id,
                request,
            } => self.serve_sync(server, client, incarnation, id, request),
            Event::SyncAnswer {
                client,
                incarnation,
                id,
                server,
                answer,
            } => self.on_sync_answer(client, incarnation, id, server, answer),
            Event::Timer {
                node,
                incarnation,
                side,
                height,
                timeout,
            } => {
                if self.nodes[node].incarnation == incarnation && !self.nodes[node].crashed {
                    if self.nodes[node].behaviour.is_none() {
                        self.with_core(node, |core, host| core.timeout(host, height, timeout));
                    } else {
                        let input = EngineInput::TimeoutElapsed { height, timeout };
                        self.with_node(node, |sim| {
                            sim.input(node, side.unwrap_or(0), input).map(|_| ())
                        });
                    }
                }
            }
            Event::StartHeight {
                node,
                incarnation,
                height,
            } => {
                if self.nodes[node].incarnation == incarnation && !self.nodes[node].crashed {
                    self.with_core(node, |core, host| core.commit_timeout_elapsed(host, height));
                }
            }
            Event::Gossip { node, incarnation } => {
                if self.nodes[node].incarnation == incarnation && !self.nodes[node].crashed {
                    if self.nodes[node].behaviour.is_none() {
                        self.nodes[node].answered.clear();
                        self.gossip_honest(node);
                    } else {
                        self.gossip(node);
                    }
                    let at = self.now_ms + self.config.timeouts.gossip_ms;
                    self.schedule(at, Event::Gossip { node, incarnation });
                }
            }
            Event::ArmCrash {
                node,
                steps,
                down_ms,
            } => {
                if steps == 0 {
                    self.crash(node, down_ms);
                } else {
                    self.nodes[node].crash_budget = Some((steps, down_ms));
                }
            }
            Event::Restart { node } => {
                self.nodes[node].crashed = false;
                self.boot(node);
            }
            Event::SetPartition(p) => self.partition = p,
            Event::Gst => {
                // Liveness is judged from here: every honest node must decide `target_height` more heights
                // beyond the highest honest height at GST.
                let highest = self
                    .nodes
                    .iter()
                    .filter(|n| n.behaviour.is_none())
                    .map(|n| n.persisted.chain.height())
                    .max()
                    .unwrap_or(0);
                self.target = highest + self.config.target_height;
                self.link = LinkProfile::synchronous();
                if !self.config.partition_forever {
                    self.partition = Partition::healed();
                }
            }
        }
    }

    /// Runs node work; a triggered crash discards the rest of it.
    fn with_node(&mut self, node: NodeId, work: impl FnOnce(&mut Sim) -> Result<(), Crashed>) {
        if work(self).is_err() {
            let down = self.nodes[node].crash_budget.take().map_or(100, |(_, d)| d);
            self.crash(node, down);
        }
    }

    fn crash(&mut self, node: NodeId, down_ms: u64) {
        let note = format!(
            "t={} node {node} crashed at height {} (wal {} entries)",
            self.now_ms,
            self.nodes[node].persisted.chain.height() + 1,
            self.nodes[node].persisted.wal.len()
        );
        self.record.notes.push(note);
        let n = &mut self.nodes[node];
        n.crashed = true;
        n.crash_budget = None;
        n.incarnation += 1;
        n.core = None;
        n.mempool = None;
        n.sync_state = None;
        n.engines.clear();
        n.own_messages.clear();
        n.seen.clear();
        n.evidence_pool.clear();
        n.output_queues.clear();
        let at = self.now_ms + down_ms;
        self.schedule(at, Event::Restart { node });
    }

    /// One persistence or send step; crashes the node when its armed budget runs out.
    fn step(&mut self, node: NodeId) -> Result<(), Crashed> {
        if let Some((steps, down)) = self.nodes[node].crash_budget {
            if steps <= 1 {
                self.nodes[node].crash_budget = Some((0, down));
                return Err(Crashed);
            }
            self.nodes[node].crash_budget = Some((steps - 1, down));
        }
        Ok(())
    }

    /// Starts (or restarts) a node from its persisted state: honest nodes through the node's driver core
    /// (which replays the WAL), byzantine ones with bare engines (they keep no WAL).
    fn boot(&mut self, id: NodeId) {
        let behaviour = self.nodes[id].behaviour;
        if matches!(behaviour, Some(Behaviour::Silent)) {
            return;
        }
        let incarnation = self.nodes[id].incarnation;
        let gossip_at = self.now_ms + 1 + (self.rng.next_u64() % self.config.timeouts.gossip_ms);
        self.schedule(
            gossip_at,
            Event::Gossip {
                node: id,
                incarnation,
            },
        );
        if behaviour.is_none() {
            self.boot_honest(id);
            return;
        }
        let sides = if behaviour == Some(Behaviour::SplitBrain) {
            2
        } else {
            1
        };
        let address = self.nodes[id].key.public_key().address();
        let mut engines = Vec::new();
        for side in 0..sides {
            let height = Height(self.chain_of(id, side).height() + 1);
            let set = self.genesis.set_for(height);
            let next_set = self.genesis.set_for(Height(height.0 + 1));
            match Engine::new(
                self.genesis.chain_id.clone(),
                EngineConfig::default(),
                Some(address),
                height,
                set,
                Some(next_set),
            ) {
                Ok(engine) => engines.push(engine),
                Err(e) => unreachable_config(&format!("engine: {e}")),
            }
        }
        self.nodes[id].engines = engines;
        self.with_node(id, |sim| {
            for side in 0..sides {
                let outputs = sim.nodes[id].engines[side].start().unwrap_or_default();
                sim.handle_outputs(id, side, outputs)?;
            }
            Ok(())
        });
    }

    fn chain_of(&self, id: NodeId, side: usize) -> &Chain {
        let node = &self.nodes[id];
        if node.behaviour == Some(Behaviour::SplitBrain) {
            &node.side_chains[side]
        } else {
            &node.persisted.chain
        }
    }

    fn deliver(
        &mut self,
        to: NodeId,
        from: NodeId,
        side: Option<usize>,
        bytes: &[u8],
        publish: u64,
    ) {
        let node = &self.nodes[to];
        let height = match node.behaviour {
            None => self.honest_height(to),
            Some(_) => node.engines.first().map(Engine::height),
        };
        if node.crashed || height.is_none() {
            return;
        }
        let message = match ConsensusMessage::from_bytes(bytes) {
            Ok(m) => m,
            Err(_) => {
                self.record.rejected_messages += 1;
                return;
            }
        };
        // A second delivery of one publish is dropped before any work, as gossipsub's seen-cache does.
        if !matches!(message, ConsensusMessage::Status { .. })
            && !self.nodes[to].seen.insert(publish)
        {
            return;
        }
        let equivocation = self.equivocation_half(&message);
        let forged = self.is_forged_vote(from, &message);
        let vote_height = message.height();
        let evidence_height = match &message {
            ConsensusMessage::Evidence(e) => Some(e.height()),
            _ => None,
        };
        let incarnation = self.nodes[to].incarnation;
        if self.nodes[to].behaviour.is_some() {
            self.deliver_byzantine(to, from, side, message);
            return;
        }
        let accepted = self.deliver_honest(to, from, message);
        if forged && accepted {
            self.record.accepted_forgeries.push((to, vote_height));
        }
        if let (Some(of), true) = (evidence_height, accepted) {
            // Evidence can go into the block after its height at the earliest: kept or forwarded before
            // the node works on that height (the one after its last decided block), it is unchecked
            // weight (issue 14, hole 1).
            let working = Height(self.nodes[to].persisted.chain.height() + 1);
            if of > working {
                self.record.accepted_unusable_evidence.push((to, of));
            }
        }
        if let (Some((key, half)), true, Some(height)) = (equivocation, accepted, height) {
            if height == key.0 || Some(height) == key.0.next() {
                self.record
                    .halves_accepted
                    .entry((to, incarnation, key))
                    .or_default()
                    .insert(half);
            }
        }
    }

    /// A byzantine node's engine takes what it is sent (Status messages aside).
    fn deliver_byzantine(
        &mut self,
        to: NodeId,
        from: NodeId,
        side: Option<usize>,
        message: ConsensusMessage,
    ) {
        let node = &self.nodes[to];
        let my_side = match (node.behaviour, side) {
            (Some(Behaviour::SplitBrain), Some(s)) => s,
            (Some(Behaviour::SplitBrain), None) => usize::from(from == 1),
            _ => 0,
        };
        if let ConsensusMessage::Status { height, .. } = message {
            // Byzantine nodes catch up like honest ones (block sync), so their attacks stay current.
            if node.behaviour != Some(Behaviour::SplitBrain) {
                self.pull_from(to, from, height.0.saturating_sub(1));
            }
            return;
        }
        self.with_node(to, |sim| {
            sim.input(to, my_side, EngineInput::Message(message))
                .map(|_| ())
        });
    }

    /// A byzantine node heard `peer` say its latest block is `latest` and catches up (so its attacks stay
    /// current); a model of block sync, not the node's (honest nodes run that: `sync.rs`): the peer sends
    /// the decided block of our next height with its commit, at most once per gossip period.
    fn pull_from(&mut self, id: NodeId, peer: NodeId, latest: u64) {
        let ours = self.nodes[id].persisted.chain.height();
        if latest <= ours || peer == id {
            return;
        }
        if !self.nodes[peer].answered.insert((id, ours + 1)) {
            return;
        }
        let Some((block, commit)) = self.nodes[peer].persisted.chain.blocks.get(ours as usize)
        else {
            return;
        };
        let message = ConsensusMessage::Decision {
            block: block.clone(),
            commit: commit.clone(),
        };
        self.send(peer, id, None, &message);
    }

    /// If `message` is one half of a recorded equivocation: its key and which half.
    fn equivocation_half(&self, message: &ConsensusMessage) -> Option<(EquivocationKey, bool)> {
        let ConsensusMessage::Vote(v) = message else {
            return None;
        };
        let key = (
            v.vote.height,
            v.vote.round,
            v.vote.vote_type,
            v.vote.validator_index,
        );
        self.record
            .equivocations
            .contains(&key)
            .then_some((key, v.vote.block_id.is_some()))
    }

    /// Feeds one input to a byzantine node's engine; returns whether the engine accepted it.
    fn input(&mut self, id: NodeId, side: usize, input: EngineInput) -> Result<bool, Crashed> {
        if self.nodes[id].engines.len() <= side {
            return Ok(false);
        }
        let result = {
            let chain = self.chain_of(id, side).clone();
            let genesis = &mut self.genesis;
            let mut validator =
                |block: &basalt_consensus::types::Block| app::validate(genesis, &chain, block);
            self.nodes[id].engines[side].handle(input, &mut validator)
        };
        match result {
            Ok(outputs) => {
                self.handle_outputs(id, side, outputs)?;
                Ok(true)
            }
            Err(_) => Ok(false),
        }
    }

    fn handle_outputs(
        &mut self,
        id: NodeId,
        side: usize,
        outputs: Vec<EngineOutput>,
    ) -> Result<(), Crashed> {
        let queues = &mut self.nodes[id].output_queues;
        if queues.len() <= side {
            queues.resize_with(side + 1, OutputQueue::new);
        }
        if !queues[side].push(outputs) {
            return Ok(()); // an outer call is acting on this engine's outputs and reaches these in turn
        }
        while let Some(output) = self.nodes[id].output_queues[side].pop() {
            if let Err(crashed) = self.act(id, side, output) {
                self.nodes[id].output_queues.clear();
                return Err(crashed);
            }
        }
        Ok(())
    }

    fn act(&mut self, id: NodeId, side: usize, output: EngineOutput) -> Result<(), Crashed> {
        match output {
            EngineOutput::SignVote(vote) => self.sign_vote(id, side, vote)?,
            EngineOutput::SignProposal { proposal, block } => {
                self.sign_proposal(id, side, proposal, block)?
            }
            EngineOutput::ScheduleTimeout { height, timeout } => {
                let t = self.config.timeouts;
                let base = match timeout.kind {
                    TimeoutKind::Propose => t.propose_ms,
                    TimeoutKind::Prevote | TimeoutKind::Precommit => t.vote_ms,
                };
                let at = self.now_ms + base + t.delta_ms * u64::from(timeout.round.0);
                let incarnation = self.nodes[id].incarnation;
                let side = (self.nodes[id].engines.len() > 1).then_some(side);
                self.schedule(
                    at,
                    Event::Timer {
                        node: id,
                        incarnation,
                        side,
                        height,
                        timeout,
                    },
                );
            }
            EngineOutput::BuildBlock { height, round } => self.build(id, side, height, round)?,
            EngineOutput::Decided {
                round,
                block,
                commit,
            } => self.decided(id, side, round, block, commit)?,
            EngineOutput::Evidence(evidence) => {
                if !self.nodes[id].evidence_pool.contains(&evidence) {
                    self.nodes[id].evidence_pool.push(evidence);
                }
            }
            EngineOutput::ProposerEquivocation { .. } => {}
        }
        Ok(())
    }

    fn build(
        &mut self,
        id: NodeId,
        side: usize,
        height: Height,
        round: Round,
    ) -> Result<(), Crashed> {
        // A deferred build may be stale by the time replay ends.
        if self.nodes[id].engines.get(side).map(|e| e.height()) != Some(height) {
            return Ok(());
        }
        let mut txs = Vec::new();
        let count = self.rng.next_u32() % 4;
        for _ in 0..count {
            let mut bytes = vec![0u8; 24];
            self.rng.fill_bytes(&mut bytes);
            if let Ok(tx) = Tx::new(bytes) {
                txs.push(tx);
            }
        }
        match self.nodes[id].behaviour {
            Some(Behaviour::InvalidVotes) => txs.extend(Tx::new(POISON_TX.to_vec()).ok()),
            Some(Behaviour::SplitBrain) => txs.extend(Tx::new(vec![b's', side as u8]).ok()),
            _ => {}
        }
        // Only evidence of heights already decided can be committed (as in CometBFT).
        let evidence: Vec<DuplicateVoteEvidence> = self.nodes[id]
            .evidence_pool
            .iter()
            .filter(|e| e.height() < height)
            .take(10)
            .cloned()
            .collect();
        let chain = self.chain_of(id, side).clone();
        let proposer = self.nodes[id].key.public_key().address();
        let now = GENESIS_TIME_MS + self.now_ms;
        let Some(block) = app::build_block(&mut self.genesis, &chain, proposer, now, txs, evidence)
        else {
            return Ok(());
        };
        if block.txs().iter().any(|t| t.as_bytes() == POISON_TX) {
            self.record.invalid.insert(block.id());
        }
        self.input(id, side, EngineInput::ProposeBlock { round, block })?;
        Ok(())
    }

    fn sign_vote(&mut self, id: NodeId, side: usize, vote: Vote) -> Result<(), Crashed> {
        let chain_id = self.genesis.chain_id.clone();
        let behaviour = self.nodes[id].behaviour;
        let bytes = vote.sign_bytes(&chain_id);
        let Some(signature) = self.sign_as(id, Hrs::of_vote(&vote), bytes, false)? else {
            return Ok(());
        };
        let signed = SignedVote {
            vote: vote.clone(),
            signature,
        };
        match behaviour {
            Some(Behaviour::Equivocate) => {
                let mut other = vote.clone();
                other.block_id = match vote.block_id {
                    Some(_) => None,
                    None => Some(self.random_block_id()),
                };
                let other_signed = SignedVote {
                    signature: self.nodes[id].key.sign(&other.sign_bytes(&chain_id)),
                    vote: other,
                };
                let v = &vote;
                self.record.equivocations.insert((
                    v.height,
                    v.round,
                    v.vote_type,
                    v.validator_index,
                ));
                // Both halves to everyone, in a random order per peer.
                for to in 0..self.nodes.len() {
                    if to == id {
                        continue;
                    }
                    let (first, second) = if self.rng.next_u32().is_multiple_of(2) {
                        (&signed, &other_signed)
                    } else {
                        (&other_signed, &signed)
                    };
                    self.send(id, to, None, &ConsensusMessage::Vote(first.clone()));
                    self.send(id, to, None, &ConsensusMessage::Vote(second.clone()));
                }
                self.input(
                    id,
                    side,
                    EngineInput::Message(ConsensusMessage::Vote(signed)),
                )?;
                Ok(())
            }
            Some(Behaviour::InvalidVotes) => {
                let mut fake = vote;
                if fake.block_id.is_some() {
                    fake.block_id = Some(self.random_block_id());
                }
                let fake_signed = SignedVote {
                    signature: self.nodes[id].key.sign(&fake.sign_bytes(&chain_id)),
                    vote: fake,
                };
                let message = ConsensusMessage::Vote(fake_signed);
                self.broadcast(id, None, &message)?;
                self.input(id, side, EngineInput::Message(message))?;
                Ok(())
            }
            _ => self.publish(id, side, ConsensusMessage::Vote(signed)),
        }
    }

    fn sign_proposal(
        &mut self,
        id: NodeId,
        side: usize,
        proposal: basalt_consensus::types::Proposal,
        block: basalt_consensus::types::Block,
    ) -> Result<(), Crashed> {
        let chain_id = self.genesis.chain_id.clone();
        let behaviour = self.nodes[id].behaviour;
        let bytes = proposal.sign_bytes(&chain_id);
        let Some(signature) = self.sign_as(id, Hrs::of_proposal(&proposal), bytes, false)? else {
            return Ok(());
        };
        self.record.proposed.insert(*proposal.block_id());
        let message = ConsensusMessage::Proposal(ProposalMessage {
            signed: SignedProposal {
                proposal: proposal.clone(),
                signature,
            },
            block: block.clone(),
        });
        if behaviour == Some(Behaviour::Equivocate) {
            // A second, different block for the odd-numbered peers.
            let chain = self.chain_of(id, side).clone();
            let mut txs = block.txs().to_vec();
            txs.extend(Tx::new(b"equivocation".to_vec()).ok());
            let proposer = block.header().proposer_address;
            let time = block.header().time_ms;
            if let Some(other_block) =
                app::build_block(&mut self.genesis, &chain, proposer, time, txs, vec![])
            {
                if let Ok(other) = basalt_consensus::types::Proposal::new(
                    proposal.height(),
                    proposal.round(),
                    proposal.pol_round(),
                    other_block.id(),
                ) {
                    self.record.proposed.insert(other_block.id());
                    let other_message = ConsensusMessage::Proposal(ProposalMessage {
                        signed: SignedProposal {
                            signature: self.nodes[id].key.sign(&other.sign_bytes(&chain_id)),
                            proposal: other,
                        },
                        block: other_block,
                    });
                    for to in 0..self.nodes.len() {
                        if to != id {
                            let m = if to % 2 == 0 {
                                &message
                            } else {
                                &other_message
                            };
                            self.send(id, to, None, m);
                        }
                    }
                    self.input(id, side, EngineInput::Message(message))?;
                    return Ok(());
                }
            }
        }
        self.publish(id, side, message)
    }

    /// Signs for node `id`. Honest nodes go through the node's own double-sign rule
    /// ([`LastSignState::permit`]), whose new state is persisted (a crash point) before the signature is
    /// used; `None` means it refused. Byzantine nodes sign anything.
    fn sign_as(
        &mut self,
        id: NodeId,
        hrs: Hrs,
        sign_bytes: Vec<u8>,
        replaying: bool,
    ) -> Result<Option<basalt_consensus::types::Signature>, Crashed> {
        let key = self.nodes[id].key.clone();
        if self.nodes[id].behaviour.is_some() {
            return Ok(Some(key.sign(&sign_bytes)));
        }
        self.step(id)?;
        match self.nodes[id].last_signed.permit(hrs, &sign_bytes) {
            Ok(SignPermit::Repeat(signature)) => Ok(Some(signature)),
            Ok(SignPermit::New) => {
                let signature = key.sign(&sign_bytes);
                let state = LastSignState::after_signing(hrs, signature, sign_bytes);
                let node = &mut self.nodes[id];
                node.persisted.sign_state_file = encode_state(&state);
                node.last_signed = state;
                Ok(Some(signature))
            }
            Err(refusal) => {
                self.refused(id, &refusal, replaying);
                Ok(None)
            }
        }
    }

    /// The signer refused. During WAL replay a *regression* is expected: the engine re-requests an earlier
    /// step whose signed message is itself in the WAL and is replayed next (CometBFT behaves the same).
    /// Anything else means the engine asked an honest signer for something conflicting.
    fn refused(&mut self, id: NodeId, error: &SignRefusal, replaying: bool) {
        let expected = replaying && matches!(error, SignRefusal::Regression { .. });
        if !expected {
            self.record.double_sign_refusals += 1;
            let note = format!(
                "t={} node {id} signer refused: {error} (replaying: {replaying})",
                self.now_ms
            );
            self.record.notes.push(note);
        }
    }

    /// Broadcasts an own signed message, remembers it for re-gossip and feeds it back to the engine.
    fn publish(
        &mut self,
        id: NodeId,
        side: usize,
        message: ConsensusMessage,
    ) -> Result<(), Crashed> {
        let split = (self.nodes[id].engines.len() > 1).then_some(side);
        self.broadcast(id, split, &message)?;
        self.nodes[id].own_messages.push((side, message.clone()));
        self.input(id, side, EngineInput::Message(message))?;
        Ok(())
    }

    fn broadcast(
        &mut self,
        id: NodeId,
        side: Option<usize>,
        message: &ConsensusMessage,
    ) -> Result<(), Crashed> {
        self.step(id)?;
        self.broadcast_plain(id, side, message);
        Ok(())
    }

    fn new_publish(&mut self) -> u64 {
        self.publishes += 1;
        self.publishes
    }

    /// Schedules `make()` once per delivery the link makes of one message from `from` to `to` (none
    /// across a partition; with `once`, duplicates are dropped, as on a stream), delays drawn from the
    /// traffic stream (transactions, sync, attacks: see `traffic_rng`).
    fn send_traffic(&mut self, from: NodeId, to: NodeId, once: bool, make: impl Fn() -> Event) {
        if !self.partition.connected(from, to) {
            return;
        }
        let mut delays = network::deliveries(&mut self.traffic_rng, &self.link);
        if once {
            delays.truncate(1);
        }
        for delay in delays {
            let at = self.now_ms + delay;
            self.schedule(at, make());
        }
    }

    fn send(&mut self, from: NodeId, to: NodeId, side: Option<usize>, message: &ConsensusMessage) {
        if !self.partition.connected(from, to) {
            return;
        }
        let bytes = Rc::new(message.to_bytes());
        let publish = self.new_publish();
        for delay in network::deliveries(&mut self.rng, &self.link) {
            let at = self.now_ms + delay;
            self.schedule(
                at,
                Event::Deliver {
                    to,
                    from,
                    side,
                    bytes: bytes.clone(),
                    publish,
                },
            );
        }
    }

    fn decided(
        &mut self,
        id: NodeId,
        side: usize,
        _round: Round,
        block: basalt_consensus::types::Block,
        commit: basalt_consensus::types::Commit,
    ) -> Result<(), Crashed> {
        let height = block.height();
        let chain = self.chain_of(id, side).clone();
        if !app::validate(&mut self.genesis, &chain, &block).is_valid() {
            return Ok(());
        }
        let committed: Vec<DuplicateVoteEvidence> = block.evidence().to_vec();
        self.nodes[id]
            .evidence_pool
            .retain(|e| !committed.contains(e));
        if self.nodes[id].behaviour == Some(Behaviour::SplitBrain) {
            self.nodes[id].side_chains[side]
                .blocks
                .push((block, commit));
        } else {
            self.nodes[id].persisted.chain.blocks.push((block, commit));
        }
        self.nodes[id].own_messages.retain(|(s, _)| *s != side);
        if side == 0 {
            self.nodes[id].seen.clear();
        }
        let next = Height(height.0 + 1);
        let set = self.genesis.set_for(next);
        let next_set = self.genesis.set_for(Height(next.0 + 1));
        let chain = self.chain_of(id, side).clone();
        let genesis = &mut self.genesis;
        let mut validator = |b: &basalt_consensus::types::Block| app::validate(genesis, &chain, b);
        let outputs = self.nodes[id].engines[side]
            .start_height(next, set, Some(next_set), &mut validator)
            .unwrap_or_default();
        self.handle_outputs(id, side, outputs)
    }

    fn gossip(&mut self, id: NodeId) {
        self.nodes[id].answered.clear();
        match self.nodes[id].behaviour {
            Some(Behaviour::Garbage) => self.send_garbage(id),
            _ => {
                // Byzantine nodes re-gossip only their own messages of the current and previous round
                // (honest ones: `gossip_honest`) and their Status, so that peers' blocks reach them.
                let node = &self.nodes[id];
                let mut messages: Vec<(usize, ConsensusMessage)> = node
                    .own_messages
                    .iter()
                    .filter(|(side, m)| {
                        let current = node.engines.get(*side).map_or(Round(0), Engine::round);
                        m.round().is_none_or(|r| r.0 + 1 >= current.0)
                    })
                    .cloned()
                    .collect();
                for (side, engine) in node.engines.iter().enumerate() {
                    let status = ConsensusMessage::Status {
                        height: engine.height(),
                        round: engine.round(),
                    };
                    messages.push((side, status));
                }
                let split = self.nodes[id].engines.len() > 1;
                for (side, message) in messages {
                    // Split-brain nodes re-gossip only within the side of each message.
                    self.broadcast_plain(id, split.then_some(side), &message);
                }
            }
        }
    }

    fn broadcast_plain(&mut self, id: NodeId, side: Option<usize>, message: &ConsensusMessage) {
        for to in 0..self.nodes.len() {
            // A split-brain side talks only to its own honest node (0 or 1) and the other byzantine nodes.
            if to != id && side.is_none_or(|s| !(to < 2 && to != s)) {
                self.send(id, to, side, message);
            }
        }
    }

    fn send_garbage(&mut self, id: NodeId) {
        let chain_id = self.genesis.chain_id.clone();
        let height = Height(self.nodes[0].persisted.chain.height() + 1);
        for to in 0..self.nodes.len() {
            if to == id || !self.partition.connected(id, to) {
                continue;
            }
            let len = (self.rng.next_u32() % 300) as usize;
            let mut junk = vec![0u8; len];
            self.rng.fill_bytes(&mut junk);
            // A vote naming validator index (id + 1) mod n, signed with our key: a forgery (bad signature)
            // when the index is another validator's; when it happens to be our own, a valid equivocation for
            // a made-up block, which fills our per-validator vote slots at the receiver (the vote keeper must
            // still count our real vote for the value the others back).
            let vote = Vote {
                vote_type: basalt_consensus::VoteType::Prevote,
                height,
                round: Round(0),
                block_id: Some(self.random_block_id()),
                validator_index: basalt_consensus::ValidatorIndex(
                    ((id + 1) % self.nodes.len()) as u32,
                ),
            };
            let forged = ConsensusMessage::Vote(SignedVote {
                signature: self.nodes[id].key.sign(&vote.sign_bytes(&chain_id)),
                vote: vote.clone(),
            });
            let mut flipped = forged.to_bytes();
            let pos = (self.rng.next_u32() as usize) % flipped.len();
            flipped[pos] ^= 0x40;
            // The same forgery for the next height and for far heights: a node must check what it keeps
            // for later (next height: against the next set) and refuse what it cannot check at all.
            let far = height.0 + 2 + self.rng.next_u64() % 1_000_000;
            let later: Vec<Vec<u8>> = [height.0 + 1, far, u64::MAX / 4]
                .into_iter()
                .map(|h| {
                    let vote = Vote {
                        height: Height(h),
                        ..vote.clone()
                    };
                    ConsensusMessage::Vote(SignedVote {
                        signature: self.nodes[id].key.sign(&vote.sign_bytes(&chain_id)),
                        vote,
                    })
                    .to_bytes()
                })
                .collect();
            // False Status: stuck in an early round of the current height (so peers relay that round's
            // votes — bounded, and never anything unverified), and far ahead of everyone.
            let lies = [
                ConsensusMessage::Status {
                    height,
                    round: Round(self.rng.next_u32() % 3),
                },
                ConsensusMessage::Status {
                    height: Height(u64::MAX),
                    round: Round(u32::MAX),
                },
            ];
            let lies = lies.iter().map(ConsensusMessage::to_bytes);
            self.garbage_evidence(id, to, height);
            if self.nodes[to].behaviour.is_none() && self.traffic_rng.next_u32().is_multiple_of(4) {
                self.garbage_txs(id, to);
            }
            let all = [junk, forged.to_bytes(), flipped].into_iter();
            for bytes in all.chain(later).chain(lies) {
                let at = self.now_ms + 1 + self.rng.next_u64() % 20;
                let publish = self.new_publish();
                self.schedule(
                    at,
                    Event::Deliver {
                        to,
                        from: id,
                        side: None,
                        bytes: Rc::new(bytes),
                        publish,
                    },
                );
            }
        }
    }

    /// A vote (or evidence) from a garbage node that names another validator than the sender: signed with
    /// the sender's key, so its signature cannot verify (every such vote is one of the garbage node's
    /// forgeries).
    fn is_forged_vote(&self, from: NodeId, message: &ConsensusMessage) -> bool {
        let signed = match message {
            ConsensusMessage::Vote(signed) => signed,
            ConsensusMessage::Evidence(evidence) => evidence.vote_a(),
            _ => return false,
        };
        if self.nodes[from].behaviour != Some(Behaviour::Garbage) {
            return false;
        }
        let sender = self.nodes[from].key.public_key();
        // Garbage nodes run only where membership and order stay the genesis set's (no set changes).
        self.genesis
            .set_for(Height(1))
            .get(signed.vote.validator_index)
            .is_none_or(|v| v.public_key != sender)
    }

    fn random_block_id(&mut self) -> BlockId {
        let mut h = [0u8; 32];
        self.rng.fill_bytes(&mut h);
        BlockId { hash: Hash(h) }
    }

    fn finish(mut self) -> SimReport {
        let honest: Vec<NodeId> = self
            .nodes
            .iter()
            .filter(|n| n.behaviour.is_none())
            .map(|n| n.id)
            .collect();
        let reached: BTreeMap<NodeId, u64> = honest
            .iter()
            .map(|&i| (i, self.nodes[i].persisted.chain.height()))
            .collect();
        let expectations = Expectations {
            honest: &honest,
            reached: &reached,
            target: self.target,
            first_height_after_gst: self
                .target
                .saturating_sub(self.config.target_height)
                .saturating_add(2),
            gst_ms: self.config.gst_ms,
            round_bound: self.config.powers.len() as u32 + 2,
            expect_liveness: !self.config.partition_forever,
        };
        let mut violations = checker::check(&self.record, &expectations);
        if !self.config.set_changes.is_empty() {
            violations.extend(self.check_stored_sets(&honest));
        }
        let final_states = self
            .nodes
            .iter()
            .map(|n| match n.core.as_ref().map(DriverCore::engine).or(n.engines.first()) {
                Some(e) => format!(
                    "node {} (validator {:?}) {:?}: height {} round {} step {:?} locked {:?} valid {:?}",
                    n.id,
                    e.driver().own_index(),
                    n.behaviour,
                    e.height(),
                    e.round(),
                    e.driver().step(),
                    e.driver().state().locked,
                    e.driver().state().valid
                ),
                None => format!("node {} {:?}: down", n.id, n.behaviour),
            })
            .collect();
        SimReport {
            trace_hash: self.trace,
            violations,
            record: self.record,
            events: self.processed,
            end_ms: self.now_ms,
            final_states,
            config: self.config,
        }
    }
}

impl Sim {
    /// Each honest node's stored chain against the sets the application's updates shape: every block
    /// names the set of its height and of the next, and its stored commit (the engine's own, or the
    /// one block sync fetched) is a +2/3 commit of its height's set — a node that judged a height
    /// with the wrong set, or stored the wrong commit across a change, would store what this refuses.
    /// Counts the precommits of validators absent from the genesis set, so a sweep shows they sign.
    fn check_stored_sets(&mut self, honest: &[NodeId]) -> Vec<Violation> {
        let genesis_set = self.genesis.set_for(Height(1));
        let mut violations = Vec::new();
        for &node in honest {
            let blocks = self.nodes[node].persisted.chain.blocks.clone();
            for (block, commit) in &blocks {
                let height = block.height();
                let set = self.genesis.set_for(height);
                let next = self.genesis.set_for(Height(height.0 + 1));
                let header = block.header();
                let reason = if header.validators_hash != set.hash() {
                    Some("validators_hash is not the set of its height".to_owned())
                } else if header.next_validators_hash != next.hash() {
                    Some("next_validators_hash is not the set of the next height".to_owned())
                } else {
                    commit
                        .verify_for(&self.genesis.chain_id, &set, height, &block.id())
                        .err()
                        .map(|e| format!("stored commit: {e}"))
                };
                if let Some(reason) = reason {
                    violations.push(Violation::WrongSet {
                        node,
                        height,
                        reason,
                    });
                    continue;
                }
                let newcomers = commit
                    .signatures
                    .iter()
                    .zip(set.validators())
                    .filter(|(sig, v)| {
                        matches!(sig, basalt_consensus::types::CommitSig::ForBlock(_))
                            && genesis_set.index_of(&v.address).is_none()
                    })
                    .count();
                self.record.newcomer_signatures += newcomers as u64;
            }
        }
        violations
    }
}

/// A configuration the simulator cannot run is a bug in the test itself, so it aborts the test loudly.
fn unreachable_config(reason: &str) -> ! {
    #[allow(clippy::panic)]
    {
        panic!("simulation misconfigured: {reason}")
    }
}
