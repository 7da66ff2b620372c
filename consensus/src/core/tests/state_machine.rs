//! Table-driven tests of the round state machine: each step is `input → expected outputs, expected state`.

use crate::core::state_machine::{apply, Input, Output, RoundValue, State, Step};
use crate::primitives::{Height, Round, Timeout, TimeoutKind, VoteType};

type V = u64;
/// A lock or valid value as (round, value).
type Lock = Option<(u32, V)>;
/// (name, lock, valid(v), expected prevote).
type Row22 = (&'static str, Lock, bool, Option<V>);
/// (name, lock, vr, valid(v), expected prevote).
type Row28 = (&'static str, Lock, u32, bool, Option<V>);
/// (name, round, step, input, expected outputs, round after, step after).
type TimeoutRow = (&'static str, u32, Step, Input<V>, Vec<Output<V>>, u32, Step);

/// The parts of the state a step asserts.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Expect {
    round: u32,
    step: Step,
    locked: Option<(u32, V)>,
    valid: Option<(u32, V)>,
    decision: Option<(u32, V)>,
}

fn exp(round: u32, step: Step) -> Expect {
    Expect {
        round,
        step,
        locked: None,
        valid: None,
        decision: None,
    }
}

impl Expect {
    fn locked(mut self, round: u32, value: V) -> Self {
        self.locked = Some((round, value));
        self
    }
    fn valid(mut self, round: u32, value: V) -> Self {
        self.valid = Some((round, value));
        self
    }
    fn decided(mut self, round: u32, value: V) -> Self {
        self.decision = Some((round, value));
        self
    }
}

fn rv(rv: &Option<RoundValue<V>>) -> Option<(u32, V)> {
    rv.as_ref().map(|x| (x.round.0, x.value))
}

fn observed(s: &State<V>) -> Expect {
    Expect {
        round: s.round.0,
        step: s.step,
        locked: rv(&s.locked),
        valid: rv(&s.valid),
        decision: rv(&s.decision),
    }
}

/// Runs the steps from `state`, asserting outputs and state after each; returns the final state.
fn run(
    name: &str,
    mut state: State<V>,
    steps: Vec<(Input<V>, Vec<Output<V>>, Expect)>,
) -> State<V> {
    for (i, (input, outputs, expect)) in steps.into_iter().enumerate() {
        let t = apply(state, input.clone());
        assert_eq!(t.outputs, outputs, "{name}: step {i} ({input:?}) outputs");
        assert_eq!(
            observed(&t.state),
            expect,
            "{name}: step {i} ({input:?}) state"
        );
        state = t.state;
    }
    state
}

fn r(n: u32) -> Round {
    Round(n)
}

fn new_round(round: u32, is_proposer: bool) -> Input<V> {
    Input::NewRound {
        round: r(round),
        is_proposer,
    }
}

fn proposal(round: u32, value: V, valid: bool) -> Input<V> {
    Input::Proposal {
        round: r(round),
        value,
        valid,
    }
}

fn proposal_pol(round: u32, value: V, pol_round: u32, valid: bool) -> Input<V> {
    Input::ProposalAndPolkaPrevious {
        round: r(round),
        value,
        pol_round: r(pol_round),
        valid,
    }
}

fn polka_current(round: u32, value: V) -> Input<V> {
    Input::ProposalAndPolkaCurrent {
        round: r(round),
        value,
    }
}

fn prevote(round: u32, value: Option<V>) -> Output<V> {
    Output::Vote {
        vote_type: VoteType::Prevote,
        round: r(round),
        value,
    }
}

fn precommit(round: u32, value: Option<V>) -> Output<V> {
    Output::Vote {
        vote_type: VoteType::Precommit,
        round: r(round),
        value,
    }
}

fn sched(kind: TimeoutKind, round: u32) -> Output<V> {
    Output::ScheduleTimeout(Timeout {
        kind,
        round: r(round),
    })
}

fn fresh() -> State<V> {
    State::new(Height(1))
}

/// A state in `round` at `step` with the given lock and valid value (flags cleared).
fn at(round: u32, step: Step, locked: Option<(u32, V)>, valid: Option<(u32, V)>) -> State<V> {
    let mut s = fresh();
    s.round = r(round);
    s.step = step;
    s.locked = locked.map(|(round, value)| RoundValue {
        round: r(round),
        value,
    });
    s.valid = valid.map(|(round, value)| RoundValue {
        round: r(round),
        value,
    });
    s
}

#[test]
fn proposer_without_valid_value_asks_and_proposes_once_lines_14_19() {
    run(
        "fresh proposer",
        fresh(),
        vec![
            (
                new_round(0, true),
                vec![
                    Output::GetValue { round: r(0) },
                    sched(TimeoutKind::Propose, 0),
                ],
                exp(0, Step::Propose),
            ),
            (
                Input::ProposeValue {
                    round: r(0),
                    value: 7,
                },
                vec![Output::Propose {
                    round: r(0),
                    value: 7,
                    pol_round: None,
                }],
                exp(0, Step::Propose),
            ),
            // A second value for the same round must not become a second (equivocating) proposal.
            (
                Input::ProposeValue {
                    round: r(0),
                    value: 8,
                },
                vec![],
                exp(0, Step::Propose),
            ),
        ],
    );
}

#[test]
fn propose_value_without_asking_or_for_other_round_is_ignored() {
    run(
        "unasked value",
        fresh(),
        vec![
            (
                new_round(0, false),
                vec![sched(TimeoutKind::Propose, 0)],
                exp(0, Step::Propose),
            ),
            (
                Input::ProposeValue {
                    round: r(0),
                    value: 7,
                },
                vec![],
                exp(0, Step::Propose),
            ),
        ],
    );
    run(
        "late value for an old round",
        fresh(),
        vec![
            (
                new_round(0, true),
                vec![
                    Output::GetValue { round: r(0) },
                    sched(TimeoutKind::Propose, 0),
                ],
                exp(0, Step::Propose),
            ),
            (
                Input::TimeoutPropose { round: r(0) },
                vec![prevote(0, None)],
                exp(0, Step::Prevote),
            ),
            (
                Input::ProposeValue {
                    round: r(0),
                    value: 7,
                },
                vec![],
                exp(0, Step::Prevote),
            ),
        ],
    );
}

#[test]
fn proposer_with_valid_value_reproposes_it_with_its_round_lines_15_16() {
    run(
        "valid value re-proposed",
        at(0, Step::Precommit, None, Some((0, 7))),
        vec![
            (
                Input::TimeoutPrecommit { round: r(0) },
                vec![Output::NewRound(r(1))],
                exp(1, Step::Unstarted).valid(0, 7),
            ),
            (
                new_round(1, true),
                vec![
                    Output::Propose {
                        round: r(1),
                        value: 7,
                        pol_round: Some(r(0)),
                    },
                    sched(TimeoutKind::Propose, 1),
                ],
                exp(1, Step::Propose).valid(0, 7),
            ),
        ],
    );
}

#[test]
fn non_proposer_schedules_timeout_propose_line_21() {
    run(
        "non-proposer",
        fresh(),
        vec![
            (
                new_round(0, false),
                vec![sched(TimeoutKind::Propose, 0)],
                exp(0, Step::Propose),
            ),
            // Starting the same round again is a no-op; rounds never go back.
            (new_round(0, false), vec![], exp(0, Step::Propose)),
        ],
    );
}

#[test]
fn prevote_on_proposal_without_pol_lines_22_27() {
    // (name, lock, valid(v), expected prevote)
    let table: Vec<Row22> = vec![
        ("valid, unlocked", None, true, Some(7)),
        ("invalid, unlocked", None, false, None),
        ("valid, locked on same value", Some((0, 7)), true, Some(7)),
        ("valid, locked on other value", Some((0, 9)), true, None),
        ("invalid, locked on same value", Some((0, 7)), false, None),
    ];
    for (name, lock, valid, vote) in table {
        let mut e = exp(1, Step::Prevote);
        e.locked = lock;
        run(
            name,
            at(1, Step::Propose, lock, None),
            vec![(proposal(1, 7, valid), vec![prevote(1, vote)], e)],
        );
    }
}

#[test]
fn proposal_outside_propose_step_or_round_is_ignored_line_22_guard() {
    run(
        "wrong round",
        at(1, Step::Propose, None, None),
        vec![(proposal(0, 7, true), vec![], exp(1, Step::Propose))],
    );
    run(
        "already prevoted",
        at(1, Step::Prevote, None, None),
        vec![(proposal(1, 7, true), vec![], exp(1, Step::Prevote))],
    );
}

#[test]
fn prevote_on_proposal_with_pol_lines_28_33() {
    // (name, lock, vr, valid(v), expected prevote); proposal value is 7 in round 3.
    let table: Vec<Row28> = vec![
        ("unlocked", None, 1, true, Some(7)),
        ("unlocked, invalid", None, 1, false, None),
        (
            "locked earlier than vr on other value: unlock",
            Some((0, 9)),
            1,
            true,
            Some(7),
        ),
        (
            "locked in vr on other value: lockedRound <= vr",
            Some((1, 9)),
            1,
            true,
            Some(7),
        ),
        (
            "locked after vr on other value",
            Some((2, 9)),
            1,
            true,
            None,
        ),
        (
            "locked after vr on same value",
            Some((2, 7)),
            1,
            true,
            Some(7),
        ),
        (
            "locked after vr on same value, invalid",
            Some((2, 7)),
            1,
            false,
            None,
        ),
    ];
    for (name, lock, vr, valid, vote) in table {
        let mut e = exp(3, Step::Prevote);
        e.locked = lock;
        run(
            name,
            at(3, Step::Propose, lock, None),
            vec![(proposal_pol(3, 7, vr, valid), vec![prevote(3, vote)], e)],
        );
    }
}

#[test]
fn proposal_with_pol_not_below_round_is_ignored_line_28_guard() {
    run(
        "vr = round",
        at(2, Step::Propose, None, None),
        vec![(proposal_pol(2, 7, 2, true), vec![], exp(2, Step::Propose))],
    );
}

#[test]
fn timeout_prevote_scheduled_once_on_polka_any_lines_34_35() {
    run(
        "polka any",
        at(0, Step::Propose, None, None),
        vec![
            // Not yet prevoting: the rule's guard `step = prevote` does not hold.
            (
                Input::PolkaAny { round: r(0) },
                vec![],
                exp(0, Step::Propose),
            ),
            (
                Input::TimeoutPropose { round: r(0) },
                vec![prevote(0, None)],
                exp(0, Step::Prevote),
            ),
            (
                Input::PolkaAny { round: r(0) },
                vec![sched(TimeoutKind::Prevote, 0)],
                exp(0, Step::Prevote),
            ),
            // "For the first time".
            (
                Input::PolkaAny { round: r(0) },
                vec![],
                exp(0, Step::Prevote),
            ),
            (
                Input::PolkaAny { round: r(1) },
                vec![],
                exp(0, Step::Prevote),
            ),
        ],
    );
}

#[test]
fn lock_and_precommit_on_polka_lines_36_43() {
    run(
        "lock",
        at(0, Step::Prevote, None, None),
        vec![
            (
                polka_current(0, 7),
                vec![precommit(0, Some(7))],
                exp(0, Step::Precommit).locked(0, 7).valid(0, 7),
            ),
            // "For the first time".
            (
                polka_current(0, 7),
                vec![],
                exp(0, Step::Precommit).locked(0, 7).valid(0, 7),
            ),
        ],
    );
    run(
        "relock on a newer polka replaces the old lock",
        at(2, Step::Prevote, Some((0, 9)), Some((0, 9))),
        vec![(
            polka_current(2, 7),
            vec![precommit(2, Some(7))],
            exp(2, Step::Precommit).locked(2, 7).valid(2, 7),
        )],
    );
    run(
        "propose step: guard step >= prevote fails",
        at(0, Step::Propose, None, None),
        vec![(polka_current(0, 7), vec![], exp(0, Step::Propose))],
    );
}

#[test]
fn valid_value_updates_after_precommit_step_lines_42_43() {
    run(
        "already precommitted nil: only valid value changes",
        at(1, Step::Precommit, Some((0, 9)), Some((0, 9))),
        vec![
            (
                polka_current(1, 7),
                vec![],
                exp(1, Step::Precommit).locked(0, 9).valid(1, 7),
            ),
            (
                polka_current(1, 7),
                vec![],
                exp(1, Step::Precommit).locked(0, 9).valid(1, 7),
            ),
        ],
    );
}

#[test]
fn precommit_nil_on_polka_nil_lines_44_46() {
    run(
        "polka nil",
        at(0, Step::Prevote, Some((0, 3)), None),
        vec![
            (
                Input::PolkaNil { round: r(0) },
                vec![precommit(0, None)],
                exp(0, Step::Precommit).locked(0, 3),
            ),
            (
                Input::PolkaNil { round: r(0) },
                vec![],
                exp(0, Step::Precommit).locked(0, 3),
            ),
        ],
    );
    run(
        "wrong step",
        at(0, Step::Propose, None, None),
        vec![(
            Input::PolkaNil { round: r(0) },
            vec![],
            exp(0, Step::Propose),
        )],
    );
}

#[test]
fn timeout_precommit_scheduled_once_lines_47_48() {
    for step in [Step::Propose, Step::Prevote, Step::Precommit] {
        run(
            "precommit any",
            at(0, step, None, None),
            vec![
                (
                    Input::PrecommitAny { round: r(0) },
                    vec![sched(TimeoutKind::Precommit, 0)],
                    exp(0, step),
                ),
                (Input::PrecommitAny { round: r(0) }, vec![], exp(0, step)),
                (Input::PrecommitAny { round: r(1) }, vec![], exp(0, step)),
            ],
        );
    }
}

#[test]
fn decide_in_any_round_then_ignore_everything_lines_49_54() {
    run(
        "decide a past round",
        at(2, Step::Prevote, Some((1, 9)), Some((1, 9))),
        vec![
            (
                Input::ProposalAndPrecommitValue {
                    round: r(0),
                    value: 7,
                },
                vec![Output::Decide {
                    round: r(0),
                    value: 7,
                }],
                exp(2, Step::Commit).locked(1, 9).valid(1, 9).decided(0, 7),
            ),
            (
                Input::ProposalAndPrecommitValue {
                    round: r(2),
                    value: 9,
                },
                vec![],
                exp(2, Step::Commit).locked(1, 9).valid(1, 9).decided(0, 7),
            ),
            (
                Input::TimeoutPrecommit { round: r(2) },
                vec![],
                exp(2, Step::Commit).locked(1, 9).valid(1, 9).decided(0, 7),
            ),
            (
                Input::SkipRound { round: r(5) },
                vec![],
                exp(2, Step::Commit).locked(1, 9).valid(1, 9).decided(0, 7),
            ),
        ],
    );
    run(
        "decide a future round while still proposing",
        at(0, Step::Propose, None, None),
        vec![(
            Input::ProposalAndPrecommitValue {
                round: r(3),
                value: 7,
            },
            vec![Output::Decide {
                round: r(3),
                value: 7,
            }],
            exp(0, Step::Commit).decided(3, 7),
        )],
    );
}

#[test]
fn round_skip_on_higher_round_lines_55_56() {
    run(
        "skip",
        at(1, Step::Prevote, Some((0, 7)), Some((0, 7))),
        vec![
            (
                Input::SkipRound { round: r(1) },
                vec![],
                exp(1, Step::Prevote).locked(0, 7).valid(0, 7),
            ),
            (
                Input::SkipRound { round: r(3) },
                vec![Output::NewRound(r(3))],
                exp(3, Step::Unstarted).locked(0, 7).valid(0, 7),
            ),
            (
                Input::SkipRound { round: r(2) },
                vec![],
                exp(3, Step::Unstarted).locked(0, 7).valid(0, 7),
            ),
            (
                new_round(3, false),
                vec![sched(TimeoutKind::Propose, 3)],
                exp(3, Step::Propose).locked(0, 7).valid(0, 7),
            ),
        ],
    );
}

#[test]
fn timeouts_fire_only_in_their_round_and_step_lines_57_65() {
    // (name, state round/step, input, expected outputs, expected round/step)
    let table: Vec<TimeoutRow> = vec![
        (
            "propose timeout prevotes nil",
            1,
            Step::Propose,
            Input::TimeoutPropose { round: r(1) },
            vec![prevote(1, None)],
            1,
            Step::Prevote,
        ),
        (
            "stale propose timeout",
            1,
            Step::Propose,
            Input::TimeoutPropose { round: r(0) },
            vec![],
            1,
            Step::Propose,
        ),
        (
            "propose timeout after prevote",
            1,
            Step::Prevote,
            Input::TimeoutPropose { round: r(1) },
            vec![],
            1,
            Step::Prevote,
        ),
        (
            "prevote timeout precommits nil",
            1,
            Step::Prevote,
            Input::TimeoutPrevote { round: r(1) },
            vec![precommit(1, None)],
            1,
            Step::Precommit,
        ),
        (
            "prevote timeout while proposing",
            1,
            Step::Propose,
            Input::TimeoutPrevote { round: r(1) },
            vec![],
            1,
            Step::Propose,
        ),
        (
            "stale prevote timeout",
            1,
            Step::Prevote,
            Input::TimeoutPrevote { round: r(0) },
            vec![],
            1,
            Step::Prevote,
        ),
        (
            "precommit timeout starts next round",
            1,
            Step::Precommit,
            Input::TimeoutPrecommit { round: r(1) },
            vec![Output::NewRound(r(2))],
            2,
            Step::Unstarted,
        ),
        (
            "precommit timeout in prevote step also starts next round",
            1,
            Step::Prevote,
            Input::TimeoutPrecommit { round: r(1) },
            vec![Output::NewRound(r(2))],
            2,
            Step::Unstarted,
        ),
        (
            "stale precommit timeout",
            1,
            Step::Precommit,
            Input::TimeoutPrecommit { round: r(0) },
            vec![],
            1,
            Step::Precommit,
        ),
        (
            "last round has no successor",
            u32::MAX,
            Step::Precommit,
            Input::TimeoutPrecommit { round: r(u32::MAX) },
            vec![],
            u32::MAX,
            Step::Precommit,
        ),
    ];
    for (name, round, step, input, outputs, round_after, step_after) in table {
        run(
            name,
            at(round, step, None, None),
            vec![(input, outputs, exp(round_after, step_after))],
        );
    }
}

#[test]
fn lock_survives_rounds_and_is_released_by_a_higher_pol() {
    // Round 0: lock on 7. Round 1: nothing happens. Round 2: proposal 9 with POL round 1 → unlock (0 <= 1).
    let s = run(
        "lock in round 0",
        fresh(),
        vec![
            (
                new_round(0, false),
                vec![sched(TimeoutKind::Propose, 0)],
                exp(0, Step::Propose),
            ),
            (
                proposal(0, 7, true),
                vec![prevote(0, Some(7))],
                exp(0, Step::Prevote),
            ),
            (
                polka_current(0, 7),
                vec![precommit(0, Some(7))],
                exp(0, Step::Precommit).locked(0, 7).valid(0, 7),
            ),
            (
                Input::TimeoutPrecommit { round: r(0) },
                vec![Output::NewRound(r(1))],
                exp(1, Step::Unstarted).locked(0, 7).valid(0, 7),
            ),
            (
                new_round(1, false),
                vec![sched(TimeoutKind::Propose, 1)],
                exp(1, Step::Propose).locked(0, 7).valid(0, 7),
            ),
            // Locked on 7: a fresh proposal of 9 gets nil (line 26).
            (
                proposal(1, 9, true),
                vec![prevote(1, None)],
                exp(1, Step::Prevote).locked(0, 7).valid(0, 7),
            ),
            // But 9 gathered a polka in round 1 anyway (others were not locked): valid value moves (line 42).
            (
                Input::TimeoutPrevote { round: r(1) },
                vec![precommit(1, None)],
                exp(1, Step::Precommit).locked(0, 7).valid(0, 7),
            ),
            (
                polka_current(1, 9),
                vec![],
                exp(1, Step::Precommit).locked(0, 7).valid(1, 9),
            ),
            (
                Input::TimeoutPrecommit { round: r(1) },
                vec![Output::NewRound(r(2))],
                exp(2, Step::Unstarted).locked(0, 7).valid(1, 9),
            ),
            (
                new_round(2, false),
                vec![sched(TimeoutKind::Propose, 2)],
                exp(2, Step::Propose).locked(0, 7).valid(1, 9),
            ),
        ],
    );
    // Round 2: the proposer re-proposes 9 with vr = 1; lockedRound 0 <= 1 so we prevote it (line 30).
    let s = run(
        "unlock on higher POL",
        s,
        vec![(
            proposal_pol(2, 9, 1, true),
            vec![prevote(2, Some(9))],
            exp(2, Step::Prevote).locked(0, 7).valid(1, 9),
        )],
    );
    // The polka of round 2 relocks on 9 (line 38).
    run(
        "relock",
        s,
        vec![(
            polka_current(2, 9),
            vec![precommit(2, Some(9))],
            exp(2, Step::Precommit).locked(2, 9).valid(2, 9),
        )],
    );
}

#[test]
fn new_round_resets_once_flags() {
    let s = run(
        "round 0 flags",
        at(0, Step::Prevote, None, None),
        vec![
            (
                Input::PolkaAny { round: r(0) },
                vec![sched(TimeoutKind::Prevote, 0)],
                exp(0, Step::Prevote),
            ),
            (
                Input::PrecommitAny { round: r(0) },
                vec![sched(TimeoutKind::Precommit, 0)],
                exp(0, Step::Prevote),
            ),
            (
                Input::TimeoutPrecommit { round: r(0) },
                vec![Output::NewRound(r(1))],
                exp(1, Step::Unstarted),
            ),
            (
                new_round(1, false),
                vec![sched(TimeoutKind::Propose, 1)],
                exp(1, Step::Propose),
            ),
        ],
    );
    assert_eq!(s.flags, Default::default());
    run(
        "round 1 flags fire again",
        s,
        vec![
            (
                Input::TimeoutPropose { round: r(1) },
                vec![prevote(1, None)],
                exp(1, Step::Prevote),
            ),
            (
                Input::PolkaAny { round: r(1) },
                vec![sched(TimeoutKind::Prevote, 1)],
                exp(1, Step::Prevote),
            ),
            (
                Input::PrecommitAny { round: r(1) },
                vec![sched(TimeoutKind::Precommit, 1)],
                exp(1, Step::Prevote),
            ),
        ],
    );
}
