//! The consensus engine of one node: the pure core bound to Basalt's concrete types, across heights.
//!
//! It verifies signed messages against the validator set (turning wire values into verified ones), feeds the
//! height [`Driver`], maps values (block ids) back to blocks, builds the [`Commit`] on a decision, turns
//! equivocations into [`DuplicateVoteEvidence`], buffers (boundedly) messages for the next height, and
//! accepts a proven decision (`block + commit`) from a peer so a node that missed a height catches up.
//!
//! Still pure: signing, timers, block building, validity checks by the application and persistence are
//! the edge's job, requested through [`EngineOutput`] and the [`BlockValidator`] callback.

mod message;
mod peers;
mod queue;

pub use message::{ConsensusMessage, MAX_CONSENSUS_MESSAGE_BYTES};
pub use peers::{PeerPositions, MAX_CATCH_UP_ROUNDS};
pub use queue::OutputQueue;

use std::collections::BTreeMap;

use crate::core::{
    self, Driver, DriverConfig, DriverError, Input, Output, ProposerSelector, Validity,
};
use crate::primitives::{Height, Round, Timeout, ValidatorIndex, VoteType};
use crate::types::{
    Address, Block, BlockId, ChainId, Commit, CommitError, CommitSig, DuplicateVoteEvidence,
    Proposal, ProposalError, ProposalMessage, SignedProposal, SignedVote, ValidatorSet, Vote,
    VoteError,
};

/// Binds the generic core to Basalt's types: the decided value is a block id.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BasaltContext;

impl core::Context for BasaltContext {
    type Value = BlockId;
    type SignedVote = SignedVote;
    type SignedProposal = SignedProposal;
}

/// The proposer schedule of one height, derived from its validator set.
#[derive(Clone, Debug)]
pub struct Proposers {
    validators: ValidatorSet,
}

impl ProposerSelector for Proposers {
    fn proposer(&self, round: Round) -> ValidatorIndex {
        self.validators.proposer_for_round(round)
    }
}

/// The application's judgement of a proposed block (`valid(v)` in the paper): header fields against the
/// chain state, transactions against the application. Called once per distinct proposed block.
pub trait BlockValidator {
    /// Is `block` acceptable as the next block?
    fn validate(&mut self, block: &Block) -> Validity;
}

impl<F: FnMut(&Block) -> Validity> BlockValidator for F {
    fn validate(&mut self, block: &Block) -> Validity {
        self(block)
    }
}

/// Tunables of the engine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EngineConfig {
    /// Rounds above the current one for which votes and proposals are kept.
    pub round_window: u32,
    /// Messages for the next height kept until it starts.
    pub max_buffered_next_height: usize,
    /// Encoded bytes of the messages kept for the next height (proposals carry whole blocks).
    pub max_buffered_next_height_bytes: usize,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            round_window: core::DEFAULT_ROUND_WINDOW,
            max_buffered_next_height: 4096,
            max_buffered_next_height_bytes: 64 * 1024 * 1024,
        }
    }
}

/// Inputs from the edge.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EngineInput {
    /// A message from a peer, or one of our own signed messages fed back.
    Message(ConsensusMessage),
    /// A timer scheduled by [`EngineOutput::ScheduleTimeout`] fired.
    TimeoutElapsed {
        /// Height it was scheduled for (stale heights are ignored).
        height: Height,
        /// Which timeout.
        timeout: Timeout,
    },
    /// The block to propose, answering [`EngineOutput::BuildBlock`].
    ProposeBlock {
        /// The round it was asked for.
        round: Round,
        /// The block (its height must be the engine's).
        block: Block,
    },
}

