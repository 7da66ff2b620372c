//! Transaction kinds handled by other modules (`basalt_state::app::module`): the bank's ante rules, a
//! fee paid whatever the messages do, writes kept only on success within gas, a module never writing
//! accounts, and each transaction seeing the block's earlier writes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use basalt_consensus::types::{Address, ChainId, Hash, PrivateKey, Tx};
use basalt_state::app::testkit::{transfer_tx, ChainBuilder};
use basalt_state::app::{
    results_hash, Ante, Application, BankApp, BankAppConfig, BlockContext, Effects, Event,
    Executed, Move, ProposalVerdict, StateView, TxModule, TxResult, CODE_OK,
};
use basalt_state::bank::{account_key, Account, TxCode, TxFailure};
use basalt_state::{StateStore, StoreConfig};

const KIND: u8 = 7;
const PROPOSER: Address = Address([9; 20]);
const BASE_GAS: u64 = 100;
const COUNTER: &[u8] = b"toy/counter";

/// What a toy transaction asks its module to do.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Act {
    /// Count itself and record its nonce.
    Write,
    /// Write, then fail.
    Fail,
    /// Write more gas than any limit allows.
    Greedy,
    /// Write an account record (refused: only the bank writes those).
    TouchAccount,
    /// Move 100 native tokens from the signer to account 2, then 1 back.
    Move,
    /// Move more than the signer holds.
    Overdraw,
}

/// A toy transaction: `[KIND, signer, bad signature?, act, nonce u64, fee u64, gas_limit u64]`.
fn toy(signer: u8, nonce: u64, fee: u64, gas_limit: u64, act: Act, bad_signature: bool) -> Tx {
    let mut bytes = vec![KIND, signer, u8::from(bad_signature), act as u8];
    bytes.extend_from_slice(&nonce.to_le_bytes());
    bytes.extend_from_slice(&fee.to_le_bytes());
    bytes.extend_from_slice(&gas_limit.to_le_bytes());
    Tx::new(bytes).unwrap()
}

fn key(i: u8) -> PrivateKey {
    PrivateKey::from_seed(&[i + 1; 32])
}

fn addr(i: u8) -> Address {
    key(i).public_key().address()
}

fn chain() -> ChainId {
    ChainId::new("basalt-module-test").unwrap()
}

#[derive(Debug)]
struct Toy;

fn field(tx: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(tx[at..at + 8].try_into().unwrap())
}

impl TxModule for Toy {
    fn kind(&self) -> u8 {
        KIND
    }

    fn decode(&self, tx: &[u8]) -> Result<Ante, TxFailure> {
        if tx.len() != 28 || tx[3] > 5 {
            return Err(TxFailure::new(TxCode::Decode, "not a toy transaction"));
        }
        Ok(Ante {
            chain_id: chain(),
            signer: addr(tx[1]),
            nonce: field(tx, 4),
            fee: u128::from(field(tx, 12)),
            gas_limit: field(tx, 20),
            min_gas: BASE_GAS,
        })
    }

    fn verify(&self, tx: &[u8]) -> Result<(), TxFailure> {
        match tx[2] {
            0 => Ok(()),
            _ => Err(TxFailure::new(TxCode::BadSignature, "bad toy signature")),
        }
    }

    fn execute(&self, tx: &[u8], block: &BlockContext<'_>, state: &dyn StateView) -> Executed {
        let count = state
            .get(COUNTER)
            .unwrap()
            .map_or(0, |v| u64::from_be_bytes(v.try_into().unwrap()));
        let mut writes = vec![
            (COUNTER.to_vec(), Some((count + 1).to_be_bytes().to_vec())),
            (
                format!("toy/{}/{}", tx[1], field(tx, 4)).into_bytes(),
                Some(block.header.height.0.to_be_bytes().to_vec()),
            ),
        ];
        let event = Event::new("toy", &[("count", (count + 1).to_string())]);
        let signer = addr(tx[1]);
        let effects = |writes, moves| Effects {
            writes,
            moves,
            events: vec![event.clone()],
        };
        let (gas_used, outcome) = match tx[3] {
            0 => (BASE_GAS + 10, Ok(effects(writes, vec![]))),
            1 => (
                BASE_GAS + 5,
                Err(TxFailure::new(TxCode::MessageFailed, "the toy failed")),
            ),
            2 => (u64::MAX, Ok(effects(writes, vec![]))),
            3 => {
                writes.push((account_key(&addr(0)), Some(vec![0; 24])));
                (BASE_GAS, Ok(effects(writes, vec![])))
            }
            4 => {
                let moves = vec![
                    Move {
                        from: signer,
                        to: addr(2),
                        amount: 100,
                    },
                    Move {
                        from: addr(2),
                        to: signer,
                        amount: 1,
                    },
                ];
                (BASE_GAS, Ok(effects(writes, moves)))
            }
            _ => {
                let moves = vec![
                    Move {
                        from: signer,
                        to: addr(2),
                        amount: 1,
                    },
                    Move {
                        from: signer,
                        to: addr(2),
                        amount: BALANCE,
                    },
                ];
                (BASE_GAS, Ok(effects(writes, moves)))
            }
        };
        Executed { gas_used, outcome }
    }
}

