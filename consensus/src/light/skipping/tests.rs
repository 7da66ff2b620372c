#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::*;
use crate::light::fixture::{self, set, Chain};
use crate::light::TrustLevel;
use crate::primitives::VotingPower;

const HOUR_MS: u64 = 3_600_000;
const START_MS: u64 = 1_700_000_000_000;

fn chain_id() -> ChainId {
    ChainId::new("skip-test").unwrap()
}

fn options() -> Options {
    Options {
        trust_level: TrustLevel::ONE_THIRD,
        trusting_period_ms: 24 * HOUR_MS,
        max_clock_drift_ms: 10_000,
    }
}

/// A chain of heights 1..=top of this test's chain id, one block a second from `START_MS`.
fn build(top: u64, members: impl Fn(u64) -> Vec<(u8, VotingPower)>) -> Chain {
    Chain::build(&chain_id(), START_MS, top, members)
}

/// Runs `skipping` against `source` until done or refused; the heights fetched, in order.
fn run(
    skipping: &mut Skipping,
    source: impl Fn(Height) -> (LightBlock, ValidatorSet),
    now_ms: u64,
) -> Result<Vec<u64>, SkipError> {
    let mut fetched = Vec::new();
    while let Some(h) = skipping.wanted() {
        assert!(fetched.len() < 1_000, "the verification does not end");
        fetched.push(h.0);
        let (block, next) = source(h);
        skipping.feed(block, next, now_ms)?;
    }
    Ok(fetched)
}

/// Validators 1–4 at every height.
fn steady(_: u64) -> Vec<(u8, VotingPower)> {
    vec![(1, 10), (2, 10), (3, 10), (4, 10)]
}

/// A new, disjoint set of four every 100 heights (heights 1–100: seeds 1–4, 101–200: 5–8, …).
fn rotating(h: u64) -> Vec<(u8, VotingPower)> {
    let base = ((h - 1) / 100) as u8 * 4;
    (1..=4).map(|i| (base + i, 10)).collect()
}

#[test]
fn an_unchanged_set_is_verified_in_one_step() {
    let chain = build(1_000, steady);
    let now = START_MS + 2_000 * 1_000;
    let mut skipping = Skipping::new(chain.root(10), Height(1_000), options()).unwrap();
    let fetched = run(&mut skipping, |h| chain.at(h), now).unwrap();
    assert_eq!(fetched, vec![1_000]);
    assert_eq!(skipping.trusted().height(), Height(1_000));
    assert_eq!(skipping.wanted(), None);
}

#[test]
fn a_changing_set_is_crossed_by_bisection() {
    // Heights 10 and 450 share no validator: only pivots through every set change can link them.
    let chain = build(500, rotating);
    let now = START_MS + 1_000 * 1_000;
    let mut skipping = Skipping::new(chain.root(10), Height(450), options()).unwrap();
    let mut verified = Vec::new();
    while let Some(h) = skipping.wanted() {
        let (block, next) = chain.at(h);
        if let Some(v) = skipping.feed(block, next, now).unwrap() {
            verified.push(v.height().0);
        }
    }
    assert_eq!(verified.last(), Some(&450));
    // Each verified step crossed at most one set change (the rule needs a third of the old set).
    let mut from = 10;
    for h in &verified {
        assert!(
            (h - 1) / 100 <= (from - 1) / 100 + 1,
            "{from} -> {h} skips a set"
        );
        from = *h;
    }
    assert!(verified.len() < 64, "{verified:?}");
}

#[test]
fn a_source_lying_with_another_set_is_refused_within_the_pivot_bound() {
    let honest = build(12, steady);
    // A fabricated chain above 10, signed by keys the trusted set has never seen.
    let forged = build(1_000, |h| {
        if h <= 10 {
            steady(h)
        } else {
            vec![(21, 10), (22, 10), (23, 10), (24, 10)]
        }
    });
    let now = START_MS + 2_000 * 1_000;
    let mut skipping = Skipping::new(honest.root(10), Height(1_000), options()).unwrap();
    let err = run(&mut skipping, |h| forged.at(h), now).unwrap_err();
    // Bisection ends at the adjacent header, whose set is not the trusted next set.
    assert!(
        matches!(
            err,
            SkipError::Verify {
                height: Height(11),
                source: VerifyError::AdjacentValidatorsMismatch { .. }
            }
        ),
        "{err}"
    );
    assert_eq!(skipping.trusted().height(), Height(10));
}

