//! The round state machine of one height, as a pure function [`apply`]`(state, input) -> Transition`.
//!
//! It follows Algorithm 1 of "The latest gossip on BFT consensus" (Buchman–Kwon–Milosevic); each rule cites
//! the paper's line numbers. Inputs are the *already-aggregated* events the algorithm's `upon` rules react to
//! (the driver combines proposals and vote quorums into them); outputs are what the node should do.
//! Every rule checks its own guard (round, step, "for the first time"), so feeding an input whose guard does
//! not hold is a no-op: the driver may feed every currently-true condition after each event.
//!
//! Deviations from the paper, both for liveness at the edge rather than safety:
//! - The proposer also schedules `timeoutPropose` (the paper does only for the others, line 21), so a lost,
//!   refused or slow own proposal (or a slow `GetValue`) cannot stall it in the propose step.
//! - Proposing a fresh value is split in two: [`Output::GetValue`] asks the application for a block and
//!   [`Input::ProposeValue`] delivers it (line 18, `getValue()`), accepted once per round, only after asking.

use crate::primitives::{Height, Round, Timeout, TimeoutKind, VoteType};

/// The step of the current round (`step_p` in the paper), plus the states before a round and after deciding.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Step {
    /// Between rounds: the round number is set but `StartRound` has not run yet.
    Unstarted,
    /// `step_p = propose`.
    Propose,
    /// `step_p = prevote`.
    Prevote,
    /// `step_p = precommit`.
    Precommit,
    /// A value was decided for this height (line 49); nothing changes any more.
    Commit,
}

/// A value together with the round it is associated with (locked, valid or decided in).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct RoundValue<V> {
    /// The round.
    pub round: Round,
    /// The value.
    pub value: V,
}

/// Once-per-round flags for the rules the paper marks "for the first time", and the pending `getValue`.
/// All are reset when a new round starts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct RoundFlags {
    /// Line 34 fired: `timeoutPrevote` was scheduled.
    pub prevote_timeout_scheduled: bool,
    /// Line 36 fired: proposal + polka of the current round was handled.
    pub polka_current_handled: bool,
    /// Line 47 fired: `timeoutPrecommit` was scheduled.
    pub precommit_timeout_scheduled: bool,
    /// We asked the application for a value to propose (line 18) and have not received it yet.
    pub awaiting_value: bool,
}

/// The state of one height: Algorithm 1's `round_p`, `step_p`, `lockedValue_p`/`lockedRound_p`,
/// `validValue_p`/`validRound_p` and `decision_p[h_p]`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct State<V> {
    /// The height (`h_p`).
    pub height: Height,
    /// The current round (`round_p`).
    pub round: Round,
    /// The current step (`step_p`).
    pub step: Step,
    /// `lockedValue_p` and `lockedRound_p`; `None` is the paper's `nil` / `-1`.
    pub locked: Option<RoundValue<V>>,
    /// `validValue_p` and `validRound_p`; `None` is the paper's `nil` / `-1`.
    pub valid: Option<RoundValue<V>>,
    /// The decision of this height and the round it was decided in.
    pub decision: Option<RoundValue<V>>,
    /// "For the first time" bookkeeping of the current round.
    pub flags: RoundFlags,
}

impl<V> State<V> {
    /// The initial state of a height (line 10): round 0, not started, nothing locked or valid.
    pub fn new(height: Height) -> Self {
        State {
            height,
            round: Round(0),
            step: Step::Unstarted,
            locked: None,
            valid: None,
            decision: None,
            flags: RoundFlags::default(),
        }
    }
}

