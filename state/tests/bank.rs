//! The bank module through the application interface: transfers (valid and every failure), nonces,
//! queries with ICS-23 proofs, garbage input, and a 10k-transfer block.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use basalt_consensus::types::{Address, ChainId, Hash, PrivateKey, Tx};
use basalt_state::app::testkit::{transfer_tx, ChainBuilder};
use basalt_state::app::{
    results_hash, verify_answer, Application, BankApp, BankAppConfig, FinalizeResult,
    ProposalVerdict, QueryPathError, QueryTarget,
};
use basalt_state::bank::{
    account_key, Account, BankGenesis, BankTx, GenesisError, SignedTransfer, TransferBody, TxCode,
    NONCE_WINDOW, TRANSFER_GAS,
};
use basalt_state::{verify_membership, verify_non_membership, StateStore, StoreConfig};
use proptest::prelude::*;

const CHAIN: &str = "basalt-test";
const START: u128 = 1_000_000;

fn chain() -> ChainId {
    ChainId::new(CHAIN).unwrap()
}

fn key(i: u32) -> PrivateKey {
    let mut seed = [0u8; 32];
    seed[..4].copy_from_slice(&i.to_le_bytes());
    seed[31] = 0xb5;
    PrivateKey::from_seed(&seed)
}

fn addr(i: u32) -> Address {
    key(i).public_key().address()
}

fn proposer() -> Address {
    Address([0xee; 20])
}

fn genesis_json(n: u32, balance: u128) -> serde_json::Value {
    let accounts: Vec<_> = (0..n)
        .map(|i| serde_json::json!({"address": addr(i).to_hex_upper(), "balance": balance.to_string()}))
        .collect();
    serde_json::json!({ "accounts": accounts })
}

struct Node {
    // Fields drop in order: close the database before deleting its directory.
    app: BankApp,
    chain: ChainBuilder,
    _dir: tempfile::TempDir,
}

impl Node {
    fn new(accounts: u32) -> Node {
        Node::with_genesis(genesis_json(accounts, START))
    }

    fn with_genesis(genesis: serde_json::Value) -> Node {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(StateStore::open(dir.path(), StoreConfig::default()).unwrap());
        let mut app = BankApp::new(store, BankAppConfig { chain_id: chain() });
        app.init_chain(1, &genesis).unwrap();
        Node {
            _dir: dir,
            app,
            chain: ChainBuilder::new(chain(), 1, proposer()),
        }
    }

    fn hash(&self) -> Hash {
        self.app.info().unwrap().last_app_hash
    }

    fn run(&mut self, txs: Vec<Tx>) -> FinalizeResult {
        let block = self.chain.block(self.hash(), txs).unwrap();
        assert_eq!(self.app.process_proposal(&block), ProposalVerdict::Accept);
        let result = self.app.finalize_block(&block).unwrap();
        let committed = self.app.commit(ChainBuilder::commit_bytes(&block)).unwrap();
        assert_eq!(committed, result.app_hash);
        self.chain
            .set_last_results_hash(results_hash(&result.tx_results));
        result
    }

    fn account(&self, a: &Address) -> Account {
        let v = self.app.info().unwrap().last_height.unwrap();
        self.app.account(a, v).unwrap()
    }
}

fn tx(from: u32, to: Address, amount: u128, fee: u128, nonce: u64) -> Tx {
    transfer_tx(&key(from), &chain(), to, amount, fee, nonce).unwrap()
}

fn body(from: u32, to: Address, amount: u128, fee: u128, nonce: u64) -> TransferBody {
    TransferBody {
        chain_id: chain(),
        from: key(from).public_key(),
        to,
        amount,
        fee,
        nonce,
        gas_limit: TRANSFER_GAS,
    }
}

fn codes(r: &FinalizeResult) -> Vec<u32> {
    r.tx_results.iter().map(|t| t.code).collect()
}

