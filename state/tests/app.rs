//! The application interface: determinism across stores, the call order, proposals, restart and the
//! start-up handshake.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use basalt_consensus::types::crypto::testing::sign_with_torsion;
use basalt_consensus::types::{Address, Block, ChainId, Hash, PrivateKey, Tx};
use basalt_state::app::testkit::{transfer_tx, transfer_tx_signed_with, ChainBuilder};
use basalt_state::app::{
    handshake, results_hash, AppError, Application, BankApp, BankAppConfig, HandshakeError,
    Preverified, ProposalVerdict, TxResult,
};
use basalt_state::{StateStore, StoreConfig};
use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

const ACCOUNTS: u32 = 20;

fn chain() -> ChainId {
    ChainId::new("basalt-app-test").unwrap()
}

fn key(i: u32) -> PrivateKey {
    let mut seed = [0u8; 32];
    seed[..4].copy_from_slice(&i.to_le_bytes());
    PrivateKey::from_seed(&seed)
}

fn addr(i: u32) -> Address {
    key(i).public_key().address()
}

fn genesis(balance: u128) -> serde_json::Value {
    let accounts: Vec<_> = (0..ACCOUNTS)
        .map(|i| serde_json::json!({"address": addr(i).to_hex_upper(), "balance": balance.to_string()}))
        .collect();
    serde_json::json!({ "accounts": accounts })
}

fn open(dir: &std::path::Path) -> Arc<StateStore> {
    Arc::new(StateStore::open(dir, StoreConfig::default()).unwrap())
}

fn app(store: Arc<StateStore>) -> BankApp {
    BankApp::new(store, BankAppConfig { chain_id: chain() })
}

/// `blocks` blocks of random transfers (some failing: wrong nonce, too large) from a seeded rng.
fn random_txs(rng: &mut ChaCha8Rng, nonces: &mut [u64], count: usize) -> Vec<Tx> {
    (0..count)
        .map(|_| {
            let from = rng.next_u32() % ACCOUNTS;
            let to = addr(rng.next_u32() % ACCOUNTS);
            let amount = match rng.next_u32() % 10 {
                0 => u128::MAX,
                _ => u128::from(rng.next_u32() % 1000 + 1),
            };
            let nonce = if rng.next_u32().is_multiple_of(8) {
                nonces[from as usize] + 3
            } else {
                nonces[from as usize]
            };
            if amount != u128::MAX && nonce == nonces[from as usize] {
                nonces[from as usize] += 1;
            }
            transfer_tx(
                &key(from),
                &chain(),
                to,
                amount,
                u128::from(rng.next_u32() % 5),
                nonce,
            )
            .unwrap()
        })
        .collect()
}

/// Runs `blocks` through `app`; returns per-height (app hash, results hash) and the blocks.
fn drive(app: &mut BankApp, blocks: &[Vec<Tx>]) -> (Vec<(Hash, Hash)>, Vec<Block>) {
    let mut chain = ChainBuilder::new(chain(), 1, Address([9; 20]));
    let mut out = Vec::new();
    let mut made = Vec::new();
    for txs in blocks {
        let block = chain
            .block(app.info().unwrap().last_app_hash, txs.clone())
            .unwrap();
        assert_eq!(app.process_proposal(&block), ProposalVerdict::Accept);
        let r = app.finalize_block(&block).unwrap();
        let h = app.commit(ChainBuilder::commit_bytes(&block)).unwrap();
        assert_eq!(h, r.app_hash);
        let rh = results_hash(&r.tx_results);
        chain.set_last_results_hash(rh);
        out.push((h, rh));
        made.push(block);
    }
    (out, made)
}

fn workload(seed: u64, blocks: usize) -> Vec<Vec<Tx>> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut nonces = vec![0u64; ACCOUNTS as usize];
    (0..blocks)
        .map(|b| random_txs(&mut rng, &mut nonces, if b == 2 { 0 } else { 40 }))
        .collect()
}