/// The events the state machine reacts to. Rounds are rounds of the state's height.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Input<V> {
    /// `StartRound(round)` (line 11); `is_proposer` is `proposer(h_p, round) = p`.
    NewRound {
        /// The round to start.
        round: Round,
        /// Whether we propose in this round.
        is_proposer: bool,
    },
    /// The application's answer to [`Output::GetValue`] (line 18).
    ProposeValue {
        /// The round asked for.
        round: Round,
        /// The value to propose.
        value: V,
    },
    /// Line 22: `⟨PROPOSAL, h_p, round_p, v, −1⟩` from the proposer while `step_p = propose`.
    Proposal {
        /// The proposal's round.
        round: Round,
        /// The proposed value.
        value: V,
        /// The application's verdict `valid(v)`.
        valid: bool,
    },
    /// Line 28: `⟨PROPOSAL, h_p, round_p, v, vr⟩` and `2f+1 ⟨PREVOTE, h_p, vr, id(v)⟩`, with
    /// `0 ≤ vr < round_p`, while `step_p = propose`.
    ProposalAndPolkaPrevious {
        /// The proposal's round.
        round: Round,
        /// The proposed value.
        value: V,
        /// The proposal's POL round `vr`, where the polka for `value` was seen.
        pol_round: Round,
        /// The application's verdict `valid(v)`.
        valid: bool,
    },
    /// Line 36: a *valid* proposal for `value` in `round_p` and `2f+1 ⟨PREVOTE, h_p, round_p, id(v)⟩`.
    /// `valid(v)` is a precondition of the rule, so the driver feeds this only for valid proposals.
    ProposalAndPolkaCurrent {
        /// The round.
        round: Round,
        /// The value with the proposal and the polka.
        value: V,
    },
    /// Line 34: `2f+1 ⟨PREVOTE, h_p, round_p, ∗⟩`.
    PolkaAny {
        /// The round.
        round: Round,
    },
    /// Line 44: `2f+1 ⟨PREVOTE, h_p, round_p, nil⟩`.
    PolkaNil {
        /// The round.
        round: Round,
    },
    /// Line 47: `2f+1 ⟨PRECOMMIT, h_p, round_p, ∗⟩`.
    PrecommitAny {
        /// The round.
        round: Round,
    },
    /// Line 49: a *valid* proposal for `value` in `round` and `2f+1 ⟨PRECOMMIT, h_p, round, id(v)⟩`, for ANY
    /// round. The driver feeds this only for valid proposals.
    ProposalAndPrecommitValue {
        /// The round of the proposal and of the precommits.
        round: Round,
        /// The value.
        value: V,
    },
    /// Lines 42-43 for an *earlier* round (a deviation from the paper, which updates `validValue` only
    /// in the current round): a valid proposal for `value` in `round < round_p` and
    /// `2f+1 ⟨PREVOTE, h_p, round, id(v)⟩`, with `round > validRound_p`. The driver feeds this only for
    /// valid proposals. See [`on_polka_past`] for why liveness needs it and why it is safe.
    ProposalAndPolkaPast {
        /// The earlier round of the proposal and the polka.
        round: Round,
        /// The value.
        value: V,
    },
    /// Line 55: `f+1 ⟨∗, h_p, round, ∗, ∗⟩` with `round > round_p`.
    SkipRound {
        /// The higher round.
        round: Round,
    },
    /// Line 57: `timeoutPropose` for `round` elapsed.
    TimeoutPropose {
        /// The round it was scheduled for.
        round: Round,
    },
    /// Line 61: `timeoutPrevote` for `round` elapsed.
    TimeoutPrevote {
        /// The round it was scheduled for.
        round: Round,
    },
    /// Line 65: `timeoutPrecommit` for `round` elapsed.
    TimeoutPrecommit {
        /// The round it was scheduled for.
        round: Round,
    },
}

/// What the node should do.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Output<V> {
    /// Broadcast `⟨PROPOSAL, h_p, round, value, pol_round⟩` (lines 16 and 19).
    Propose {
        /// The round.
        round: Round,
        /// The value proposed.
        value: V,
        /// `validRound_p`, `None` for `-1`.
        pol_round: Option<Round>,
    },
    /// Broadcast a prevote or precommit; `value: None` is a vote for nil.
    Vote {
        /// Prevote or precommit.
        vote_type: VoteType,
        /// The round.
        round: Round,
        /// The value, or `None` for nil.
        value: Option<V>,
    },
    /// Schedule a timeout; when it elapses, feed the matching timeout input.
    ScheduleTimeout(Timeout),
    /// Ask the application for a value to propose in `round` (line 18).
    GetValue {
        /// The round.
        round: Round,
    },
    /// `decision_p[h_p] = value` (line 51).
    Decide {
        /// The round the value was committed in.
        round: Round,
        /// The decided value.
        value: V,
    },
    /// Start `round` (lines 54, 56, 65): the driver answers with [`Input::NewRound`].
    NewRound(Round),
}