struct Fixture {
    _dir: tempfile::TempDir,
    app: BankApp,
    chain: ChainBuilder,
}

const BALANCE: u128 = 1_000;

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(StateStore::open(dir.path(), StoreConfig::default()).unwrap());
    let mut app =
        BankApp::new(store, BankAppConfig { chain_id: chain() }).with_module(Arc::new(Toy));
    let accounts: Vec<_> = (0..3)
        .map(|i| serde_json::json!({"address": addr(i).to_hex_upper(), "balance": BALANCE.to_string()}))
        .collect();
    app.init_chain(1, &serde_json::json!({ "accounts": accounts }))
        .unwrap();
    Fixture {
        _dir: dir,
        app,
        chain: ChainBuilder::new(chain(), 1, PROPOSER),
    }
}

impl Fixture {
    fn block(&mut self, txs: Vec<Tx>) -> Vec<TxResult> {
        let block = self
            .chain
            .block(self.app.info().unwrap().last_app_hash, txs)
            .unwrap();
        assert_eq!(self.app.process_proposal(&block), ProposalVerdict::Accept);
        let r = self.app.finalize_block(&block).unwrap();
        self.app.commit(ChainBuilder::commit_bytes(&block)).unwrap();
        self.chain
            .set_last_results_hash(results_hash(&r.tx_results));
        r.tx_results
    }

    fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        let store = self.app.store();
        store
            .get(key, store.latest_version().unwrap().unwrap())
            .unwrap()
    }

    fn account(&self, who: Address) -> Account {
        self.app
            .account(&who, self.app.info().unwrap().last_height.unwrap())
            .unwrap()
    }

    fn count(&self) -> Option<u64> {
        self.get(COUNTER)
            .map(|v| u64::from_be_bytes(v.try_into().unwrap()))
    }
}

#[test]
fn a_module_transaction_pays_its_fee_and_its_writes_land() {
    let mut f = fixture();
    let r = f.block(vec![
        toy(0, 0, 7, 1_000, Act::Write, false),
        toy(0, 1, 3, 1_000, Act::Write, false),
    ]);
    assert!(r.iter().all(|r| r.code == CODE_OK), "{r:?}");
    assert_eq!(r[0].gas_used, BASE_GAS + 10);
    assert_eq!(r[0].gas_wanted, 1_000);
    // The second transaction saw the first one's write in the same block.
    assert_eq!(f.count(), Some(2));
    assert_eq!(r[1].events[0].attributes[0].value, "2");
    assert_eq!(r[1].events.last().unwrap().kind, "tx");
    assert_eq!(f.get(b"toy/0/1"), Some(1u64.to_be_bytes().to_vec()));
    assert_eq!(
        f.account(addr(0)),
        Account {
            balance: BALANCE - 10,
            nonce: 2
        }
    );
    assert_eq!(f.account(PROPOSER).balance, 10);
}

#[test]
fn a_failing_or_greedy_or_account_writing_module_transaction_keeps_only_its_fee() {
    for (act, code) in [
        (Act::Fail, TxCode::MessageFailed),
        (Act::Greedy, TxCode::OutOfGas),
        (Act::TouchAccount, TxCode::MessageFailed),
        (Act::Overdraw, TxCode::MessageFailed),
    ] {
        let mut f = fixture();
        let r = f.block(vec![toy(1, 0, 5, 1_000, act, false)]);
        assert_eq!(r[0].code, code.as_u32(), "{:?}", r[0]);
        assert!(r[0].gas_used <= r[0].gas_wanted);
        // The fee event says who paid; nothing of the module's remains.
        assert_eq!(r[0].events.len(), 1);
        assert_eq!(r[0].events[0].kind, "tx");
        assert_eq!(f.count(), None);
        assert_eq!(f.get(b"toy/1/0"), None);
        assert_eq!(
            f.account(addr(1)),
            Account {
                balance: BALANCE - 5,
                nonce: 1
            }
        );
        assert_eq!(f.account(addr(0)).balance, BALANCE, "account untouched");
        assert_eq!(f.account(addr(2)).balance, BALANCE, "nothing moved");
        assert_eq!(f.account(PROPOSER).balance, 5);
    }
}

