//! `tx_search` against a real store: complete answers checked against a model of the committed
//! transactions, and refusals (never shortened lists) when a query needs too many reads.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use basalt_consensus::types::tx_hash;
use basalt_state::app::{Event, TxResult};
use basalt_state::{BlockCommit, CommittedTx, StoreConfig};

use super::*;

const LATEST: u64 = 30;
/// A small read budget, so refusals are reachable with a small chain.
const MAX_CHECKED: usize = 5;
/// A small counting budget likewise.
const MAX_COUNTED: usize = 12;

/// One model transaction: (height, index, sender, amount).
type ModelTx = (u64, u32, &'static str, u32);
/// Which model transactions a query keeps.
type Keep = fn(&ModelTx) -> bool;

/// Block `h` holds `h % 4` transactions; transaction `i` is sent by `A` when `h + i` is even, else `B`,
/// and moves `i + 1`.
fn model() -> Vec<ModelTx> {
    (1..=LATEST)
        .flat_map(|h| {
            (0..(h % 4) as u32).map(move |i| {
                let sender = if (h + u64::from(i)) % 2 == 0 {
                    "A"
                } else {
                    "B"
                };
                (h, i, sender, i + 1)
            })
        })
        .collect()
}

fn store_with_chain(dir: &std::path::Path) -> StateStore {
    let store = StateStore::open(dir, StoreConfig::default()).unwrap();
    store
        .apply_batch(0, vec![(b"k".to_vec(), Some(vec![1]))])
        .unwrap();
    let all = model();
    for height in 1..=LATEST {
        let txs = all
            .iter()
            .filter(|(h, ..)| *h == height)
            .map(|&(h, i, sender, amount)| {
                let bytes = format!("tx-{h}-{i}").into_bytes();
                let event = Event::new(
                    "transfer",
                    &[
                        ("sender", sender.to_owned()),
                        ("amount", amount.to_string()),
                    ],
                );
                CommittedTx {
                    hash: tx_hash(&bytes).0,
                    tx: bytes,
                    result: TxResult {
                        code: 0,
                        log: String::new(),
                        gas_wanted: 1,
                        gas_used: 1,
                        events: vec![event],
                    },
                }
            })
            .collect();
        store
            .commit_block(BlockCommit {
                height,
                writes: vec![(b"k".to_vec(), Some(height.to_be_bytes().to_vec()))],
                block: format!("block-{height}").into_bytes(),
                commit: format!("commit-{height}").into_bytes(),
                block_hash: Some(tx_hash(format!("block-{height}").as_bytes()).0),
                txs,
                evidence: Vec::new(),
                prepared: None,
                validator_updates: Vec::new(),
            })
            .unwrap();
    }
    store
}

fn search(
    store: &StateStore,
    text: &str,
    page: usize,
    per_page: usize,
    desc: bool,
) -> Result<(Vec<(u64, u32)>, usize), SearchError> {
    let query = TxQuery::parse(text).unwrap();
    let request = Request {
        query: &query,
        page,
        per_page,
        desc,
    };
    let limits = SearchLimits {
        checked: MAX_CHECKED,
        counted: MAX_COUNTED,
    };
    let (txs, total) = tx_search(store, LATEST, &request, limits)?;
    Ok((txs.iter().map(|t| (t.height, t.index)).collect(), total))
}

/// The model's answer: every match, the page of it, and the total.
fn expected(
    keep: impl Fn(&ModelTx) -> bool,
    page: usize,
    per_page: usize,
    desc: bool,
) -> (Vec<(u64, u32)>, usize) {
    let mut all: Vec<(u64, u32)> = model()
        .iter()
        .filter(|t| keep(t))
        .map(|&(h, i, ..)| (h, i))
        .collect();
    if desc {
        all.reverse();
    }
    let total = all.len();
    let page = all
        .into_iter()
        .skip((page - 1) * per_page)
        .take(per_page)
        .collect();
    (page, total)
}

/// Issue 15, item 3: on 9496b9c a height-range query was narrowed to the newest 10,000 blocks and its
/// `total_count` counted only those. Now the per-height counts answer it exactly, whatever its length
/// (here: far more transactions than the read budget), and any page is read directly.
#[test]
fn height_ranges_are_answered_completely_by_the_count_index() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_with_chain(dir.path());
    let cases: [(&str, Keep); 4] = [
        ("tx.height >= 1", |_| true),
        (
            "tm.event = 'Tx' AND tx.height > 3 AND tx.height <= 17",
            |t| t.0 > 3 && t.0 <= 17,
        ),
        ("tx.height = 7", |t| t.0 == 7),
        ("tx.height < 1", |_| false),
    ];
    for (text, keep) in cases {
        for (page, per_page, desc) in [(1, 100, false), (2, 7, false), (3, 4, true), (9, 5, true)] {
            assert_eq!(
                search(&store, text, page, per_page, desc).unwrap(),
                expected(keep, page, per_page, desc),
                "{text} page {page}/{per_page} desc {desc}"
            );
        }
    }
    assert!(model().len() > MAX_CHECKED * 4);
}

