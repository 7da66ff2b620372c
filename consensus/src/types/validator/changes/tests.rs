#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::*;
use crate::types::crypto::PrivateKey;

fn key(seed: u8) -> PublicKey {
    PrivateKey::from_seed(&[seed; 32]).public_key()
}

fn set(members: &[(u8, VotingPower)]) -> ValidatorSet {
    ValidatorSet::new(members.iter().map(|(s, p)| (key(*s), *p)).collect()).unwrap()
}

fn change(seed: u8, power: VotingPower) -> ValidatorChange {
    ValidatorChange {
        public_key: key(seed),
        power,
    }
}

fn priority(set: &ValidatorSet, seed: u8) -> i64 {
    let index = set.index_of(&key(seed).address()).unwrap();
    set.get(index).unwrap().proposer_priority
}

fn is_canonical(set: &ValidatorSet) -> bool {
    set.validators().windows(2).all(|w| {
        (w[0].voting_power, std::cmp::Reverse(w[0].address))
            > (w[1].voting_power, std::cmp::Reverse(w[1].address))
    })
}

#[test]
fn no_changes_is_the_next_height() {
    let s = set(&[(1, 10), (2, 20), (3, 30)]);
    assert_eq!(s.next_height_with(&[]).unwrap(), s.next_height());
}

#[test]
fn an_added_validator_starts_behind_by_one_and_an_eighth_of_the_total() {
    // Worked by hand from CometBFT's rules. new([A, B]): priorities 0, 0, +10 each, the lower address
    // (L) leads and pays 20: L = −10, H = +10. Adding C (10): total after updates 30, so C starts at
    // −(30 + 30 >> 3) = −33; no rescale (spread 43 ≤ 60); centring by ⌊−33 / 3⌋ = −11 gives L 1, H 21,
    // C −22; the next increment adds 10 each (11, 31, −12) and H leads and pays 30: L 11, H 1, C −12.
    let s = set(&[(1, 10), (2, 10)]);
    let (low, high) = if key(1).address() < key(2).address() {
        (1, 2)
    } else {
        (2, 1)
    };
    assert_eq!(priority(&s, low), -10);
    assert_eq!(priority(&s, high), 10);
    let next = s.next_height_with(&[change(3, 10)]).unwrap();
    assert_eq!(priority(&next, low), 11);
    assert_eq!(priority(&next, high), 1);
    assert_eq!(priority(&next, 3), -12);
    assert_eq!(
        next.get(next.proposer()).unwrap().address,
        key(high).address()
    );
    assert_eq!(next.total_power(), 30);
    assert!(is_canonical(&next));
}

#[test]
fn removals_and_power_changes_give_the_set_they_name() {
    let s = set(&[(1, 10), (2, 20), (3, 30)]);
    let next = s.next_height_with(&[change(3, 0), change(1, 50)]).unwrap();
    assert_eq!(next.hash(), set(&[(1, 50), (2, 20)]).hash());
    assert_eq!(next.total_power(), 70);
    assert_eq!(next.validators()[0].address, key(1).address());
    assert!(next.index_of(&key(3).address()).is_none());
    assert!(is_canonical(&next));
    // The wire form round-trips (decoding re-validates order and proposer).
    let bytes = crate::types::encode(&next);
    let back: ValidatorSet = crate::types::decode("set", &bytes, usize::MAX).unwrap();
    assert_eq!(back, next);
}

#[test]
fn rejoining_does_not_reset_a_validator_to_the_front() {
    let s = set(&[(1, 10), (2, 10), (3, 10)]);
    let without = s.next_height_with(&[change(3, 0)]).unwrap();
    let back = without.next_height_with(&[change(3, 10)]).unwrap();
    let lowest = back
        .validators()
        .iter()
        .map(|v| v.proposer_priority)
        .min()
        .unwrap();
    assert_eq!(
        priority(&back, 3),
        lowest,
        "the rejoined validator is last in line"
    );
}

#[test]
fn proposals_stay_proportional_to_power_across_changes() {
    let mut s = set(&[(1, 10), (2, 20), (3, 30)]);
    s = s.next_height_with(&[change(4, 40)]).unwrap();
    let mut counts = BTreeMap::new();
    for _ in 0..1_000 {
        *counts
            .entry(s.get(s.proposer()).unwrap().address)
            .or_insert(0u64) += 1;
        s = s.next_height();
    }
    for (seed, power) in [(1u8, 10u64), (2, 20), (3, 30), (4, 40)] {
        let got = counts.get(&key(seed).address()).copied().unwrap_or(0);
        let want = power * 1_000 / 100;
        assert!(
            got.abs_diff(want) <= 2,
            "seed {seed}: {got} proposals, {want} expected"
        );
    }
}

#[test]
fn bad_change_sets_are_refused() {
    let s = set(&[(1, 10), (2, 20)]);
    assert_eq!(
        s.next_height_with(&[change(3, 5), change(3, 6)]),
        Err(ValidatorUpdateError::Duplicate {
            address: key(3).address()
        })
    );
    assert_eq!(
        s.next_height_with(&[change(3, 0)]),
        Err(ValidatorUpdateError::RemovingAbsent {
            address: key(3).address()
        })
    );
    assert_eq!(
        s.next_height_with(&[change(1, 0), change(2, 0)]),
        Err(ValidatorUpdateError::Empty)
    );
    assert!(matches!(
        s.next_height_with(&[change(3, MAX_TOTAL_VOTING_POWER + 1)]),
        Err(ValidatorUpdateError::PowerTooLarge { .. })
    ));
    assert_eq!(
        s.next_height_with(&[change(3, MAX_TOTAL_VOTING_POWER - 20)]),
        Err(ValidatorUpdateError::TotalPowerTooLarge {
            max: MAX_TOTAL_VOTING_POWER
        })
    );
    // Removals count first: swapping the whole power for a new key at the maximum is allowed.
    let big = set(&[(1, MAX_TOTAL_VOTING_POWER - 10), (2, 10)]);
    let swapped = big
        .next_height_with(&[change(1, 0), change(3, MAX_TOTAL_VOTING_POWER - 10)])
        .unwrap();
    assert_eq!(swapped.total_power(), MAX_TOTAL_VOTING_POWER);
}
