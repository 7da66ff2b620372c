//! The height driver: owns the vote keeper, the round state machine's state and the received proposals of
//! one height, turns signed messages into the aggregated events of Algorithm 1 and the state machine's
//! outputs into what the edge must do.
//!
//! # How it evaluates the rules
//! After every input the driver stores what arrived (a proposal, a vote) and then repeatedly offers the state
//! machine every condition that currently holds, in priority order (line 49 decide, line 55 round skip,
//! lines 22/28 prevote, 36 lock, 44 nil, 34 and 47 timeouts, then 42-43 for rounds already left), until
//! none changes anything. The state machine
//! guards every rule ("for the first time", step, round), so this level-triggered evaluation is idempotent and
//! a condition that became true *before* its step was reached (a polka that arrived while we were still in
//! the propose step, a proposal buffered for a future round) fires as soon as the step or round is reached.
//!
//! # Bounds
//! Votes are accepted for the rounds the vote keeper tracks: `0 ..= round + round_window` plus a few
//! catch-up rounds opened by votes (see [`crate::core::votekeeper`]). Proposals are accepted for the same
//! rounds, so a lagging node can still decide a far-ahead round (line 49) once it holds that round's
//! precommits; other proposals are rejected with an error. Per round at most [`MAX_PROPOSALS_PER_ROUND`]
//! distinct proposals of the round's proposer are kept; a second, different one is proposer equivocation and
//! is reported once per round. Like the paper's `upon` rules, which fire for *any* received proposal, every
//! kept proposal is considered: lines 22/28 take them in arrival order (the first that applies moves us out
//! of the propose step), lines 36 and 49 fire for whichever one has the polka or the commit, so a node that
//! saw the equivocating proposer's "other" proposal first can still lock on or decide the one +2/3 backed.
//! Vote bounds are the vote keeper's.
//!
//! # Own messages
//! `Propose` and `Vote` outputs are unsigned intents: the edge signs, broadcasts and feeds the signed message
//! back in as an input, so our own messages are counted through the same path as everyone else's. A driver
//! built without an own validator index (a full node following consensus) never emits them.

use crate::core::state_machine::{self, RoundValue, State, Step};
use crate::core::votekeeper::{VoteEvent, VoteKeeper, VoteKeeperError, VoteRecord};
use crate::primitives::{
    Height, Round, Timeout, TimeoutKind, ValidatorIndex, VoteType, VotingPower,
};
use std::collections::{BTreeMap, VecDeque};
use std::fmt::Debug;
use std::hash::Hash;

/// The types a concrete chain plugs into the core.
pub trait Context {
    /// The value consensus decides on, as an id (e.g. a block id); the edge maps it back to the block.
    type Value: Clone + Eq + Ord + Hash + Debug;
    /// A signed vote, handed back in commits and evidence.
    type SignedVote: Clone + Debug;
    /// A signed proposal, handed back in evidence.
    type SignedProposal: Clone + Debug;
}

/// Who proposes in a round of this height (`proposer(h_p, round)`), supplied by the caller.
pub trait ProposerSelector {
    /// The proposer of `round`.
    fn proposer(&self, round: Round) -> ValidatorIndex;
}

impl<F: Fn(Round) -> ValidatorIndex> ProposerSelector for F {
    fn proposer(&self, round: Round) -> ValidatorIndex {
        self(round)
    }
}

/// The application's verdict on a proposed value (`valid(v)` in the paper).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Validity {
    /// The value may be decided.
    Valid,
    /// The value must not be prevoted or decided.
    Invalid,
}

impl Validity {
    /// `true` for [`Validity::Valid`].
    pub fn is_valid(self) -> bool {
        self == Validity::Valid
    }
}

/// Tunables of the driver.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DriverConfig {
    /// How many rounds above the current one votes and proposals are buffered for.
    pub round_window: u32,
}

impl Default for DriverConfig {
    fn default() -> Self {
        DriverConfig {
            round_window: crate::core::votekeeper::DEFAULT_ROUND_WINDOW,
        }
    }
}