#[test]
fn valid_transfer_moves_funds_pays_fee_and_emits_events() {
    let mut node = Node::new(3);
    let t = tx(0, addr(1), 250, 7, 0);
    let check = node.app.check_tx(&t);
    assert!(check.is_ok(), "{check:?}");
    assert_eq!(
        (check.sender, check.nonce, check.priority),
        (Some(addr(0)), 0, 7)
    );
    let before = node.hash();
    let r = node.run(vec![t]);
    assert_eq!(codes(&r), vec![0]);
    assert_ne!(r.app_hash, before);
    assert_eq!(r.tx_results[0].gas_used, TRANSFER_GAS);
    assert_eq!(
        node.account(&addr(0)),
        Account {
            balance: START - 257,
            nonce: 1
        }
    );
    assert_eq!(
        node.account(&addr(1)),
        Account {
            balance: START + 250,
            nonce: 0
        }
    );
    assert_eq!(
        node.account(&proposer()),
        Account {
            balance: 7,
            nonce: 0
        }
    );
    let transfer = &r.tx_results[0].events[0];
    assert_eq!(transfer.kind, "transfer");
    let attrs: Vec<(&str, &str)> = transfer
        .attributes
        .iter()
        .map(|a| (a.key.as_str(), a.value.as_str()))
        .collect();
    let (s, rcp) = (addr(0).to_hex_upper(), addr(1).to_hex_upper());
    assert_eq!(
        attrs,
        vec![
            ("sender", s.as_str()),
            ("recipient", rcp.as_str()),
            ("amount", "250")
        ]
    );
}

#[test]
fn self_transfer_costs_only_the_fee() {
    let mut node = Node::new(1);
    let r = node.run(vec![tx(0, addr(0), 500, 3, 0)]);
    assert_eq!(codes(&r), vec![0]);
    assert_eq!(
        node.account(&addr(0)),
        Account {
            balance: START - 3,
            nonce: 1
        }
    );
}

#[test]
fn bad_signature_is_rejected_and_changes_nothing() {
    let mut node = Node::new(2);
    let signed = body(0, addr(1), 10, 1, 0).sign(&key(0));
    // Same signature over a different amount.
    let forged = SignedTransfer::new(body(0, addr(1), 10_000, 1, 0), *signed.signature()).unwrap();
    let t = Tx::new(forged.to_tx_bytes()).unwrap();
    assert_eq!(node.app.check_tx(&t).code, TxCode::BadSignature.as_u32());
    // Signed by another key.
    let other = SignedTransfer::new(
        body(0, addr(1), 10, 1, 0),
        *body(0, addr(1), 10, 1, 0).sign(&key(1)).signature(),
    )
    .unwrap();
    let t2 = Tx::new(other.to_tx_bytes()).unwrap();
    let before = node.hash();
    let r = node.run(vec![t, t2]);
    assert_eq!(codes(&r), vec![3, 3]);
    assert_eq!(r.app_hash, before, "failed transfers write nothing");
    assert_eq!(
        node.account(&addr(0)),
        Account {
            balance: START,
            nonce: 0
        }
    );
}

#[test]
fn wrong_chain_id_is_rejected() {
    let mut node = Node::new(2);
    let other = ChainId::new("other-chain").unwrap();
    let t = transfer_tx(&key(0), &other, addr(1), 10, 1, 0).unwrap();
    assert_eq!(node.app.check_tx(&t).code, TxCode::WrongChainId.as_u32());
    // process_proposal refuses a block with it; executed anyway, it fails with the same code.
    let block = node
        .chain
        .clone()
        .block(node.hash(), vec![t.clone()])
        .unwrap();
    assert!(matches!(
        node.app.process_proposal(&block),
        ProposalVerdict::Reject { .. }
    ));
    let r = node.app.finalize_block(&block).unwrap();
    assert_eq!(codes(&r), vec![TxCode::WrongChainId.as_u32()]);
}

#[test]
fn replayed_nonce_is_rejected_in_mempool_and_block() {
    let mut node = Node::new(2);
    let t = tx(0, addr(1), 10, 1, 0);
    // Twice in one block: the second is a replay.
    let r = node.run(vec![t.clone(), t.clone()]);
    assert_eq!(codes(&r), vec![0, TxCode::BadNonce.as_u32()]);
    assert_eq!(node.app.check_tx(&t).code, TxCode::BadNonce.as_u32());
    let r = node.run(vec![t]);
    assert_eq!(codes(&r), vec![TxCode::BadNonce.as_u32()]);
    assert_eq!(node.account(&addr(0)).nonce, 1);
}

