//! The mempool: bounds, deduplication and its cache, single checks, reaping order, update, gossip queue.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::cell::Cell;
use std::sync::mpsc;
use std::sync::Arc;
use std::time::Duration;

use basalt_consensus::types::{Address, Tx};
use basalt_node::mempool::{Known, Mempool, MempoolConfig, MempoolError, TxOrigin};
use basalt_state::app::CheckTxResult;
use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed, TestRunner};

/// A test transaction: `[sender, nonce, tag, padding...]`; sender 0 means "no sender".
fn tx(sender: u8, nonce: u8, tag: u8, len: usize) -> Tx {
    let mut bytes = vec![sender, nonce, tag];
    bytes.resize(len.max(3), 0xAA);
    Tx::new(bytes).unwrap()
}

fn ok(tx: &Tx) -> CheckTxResult {
    let b = tx.as_bytes();
    CheckTxResult {
        code: 0,
        log: String::new(),
        gas_wanted: 1,
        gas_used: 1,
        sender: (b[0] != 0).then_some(Address([b[0]; 20])),
        nonce: u64::from(b[1]),
        priority: 0,
    }
}

fn bad(_: &Tx) -> CheckTxResult {
    CheckTxResult::rejected(4, "bad signature")
}

fn pool(max_txs: usize, max_bytes: usize, cache_size: usize) -> Mempool {
    Mempool::new(MempoolConfig {
        max_txs,
        max_bytes,
        cache_size,
        max_tx_bytes: 100,
    })
}

fn ids(txs: &[Tx]) -> Vec<(u8, u8, u8)> {
    txs.iter()
        .map(|t| (t.as_bytes()[0], t.as_bytes()[1], t.as_bytes()[2]))
        .collect()
}

#[test]
fn count_bytes_and_size_bounds() {
    let m = pool(3, 1000, 100);
    for i in 0..3 {
        m.insert(tx(1, i, 0, 10), ok).unwrap();
    }
    let checked = Cell::new(0);
    let full = m
        .insert(tx(1, 3, 0, 10), |t| {
            checked.set(checked.get() + 1);
            ok(t)
        })
        .unwrap_err();
    assert_eq!(
        full,
        MempoolError::Full {
            count: 3,
            max_count: 3,
            bytes: 30,
            max_bytes: 1000
        }
    );
    assert_eq!(checked.get(), 0, "no check when full");

    let m = pool(100, 25, 100);
    m.insert(tx(1, 0, 0, 10), ok).unwrap();
    m.insert(tx(1, 1, 0, 10), ok).unwrap();
    assert!(matches!(
        m.insert(tx(1, 2, 0, 10), ok),
        Err(MempoolError::Full { bytes: 20, .. })
    ));
    m.insert(tx(1, 2, 0, 5), ok).unwrap();
    assert_eq!((m.size(), m.size_bytes()), (3, 25));

    let big = tx(1, 9, 0, 101);
    let err = m
        .insert(big, |_| panic!("an oversized tx is never checked"))
        .unwrap_err();
    assert_eq!(err, MempoolError::TooLarge { len: 101, max: 100 });
    assert_eq!(m.stats().rejected_txs, 2);
}

#[test]
fn full_is_not_cached_so_the_tx_can_come_back() {
    let m = pool(1, 1000, 100);
    let a = tx(1, 0, 0, 10);
    let b = tx(2, 0, 0, 10);
    m.insert(a.clone(), ok).unwrap();
    assert!(matches!(
        m.insert(b.clone(), ok),
        Err(MempoolError::Full { .. })
    ));
    m.update(&[a], |_, _| true);
    m.insert(b, ok).unwrap();
}

#[test]
fn duplicates_are_checked_once_and_rejected_txs_stay_cached() {
    let m = pool(100, 10_000, 100);
    let calls = Cell::new(0);
    let counting = |t: &Tx| {
        calls.set(calls.get() + 1);
        ok(t)
    };
    let a = tx(1, 0, 0, 10);
    m.insert(a.clone(), counting).unwrap();
    assert_eq!(
        m.insert(a.clone(), counting),
        Err(MempoolError::InCache(Known::Valid))
    );
    assert_eq!(calls.get(), 1);
    assert!(m.contains(&a.hash()));

    let evil = tx(2, 0, 0, 10);
    let rejected = m.insert(evil.clone(), bad).unwrap_err();
    assert_eq!(
        rejected,
        MempoolError::Rejected {
            code: 4,
            log: "bad signature".into()
        }
    );
    assert_eq!(
        m.insert(evil.clone(), |_| panic!("re-verified a cached bad tx")),
        Err(MempoolError::InCache(Known::Rejected(4)))
    );
    assert!(!m.contains(&evil.hash()));
    let stats = m.stats();
    assert_eq!(
        (stats.failed_txs, stats.duplicate_txs, stats.size),
        (1, 2, 1)
    );
}

