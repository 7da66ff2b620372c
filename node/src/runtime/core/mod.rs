//! The driver's deterministic core: what the node does with every consensus input, with no I/O.
//!
//! [`DriverCore`] owns the consensus engine and the state that decides what happens next — the order in
//! which engine outputs are acted on ([`OutputQueue`]), which inputs reach the WAL, WAL replay, our own
//! signed messages, where peers say they are, the evidence pool — and reaches the world only through
//! [`Host`]: the WAL, the signer, the network, timers, the chain and the application. The node's tokio
//! shell ([`super::driver`]) implements [`Host`] over RocksDB, files and libp2p; tests implement it in
//! memory, so the rules below run, unchanged, where every input and its timing is chosen by the test.
//!
//! The rules a peer meets here (issue 14):
//! - Nothing a peer sends is written to the WAL, kept or forwarded before the engine checked it
//!   (signature, validator membership, height and round window); inputs of heights other than the current
//!   and the next are never logged.
//! - A `Status` is a hint about that peer: recorded, never forwarded and never answered to the mesh.
//! - A peer is penalised only for what it could have checked itself (bad signatures, invalid blocks); a
//!   message outside our round window or for a height we cannot judge is ignored, not punished.

use basalt_consensus::core::Validity;
use basalt_consensus::engine::{
    ConsensusMessage, Engine, EngineError, EngineInput, EngineOutput, OutputQueue, PeerPositions,
};
use basalt_consensus::types::{Block, Commit, DuplicateVoteEvidence, Proposal, ValidatorSet, Vote};
use basalt_consensus::{Height, Round, Timeout, ValidatorIndex};
use basalt_p2p::{Misbehaviour, Verdict};

use self::events::RoundWatch;
use super::chain::EvidenceRefused;
use super::evidence::EvidencePool;
use super::walrec::WalRecord;
use crate::rpc::backend::ConsensusEvent;

/// The most peers whose consensus position is tracked (connections are capped lower by the transport).
pub const MAX_TRACKED_PEERS: usize = 1024;

/// What the core needs from the world. Every method may fail with the host's error, which stops the
/// driver (the node: a storage or signer failure; a simulation: a crash it injected).
pub trait Host {
    /// How a peer is named (libp2p's `PeerId` in the node).
    type Peer: Ord + Clone;
    /// Why the host could not do what the core asked (or the engine refused to start a height, which
    /// only a broken chain or store can cause).
    type Error: From<EngineError>;