/// The result of [`apply`]: the next state and the outputs (at most three).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transition<V> {
    /// The state after the input.
    pub state: State<V>,
    /// What to do, in order.
    pub outputs: Vec<Output<V>>,
}

impl<V> Transition<V> {
    fn unchanged(state: State<V>) -> Self {
        Transition {
            state,
            outputs: Vec::new(),
        }
    }

    fn with(state: State<V>, outputs: Vec<Output<V>>) -> Self {
        Transition { state, outputs }
    }
}

/// Applies one input to the state. An input whose rule's guard does not hold returns the state unchanged and
/// no outputs. After a decision every input is a no-op.
pub fn apply<V: Clone + Eq>(state: State<V>, input: Input<V>) -> Transition<V> {
    if state.step == Step::Commit {
        return Transition::unchanged(state);
    }
    match input {
        Input::NewRound { round, is_proposer } => start_round(state, round, is_proposer),
        Input::ProposeValue { round, value } => propose_value(state, round, value),
        Input::Proposal {
            round,
            value,
            valid,
        } => on_proposal(state, round, value, valid),
        Input::ProposalAndPolkaPrevious {
            round,
            value,
            pol_round,
            valid,
        } => on_proposal_with_pol(state, round, value, pol_round, valid),
        Input::ProposalAndPolkaCurrent { round, value } => on_polka_current(state, round, value),
        Input::ProposalAndPolkaPast { round, value } => on_polka_past(state, round, value),
        Input::PolkaAny { round } => on_polka_any(state, round),
        Input::PolkaNil { round } => on_polka_nil(state, round),
        Input::PrecommitAny { round } => on_precommit_any(state, round),
        Input::ProposalAndPrecommitValue { round, value } => decide(state, round, value),
        Input::SkipRound { round } => skip_round(state, round),
        Input::TimeoutPropose { round } => on_timeout_propose(state, round),
        Input::TimeoutPrevote { round } => on_timeout_prevote(state, round),
        Input::TimeoutPrecommit { round } => on_timeout_precommit(state, round),
    }
}

fn vote<V>(vote_type: VoteType, round: Round, value: Option<V>) -> Output<V> {
    Output::Vote {
        vote_type,
        round,
        value,
    }
}

fn timeout<V>(kind: TimeoutKind, round: Round) -> Output<V> {
    Output::ScheduleTimeout(Timeout { kind, round })
}

/// Lines 11-21, `StartRound(round)`.
fn start_round<V: Clone>(mut state: State<V>, round: Round, is_proposer: bool) -> Transition<V> {
    // Rounds only move forward; `Unstarted` at the same round is the pending start after a skip/timeout.
    let starts = round > state.round || (round == state.round && state.step == Step::Unstarted);
    if !starts {
        return Transition::unchanged(state);
    }
    state.round = round;
    state.step = Step::Propose; // line 13
    state.flags = RoundFlags::default();
    let mut outputs = Vec::new();
    if is_proposer {
        match &state.valid {
            // Lines 15-16: re-propose the value we saw a polka for, with its POL round.
            Some(valid) => outputs.push(Output::Propose {
                round,
                value: valid.value.clone(),
                pol_round: Some(valid.round),
            }),
            // Line 18: `getValue()` is asynchronous here; `ProposeValue` completes line 19.
            None => {
                state.flags.awaiting_value = true;
                outputs.push(Output::GetValue { round });
            }
        }
    }
    // Line 21 (and, as a documented deviation, for the proposer too).
    outputs.push(timeout(TimeoutKind::Propose, round));
    Transition::with(state, outputs)
}