/// Inputs of the driver. Signatures, the proposer's identity and the value's validity were checked by the edge.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Input<C: Context> {
    /// Start `round` of this height (`StartRound`, line 10 for round 0). Later rounds are started by the
    /// driver itself; this exists for the first round and for tests.
    StartRound {
        /// The round to start.
        round: Round,
    },
    /// A signed proposal from the round's proposer.
    Proposal {
        /// The proposal's round.
        round: Round,
        /// The proposed value.
        value: C::Value,
        /// The proposal's POL round (`vr`), `None` for `-1`.
        pol_round: Option<Round>,
        /// Who signed it; must be `proposer(round)`.
        proposer: ValidatorIndex,
        /// The application's verdict on `value`.
        validity: Validity,
        /// The signed message, kept for evidence.
        msg: C::SignedProposal,
    },
    /// A signed vote.
    Vote {
        /// Prevote or precommit.
        vote_type: VoteType,
        /// The vote's round.
        round: Round,
        /// The value voted for; `None` is nil.
        value: Option<C::Value>,
        /// Who voted.
        validator: ValidatorIndex,
        /// The signed message, kept for commits and evidence.
        msg: C::SignedVote,
    },
    /// The application's value for our proposal, answering [`Output::GetValue`].
    ProposeValue {
        /// The round it was asked for.
        round: Round,
        /// The value.
        value: C::Value,
    },
    /// A timeout the driver scheduled has elapsed.
    TimeoutElapsed(Timeout),
}

/// Evidence of byzantine behaviour: two conflicting signed messages.
#[derive(Clone, Debug)]
pub enum Evidence<C: Context> {
    /// Two different votes of one validator for the same (round, vote type).
    DuplicateVote {
        /// The equivocating validator.
        validator: ValidatorIndex,
        /// The round of both votes.
        round: Round,
        /// The type of both votes.
        vote_type: VoteType,
        /// The vote that was counted.
        first: C::SignedVote,
        /// The conflicting vote.
        second: C::SignedVote,
    },
    /// Two different proposals of the round's proposer for the same round.
    DuplicateProposal {
        /// The equivocating proposer.
        proposer: ValidatorIndex,
        /// The round of both proposals.
        round: Round,
        /// The proposal that was kept.
        first: C::SignedProposal,
        /// The conflicting proposal.
        second: C::SignedProposal,
    },
}

impl<C: Context> PartialEq for Evidence<C>
where
    C::SignedVote: PartialEq,
    C::SignedProposal: PartialEq,
{
    fn eq(&self, other: &Self) -> bool {
        use Evidence::*;
        match (self, other) {
            (
                DuplicateVote {
                    validator,
                    round,
                    vote_type,
                    first,
                    second,
                },
                DuplicateVote {
                    validator: v2,
                    round: r2,
                    vote_type: t2,
                    first: f2,
                    second: s2,
                },
            ) => (validator, round, vote_type, first, second) == (v2, r2, t2, f2, s2),
            (
                DuplicateProposal {
                    proposer,
                    round,
                    first,
                    second,
                },
                DuplicateProposal {
                    proposer: p2,
                    round: r2,
                    first: f2,
                    second: s2,
                },
            ) => (proposer, round, first, second) == (p2, r2, f2, s2),
            _ => false,
        }
    }
}

impl<C: Context> Eq for Evidence<C>
where
    C::SignedVote: Eq,
    C::SignedProposal: Eq,
{
}

/// What the edge must do. Nothing else is ever output.
#[derive(Clone, Debug)]
pub enum Output<C: Context> {
    /// Sign and broadcast a proposal, then feed it back as [`Input::Proposal`].
    Propose {
        /// The round.
        round: Round,
        /// The value (the edge maps it to the full block).
        value: C::Value,
        /// The POL round, `None` for `-1`.
        pol_round: Option<Round>,
    },
    /// Sign and broadcast a vote, then feed it back as [`Input::Vote`].
    Vote {
        /// Prevote or precommit.
        vote_type: VoteType,
        /// The round.
        round: Round,
        /// The value, `None` for nil.
        value: Option<C::Value>,
    },
    /// Start a timer; when it fires, feed [`Input::TimeoutElapsed`] with this timeout.
    ScheduleTimeout(Timeout),
    /// Ask the application for a value to propose in `round`; answer with [`Input::ProposeValue`].
    GetValue {
        /// The round.
        round: Round,
    },
    /// The height is decided.
    Decide {
        /// The round of the decision.
        round: Round,
        /// The decided value.
        value: C::Value,
        /// The +2/3 signed precommits for `value` in `round` that were counted, in validator-index order.
        commit: Vec<C::SignedVote>,
    },
    /// Byzantine behaviour was detected.
    Evidence(Evidence<C>),
}