    /// Whether `block` may be voted for at our chain's next height (chain, application, clock).
    fn validity(&mut self, block: &Block) -> Validity;
    /// Appends an accepted input's WAL record; it becomes durable with the next signature.
    fn log_input(&mut self, height: Height, record: Vec<u8>) -> Result<(), Self::Error>;
    /// Signs `vote` once our signer state and the WAL (with this vote) are durable: the signed vote,
    /// or `None` when the signer refused (it is the double-sign protection at work).
    fn sign_vote(
        &mut self,
        vote: Vote,
        replaying: bool,
    ) -> Result<Option<ConsensusMessage>, Self::Error>;
    /// As [`Host::sign_vote`], for our proposal of `block`.
    fn sign_proposal(
        &mut self,
        proposal: Proposal,
        block: Block,
        replaying: bool,
    ) -> Result<Option<ConsensusMessage>, Self::Error>;
    /// Sends one of our just-signed messages to the mesh.
    fn publish_own(&mut self, message: &ConsensusMessage) -> Result<(), Self::Error>;
    /// Sends evidence we found to the mesh.
    fn publish_evidence(&mut self, message: &ConsensusMessage) -> Result<(), Self::Error>;
    /// Fires `timeout` of `height` after its configured duration ([`DriverCore::timeout`]).
    fn schedule_timeout(&mut self, height: Height, timeout: Timeout);
    /// Calls [`DriverCore::commit_timeout_elapsed`] for `height` after `timeout_commit`.
    fn schedule_start(&mut self, height: Height);
    /// Whether `height` may wait for a transaction instead of starting now: the node makes no empty
    /// blocks (`create_empty_blocks = false`) or makes them only every `create_empty_blocks_interval`
    /// (non-zero: then [`Host::schedule_empty_block`] ends the wait), the mempool is empty, and the block
    /// before did not change the application state — else `height` must be made to carry the new app
    /// hash (CometBFT's "proof block"), as must the first block.
    fn wait_for_txs(&mut self, height: Height) -> bool;
    /// Calls [`DriverCore::start_height`] for a waiting `height` after `create_empty_blocks_interval`,
    /// if one is configured (none: it waits for a transaction or a validator's message).
    fn schedule_empty_block(&mut self, height: Height);
    /// Our block for `height`/`round` with `evidence`, its last commit completed by
    /// `complete_last_commit`; `None` when this node does not propose (no signer).
    fn build_block(
        &mut self,
        height: Height,
        round: Round,
        evidence: Vec<DuplicateVoteEvidence>,
        complete_last_commit: &dyn Fn(&Commit) -> Commit,
    ) -> Result<Option<Block>, Self::Error>;
    /// Executes and commits a decided block (`syncing`: it came by block sync).
    fn commit(
        &mut self,
        round: Round,
        block: Block,
        commit: Commit,
        syncing: bool,
    ) -> Result<(), Self::Error>;
    /// The height after our latest committed block.
    fn next_height(&self) -> Height;
    /// The validator set of `height`.
    fn validators_at(&mut self, height: Height) -> ValidatorSet;
    /// Whether `evidence` may be committed in a block at `height` (cheap height tests first).
    fn check_evidence(
        &mut self,
        evidence: &DuplicateVoteEvidence,
        height: u64,
    ) -> Result<(), EvidenceRefused>;
    /// A peer says its latest block is `latest`: block sync may ask it for what we lack (not while
    /// `syncing`, which asks on its own schedule).
    fn peer_claims(&mut self, peer: &Self::Peer, latest: u64, syncing: bool);
    /// The engine saw a validator sign two conflicting votes (the evidence goes to our pool and the
    /// mesh if it can still be committed).
    fn detected(&mut self, evidence: &DuplicateVoteEvidence);
    /// The engine's outputs of one input were all acted on (observers refresh their view).
    fn settled(&mut self, engine: &Engine, syncing: bool);
    /// Whether anyone listens to consensus events now: when nobody does, none is built (a vote
    /// event clones the vote, and votes arrive by the hundred per second).
    fn wants_consensus_events(&self) -> bool;
    /// Consensus did something CometBFT announces to subscribers (never while replaying or syncing).
    fn consensus_event(&mut self, event: ConsensusEvent);
}

/// What to tell the network about one gossiped message, and whether to penalise its sender.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Judgement {
    /// Forward, drop, or drop and penalise (gossipsub's validation result).
    pub verdict: Verdict,
    /// The sender's offence, if it sent something it could have refused itself.
    pub offence: Option<Misbehaviour>,
}

impl Judgement {
    /// Valid: forward it.
    pub const ACCEPT: Judgement = Judgement {
        verdict: Verdict::Accept,
        offence: None,
    };
    /// Not forwarded, nobody punished (stale, known, or not ours to judge).
    pub const IGNORE: Judgement = Judgement {
        verdict: Verdict::Ignore,
        offence: None,
    };
}

/// The deterministic part of the consensus driver (see the module docs).
pub struct DriverCore<P> {
    engine: Engine,
    /// Engine outputs not yet acted on, in the engine's order.
    outputs: OutputQueue,
    /// Our signed messages of the current height, re-gossiped while the round is stuck.
    own_messages: Vec<ConsensusMessage>,
    /// Where peers say they are: re-gossip relays the votes of earlier rounds they are still in.
    peer_positions: PeerPositions<P>,
    evidence: EvidencePool,
    replaying: bool,
    /// Our signed votes and the proposals in the WAL being replayed. When the engine asks for one of
    /// them again it gets that record back, wherever it sits in the log: a vote first signed during an
    /// earlier replay was appended after records the engine had not yet reached, and a signer that has
    /// since signed later steps refuses to hand it back — fed in log order, the engine would see it
    /// too late (a round later), miss the lock it had taken, and ask to sign against it.
    recorded_own: Vec<ConsensusMessage>,
    /// Blocks the engine asked for during WAL replay, built after it unless the WAL held them.
    deferred_builds: Vec<(Height, Round)>,
    /// Catching up by block sync: only decisions are acted on and nothing is logged or signed.
    syncing: bool,
    /// The next height, when it waits for a transaction ([`DriverCore::commit_timeout_elapsed`]).
    parked: Option<Height>,
    /// The engine's round state as last announced.
    watch: RoundWatch,
}