/// Line 19: broadcast the application's fresh value with `validRound_p = -1`.
fn propose_value<V>(mut state: State<V>, round: Round, value: V) -> Transition<V> {
    // Only the value we asked for, once: a second `ProposeValue` must never become a second proposal.
    if round != state.round || state.step != Step::Propose || !state.flags.awaiting_value {
        return Transition::unchanged(state);
    }
    state.flags.awaiting_value = false;
    let out = Output::Propose {
        round,
        value,
        pol_round: None,
    };
    Transition::with(state, vec![out])
}

/// Lines 22-27: a proposal without POL round while in the propose step.
fn on_proposal<V: Clone + Eq>(
    mut state: State<V>,
    round: Round,
    value: V,
    valid: bool,
) -> Transition<V> {
    if round != state.round || state.step != Step::Propose {
        return Transition::unchanged(state);
    }
    // Line 23: `valid(v) ∧ (lockedRound_p = −1 ∨ lockedValue_p = v)`.
    let acceptable = valid && state.locked.as_ref().is_none_or(|l| l.value == value);
    let prevote = acceptable.then_some(value); // line 24, else line 26 (nil)
    state.step = Step::Prevote; // line 27
    Transition::with(state, vec![vote(VoteType::Prevote, round, prevote)])
}

/// Lines 28-33: a proposal with POL round `vr < round_p` backed by a polka in `vr`.
fn on_proposal_with_pol<V: Clone + Eq>(
    mut state: State<V>,
    round: Round,
    value: V,
    pol_round: Round,
    valid: bool,
) -> Transition<V> {
    // Line 28: `step_p = propose ∧ (vr ≥ 0 ∧ vr < round_p)`.
    if round != state.round || state.step != Step::Propose || pol_round >= round {
        return Transition::unchanged(state);
    }
    // Line 29: `valid(v) ∧ (lockedRound_p ≤ vr ∨ lockedValue_p = v)`; this is where a lock is released
    // by a POL at least as recent as the lock.
    let acceptable = valid
        && state
            .locked
            .as_ref()
            .is_none_or(|l| l.round <= pol_round || l.value == value);
    let prevote = acceptable.then_some(value); // line 30, else line 32 (nil)
    state.step = Step::Prevote; // line 33
    Transition::with(state, vec![vote(VoteType::Prevote, round, prevote)])
}

/// Lines 34-35: schedule `timeoutPrevote` on the first +2/3 prevotes of any kind while prevoting.
fn on_polka_any<V>(mut state: State<V>, round: Round) -> Transition<V> {
    if round != state.round || state.step != Step::Prevote || state.flags.prevote_timeout_scheduled
    {
        return Transition::unchanged(state);
    }
    state.flags.prevote_timeout_scheduled = true;
    Transition::with(state, vec![timeout(TimeoutKind::Prevote, round)])
}

/// Lines 36-43: a valid proposal and a polka for it in the current round, step ≥ prevote, first time.
fn on_polka_current<V: Clone>(mut state: State<V>, round: Round, value: V) -> Transition<V> {
    if round != state.round || state.step < Step::Prevote || state.flags.polka_current_handled {
        return Transition::unchanged(state);
    }
    state.flags.polka_current_handled = true;
    let mut outputs = Vec::new();
    if state.step == Step::Prevote {
        // Lines 37-40: lock on the value and precommit it.
        state.locked = Some(RoundValue {
            round,
            value: value.clone(),
        });
        outputs.push(vote(VoteType::Precommit, round, Some(value.clone())));
        state.step = Step::Precommit;
    }
    // Lines 42-43: whatever the step, this value is now the valid value.
    state.valid = Some(RoundValue { round, value });
    Transition::with(state, outputs)
}

