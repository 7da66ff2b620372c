//! Vote keeper: thresholds, duplicates, equivocation, window, plus a proptest against a naive model.

use crate::core::votekeeper::{
    VoteEquivocation, VoteEvent, VoteKeeper, VoteKeeperError, VoteRecord, DEFAULT_ROUND_WINDOW,
    MAX_CATCHUP_ROUNDS_PER_VALIDATOR, MAX_VALUES_PER_VALIDATOR,
};
use crate::primitives::{Round, ValidatorIndex, VoteType, VotingPower};
use proptest::prelude::*;
use std::collections::{BTreeMap, BTreeSet};

type V = u64;
/// The "signed message" is a tag so tests can see which message came back.
type S = (u32, &'static str);
type Keeper = VoteKeeper<V, S>;
type Event = VoteEvent<V, S>;

fn keeper(powers: &[VotingPower]) -> Keeper {
    VoteKeeper::new(powers.to_vec(), DEFAULT_ROUND_WINDOW).unwrap()
}

fn vote(
    validator: u32,
    round: u32,
    vote_type: VoteType,
    value: Option<V>,
    tag: &'static str,
) -> VoteRecord<V, S> {
    VoteRecord {
        validator: ValidatorIndex(validator),
        round: Round(round),
        vote_type,
        value,
        msg: (validator, tag),
    }
}

fn prevote(validator: u32, round: u32, value: Option<V>) -> VoteRecord<V, S> {
    vote(validator, round, VoteType::Prevote, value, "prevote")
}

fn precommit(validator: u32, round: u32, value: Option<V>) -> VoteRecord<V, S> {
    vote(validator, round, VoteType::Precommit, value, "precommit")
}

/// Adds the votes in order and returns the events of each.
fn feed(k: &mut Keeper, votes: Vec<VoteRecord<V, S>>) -> Vec<Vec<Event>> {
    votes.into_iter().map(|v| k.add_vote(v).unwrap()).collect()
}

#[test]
fn construction_rejects_a_powerless_set() {
    assert_eq!(
        Keeper::new(vec![], 4).unwrap_err(),
        VoteKeeperError::NoVotingPower { validator_count: 0 }
    );
    assert_eq!(
        Keeper::new(vec![0, 0], 4).unwrap_err(),
        VoteKeeperError::NoVotingPower { validator_count: 2 }
    );
}

#[test]
fn polka_for_value_then_any_reported_once_each() {
    let mut k = keeper(&[1, 1, 1, 1]);
    let events = feed(
        &mut k,
        vec![
            prevote(0, 0, Some(7)),
            prevote(1, 0, Some(7)),
            prevote(2, 0, Some(7)),
            prevote(3, 0, Some(7)),
        ],
    );
    assert_eq!(events[0], vec![]);
    assert_eq!(events[1], vec![]);
    assert_eq!(
        events[2],
        vec![
            VoteEvent::PolkaValue {
                round: Round(0),
                value: 7
            },
            VoteEvent::PolkaAny { round: Round(0) }
        ]
    );
    assert_eq!(events[3], vec![], "thresholds are reported once");
    assert!(k.has_polka_for(Round(0), &7));
    assert!(k.has_polka_any(Round(0)));
    assert!(!k.has_polka_nil(Round(0)));
    assert!(!k.has_polka_for(Round(0), &8));
    assert!(!k.has_polka_for(Round(1), &7));
}

#[test]
fn exactly_two_thirds_is_not_a_quorum() {
    // Total 6: 4 is exactly 2/3 (no quorum), 5 is more.
    let mut k = keeper(&[2, 1, 1, 2]);
    let events = feed(
        &mut k,
        vec![precommit(0, 0, Some(7)), precommit(3, 0, Some(7))],
    );
    assert_eq!(events, vec![vec![], vec![]]);
    assert_eq!(k.power_for(Round(0), VoteType::Precommit, Some(&7)), 4);
    assert!(!k.has_precommit_quorum_for(Round(0), &7));
    assert!(!k.has_precommit_any(Round(0)));
    let events = feed(&mut k, vec![precommit(1, 0, Some(7))]);
    assert_eq!(
        events[0],
        vec![
            VoteEvent::PrecommitValue {
                round: Round(0),
                value: 7
            },
            VoteEvent::PrecommitAny { round: Round(0) }
        ]
    );
    assert_eq!(
        k.precommits_for(Round(0), &7),
        vec![(0, "precommit"), (1, "precommit"), (3, "precommit")]
    );
    assert_eq!(k.precommit_quorums(), vec![(Round(0), 7)]);
}

#[test]
fn exactly_one_third_does_not_skip() {
    // Total 6: 2 is exactly 1/3 (no skip), 3 is more.
    let mut k = keeper(&[2, 1, 1, 2]);
    assert_eq!(feed(&mut k, vec![prevote(0, 2, None)]), vec![vec![]]);
    assert!(!k.has_skip_quorum(Round(2)));
    assert_eq!(k.skip_round_above(Round(0)), None);
    // Another vote type from the same validator does not add power: senders are counted once.
    assert_eq!(feed(&mut k, vec![precommit(0, 2, None)]), vec![vec![]]);
    assert_eq!(
        feed(&mut k, vec![precommit(1, 2, Some(3))]),
        vec![vec![VoteEvent::SkipRound { round: Round(2) }]]
    );
    assert_eq!(k.skip_round_above(Round(0)), Some(Round(2)));
    assert_eq!(k.skip_round_above(Round(2)), None);
}

#[test]
fn unequal_powers_one_heavy_validator() {
    // Total 13: validator 0 alone has 10 > 26/3, a quorum on its own; the three others (3) are not +1/3.
    let mut k = keeper(&[10, 1, 1, 1]);
    let events = feed(
        &mut k,
        vec![
            prevote(1, 1, None),
            prevote(2, 1, None),
            prevote(3, 1, None),
        ],
    );
    assert_eq!(events, vec![vec![], vec![], vec![]]);
    assert!(!k.has_skip_quorum(Round(1)));
    assert_eq!(
        feed(&mut k, vec![prevote(0, 1, Some(5))]),
        vec![vec![
            VoteEvent::PolkaValue {
                round: Round(1),
                value: 5
            },
            VoteEvent::PolkaAny { round: Round(1) },
            VoteEvent::SkipRound { round: Round(1) },
        ]]
    );
}

#[test]
fn nil_quorums() {
    let mut k = keeper(&[1, 1, 1]);
    let events = feed(
        &mut k,
        vec![
            prevote(0, 0, None),
            prevote(1, 0, None),
            prevote(2, 0, None),
        ],
    );
    assert_eq!(
        events[2],
        vec![
            VoteEvent::PolkaNil { round: Round(0) },
            VoteEvent::PolkaAny { round: Round(0) }
        ]
    );
    let events = feed(
        &mut k,
        vec![
            precommit(0, 0, None),
            precommit(1, 0, None),
            precommit(2, 0, None),
        ],
    );
    assert_eq!(
        events[2],
        vec![
            VoteEvent::PrecommitNil { round: Round(0) },
            VoteEvent::PrecommitAny { round: Round(0) }
        ]
    );
    assert!(k.has_polka_nil(Round(0)) && k.has_precommit_nil(Round(0)));
    assert!(k.precommit_quorums().is_empty());
}

#[test]
fn mixed_votes_give_any_quorum_without_value_quorum() {
    let mut k = keeper(&[1, 1, 1, 1]);
    let events = feed(
        &mut k,
        vec![
            prevote(0, 0, Some(1)),
            prevote(1, 0, Some(2)),
            prevote(2, 0, None),
        ],
    );
    assert_eq!(events[2], vec![VoteEvent::PolkaAny { round: Round(0) }]);
    assert!(!k.has_polka_for(Round(0), &1) && !k.has_polka_nil(Round(0)));
}

#[test]
fn duplicate_vote_is_idempotent() {
    let mut k = keeper(&[1, 1, 1, 1]);
    let events = feed(
        &mut k,
        vec![
            prevote(0, 0, Some(7)),
            prevote(0, 0, Some(7)),
            prevote(0, 0, Some(7)),
        ],
    );
    assert_eq!(events, vec![vec![], vec![], vec![]]);
    assert_eq!(k.power_any(Round(0), VoteType::Prevote), 1);
}

#[test]
fn equivocation_reported_once_with_both_votes_counted_per_value() {
    let mut k = keeper(&[1, 1, 1, 1]);
    let first = vote(2, 0, VoteType::Precommit, Some(7), "first");
    let second = vote(2, 0, VoteType::Precommit, None, "second");
    let third = vote(2, 0, VoteType::Precommit, Some(9), "third");
    let events = feed(&mut k, vec![first, second.clone(), third, second]);
    assert_eq!(events[0], vec![]);
    assert_eq!(
        events[1],
        vec![VoteEvent::Equivocation(VoteEquivocation {
            validator: ValidatorIndex(2),
            round: Round(0),
            vote_type: VoteType::Precommit,
            first_value: Some(7),
            second_value: None,
            first: (2, "first"),
            second: (2, "second"),
        })]
    );
    assert_eq!(
        events[2],
        vec![],
        "one piece of evidence per validator, round and type"
    );
    assert_eq!(
        events[3],
        vec![],
        "a re-delivered conflicting vote is a duplicate"
    );
    // Each value counts the validator once; "any" counts it once in all.
    assert_eq!(k.power_any(Round(0), VoteType::Precommit), 1);
    assert_eq!(k.power_for(Round(0), VoteType::Precommit, None), 1);
    assert_eq!(k.power_for(Round(0), VoteType::Precommit, Some(&7)), 1);
    assert_eq!(k.power_for(Round(0), VoteType::Precommit, Some(&9)), 1);
    assert_eq!(
        k.vote_of(Round(0), VoteType::Precommit, ValidatorIndex(2)),
        Some(&(2, "first"))
    );
    // A prevote of the same validator in the same round is a different (round, type): no evidence.
    assert_eq!(feed(&mut k, vec![prevote(2, 0, Some(9))]), vec![vec![]]);
}

#[test]
fn equivocator_vote_completes_a_quorum_whatever_arrived_first() {
    // Validator 3 (byzantine) prevotes nil to us first, then 7. With honest 0 and 1 for 7, its vote for 7
    // completes the polka here exactly as on nodes that received its 7 first.
    let mut k = keeper(&[1, 1, 1, 1]);
    let events = feed(&mut k, vec![prevote(3, 0, None), prevote(0, 0, Some(7))]);
    assert_eq!(events, vec![vec![], vec![]]);
    let events = feed(&mut k, vec![prevote(3, 0, Some(7))]);
    assert!(matches!(events[0].as_slice(), [VoteEvent::Equivocation(_)]));
    let events = feed(&mut k, vec![prevote(1, 0, Some(7))]);
    assert_eq!(
        events[0],
        vec![
            VoteEvent::PolkaValue {
                round: Round(0),
                value: 7
            },
            VoteEvent::PolkaAny { round: Round(0) }
        ]
    );
}

#[test]
fn values_per_validator_are_bounded() {
    let mut k = keeper(&[1, 1, 1, 1]);
    for value in 0..10u64 {
        k.add_vote(prevote(2, 0, Some(value))).unwrap();
    }
    let counted: u128 = (0..10u64)
        .map(|v| k.power_for(Round(0), VoteType::Prevote, Some(&v)))
        .sum();
    assert_eq!(counted, MAX_VALUES_PER_VALIDATOR as u128);
    assert_eq!(k.power_any(Round(0), VoteType::Prevote), 1);
}

/// An equivocator that filled its slots at this node with made-up values cannot keep its vote for the
/// value the others back from counting (byzantine seed 1005780 on 053bb4c): that vote takes the place of
/// the least-backed made-up one, and the polka it completes is reported.
#[test]
fn a_backed_value_displaces_an_equivocators_made_up_ones() {
    let mut k = keeper(&[1, 1, 1, 1]);
    for made_up in 100..100 + MAX_VALUES_PER_VALIDATOR as u64 {
        k.add_vote(prevote(1, 0, Some(made_up))).unwrap();
    }
    k.add_vote(prevote(0, 0, Some(7))).unwrap();
    k.add_vote(prevote(2, 0, Some(7))).unwrap();
    assert!(!k.has_polka_for(Round(0), &7));
    let events = k.add_vote(prevote(1, 0, Some(7))).unwrap();
    assert!(events.contains(&VoteEvent::PolkaValue {
        round: Round(0),
        value: 7
    }));
    assert!(k.has_polka_for(Round(0), &7));
    // One made-up value lost its vote; the validator still counts once toward "any".
    let made_up: u128 = (100..100 + MAX_VALUES_PER_VALIDATOR as u64)
        .map(|v| k.power_for(Round(0), VoteType::Prevote, Some(&v)))
        .sum();
    assert_eq!(made_up, MAX_VALUES_PER_VALIDATOR as u128 - 1);
    assert_eq!(k.power_any(Round(0), VoteType::Prevote), 3);
    assert_eq!(
        k.votes_of(Round(0), VoteType::Prevote).len(),
        2 + MAX_VALUES_PER_VALIDATOR
    );
}

/// A value no one else backs cannot displace anything, and a value with a reported quorum is never
/// displaced.
#[test]
fn displacement_needs_more_backing_and_spares_quorums() {
    let mut k = keeper(&[1, 1, 1, 1]);
    // Validator 3's first vote, 7, gets a polka with 0 and 1.
    k.add_vote(prevote(3, 0, Some(7))).unwrap();
    k.add_vote(prevote(0, 0, Some(7))).unwrap();
    k.add_vote(prevote(1, 0, Some(7))).unwrap();
    assert!(k.has_polka_for(Round(0), &7));
    for made_up in 100..100 + MAX_VALUES_PER_VALIDATOR as u64 - 1 {
        k.add_vote(prevote(3, 0, Some(made_up))).unwrap();
    }
    // Full. A value backed by nobody else is dropped.
    assert!(k.add_vote(prevote(3, 0, Some(200))).unwrap().is_empty());
    assert_eq!(k.power_for(Round(0), VoteType::Prevote, Some(&200)), 0);
    // Validator 2 backs 300: validator 3's vote for it displaces a made-up value, never 7.
    k.add_vote(prevote(2, 0, Some(300))).unwrap();
    k.add_vote(prevote(3, 0, Some(300))).unwrap();
    assert_eq!(k.power_for(Round(0), VoteType::Prevote, Some(&300)), 2);
    assert_eq!(k.power_for(Round(0), VoteType::Prevote, Some(&7)), 3);
    assert!(k.has_polka_for(Round(0), &7));
}

#[test]
fn unknown_validator_is_a_typed_error() {
    let mut k = keeper(&[1, 1, 1]);
    assert_eq!(
        k.add_vote(prevote(3, 0, None)).unwrap_err(),
        VoteKeeperError::UnknownValidator {
            validator: ValidatorIndex(3),
            validator_count: 3
        }
    );
}

#[test]
fn rounds_beyond_the_window_need_a_catchup_allowance_and_the_window_moves() {
    assert_eq!(MAX_CATCHUP_ROUNDS_PER_VALIDATOR, 2);
    let mut k = Keeper::new(vec![1, 1, 1], 2).unwrap();
    let outside = |round| VoteKeeperError::RoundOutsideWindow {
        round: Round(round),
        current_round: Round(0),
        round_window: 2,
    };
    assert!(k.add_vote(prevote(0, 2, None)).is_ok(), "inside the window");
    // Validator 0 opens rounds 10 and 11 beyond the window; its allowance is then used up.
    assert!(k.add_vote(prevote(0, 10, None)).is_ok());
    assert!(k.add_vote(prevote(0, 11, None)).is_ok());
    assert_eq!(k.add_vote(prevote(0, 12, None)).unwrap_err(), outside(12));
    // Votes for an open round are free, for anyone, even after the allowance is used up.
    assert!(k.add_vote(precommit(0, 10, None)).is_ok());
    assert!(k.add_vote(prevote(1, 11, None)).is_ok());
    assert!(k.is_tracked(Round(10)) && !k.is_tracked(Round(12)));
    // Another validator has its own allowance.
    assert!(k.add_vote(prevote(2, 12, None)).is_ok());
    // Moving the round moves the window.
    k.set_round(Round(20));
    assert!(k.add_vote(prevote(0, 22, None)).is_ok());
    k.set_round(Round(0));
    assert_eq!(k.current_round(), Round(20), "the round never moves back");
    assert_eq!(k.tracked_rounds(), 5);
}

#[test]
fn a_lagging_keeper_sees_a_far_round_skip_through_catchup_rounds() {
    let mut k = keeper(&[1, 1, 1, 1]);
    let far = DEFAULT_ROUND_WINDOW + 30;
    assert_eq!(feed(&mut k, vec![precommit(0, far, Some(5))]), vec![vec![]]);
    assert_eq!(
        feed(&mut k, vec![precommit(1, far, Some(5))]),
        vec![vec![VoteEvent::SkipRound { round: Round(far) }]]
    );
    assert_eq!(
        feed(&mut k, vec![precommit(2, far, Some(5))]),
        vec![vec![
            VoteEvent::PrecommitValue {
                round: Round(far),
                value: 5
            },
            VoteEvent::PrecommitAny { round: Round(far) }
        ]]
    );
}

#[test]
fn skip_only_for_rounds_above_current() {
    let mut k = keeper(&[1, 1, 1]);
    k.set_round(Round(2));
    let events = feed(
        &mut k,
        vec![
            prevote(0, 1, None),
            prevote(1, 1, None),
            prevote(0, 2, None),
            prevote(1, 2, None),
        ],
    );
    assert!(events
        .iter()
        .flatten()
        .all(|e| !matches!(e, VoteEvent::SkipRound { .. })));
    let events = feed(&mut k, vec![precommit(2, 3, None)]);
    assert_eq!(events[0], vec![], "1 of 3 is exactly 1/3");
    let events = feed(&mut k, vec![prevote(1, 3, None)]);
    assert_eq!(events[0], vec![VoteEvent::SkipRound { round: Round(3) }]);
}

// ---- proptest against a naive model ----

#[derive(Clone, Debug)]
struct Op {
    validator: u32,
    round: u32,
    vote_type: VoteType,
    value: Option<V>,
    /// Move the keeper's current round before this vote (0 = stay).
    advance: u32,
}

fn op() -> impl Strategy<Value = Op> {
    (
        0u32..8,
        0u32..12,
        prop_oneof![Just(VoteType::Prevote), Just(VoteType::Precommit)],
        prop::option::of(0u64..3),
        prop_oneof![4 => Just(0u32), 1 => 0u32..3],
    )
        .prop_map(|(validator, round, vote_type, value, advance)| Op {
            validator,
            round,
            vote_type,
            value,
            advance,
        })
}

/// Naive model: per (round, type, validator) the distinct values in arrival order, at most
/// `MAX_VALUES_PER_VALIDATOR`; a value quorum counts every validator that voted the value, "any" counts
/// every validator once.
#[derive(Default)]
struct Model {
    counted: BTreeMap<(u32, VoteType, u32), Vec<Option<V>>>,
}

impl Model {
    fn power(&self, powers: &[u64], round: u32, t: VoteType, value: Option<Option<V>>) -> u128 {
        self.counted
            .iter()
            .filter(|((r, ty, _), v)| {
                *r == round && *ty == t && value.as_ref().is_none_or(|want| v.contains(want))
            })
            .map(|((_, _, i), _)| u128::from(powers[*i as usize]))
            .sum()
    }
    fn senders(&self, powers: &[u64], round: u32) -> u128 {
        let who: BTreeSet<u32> = self
            .counted
            .keys()
            .filter(|(r, _, _)| *r == round)
            .map(|(_, _, i)| *i)
            .collect();
        who.iter().map(|i| u128::from(powers[*i as usize])).sum()
    }
}

proptest! {
    #[test]
    fn keeper_never_panics_and_never_reports_below_threshold(
        powers in prop::collection::vec(0u64..50, 1..7),
        ops in prop::collection::vec(op(), 0..120),
    ) {
        prop_assume!(powers.iter().any(|p| *p > 0));
        let total: u128 = powers.iter().map(|p| u128::from(*p)).sum();
        let mut k = Keeper::new(powers.clone(), 3).unwrap();
        let mut model = Model::default();
        let mut seen: BTreeSet<String> = BTreeSet::new();
        let mut catchup: BTreeMap<u32, u32> = BTreeMap::new();
        for op in ops {
            k.set_round(Round(k.current_round().0 + op.advance));
            let rec = vote(op.validator, op.round, op.vote_type, op.value, "m");
            let result = k.add_vote(rec);
            let known = (op.validator as usize) < powers.len();
            let open = model.counted.keys().any(|(r, _, _)| *r == op.round);
            let used = catchup.get(&op.validator).copied().unwrap_or(0);
            let in_window = op.round <= k.current_round().0 + 3 || open || used < MAX_CATCHUP_ROUNDS_PER_VALIDATOR;
            if known && !(op.round <= k.current_round().0 + 3 || open) && used < MAX_CATCHUP_ROUNDS_PER_VALIDATOR {
                catchup.insert(op.validator, used + 1);
            }
            let events = match result {
                Err(VoteKeeperError::UnknownValidator { .. }) => { prop_assert!(!known); continue; }
                Err(VoteKeeperError::RoundOutsideWindow { .. }) => { prop_assert!(known && !in_window); continue; }
                Err(e) => { prop_assert!(false, "unexpected error {e:?}"); continue; }
                Ok(events) => events,
            };
            prop_assert!(known && in_window);
            let key = (op.round, op.vote_type, op.validator);
            let previous = model.counted.get(&key).cloned().unwrap_or_default();
            if !previous.contains(&op.value) && previous.len() < MAX_VALUES_PER_VALIDATOR {
                model.counted.entry(key).or_default().push(op.value);
            }
            for e in events {
                // Each event at most once.
                if !matches!(e, VoteEvent::Equivocation(_)) {
                    prop_assert!(seen.insert(format!("{e:?}")), "reported twice: {e:?}");
                }
                let (p, needed_num) = match &e {
                    VoteEvent::PolkaValue { round, value } => (model.power(&powers, round.0, VoteType::Prevote, Some(Some(*value))), 2),
                    VoteEvent::PolkaNil { round } => (model.power(&powers, round.0, VoteType::Prevote, Some(None)), 2),
                    VoteEvent::PolkaAny { round } => (model.power(&powers, round.0, VoteType::Prevote, None), 2),
                    VoteEvent::PrecommitValue { round, value } => (model.power(&powers, round.0, VoteType::Precommit, Some(Some(*value))), 2),
                    VoteEvent::PrecommitNil { round } => (model.power(&powers, round.0, VoteType::Precommit, Some(None)), 2),
                    VoteEvent::PrecommitAny { round } => (model.power(&powers, round.0, VoteType::Precommit, None), 2),
                    VoteEvent::SkipRound { round } => {
                        prop_assert!(round.0 > k.current_round().0);
                        (model.senders(&powers, round.0), 1)
                    }
                    VoteEvent::Equivocation(ev) => {
                        // Reported exactly on the second distinct value.
                        prop_assert_eq!(previous.len(), 1);
                        prop_assert_eq!(previous[0], ev.first_value);
                        prop_assert_ne!(ev.first_value, ev.second_value);
                        (total, 0)
                    }
                };
                prop_assert!(3 * p > needed_num * total, "{e:?} with power {p} of {total}");
            }
        }
        // The keeper's queries agree with the model.
        for round in 0..12u32 {
            for t in [VoteType::Prevote, VoteType::Precommit] {
                prop_assert_eq!(k.power_any(Round(round), t), model.power(&powers, round, t, None));
                for value in [None, Some(0), Some(1), Some(2)] {
                    prop_assert_eq!(k.power_for(Round(round), t, value.as_ref()), model.power(&powers, round, t, Some(value)));
                }
            }
            prop_assert_eq!(k.sender_power(Round(round)), model.senders(&powers, round));
        }
    }
}
