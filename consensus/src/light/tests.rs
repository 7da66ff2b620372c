#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::fixture::{key, seed_of, set};
use super::*;
use crate::primitives::{Round, ValidatorIndex, MAX_TOTAL_VOTING_POWER};
use crate::types::Vote;

const HOUR_MS: u64 = 3_600_000;
const START_MS: u64 = 1_700_000_000_000;

fn chain() -> ChainId {
    ChainId::new("light-test").unwrap()
}

fn light_block(
    height: u64,
    time_ms: u64,
    validators: &ValidatorSet,
    next: &ValidatorSet,
    signers: &[u8],
) -> LightBlock {
    let app_hash = Hash::digest(&height.to_be_bytes());
    fixture::light_block(
        &chain(),
        height,
        time_ms,
        validators,
        next,
        app_hash,
        signers,
    )
}

fn header(height: u64, time_ms: u64, validators: &ValidatorSet, next: &ValidatorSet) -> Header {
    let app_hash = Hash::digest(&height.to_be_bytes());
    fixture::header(&chain(), height, time_ms, validators, next, app_hash)
}

fn options() -> Options {
    Options {
        trust_level: TrustLevel::ONE_THIRD,
        trusting_period_ms: 24 * HOUR_MS,
        max_clock_drift_ms: 10_000,
    }
}

fn four() -> ValidatorSet {
    set(&[(1, 10), (2, 10), (3, 10), (4, 10)])
}

/// Trusted: height 10 of a chain whose next set is `next`.
fn trusted(next: &ValidatorSet) -> TrustedBlock {
    TrustedBlock::of(&header(10, START_MS, &four(), next))
}

const NOW: u64 = START_MS + HOUR_MS;

#[test]
fn trust_levels_outside_one_third_to_one_are_refused() {
    assert!(TrustLevel::new(1, 3).is_ok());
    assert!(TrustLevel::new(2, 3).is_ok());
    assert!(TrustLevel::new(1, 1).is_ok());
    assert!(TrustLevel::new(u64::MAX, u64::MAX).is_ok());
    assert!(
        TrustLevel::new(u64::MAX / 3, u64::MAX).is_ok(),
        "exactly 1/3"
    );
    for (n, d) in [
        (1, 4),
        (0, 1),
        (4, 3),
        (1, 0),
        (0, 0),
        (u64::MAX / 3 - 1, u64::MAX),
    ] {
        assert_eq!(
            TrustLevel::new(n, d),
            Err(VerifyError::InvalidTrustLevel {
                numerator: n,
                denominator: d
            }),
            "{n}/{d}"
        );
    }
}

#[test]
fn an_adjacent_header_needs_the_trusted_next_set_and_two_thirds_of_it() {
    let vals = four();
    let t = trusted(&vals);
    let ok = light_block(11, START_MS + 1_000, &vals, &vals, &[1, 2, 3]);
    assert_eq!(verify(&t, &vals, &ok, &options(), NOW), Ok(()));

    // Exactly 2/3 is not more than 2/3.
    let short = light_block(11, START_MS + 1_000, &vals, &vals, &[1, 2]);
    assert!(matches!(
        verify(&t, &vals, &short, &options(), NOW),
        Err(VerifyError::Commit(CommitError::InsufficientPower { .. }))
    ));

    // An adjacent header signed by a set other than the trusted next set, even a valid one.
    let other = set(&[(5, 10), (6, 10), (7, 10)]);
    let swapped = light_block(11, START_MS + 1_000, &other, &other, &[5, 6, 7]);
    assert!(matches!(
        verify(&t, &vals, &swapped, &options(), NOW),
        Err(VerifyError::AdjacentValidatorsMismatch { .. })
    ));
}