// Written out because a derive cannot bound the nested `Evidence<C>` on `C`'s associated types.
impl<C: Context> PartialEq for Output<C>
where
    C::SignedVote: PartialEq,
    C::SignedProposal: PartialEq,
{
    fn eq(&self, other: &Self) -> bool {
        use Output::*;
        match (self, other) {
            (
                Propose {
                    round,
                    value,
                    pol_round,
                },
                Propose {
                    round: r2,
                    value: v2,
                    pol_round: p2,
                },
            ) => (round, value, pol_round) == (r2, v2, p2),
            (
                Vote {
                    vote_type,
                    round,
                    value,
                },
                Vote {
                    vote_type: t2,
                    round: r2,
                    value: v2,
                },
            ) => (vote_type, round, value) == (t2, r2, v2),
            (ScheduleTimeout(a), ScheduleTimeout(b)) => a == b,
            (GetValue { round }, GetValue { round: r2 }) => round == r2,
            (
                Decide {
                    round,
                    value,
                    commit,
                },
                Decide {
                    round: r2,
                    value: v2,
                    commit: c2,
                },
            ) => (round, value, commit) == (r2, v2, c2),
            (Evidence(a), Evidence(b)) => a == b,
            _ => false,
        }
    }
}

impl<C: Context> Eq for Output<C>
where
    C::SignedVote: Eq,
    C::SignedProposal: Eq,
{
}

/// Errors of the driver. Except for [`DriverError::RulesDidNotSettle`] (an internal bug), an error means the
/// input was rejected before anything was stored or any state changed; the edge drops the message (and may
/// score its sender).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DriverError {
    /// The vote keeper rejected the vote (or the validator set).
    #[error(transparent)]
    VoteKeeper(#[from] VoteKeeperError),
    /// The own validator index is not in the validator set.
    #[error("own validator index {own} is outside the set of {validator_count} validators")]
    OwnIndexOutOfRange {
        /// The index given.
        own: ValidatorIndex,
        /// Size of the validator set.
        validator_count: usize,
    },
    /// The proposal was not signed by the round's proposer.
    #[error("proposal for round {round} from {actual}, but the proposer is {expected}")]
    WrongProposer {
        /// The proposal's round.
        round: Round,
        /// `proposer(round)`.
        expected: ValidatorIndex,
        /// Who signed it.
        actual: ValidatorIndex,
    },
    /// A proposal's POL round must be below its round (line 28's `vr < round_p`).
    #[error("proposal for round {round} carries POL round {pol_round}, which is not below it")]
    InvalidPolRound {
        /// The proposal's round.
        round: Round,
        /// The POL round it carried.
        pol_round: Round,
    },
    /// The proposal's round is beyond the window and no vote opened it as a catch-up round.
    #[error("proposal for round {round} is outside the window (current round {current_round}, window {round_window}) and no vote opened it")]
    ProposalOutsideWindow {
        /// The proposal's round.
        round: Round,
        /// The current round.
        current_round: Round,
        /// The configured window.
        round_window: u32,
    },
    /// Internal invariant: rule evaluation did not settle. Unreachable unless the state machine has a bug.
    #[error("rule evaluation did not settle after {steps} steps at round {round}")]
    RulesDidNotSettle {
        /// Steps taken.
        steps: usize,
        /// The round reached.
        round: Round,
    },
}

/// A proposal kept for a round.
#[derive(Clone, Debug)]
struct StoredProposal<C: Context> {
    value: C::Value,
    pol_round: Option<Round>,
    validity: Validity,
    msg: C::SignedProposal,
}

/// How many distinct proposals of one round (from its proposer) are kept; the rest are dropped.
pub const MAX_PROPOSALS_PER_ROUND: usize = 4;

/// Upper bound on state-machine steps per input. Each rule fires at most once per round and rounds only
/// move forward (to rounds within the window), so a few dozen suffice; the bound turns a bug into an error.
const MAX_RULE_STEPS: usize = 1024;