#[test]
fn a_concurrent_duplicate_is_not_checked_while_the_first_check_runs() {
    let m = Arc::new(pool(100, 10_000, 100));
    let a = tx(1, 0, 0, 10);
    let (entered_tx, entered_rx) = mpsc::channel();
    let (release_tx, release_rx) = mpsc::channel::<()>();
    let first = {
        let m = m.clone();
        let a = a.clone();
        std::thread::spawn(move || {
            m.insert(a, |t| {
                entered_tx.send(()).unwrap();
                release_rx.recv().unwrap();
                ok(t)
            })
        })
    };
    entered_rx.recv_timeout(Duration::from_secs(10)).unwrap();
    assert_eq!(
        m.insert(a.clone(), |_| panic!("checked twice")),
        Err(MempoolError::InCache(Known::Checking))
    );
    release_tx.send(()).unwrap();
    first.join().unwrap().unwrap();
    assert_eq!(m.size(), 1);
}

#[test]
fn cache_evicts_the_least_recently_seen_hash() {
    let m = pool(100, 10_000, 2);
    let (a, b, c) = (tx(1, 0, 0, 5), tx(1, 0, 1, 5), tx(1, 0, 2, 5));
    m.insert(a.clone(), bad).unwrap_err();
    m.insert(b.clone(), bad).unwrap_err();
    // Seeing `a` again makes `b` the least recently seen...
    assert_eq!(
        m.insert(a.clone(), bad),
        Err(MempoolError::InCache(Known::Rejected(4)))
    );
    m.insert(c.clone(), bad).unwrap_err();
    // ...so `b` was evicted and is checked again, `a` and `c` are still cached.
    let checked = Cell::new(false);
    m.insert(b.clone(), |t| {
        checked.set(true);
        bad(t)
    })
    .unwrap_err();
    assert!(checked.get());
    assert_eq!(
        m.insert(c.clone(), bad),
        Err(MempoolError::InCache(Known::Rejected(4)))
    );

    // With the cache off, a held tx is still never admitted twice.
    let m = pool(100, 10_000, 0);
    m.insert(a.clone(), ok).unwrap();
    assert_eq!(
        m.insert(a.clone(), ok),
        Err(MempoolError::InCache(Known::Valid))
    );
    m.insert(b.clone(), bad).unwrap_err();
    assert!(matches!(
        m.insert(b, bad),
        Err(MempoolError::Rejected { .. })
    ));
}

#[test]
fn cache_stays_bounded_under_many_distinct_txs() {
    let m = pool(10, 10_000, 50);
    for i in 0..=255u8 {
        for j in 0..8u8 {
            let _ = m.insert(tx(3, i, j, 5), bad);
        }
    }
    // The first ones were evicted long ago: checked again.
    let checked = Cell::new(false);
    let _ = m.insert(tx(3, 0, 0, 5), |t| {
        checked.set(true);
        bad(t)
    });
    assert!(checked.get());
}

#[test]
fn reap_orders_each_sender_by_nonce_and_stops_at_gaps() {
    let m = pool(100, 10_000, 100);
    // Arrival: s1n2, s2n0, s1n1, s0(no sender), s1n0, s3n0, s3n2 (gap), s2n1, s2n1' (same nonce).
    for t in [
        tx(1, 2, 0, 10),
        tx(2, 0, 0, 10),
        tx(1, 1, 0, 10),
        tx(0, 0, 7, 10),
        tx(1, 0, 0, 10),
        tx(3, 0, 0, 10),
        tx(3, 2, 0, 10),
        tx(2, 1, 0, 10),
        tx(2, 1, 1, 10),
    ] {
        m.insert(t, ok).unwrap();
    }
    let reaped = m.reap(usize::MAX, usize::MAX);
    assert_eq!(
        ids(&reaped),
        vec![
            (1, 0, 0),
            (2, 0, 0),
            (1, 1, 0),
            (0, 0, 7),
            (1, 2, 0),
            (3, 0, 0),
            (2, 1, 0)
        ]
    );
    // Both bounds.
    assert_eq!(ids(&m.reap(usize::MAX, 3)), ids(&reaped[..3]));
    assert_eq!(ids(&m.reap(35, usize::MAX)), ids(&reaped[..3]));
    assert!(m.reap(9, 10).is_empty());
    assert!(m.reap(100, 0).is_empty());
}

