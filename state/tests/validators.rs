//! Validator-set changes by transaction (`basalt_state::app::validators`): only the authority, the
//! consensus rules of a change set, at most a third of the power moved per block, one update per key
//! returned with the block, and the wire format.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use basalt_consensus::types::{Address, ChainId, PrivateKey, PublicKey, Tx, ValidatorSet};
use basalt_state::app::testkit::ChainBuilder;
use basalt_state::app::validators::tx::{
    SignedValidatorTx, ValidatorTxBody, ValidatorTxError, MAX_CHANGES,
};
use basalt_state::app::validators::{decode_updates, gas, ValidatorModule, VALIDATOR_SET_KEY};
use basalt_state::app::{
    results_hash, Application, BankApp, BankAppConfig, FinalizeResult, ProposalVerdict, CODE_OK,
};
use basalt_state::bank::TxCode;
use basalt_state::{StateStore, StoreConfig};

const PROPOSER: Address = Address([9; 20]);

fn chain() -> ChainId {
    ChainId::new("basalt-validators-test").unwrap()
}

fn key(seed: u8) -> PrivateKey {
    PrivateKey::from_seed(&[seed; 32])
}

fn validator(seed: u8) -> PublicKey {
    key(100 + seed).public_key()
}

/// The authority is account key 1; key 2 is another funded account.
const AUTHORITY: u8 = 1;
const OTHER: u8 = 2;

fn genesis_set() -> ValidatorSet {
    ValidatorSet::new((1..=4).map(|i| (validator(i), 10)).collect()).unwrap()
}

struct Fixture {
    _dir: tempfile::TempDir,
    app: BankApp,
    chain: ChainBuilder,
    module: Arc<ValidatorModule>,
    nonces: [u64; 3],
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(StateStore::open(dir.path(), StoreConfig::default()).unwrap());
    let module = Arc::new(ValidatorModule::new(
        key(AUTHORITY).public_key().address(),
        &genesis_set(),
    ));
    let mut app =
        BankApp::new(store, BankAppConfig { chain_id: chain() }).with_module(module.clone());
    let accounts: Vec<_> = [AUTHORITY, OTHER]
        .iter()
        .map(|i| serde_json::json!({"address": key(*i).public_key().address().to_hex_upper(), "balance": "1000000"}))
        .collect();
    app.init_chain(1, &serde_json::json!({ "accounts": accounts }))
        .unwrap();
    Fixture {
        _dir: dir,
        app,
        chain: ChainBuilder::new(chain(), 1, PROPOSER),
        module,
        nonces: [0; 3],
    }
}

impl Fixture {
    fn tx(&mut self, signer: u8, changes: &[(u8, u64)]) -> Tx {
        let nonce = self.nonces[signer as usize];
        self.nonces[signer as usize] += 1;
        let body = ValidatorTxBody {
            chain_id: chain(),
            from: key(signer).public_key(),
            nonce,
            fee: 10,
            gas_limit: 1_000_000,
            changes: changes.iter().map(|(s, p)| (validator(*s), *p)).collect(),
        };
        Tx::new(body.sign(&key(signer)).to_bytes()).unwrap()
    }

    fn block(&mut self, txs: Vec<Tx>) -> FinalizeResult {
        let block = self
            .chain
            .block(self.app.info().unwrap().last_app_hash, txs)
            .unwrap();
        assert_eq!(self.app.process_proposal(&block), ProposalVerdict::Accept);
        let r = self.app.finalize_block(&block).unwrap();
        self.app.commit(ChainBuilder::commit_bytes(&block)).unwrap();
        self.chain
            .set_last_results_hash(results_hash(&r.tx_results));
        r
    }

    fn view(&self) -> ValidatorSet {
        let store = self.app.store();
        let version = store.latest_version().unwrap().unwrap();
        struct At<'a>(&'a StateStore, u64);
        impl basalt_state::app::StateView for At<'_> {
            fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, basalt_state::StateError> {
                self.0.get(key, self.1)
            }
        }
        self.module.view(&At(store, version)).unwrap()
    }
}

fn powers(set: &ValidatorSet) -> Vec<(Address, u64)> {
    let mut v: Vec<_> = set
        .validators()
        .iter()
        .map(|v| (v.address, v.voting_power))
        .collect();
    v.sort();
    v
}