#[test]
fn a_non_adjacent_header_needs_a_third_of_the_trusted_set_and_two_thirds_of_its_own() {
    let old = four();
    let t = trusted(&old);
    // The set changed: two of the four old validators remain (20 of 40 trusted power > 1/3), two new.
    let new = set(&[(1, 10), (2, 10), (5, 10), (6, 10)]);
    let ok = light_block(20, START_MS + 60_000, &new, &new, &[1, 2, 5]);
    assert_eq!(verify(&t, &old, &ok, &options(), NOW), Ok(()));

    // Only one old validator signed: 10 of 40 is not more than 1/3, although the new set's +2/3 did.
    let little = light_block(20, START_MS + 60_000, &new, &new, &[1, 5, 6]);
    assert_eq!(
        verify(&t, &old, &little, &options(), NOW),
        Err(VerifyError::NotEnoughTrust {
            signed: 10,
            total: 40,
            numerator: 1,
            denominator: 3
        })
    );

    // A stricter trust level of 2/3 needs three old signers.
    let strict = Options {
        trust_level: TrustLevel::new(2, 3).unwrap(),
        ..options()
    };
    assert!(matches!(
        verify(&t, &old, &ok, &strict, NOW),
        Err(VerifyError::NotEnoughTrust { .. })
    ));
    let kept = set(&[(1, 10), (2, 10), (3, 10), (5, 10)]);
    let three = light_block(20, START_MS + 60_000, &kept, &kept, &[1, 2, 3]);
    assert_eq!(verify(&t, &old, &three, &strict, NOW), Ok(()));

    // Enough trusted power but not +2/3 of the new set.
    let bigger = set(&[(1, 10), (2, 10), (5, 30), (6, 30)]);
    let weak = light_block(20, START_MS + 60_000, &bigger, &bigger, &[1, 2, 5]);
    assert!(matches!(
        verify(&t, &old, &weak, &options(), NOW),
        Err(VerifyError::Commit(CommitError::InsufficientPower { .. }))
    ));

    // A completely new set carries no trust at all.
    let strangers = set(&[(5, 10), (6, 10), (7, 10)]);
    let none = light_block(20, START_MS + 60_000, &strangers, &strangers, &[5, 6, 7]);
    assert!(matches!(
        verify(&t, &old, &none, &options(), NOW),
        Err(VerifyError::NotEnoughTrust { signed: 0, .. })
    ));
}

#[test]
fn trusted_power_is_counted_by_the_trusted_set_not_the_new_one() {
    // Validator 1 had 10 of 40 trusted power; in the new set it claims 1,000. Its trusted weight is 10.
    let old = four();
    let t = trusted(&old);
    let new = set(&[(1, 1_000), (5, 10)]);
    let inflated = light_block(20, START_MS + 60_000, &new, &new, &[1, 5]);
    assert!(matches!(
        verify(&t, &old, &inflated, &options(), NOW),
        Err(VerifyError::NotEnoughTrust {
            signed: 10,
            total: 40,
            ..
        })
    ));
}

#[test]
fn forged_signatures_are_refused() {
    let old = four();
    let t = trusted(&old);
    // Non-adjacent: a trusted validator's slot carries a signature by another key; the trust tally needs
    // both signers (10 of 40 alone is not more than 1/3), so the forgery is met there.
    let mut forged = light_block(20, START_MS + 60_000, &old, &old, &[1, 2]);
    let victim = (0..old.len()).find(|i| seed_of(&old, *i) == 1).unwrap();
    let vote = Vote {
        vote_type: VoteType::Precommit,
        height: Height(20),
        round: Round(0),
        block_id: Some(forged.commit.block_id),
        validator_index: ValidatorIndex(victim as u32),
    };
    forged.commit.signatures[victim] = CommitSig::ForBlock(key(9).sign(&vote.sign_bytes(&chain())));
    let err = verify(&t, &old, &forged, &options(), NOW).unwrap_err();
    assert!(
        matches!(
            &err,
            VerifyError::BadTrustedSignature { address }
                if *address == key(1).public_key().address().to_hex_upper()
        ),
        "{err}"
    );

    // Adjacent: a forgery fails the +2/3 check of the set.
    let mut adjacent = light_block(11, START_MS + 1_000, &old, &old, &[1, 2, 3]);
    let vote = Vote {
        height: Height(11),
        block_id: Some(adjacent.commit.block_id),
        ..vote
    };
    adjacent.commit.signatures[victim] =
        CommitSig::ForBlock(key(9).sign(&vote.sign_bytes(&chain())));
    assert!(matches!(
        verify(&t, &old, &adjacent, &options(), NOW),
        Err(VerifyError::Commit(CommitError::BadSignature { .. }))
    ));

    // Signatures for another chain's block do not count.
    let mut other_chain = light_block(11, START_MS + 1_000, &old, &old, &[1, 2, 3]);
    other_chain.header.chain_id = ChainId::new("light-other").unwrap();
    assert!(matches!(
        verify(&t, &old, &other_chain, &options(), NOW),
        Err(VerifyError::WrongChainId { .. })
    ));
}