impl<P: Ord + Clone> DriverCore<P> {
    /// A core around `engine` (not started: see [`DriverCore::start`]).
    pub fn new(engine: Engine) -> Self {
        DriverCore {
            engine,
            outputs: OutputQueue::new(),
            own_messages: Vec::new(),
            peer_positions: PeerPositions::new(MAX_TRACKED_PEERS),
            evidence: EvidencePool::default(),
            replaying: false,
            recorded_own: Vec::new(),
            deferred_builds: Vec::new(),
            syncing: false,
            parked: None,
            watch: RoundWatch::default(),
        }
    }

    /// The next height, while it waits for a transaction.
    pub fn parked(&self) -> Option<Height> {
        self.parked
    }

    /// The engine (read only: every input goes through the core).
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Whether the node catches up by block sync.
    pub fn syncing(&self) -> bool {
        self.syncing
    }

    /// Our signed messages of the current height.
    pub fn own_messages(&self) -> &[ConsensusMessage] {
        &self.own_messages
    }

    /// Known evidence not yet committed.
    pub fn evidence(&self) -> &EvidencePool {
        &self.evidence
    }

    /// Leaves consensus for block sync: decisions are still applied, nothing else is acted on.
    pub fn enter_sync(&mut self) {
        self.syncing = true;
        self.parked = None;
    }

    /// Replaces the engine (block sync moved past its height).
    pub fn replace_engine(&mut self, engine: Engine) {
        self.engine = engine;
    }

    /// Forgets a disconnected peer's position.
    pub fn forget_peer(&mut self, peer: &P) {
        self.peer_positions.forget(peer);
    }

    /// Joins consensus with a fresh `engine` at its height: starts it, then replays `records` (that
    /// height's WAL, in order) through it. A vote or proposal the engine asks for that the WAL holds as
    /// ours is handed back from the record; anything else goes to the signer, which hands back the
    /// signature it gave last for the same sign bytes and refuses anything conflicting. Records of a
    /// height never acted on (logged a height earlier) may lead to first signatures here, as live. Blocks
    /// the engine asks for during replay are built after it, unless the WAL held the one we proposed.
    pub fn start<H: Host<Peer = P>>(
        &mut self,
        host: &mut H,
        engine: Engine,
        records: Vec<WalRecord>,
    ) -> Result<(), H::Error> {
        self.syncing = false;
        self.parked = None;
        self.engine = engine;
        self.own_messages.clear();
        self.deferred_builds.clear();
        self.replaying = true;
        self.recorded_own = recorded_own(&records, self.engine.driver().own_index());
        let replayed = self.replay(host, records);
        self.replaying = false;
        self.recorded_own.clear();
        let proposed_rounds = replayed?;
        for (height, round) in std::mem::take(&mut self.deferred_builds) {
            if !proposed_rounds.contains(&round) && height == self.engine.height() {
                self.build(host, height, round)?;
            }
        }
        host.settled(&self.engine, self.syncing);
        Ok(())
    }