#[test]
fn mempool_accepts_a_small_nonce_window_blocks_need_the_exact_nonce() {
    let mut node = Node::new(2);
    assert!(node
        .app
        .check_tx(&tx(0, addr(1), 1, 0, NONCE_WINDOW - 1))
        .is_ok());
    assert_eq!(
        node.app.check_tx(&tx(0, addr(1), 1, 0, NONCE_WINDOW)).code,
        TxCode::BadNonce.as_u32()
    );
    let r = node.run(vec![
        tx(0, addr(1), 1, 0, 1),
        tx(0, addr(1), 1, 0, 0),
        tx(0, addr(1), 1, 0, 1),
    ]);
    assert_eq!(codes(&r), vec![4, 0, 0]);
}

#[test]
fn insufficient_funds_and_overflow_attempts_fail_cleanly() {
    let mut node = Node::new(2);
    let cases = vec![
        tx(0, addr(1), START, 1, 0),     // amount + fee > balance
        tx(0, addr(1), START + 1, 0, 0), // amount > balance
        tx(0, addr(1), u128::MAX, 1, 0), // amount + fee overflows
        tx(0, addr(1), 1, u128::MAX, 0), // fee alone is absurd
        tx(0, addr(1), u128::MAX, u128::MAX, 0),
    ];
    for t in &cases {
        assert_eq!(
            node.app.check_tx(t).code,
            TxCode::InsufficientFunds.as_u32()
        );
    }
    let before = node.hash();
    let r = node.run(cases);
    assert!(
        codes(&r)
            .iter()
            .all(|c| *c == TxCode::InsufficientFunds.as_u32()),
        "{:?}",
        codes(&r)
    );
    assert_eq!(r.app_hash, before);
    // Exactly the balance works.
    let r = node.run(vec![tx(0, addr(1), START - 1, 1, 0)]);
    assert_eq!(codes(&r), vec![0]);
    assert_eq!(node.account(&addr(1)).balance, 2 * START - 1);
    assert_eq!(node.account(&addr(0)).balance, 0);
}

#[test]
fn supply_near_u128_max_moves_without_overflow() {
    let half = u128::MAX / 2;
    let genesis = serde_json::json!({"accounts": [
        {"address": addr(0).to_hex_upper(), "balance": half.to_string()},
        {"address": addr(1).to_hex_upper(), "balance": (u128::MAX - half).to_string()},
    ]});
    let mut node = Node::with_genesis(genesis);
    let r = node.run(vec![tx(0, addr(1), half - 5, 5, 0)]);
    assert_eq!(codes(&r), vec![0]);
    assert_eq!(node.account(&addr(1)).balance, u128::MAX - 5);
    assert_eq!(node.account(&proposer()).balance, 5);
}

#[test]
fn genesis_is_validated() {
    let bad = |v: serde_json::Value| BankGenesis::from_json(&v).unwrap_err();
    let a = addr(0).to_hex_upper();
    assert!(matches!(
        bad(
            serde_json::json!({"accounts": [{"address": a, "balance": u128::MAX.to_string()}, {"address": addr(1).to_hex_upper(), "balance": "1"}]})
        ),
        GenesisError::SupplyOverflow
    ));
    assert!(matches!(
        bad(
            serde_json::json!({"accounts": [{"address": a, "balance": "1"}, {"address": a.to_lowercase(), "balance": "2"}]})
        ),
        GenesisError::Duplicate { index: 1, .. }
    ));
    assert!(matches!(
        bad(serde_json::json!({"accounts": [{"address": "xyz", "balance": "1"}]})),
        GenesisError::BadAddress { .. }
    ));
    for balance in [
        "-1",
        "1.5",
        "",
        " 1",
        "340282366920938463463374607431768211456",
    ] {
        assert!(matches!(
            bad(serde_json::json!({"accounts": [{"address": a, "balance": balance}]})),
            GenesisError::BadBalance { .. }
        ));
    }
    assert!(matches!(
        bad(serde_json::json!({"acounts": []})),
        GenesisError::Json { .. }
    ));
    let g = BankGenesis::from_json(&genesis_json(3, 5)).unwrap();
    assert_eq!((g.accounts.len(), g.total_supply), (3, 15));
}

