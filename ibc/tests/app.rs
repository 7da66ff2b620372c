//! IBC transactions executed by the application: `BankApp` with `IbcModule`, a real state store, blocks
//! committed one after another. A client is created and updated by signed IBC transactions, its state is
//! provable with `/store/ibc/key`, and a failing or foreign-signed transaction pays its fee and leaves
//! nothing else.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use basalt_consensus::types::{Hash, Tx};
use basalt_ibc::client::ConsensusState;
use basalt_ibc::module::ante_gas;
use basalt_ibc::tx::{IbcMessage, IbcTxBody};
use basalt_state::app::{Application, TxResult, CODE_OK};
use basalt_state::bank::{Account, TxCode};
use common::{
    first_client, ibc_tx, relayer, stranger, update_client_msg, Chain, BALANCE, FEE, GAS,
};
use ibc_core::host::types::path::{ClientConsensusStatePath, ClientStatePath, Path};
use ibc_core::primitives::proto::Any;
use prost::Message;

fn kinds(result: &TxResult) -> Vec<&str> {
    result.events.iter().map(|e| e.kind.as_str()).collect()
}

/// Chain `basalt-a` executing, and the counterparty `basalt-b` to follow, both 14 blocks high (their
/// clocks agree: a header from the counterparty is never ahead of the host's time).
fn chains() -> (Chain, Chain) {
    let mut a = Chain::new("basalt-a");
    let mut b = Chain::new("basalt-b");
    for _ in 0..14 {
        a.block(vec![]);
        b.block(vec![]);
    }
    (a, b)
}

#[test]
fn a_client_is_created_and_updated_by_ibc_transactions_and_its_state_is_provable() {
    let (mut a, b) = chains();
    let me = relayer().public_key().address();
    let r = a.submit(&relayer(), vec![b.create_client_msg(10, &me)]);
    assert_eq!(r.code, CODE_OK, "{}", r.log);
    assert_eq!(kinds(&r), ["message", "create_client", "tx"]);
    assert!(r.gas_used > ante_gas(0) && r.gas_used <= GAS);
    let created = r.events[1]
        .attributes
        .iter()
        .find(|a| a.key == "client_id")
        .unwrap();
    assert_eq!(created.value, first_client().to_string());

    let r = a.submit(
        &relayer(),
        vec![b.update_client_msg(&first_client(), 10, 14, &me)],
    );
    assert_eq!(r.code, CODE_OK, "{}", r.log);
    assert_eq!(kinds(&r), ["message", "update_client", "tx"]);
    let stored = a
        .get(ClientConsensusStatePath::new(first_client(), 0, 14).into())
        .expect("the consensus state of height 14");
    assert_eq!(
        Any::decode(stored.as_slice()).unwrap(),
        ConsensusState::of(&b.light_block(14).header).to_any()
    );

    // What a counterparty's relayer asks: the client state with a proof against the app hash.
    let key = format!("{}", Path::from(ClientStatePath::new(first_client())));
    let answer = a.app.query("/store/ibc/key", key.as_bytes(), 0, true);
    assert_eq!(answer.code, CODE_OK, "{}", answer.log);
    let proof = answer.proof.expect("a proof");
    let root = a.app.info().unwrap().last_app_hash;
    assert!(basalt_state::verify_membership(
        &proof,
        &root.0,
        &answer.key,
        &answer.value
    ));

    // Fees went to the proposer; nonces moved.
    assert_eq!(
        a.account(&relayer()),
        Account {
            balance: BALANCE - 2 * FEE,
            nonce: 2
        }
    );
}

#[test]
fn a_failing_or_foreign_signed_ibc_transaction_pays_its_fee_and_leaves_nothing_else() {
    let (mut a, b) = chains();
    let me = relayer().public_key().address();
    let r = a.submit(&relayer(), vec![b.create_client_msg(10, &me)]);
    assert_eq!(r.code, CODE_OK, "{}", r.log);
    let client_before = a.get(ClientStatePath::new(first_client()).into());

    // Signatures over another app hash: the commit no longer signs this header.
    let mut forged = b.light_block(13);
    forged.header.app_hash = Hash::digest(b"forged");
    let r = a.block(vec![
        // A good update followed by a forged one in the same transaction: neither remains.
        ibc_tx(
            &a.id,
            &relayer(),
            1,
            vec![
                b.update_client_msg(&first_client(), 10, 12, &me),
                update_client_msg(&first_client(), forged, 12, &me),
            ],
        ),
        // Messages naming another signer than the transaction's.
        ibc_tx(
            &a.id,
            &stranger(),
            0,
            vec![b.update_client_msg(&first_client(), 10, 12, &me)],
        ),
        // Not an IBC message at all.
        ibc_tx(
            &a.id,
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
        a.get(ClientStatePath::new(first_client()).into()),
        client_before
    );
    assert_eq!(
        a.get(ClientConsensusStatePath::new(first_client(), 0, 12).into()),
        None
    );
    assert_eq!(
        a.account(&relayer()),
        Account {
            balance: BALANCE - 3 * FEE,
            nonce: 3
        }
    );
    assert_eq!(a.account(&stranger()).nonce, 1);
}

#[test]
fn an_ibc_transaction_whose_gas_limit_is_below_its_size_is_refused_before_it_pays() {
    let (a, b) = chains();
    let me = relayer().public_key().address();
    let signed = IbcTxBody {
        chain_id: a.id.clone(),
        from: relayer().public_key(),
        nonce: 0,
        fee: FEE,
        gas_limit: ante_gas(10),
        messages: vec![IbcMessage::from(b.create_client_msg(10, &me))],
    }
    .sign(&relayer());
    let checked = a.app.check_tx(&Tx::new(signed.to_bytes()).unwrap());
    assert_eq!(checked.code, TxCode::OutOfGas.as_u32(), "{checked:?}");
}