#[test]
fn a_tx_that_does_not_fit_ends_its_senders_run_only() {
    let m = pool(100, 10_000, 100);
    m.insert(tx(1, 0, 0, 10), ok).unwrap();
    m.insert(tx(1, 1, 0, 50), ok).unwrap();
    m.insert(tx(1, 2, 0, 5), ok).unwrap();
    m.insert(tx(2, 0, 0, 20), ok).unwrap();
    // s1n1 does not fit in 40 bytes: s1n2 must not follow (a gap); s2n0 still does.
    assert_eq!(ids(&m.reap(40, usize::MAX)), vec![(1, 0, 0), (2, 0, 0)]);
}

#[test]
fn update_removes_committed_and_rechecks_the_rest() {
    let m = pool(100, 10_000, 100);
    let txs: Vec<Tx> = (0..6).map(|n| tx(1, n, 0, 10)).collect();
    for t in &txs {
        m.insert(t.clone(), ok).unwrap();
    }
    let stranger = tx(2, 0, 0, 10);
    m.insert(stranger.clone(), ok).unwrap();
    let mut seen = Vec::new();
    // Nonces 0 and 1 committed; the recheck drops sender 2 (say, its balance is gone).
    m.update(&txs[..2], |t, result| {
        seen.push(result.nonce);
        t != &stranger
    });
    assert_eq!(
        seen,
        vec![2, 3, 4, 5, 0],
        "every remaining tx rechecked once, in arrival order"
    );
    assert_eq!(ids(&m.reap(usize::MAX, usize::MAX)), ids(&txs[2..]));
    assert_eq!((m.size(), m.size_bytes()), (4, 40));
    // Committed txs stay cached; a tx dropped by the recheck may come back.
    assert_eq!(
        m.insert(txs[0].clone(), ok),
        Err(MempoolError::InCache(Known::Valid))
    );
    m.insert(stranger, ok).unwrap();
    let stats = m.stats();
    assert_eq!(
        (stats.committed_txs, stats.evicted_txs, stats.recheck_times),
        (2, 1, 1)
    );
    // A commit of txs we never held is harmless and caches them.
    let foreign = tx(9, 0, 0, 10);
    m.update(std::slice::from_ref(&foreign), |_, _| true);
    assert_eq!(
        m.insert(foreign, ok),
        Err(MempoolError::InCache(Known::Valid))
    );
}

#[test]
fn without_recheck_a_commit_removes_only_what_it_committed_and_invalid_txs_leave_on_request() {
    let m = pool(100, 10_000, 100);
    let txs: Vec<Tx> = (0..4).map(|n| tx(1, n, 0, 10)).collect();
    for t in &txs {
        m.insert(t.clone(), ok).unwrap();
    }
    let conflicting = tx(1, 1, 7, 10);
    m.insert(conflicting.clone(), ok).unwrap();
    m.remove_committed(&txs[..2]);
    let stats = m.stats();
    assert_eq!((stats.committed_txs, stats.recheck_times), (2, 0));
    assert_eq!(m.size(), 3, "nothing but the committed left");
    assert_eq!(
        m.insert(txs[0].clone(), ok),
        Err(MempoolError::InCache(Known::Valid))
    );
    // The proposer found the conflicting one invalid: it leaves, and may come back once valid.
    assert_eq!(m.remove_invalid(&[conflicting.clone(), tx(9, 0, 0, 10)]), 1);
    assert_eq!(ids(&m.reap(usize::MAX, usize::MAX)), ids(&txs[2..]));
    assert_eq!(m.stats().evicted_txs, 1);
    m.insert(conflicting, ok).unwrap();
}