#[test]
fn queries_return_values_with_proofs_that_verify_against_the_app_hash() {
    let mut node = Node::new(3);
    // Query height 0 means "latest" (CometBFT), so an old height to query must be >= 1: block 1 is empty.
    node.run(vec![]);
    node.run(vec![tx(0, addr(1), 100, 2, 0)]);
    let root = node.hash();
    let height = node.app.info().unwrap().last_height.unwrap();

    let path = format!("/bank/account/{}", addr(1).to_hex_upper());
    let q = node.app.query(&path, &[], 0, true);
    assert_eq!((q.code, q.height), (0, height));
    assert_eq!(q.key, account_key(&addr(1)));
    assert_eq!(
        Account::from_bytes(&q.value).unwrap(),
        Account {
            balance: START + 100,
            nonce: 0
        }
    );
    let proof = q.proof.unwrap();
    assert!(verify_membership(&proof, &root.0, &q.key, &q.value));
    // Directly with the ics23 crate and the published spec.
    assert!(ics23::verify_membership::<ics23::HostFunctionsManager>(
        &proof,
        &basalt_state::proof_spec(),
        &root.0.to_vec(),
        &q.key,
        &q.value
    ));
    // A different value, or another root, does not verify.
    let mut wrong = q.value.clone();
    wrong[0] ^= 1;
    assert!(!verify_membership(&proof, &root.0, &q.key, &wrong));
    let genesis_root = Hash(node.app.store().root(0).unwrap());
    assert!(!verify_membership(
        &proof,
        &genesis_root.0,
        &q.key,
        &q.value
    ));

    // Balance as decimal; the proof is of the account record it was read from.
    let q = node.app.query(
        &format!("/bank/balance/{}", addr(0).to_hex_lower()),
        &[],
        0,
        true,
    );
    assert_eq!(q.value, (START - 102).to_string().into_bytes());
    let proof = q.proof.unwrap();
    let Some(ics23::commitment_proof::Proof::Exist(exist)) = &proof.proof else {
        panic!("not an existence proof")
    };
    assert!(verify_membership(&proof, &root.0, &q.key, &exist.value));
    assert_eq!(
        Account::from_bytes(&exist.value).unwrap().balance,
        START - 102
    );

    // Data instead of a path suffix; an old height.
    let q = node.app.query("/bank/account", &addr(1).0, 0, false);
    assert_eq!(Account::from_bytes(&q.value).unwrap().balance, START + 100);
    assert!(q.proof.is_none());
    let q = node.app.query(&path, &[], height - 1, true);
    assert_eq!(q.height, height - 1);
    assert_eq!(Account::from_bytes(&q.value).unwrap().balance, START);
    let old_root = node.app.store().root(height - 1).unwrap();
    assert!(verify_membership(
        &q.proof.unwrap(),
        &old_root,
        &q.key,
        &q.value
    ));

    // Absent account: empty value, "0" balance, non-existence proof.
    let nobody = Address([0x42; 20]);
    let q = node.app.query(
        &format!("/bank/account/{}", nobody.to_hex_upper()),
        &[],
        0,
        true,
    );
    assert_eq!(q.code, 0);
    assert!(q.value.is_empty());
    assert!(verify_non_membership(
        &q.proof.unwrap(),
        &root.0,
        &account_key(&nobody)
    ));
    let q = node.app.query(
        &format!("/bank/balance/{}", nobody.to_hex_upper()),
        &[],
        0,
        false,
    );
    assert_eq!(q.value, b"0");

    // Errors.
    assert_eq!(node.app.query("/bank/nope/00", &[], 0, false).code, 1);
    assert_eq!(node.app.query("/bank/account/zz", &[], 0, false).code, 2);
    assert_eq!(
        node.app.query("/bank/account", &[1, 2, 3], 0, false).code,
        2
    );
    assert_eq!(node.app.query(&path, &[], height + 5, false).code, 3);
}