    /// Starts the engine and feeds it the WAL's records; returns the rounds whose block the WAL held.
    fn replay<H: Host<Peer = P>>(
        &mut self,
        host: &mut H,
        records: Vec<WalRecord>,
    ) -> Result<Vec<Round>, H::Error> {
        let outputs = self.engine.start().map_err(H::Error::from)?;
        self.watch_engine(host);
        self.process(host, outputs)?;
        let own_index = self.engine.driver().own_index();
        let mut proposed_rounds = Vec::new();
        for record in records {
            let input = record.into_input();
            match &input {
                // Our own votes from before a restart are re-gossiped like new ones: the signer refuses
                // to sign an older step anew, so a vote lost on its way (the crash came before it was
                // re-sent) would otherwise reach no one and could stall the round for good.
                EngineInput::Message(message @ ConsensusMessage::Vote(vote))
                    if Some(vote.vote.validator_index) == own_index
                        && !self.own_messages.contains(message) =>
                {
                    self.own_messages.push(message.clone());
                }
                EngineInput::ProposeBlock { round, .. } => proposed_rounds.push(*round),
                _ => {}
            }
            match self.handle(host, input) {
                Ok(outputs) => self.process(host, outputs)?,
                Err(e) => tracing::debug!(error = %e, "WAL replay: input refused again"),
            }
        }
        Ok(proposed_rounds)
    }

    /// `timeout_commit` after the decision before `height` passed: starts `height`, unless it may wait
    /// for a transaction ([`Host::wait_for_txs`]; CometBFT's `create_empty_blocks = false`). Then it
    /// waits until the mempool has one ([`DriverCore::txs_available`]), the empty-block interval passes
    /// ([`Host::schedule_empty_block`]), or a validator's verified vote or proposal for it arrives
    /// (another validator started it; a forged one is refused by the engine and starts nothing).
    pub fn commit_timeout_elapsed<H: Host<Peer = P>>(
        &mut self,
        host: &mut H,
        height: Height,
    ) -> Result<(), H::Error> {
        if height != host.next_height() || self.engine.height() >= height {
            return Ok(());
        }
        if !self.syncing && host.wait_for_txs(height) {
            if self.parked != Some(height) {
                self.parked = Some(height);
                host.schedule_empty_block(height);
            }
            return Ok(());
        }
        self.start_height(host, height)
    }

    /// The mempool has transactions: a height waiting for them starts.
    pub fn txs_available<H: Host<Peer = P>>(&mut self, host: &mut H) -> Result<(), H::Error> {
        match self.parked {
            Some(height) => self.start_height(host, height),
            None => Ok(()),
        }
    }

    /// Starts `height` (after `timeout_commit` and perhaps a wait for transactions, or at once while
    /// syncing) if it is the height after our latest block and the engine is not there yet.
    pub fn start_height<H: Host<Peer = P>>(
        &mut self,
        host: &mut H,
        height: Height,
    ) -> Result<(), H::Error> {
        if self.parked.is_some_and(|p| p <= height) {
            self.parked = None;
        }
        if height != host.next_height() || self.engine.height() >= height {
            return Ok(());
        }
        let set = host.validators_at(height);
        let next_set = height.next().map(|next| host.validators_at(next));
        let outputs = {
            let mut validator = |b: &Block| host.validity(b);
            self.engine
                .start_height(height, set, next_set, &mut validator)
        }
        .map_err(H::Error::from)?;
        self.watch_engine(host);
        self.process(host, outputs)
    }

    /// A round timeout fired.
    pub fn timeout<H: Host<Peer = P>>(
        &mut self,
        host: &mut H,
        height: Height,
        timeout: Timeout,
    ) -> Result<(), H::Error> {
        if height == self.engine.height() && !self.syncing {
            let _ = self.input(host, EngineInput::TimeoutElapsed { height, timeout })?;
        }
        Ok(())
    }