#[test]
fn two_fresh_stores_given_the_same_blocks_agree_on_every_hash() {
    let blocks = workload(42, 6);
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (mut a, mut b) = (app(open(da.path())), app(open(db.path())));
    let ga = a.init_chain(1, &genesis(10_000)).unwrap();
    let gb = b.init_chain(1, &genesis(10_000)).unwrap();
    assert_eq!(ga, gb);
    let (ha, _) = drive(&mut a, &blocks);
    let (hb, _) = drive(&mut b, &blocks);
    assert_eq!(ha, hb);
    // The workload really moved state, including an empty block (height 3) that keeps the hash.
    assert_ne!(ha[0].0, ga);
    assert_eq!(ha[2].0, ha[1].0);
    // A different workload gives different hashes.
    let dc = tempfile::tempdir().unwrap();
    let mut c = app(open(dc.path()));
    c.init_chain(1, &genesis(10_000)).unwrap();
    let (hc, _) = drive(&mut c, &workload(43, 6));
    assert_ne!(hc.last(), ha.last());
}

#[test]
fn results_hash_covers_code_and_gas_but_not_logs() {
    let r = |code, log: &str| TxResult {
        code,
        log: log.into(),
        gas_wanted: 5,
        gas_used: 1,
        events: vec![],
    };
    assert_eq!(results_hash(&[r(0, "a")]), results_hash(&[r(0, "b")]));
    assert_ne!(results_hash(&[r(0, "a")]), results_hash(&[r(1, "a")]));
    assert_ne!(
        results_hash(&[r(0, ""), r(1, "")]),
        results_hash(&[r(1, ""), r(0, "")])
    );
}

#[test]
fn call_order_and_block_position_are_enforced() {
    let dir = tempfile::tempdir().unwrap();
    let mut a = app(open(dir.path()));
    let block = ChainBuilder::new(chain(), 1, Address([9; 20]))
        .block(Hash::ZERO, vec![])
        .unwrap();
    assert!(matches!(
        a.finalize_block(&block),
        Err(AppError::NotInitialized)
    ));
    assert_eq!(a.info().unwrap().last_height, None);
    let g = a.init_chain(1, &genesis(5)).unwrap();
    assert!(matches!(
        a.init_chain(1, &genesis(5)),
        Err(AppError::AlreadyInitialized { height: 0 })
    ));
    assert!(matches!(a.commit(vec![]), Err(AppError::OutOfOrder { .. })));
    // Wrong height.
    let mut far = ChainBuilder::new(chain(), 5, Address([9; 20]));
    let b5 = far.block(g, vec![]).unwrap();
    assert!(matches!(
        a.finalize_block(&b5),
        Err(AppError::WrongHeight {
            got: 5,
            expected: 1
        })
    ));
    assert!(matches!(
        a.process_proposal(&b5),
        ProposalVerdict::Reject { .. }
    ));
    // Wrong chain.
    let mut other = ChainBuilder::new(ChainId::new("x").unwrap(), 1, Address([9; 20]));
    let bx = other.block(g, vec![]).unwrap();
    assert!(matches!(
        a.finalize_block(&bx),
        Err(AppError::WrongChain { .. })
    ));
    // Wrong app hash in the header: rejected as a proposal.
    let mut fresh = ChainBuilder::new(chain(), 1, Address([9; 20]));
    let bad = fresh.block(Hash([1; 32]), vec![]).unwrap();
    assert!(matches!(
        a.process_proposal(&bad),
        ProposalVerdict::Reject { .. }
    ));
    // Undecodable tx: rejected as a proposal, recorded with code 1 if executed.
    let mut fresh = ChainBuilder::new(chain(), 1, Address([9; 20]));
    let junk = fresh
        .block(g, vec![Tx::new(vec![0xff; 40]).unwrap()])
        .unwrap();
    assert!(matches!(
        a.process_proposal(&junk),
        ProposalVerdict::Reject { .. }
    ));
    let r = a.finalize_block(&junk).unwrap();
    assert_eq!(r.tx_results[0].code, 1);
    assert_eq!(r.app_hash, g);
    assert_eq!(a.commit(vec![]).unwrap(), g);
    assert_eq!(a.info().unwrap().last_height, Some(1));
}

