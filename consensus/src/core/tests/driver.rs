//! Driver scenarios: signed messages in, edge actions out.

use crate::core::driver::{
    Context, Driver, DriverConfig, DriverError, Evidence, Input, Output, ProposerSelector, Validity,
};
use crate::core::state_machine::Step;
use crate::core::votekeeper::VoteKeeperError;
use crate::primitives::{
    Height, Round, Timeout, TimeoutKind, ValidatorIndex, VoteType, VotingPower,
};

#[derive(Clone, Debug, PartialEq, Eq)]
struct Ctx;

/// A stand-in for a signed vote: what was signed, plus a tag to tell conflicting copies apart.
#[derive(Clone, Debug, PartialEq, Eq)]
struct SVote {
    validator: u32,
    round: u32,
    vote_type: VoteType,
    value: Option<u64>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct SProposal {
    round: u32,
    value: u64,
    pol_round: Option<u32>,
}

impl Context for Ctx {
    type Value = u64;
    type SignedVote = SVote;
    type SignedProposal = SProposal;
}

/// Round-robin proposer.
#[derive(Clone, Copy, Debug)]
struct RoundRobin(u32);

impl ProposerSelector for RoundRobin {
    fn proposer(&self, round: Round) -> ValidatorIndex {
        ValidatorIndex(round.0 % self.0)
    }
}

type D = Driver<Ctx, RoundRobin>;
type Out = Output<Ctx>;

fn driver(powers: &[VotingPower], own: Option<u32>) -> D {
    let n = powers.len() as u32;
    Driver::new(
        Height(5),
        powers.to_vec(),
        own.map(ValidatorIndex),
        RoundRobin(n),
        DriverConfig::default(),
    )
    .unwrap()
}

fn r(n: u32) -> Round {
    Round(n)
}

fn start(d: &mut D, round: u32) -> Vec<Out> {
    d.process(Input::StartRound { round: r(round) }).unwrap()
}

fn proposal_input(
    round: u32,
    value: u64,
    pol_round: Option<u32>,
    validity: Validity,
) -> Input<Ctx> {
    Input::Proposal {
        round: r(round),
        value,
        pol_round: pol_round.map(Round),
        proposer: ValidatorIndex(round % 4),
        validity,
        msg: SProposal {
            round,
            value,
            pol_round,
        },
    }
}

fn propose(d: &mut D, round: u32, value: u64, pol_round: Option<u32>) -> Vec<Out> {
    d.process(proposal_input(round, value, pol_round, Validity::Valid))
        .unwrap()
}

fn svote(validator: u32, vote_type: VoteType, round: u32, value: Option<u64>) -> SVote {
    SVote {
        validator,
        round,
        vote_type,
        value,
    }
}

fn vote_input(validator: u32, vote_type: VoteType, round: u32, value: Option<u64>) -> Input<Ctx> {
    Input::Vote {
        vote_type,
        round: r(round),
        value,
        validator: ValidatorIndex(validator),
        msg: svote(validator, vote_type, round, value),
    }
}

/// Feeds votes of `validators` and returns all outputs concatenated.
fn votes(
    d: &mut D,
    validators: &[u32],
    vote_type: VoteType,
    round: u32,
    value: Option<u64>,
) -> Vec<Out> {
    validators
        .iter()
        .flat_map(|v| d.process(vote_input(*v, vote_type, round, value)).unwrap())
        .collect()
}

fn timeout(d: &mut D, kind: TimeoutKind, round: u32) -> Vec<Out> {
    d.process(Input::TimeoutElapsed(Timeout {
        kind,
        round: r(round),
    }))
    .unwrap()
}

fn out_vote(vote_type: VoteType, round: u32, value: Option<u64>) -> Out {
    Output::Vote {
        vote_type,
        round: r(round),
        value,
    }
}

fn sched(kind: TimeoutKind, round: u32) -> Out {
    Output::ScheduleTimeout(Timeout {
        kind,
        round: r(round),
    })
}

use TimeoutKind::{Precommit as TPrecommit, Prevote as TPrevote, Propose as TPropose};
use VoteType::{Precommit, Prevote};

#[test]
fn happy_path_as_proposer_decides_with_commit() {
    let mut d = driver(&[1, 1, 1, 1], Some(0));
    assert_eq!(
        start(&mut d, 0),
        vec![Output::GetValue { round: r(0) }, sched(TPropose, 0)]
    );
    assert_eq!(
        d.process(Input::ProposeValue {
            round: r(0),
            value: 42
        })
        .unwrap(),
        vec![Output::Propose {
            round: r(0),
            value: 42,
            pol_round: None
        }]
    );
    // The edge feeds our own signed proposal back in: line 22.
    assert_eq!(
        propose(&mut d, 0, 42, None),
        vec![out_vote(Prevote, 0, Some(42))]
    );
    assert_eq!(votes(&mut d, &[0, 1], Prevote, 0, Some(42)), vec![]);
    // The third prevote makes a polka: line 36 (lock, precommit) takes priority over line 34.
    assert_eq!(
        votes(&mut d, &[2], Prevote, 0, Some(42)),
        vec![out_vote(Precommit, 0, Some(42))]
    );
    assert_eq!(d.state().locked.as_ref().map(|l| l.value), Some(42));
    assert_eq!(votes(&mut d, &[3, 0], Precommit, 0, Some(42)), vec![]);
    assert_eq!(
        votes(&mut d, &[1], Precommit, 0, Some(42)),
        vec![Output::Decide {
            round: r(0),
            value: 42,
            commit: vec![
                svote(0, Precommit, 0, Some(42)),
                svote(1, Precommit, 0, Some(42)),
                svote(3, Precommit, 0, Some(42)),
            ],
        }]
    );
    assert_eq!(d.step(), Step::Commit);
    assert_eq!(d.decision().map(|x| (x.round, x.value)), Some((r(0), 42)));
}

#[test]
fn polka_before_proposal_then_proposal_prevotes_and_precommits_at_once() {
    let mut d = driver(&[1, 1, 1, 1], Some(3));
    assert_eq!(start(&mut d, 0), vec![sched(TPropose, 0)]);
    // Prevotes from the others arrive before the proposal: nothing to do in the propose step.
    assert_eq!(votes(&mut d, &[0, 1, 2], Prevote, 0, Some(9)), vec![]);
    // The proposal: prevote (line 22), then the already-present polka locks and precommits (line 36).
    assert_eq!(
        propose(&mut d, 0, 9, None),
        vec![
            out_vote(Prevote, 0, Some(9)),
            out_vote(Precommit, 0, Some(9))
        ]
    );
}

#[test]
fn invalid_proposal_gets_nil_and_polka_nil_precommits_nil() {
    let mut d = driver(&[1, 1, 1, 1], Some(3));
    start(&mut d, 0);
    assert_eq!(
        d.process(proposal_input(0, 9, None, Validity::Invalid))
            .unwrap(),
        vec![out_vote(Prevote, 0, None)]
    );
    // Line 44 (before line 34 in priority): precommit nil; the any-polka timeout is then moot.
    assert_eq!(
        votes(&mut d, &[0, 1, 2], Prevote, 0, None),
        vec![out_vote(Precommit, 0, None)]
    );
    // +2/3 precommits of any kind: line 47 schedules timeoutPrecommit, and its expiry starts round 1.
    assert_eq!(
        votes(&mut d, &[0, 1, 2], Precommit, 0, None),
        vec![sched(TPrecommit, 0)]
    );
    assert_eq!(timeout(&mut d, TPrecommit, 0), vec![sched(TPropose, 1)]);
    assert_eq!(d.round(), r(1));
    // Even with +2/3 precommits for the invalid value, an invalid proposal is never decided (line 49).
    let mut d = driver(&[1, 1, 1, 1], Some(3));
    start(&mut d, 0);
    d.process(proposal_input(0, 9, None, Validity::Invalid))
        .unwrap();
    assert_eq!(
        votes(&mut d, &[0, 1, 2], Precommit, 0, Some(9)),
        vec![sched(TPrecommit, 0)]
    );
    assert_eq!(d.decision(), None);
}

#[test]
fn split_prevotes_schedule_prevote_timeout_then_precommit_nil() {
    let mut d = driver(&[1, 1, 1, 1], Some(3));
    start(&mut d, 0);
    assert_eq!(
        timeout(&mut d, TPropose, 0),
        vec![out_vote(Prevote, 0, None)]
    );
    let mut outs = votes(&mut d, &[0, 1], Prevote, 0, Some(1));
    outs.extend(votes(&mut d, &[3], Prevote, 0, None));
    assert_eq!(outs, vec![sched(TPrevote, 0)], "line 34");
    assert_eq!(
        timeout(&mut d, TPrevote, 0),
        vec![out_vote(Precommit, 0, None)],
        "line 61"
    );
    assert_eq!(timeout(&mut d, TPrevote, 0), vec![], "stale");
}

#[test]
fn exactly_two_thirds_of_unequal_powers_is_not_a_polka() {
    // Total 6; validators 0 and 3 have 4 = exactly 2/3.
    let mut d = driver(&[2, 1, 1, 2], Some(1));
    start(&mut d, 0);
    propose(&mut d, 0, 5, None);
    assert_eq!(votes(&mut d, &[0, 3], Prevote, 0, Some(5)), vec![]);
    assert_eq!(d.step(), Step::Prevote);
    assert_eq!(
        votes(&mut d, &[1], Prevote, 0, Some(5)),
        vec![out_vote(Precommit, 0, Some(5))]
    );
}

#[test]
fn heavy_validator_alone_is_a_quorum_and_a_skip() {
    // Total 13: validator 0 has 10.
    let mut d = driver(&[10, 1, 1, 1], Some(2));
    start(&mut d, 0);
    // Its single prevote in round 2 is +1/3 of power in a higher round: skip (line 55), round 2's proposer
    // is validator 2 = us, so we ask for a value.
    assert_eq!(
        votes(&mut d, &[0], Prevote, 2, None),
        vec![Output::GetValue { round: r(2) }, sched(TPropose, 2)]
    );
    assert_eq!(d.round(), r(2));
}

#[test]
fn round_skip_starts_the_round_with_buffered_proposal() {
    let mut d = driver(&[1, 1, 1, 1], Some(3));
    start(&mut d, 0);
    // A proposal for round 1 is buffered: it does nothing in round 0.
    assert_eq!(propose(&mut d, 1, 8, None), vec![]);
    assert_eq!(
        votes(&mut d, &[1], Prevote, 1, Some(8)),
        vec![],
        "1 of 4 is not +1/3"
    );
    // Two of four validators in round 1: skip; round 1 starts and the buffered proposal is prevoted at once.
    assert_eq!(
        votes(&mut d, &[2], Prevote, 1, Some(8)),
        vec![sched(TPropose, 1), out_vote(Prevote, 1, Some(8))]
    );
    assert_eq!((d.round(), d.step()), (r(1), Step::Prevote));
}

#[test]
fn decides_a_past_round_whatever_the_current_round() {
    let mut d = driver(&[1, 1, 1, 1], Some(3));
    start(&mut d, 0);
    timeout(&mut d, TPropose, 0);
    // Skip to round 2 through +1/3 prevotes there.
    votes(&mut d, &[0, 1], Prevote, 2, None);
    assert_eq!(d.round(), r(2));
    // Round 1's precommits for 6 and then round 1's proposal arrive: decide round 1 from round 2.
    assert_eq!(votes(&mut d, &[0, 1, 2], Precommit, 1, Some(6)), vec![]);
    assert_eq!(
        propose(&mut d, 1, 6, None),
        vec![Output::Decide {
            round: r(1),
            value: 6,
            commit: vec![
                svote(0, Precommit, 1, Some(6)),
                svote(1, Precommit, 1, Some(6)),
                svote(2, Precommit, 1, Some(6)),
            ],
        }]
    );
}

#[test]
fn pol_proposal_waits_for_the_polka_of_its_pol_round() {
    let mut d = driver(&[1, 1, 1, 1], Some(3));
    start(&mut d, 0);
    timeout(&mut d, TPropose, 0);
    votes(&mut d, &[0, 1, 2], Precommit, 0, None);
    timeout(&mut d, TPrecommit, 0);
    assert_eq!(d.round(), r(1));
    // Round 1's proposer (1) re-proposes 7 with POL round 0, but we saw no polka for 7 in round 0 yet.
    assert_eq!(propose(&mut d, 1, 7, Some(0)), vec![]);
    assert_eq!(d.step(), Step::Propose);
    assert_eq!(votes(&mut d, &[0, 1], Prevote, 0, Some(7)), vec![]);
    // The third prevote of round 0 for 7 completes the POL: line 28 prevotes 7.
    assert_eq!(
        votes(&mut d, &[2], Prevote, 0, Some(7)),
        vec![out_vote(Prevote, 1, Some(7))]
    );
}

#[test]
fn locked_validator_unlocks_on_a_higher_pol_via_the_driver() {
    let mut d = driver(&[1, 1, 1, 1], Some(3));
    start(&mut d, 0);
    propose(&mut d, 0, 7, None);
    assert_eq!(
        votes(&mut d, &[0, 1, 2], Prevote, 0, Some(7)),
        vec![out_vote(Precommit, 0, Some(7))]
    );
    votes(&mut d, &[0, 1, 2], Precommit, 0, None);
    timeout(&mut d, TPrecommit, 0);
    // Round 1: locked on 7, a fresh proposal of 9 gets nil; but 9 gets a polka among the others.
    assert_eq!(
        propose(&mut d, 1, 9, None),
        vec![out_vote(Prevote, 1, None)]
    );
    assert_eq!(
        votes(&mut d, &[0, 1, 2], Prevote, 1, Some(9)),
        vec![out_vote(Precommit, 1, Some(9))]
    );
    assert_eq!(
        d.state().locked.as_ref().map(|l| (l.round, l.value)),
        Some((r(1), 9))
    );
}

#[test]
fn locked_validator_rejects_an_older_pol() {
    let mut d = driver(&[1, 1, 1, 1], Some(3));
    start(&mut d, 0);
    // Polka for 5 in round 0 seen (others), but we lock on 7 in round 1.
    votes(&mut d, &[0, 1, 2], Prevote, 0, Some(5));
    timeout(&mut d, TPropose, 0);
    votes(&mut d, &[0, 1, 2], Precommit, 0, None);
    timeout(&mut d, TPrecommit, 0);
    propose(&mut d, 1, 7, None);
    votes(&mut d, &[0, 1, 2], Prevote, 1, Some(7));
    assert_eq!(
        d.state().locked.as_ref().map(|l| (l.round, l.value)),
        Some((r(1), 7))
    );
    votes(&mut d, &[0, 1, 2], Precommit, 1, None);
    timeout(&mut d, TPrecommit, 1);
    // Round 2: proposal of 5 with POL round 0 < lockedRound 1 and 5 != 7: nil (line 32).
    assert_eq!(
        propose(&mut d, 2, 5, Some(0)),
        vec![out_vote(Prevote, 2, None)]
    );
}

#[test]
fn vote_equivocation_yields_evidence_once() {
    let mut d = driver(&[1, 1, 1, 1], Some(3));
    start(&mut d, 0);
    assert_eq!(votes(&mut d, &[1], Prevote, 0, Some(1)), vec![]);
    assert_eq!(
        votes(&mut d, &[1], Prevote, 0, Some(1)),
        vec![],
        "idempotent duplicate"
    );
    assert_eq!(
        votes(&mut d, &[1], Prevote, 0, Some(2)),
        vec![Output::Evidence(Evidence::DuplicateVote {
            validator: ValidatorIndex(1),
            round: r(0),
            vote_type: Prevote,
            first: svote(1, Prevote, 0, Some(1)),
            second: svote(1, Prevote, 0, Some(2)),
        })]
    );
    assert_eq!(votes(&mut d, &[1], Prevote, 0, None), vec![]);
    assert_eq!(d.votes().power_any(r(0), Prevote), 1);
}

#[test]
fn proposal_equivocation_yields_evidence_and_keeps_both() {
    let mut d = driver(&[1, 1, 1, 1], Some(3));
    start(&mut d, 0);
    assert_eq!(
        propose(&mut d, 0, 1, None),
        vec![out_vote(Prevote, 0, Some(1))]
    );
    assert_eq!(propose(&mut d, 0, 1, None), vec![], "duplicate");
    assert_eq!(
        propose(&mut d, 0, 2, None),
        vec![Output::Evidence(Evidence::DuplicateProposal {
            proposer: ValidatorIndex(0),
            round: r(0),
            first: SProposal {
                round: 0,
                value: 1,
                pol_round: None
            },
            second: SProposal {
                round: 0,
                value: 2,
                pol_round: None
            },
        })]
    );
    assert_eq!(
        propose(&mut d, 0, 3, None),
        vec![],
        "reported once per round"
    );
    // Both proposals are kept (line 36 fires for any received proposal): a polka for 2 locks us on 2.
    assert_eq!(
        votes(&mut d, &[0, 1, 2], Prevote, 0, Some(2)),
        vec![out_vote(Precommit, 0, Some(2))]
    );
    assert_eq!(d.state().locked.as_ref().map(|l| l.value), Some(2));
    // And +2/3 precommits for the second proposal decide it (line 49).
    let outs = votes(&mut d, &[0, 1, 2], Precommit, 0, Some(2));
    assert!(
        matches!(outs.as_slice(), [Output::Decide { value: 2, .. }]),
        "{outs:?}"
    );
}

#[test]
fn after_decide_only_evidence_comes_out() {
    let mut d = driver(&[1, 1, 1, 1], Some(3));
    start(&mut d, 0);
    propose(&mut d, 0, 1, None);
    votes(&mut d, &[0, 1, 2], Precommit, 0, Some(1));
    assert_eq!(d.step(), Step::Commit);
    assert_eq!(timeout(&mut d, TPrecommit, 0), vec![]);
    assert_eq!(start(&mut d, 1), vec![]);
    assert_eq!(
        votes(&mut d, &[0, 1, 2, 3], Prevote, 3, None),
        vec![],
        "no round skip after deciding"
    );
    assert_eq!(d.round(), r(0));
    assert_eq!(
        votes(&mut d, &[2], Precommit, 0, None),
        vec![Output::Evidence(Evidence::DuplicateVote {
            validator: ValidatorIndex(2),
            round: r(0),
            vote_type: Precommit,
            first: svote(2, Precommit, 0, Some(1)),
            second: svote(2, Precommit, 0, None),
        })]
    );
}

#[test]
fn follower_without_own_index_is_silent_but_decides() {
    let mut d = driver(&[1, 1, 1, 1], None);
    assert_eq!(start(&mut d, 0), vec![sched(TPropose, 0)]);
    assert_eq!(propose(&mut d, 0, 1, None), vec![]);
    assert_eq!(d.step(), Step::Prevote);
    let outs = votes(&mut d, &[0, 1, 2], Precommit, 0, Some(1));
    assert!(
        matches!(outs.as_slice(), [Output::Decide { value: 1, .. }]),
        "{outs:?}"
    );
}

#[test]
fn proposer_with_valid_value_reproposes_it_with_pol_round() {
    // We are validator 1, the proposer of round 1.
    let mut d = driver(&[1, 1, 1, 1], Some(1));
    start(&mut d, 0);
    propose(&mut d, 0, 7, None);
    votes(&mut d, &[0, 2, 3], Prevote, 0, Some(7));
    votes(&mut d, &[0, 2, 3], Precommit, 0, None);
    assert_eq!(
        timeout(&mut d, TPrecommit, 0),
        vec![
            Output::Propose {
                round: r(1),
                value: 7,
                pol_round: Some(r(0))
            },
            sched(TPropose, 1)
        ]
    );
    // Our own re-proposal comes back: line 28, polka for 7 in round 0 present, locked in 0 = vr: prevote 7.
    assert_eq!(
        d.process(Input::Proposal {
            round: r(1),
            value: 7,
            pol_round: Some(r(0)),
            proposer: ValidatorIndex(1),
            validity: Validity::Valid,
            msg: SProposal {
                round: 1,
                value: 7,
                pol_round: Some(0)
            },
        })
        .unwrap(),
        vec![out_vote(Prevote, 1, Some(7))]
    );
}

/// Simulation seed 1002716 in miniature: powers [7, 6, 5, 2], validator 1 byzantine; the honest quorum
/// needs all of 0, 2 and 3 (14 of 20). Validator 3 started the height late: its round-0 prevote for 7
/// arrives after we (validator 2) left round 0, completing a polka it also saw — it is locked on 7.
/// The polka of a round already left makes 7 our valid value, so when we propose (round 2) we
/// re-propose 7 with POL round 0, which the locked validator can prevote; a fresh value would get its
/// nil prevote in every round until its own turn to propose.
#[test]
fn a_polka_completed_after_we_left_its_round_becomes_our_valid_value() {
    let mut d = driver(&[7, 6, 5, 2], Some(2));
    start(&mut d, 0);
    assert_eq!(
        propose(&mut d, 0, 7, None),
        vec![out_vote(Prevote, 0, Some(7))]
    );
    votes(&mut d, &[2, 0], Prevote, 0, Some(7));
    votes(&mut d, &[1], Prevote, 0, Some(99));
    timeout(&mut d, TPrevote, 0);
    votes(&mut d, &[2, 0, 1], Precommit, 0, None);
    timeout(&mut d, TPrecommit, 0);
    assert_eq!(d.round(), r(1));
    assert!(d.state().valid.is_none());
    // Round 1's proposer (the byzantine validator) proposes garbage; meanwhile the late prevote of
    // round 0 arrives: 7 + 5 + 2 = 14 > 2/3 of 20.
    assert_eq!(votes(&mut d, &[3], Prevote, 0, Some(7)), vec![]);
    let valid = d.state().valid.as_ref().map(|v| (v.round, v.value));
    assert_eq!(valid, Some((r(0), 7)));
    assert!(d.state().locked.is_none(), "a past polka does not lock");
    // Round 1 ends without a polka; round 2 is ours: re-propose 7 with its POL round.
    d.process(proposal_input(1, 99, None, Validity::Invalid))
        .unwrap();
    votes(&mut d, &[0, 2, 3], Prevote, 1, None);
    votes(&mut d, &[0, 2, 3], Precommit, 1, None);
    assert_eq!(
        timeout(&mut d, TPrecommit, 1),
        vec![
            Output::Propose {
                round: r(2),
                value: 7,
                pol_round: Some(r(0))
            },
            sched(TPropose, 2)
        ]
    );
}

/// The valid round only rises: a polka of a round left, but earlier than the valid round, changes
/// nothing; one later than it replaces the valid value; an invalid proposal's polka is never taken.
#[test]
fn a_past_polka_only_raises_the_valid_round_and_needs_a_valid_proposal() {
    let mut d = driver(&[1, 1, 1, 1], Some(3));
    start(&mut d, 0);
    propose(&mut d, 0, 7, None);
    // Round 1 (by skip): 8 is proposed and gets a polka while we are there (line 36).
    votes(&mut d, &[0, 1], Precommit, 1, None);
    assert_eq!(d.round(), r(1));
    propose(&mut d, 1, 8, None);
    votes(&mut d, &[0, 1, 3], Prevote, 1, Some(8));
    assert_eq!(
        d.state().valid.as_ref().map(|v| (v.round, v.value)),
        Some((r(1), 8))
    );
    // Round 3 (skip); round 0's polka for 7 completes now: earlier than the valid round, no change.
    votes(&mut d, &[0, 1], Precommit, 3, None);
    assert_eq!(d.round(), r(3));
    votes(&mut d, &[0, 1, 2], Prevote, 0, Some(7));
    assert_eq!(
        d.state().valid.as_ref().map(|v| (v.round, v.value)),
        Some((r(1), 8))
    );
    // Round 2's invalid proposal gets a polka (byzantine prevotes count): never a valid value.
    d.process(proposal_input(2, 66, None, Validity::Invalid))
        .unwrap();
    votes(&mut d, &[0, 1, 2], Prevote, 2, Some(66));
    assert_eq!(
        d.state().valid.as_ref().map(|v| (v.round, v.value)),
        Some((r(1), 8))
    );
    // A valid one of round 2 with a polka: later than round 1, taken.
    propose(&mut d, 2, 9, None);
    votes(&mut d, &[0, 1, 3], Prevote, 2, Some(9));
    assert_eq!(
        d.state().valid.as_ref().map(|v| (v.round, v.value)),
        Some((r(2), 9))
    );
    // The lock stays where line 36 put it.
    let locked = d.state().locked.as_ref().map(|l| (l.round, l.value));
    assert_eq!(locked, Some((r(1), 8)));
}

#[test]
fn typed_errors() {
    let mut d = driver(&[1, 1, 1, 1], Some(3));
    start(&mut d, 0);
    assert_eq!(
        d.process(vote_input(4, Prevote, 0, None)).unwrap_err(),
        DriverError::VoteKeeper(VoteKeeperError::UnknownValidator {
            validator: ValidatorIndex(4),
            validator_count: 4
        })
    );
    let mut wrong = proposal_input(0, 1, None, Validity::Valid);
    if let Input::Proposal { proposer, .. } = &mut wrong {
        *proposer = ValidatorIndex(2);
    }
    assert_eq!(
        d.process(wrong).unwrap_err(),
        DriverError::WrongProposer {
            round: r(0),
            expected: ValidatorIndex(0),
            actual: ValidatorIndex(2)
        }
    );
    assert_eq!(
        d.process(proposal_input(1, 1, Some(1), Validity::Valid))
            .unwrap_err(),
        DriverError::InvalidPolRound {
            round: r(1),
            pol_round: r(1)
        }
    );
    let far = DriverConfig::default().round_window + 1;
    assert_eq!(
        d.process(proposal_input(far, 1, None, Validity::Valid))
            .unwrap_err(),
        DriverError::ProposalOutsideWindow {
            round: r(far),
            current_round: r(0),
            round_window: far - 1
        }
    );
    // A vote opens `far` as a catch-up round; then its proposal is kept too. Validator 1's allowance (2)
    // runs out on its third far round.
    assert_eq!(
        d.process(vote_input(1, Prevote, far, None)).unwrap(),
        vec![]
    );
    assert_eq!(
        d.process(proposal_input(far, 1, None, Validity::Valid))
            .unwrap(),
        vec![]
    );
    assert_eq!(
        d.process(vote_input(1, Prevote, far + 1, None)).unwrap(),
        vec![]
    );
    assert!(matches!(
        d.process(vote_input(1, Prevote, far + 2, None))
            .unwrap_err(),
        DriverError::VoteKeeper(VoteKeeperError::RoundOutsideWindow { .. })
    ));
    assert_eq!(
        Driver::<Ctx, RoundRobin>::new(
            Height(1),
            vec![1, 1],
            Some(ValidatorIndex(2)),
            RoundRobin(2),
            DriverConfig::default()
        )
        .unwrap_err(),
        DriverError::OwnIndexOutOfRange {
            own: ValidatorIndex(2),
            validator_count: 2
        }
    );
}

#[test]
fn closure_proposer_selector() {
    let mut d = Driver::<Ctx, _>::new(
        Height(1),
        vec![1, 1, 1],
        Some(ValidatorIndex(2)),
        |_round: Round| ValidatorIndex(2),
        DriverConfig::default(),
    )
    .unwrap();
    assert_eq!(
        d.process(Input::StartRound { round: r(0) }).unwrap(),
        vec![Output::GetValue { round: r(0) }, sched(TPropose, 0)]
    );
    // A value for a round we did not ask for is ignored; the right one is proposed once.
    assert_eq!(
        d.process(Input::ProposeValue {
            round: r(1),
            value: 3
        })
        .unwrap(),
        vec![]
    );
    assert_eq!(
        d.process(Input::ProposeValue {
            round: r(0),
            value: 3
        })
        .unwrap(),
        vec![Output::Propose {
            round: r(0),
            value: 3,
            pol_round: None
        }]
    );
    assert_eq!(
        d.process(Input::ProposeValue {
            round: r(0),
            value: 4
        })
        .unwrap(),
        vec![]
    );
}

#[test]
fn lagging_node_catches_up_to_a_far_round_and_decides_it() {
    let mut d = driver(&[1, 1, 1, 1], Some(3));
    start(&mut d, 0);
    let far = DriverConfig::default().round_window + 20;
    // The proposal of a round nobody opened yet is refused (the edge re-delivers it later).
    assert!(d
        .process(proposal_input(far, 6, None, Validity::Valid))
        .is_err());
    // Precommits of the far round open it as a catch-up round; +1/3 of them skip us there (line 55).
    assert_eq!(votes(&mut d, &[0], Precommit, far, Some(6)), vec![]);
    assert_eq!(
        votes(&mut d, &[1], Precommit, far, Some(6)),
        vec![sched(TPropose, far)]
    );
    assert_eq!(
        votes(&mut d, &[2], Precommit, far, Some(6)),
        vec![sched(TPrecommit, far)]
    );
    // With the proposal, line 49 decides (it has priority over prevoting the proposal).
    let outs = propose(&mut d, far, 6, None);
    assert!(
        matches!(outs.as_slice(), [Output::Decide { value: 6, commit, .. }] if commit.len() == 3),
        "{outs:?}"
    );
}