    /// One consensus message gossiped by `from`: checked, and only then logged, kept and acted on.
    /// The answer says whether the network may forward it and whether `from` earned a penalty.
    pub fn on_message<H: Host<Peer = P>>(
        &mut self,
        host: &mut H,
        from: &P,
        message: ConsensusMessage,
    ) -> Result<Judgement, H::Error> {
        match message {
            ConsensusMessage::Status { height, round } => {
                // A hint from that peer only: never forwarded, never answered to the mesh. If it says the
                // peer has blocks we lack, block sync may ask that peer for them; if it is in an earlier
                // round of our height, re-gossip relays that round's votes.
                self.peer_positions.record(from.clone(), height, round);
                host.peer_claims(from, height.0.saturating_sub(1), self.syncing);
                Ok(Judgement::IGNORE)
            }
            ConsensusMessage::Evidence(evidence) => Ok(self.on_evidence(host, evidence)),
            message => {
                if self.syncing {
                    // Decisions for our next height still help; the rest waits for consensus.
                    let useful = matches!(&message, ConsensusMessage::Decision { block, .. }
                        if block.height() == self.engine.height());
                    if !useful {
                        return Ok(Judgement::IGNORE);
                    }
                }
                let height = message.height();
                Ok(match self.input(host, EngineInput::Message(message))? {
                    Ok(()) => {
                        // Verified and kept for the height we wait to start: a validator started it.
                        if self.parked == Some(height) {
                            self.start_height(host, height)?;
                        }
                        Judgement::ACCEPT
                    }
                    Err(e) if e.is_misbehaviour() => {
                        tracing::warn!(error = %e, "invalid consensus message");
                        Judgement {
                            verdict: Verdict::Reject,
                            offence: Some(misbehaviour_of(&e)),
                        }
                    }
                    Err(e) => {
                        tracing::debug!(error = %e, "consensus message ignored");
                        Judgement::IGNORE
                    }
                })
            }
        }
    }

    /// Gossiped evidence: kept and forwarded only if it could be committed in a block we work on.
    fn on_evidence<H: Host<Peer = P>>(
        &mut self,
        host: &mut H,
        evidence: DuplicateVoteEvidence,
    ) -> Judgement {
        if self.evidence.knows(&evidence) {
            // Known offence: nothing new to check or forward.
            return Judgement::IGNORE;
        }
        // `check_evidence` refuses heights after the one we work on before it looks anything up, so the
        // committing height below is at most one past it (a peer naming height 2^62 costs nothing).
        let height = host
            .next_height()
            .0
            .max(evidence.height().0.saturating_add(1));
        match host.check_evidence(&evidence, height) {
            Ok(()) if self.evidence.add(evidence) => Judgement::ACCEPT,
            Ok(()) => Judgement::IGNORE,
            Err(reason @ EvidenceRefused::Invalid(_)) => {
                // Anyone can check the signatures: the sender forwarded what it could have refused.
                tracing::debug!(%reason, "invalid evidence");
                Judgement {
                    verdict: Verdict::Reject,
                    offence: None,
                }
            }
            Err(reason) => {
                // Too new or too old for us, perhaps not for the sender: not forwarded, not punished.
                tracing::debug!(%reason, "evidence not usable here");
                Judgement::IGNORE
            }
        }
    }

    /// A decision fetched by block sync (its commit is verified by the engine): applied, or the reason
    /// it was refused (the serving peer's fault).
    pub fn apply_synced<H: Host<Peer = P>>(
        &mut self,
        host: &mut H,
        block: Block,
        commit: Commit,
    ) -> Result<Result<(), EngineError>, H::Error> {
        self.input(
            host,
            EngineInput::Message(ConsensusMessage::Decision { block, commit }),
        )
    }

    /// What to re-gossip while the round is stuck: our own messages, the proposals and proof-of-lock
    /// prevotes peers may have missed (proposals only when `with_proposals`), earlier rounds' votes for
    /// peers still in them.
    pub fn regossip_messages(&self, with_proposals: bool) -> Vec<ConsensusMessage> {
        self.engine
            .regossip_messages(&self.own_messages, &self.peer_positions, with_proposals)
    }

    /// Hands `input` to the engine; what it accepted is announced ([`Host::consensus_event`]): the
    /// input itself (a new vote or proposal, a timeout that counted), then the round-state changes.
    fn handle<H: Host<Peer = P>>(
        &mut self,
        host: &mut H,
        input: EngineInput,
    ) -> Result<Vec<EngineOutput>, EngineError> {
        let event = self.announcing(host).then(|| {
            events::timeout_event(&self.engine, &input)
                .or_else(|| events::message_event(&self.engine, &input))
        });
        let outputs = {
            let mut validator = |b: &Block| host.validity(b);
            self.engine.handle(input, &mut validator)?
        };
        if let Some(event) = event.flatten() {
            host.consensus_event(event);
        }
        self.watch_engine(host);
        Ok(outputs)
    }