#[test]
fn prepare_proposal_keeps_executable_txs_within_the_byte_budget() {
    let dir = tempfile::tempdir().unwrap();
    let mut a = app(open(dir.path()));
    a.init_chain(1, &genesis(100)).unwrap();
    let t =
        |from, amount, nonce| transfer_tx(&key(from), &chain(), addr(1), amount, 1, nonce).unwrap();
    let txs = vec![
        t(0, 10, 0),
        t(0, 10, 2), // gap: dropped
        t(0, 10, 1),
        t(2, 200, 0),                    // insufficient: dropped
        Tx::new(vec![1, 2, 3]).unwrap(), // garbage: dropped
        t(3, 99, 0),                     // exactly the balance with the fee
        t(3, 1, 1),                      // nothing left: dropped
    ];
    let chosen = a.prepare_proposal(txs.clone(), 1 << 20);
    assert_eq!(chosen, vec![txs[0].clone(), txs[2].clone(), txs[5].clone()]);
    let one = txs[0].as_bytes().len() + 4;
    assert_eq!(
        a.prepare_proposal(txs.clone(), 2 * one),
        vec![txs[0].clone(), txs[2].clone()]
    );
    assert!(a.prepare_proposal(txs, one - 1).is_empty());
    // What it chose executes without failures.
    let mut chain = ChainBuilder::new(chain(), 1, Address([9; 20]));
    let block = chain
        .block(a.info().unwrap().last_app_hash, chosen)
        .unwrap();
    let r = a.finalize_block(&block).unwrap();
    assert!(r.tx_results.iter().all(|t| t.code == 0));
}

#[test]
fn restart_keeps_height_hash_and_balances() {
    let dir = tempfile::tempdir().unwrap();
    let blocks = workload(7, 4);
    let last = {
        let mut a = app(open(dir.path()));
        a.init_chain(1, &genesis(10_000)).unwrap();
        drive(&mut a, &blocks).0.last().unwrap().0
    };
    let mut a = app(open(dir.path()));
    let info = a.info().unwrap();
    assert_eq!((info.last_height, info.last_app_hash), (Some(4), last));
    let out = handshake(a.store().clone().as_ref(), &mut a, 1, &genesis(10_000)).unwrap();
    assert!(!out.initialized);
    assert!(out.replayed.is_empty());
    assert_eq!((out.height, out.app_hash), (4, last));
    // Block and commit bytes were stored with the state.
    assert!(a.store().block(4).unwrap().is_some());
    assert!(a.store().commit(4).unwrap().is_some());
}

#[test]
fn handshake_initializes_a_fresh_node() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let mut a = app(store.clone());
    let out = handshake(&store, &mut a, 1, &genesis(3)).unwrap();
    assert!(out.initialized);
    assert_eq!(out.height, 0);
    assert_eq!(out.app_hash, Hash(store.root(0).unwrap()));
    // Initial height 10: genesis state is version 9.
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let mut a = app(store.clone());
    let out = handshake(&store, &mut a, 10, &genesis(3)).unwrap();
    assert_eq!(out.height, 9);
    assert!(matches!(
        handshake(&store, &mut a, 0, &genesis(3)),
        Err(HandshakeError::BadInitialHeight)
    ));
}

#[test]
fn handshake_replays_blocks_missing_from_the_application() {
    // A block store with 5 blocks (another node's data directory)...
    let src_dir = tempfile::tempdir().unwrap();
    let src = open(src_dir.path());
    let mut source = app(src.clone());
    source.init_chain(1, &genesis(10_000)).unwrap();
    let hashes = drive(&mut source, &workload(11, 5)).0;
    // ...replayed into a fresh application...
    let dir = tempfile::tempdir().unwrap();
    let mut fresh = app(open(dir.path()));
    let out = handshake(&src, &mut fresh, 1, &genesis(10_000)).unwrap();
    assert!(out.initialized);
    assert_eq!(out.replayed, 1..6);
    assert_eq!(out.app_hash, hashes[4].0);
    assert_eq!(fresh.info().unwrap().last_app_hash, hashes[4].0);
    // ...and into one that is two blocks behind.
    let dir = tempfile::tempdir().unwrap();
    let mut behind = app(open(dir.path()));
    behind.init_chain(1, &genesis(10_000)).unwrap();
    let first3: Vec<Block> = (1..=3).map(|h| decode_block(&src, h)).collect();
    for b in &first3 {
        behind.finalize_block(b).unwrap();
        behind.commit(vec![]).unwrap();
    }
    let out = handshake(&src, &mut behind, 1, &genesis(10_000)).unwrap();
    assert_eq!(out.replayed, 4..6);
    assert_eq!(out.app_hash, hashes[4].0);
}

