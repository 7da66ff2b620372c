//! CometBFT's consensus events, derived from what the engine did: [`RoundWatch`] compares the engine's
//! round state after each input with what it saw before (round, step, lock, valid block), and
//! [`input_event`] names the event an accepted input is by itself (a vote, a proposal, a timeout).
//!
//! The engine stays as it is (it is proven by the simulation and knows nothing of observers); this
//! module only reads it. Since the core looks after every input the engine accepts, steps that one
//! input passes through are all seen, except inside a single engine call: a proposal that arrives after
//! its polka and its precommit quorum moves from propose to commit at once, and the events say so
//! (`NewRoundStep` to commit, no prevote step in between).

use basalt_consensus::core::Step;
use basalt_consensus::engine::{ConsensusMessage, Engine, EngineInput};
use basalt_consensus::types::Hash;
use basalt_consensus::{Round, TimeoutKind};

use crate::rpc::backend::{ConsensusEvent, RoundState, RoundStep};

/// CometBFT's step name for the engine's state: the paper's steps, with the "wait" steps CometBFT shows
/// once the prevote or precommit timeout is running.
pub fn round_step(engine: &Engine) -> RoundStep {
    let state = engine.driver().state();
    match state.step {
        Step::Unstarted if state.round == Round(0) => RoundStep::NewHeight,
        Step::Unstarted => RoundStep::NewRound,
        Step::Propose => RoundStep::Propose,
        Step::Prevote if state.flags.prevote_timeout_scheduled => RoundStep::PrevoteWait,
        Step::Prevote => RoundStep::Prevote,
        Step::Precommit if state.flags.precommit_timeout_scheduled => RoundStep::PrecommitWait,
        Step::Precommit => RoundStep::Precommit,
        Step::Commit => RoundStep::Commit,
    }
}

/// Where the engine is now.
fn round_state(engine: &Engine) -> RoundState {
    RoundState {
        height: engine.height().0,
        round: engine.round().0,
        step: round_step(engine),
    }
}

/// What the watch remembers of the engine between inputs.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Seen {
    height: u64,
    round: u32,
    step: RoundStep,
    /// The paper's step (the precommit step is entered once per round; its "wait" form is not a new
    /// entry).
    paper_step: Step,
    locked: Option<(Hash, Round)>,
    valid: Option<(Hash, Round)>,
}

impl Seen {
    fn of(engine: &Engine) -> Seen {
        let state = engine.driver().state();
        Seen {
            height: engine.height().0,
            round: engine.round().0,
            step: round_step(engine),
            paper_step: state.step,
            locked: state.locked.as_ref().map(|v| (v.value.hash, v.round)),
            valid: state.valid.as_ref().map(|v| (v.value.hash, v.round)),
        }
    }
}

/// Derives CometBFT's round-state events from the engine's state changes (see the module docs).
#[derive(Debug, Default)]
pub struct RoundWatch {
    last: Option<Seen>,
}

impl RoundWatch {
    /// The events between the last look and now, in CometBFT's order: `NewRound`, `NewRoundStep`,
    /// `Polka`, `Lock`/`Relock`, `ValidBlock`. The first look only remembers.
    pub fn observe(&mut self, engine: &Engine) -> Vec<ConsensusEvent> {
        let now = Seen::of(engine);
        let Some(before) = self.last.replace(now.clone()) else {
            return Vec::new();
        };
        if before == now {
            return Vec::new();
        }
        let state = RoundState {
            height: now.height,
            round: now.round,
            step: now.step,
        };
        let mut events = Vec::new();
        let new_round = (before.height, before.round) != (now.height, now.round);
        if new_round {
            let set = engine.validators();
            let index = set.proposer_for_round(engine.round());
            if let Some(proposer) = set.get(index) {
                events.push(ConsensusEvent::NewRound {
                    state: RoundState {
                        step: RoundStep::NewRound,
                        ..state
                    },
                    proposer: (proposer.address, index.0),
                });
            }
        }
        if new_round || before.step != now.step {
            events.push(ConsensusEvent::NewRoundStep(state));
        }
        if now.height != before.height {
            // A new height starts with nothing locked: nothing more to compare.
            return events;
        }
        let round = Round(now.round);
        let locked_here = now.locked.filter(|&(_, r)| r == round);
        let entered_precommit = now.paper_step == Step::Precommit
            && (new_round || before.paper_step != Step::Precommit);
        if entered_precommit
            && (locked_here.is_some() || engine.driver().votes().has_polka_nil(round))
        {
            events.push(ConsensusEvent::Polka(state));
        }
        if now.locked != before.locked {
            if let Some((hash, _)) = now.locked {
                let relock = before.locked.is_some_and(|(h, _)| h == hash);
                events.push(if relock {
                    ConsensusEvent::Relock(state)
                } else {
                    ConsensusEvent::Lock(state)
                });
            }
        }
        if now.valid != before.valid && now.valid.is_some() {
            events.push(ConsensusEvent::ValidBlock(state));
        }
        events
    }
}

/// Whether `input` is the timeout the engine is waiting for: CometBFT announces `TimeoutPropose` and
/// `TimeoutWait` only for the current round's timeout of the current step (a late timeout of a step
/// already left is no event).
pub fn timeout_event(engine: &Engine, input: &EngineInput) -> Option<ConsensusEvent> {
    let EngineInput::TimeoutElapsed { height, timeout } = input else {
        return None;
    };
    if *height != engine.height() || timeout.round != engine.round() {
        return None;
    }
    let state = round_state(engine);
    let step = engine.driver().step();
    match timeout.kind {
        TimeoutKind::Propose if step == Step::Propose => {
            Some(ConsensusEvent::TimeoutPropose(state))
        }
        TimeoutKind::Prevote if step == Step::Prevote => Some(ConsensusEvent::TimeoutWait(state)),
        TimeoutKind::Precommit if step != Step::Commit => Some(ConsensusEvent::TimeoutWait(state)),
        _ => None,
    }
}

/// The event a consensus message will be once the engine accepts it: a vote or a proposal of the height
/// the engine is deciding that it does not hold yet (messages it keeps for the next height are
/// announced by no one, as in CometBFT, where they wait in the peer's queue; a copy of a known message
/// is no news).
pub fn message_event(engine: &Engine, input: &EngineInput) -> Option<ConsensusEvent> {
    let EngineInput::Message(message) = input else {
        return None;
    };
    let driver = engine.driver();
    match message {
        ConsensusMessage::Vote(signed)
            if signed.vote.height == engine.height()
                && driver.votes().vote_of(
                    signed.vote.round,
                    signed.vote.vote_type,
                    signed.vote.validator_index,
                ) != Some(signed) =>
        {
            let validator = engine
                .validators()
                .get(signed.vote.validator_index)?
                .address;
            Some(ConsensusEvent::Vote {
                vote: signed.clone(),
                validator,
            })
        }
        ConsensusMessage::Proposal(p)
            if p.signed.proposal.height() == engine.height()
                && driver
                    .proposal_of(p.signed.proposal.round(), p.signed.proposal.block_id())
                    .is_none() =>
        {
            Some(ConsensusEvent::CompleteProposal {
                state: round_state(engine),
                block: p.signed.proposal.block_id().hash,
            })
        }
        _ => None,
    }
}