#[test]
fn a_module_transaction_failing_the_ante_rules_changes_nothing() {
    let mut f = fixture();
    let before = f.app.info().unwrap().last_app_hash;
    let r = f.block(vec![
        toy(0, 0, 5, 1_000, Act::Write, true),         // bad signature
        toy(0, 3, 5, 1_000, Act::Write, false),        // nonce ahead
        toy(0, 0, 5_000, 1_000, Act::Write, false),    // fee above the balance
        toy(0, 0, 5, BASE_GAS - 1, Act::Write, false), // gas limit below the minimum
    ]);
    let codes: Vec<u32> = r.iter().map(|r| r.code).collect();
    assert_eq!(
        codes,
        [
            TxCode::BadSignature,
            TxCode::BadNonce,
            TxCode::InsufficientFunds,
            TxCode::OutOfGas
        ]
        .map(TxCode::as_u32)
    );
    assert!(r.iter().all(|r| r.events.is_empty()));
    assert_eq!(f.app.info().unwrap().last_app_hash, before);
    assert_eq!(
        f.account(addr(0)),
        Account {
            balance: BALANCE,
            nonce: 0
        }
    );
}

#[test]
fn the_mempool_and_proposals_judge_module_transactions_by_the_ante_rules() {
    let mut f = fixture();
    let good = toy(2, 1, 9, 1_000, Act::Fail, false);
    let checked = f.app.check_tx(&good);
    assert!(checked.is_ok(), "{checked:?}");
    assert_eq!(
        (
            checked.sender,
            checked.nonce,
            checked.priority,
            checked.gas_wanted
        ),
        (Some(addr(2)), 1, 9, 1_000)
    );
    let bad = f.app.check_tx(&toy(2, 0, 9, 1_000, Act::Write, true));
    assert_eq!(bad.code, TxCode::BadSignature.as_u32());
    let unknown = f.app.check_tx(&Tx::new(vec![42, 1, 2, 3]).unwrap());
    assert_eq!(unknown.code, TxCode::Decode.as_u32());
    assert!(
        unknown.log.contains("unknown transaction kind 42"),
        "{}",
        unknown.log
    );

    // A proposal keeps module transactions in nonce order with transfers, drops what cannot pay.
    let transfer = transfer_tx(&key(2), &chain(), addr(0), 10, 1, 0).unwrap();
    let too_dear = toy(1, 0, 5_000, 1_000, Act::Write, false);
    let chosen = f
        .app
        .prepare_proposal(vec![transfer.clone(), good.clone(), too_dear], 1 << 20);
    assert_eq!(chosen, vec![transfer, good]);

    // A block with an unknown kind is refused.
    let block = f
        .chain
        .clone()
        .block(
            f.app.info().unwrap().last_app_hash,
            vec![Tx::new(vec![42]).unwrap()],
        )
        .unwrap();
    assert!(matches!(
        f.app.process_proposal(&block),
        ProposalVerdict::Reject { .. }
    ));
    // Failing messages still paid: the block's results say so and the app hash moved.
    let before: Hash = f.app.info().unwrap().last_app_hash;
    let r = f.block(chosen);
    assert_eq!(r[1].code, TxCode::MessageFailed.as_u32());
    assert_ne!(f.app.info().unwrap().last_app_hash, before);
}

#[test]
fn a_module_moves_native_tokens_through_the_bank() {
    let mut f = fixture();
    let r = f.block(vec![toy(0, 0, 5, 1_000, Act::Move, false)]);
    assert_eq!(r[0].code, CODE_OK, "{:?}", r[0]);
    assert_eq!(
        f.account(addr(0)),
        Account {
            balance: BALANCE - 5 - 99,
            nonce: 1
        }
    );
    assert_eq!(f.account(addr(2)).balance, BALANCE + 99);
}