    /// Whether consensus events are announced now: someone listens, and the input is neither replayed
    /// from the WAL (announced before the restart, if at all) nor part of block syncing.
    fn announcing<H: Host<Peer = P>>(&self, host: &H) -> bool {
        !self.replaying && !self.syncing && host.wants_consensus_events()
    }

    /// Announces the round-state changes since the last look (always looks, so a replay, a sync or a
    /// time without listeners is remembered, not announced later).
    fn watch_engine<H: Host<Peer = P>>(&mut self, host: &mut H) {
        let events = self.watch.observe(&self.engine);
        if self.announcing(host) {
            for event in events {
                host.consensus_event(event);
            }
        }
    }

    /// Processes an input and, if the engine accepted it (so it was checked: signatures, height, round
    /// window), logs it (current or next height only) before acting on the engine's outputs. Refused
    /// inputs are never logged, so nothing a peer sends reaches the WAL unchecked; and since every output
    /// — a signature above all — is acted on only after the append, the WAL holds every input that led to
    /// a signature before the signature leaves the process (the driver's durability contract).
    fn input<H: Host<Peer = P>>(
        &mut self,
        host: &mut H,
        input: EngineInput,
    ) -> Result<Result<(), EngineError>, H::Error> {
        let current = self.engine.height();
        // An exact copy of a message the engine holds changes nothing: forwarded, never logged again.
        let held = matches!(&input, EngineInput::Message(m) if self.engine.holds(m));
        let record = (!self.replaying && !self.syncing && !held)
            .then(|| WalRecord::from_input(&input))
            .filter(|r| r.height() == current || Some(r.height()) == current.next());
        match self.handle(host, input) {
            Ok(outputs) => {
                if let Some(record) = record {
                    host.log_input(record.height(), record.to_bytes())?;
                }
                self.process(host, outputs)?;
                Ok(Ok(()))
            }
            Err(e) => Ok(Err(e)),
        }
    }

    /// Acts on the engine's outputs in the order it produced them: outputs that acting yields (an own
    /// vote fed back, the next height started) wait behind the rest ([`OutputQueue`]), so the signer is
    /// never asked for a step the engine has already passed.
    fn process<H: Host<Peer = P>>(
        &mut self,
        host: &mut H,
        outputs: Vec<EngineOutput>,
    ) -> Result<(), H::Error> {
        if !self.outputs.push(outputs) {
            return Ok(());
        }
        while let Some(output) = self.outputs.pop() {
            if let Err(e) = self.act(host, output) {
                self.outputs.clear();
                return Err(e);
            }
        }
        host.settled(&self.engine, self.syncing);
        Ok(())
    }