/// What the edge must do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EngineOutput {
    /// Sign this proposal (after double-sign checks and durable persistence), broadcast the resulting
    /// [`ProposalMessage`] with `block`, and feed it back as a message.
    SignProposal {
        /// The proposal.
        proposal: Proposal,
        /// The block it proposes.
        block: Block,
    },
    /// Sign this vote (same rules), broadcast it and feed it back.
    SignVote(Vote),
    /// Start a timer for `timeout` of `height`.
    ScheduleTimeout {
        /// Height.
        height: Height,
        /// Timeout.
        timeout: Timeout,
    },
    /// Build a block for `height`/`round` from the mempool and answer with [`EngineInput::ProposeBlock`].
    BuildBlock {
        /// Height.
        height: Height,
        /// Round.
        round: Round,
    },
    /// The height is decided: execute and store the block, then call [`Engine::start_height`].
    Decided {
        /// The round of the decision (equal to `commit.round`).
        round: Round,
        /// The block.
        block: Block,
        /// Its commit.
        commit: Commit,
    },
    /// A validator signed two conflicting votes: gossip the evidence and include it in a block.
    Evidence(DuplicateVoteEvidence),
    /// The proposer of a round signed two different proposals (logged and used for peer scoring; Tendermint
    /// has no slashing evidence for it).
    ProposerEquivocation {
        /// The proposer.
        proposer: ValidatorIndex,
        /// The round.
        round: Round,
    },
}

