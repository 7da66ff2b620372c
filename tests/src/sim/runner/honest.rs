//! Honest nodes run the node's own driver core ([`DriverCore`]); this is the [`Host`] it runs on in the
//! simulation: the simulated WAL, block store, signer state and network, with crash points where the node
//! has I/O. What the core decides — what is logged, signed, sent, judged, replayed, in which order — is
//! the node's code, not a model of it.

use basalt_consensus::core::Validity;
use basalt_consensus::engine::{ConsensusMessage, Engine, EngineConfig, EngineError};
use basalt_consensus::types::{
    Block, Commit, DuplicateVoteEvidence, Proposal, ProposalMessage, SignedProposal, SignedVote,
    Tx, ValidatorSet, Vote,
};
use basalt_consensus::{Height, Round, Timeout, TimeoutKind};
use basalt_node::durability::privval::Hrs;
use basalt_node::rpc::ConsensusEvent;
use basalt_node::runtime::chain::{evidence_window, EvidenceRefused};
use basalt_node::runtime::core::{DriverCore, Host};
use basalt_node::runtime::walrec::WalRecord;
use basalt_p2p::Verdict;
use rand_core::RngCore;

use super::{app, traffic, unreachable_config, Crashed, Event, NodeId, Sim, GENESIS_TIME_MS};

/// Why an honest node's work stopped: a crash the simulation injected, or an engine refusal that only
/// a broken chain could cause (recorded, then the node crashes).
#[derive(Debug)]
pub(super) enum Halt {
    Crashed,
    Engine(EngineError),
}

impl From<Crashed> for Halt {
    fn from(_: Crashed) -> Halt {
        Halt::Crashed
    }
}

impl From<EngineError> for Halt {
    fn from(e: EngineError) -> Halt {
        Halt::Engine(e)
    }
}

/// The simulation as seen by one honest node's core.
pub(super) struct SimHost<'a> {
    sim: &'a mut Sim,
    id: NodeId,
}