/// The height driver. See the module docs. `Clone` (when `C` and `P` are) gives cheap snapshots for tests.
#[derive(Clone, Debug)]
pub struct Driver<C: Context, P> {
    own: Option<ValidatorIndex>,
    proposer: P,
    config: DriverConfig,
    keeper: VoteKeeper<C::Value, C::SignedVote>,
    /// Per round, the distinct proposals of its proposer in arrival order (at most
    /// [`MAX_PROPOSALS_PER_ROUND`]).
    proposals: BTreeMap<Round, Vec<StoredProposal<C>>>,
    state: State<C::Value>,
}

impl<C: Context, P: ProposerSelector> Driver<C, P> {
    /// A driver for `height` of a validator set given as powers indexed by [`ValidatorIndex`]. `own` is our
    /// index if we are a validator. The height starts with [`Input::StartRound`] `{ round: Round(0) }`.
    pub fn new(
        height: Height,
        powers: Vec<VotingPower>,
        own: Option<ValidatorIndex>,
        proposer: P,
        config: DriverConfig,
    ) -> Result<Self, DriverError> {
        let validator_count = powers.len();
        if let Some(own) = own {
            if usize::try_from(own.0).map_or(true, |i| i >= validator_count) {
                return Err(DriverError::OwnIndexOutOfRange {
                    own,
                    validator_count,
                });
            }
        }
        Ok(Driver {
            own,
            proposer,
            config,
            keeper: VoteKeeper::new(powers, config.round_window)?,
            proposals: BTreeMap::new(),
            state: State::new(height),
        })
    }

    /// The height.
    pub fn height(&self) -> Height {
        self.state.height
    }

    /// The current round.
    pub fn round(&self) -> Round {
        self.state.round
    }

    /// The current step.
    pub fn step(&self) -> Step {
        self.state.step
    }

    /// The whole state-machine state (locked / valid values, flags).
    pub fn state(&self) -> &State<C::Value> {
        &self.state
    }

    /// The decision, once made.
    pub fn decision(&self) -> Option<&RoundValue<C::Value>> {
        self.state.decision.as_ref()
    }

    /// The vote keeper (read-only), for queries such as commits of other rounds.
    pub fn votes(&self) -> &VoteKeeper<C::Value, C::SignedVote> {
        &self.keeper
    }

    /// The kept proposals of `round`, in arrival order (at most [`MAX_PROPOSALS_PER_ROUND`]), with the
    /// value each proposes.
    pub fn proposals(&self, round: Round) -> impl Iterator<Item = (&C::Value, &C::SignedProposal)> {
        self.proposals
            .get(&round)
            .into_iter()
            .flatten()
            .map(|p| (&p.value, &p.msg))
    }

    /// The kept proposal of `round` that proposes `value`, if any.
    pub fn proposal_of(&self, round: Round, value: &C::Value) -> Option<&C::SignedProposal> {
        self.proposals(round)
            .find(|(v, _)| *v == value)
            .map(|(_, msg)| msg)
    }

    /// Our validator index, if we are a validator.
    pub fn own_index(&self) -> Option<ValidatorIndex> {
        self.own
    }

    /// Processes one input and returns what the edge must do, in order.
    pub fn process(&mut self, input: Input<C>) -> Result<Vec<Output<C>>, DriverError> {
        let mut outputs = Vec::new();
        let mut queue = VecDeque::new();
        match input {
            Input::StartRound { round } => queue.push_back(self.new_round_input(round)),
            Input::Proposal {
                round,
                value,
                pol_round,
                proposer,
                validity,
                msg,
            } => {
                let stored = StoredProposal {
                    value,
                    pol_round,
                    validity,
                    msg,
                };
                self.store_proposal(round, proposer, stored, &mut outputs)?;
            }
            Input::Vote {
                vote_type,
                round,
                value,
                validator,
                msg,
            } => {
                let record = VoteRecord {
                    validator,
                    round,
                    vote_type,
                    value,
                    msg,
                };
                self.store_vote(record, &mut outputs)?;
            }
            Input::ProposeValue { round, value } => {
                queue.push_back(state_machine::Input::ProposeValue { round, value });
            }
            Input::TimeoutElapsed(timeout) => queue.push_back(timeout_input(timeout)),
        }
        // After the decision, only evidence is still produced (from late votes and proposals).
        if self.state.step != Step::Commit {
            self.run(queue, &mut outputs)?;
        }
        Ok(outputs)
    }

    fn is_proposer(&self, round: Round) -> bool {
        self.own
            .is_some_and(|own| self.proposer.proposer(round) == own)
    }