#[test]
fn a_block_of_another_height_or_with_another_next_set_is_refused() {
    let chain = build(30, steady);
    let now = START_MS + 100 * 1_000;
    let mut skipping = Skipping::new(chain.root(10), Height(20), options()).unwrap();
    let (block, next) = chain.at(Height(19));
    assert_eq!(
        skipping.feed(block, next, now).unwrap_err(),
        SkipError::WrongHeight {
            asked: Height(20),
            got: Height(19)
        }
    );
    let (block, _) = chain.at(Height(20));
    let other = set(&[(9, 10)]);
    assert!(matches!(
        skipping.feed(block, other, now).unwrap_err(),
        SkipError::NextValidatorsMismatch {
            height: Height(20),
            ..
        }
    ));
    // Nothing above was trusted by the refused answers.
    assert_eq!(skipping.trusted().height(), Height(10));
    assert_eq!(skipping.wanted(), Some(Height(20)));
}

#[test]
fn an_expired_trust_or_a_target_below_it_is_refused() {
    let chain = build(30, steady);
    let late = START_MS + 10 * 1_000 + 24 * HOUR_MS;
    let mut skipping = Skipping::new(chain.root(10), Height(20), options()).unwrap();
    let (block, next) = chain.at(Height(20));
    assert!(matches!(
        skipping.feed(block, next, late).unwrap_err(),
        SkipError::Verify {
            source: VerifyError::Expired { .. },
            ..
        }
    ));
    assert!(matches!(
        Skipping::new(chain.root(10), Height(10), options()).unwrap_err(),
        SkipError::WrongDirection { .. }
    ));
}

#[test]
fn the_root_must_hash_to_the_trusted_hash_and_be_signed_by_its_set() {
    let chain = build(12, steady);
    let (block, next) = chain.at(Height(10));
    let wrong = Hash::digest(b"not it");
    assert!(matches!(
        VerifiedBlock::trust_root(block.clone(), next.clone(), &wrong).unwrap_err(),
        SkipError::WrongRootHash { .. }
    ));
    // Right hash, but a commit signed by only half of the set.
    let mut half = block.clone();
    half.commit = fixture::commit(&chain_id(), &block.header, &block.validators, &[1, 2]);
    let hash = block.header.hash();
    assert!(matches!(
        VerifiedBlock::trust_root(half, next.clone(), &hash).unwrap_err(),
        SkipError::Verify {
            source: VerifyError::Commit(_),
            ..
        }
    ));
    assert!(VerifiedBlock::trust_root(block, next, &hash).is_ok());
}

#[test]
fn older_headers_are_trusted_by_their_hash_link() {
    let chain = build(20, rotating);
    let mut newer = chain.root(15);
    for h in (1..15).rev() {
        let (block, next) = chain.at(Height(h));
        newer = verify_backwards(&newer.block.header, block, next).unwrap();
        assert_eq!(newer.height(), Height(h));
    }
    // A header that is not the one linked to, and a commit that does not sign the linked header.
    let trusted = chain.root(15);
    let (mut block, next) = chain.at(Height(14));
    block.header.app_hash = Hash::digest(b"forged");
    assert!(matches!(
        verify_backwards(&trusted.block.header, block, next.clone()).unwrap_err(),
        SkipError::BrokenLink { .. }
    ));
    let (mut block, _) = chain.at(Height(14));
    block.commit = fixture::commit(&chain_id(), &block.header, &block.validators, &[1]);
    assert!(matches!(
        verify_backwards(&trusted.block.header, block, next).unwrap_err(),
        SkipError::Verify {
            source: VerifyError::Commit(_),
            ..
        }
    ));
    let (block, next) = chain.at(Height(13));
    assert!(matches!(
        verify_backwards(&trusted.block.header, block, next).unwrap_err(),
        SkipError::WrongDirection { .. }
    ));
}