impl Sim {
    /// Runs `work` on honest node `id`'s core (taken out of the node while it runs: the host only
    /// schedules events, so nothing reaches the same core meanwhile). A halt crashes the node.
    pub(super) fn with_core<R>(
        &mut self,
        id: NodeId,
        work: impl FnOnce(&mut DriverCore<NodeId>, &mut SimHost<'_>) -> Result<R, Halt>,
    ) -> Option<R> {
        let mut core = self.nodes[id].core.take()?;
        let result = work(&mut core, &mut SimHost { sim: self, id });
        match result {
            Ok(r) => {
                self.nodes[id].core = Some(core);
                Some(r)
            }
            Err(halt) => {
                if let Halt::Engine(e) = halt {
                    let note = format!("t={} node {id} engine refused: {e}", self.now_ms);
                    self.record.notes.push(note);
                }
                let down = self.nodes[id].crash_budget.take().map_or(100, |(_, d)| d);
                self.crash(id, down);
                None
            }
        }
    }

    pub(super) fn new_engine(&mut self, id: NodeId) -> Engine {
        let height = Height(self.nodes[id].persisted.chain.height() + 1);
        let set = self.genesis.set_for(height);
        let next_set = self.genesis.set_for(Height(height.0 + 1));
        let address = self.nodes[id].key.public_key().address();
        match Engine::new(
            self.genesis.chain_id.clone(),
            EngineConfig::default(),
            Some(address),
            height,
            set,
            Some(next_set),
        ) {
            Ok(engine) => engine,
            Err(e) => unreachable_config(&format!("engine: {e}")),
        }
    }

    /// Starts (or restarts) an honest node: a fresh core at the height after its stored blocks.
    pub(super) fn boot_honest(&mut self, id: NodeId) {
        // As the node with block sync enabled and peers configured: it starts in block sync, asks its
        // peers for their stored range, fetches what it lacks and joins consensus once caught up
        // (`sync.rs`), replaying its WAL then.
        self.wal_reopen(id);
        self.signer_reopen(id);
        let engine = self.new_engine(id);
        let mut core = DriverCore::new(engine);
        core.enter_sync();
        self.nodes[id].core = Some(core);
        self.nodes[id].mempool = Some(traffic::mempool());
        let regossip = super::sync::regossip_config(self.config.timeouts.gossip_ms);
        let state = super::sync::SyncState::new(self.now_ms, self.instant(), regossip);
        self.nodes[id].sync_state = Some(state);
        self.sync_tick(id);
    }

    /// A message delivered to an honest node: judged by the core. Returns whether it was accepted.
    pub(super) fn deliver_honest(
        &mut self,
        to: NodeId,
        from: NodeId,
        message: ConsensusMessage,
    ) -> bool {
        let Some(judgement) =
            self.with_core(to, |core, host| core.on_message(host, &from, message))
        else {
            return false;
        };
        if judgement.verdict == Verdict::Reject {
            self.record.rejected_messages += 1;
        }
        if judgement.offence.is_some() && self.nodes[from].behaviour.is_none() {
            // An honest node was penalised: the edge punished what it could not have refused.
            self.record.honest_penalised.push((to, from, self.now_ms));
        }
        judgement.verdict == Verdict::Accept
    }

    /// The height an honest node's core works on.
    pub(super) fn honest_height(&self, id: NodeId) -> Option<Height> {
        self.nodes[id].core.as_ref().map(|c| c.engine().height())
    }

    /// Honest re-gossip: what the node's driver re-publishes while a round is stuck, and its Status.
    pub(super) fn gossip_honest(&mut self, id: NodeId) {
        let Some(core) = self.nodes[id].core.as_ref() else {
            return;
        };
        let (position, syncing) = (
            (core.engine().height(), core.engine().round()),
            core.syncing(),
        );
        // Our messages are re-sent at the node's cadence (only while consensus is stuck, never while
        // block syncing); the Status goes out every tick (the node's separate status tick).
        let now = self.instant();
        let due = self.nodes[id]
            .sync_state
            .as_mut()
            .and_then(|state| state.regossip.tick(position, syncing, now));
        let Some(core) = self.nodes[id].core.as_ref() else {
            return;
        };
        let mut messages = due.map_or_else(Vec::new, |with_proposals| {
            core.regossip_messages(with_proposals)
        });
        messages.push(ConsensusMessage::Status {
            height: position.0,
            round: position.1,
        });
        for message in messages {
            self.broadcast_plain(id, None, &message);
        }
        self.gossip_txs(id);
        self.sync_tick(id);
    }
}

impl Host for SimHost<'_> {
    type Peer = NodeId;
    type Error = Halt;

    fn validity(&mut self, block: &Block) -> Validity {
        let sim = &mut *self.sim;
        app::validate(&mut sim.genesis, &sim.nodes[self.id].persisted.chain, block)
    }

    fn log_input(&mut self, _height: Height, record: Vec<u8>) -> Result<(), Halt> {
        let record = match WalRecord::from_bytes(&record) {
            Ok(record) => record,
            Err(e) => unreachable_config(&format!("WAL record does not decode: {e}")),
        };
        Ok(self.sim.wal_append(self.id, record)?)
    }

    fn sign_vote(&mut self, vote: Vote, replaying: bool) -> Result<Option<ConsensusMessage>, Halt> {
        let bytes = vote.sign_bytes(&self.sim.genesis.chain_id);
        let Some(signature) = self
            .sim
            .sign_as(self.id, Hrs::of_vote(&vote), bytes, replaying)?
        else {
            return Ok(None);
        };
        let message = ConsensusMessage::Vote(SignedVote { vote, signature });
        self.log_own(&message)?;
        Ok(Some(message))
    }