    fn new_round_input(&self, round: Round) -> state_machine::Input<C::Value> {
        state_machine::Input::NewRound {
            round,
            is_proposer: self.is_proposer(round),
        }
    }

    /// Keeps up to `MAX_PROPOSALS_PER_ROUND` distinct proposals of a round; the first conflicting one is
    /// reported as proposer equivocation.
    fn store_proposal(
        &mut self,
        round: Round,
        proposer: ValidatorIndex,
        proposal: StoredProposal<C>,
        outputs: &mut Vec<Output<C>>,
    ) -> Result<(), DriverError> {
        let expected = self.proposer.proposer(round);
        if proposer != expected {
            return Err(DriverError::WrongProposer {
                round,
                expected,
                actual: proposer,
            });
        }
        if let Some(pol_round) = proposal.pol_round.filter(|vr| *vr >= round) {
            return Err(DriverError::InvalidPolRound { round, pol_round });
        }
        if !self.keeper.is_tracked(round) {
            return Err(DriverError::ProposalOutsideWindow {
                round,
                current_round: self.state.round,
                round_window: self.config.round_window,
            });
        }
        let kept = self.proposals.entry(round).or_default();
        let duplicate = kept
            .iter()
            .any(|p| p.value == proposal.value && p.pol_round == proposal.pol_round);
        if duplicate || kept.len() >= MAX_PROPOSALS_PER_ROUND {
            return Ok(());
        }
        // Evidence once per round: on the first conflicting proposal.
        if let [first] = kept.as_slice() {
            outputs.push(Output::Evidence(Evidence::DuplicateProposal {
                proposer,
                round,
                first: first.msg.clone(),
                second: proposal.msg.clone(),
            }));
        }
        kept.push(proposal);
        Ok(())
    }

    /// Counts a vote; only equivocation evidence is output here, quorums are picked up by the rules.
    fn store_vote(
        &mut self,
        record: VoteRecord<C::Value, C::SignedVote>,
        outputs: &mut Vec<Output<C>>,
    ) -> Result<(), DriverError> {
        for event in self.keeper.add_vote(record)? {
            if let VoteEvent::Equivocation(e) = event {
                outputs.push(Output::Evidence(Evidence::DuplicateVote {
                    validator: e.validator,
                    round: e.round,
                    vote_type: e.vote_type,
                    first: e.first,
                    second: e.second,
                }));
            }
        }
        Ok(())
    }

    /// Applies queued inputs, then every condition that holds, until nothing changes.
    fn run(
        &mut self,
        mut queue: VecDeque<state_machine::Input<C::Value>>,
        outputs: &mut Vec<Output<C>>,
    ) -> Result<(), DriverError> {
        for _ in 0..MAX_RULE_STEPS {
            let next = match queue.pop_front() {
                Some(input) => Some(input),
                None => self.next_rule_input(),
            };
            let Some(input) = next else {
                return Ok(());
            };
            for out in self.apply(input) {
                self.handle_output(out, &mut queue, outputs);
            }
        }
        Err(DriverError::RulesDidNotSettle {
            steps: MAX_RULE_STEPS,
            round: self.state.round,
        })
    }

    /// Applies one input to the state machine and stores the new state.
    fn apply(
        &mut self,
        input: state_machine::Input<C::Value>,
    ) -> Vec<state_machine::Output<C::Value>> {
        let transition = state_machine::apply(self.state.clone(), input);
        self.state = transition.state;
        // The window follows the state machine however the round moved (skip, timeout, or StartRound).
        self.keeper.set_round(self.state.round);
        transition.outputs
    }

    /// The highest-priority condition that currently holds AND changes the state machine, if any.
    fn next_rule_input(&self) -> Option<state_machine::Input<C::Value>> {
        self.rule_candidates().into_iter().find(|input| {
            state_machine::apply(self.state.clone(), input.clone()).state != self.state
        })
    }

