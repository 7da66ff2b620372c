//! IBC transactions executed by the application: `BankApp` with `IbcModule`, a real state store, blocks
//! committed one after another. A client is created and updated by signed IBC transactions, its state is
//! provable with `/store/ibc/key`, and a failing or foreign-signed transaction pays its fee and leaves
//! nothing else.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::Duration;

use basalt_consensus::light::fixture::{light_block, seed_of, set};
use basalt_consensus::light::{LightBlock, TrustLevel};
use basalt_consensus::types::{Address, ChainId, Hash, PrivateKey, Tx, ValidatorSet};
use basalt_consensus::Height;
use basalt_ibc::client::{ClientHeader, ClientState, ConsensusState};
use basalt_ibc::commitment::path_key;
use basalt_ibc::module::{ante_gas, IbcModule};
use basalt_ibc::tx::{IbcMessage, IbcTxBody};
use basalt_state::app::testkit::ChainBuilder;
use basalt_state::app::{
    results_hash, Application, BankApp, BankAppConfig, ProposalVerdict, TxResult, CODE_OK,
};
use basalt_state::bank::{Account, TxCode};
use basalt_state::{StateStore, StoreConfig};
use ibc_core::client::types::msgs::{MsgCreateClient, MsgUpdateClient};
use ibc_core::host::types::identifiers::ClientId;
use ibc_core::host::types::path::{ClientConsensusStatePath, ClientStatePath, Path};
use ibc_core::primitives::proto::Any;
use ibc_core::primitives::{Signer, ToProto};
use prost::Message;

const GENESIS_MS: u64 = 1_700_000_000_000;
const BALANCE: u128 = 1_000_000;
const FEE: u128 = 50;
const GAS: u64 = 5_000_000;
const PROPOSER: Address = Address([9; 20]);

fn here() -> ChainId {
    ChainId::new("basalt-a").unwrap()
}

fn counterparty() -> ChainId {
    ChainId::new("basalt-b").unwrap()
}

fn relayer() -> PrivateKey {
    PrivateKey::from_seed(&[200; 32])
}

fn stranger() -> PrivateKey {
    PrivateKey::from_seed(&[201; 32])
}

fn vals() -> ValidatorSet {
    set(&[(1, 10), (2, 10), (3, 10)])
}

fn counterparty_block(height: u64) -> LightBlock {
    let vals = vals();
    let signers: Vec<u8> = (0..vals.len()).map(|i| seed_of(&vals, i)).collect();
    light_block(
        &counterparty(),
        height,
        GENESIS_MS - 60_000 + height * 1_000,
        &vals,
        &vals,
        Hash::digest(&height.to_be_bytes()),
        &signers,
    )
}

fn client_id() -> ClientId {
    basalt_ibc::client::ics02::client_type().build_client_id(0)
}

fn create_client(signer: &Address) -> Any {
    let client = ClientState::new(
        counterparty(),
        Height(10),
        TrustLevel::ONE_THIRD,
        24 * 3_600_000,
        10_000,
    )
    .unwrap();
    MsgCreateClient {
        client_state: client.to_any(),
        consensus_state: ConsensusState::of(&counterparty_block(10).header).to_any(),
        signer: Signer::from(signer.to_string()),
    }
    .to_any()
}

fn update_client(signer: &Address, trusted: u64, height: u64, tamper: bool) -> Any {
    let mut block = counterparty_block(height);
    if tamper {
        // Signatures over another app hash: the commit no longer signs this header.
        block.header.app_hash = Hash::digest(b"forged");
    }
    MsgUpdateClient {
        client_id: client_id(),
        client_message: ClientHeader {
            block,
            trusted_height: Height(trusted),
            trusted_next_validators: vals(),
        }
        .to_any(),
        signer: Signer::from(signer.to_string()),
    }
    .to_any()
}

fn ibc_tx(key: &PrivateKey, nonce: u64, messages: Vec<Any>) -> Tx {
    let signed = IbcTxBody {
        chain_id: here(),
        from: key.public_key(),
        nonce,
        fee: FEE,
        gas_limit: GAS,
        messages: messages.into_iter().map(IbcMessage::from).collect(),
    }
    .sign(key);
    Tx::new(signed.to_bytes()).unwrap()
}

struct Chain {
    _dir: tempfile::TempDir,
    app: BankApp,
    blocks: ChainBuilder,
}

impl Chain {
    fn new() -> Chain {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(StateStore::open(dir.path(), StoreConfig::default()).unwrap());
        let mut app = BankApp::new(store, BankAppConfig { chain_id: here() })
            .with_module(Arc::new(IbcModule::new(Duration::from_secs(1))));
        let accounts: Vec<_> = [relayer(), stranger()]
            .iter()
            .map(|k| serde_json::json!({"address": k.public_key().address().to_hex_upper(), "balance": BALANCE.to_string()}))
            .collect();
        app.init_chain(1, &serde_json::json!({ "accounts": accounts }))
            .unwrap();
        Chain {
            _dir: dir,
            app,
            blocks: ChainBuilder::new(here(), 1, PROPOSER),
        }
    }

    fn block(&mut self, txs: Vec<Tx>) -> Vec<TxResult> {
        for tx in &txs {
            let checked = self.app.check_tx(tx);
            assert!(checked.is_ok(), "{checked:?}");
        }
        let block = self
            .blocks
            .block(self.app.info().unwrap().last_app_hash, txs)
            .unwrap();
        assert_eq!(self.app.process_proposal(&block), ProposalVerdict::Accept);
        let r = self.app.finalize_block(&block).unwrap();
        self.app.commit(ChainBuilder::commit_bytes(&block)).unwrap();
        self.blocks
            .set_last_results_hash(results_hash(&r.tx_results));
        r.tx_results
    }