#[test]
fn the_authority_adds_and_removes_validators_and_the_block_returns_the_updates() {
    let mut f = fixture();
    assert_eq!(powers(&f.view()), powers(&genesis_set()), "genesis view");
    // Add a fifth validator (10 of 40 moved: a quarter).
    let add = f.tx(AUTHORITY, &[(5, 10)]);
    let r = f.block(vec![add]);
    assert_eq!(r.tx_results[0].code, CODE_OK, "{}", r.tx_results[0].log);
    assert_eq!(r.validator_updates.len(), 1);
    assert_eq!(r.validator_updates[0].public_key, validator(5));
    assert_eq!(r.validator_updates[0].power, 10);
    assert!(r.tx_results[0]
        .events
        .iter()
        .any(|e| e.kind == "validator_update"));
    assert_eq!(f.view().len(), 5);
    assert!(f.app.store().get(VALIDATOR_SET_KEY, 1).unwrap().is_some());
    // Kept with the block, for the chain to rebuild its sets from.
    let stored = f.app.store().validator_updates(0, 10).unwrap();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].0, 1);
    assert_eq!(decode_updates(&stored[0].1).unwrap(), r.validator_updates);
    // Remove one and change another's power in one transaction (10 + 5 of 50 moved).
    let change = f.tx(AUTHORITY, &[(1, 0), (2, 15)]);
    let r = f.block(vec![change]);
    assert_eq!(r.tx_results[0].code, CODE_OK, "{}", r.tx_results[0].log);
    assert_eq!(r.validator_updates.len(), 2);
    let view = f.view();
    assert_eq!(view.len(), 4);
    assert!(view.index_of(&validator(1).address()).is_none());
    assert_eq!(view.total_power(), 45);
    // A block without validator transactions returns no updates.
    assert!(f.block(vec![]).validator_updates.is_empty());
}

#[test]
fn only_the_authority_may_change_validators_and_the_mempool_refuses_others() {
    let mut f = fixture();
    let forged = f.tx(OTHER, &[(5, 10)]);
    let check = f.app.check_tx(&forged);
    assert_eq!(check.code, TxCode::Decode.as_u32(), "{}", check.log);
    assert!(
        check.log.contains("not the validator authority"),
        "{}",
        check.log
    );
    // Nor does an honest node vote for a block carrying it.
    let block = f
        .chain
        .block(f.app.info().unwrap().last_app_hash, vec![forged])
        .unwrap();
    match f.app.process_proposal(&block) {
        ProposalVerdict::Reject { reason } => {
            assert!(reason.contains("not the validator authority"), "{reason}")
        }
        ProposalVerdict::Accept => {
            panic!("a block with a non-authority validator change was accepted")
        }
    }
    assert_eq!(powers(&f.view()), powers(&genesis_set()));
    let honest = f.tx(AUTHORITY, &[(5, 10)]);
    assert_eq!(f.app.check_tx(&honest).code, CODE_OK);
}

#[test]
fn a_block_moves_at_most_a_third_of_the_power() {
    let mut f = fixture();
    // 40 total: 10 + 3 = 13 moved is within a third (13 × 3 = 39 ≤ 40); one more is not.
    let first = f.tx(AUTHORITY, &[(5, 10)]);
    let second = f.tx(AUTHORITY, &[(6, 3)]);
    let third = f.tx(AUTHORITY, &[(7, 1)]);
    let r = f.block(vec![first, second, third]);
    assert_eq!(r.tx_results[0].code, CODE_OK, "{}", r.tx_results[0].log);
    assert_eq!(r.tx_results[1].code, CODE_OK, "{}", r.tx_results[1].log);
    assert_eq!(r.tx_results[2].code, TxCode::MessageFailed.as_u32());
    assert!(
        r.tx_results[2].log.contains("more than a third"),
        "{}",
        r.tx_results[2].log
    );
    assert_eq!(r.validator_updates.len(), 2);
    // The next block has a fresh budget, a third of the new total (53).
    let next = f.tx(AUTHORITY, &[(7, 17)]);
    let r = f.block(vec![next]);
    assert_eq!(r.tx_results[0].code, CODE_OK, "{}", r.tx_results[0].log);
    let too_much = f.tx(AUTHORITY, &[(1, 0), (2, 0), (3, 0)]);
    let r = f.block(vec![too_much]);
    assert_eq!(r.tx_results[0].code, TxCode::MessageFailed.as_u32());
    assert!(r.validator_updates.is_empty());
}

#[test]
fn change_sets_the_consensus_rules_refuse_fail_and_change_nothing() {
    let mut f = fixture();
    let absent = f.tx(AUTHORITY, &[(9, 0)]);
    let r = f.block(vec![absent]);
    assert_eq!(r.tx_results[0].code, TxCode::MessageFailed.as_u32());
    assert!(
        r.tx_results[0].log.contains("not in the set"),
        "{}",
        r.tx_results[0].log
    );
    assert!(r.validator_updates.is_empty());
    assert_eq!(powers(&f.view()), powers(&genesis_set()));
    // The fee was paid: the failing transaction still used its nonce.
    let next = f.tx(AUTHORITY, &[(5, 1)]);
    assert_eq!(f.block(vec![next]).tx_results[0].code, CODE_OK);
}

#[test]
fn two_changes_of_one_key_in_a_block_return_the_last() {
    let mut f = fixture();
    let up = f.tx(AUTHORITY, &[(5, 5)]);
    let again = f.tx(AUTHORITY, &[(5, 3)]);
    let r = f.block(vec![up, again]);
    assert_eq!(r.validator_updates.len(), 1);
    assert_eq!(r.validator_updates[0].power, 3);
    let view = f.view();
    let index = view.index_of(&validator(5).address()).unwrap();
    assert_eq!(view.get(index).unwrap().voting_power, 3);
}