/// Why a message was rejected. The sender of a message that fails with [`EngineError::is_misbehaviour`]
/// should be penalised.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// Bad vote (unknown signer, bad signature).
    #[error(transparent)]
    Vote(#[from] VoteError),
    /// Bad proposal (not the proposer's signature, block does not match).
    #[error(transparent)]
    Proposal(#[from] ProposalError),
    /// A decision whose commit does not prove the block.
    #[error(transparent)]
    Commit(#[from] CommitError),
    /// The core refused the input (outside the round window, wrong proposer).
    #[error(transparent)]
    Driver(#[from] DriverError),
    /// The block in a proposal or decision is for another chain or height than its message says.
    #[error("block is for chain {block_chain} height {block_height}, message is for chain {chain} height {height}")]
    BlockHeaderMismatch {
        /// Block's chain id.
        block_chain: String,
        /// Block's height.
        block_height: Height,
        /// Our chain id.
        chain: String,
        /// The message's height.
        height: Height,
    },
    /// A message for a height the engine cannot check it against: not the current one, not the previous
    /// one (late votes) and not the next one with its validator set known. Not proof of anything — the
    /// sender may be ahead or behind — but never to be forwarded or stored.
    #[error("message for height {height} while the engine is at height {current}")]
    OtherHeight {
        /// The message's height.
        height: Height,
        /// The engine's height.
        current: Height,
    },
    /// A next-height message whose round is beyond the window (its validity cannot be judged yet).
    #[error("next-height message for round {round} is beyond the round window")]
    NextHeightRoundOutsideWindow {
        /// The message's round.
        round: Round,
    },
    /// The next-height buffer already holds a message in this slot, or is full (in count or bytes).
    #[error("next-height message not kept: {reason}")]
    NextHeightNotKept {
        /// Why.
        reason: &'static str,
    },
    /// A decision for a height already decided here: not checked again.
    #[error("height {height} is already decided")]
    AlreadyDecided {
        /// The height.
        height: Height,
    },
    /// A block to propose was supplied for another height or round than asked.
    #[error("block supplied for height {got} but the engine is at height {expected}")]
    WrongHeight {
        /// Supplied.
        got: Height,
        /// Current.
        expected: Height,
    },
}

impl EngineError {
    /// True if the message proves the sender (or the message's signer) misbehaved, as opposed to merely
    /// being late or early.
    pub fn is_misbehaviour(&self) -> bool {
        // Round-window refusals depend on the receiver's round, not on the message: a message that was
        // inside the window of the honest node that forwarded it can be outside ours.
        !matches!(
            self,
            EngineError::Driver(DriverError::ProposalOutsideWindow { .. })
                | EngineError::Driver(DriverError::VoteKeeper(
                    crate::core::VoteKeeperError::RoundOutsideWindow { .. }
                ))
                | EngineError::WrongHeight { .. }
                | EngineError::OtherHeight { .. }
                | EngineError::NextHeightRoundOutsideWindow { .. }
                | EngineError::NextHeightNotKept { .. }
                | EngineError::AlreadyDecided { .. }
        )
    }
}

/// One node's consensus engine. See the module docs.
#[derive(Debug)]
pub struct Engine {
    chain_id: ChainId,
    config: EngineConfig,
    own_address: Option<Address>,
    validators: ValidatorSet,
    driver: Driver<BasaltContext, Proposers>,
    /// Blocks of this height's proposals (ours and those the core keeps: at most
    /// [`core::MAX_PROPOSALS_PER_ROUND`] per round within the round window), by id.
    blocks: BTreeMap<BlockId, Block>,
    /// The validator set of the next height, when known: next-height messages are verified against it
    /// before they are kept (and so before the node forwards or logs them).
    next_validators: Option<ValidatorSet>,
    /// Verified messages for the next height, one per slot, replayed when it starts.
    next_height: BTreeMap<NextSlot, ConsensusMessage>,
    /// Encoded bytes held in `next_height`.
    next_height_bytes: usize,
    /// The decision of this height, once made.
    decided: Option<(Block, Commit)>,
    /// Votes accepted at this height, one per (round, type, validator): kept after the height ends so a
    /// late conflicting vote still becomes evidence.
    votes: VoteLog,
    /// The previous height's votes and validator set.
    previous: Option<(Height, ValidatorSet, VoteLog)>,
}

/// Accepted votes by (round, type, validator), bounded by what the driver accepts (the round window).
type VoteLog = BTreeMap<(Round, VoteType, ValidatorIndex), SignedVote>;

/// Whether `log` holds exactly this signed vote (same content, same signature): one that was verified
/// when it was kept.
fn is_kept(log: &VoteLog, signed: &SignedVote) -> bool {
    let v = &signed.vote;
    log.get(&(v.round, v.vote_type, v.validator_index)) == Some(signed)
}

/// One kept next-height message per slot: a validator's vote of one (round, type), or a round's proposal.
/// A second message for a taken slot (a re-send, or an equivocation the next height will see anyway) is
/// not kept, so the buffer holds at most `(window + 1) * (2 * validators + 1)` messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum NextSlot {
    Proposal(Round),
    Vote(Round, VoteType, ValidatorIndex),
}

impl Engine {
    /// An engine at `height` with `validators` (the set of that height) and, when known, `next_validators`
    /// (the set of `height + 1`: without it, next-height messages cannot be verified and are refused rather
    /// than kept). `own_address` makes it a validator if that address is in the set. Call
    /// [`Engine::start`] to get the first outputs.
    pub fn new(
        chain_id: ChainId,
        config: EngineConfig,
        own_address: Option<Address>,
        height: Height,
        validators: ValidatorSet,
        next_validators: Option<ValidatorSet>,
    ) -> Result<Engine, EngineError> {
        let driver = Self::driver_for(&config, own_address, height, &validators)?;
        Ok(Engine {
            chain_id,
            config,
            own_address,
            validators,
            driver,
            blocks: BTreeMap::new(),
            next_validators,
            next_height: BTreeMap::new(),
            next_height_bytes: 0,
            decided: None,
            votes: BTreeMap::new(),
            previous: None,
        })
    }

    fn driver_for(
        config: &EngineConfig,
        own_address: Option<Address>,
        height: Height,
        validators: &ValidatorSet,
    ) -> Result<Driver<BasaltContext, Proposers>, DriverError> {
        let own = own_address.and_then(|a| validators.index_of(&a));
        Driver::new(
            height,
            validators.powers(),
            own,
            Proposers {
                validators: validators.clone(),
            },
            DriverConfig {
                round_window: config.round_window,
            },
        )
    }

    /// Starts round 0 of the current height.
    pub fn start(&mut self) -> Result<Vec<EngineOutput>, EngineError> {
        let outputs = self.driver.process(Input::StartRound { round: Round(0) })?;
        Ok(self.translate(outputs))
    }

    /// Moves to `height` with its validator set (and the set of `height + 1`, when known) after the
    /// previous height was decided and applied, starts round 0, and replays buffered messages for it.
    /// Errors of replayed messages are dropped (their senders are unknown by now).
    pub fn start_height(
        &mut self,
        height: Height,
        validators: ValidatorSet,
        next_validators: Option<ValidatorSet>,
        validator: &mut dyn BlockValidator,
    ) -> Result<Vec<EngineOutput>, EngineError> {
        let driver = Self::driver_for(&self.config, self.own_address, height, &validators)?;
        let old_height = self.driver.height();
        self.driver = driver;
        let old_validators = std::mem::replace(&mut self.validators, validators);
        let old_votes = std::mem::take(&mut self.votes);
        self.previous = Some((old_height, old_validators, old_votes));
        self.blocks.clear();
        self.decided = None;
        self.next_validators = next_validators;
        let mut outputs = self.start()?;
        let buffered = std::mem::take(&mut self.next_height);
        self.next_height_bytes = 0;
        for message in buffered.into_values() {
            if message.height() == height {
                if let Ok(more) = self.handle(EngineInput::Message(message), validator) {
                    outputs.extend(more);
                }
            }
        }
        Ok(outputs)
    }

    /// The current height.
    pub fn height(&self) -> Height {
        self.driver.height()
    }

    /// The current round.
    pub fn round(&self) -> Round {
        self.driver.round()
    }

    /// The validator set of the current height.
    pub fn validators(&self) -> &ValidatorSet {
        &self.validators
    }

    /// The core driver (read-only), for status and metrics.
    pub fn driver(&self) -> &Driver<BasaltContext, Proposers> {
        &self.driver
    }

    /// The decision of the current height, if made.
    pub fn decision(&self) -> Option<&(Block, Commit)> {
        self.decided.as_ref()
    }

    /// What this node should periodically re-gossip so that, after the network stabilises, every honest
    /// node gets what it needs to make progress (the "gossip" Tendermint's liveness assumes; CometBFT's
    /// gossip routines send the same): the proposals of the current round and of the rounds that justify
    /// a re-proposal, and the prevotes of those rounds (the proof-of-lock a re-proposal carries). Votes of
    /// the current round are the sender's own business (each node re-gossips its own messages, including
    /// those its WAL replays after a restart).
    pub fn relay_messages(&self) -> Vec<ConsensusMessage> {
        let state = self.driver.state();
        let current = self.round();
        // (round, value) pairs whose proof-of-lock peers may need.
        let mut locks: Vec<(Round, BlockId)> = Vec::new();
        locks.extend(state.valid.as_ref().map(|v| (v.round, v.value)));
        locks.extend(state.locked.as_ref().map(|v| (v.round, v.value)));
        // The current round's proposal: the first kept (the one most peers will have acted on).
        let first = self.driver.proposals(current).next();
        if let Some((_, p)) = first {
            locks.extend(
                p.proposal
                    .pol_round()
                    .map(|pol| (pol, *p.proposal.block_id())),
            );
        }
        let first = first.map(|(v, _)| *v);
        locks.sort();
        locks.dedup();
        let mut out: Vec<ConsensusMessage> = Vec::new();
        // The proposal that carries each value, and then the current round's: a node that saw the
        // equivocating proposer's other proposal first needs the one +2/3 backed to lock on or decide it.
        let mut proposed: Vec<(Round, BlockId)> = locks.clone();
        proposed.extend(first.map(|v| (current, v)));
        proposed.sort();
        proposed.dedup();
        for (round, value) in proposed {
            out.extend(
                self.proposal_message(round, &value)
                    .map(ConsensusMessage::Proposal),
            );
        }
        for (round, value) in locks {
            let votes = self
                .driver
                .votes()
                .votes_for(round, VoteType::Prevote, Some(&value));
            out.extend(votes.into_iter().map(ConsensusMessage::Vote));
        }
        out
    }

    /// The kept proposal of `round` for `value` with its block, as it travels on the wire.
    fn proposal_message(&self, round: Round, value: &BlockId) -> Option<ProposalMessage> {
        let signed = self.driver.proposal_of(round, value)?;
        let block = self.blocks.get(value)?;
        Some(ProposalMessage {
            signed: signed.clone(),
            block: block.clone(),
        })
    }

    /// Everything a node re-gossips while its round makes no progress, chosen here so that the node's driver
    /// and the simulation send the same: its `own` signed messages of the current and the previous round
    /// (older rounds cannot change the outcome, and the list would grow without bound as rounds pass; a
    /// peer still in an older round gets them below), [`Engine::relay_messages`], and the votes of the
    /// earlier rounds that `peers` report being in ([`Engine::round_votes`]). Proposals (own or relayed)
    /// only `with_proposals`: each carries a whole block, so the caller re-sends them less often.
    pub fn regossip_messages<P: Ord>(
        &self,
        own: &[ConsensusMessage],
        peers: &PeerPositions<P>,
        with_proposals: bool,
    ) -> Vec<ConsensusMessage> {
        let current = self.round();
        let recent =
            |m: &ConsensusMessage| m.round().is_none_or(|r| r.0.saturating_add(1) >= current.0);
        let mut out: Vec<ConsensusMessage> = own.iter().filter(|m| recent(m)).cloned().collect();
        out.extend(self.relay_messages());
        out.extend(self.round_votes(&peers.lagging_rounds(self.height(), current)));
        if !with_proposals {
            out.retain(|m| !matches!(m, ConsensusMessage::Proposal(_)));
        }
        out
    }

    /// The votes this node holds for `rounds` of its height (prevotes, then precommits, of each round in
    /// order), for peers that report being in one of those rounds (see [`PeerPositions`]). Every vote
    /// returned was verified when it was counted, so relaying it can never be held against this node.
    /// Bounded: the vote keeper keeps at most a few votes per validator and round.
    pub fn round_votes(&self, rounds: &[Round]) -> Vec<ConsensusMessage> {
        let votes = self.driver.votes();
        rounds
            .iter()
            .flat_map(|&round| {
                let prevotes = votes.votes_of(round, VoteType::Prevote);
                let precommits = votes.votes_of(round, VoteType::Precommit);
                prevotes.into_iter().chain(precommits)
            })
            .map(ConsensusMessage::Vote)
            .collect()
    }

    /// Processes one input.
    pub fn handle(
        &mut self,
        input: EngineInput,
        validator: &mut dyn BlockValidator,
    ) -> Result<Vec<EngineOutput>, EngineError> {
        match input {
            EngineInput::Message(message) => self.on_message(message, validator),
            EngineInput::TimeoutElapsed { height, timeout } => {
                if height != self.height() {
                    return Ok(Vec::new());
                }
                let outputs = self.driver.process(Input::TimeoutElapsed(timeout))?;
                Ok(self.translate(outputs))
            }
            EngineInput::ProposeBlock { round, block } => {
                if block.height() != self.height() {
                    return Err(EngineError::WrongHeight {
                        got: block.height(),
                        expected: self.height(),
                    });
                }
                let value = block.id();
                self.blocks.insert(value, block);
                let outputs = self.driver.process(Input::ProposeValue { round, value })?;
                Ok(self.translate(outputs))
            }
        }
    }

    fn on_message(
        &mut self,
        message: ConsensusMessage,
        validator: &mut dyn BlockValidator,
    ) -> Result<Vec<EngineOutput>, EngineError> {
        if matches!(
            message,
            ConsensusMessage::Status { .. } | ConsensusMessage::Evidence(_)
        ) {
            return Ok(Vec::new());
        }
        let height = message.height();
        if let ConsensusMessage::Vote(signed) = &message {
            if self.previous.as_ref().is_some_and(|(h, _, _)| *h == height) {
                return self.on_late_vote(signed.clone());
            }
        }
        if height != self.height() {
            if Some(height) == self.height().next() {
                self.keep_for_next_height(message)?;
                return Ok(Vec::new());
            }
            return Err(EngineError::OtherHeight {
                height,
                current: self.height(),
            });
        }
        match message {
            ConsensusMessage::Vote(signed) => self.on_vote(signed),
            ConsensusMessage::Proposal(proposal) => self.on_proposal(proposal, validator),
            ConsensusMessage::Decision { block, commit } => self.on_decision(block, commit),
            ConsensusMessage::Status { .. } | ConsensusMessage::Evidence(_) => Ok(Vec::new()),
        }
    }

    /// Keeps a next-height vote or proposal for replay when that height starts — only after checking its
    /// signature against the next height's validator set, only within the round window, one message per
    /// slot, and within the count and byte limits. An `Ok` means the message is valid and kept (so the
    /// edge may forward and log it); every refusal is an error, a bad signature one that proves
    /// misbehaviour. Decisions of the next height are refused: a node that is behind catches up by block
    /// request, and checking a whole commit for a height we cannot use yet is work for nothing.
    fn keep_for_next_height(&mut self, message: ConsensusMessage) -> Result<(), EngineError> {
        let height = message.height();
        let Some(next_set) = self.next_validators.as_ref() else {
            return Err(EngineError::OtherHeight {
                height,
                current: self.height(),
            });
        };
        let (slot, round) = match &message {
            ConsensusMessage::Vote(signed) => {
                let v = &signed.vote;
                (
                    NextSlot::Vote(v.round, v.vote_type, v.validator_index),
                    v.round,
                )
            }
            ConsensusMessage::Proposal(p) => {
                let round = p.signed.proposal.round();
                (NextSlot::Proposal(round), round)
            }
            _ => {
                return Err(EngineError::OtherHeight {
                    height,
                    current: self.height(),
                })
            }
        };
        if round.0 > self.config.round_window {
            return Err(EngineError::NextHeightRoundOutsideWindow { round });
        }
        if self.next_height.get(&slot) == Some(&message) {
            // The very message kept there, verified when it was: the verdict below without the work.
            return Err(EngineError::NextHeightNotKept {
                reason: "slot already taken",
            });
        }
        // Checked before the slot test, so that the verdict on a message never depends on what else the
        // buffer holds: a valid message is valid, a forged one is forged, whatever arrived first.
        // Verification takes the message by value and hands it back, so a proposal's block is never copied.
        let message = match message {
            ConsensusMessage::Vote(signed) => {
                ConsensusMessage::Vote(next_set.verify_vote(&self.chain_id, signed)?.into_signed())
            }
            ConsensusMessage::Proposal(p) => {
                let verified = next_set.verify_proposal(&self.chain_id, p)?;
                self.check_block_header(verified.block(), height)?;
                ConsensusMessage::Proposal(verified.into_message())
            }
            other => other,
        };
        if self.next_height.contains_key(&slot) {
            return Err(EngineError::NextHeightNotKept {
                reason: "slot already taken",
            });
        }
        let bytes = message.encoded_len();
        if self.next_height.len() >= self.config.max_buffered_next_height
            || self.next_height_bytes.saturating_add(bytes)
                > self.config.max_buffered_next_height_bytes
        {
            return Err(EngineError::NextHeightNotKept {
                reason: "buffer full",
            });
        }
        self.next_height_bytes += bytes;
        self.next_height.insert(slot, message);
        Ok(())
    }

    /// Whether `message` is exactly one this engine already verified and keeps for the current height
    /// (a vote it counted, a proposal with its block): handing it in again changes nothing, so the edge
    /// need not log it again (a peer re-sending valid votes must not grow our WAL).
    pub fn holds(&self, message: &ConsensusMessage) -> bool {
        match message {
            ConsensusMessage::Vote(signed) => {
                signed.vote.height == self.height() && is_kept(&self.votes, signed)
            }
            ConsensusMessage::Proposal(p) => {
                let proposal = &p.signed.proposal;
                proposal.height() == self.height()
                    && self
                        .driver
                        .proposal_of(proposal.round(), proposal.block_id())
                        == Some(&p.signed)
                    && self.blocks.get(proposal.block_id()) == Some(&p.block)
            }
            _ => false,
        }
    }

    /// Messages kept for the next height and their encoded bytes (for tests and metrics).
    pub fn next_height_buffer(&self) -> (usize, usize) {
        (self.next_height.len(), self.next_height_bytes)
    }

    fn on_vote(&mut self, signed: SignedVote) -> Result<Vec<EngineOutput>, EngineError> {
        if is_kept(&self.votes, &signed) {
            // The very vote we verified and counted: counting it again changes nothing (the vote keeper
            // is idempotent), so the answer is the same without the signature check a replaying peer
            // would otherwise make us repeat for every copy it sends.
            return Ok(Vec::new());
        }
        let verified = self.validators.verify_vote(&self.chain_id, signed)?;
        let vote = verified.vote();
        let input = Input::Vote {
            vote_type: vote.vote_type,
            round: vote.round,
            value: vote.block_id,
            validator: vote.validator_index,
            msg: verified.signed().clone(),
        };
        let outputs = self.driver.process(input)?;
        let v = verified.vote();
        self.votes
            .entry((v.round, v.vote_type, v.validator_index))
            .or_insert_with(|| verified.signed().clone());
        Ok(self.translate(outputs))
    }

    /// `commit` (the previous height's decision) completed with that height's precommits of the same round
    /// that were not in it: the ones that arrived after the decision, while the node waited
    /// `timeout_commit`. A proposer puts this in its block's `last_commit`, so the chain records every
    /// validator that precommitted in time rather than only the first two thirds (CometBFT does the same;
    /// `consensus_missing_validators` reads it). Every vote added was verified when it was accepted. A
    /// commit of another height is returned unchanged.
    pub fn complete_last_commit(&self, commit: &Commit) -> Commit {
        let mut completed = commit.clone();
        let Some((height, _, votes)) = &self.previous else {
            return completed;
        };
        if *height != commit.height {
            return completed;
        }
        for (index, slot) in completed.signatures.iter_mut().enumerate() {
            if *slot != CommitSig::Absent {
                continue;
            }
            let Ok(index) = u32::try_from(index) else {
                break;
            };
            let key = (commit.round, VoteType::Precommit, ValidatorIndex(index));
            if let Some(vote) = votes.get(&key) {
                *slot = match vote.vote.block_id {
                    Some(id) if id == commit.block_id => CommitSig::ForBlock(vote.signature),
                    Some(_) => continue, // a precommit for another block has no place in this commit
                    None => CommitSig::Nil(vote.signature),
                };
            }
        }
        completed
    }

    /// A vote for the previous height: it cannot change the decision, but a conflict with a vote we
    /// accepted there is still evidence (Tendermint's accountability does not end with the height).
    fn on_late_vote(&mut self, signed: SignedVote) -> Result<Vec<EngineOutput>, EngineError> {
        let Some((_, validators, votes)) = self.previous.as_mut() else {
            return Ok(Vec::new());
        };
        if is_kept(votes, &signed) {
            return Ok(Vec::new()); // as below for a vote we hold, without verifying it again
        }
        let verified = validators.verify_vote(&self.chain_id, signed)?;
        let v = verified.vote();
        let key = (v.round, v.vote_type, v.validator_index);
        match votes.get(&key) {
            Some(first) if first.vote.block_id != v.block_id => Ok(DuplicateVoteEvidence::new(
                first.clone(),
                verified.signed().clone(),
            )
            .map(|e| vec![EngineOutput::Evidence(e)])
            .unwrap_or_default()),
            Some(_) => Ok(Vec::new()),
            None => {
                // Bounded: one vote per (round, type, validator) within the rounds the height reached.
                let max_round = self.config.round_window.saturating_mul(4);
                if v.round.0 <= max_round {
                    votes.insert(key, verified.signed().clone());
                }
                Ok(Vec::new())
            }
        }
    }

    fn on_proposal(
        &mut self,
        message: ProposalMessage,
        validator: &mut dyn BlockValidator,
    ) -> Result<Vec<EngineOutput>, EngineError> {
        let (round, value) = (
            message.signed.proposal.round(),
            *message.signed.proposal.block_id(),
        );
        if self.driver.proposal_of(round, &value) == Some(&message.signed)
            && self.blocks.get(&value) == Some(&message.block)
        {
            // The very proposal and block we verified and kept: the core ignores a repeated proposal, so
            // the answer is the same without checking its signature and block again.
            return Ok(Vec::new());
        }
        let verified = self.validators.verify_proposal(&self.chain_id, message)?;
        let proposal = verified.proposal();
        self.check_block_header(verified.block(), proposal.height())?;
        // A repeated proposal (re-gossip) must not re-run the application's checks.
        let validity = if self.blocks.contains_key(&value) {
            Validity::Valid
        } else {
            validator.validate(verified.block())
        };
        let known = self.blocks.contains_key(&value);
        if !known && validity.is_valid() {
            self.blocks.insert(value, verified.block().clone());
        }
        let input = Input::Proposal {
            round,
            value,
            pol_round: proposal.pol_round(),
            proposer: verified.proposer(),
            validity,
            msg: verified.signed().clone(),
        };
        let result = self.driver.process(input);
        // Keep the block exactly while the core keeps its proposal: an equivocating proposer's second
        // proposal is kept (the core decides or locks on whichever one +2/3 back, so its block is
        // needed), proposals beyond the core's per-round bound or refused by it are not.
        if !known && self.driver.proposal_of(round, &value).is_none() {
            self.blocks.remove(&value);
        }
        Ok(self.translate(result?))
    }

    fn on_decision(
        &mut self,
        block: Block,
        commit: Commit,
    ) -> Result<Vec<EngineOutput>, EngineError> {
        if self.decided.is_some() {
            // Not checked, so not to be forwarded: an error, not an empty success.
            return Err(EngineError::AlreadyDecided {
                height: self.height(),
            });
        }
        self.check_block_header(&block, commit.height)?;
        commit.verify_for(&self.chain_id, &self.validators, self.height(), &block.id())?;
        let round = commit.round;
        self.decided = Some((block.clone(), commit.clone()));
        Ok(vec![EngineOutput::Decided {
            round,
            block,
            commit,
        }])
    }

    fn check_block_header(&self, block: &Block, height: Height) -> Result<(), EngineError> {
        let header = block.header();
        if header.chain_id != self.chain_id || header.height != height {
            return Err(EngineError::BlockHeaderMismatch {
                block_chain: header.chain_id.to_string(),
                block_height: header.height,
                chain: self.chain_id.to_string(),
                height,
            });
        }
        Ok(())
    }

    /// Maps the core's outputs to the edge's requests.
    fn translate(&mut self, outputs: Vec<Output<BasaltContext>>) -> Vec<EngineOutput> {
        let height = self.height();
        let own_index = self.driver.own_index();
        let mut out = Vec::with_capacity(outputs.len());
        for output in outputs {
            match output {
                Output::Propose {
                    round,
                    value,
                    pol_round,
                } => {
                    // The core proposes only values we hold: our built block or the valid value's block.
                    let (Some(block), Ok(proposal)) = (
                        self.blocks.get(&value),
                        Proposal::new(height, round, pol_round, value),
                    ) else {
                        continue;
                    };
                    out.push(EngineOutput::SignProposal {
                        proposal,
                        block: block.clone(),
                    });
                }
                Output::Vote {
                    vote_type,
                    round,
                    value,
                } => {
                    if let Some(validator_index) = own_index {
                        out.push(EngineOutput::SignVote(Vote {
                            vote_type,
                            height,
                            round,
                            block_id: value,
                            validator_index,
                        }));
                    }
                }
                Output::ScheduleTimeout(timeout) => {
                    out.push(EngineOutput::ScheduleTimeout { height, timeout })
                }
                Output::GetValue { round } => out.push(EngineOutput::BuildBlock { height, round }),
                Output::Decide {
                    round,
                    value,
                    commit,
                } => {
                    if let Some(decided) = self.decide(round, value, &commit) {
                        out.push(decided);
                    }
                }
                Output::Evidence(core::Evidence::DuplicateVote { first, second, .. }) => {
                    if let Ok(evidence) = DuplicateVoteEvidence::new(first, second) {
                        out.push(EngineOutput::Evidence(evidence));
                    }
                }
                Output::Evidence(core::Evidence::DuplicateProposal {
                    proposer, round, ..
                }) => out.push(EngineOutput::ProposerEquivocation { proposer, round }),
            }
        }
        out
    }

    fn decide(
        &mut self,
        round: Round,
        value: BlockId,
        precommits: &[SignedVote],
    ) -> Option<EngineOutput> {
        if self.decided.is_some() {
            return None;
        }
        // The core decides only on a value whose proposal (hence block) it holds (line 49).
        let block = self.blocks.get(&value)?.clone();
        let mut signatures = vec![CommitSig::Absent; self.validators.len()];
        for signed in precommits {
            let v = &signed.vote;
            let slot = signatures.get_mut(v.validator_index.0 as usize);
            if let (Some(slot), VoteType::Precommit, Some(id)) = (slot, v.vote_type, v.block_id) {
                if id == value && v.round == round {
                    *slot = CommitSig::ForBlock(signed.signature);
                }
            }
        }
        let commit = Commit {
            height: self.height(),
            round,
            block_id: value,
            signatures,
        };
        self.decided = Some((block.clone(), commit.clone()));
        Some(EngineOutput::Decided {
            round,
            block,
            commit,
        })
    }
}