    fn sign_proposal(
        &mut self,
        proposal: Proposal,
        block: Block,
        replaying: bool,
    ) -> Result<Option<ConsensusMessage>, Halt> {
        let bytes = proposal.sign_bytes(&self.sim.genesis.chain_id);
        let Some(signature) =
            self.sim
                .sign_as(self.id, Hrs::of_proposal(&proposal), bytes, replaying)?
        else {
            return Ok(None);
        };
        self.sim.record.proposed.insert(*proposal.block_id());
        let message = ConsensusMessage::Proposal(ProposalMessage {
            signed: SignedProposal {
                proposal,
                signature,
            },
            block,
        });
        self.log_own(&message)?;
        Ok(Some(message))
    }

    fn publish_own(&mut self, message: &ConsensusMessage) -> Result<(), Halt> {
        self.sim.broadcast(self.id, None, message)?;
        Ok(())
    }

    fn publish_evidence(&mut self, message: &ConsensusMessage) -> Result<(), Halt> {
        self.sim.broadcast_plain(self.id, None, message);
        Ok(())
    }

    fn schedule_timeout(&mut self, height: Height, timeout: Timeout) {
        let t = self.sim.config.timeouts;
        let base = match timeout.kind {
            TimeoutKind::Propose => t.propose_ms,
            TimeoutKind::Prevote | TimeoutKind::Precommit => t.vote_ms,
        };
        let at = self.sim.now_ms + base + t.delta_ms * u64::from(timeout.round.0);
        let incarnation = self.sim.nodes[self.id].incarnation;
        self.sim.schedule(
            at,
            Event::Timer {
                node: self.id,
                incarnation,
                side: None,
                height,
                timeout,
            },
        );
    }

    fn schedule_start(&mut self, height: Height) {
        // The simulation's timeout_commit is zero: the next height starts at once, after what is queued.
        let incarnation = self.sim.nodes[self.id].incarnation;
        let at = self.sim.now_ms;
        self.sim.schedule(
            at,
            Event::StartHeight {
                node: self.id,
                incarnation,
                height,
            },
        );
    }

    fn wait_for_txs(&mut self, _height: Height) -> bool {
        // The simulated validators make a block every height (`create_empty_blocks = true`).
        false
    }

    fn schedule_empty_block(&mut self, _height: Height) {}

    fn build_block(
        &mut self,
        _height: Height,
        _round: Round,
        evidence: Vec<DuplicateVoteEvidence>,
        complete_last_commit: &dyn Fn(&Commit) -> Commit,
    ) -> Result<Option<Block>, Halt> {
        let sim = &mut *self.sim;
        // The mempool's transactions first, then opaque filler as before the mempool was simulated (the
        // draws keep recorded seeds' schedules as they were).
        let mut txs = sim.nodes[self.id]
            .mempool
            .as_ref()
            .map(|m| m.reap(usize::MAX, traffic::BLOCK_TXS))
            .unwrap_or_default();
        let count = sim.rng.next_u32() % 4;
        for _ in 0..count {
            let mut bytes = vec![0u8; 24];
            sim.rng.fill_bytes(&mut bytes);
            txs.extend(Tx::new(bytes).ok());
        }
        let node = &sim.nodes[self.id];
        let proposer = node.key.public_key().address();
        let now = GENESIS_TIME_MS + sim.now_ms;
        let last_commit = node
            .persisted
            .chain
            .blocks
            .last()
            .map(|(_, c)| complete_last_commit(c));
        Ok(app::build_block_with(
            &mut sim.genesis,
            &node.persisted.chain,
            last_commit,
            proposer,
            now,
            txs,
            evidence,
        ))
    }