#[test]
fn validator_transactions_decode_strictly() {
    let body = ValidatorTxBody {
        chain_id: chain(),
        from: key(AUTHORITY).public_key(),
        nonce: 0,
        fee: 1,
        gas_limit: gas(1),
        changes: vec![(validator(5), 10)],
    };
    let signed = body.clone().sign(&key(AUTHORITY));
    let bytes = signed.to_bytes();
    assert_eq!(SignedValidatorTx::decode(&bytes).unwrap(), signed);
    signed.verify().unwrap();
    // Trailing bytes, another kind, an empty or oversized change list, a key twice.
    let mut trailing = bytes.clone();
    trailing.push(0);
    assert!(matches!(
        SignedValidatorTx::decode(&trailing),
        Err(ValidatorTxError::Malformed { .. })
    ));
    let mut kind = bytes.clone();
    kind[0] = 0;
    assert!(matches!(
        SignedValidatorTx::decode(&kind),
        Err(ValidatorTxError::WrongKind(0))
    ));
    for changes in [
        vec![],
        (0..=MAX_CHANGES as u8).map(|i| (validator(i), 1)).collect(),
        vec![(validator(5), 1), (validator(5), 2)],
    ] {
        let bad = ValidatorTxBody {
            changes,
            ..body.clone()
        }
        .sign(&key(AUTHORITY));
        assert!(matches!(
            SignedValidatorTx::decode(&bad.to_bytes()),
            Err(ValidatorTxError::Invalid(_))
        ));
    }
    // A signature over another body does not verify.
    let mut tampered = bytes;
    let at = tampered.len() - 70;
    tampered[at] ^= 1;
    if let Ok(t) = SignedValidatorTx::decode(&tampered) {
        assert!(t.verify().is_err());
    }
}

/// The example in docs/TRANSACTIONS.md, built independently in Python.
#[test]
fn the_documented_validator_transaction_example_is_what_the_encoder_produces() {
    let key = PrivateKey::from_seed(&[1; 32]);
    let validator = PrivateKey::from_seed(&[2; 32]).public_key();
    assert_eq!(
        hex::encode(validator.to_bytes()),
        "8139770ea87d175f56a35466c34c7ecccb8d8a91b4ee37a25df60f5b8fc9b394"
    );
    let tx = ValidatorTxBody {
        chain_id: ChainId::new("basalt-1").unwrap(),
        from: key.public_key(),
        nonce: 0,
        fee: 10,
        gas_limit: 100_000,
        changes: vec![(validator, 10)],
    }
    .sign(&key);
    let expected = concat!(
        "0208000000626173616c742d318a88e3dd7409f195fd52db2d3cba5d72ca6709bf1d94121bf3748801b40f6f5c",
        "00000000000000000a000000000000000000000000000000a08601000000000001000000",
        "8139770ea87d175f56a35466c34c7ecccb8d8a91b4ee37a25df60f5b8fc9b3940a00000000000000",
        "9a9c7d573df0eb69ca66ff1ebdb6def2ea132b5c461c226fbf09fe688483874136e3626c07e661377175d772ac84",
        "11092f15e64dba8e1cc25cbbfac6d2c5f50c",
    );
    assert_eq!(hex::encode(tx.to_bytes()), expected);
    let decoded = SignedValidatorTx::decode(&hex::decode(expected).unwrap()).unwrap();
    decoded.verify().unwrap();
    assert_eq!(decoded, tx);
}

/// The block's updates are its net change: what one block adds and removes again is no update (the
/// chain's set never saw it, so a removal would not apply), and a removal undone in the same block is
/// a change of power.
#[test]
fn a_block_returns_its_net_change() {
    let mut f = fixture();
    let add = f.tx(AUTHORITY, &[(5, 3)]);
    let remove = f.tx(AUTHORITY, &[(5, 0)]);
    let r = f.block(vec![add, remove]);
    assert_eq!(r.tx_results[0].code, CODE_OK, "{}", r.tx_results[0].log);
    assert_eq!(r.tx_results[1].code, CODE_OK, "{}", r.tx_results[1].log);
    assert!(r.validator_updates.is_empty(), "{:?}", r.validator_updates);
    assert_eq!(powers(&f.view()), powers(&genesis_set()));
    assert!(f.app.store().validator_updates(0, 10).unwrap().is_empty());

    let remove = f.tx(AUTHORITY, &[(1, 0)]);
    let back = f.tx(AUTHORITY, &[(1, 3)]);
    let r = f.block(vec![remove, back]);
    assert_eq!(r.tx_results[1].code, CODE_OK, "{}", r.tx_results[1].log);
    assert_eq!(r.validator_updates.len(), 1);
    assert_eq!(r.validator_updates[0].public_key, validator(1));
    assert_eq!(r.validator_updates[0].power, 3);
    // Applied to the chain's set, the net change always applies.
    let next = genesis_set()
        .next_height_with(&r.validator_updates)
        .unwrap();
    assert_eq!(powers(&next), powers(&f.view()));
}