/// A polka completed for a round we have already left: its value becomes the valid value if that round
/// is later than the valid round (lines 42-43, extended to earlier rounds; nothing else changes: no
/// lock, no vote).
///
/// Why: the paper sets `validValue` only from a polka of the current round. A correct validator that
/// saw a polka while the others had already left that round (they timed out waiting for its own late
/// prevote: it started the height late) locks on it, and nobody else learns it as a valid value. Every
/// correct proposer then proposes something new, the locked validator prevotes nil, and when its vote is
/// needed for a quorum no round succeeds until the locked validator itself proposes (simulation seed
/// 1002716: a validator of power 2 of 20 locked in round 0, the height decided in round 11 when its turn
/// came). With this rule every correct validator that receives the polka (gossip delivers it after GST)
/// takes its value as valid, so the next correct proposer re-proposes it with that POL round, and the
/// locked validator (locked at most at that round) prevotes it.
///
/// Safe: `validValue`/`validRound` are read only when proposing, and a proposal with POL round `vr` is
/// prevoted only by validators that themselves hold `2f+1` prevotes for it in `vr` (line 28) — the
/// invariant "a polka for `validValue` exists in `validRound`" is all the safety argument uses, and it
/// holds here; a byzantine proposer may propose any such value anyway. Locks are untouched.
fn on_polka_past<V>(mut state: State<V>, round: Round, value: V) -> Transition<V> {
    let later = state.valid.as_ref().is_none_or(|v| round > v.round);
    if round >= state.round || !later {
        return Transition::unchanged(state);
    }
    state.valid = Some(RoundValue { round, value });
    Transition::unchanged(state)
}

/// Lines 44-46: +2/3 prevotes for nil while prevoting: precommit nil.
fn on_polka_nil<V>(mut state: State<V>, round: Round) -> Transition<V> {
    if round != state.round || state.step != Step::Prevote {
        return Transition::unchanged(state);
    }
    state.step = Step::Precommit;
    Transition::with(state, vec![vote(VoteType::Precommit, round, None)])
}

/// Lines 47-48: schedule `timeoutPrecommit` on the first +2/3 precommits of any kind.
fn on_precommit_any<V>(mut state: State<V>, round: Round) -> Transition<V> {
    if round != state.round || state.flags.precommit_timeout_scheduled {
        return Transition::unchanged(state);
    }
    state.flags.precommit_timeout_scheduled = true;
    Transition::with(state, vec![timeout(TimeoutKind::Precommit, round)])
}

/// Lines 49-54: a valid proposal and +2/3 precommits for it in ANY round decide the height.
/// (`apply` already returned early if a decision exists, which is line 49's `decision_p[h_p] = nil`.)
fn decide<V: Clone>(mut state: State<V>, round: Round, value: V) -> Transition<V> {
    state.decision = Some(RoundValue {
        round,
        value: value.clone(),
    });
    state.step = Step::Commit;
    // Lines 52-54 (next height, reset) are the edge's job: it builds the next height's driver.
    Transition::with(state, vec![Output::Decide { round, value }])
}

/// Lines 55-56: +1/3 of power is in a higher round: start it.
fn skip_round<V>(state: State<V>, round: Round) -> Transition<V> {
    if round <= state.round {
        return Transition::unchanged(state);
    }
    enter_round(state, round)
}

/// Moves to `round` in the `Unstarted` step and asks the driver to start it (`StartRound`).
fn enter_round<V>(mut state: State<V>, round: Round) -> Transition<V> {
    state.round = round;
    state.step = Step::Unstarted;
    state.flags = RoundFlags::default();
    Transition::with(state, vec![Output::NewRound(round)])
}

/// Lines 57-60: `timeoutPropose` in the propose step: prevote nil.
fn on_timeout_propose<V>(mut state: State<V>, round: Round) -> Transition<V> {
    if round != state.round || state.step != Step::Propose {
        return Transition::unchanged(state);
    }
    state.step = Step::Prevote;
    Transition::with(state, vec![vote(VoteType::Prevote, round, None)])
}

/// Lines 61-64: `timeoutPrevote` in the prevote step: precommit nil.
fn on_timeout_prevote<V>(mut state: State<V>, round: Round) -> Transition<V> {
    if round != state.round || state.step != Step::Prevote {
        return Transition::unchanged(state);
    }
    state.step = Step::Precommit;
    Transition::with(state, vec![vote(VoteType::Precommit, round, None)])
}

/// Lines 65-67: `timeoutPrecommit` of the current round: start the next round.
fn on_timeout_precommit<V>(state: State<V>, round: Round) -> Transition<V> {
    // The last representable round has no successor; staying put is the only non-wrapping choice.
    if round != state.round || round.0 == u32::MAX {
        return Transition::unchanged(state);
    }
    enter_round(state, round.next())
}