    /// Every aggregated event that currently holds, in the order the driver offers them.
    fn rule_candidates(&self) -> Vec<state_machine::Input<C::Value>> {
        use state_machine::Input as Sm;
        let round = self.state.round;
        let mut out = Vec::new();
        // Line 49, any round: a valid proposal of round r and +2/3 precommits for it in r.
        for (r, value) in self.keeper.precommit_quorums() {
            let proposed = self.proposals.get(&r).is_some_and(|kept| {
                kept.iter()
                    .any(|p| p.value == value && p.validity.is_valid())
            });
            if proposed {
                out.push(Sm::ProposalAndPrecommitValue { round: r, value });
            }
        }
        // Line 55.
        if let Some(r) = self.keeper.skip_round_above(round) {
            out.push(Sm::SkipRound { round: r });
        }
        for p in self.proposals.get(&round).into_iter().flatten() {
            self.proposal_candidates(round, p, &mut out);
        }
        if self.keeper.has_polka_nil(round) {
            out.push(Sm::PolkaNil { round }); // line 44
        }
        if self.keeper.has_polka_any(round) {
            out.push(Sm::PolkaAny { round }); // line 34
        }
        if self.keeper.has_precommit_any(round) {
            out.push(Sm::PrecommitAny { round }); // line 47
        }
        // Lines 42-43 for rounds already left (see `state_machine::on_polka_past`): only rounds
        // after the valid round can change anything.
        let after_valid = self
            .state
            .valid
            .as_ref()
            .map_or(Round(0), |v| Round(v.round.0.saturating_add(1)));
        if after_valid < round {
            for (&r, kept) in self.proposals.range(after_valid..round) {
                for p in kept {
                    if p.validity.is_valid() && self.keeper.has_polka_for(r, &p.value) {
                        out.push(Sm::ProposalAndPolkaPast {
                            round: r,
                            value: p.value.clone(),
                        });
                    }
                }
            }
        }
        out
    }

    /// Lines 22, 28 and 36 for one proposal of the current round.
    fn proposal_candidates(
        &self,
        round: Round,
        p: &StoredProposal<C>,
        out: &mut Vec<state_machine::Input<C::Value>>,
    ) {
        use state_machine::Input as Sm;
        let valid = p.validity.is_valid();
        match p.pol_round {
            // Line 22: no POL round.
            None => out.push(Sm::Proposal {
                round,
                value: p.value.clone(),
                valid,
            }),
            // Line 28: the POL round's prevotes must show a polka for this very value.
            Some(vr) if self.keeper.has_polka_for(vr, &p.value) => {
                out.push(Sm::ProposalAndPolkaPrevious {
                    round,
                    value: p.value.clone(),
                    pol_round: vr,
                    valid,
                })
            }
            // No polka (yet) in vr: wait for it or for timeoutPropose.
            Some(_) => {}
        }
        // Line 36.
        if valid && self.keeper.has_polka_for(round, &p.value) {
            out.push(Sm::ProposalAndPolkaCurrent {
                round,
                value: p.value.clone(),
            });
        }
    }

    /// Turns a state-machine output into driver outputs or follow-up inputs.
    fn handle_output(
        &mut self,
        out: state_machine::Output<C::Value>,
        queue: &mut VecDeque<state_machine::Input<C::Value>>,
        outputs: &mut Vec<Output<C>>,
    ) {
        use state_machine::Output as Sm;
        match out {
            Sm::NewRound(round) => queue.push_back(self.new_round_input(round)),
            Sm::ScheduleTimeout(t) => outputs.push(Output::ScheduleTimeout(t)),
            Sm::Decide { round, value } => {
                let commit = self.keeper.precommits_for(round, &value);
                outputs.push(Output::Decide {
                    round,
                    value,
                    commit,
                });
            }
            // Only validators sign; a follower keeps the state but stays silent.
            _ if self.own.is_none() => {}
            Sm::Propose {
                round,
                value,
                pol_round,
            } => outputs.push(Output::Propose {
                round,
                value,
                pol_round,
            }),
            Sm::Vote {
                vote_type,
                round,
                value,
            } => outputs.push(Output::Vote {
                vote_type,
                round,
                value,
            }),
            Sm::GetValue { round } => outputs.push(Output::GetValue { round }),
        }
    }
}

fn timeout_input<V>(timeout: Timeout) -> state_machine::Input<V> {
    let round = timeout.round;
    match timeout.kind {
        TimeoutKind::Propose => state_machine::Input::TimeoutPropose { round },
        TimeoutKind::Prevote => state_machine::Input::TimeoutPrevote { round },
        TimeoutKind::Precommit => state_machine::Input::TimeoutPrecommit { round },
    }
}