/// What a light client does with an answer: derive the key from the path itself and check the proof
/// against a trusted app hash — accepting every honest answer and refusing each kind of lie.
#[test]
fn answers_are_verified_against_the_app_hash_by_the_key_the_path_names() {
    let mut node = Node::new(3);
    node.run(vec![]);
    node.run(vec![tx(0, addr(1), 100, 2, 0)]);
    let root = node.hash();
    let nobody = Address([0x42; 20]);
    let queries = [
        (format!("/bank/account/{}", addr(1).to_hex_upper()), vec![]),
        (format!("/bank/balance/{}", addr(0).to_hex_lower()), vec![]),
        ("/bank/account".to_owned(), nobody.0.to_vec()),
        (format!("/bank/balance/{}", nobody.to_hex_upper()), vec![]),
        (
            "/store/ibc/key".to_owned(),
            b"clients/99-basalt-0/clientState".to_vec(),
        ),
    ];
    for (path, data) in &queries {
        let q = node.app.query(path, data, 0, true);
        assert_eq!(q.code, 0, "{path}");
        let target = QueryTarget::of(path, data).unwrap();
        assert_eq!(target.key(), q.key.as_slice(), "{path}");
        let proof = q.proof.unwrap();
        verify_answer(&target, &q.value, &proof, &root).unwrap();
        // Another root, or another value for the same proof.
        let other_root = Hash::digest(b"another root");
        assert!(
            verify_answer(&target, &q.value, &proof, &other_root).is_err(),
            "{path}"
        );
        let lies: Vec<Vec<u8>> = match &target {
            QueryTarget::Balance { .. } => vec![b"999999999".to_vec(), b"".to_vec()],
            _ if q.value.is_empty() => vec![vec![0]],
            _ => vec![vec![], {
                let mut v = q.value.clone();
                v[0] ^= 1;
                v
            }],
        };
        for lie in lies {
            assert!(
                verify_answer(&target, &lie, &proof, &root).is_err(),
                "{path} {lie:?}"
            );
        }
    }
    // A proof of another key (account 1's record answered for account 0).
    let q1 = node.app.query(
        &format!("/bank/account/{}", addr(1).to_hex_upper()),
        &[],
        0,
        true,
    );
    let target0 =
        QueryTarget::of(&format!("/bank/account/{}", addr(0).to_hex_upper()), &[]).unwrap();
    assert!(verify_answer(&target0, &q1.value, &q1.proof.unwrap(), &root).is_err());
    // Paths that name no key.
    assert!(matches!(
        QueryTarget::of("/bank/nope", &[]),
        Err(QueryPathError::UnknownPath(_))
    ));
    assert_eq!(
        QueryTarget::of("/bank/account/zz", &[]),
        Err(QueryPathError::BadAddress)
    );
    assert_eq!(
        QueryTarget::of("/store/ibc/key", &[]),
        Err(QueryPathError::BadKey { len: 0 })
    );
}

trait HexLower {
    fn to_hex_lower(&self) -> String;
}
impl HexLower for Address {
    fn to_hex_lower(&self) -> String {
        self.to_hex_upper().to_lowercase()
    }
}