fn decode_block(store: &StateStore, h: u64) -> Block {
    basalt_consensus::types::decode("block", &store.block(h).unwrap().unwrap(), 1 << 24).unwrap()
}

#[test]
fn handshake_refuses_impossible_combinations() {
    let src_dir = tempfile::tempdir().unwrap();
    let src = open(src_dir.path());
    let mut source = app(src.clone());
    source.init_chain(1, &genesis(10_000)).unwrap();
    drive(&mut source, &workload(5, 3));

    // Application ahead of the block store: a node with 3 blocks against a store with 2.
    let short_dir = tempfile::tempdir().unwrap();
    let short = open(short_dir.path());
    let mut s = app(short.clone());
    s.init_chain(1, &genesis(10_000)).unwrap();
    for h in 1..=2 {
        s.finalize_block(&decode_block(&src, h)).unwrap();
        s.commit(vec![]).unwrap();
    }
    let err = handshake(&short, &mut source, 1, &genesis(10_000)).unwrap_err();
    assert!(
        matches!(
            err,
            HandshakeError::AppAheadOfBlocks {
                app_height: 3,
                block_height: Some(2)
            }
        ),
        "{err}"
    );

    // Replaying blocks built on another genesis: app hash mismatch at the first block.
    let dir = tempfile::tempdir().unwrap();
    let mut other = app(open(dir.path()));
    let err = handshake(&src, &mut other, 1, &genesis(1)).unwrap_err();
    assert!(
        matches!(err, HandshakeError::AppHashMismatch { height: 1, .. }),
        "{err}"
    );

    // State committed past the genesis without its block.
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    store
        .apply_batch(0, vec![(b"x".to_vec(), Some(b"1".to_vec()))])
        .unwrap();
    store
        .apply_batch(1, vec![(b"x".to_vec(), Some(b"2".to_vec()))])
        .unwrap();
    let mut a = app(store.clone());
    let err = handshake(&store, &mut a, 1, &genesis(1)).unwrap_err();
    assert!(
        matches!(err, HandshakeError::StateWithoutBlock { state_version: 1 }),
        "{err}"
    );
}

/// Executes `txs` as the next block; returns the block and its results.
fn execute(app: &mut BankApp, chain_b: &mut ChainBuilder, txs: Vec<Tx>) -> (Block, Vec<TxResult>) {
    let block = chain_b
        .block(app.info().unwrap().last_app_hash, txs)
        .unwrap();
    let r = app.finalize_block(&block).unwrap();
    app.commit(ChainBuilder::commit_bytes(&block)).unwrap();
    chain_b.set_last_results_hash(results_hash(&r.tx_results));
    (block, r.tx_results)
}

#[test]
fn committed_blocks_are_indexed_by_hash_with_their_txs_results_and_events() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let mut a = app(store.clone());
    a.init_chain(1, &genesis(10_000)).unwrap();
    let mut chain_b = ChainBuilder::new(chain(), 1, Address([9; 20]));
    let sender = addr(0).to_hex_upper();
    let mut expected_hits = Vec::new();
    for txs in workload(11, 5) {
        let (block, results) = execute(&mut a, &mut chain_b, txs);
        let h = block.height().0;
        assert_eq!(
            store.block_height_by_hash(&block.id().hash.0).unwrap(),
            Some(h)
        );
        assert_eq!(store.block_hash(h).unwrap(), Some(block.id().hash.0));
        assert_eq!(store.block_results(h).unwrap().as_ref(), Some(&results));
        for (i, (tx, result)) in (0u32..).zip(block.txs().iter().zip(&results)) {
            let at = store.tx_at(h, i).unwrap().unwrap();
            assert_eq!(
                (at.hash, at.tx.as_slice(), &at.result),
                (tx.hash().0, tx.as_bytes(), result)
            );
            let by_hash = store.tx(&tx.hash().0).unwrap().unwrap();
            assert_eq!(by_hash.tx, tx.as_bytes());
            let from_0 = result.events.iter().any(|e| {
                e.kind == "transfer"
                    && e.attributes
                        .iter()
                        .any(|a| a.key == "sender" && a.value == sender)
            });
            if from_0 {
                expected_hits.push((h, i));
            }
        }
    }
    assert!(
        !expected_hits.is_empty(),
        "the workload has transfers from account 0"
    );
    assert_eq!(
        store
            .search_txs("transfer.sender", &sender, usize::MAX, false)
            .unwrap(),
        expected_hits
    );
    // The genesis version has no block and no results.
    assert_eq!(store.block_results(0).unwrap(), None);
    assert_eq!(store.base_height().unwrap(), Some(1));
}