#[test]
fn the_commit_must_be_for_this_header() {
    let vals = four();
    let t = trusted(&vals);
    for height in [11, 20] {
        let mut b = light_block(height, START_MS + 1_000, &vals, &vals, &[1, 2, 3]);
        // The header changed after it was signed (another app hash): the commit is for another block.
        b.header.app_hash = Hash([7; 32]);
        assert!(
            matches!(
                verify(&t, &vals, &b, &options(), NOW),
                Err(VerifyError::Commit(CommitError::WrongBlock { .. }))
            ),
            "height {height}"
        );
    }
    // A commit with a slot too many or too few.
    for delta in [-1i32, 1] {
        let mut b = light_block(20, START_MS + 1_000, &vals, &vals, &[1, 2, 3]);
        if delta < 0 {
            b.commit.signatures.pop();
        } else {
            b.commit.signatures.push(CommitSig::Absent);
        }
        assert!(matches!(
            verify(&t, &vals, &b, &options(), NOW),
            Err(VerifyError::Commit(CommitError::WrongSize { .. }))
        ));
    }
    // The validator set given is not the header's.
    let mut b = light_block(11, START_MS + 1_000, &vals, &vals, &[1, 2, 3]);
    b.validators = set(&[(1, 10), (2, 10), (3, 10), (4, 11)]);
    assert!(matches!(
        verify(&t, &vals, &b, &options(), NOW),
        Err(VerifyError::ValidatorsMismatch { .. })
    ));
    // The trusted set given is not the trusted header's next set.
    let b = light_block(11, START_MS + 1_000, &vals, &vals, &[1, 2, 3]);
    assert!(matches!(
        verify(&t, &set(&[(1, 10)]), &b, &options(), NOW),
        Err(VerifyError::TrustedValidatorsMismatch { .. })
    ));
}

#[test]
fn heights_times_expiry_and_drift() {
    let vals = four();
    let t = trusted(&vals);
    let at = |height: u64, time_ms: u64| light_block(height, time_ms, &vals, &vals, &[1, 2, 3]);
    assert!(matches!(
        verify(&t, &vals, &at(10, START_MS + 1), &options(), NOW),
        Err(VerifyError::NonIncreasingHeight { .. })
    ));
    assert!(matches!(
        verify(&t, &vals, &at(9, START_MS + 1), &options(), NOW),
        Err(VerifyError::NonIncreasingHeight { .. })
    ));
    assert!(matches!(
        verify(&t, &vals, &at(11, START_MS), &options(), NOW),
        Err(VerifyError::NonIncreasingTime { .. })
    ));
    // Drift: up to max_clock_drift ahead of now is fine, one ms more is not.
    let drift = options().max_clock_drift_ms;
    assert_eq!(
        verify(&t, &vals, &at(11, NOW + drift), &options(), NOW),
        Ok(())
    );
    assert!(matches!(
        verify(&t, &vals, &at(11, NOW + drift + 1), &options(), NOW),
        Err(VerifyError::FromTheFuture { .. })
    ));
    // Expiry: trusted until (not at) trusted time + trusting period.
    let period = options().trusting_period_ms;
    let header = at(11, START_MS + 1_000);
    assert_eq!(
        verify(&t, &vals, &header, &options(), START_MS + period - 1),
        Ok(())
    );
    assert!(matches!(
        verify(&t, &vals, &header, &options(), START_MS + period),
        Err(VerifyError::Expired { .. })
    ));
    // Extreme values saturate rather than wrap.
    let forever = Options {
        trusting_period_ms: u64::MAX,
        max_clock_drift_ms: u64::MAX,
        ..options()
    };
    assert_eq!(
        verify(&t, &vals, &at(11, u64::MAX), &forever, u64::MAX - 1),
        Ok(())
    );
    assert_eq!(
        verify(&t, &vals, &at(u64::MAX, START_MS + 1), &options(), NOW),
        Ok(())
    );
}

#[test]
fn the_largest_powers_do_not_overflow() {
    // Two validators holding the whole allowed total power, trusted level 1/1.
    let half = MAX_TOTAL_VOTING_POWER / 2;
    let big = set(&[(1, half), (2, half)]);
    let t = TrustedBlock::of(&header(10, START_MS, &big, &big));
    let all = Options {
        trust_level: TrustLevel::new(u64::MAX - 1, u64::MAX - 1).unwrap(),
        ..options()
    };
    let b = light_block(20, START_MS + 1_000, &big, &big, &[1, 2]);
    // Both signed: everything, yet "more than all of it" cannot hold (as in CometBFT, whose trust level
    // 1 is likewise strict): refused, not wrapped into a pass.
    assert!(matches!(
        verify(&t, &big, &b, &all, NOW),
        Err(VerifyError::NotEnoughTrust { .. })
    ));
    assert_eq!(verify(&t, &big, &b, &options(), NOW), Ok(()));
    // One of the two: half the trusted power (more than 1/3), but not +2/3 of the set.
    let one = light_block(20, START_MS + 1_000, &big, &big, &[1]);
    assert!(matches!(
        verify(&t, &big, &one, &options(), NOW),
        Err(VerifyError::Commit(CommitError::InsufficientPower { .. }))
    ));
}