#[test]
fn example_transaction_bytes_are_stable() {
    // The example in docs/TRANSACTIONS.md.
    let key = PrivateKey::from_seed(&[1u8; 32]);
    let body = TransferBody {
        chain_id: ChainId::new("basalt-1").unwrap(),
        from: key.public_key(),
        to: Address([0x22; 20]),
        amount: 1000,
        fee: 10,
        nonce: 0,
        gas_limit: 1000,
    };
    let sign_bytes = body.sign_bytes();
    let signed = body.clone().sign(&key);
    let bytes = signed.to_tx_bytes();
    println!(
        "sender address: {}",
        key.public_key().address().to_hex_upper()
    );
    println!(
        "public key:     {}",
        hex::encode(key.public_key().to_bytes())
    );
    println!("sign bytes:     {}", hex::encode(&sign_bytes));
    println!("tx bytes:       {}", hex::encode(&bytes));
    assert_eq!(bytes.len(), 1 + 4 + 8 + 32 + 20 + 16 + 16 + 8 + 8 + 64);
    assert_eq!(
        key.public_key().address().to_hex_upper(),
        "D8CA521A7ED9263464A2D969599AC3301403A61D"
    );
    assert_eq!(hex::encode(&bytes), EXAMPLE_TX_HEX);
    assert_eq!(BankTx::decode(&bytes).unwrap(), BankTx::Transfer(signed));
}

const EXAMPLE_TX_HEX: &str = "0008000000626173616c742d318a88e3dd7409f195fd52db2d3cba5d72ca6709bf1d94121bf3748801b40f6f5c2222222222222222222222222222222222222222e80300000000000000000000000000000a0000000000000000000000000000000000000000000000e803000000000000701b3b9ba770c89d9ab1040705b6336c001609aa12f31db725c0dadb8bfc42f60624db660f4e6cadd2aa051aba6d5d11809e148ba2151c42c5e2bf7b1782510c";

#[test]
fn decoding_is_strict() {
    let bytes = tx(0, addr(1), 5, 0, 0).as_bytes().to_vec();
    let mut trailing = bytes.clone();
    trailing.push(0);
    assert!(BankTx::decode(&trailing).is_err());
    assert!(BankTx::decode(&bytes[..bytes.len() - 1]).is_err());
    let mut kind = bytes.clone();
    kind[0] = 1;
    assert!(BankTx::decode(&kind).is_err());
    assert!(BankTx::decode(&vec![0u8; 10_000]).is_err());
    // Zero amount is invalid.
    let zero = SignedTransfer::new(
        body(0, addr(1), 0, 0, 0),
        *body(0, addr(1), 1, 0, 0).sign(&key(0)).signature(),
    );
    assert!(zero.is_err());
}

#[test]
fn garbage_never_panics_check_tx() {
    use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
    let node = Node::new(2);
    let valid = tx(0, addr(1), 5, 1, 0).as_bytes().to_vec();
    let config = Config {
        cases: 1000,
        ..Config::default()
    };
    let rng = TestRng::from_seed(RngAlgorithm::ChaCha, &[7u8; 32]);
    let mut runner = TestRunner::new_with_rng(config, rng);
    let strategy = (
        proptest::collection::vec(any::<u8>(), 1..400),
        proptest::collection::vec((0usize..512, 1u8..=255), 0..4),
    );
    runner
        .run(&strategy, |(bytes, flips)| {
            let t = Tx::new(bytes).unwrap();
            prop_assert_ne!(node.app.check_tx(&t).code, 0);
            // Mutations of a valid transaction: accepted only if unchanged.
            let mut mutated = valid.clone();
            for (i, x) in flips {
                let i = i % mutated.len();
                mutated[i] ^= x;
            }
            let r = node.app.check_tx(&Tx::new(mutated.clone()).unwrap());
            prop_assert_eq!(r.code == 0, mutated == valid);
            Ok(())
        })
        .unwrap();
}

#[test]
fn ten_thousand_transfers_in_one_block() {
    const N: u32 = 10_000;
    let mut node = Node::new(N);
    let txs: Vec<Tx> = (0..N)
        .map(|i| tx(i, addr((i * 7 + 1) % N), 10, 1, 0))
        .collect();
    let started = std::time::Instant::now();
    let r = node.run(txs);
    eprintln!(
        "10k transfers: finalize + commit in {:?}",
        started.elapsed()
    );
    assert_eq!(r.tx_results.len(), N as usize);
    assert!(r.tx_results.iter().all(|t| t.code == 0));
    // Every account sent 10 + 1 and received 10.
    assert_eq!(
        node.account(&addr(5)),
        Account {
            balance: START - 1,
            nonce: 1
        }
    );
    assert_eq!(node.account(&proposer()).balance, N as u128);
}