#[test]
fn gossip_queue_returns_new_local_txs_once_within_bytes() {
    let m = pool(100, 10_000, 100);
    let local: Vec<Tx> = (0..4).map(|n| tx(1, n, 0, 10)).collect();
    m.insert(local[0].clone(), ok).unwrap();
    m.insert_with_origin(tx(5, 0, 0, 10), TxOrigin::Peer, ok)
        .unwrap();
    for t in &local[1..] {
        m.insert(t.clone(), ok).unwrap();
    }
    m.update(&local[1..2], |_, _| true);
    assert_eq!(
        ids(&m.take_new_for_gossip(25)),
        ids(&[local[0].clone(), local[2].clone()])
    );
    assert_eq!(ids(&m.take_new_for_gossip(25)), ids(&local[3..]));
    assert!(m.take_new_for_gossip(25).is_empty());

    // With origins: peers' transactions too.
    m.insert_with_origin(tx(6, 0, 0, 10), TxOrigin::Peer, ok)
        .unwrap();
    m.insert(tx(7, 0, 0, 10), ok).unwrap();
    let both = m.take_new_with_origin(1000);
    let origins: Vec<TxOrigin> = both.iter().map(|(_, o)| *o).collect();
    assert_eq!(origins, vec![TxOrigin::Peer, TxOrigin::Local]);

    // A tx larger than a whole batch is skipped, not stuck at the head.
    m.insert(tx(8, 0, 0, 60), ok).unwrap();
    m.insert(tx(8, 1, 0, 10), ok).unwrap();
    assert_eq!(ids(&m.take_new_for_gossip(50)), vec![(8, 1, 0)]);
}

#[test]
fn txs_lists_in_arrival_order() {
    let m = pool(100, 10_000, 100);
    for n in [3u8, 1, 2] {
        m.insert(tx(n, 0, 0, 10), ok).unwrap();
    }
    assert_eq!(ids(&m.txs(2)), vec![(3, 0, 0), (1, 0, 0)]);
    assert_eq!(m.txs(10).len(), 3);
}

#[tokio::test]
async fn admission_wakes_a_waiter() {
    let m = Arc::new(pool(100, 10_000, 100));
    let notify = m.new_tx_notify();
    let waiter = tokio::spawn(async move { notify.notified().await });
    tokio::task::yield_now().await;
    m.insert(tx(1, 0, 0, 10), ok).unwrap();
    tokio::time::timeout(Duration::from_secs(10), waiter)
        .await
        .unwrap()
        .unwrap();
    // A waiter that arrives after the admission is not left hanging either.
    m.insert(tx(1, 1, 0, 10), ok).unwrap();
    tokio::time::timeout(Duration::from_secs(10), m.new_tx_notify().notified())
        .await
        .unwrap();
}

#[test]
fn random_operations_keep_the_bounds_and_reap_invariants() {
    let config = Config {
        cases: 64,
        rng_seed: RngSeed::Fixed(0x3E3),
        failure_persistence: None,
        ..Config::default()
    };
    // (op, sender, nonce, tag, len): op 0-5 insert, 6 reject, 7 commit a reaped prefix.
    let op = (0u8..8, 0u8..4, 0u8..6, 0u8..3, 3usize..40);
    let mut runner = TestRunner::new(config);
    runner
        .run(&prop::collection::vec(op, 1..120), |ops| {
            let m = pool(12, 200, 16);
            for (op, sender, nonce, tag, len) in ops {
                match op {
                    0..=5 => {
                        let _ = m.insert(tx(sender, nonce, tag, len), ok);
                    }
                    6 => {
                        let _ = m.insert(tx(sender, nonce, tag, len), bad);
                    }
                    _ => {
                        let block = m.reap(60, 3);
                        m.update(&block, |_, r| r.nonce % 5 != 4);
                    }
                }
                let stats = m.stats();
                prop_assert!(stats.size <= 12 && stats.size_bytes <= 200);
                prop_assert_eq!(m.txs(usize::MAX).len(), stats.size);
                let (max_bytes, max_txs) = (len * 3, usize::from(tag) + 2);
                let reaped = m.reap(max_bytes, max_txs);
                prop_assert!(reaped.len() <= max_txs);
                prop_assert!(reaped.iter().map(|t| t.as_bytes().len()).sum::<usize>() <= max_bytes);
                // Per sender: strictly consecutive nonces.
                for s in 1..4u8 {
                    let nonces: Vec<u8> = reaped
                        .iter()
                        .filter(|t| t.as_bytes()[0] == s)
                        .map(|t| t.as_bytes()[1])
                        .collect();
                    prop_assert!(nonces.windows(2).all(|w| w[1] == w[0] + 1), "{:?}", nonces);
                }
            }
            Ok(())
        })
        .unwrap();
}