#[test]
fn recheck_skips_the_signature_but_not_nonce_or_funds() {
    let dir = tempfile::tempdir().unwrap();
    let mut a = app(open(dir.path()));
    a.init_chain(1, &genesis(10_000)).unwrap();
    let mut chain_b = ChainBuilder::new(chain(), 1, Address([9; 20]));
    let good = transfer_tx(&key(0), &chain(), addr(1), 5, 1, 0).unwrap();
    let accepted = a.check_tx(&good);
    assert!(accepted.is_ok(), "{accepted:?}");
    assert_eq!(a.recheck_tx(&good, &accepted), accepted);

    // A transfer whose signature is over another amount: check_tx refuses it, recheck after an
    // accepted check does not look at the signature (which cannot change for the same bytes).
    let body = |amount| basalt_state::bank::TransferBody {
        chain_id: chain(),
        from: key(0).public_key(),
        to: addr(1),
        amount,
        fee: 1,
        nonce: 0,
        gas_limit: basalt_state::bank::TRANSFER_GAS,
    };
    let signature = *body(1).sign(&key(0)).signature();
    let forged = basalt_state::bank::SignedTransfer::new(body(2), signature).unwrap();
    let forged = Tx::new(forged.to_tx_bytes()).unwrap();
    let refused = a.check_tx(&forged);
    assert_eq!(refused.code, 3, "{refused:?}");
    assert!(a.recheck_tx(&forged, &accepted).is_ok());
    assert_eq!(a.recheck_tx(&forged, &refused), refused);

    // Spending nonce 0 and most of the balance makes the queued ones fail their recheck.
    let spend = transfer_tx(&key(0), &chain(), addr(1), 9_000, 0, 1).unwrap();
    let overdraw = transfer_tx(&key(0), &chain(), addr(1), 9_000, 0, 2).unwrap();
    let overdraw_ok = a.check_tx(&overdraw);
    assert!(overdraw_ok.is_ok(), "{overdraw_ok:?}");
    let (_, results) = execute(&mut a, &mut chain_b, vec![good.clone(), spend]);
    assert!(results.iter().all(|r| r.code == 0), "{results:?}");
    let stale = a.recheck_tx(&good, &accepted);
    assert_eq!(stale.code, 4, "{stale:?}");
    let broke = a.recheck_tx(&overdraw, &overdraw_ok);
    assert_eq!(broke.code, 5, "insufficient funds: {broke:?}");
    assert_eq!(broke, a.check_tx(&overdraw));
}

/// A node's minimum gas price is admission policy: `check_tx` (and recheck) refuse a fee below
/// price × gas limit with code 9, rounding the price up; a block carrying such a transaction (another
/// validator may price gas lower) still executes it.
#[test]
fn the_minimum_gas_price_refuses_cheap_fees_at_admission_only() {
    use basalt_state::bank::gas_price::GasPrice;
    let dir = tempfile::tempdir().unwrap();
    let price: GasPrice = "0.0015".parse().unwrap();
    let mut a = app(open(dir.path())).with_min_gas_price(price);
    a.init_chain(1, &genesis(10_000)).unwrap();
    let mut chain_b = ChainBuilder::new(chain(), 1, Address([9; 20]));
    // A transfer's gas limit is 1000: 1.5 rounds up to 2.
    let cheap = transfer_tx(&key(0), &chain(), addr(1), 5, 1, 0).unwrap();
    let refused = a.check_tx(&cheap);
    assert_eq!(refused.code, 9, "{refused:?}");
    assert!(refused.log.contains("0.0015"), "{refused:?}");
    let paying = transfer_tx(&key(0), &chain(), addr(1), 5, 2, 0).unwrap();
    let accepted = a.check_tx(&paying);
    assert!(accepted.is_ok(), "{accepted:?}");
    assert_eq!(a.recheck_tx(&cheap, &accepted).code, 9);
    let (_, results) = execute(&mut a, &mut chain_b, vec![cheap]);
    assert_eq!(results[0].code, 0, "{results:?}");
}