/// An indexed attribute equality is answered from its index: counted by its keys and only the page read,
/// so more matches than the read budget are still answered exactly; more than the counting budget is a
/// refusal, not a cut.
#[test]
fn attribute_equalities_are_exact_or_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_with_chain(dir.path());
    for (text, keep) in [
        (
            "transfer.sender = 'A' AND tx.height <= 14",
            (|t: &ModelTx| t.2 == "A" && t.0 <= 14) as Keep,
        ),
        (
            "tm.event = 'Tx' AND transfer.sender = 'B' AND tx.height > 20",
            |t| t.2 == "B" && t.0 > 20,
        ),
    ] {
        let matches = model().iter().filter(|t| keep(t)).count();
        assert!(
            matches > MAX_CHECKED && matches <= MAX_COUNTED,
            "{text}: {matches}"
        );
        for (page, per_page, desc) in [(1, 100, false), (2, 3, true), (3, 2, false), (9, 4, true)] {
            assert_eq!(
                search(&store, text, page, per_page, desc).unwrap(),
                expected(keep, page, per_page, desc),
                "{text} page {page}/{per_page} desc {desc}"
            );
        }
    }
    assert!(model().iter().filter(|t| t.2 == "A").count() > MAX_COUNTED);
    let err = search(&store, "transfer.sender = 'A'", 1, 100, false).unwrap_err();
    let SearchError::TooBroad(message) = err else {
        panic!("expected a refusal, got {err:?}");
    };
    assert!(message.contains("transfer.sender='A'"), "{message}");
    assert!(message.contains("tx.height"), "{message}");
    // With a condition the index cannot answer, the equality's entries are candidates to read: more
    // than the read budget is refused.
    let err = search(
        &store,
        "transfer.sender = 'A' AND transfer.amount > 1",
        1,
        100,
        false,
    );
    assert!(matches!(err, Err(SearchError::TooBroad(_))), "{err:?}");
}

/// Conditions no index answers need each candidate read: allowed within the budget (exact), refused
/// beyond it with a message that says how to narrow the query.
#[test]
fn unindexed_conditions_are_checked_within_the_budget_or_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_with_chain(dir.path());
    let text = "transfer.amount > 1 AND tx.height <= 2";
    let keep = |t: &ModelTx| t.3 > 1 && t.0 <= 2;
    assert_eq!(
        search(&store, text, 1, 100, false).unwrap(),
        expected(keep, 1, 100, false)
    );
    let err = search(&store, "transfer.amount > 1", 1, 100, false).unwrap_err();
    assert!(
        matches!(&err, SearchError::TooBroad(m) if m.contains("narrow it with tx.height")),
        "{err:?}"
    );
    // Another event kind than Tx holds no transactions; a hash finds exactly its transaction.
    assert_eq!(
        search(&store, "tm.event = 'NewBlock'", 1, 100, false).unwrap(),
        (Vec::new(), 0)
    );
    let hash = tx_hash(b"tx-6-1").to_hex_upper();
    assert_eq!(
        search(&store, &format!("tx.hash = '{hash}'"), 1, 100, false).unwrap(),
        (vec![(6, 1)], 1)
    );
}