/// The application's code for a bad signature (a gossiped batch holding one is provable misbehaviour).
fn bad_signature_code() -> u32 {
    basalt_state::bank::TxCode::BadSignature.as_u32()
}

fn bad_signature(_: &Tx) -> CheckTxResult {
    CheckTxResult::rejected(bad_signature_code(), "bad signature")
}

/// Issue 14, hole 3: on 9496b9c a batch [new valid tx, tx already refused for its signature] was accepted
/// (something in it was new) and so forwarded by gossipsub — and every peer then banned the honest node
/// for forwarding a bad signature. The batch is judged as a whole by what is known of each transaction.
#[test]
fn a_batch_repeating_a_refused_transaction_is_not_forwarded() {
    use basalt_node::runtime::txs::{admit, Admitted};
    let m = pool(100, 10_000, 100);
    let forged = tx(9, 0, 1, 10);
    // Submitted over RPC first: refused, and remembered as refused.
    assert!(matches!(
        m.insert(forged.clone(), bad_signature),
        Err(MempoolError::Rejected { .. })
    ));
    let fresh = tx(1, 0, 2, 10);
    let check = |t: &Tx| {
        if *t == forged {
            bad_signature(t)
        } else {
            ok(t)
        }
    };
    let verdict = admit(&m, vec![fresh.clone(), forged.clone()], check);
    assert_eq!(
        verdict,
        Admitted::BadSignature,
        "the sender is the one punished"
    );
    // A batch whose every transaction is valid, one of them new, is forwarded.
    let held = fresh;
    let other = tx(2, 0, 3, 10);
    assert_eq!(admit(&m, vec![held.clone(), other], ok), Admitted::New);
    // Nothing new: not forwarded, not punished.
    assert_eq!(admit(&m, vec![held], ok), Admitted::Nothing);
}

#[test]
fn a_batch_with_a_stale_transaction_is_neither_forwarded_nor_punished() {
    use basalt_node::runtime::txs::{admit, Admitted};
    let m = pool(100, 10_000, 100);
    let stale = tx(3, 0, 1, 10);
    // Refused for a reason other than its signature (a nonce race, say).
    assert!(m.insert(stale.clone(), bad).is_err());
    let verdict = admit(&m, vec![tx(4, 0, 2, 10), stale], ok);
    assert_eq!(verdict, Admitted::Nothing);
    // Refused now for a non-signature reason: the same.
    let verdict = admit(&m, vec![tx(5, 0, 3, 10), tx(6, 0, 4, 10)], |t: &Tx| {
        if t.as_bytes()[0] == 6 {
            bad(t)
        } else {
            ok(t)
        }
    });
    assert_eq!(verdict, Admitted::Nothing);
}

#[test]
fn what_the_mempool_knows_of_a_transaction() {
    let m = pool(100, 10_000, 100);
    let a = tx(1, 0, 1, 10);
    let b = tx(2, 0, 2, 10);
    assert_eq!(m.known(&a.hash()), Known::Unknown);
    m.insert(a.clone(), ok).unwrap();
    assert_eq!(m.known(&a.hash()), Known::Valid);
    let _ = m.insert(b.clone(), bad_signature);
    assert_eq!(m.known(&b.hash()), Known::Rejected(bad_signature_code()));
    // A repeat keeps what was known.
    assert_eq!(
        m.insert(b.clone(), ok),
        Err(MempoolError::InCache(Known::Rejected(bad_signature_code())))
    );
    assert_eq!(m.known(&b.hash()), Known::Rejected(bad_signature_code()));
    // Committed: still valid.
    m.update(std::slice::from_ref(&a), |_, _| true);
    assert_eq!(m.known(&a.hash()), Known::Valid);
}