#[test]
fn a_block_has_one_outcome_whichever_signatures_a_node_checked_before() {
    // Each node verifies a block's transfers in one batch, minus those its mempool already verified, so
    // the batch differs from node to node. A signature made to pass one verification equation and fail
    // another (only its key holder can make one; a byzantine proposer can put it in a block) must get the
    // same verdict on every node, or their app hashes split.
    let honest: Vec<Tx> = (1..=10)
        .map(|i| transfer_tx(&key(i), &chain(), addr(0), 5, 1, 0).unwrap())
        .collect();
    let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let mut checked_before = app(open(dirs[0].path()));
    let mut fresh = app(open(dirs[1].path()));
    for a in [&mut checked_before, &mut fresh] {
        a.init_chain(1, &genesis(10_000)).unwrap();
    }
    for tx in &honest {
        assert!(checked_before.check_tx(tx).is_ok());
    }
    let mut chains = [
        ChainBuilder::new(chain(), 1, Address([9; 20])),
        ChainBuilder::new(chain(), 1, Address([9; 20])),
    ];
    let mut outcomes = Vec::new();
    for nonce in 0..8u64 {
        let crafted = transfer_tx_signed_with(&key(0), &chain(), addr(1), 7, 1, nonce, |m| {
            sign_with_torsion(&key(0), m, nonce)
        })
        .unwrap();
        let mut txs = vec![crafted];
        if nonce == 0 {
            txs.extend(honest.iter().cloned());
        }
        let (_, on_checked) = execute(&mut checked_before, &mut chains[0], txs.clone());
        let (_, on_fresh) = execute(&mut fresh, &mut chains[1], txs);
        assert_eq!(on_checked, on_fresh, "block {nonce}'s results");
        assert_eq!(
            checked_before.info().unwrap().last_app_hash,
            fresh.info().unwrap().last_app_hash,
            "block {nonce}'s app hash"
        );
        outcomes.push(on_fresh[0].code);
    }
    // The crafted signature is judged by one rule, the same every time.
    assert!(outcomes.windows(2).all(|w| w[0] == w[1]), "{outcomes:?}");
}

#[test]
fn preverified_signatures_make_check_tx_a_cache_hit_and_a_bad_one_records_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut a = app(open(dir.path()));
    a.init_chain(1, &genesis(10_000)).unwrap();
    let good: Vec<Tx> = (1..=6)
        .map(|i| transfer_tx(&key(i), &chain(), addr(0), 5, 1, 0).unwrap())
        .collect();
    // Signed by another key: a bad signature.
    let forged =
        transfer_tx_signed_with(&key(7), &chain(), addr(0), 5, 1, 0, |m| key(8).sign(m)).unwrap();
    let garbage = Tx::new(vec![0, 1, 2]).unwrap();

    // One bad signature fails the batch: nothing recorded, and check_tx still judges each alone.
    let mut with_forged = good[..3].to_vec();
    with_forged.extend([forged.clone(), garbage.clone()]);
    assert_eq!(
        a.preverify_signatures(&with_forged),
        Preverified::Failed { verified: 4 }
    );
    assert!(good.iter().all(|tx| !a.signature_verified(&tx.hash())));
    assert_eq!(
        a.check_tx(&forged).code,
        basalt_state::bank::TxCode::BadSignature.as_u32()
    );
    assert!(!a.signature_verified(&forged.hash()));

    // A batch of good ones (a duplicate and undecodable bytes among them) records each good one once.
    let mut batch = good.clone();
    batch.extend([good[0].clone(), garbage.clone()]);
    assert_eq!(
        a.preverify_signatures(&batch),
        Preverified::Recorded(good.len())
    );
    assert!(good.iter().all(|tx| a.signature_verified(&tx.hash())));
    assert!(!a.signature_verified(&garbage.hash()));
    assert!(good.iter().all(|tx| a.check_tx(tx).is_ok()));
    // Already verified: nothing left to batch. A lone new transfer is not worth a batch.
    assert_eq!(a.preverify_signatures(&good), Preverified::Recorded(0));
    let lone = transfer_tx(&key(9), &chain(), addr(0), 5, 1, 0).unwrap();
    assert_eq!(a.preverify_signatures([&lone]), Preverified::Recorded(0));
    assert!(a.check_tx(&lone).is_ok());
}