    fn commit(
        &mut self,
        round: Round,
        block: Block,
        commit: Commit,
        _syncing: bool,
    ) -> Result<(), Halt> {
        let id = self.id;
        let sim = &mut *self.sim;
        let height = block.height();
        // A decision proven by a commit alone is checked against our chain like any proposal (the node
        // stops with a diverged-state error; here the node records it and stays at this height).
        if !app::validate(&mut sim.genesis, &sim.nodes[id].persisted.chain, &block).is_valid() {
            let note = format!(
                "t={} node {id} rejected decided block at height {height}",
                sim.now_ms
            );
            sim.record.notes.push(note);
            sim.record.rejected_messages += 1;
            return Ok(());
        }
        sim.step(id)?; // block store write
        let now = sim.instant();
        if let Some(state) = sim.nodes[id].sync_state.as_mut() {
            state.regossip.progressed(now); // as the node after a commit
        }
        if let Some(mempool) = sim.nodes[id].mempool.as_ref() {
            // The node's post-commit update; the simulated check has no state to recheck against.
            mempool.update(block.txs(), |_, result| result.is_ok());
        }
        sim.count_client_txs(block.txs());
        let decisions = sim.record.decisions.entry(height).or_default();
        decisions.insert(id, (block.id(), round, sim.now_ms));
        for e in block.evidence() {
            let v = &e.vote_a().vote;
            sim.record.evidence_committed.insert((
                v.height,
                v.round,
                v.vote_type,
                v.validator_index,
            ));
        }
        let node = &mut sim.nodes[id];
        node.persisted.chain.blocks.push((block, commit));
        // The engine replays the next height's buffered messages when it starts that height, so they
        // stay in the WAL: a restart must see exactly the inputs the engine saw (the node keeps the next
        // height's records too).
        let next = Height(height.0 + 1);
        node.persisted.wal.retain(|r| r.height() == next);
        node.seen.clear();
        Ok(())
    }

    fn next_height(&self) -> Height {
        Height(self.sim.nodes[self.id].persisted.chain.height() + 1)
    }

    fn validators_at(&mut self, height: Height) -> ValidatorSet {
        self.sim.genesis.set_for(height)
    }

    /// The node's rules ([`basalt_node::runtime::chain::ChainState::check_evidence`]) over the
    /// simulated chain: height tests first, then the committed-offence index, then signatures.
    fn check_evidence(
        &mut self,
        evidence: &DuplicateVoteEvidence,
        height: u64,
    ) -> Result<(), EvidenceRefused> {
        let of = evidence.height().0;
        // The node's own height rule; the committed-evidence lookup below reads the simulated store.
        evidence_window(of, self.next_height().0, height, 1)?;
        let chain = &self.sim.nodes[self.id].persisted.chain;
        let key = evidence.offence_key();
        if let Some(at) = chain
            .blocks
            .iter()
            .find(|(b, _)| b.evidence().iter().any(|e| e.offence_key() == key))
            .map(|(b, _)| b.height().0)
        {
            return Err(EvidenceRefused::AlreadyCommitted { of, at });
        }
        let set = self.sim.genesis.set_for(Height(of));
        Ok(evidence.verify(&self.sim.genesis.chain_id, &set)?)
    }

    fn peer_claims(&mut self, peer: &NodeId, latest: u64, syncing: bool) {
        self.sim.sync_claim(self.id, *peer, latest, syncing);
    }

    fn detected(&mut self, evidence: &DuplicateVoteEvidence) {
        let v = &evidence.vote_a().vote;
        self.sim
            .record
            .evidence_reported
            .insert((self.id, (v.height, v.round, v.vote_type, v.validator_index)));
    }

    fn settled(&mut self, _engine: &Engine, _syncing: bool) {}

    /// Announcements for RPC subscribers: the simulation has none.
    fn wants_consensus_events(&self) -> bool {
        false
    }

    fn consensus_event(&mut self, _event: ConsensusEvent) {}
}

impl SimHost<'_> {
    /// Our signed message is appended to the WAL (a crash point) before it may leave, as the node's
    /// signer does it alongside the signer-state write.
    fn log_own(&mut self, message: &ConsensusMessage) -> Result<(), Halt> {
        let record = WalRecord::Message(message.clone());
        Ok(self.sim.wal_append(self.id, record)?)
    }
}