    fn act<H: Host<Peer = P>>(
        &mut self,
        host: &mut H,
        output: EngineOutput,
    ) -> Result<(), H::Error> {
        match output {
            EngineOutput::Decided {
                round,
                block,
                commit,
            } => self.decided(host, round, block, commit)?,
            _ if self.syncing => {}
            EngineOutput::SignVote(vote) => {
                let signed = match self.recorded_vote(&vote) {
                    Some(recorded) => Some(recorded),
                    None => host.sign_vote(vote, self.replaying)?,
                };
                if let Some(signed) = signed {
                    self.publish_own(host, signed)?;
                }
            }
            EngineOutput::SignProposal { proposal, block } => {
                let signed = match self.recorded_proposal(&proposal, &block) {
                    Some(recorded) => Some(recorded),
                    None => host.sign_proposal(proposal, block, self.replaying)?,
                };
                if let Some(signed) = signed {
                    self.publish_own(host, signed)?;
                }
            }
            EngineOutput::ScheduleTimeout { height, timeout } => {
                host.schedule_timeout(height, timeout);
            }
            EngineOutput::BuildBlock { height, round } => {
                if self.replaying {
                    self.deferred_builds.push((height, round));
                } else {
                    self.build(host, height, round)?;
                }
            }
            EngineOutput::Evidence(evidence) => {
                host.detected(&evidence);
                if host
                    .check_evidence(&evidence, evidence.height().0.saturating_add(1))
                    .is_ok()
                    && self.evidence.add(evidence.clone())
                {
                    host.publish_evidence(&ConsensusMessage::Evidence(evidence))?;
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

    /// During replay: our vote for exactly `vote`, if the WAL holds it.
    fn recorded_vote(&self, vote: &Vote) -> Option<ConsensusMessage> {
        self.recorded_own
            .iter()
            .find(|m| matches!(m, ConsensusMessage::Vote(signed) if signed.vote == *vote))
            .cloned()
    }

    /// During replay: our proposal of exactly `proposal` and `block`, if the WAL holds it.
    fn recorded_proposal(&self, proposal: &Proposal, block: &Block) -> Option<ConsensusMessage> {
        self.recorded_own
            .iter()
            .find(|m| {
                matches!(m, ConsensusMessage::Proposal(p)
                if p.signed.proposal == *proposal && p.block == *block)
            })
            .cloned()
    }

    /// A message we just signed (durable with the WAL): sent, then fed back to the engine.
    fn publish_own<H: Host<Peer = P>>(
        &mut self,
        host: &mut H,
        message: ConsensusMessage,
    ) -> Result<(), H::Error> {
        host.publish_own(&message)?;
        self.own_messages.push(message.clone());
        match self.handle(host, EngineInput::Message(message)) {
            Ok(outputs) => self.process(host, outputs),
            Err(e) => {
                tracing::error!(error = %e, "engine refused our own signed message");
                Ok(())
            }
        }
    }

    /// Builds our proposal with the evidence every validator will accept. The pool may hold evidence a
    /// block committed before a restart; what is refused now can never be included and leaves the pool.
    fn build<H: Host<Peer = P>>(
        &mut self,
        host: &mut H,
        height: Height,
        round: Round,
    ) -> Result<(), H::Error> {
        let (evidence, stale): (Vec<_>, Vec<_>) = self
            .evidence
            .for_proposal(height.0)
            .into_iter()
            .partition(|e| host.check_evidence(e, height.0).is_ok());
        self.evidence.committed(&stale);
        let engine = &self.engine;
        let block = host.build_block(height, round, evidence, &|decided| {
            engine.complete_last_commit(decided)
        })?;
        let Some(block) = block else {
            return Ok(());
        };
        if let Err(e) = self.input(host, EngineInput::ProposeBlock { round, block })? {
            tracing::error!(error = %e, "engine refused our block");
        }
        Ok(())
    }

    /// A decided block: committed by the host, then the next height starts (after `timeout_commit`, or
    /// at once while block syncing).
    fn decided<H: Host<Peer = P>>(
        &mut self,
        host: &mut H,
        round: Round,
        block: Block,
        commit: Commit,
    ) -> Result<(), H::Error> {
        let evidence = block.evidence().to_vec();
        host.commit(round, block, commit, self.syncing)?;
        self.evidence.committed(&evidence);
        self.own_messages.clear();
        let next = host.next_height();
        if self.syncing {
            self.start_height(host, next)
        } else {
            host.schedule_start(next);
            Ok(())
        }
    }
}

/// Our votes (by validator `own_index`) and every proposal among `records`. A proposal the engine asks
/// us to sign can only match one signed by this round's proposer, which is us: no one else's
/// signature could have passed the engine's check before the record was logged.
fn recorded_own(records: &[WalRecord], own_index: Option<ValidatorIndex>) -> Vec<ConsensusMessage> {
    records
        .iter()
        .filter_map(|record| match record {
            WalRecord::Message(message @ ConsensusMessage::Vote(vote))
                if Some(vote.vote.validator_index) == own_index =>
            {
                Some(message.clone())
            }
            WalRecord::Message(message @ ConsensusMessage::Proposal(_)) => Some(message.clone()),
            _ => None,
        })
        .collect()
}

/// The penalty for a message the engine refused as misbehaviour.
pub fn misbehaviour_of(error: &EngineError) -> Misbehaviour {
    match error {
        EngineError::Vote(_) | EngineError::Proposal(_) => Misbehaviour::BadSignature,
        EngineError::Commit(_) | EngineError::BlockHeaderMismatch { .. } => {
            Misbehaviour::InvalidBlock
        }
        other => Misbehaviour::Other(other.to_string()),
    }
}

pub mod events;
#[cfg(test)]
mod tests;