    fn latest(&self) -> u64 {
        self.app.info().unwrap().last_height.unwrap()
    }

    fn get(&self, path: Path) -> Option<Vec<u8>> {
        self.app
            .store()
            .get(&path_key(&path), self.latest())
            .unwrap()
    }

    fn account(&self, key: &PrivateKey) -> Account {
        self.app
            .account(&key.public_key().address(), self.latest())
            .unwrap()
    }
}

fn kinds(result: &TxResult) -> Vec<&str> {
    result.events.iter().map(|e| e.kind.as_str()).collect()
}

#[test]
fn a_client_is_created_and_updated_by_ibc_transactions_and_its_state_is_provable() {
    let mut chain = Chain::new();
    let me = relayer().public_key().address();
    let r = chain.block(vec![ibc_tx(&relayer(), 0, vec![create_client(&me)])]);
    assert_eq!(r[0].code, CODE_OK, "{}", r[0].log);
    assert_eq!(kinds(&r[0]), ["message", "create_client", "tx"]);
    assert!(r[0].gas_used > ante_gas(0) && r[0].gas_used <= GAS);
    let created = r[0].events[1]
        .attributes
        .iter()
        .find(|a| a.key == "client_id")
        .unwrap();
    assert_eq!(created.value, client_id().to_string());

    let r = chain.block(vec![ibc_tx(
        &relayer(),
        1,
        vec![update_client(&me, 10, 14, false)],
    )]);
    assert_eq!(r[0].code, CODE_OK, "{}", r[0].log);
    assert_eq!(kinds(&r[0]), ["message", "update_client", "tx"]);
    let stored = chain
        .get(ClientConsensusStatePath::new(client_id(), 0, 14).into())
        .expect("the consensus state of height 14");
    assert_eq!(
        Any::decode(stored.as_slice()).unwrap(),
        ConsensusState::of(&counterparty_block(14).header).to_any()
    );

    // What a counterparty's relayer asks: the client state with a proof against the app hash.
    let key = format!("{}", Path::from(ClientStatePath::new(client_id())));
    let answer = chain.app.query("/store/ibc/key", key.as_bytes(), 0, true);
    assert_eq!(answer.code, CODE_OK, "{}", answer.log);
    let proof = answer.proof.expect("a proof");
    let root = chain.app.info().unwrap().last_app_hash;
    assert!(basalt_state::verify_membership(
        &proof,
        &root.0,
        &answer.key,
        &answer.value
    ));

    // Fees went to the proposer; nonces moved.
    assert_eq!(
        chain.account(&relayer()),
        Account {
            balance: BALANCE - 2 * FEE,
            nonce: 2
        }
    );
}

#[test]
fn a_failing_or_foreign_signed_ibc_transaction_pays_its_fee_and_leaves_nothing_else() {
    let mut chain = Chain::new();
    let me = relayer().public_key().address();
    let r = chain.block(vec![ibc_tx(&relayer(), 0, vec![create_client(&me)])]);
    assert_eq!(r[0].code, CODE_OK, "{}", r[0].log);
    let client_before = chain.get(ClientStatePath::new(client_id()).into());

    let r = chain.block(vec![
        // A good update followed by a forged one in the same transaction: neither remains.
        ibc_tx(
            &relayer(),
            1,
            vec![
                update_client(&me, 10, 12, false),
                update_client(&me, 12, 13, true),
            ],
        ),
        // Messages naming another signer than the transaction's.
        ibc_tx(&stranger(), 0, vec![update_client(&me, 10, 12, false)]),
        // Not an IBC message at all.
        ibc_tx(
            &relayer(),
            2,
            vec![Any {
                type_url: "/cosmos.bank.v1beta1.MsgSend".to_owned(),
                value: vec![],
            }],
        ),
    ]);
    for result in &r {
        assert_eq!(result.code, TxCode::MessageFailed.as_u32(), "{result:?}");
        assert_eq!(kinds(result), ["tx"]);
    }
    assert!(r[0].log.contains("message 1"), "{}", r[0].log);
    assert!(r[1].log.contains("signer"), "{}", r[1].log);
    assert_eq!(
        chain.get(ClientStatePath::new(client_id()).into()),
        client_before
    );
    assert_eq!(
        chain.get(ClientConsensusStatePath::new(client_id(), 0, 12).into()),
        None
    );
    assert_eq!(
        chain.account(&relayer()),
        Account {
            balance: BALANCE - 3 * FEE,
            nonce: 3
        }
    );
    assert_eq!(chain.account(&stranger()).nonce, 1);
}

#[test]
fn an_ibc_transaction_whose_gas_limit_is_below_its_size_is_refused_before_it_pays() {
    let chain = Chain::new();
    let me = relayer().public_key().address();
    let signed = IbcTxBody {
        chain_id: here(),
        from: relayer().public_key(),
        nonce: 0,
        fee: FEE,
        gas_limit: ante_gas(10),
        messages: vec![IbcMessage::from(create_client(&me))],
    }
    .sign(&relayer());
    let checked = chain.app.check_tx(&Tx::new(signed.to_bytes()).unwrap());
    assert_eq!(checked.code, TxCode::OutOfGas.as_u32(), "{checked:?}");
}
