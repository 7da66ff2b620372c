#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use ibc_core::client::types::msgs::{ClientMsg, MsgCreateClient};
use ibc_core::primitives::Signer;
use ibc_core::primitives::ToProto;

use super::*;
use crate::client::{ClientState, ConsensusState};
use basalt_consensus::light::TrustLevel;
use basalt_consensus::types::Hash;
use basalt_consensus::Height;

fn key() -> PrivateKey {
    PrivateKey::from_seed(&[3; 32])
}

fn create_client_any(signer: Address) -> Any {
    let client = ClientState::new(
        ChainId::new("counterparty-1").unwrap(),
        Height(5),
        TrustLevel::ONE_THIRD,
        3_600_000,
        1_000,
    )
    .unwrap();
    let consensus = ConsensusState {
        root: Hash::digest(b"root"),
        time_ms: 1_700_000_000_000,
        next_validators_hash: Hash::digest(b"vals"),
    };
    MsgCreateClient {
        client_state: client.to_any(),
        consensus_state: consensus.to_any(),
        signer: Signer::from(signer.to_string()),
    }
    .to_any()
}

fn body(messages: Vec<IbcMessage>) -> IbcTxBody {
    IbcTxBody {
        chain_id: ChainId::new("basalt-1").unwrap(),
        from: key().public_key(),
        nonce: 7,
        fee: 10,
        gas_limit: 200_000,
        messages,
    }
}

fn signed() -> SignedIbcTx {
    let signer = key().public_key().address();
    body(vec![create_client_any(signer).into()]).sign(&key())
}

#[test]
fn a_signed_transaction_comes_back_as_it_was_and_its_messages_are_ibc_rs_envelopes() {
    let tx = signed();
    let bytes = tx.to_bytes();
    assert_eq!(bytes[0], IBC_TX_KIND);
    let decoded = SignedIbcTx::decode(&bytes).unwrap();
    assert_eq!(decoded, tx);
    decoded.verify().unwrap();
    let actions = decoded.actions().unwrap();
    assert!(matches!(
        actions.as_slice(),
        [IbcAction::Core(MsgEnvelope::Client(
            ClientMsg::CreateClient(_)
        ))]
    ));
}

#[test]
fn the_signature_covers_every_field_and_is_domain_separated() {
    let tx = signed();
    let mut changed = tx.body().clone();
    changed.nonce += 1;
    let forged = SignedIbcTx {
        body: changed,
        signature: tx.signature,
    };
    assert!(forged.verify().is_err());
    // The same key signing the body's bytes without the domain (as another kind would) is refused.
    let undomained = SignedIbcTx {
        body: tx.body().clone(),
        signature: key().sign(&encode(tx.body())),
    };
    assert!(undomained.verify().is_err());
}

#[test]
fn bytes_breaking_a_rule_are_refused_before_anything_is_decoded() {
    let bytes = signed().to_bytes();
    let too_large = vec![IBC_TX_KIND; MAX_IBC_TX_BYTES + 1];
    assert!(matches!(
        SignedIbcTx::decode(&too_large),
        Err(IbcTxError::TooLarge { .. })
    ));
    let mut transfer_kind = bytes.clone();
    transfer_kind[0] = 0;
    assert!(matches!(
        SignedIbcTx::decode(&transfer_kind),
        Err(IbcTxError::WrongKind(0))
    ));
    assert!(SignedIbcTx::decode(&[]).is_err());
    let mut trailing = bytes.clone();
    trailing.push(0);
    assert!(matches!(
        SignedIbcTx::decode(&trailing),
        Err(IbcTxError::Malformed { .. })
    ));
    assert!(SignedIbcTx::decode(&bytes[..bytes.len() - 1]).is_err());
    // A vector length far beyond the input is an error, not an allocation.
    let mut huge_count = vec![IBC_TX_KIND];
    huge_count.extend_from_slice(&encode(&body(Vec::new()))[..]);
    let count_at = huge_count.len() - 4;
    huge_count[count_at..].copy_from_slice(&u32::MAX.to_le_bytes());
    huge_count.extend_from_slice(&[0; SIGNATURE_LEN]);
    assert!(SignedIbcTx::decode(&huge_count).is_err());
}

#[test]
fn bodies_breaking_a_rule_are_refused() {
    let message = || IbcMessage {
        type_url: "/ibc.core.client.v1.MsgCreateClient".to_owned(),
        value: vec![],
    };
    let cases = [
        ("no messages", body(vec![])),
        ("too many", body(vec![message(); MAX_IBC_MESSAGES + 1])),
        (
            "empty type URL",
            body(vec![IbcMessage {
                type_url: String::new(),
                value: vec![],
            }]),
        ),
        (
            "long type URL",
            body(vec![IbcMessage {
                type_url: "/".repeat(MAX_TYPE_URL_BYTES + 1),
                value: vec![],
            }]),
        ),
        (
            "gas",
            IbcTxBody {
                gas_limit: MAX_GAS_LIMIT + 1,
                ..body(vec![message()])
            },
        ),
    ];
    for (case, body) in cases {
        let bytes = body.sign(&key()).to_bytes();
        assert!(
            matches!(SignedIbcTx::decode(&bytes), Err(IbcTxError::Invalid(_))),
            "{case} accepted"
        );
    }
    assert!(body(vec![message(); MAX_IBC_MESSAGES]).check().is_ok());
}

#[test]
fn a_message_ibc_rs_does_not_handle_is_named_by_its_position() {
    let signer = key().public_key().address();
    let tx = body(vec![
        create_client_any(signer).into(),
        IbcMessage {
            type_url: "/cosmos.bank.v1beta1.MsgSend".to_owned(),
            value: vec![1, 2, 3],
        },
    ])
    .sign(&key());
    let decoded = SignedIbcTx::decode(&tx.to_bytes()).unwrap();
    assert!(matches!(
        decoded.actions(),
        Err(IbcTxError::Message { index: 1, .. })
    ));
}

/// A bank application without the IBC module registered refuses IBC transactions at the mempool's door,
/// as it refuses any transaction kind it does not know.
#[test]
fn a_bank_application_without_the_ibc_module_refuses_an_ibc_transaction() {
    use basalt_state::app::{Application, BankApp, BankAppConfig};
    let dir = tempfile::tempdir().unwrap();
    let store = std::sync::Arc::new(
        basalt_state::StateStore::open(dir.path(), basalt_state::StoreConfig::default()).unwrap(),
    );
    let app = BankApp::new(
        store,
        BankAppConfig {
            chain_id: ChainId::new("basalt-1").unwrap(),
        },
    );
    let tx = basalt_consensus::types::Tx::new(signed().to_bytes()).unwrap();
    assert!(!app.check_tx(&tx).is_ok());
}

/// Client recovery (which ibc-rs would run without checking its signer) and upgrades are refused when the
/// transaction's messages are read, before any handler.
#[test]
fn client_recovery_and_upgrade_messages_are_refused() {
    use ibc_core::client::types::msgs::MsgRecoverClient;
    use ibc_core::host::types::identifiers::ClientId;
    let recover = MsgRecoverClient {
        subject_client_id: ClientId::new("99-basalt", 0).unwrap(),
        substitute_client_id: ClientId::new("99-basalt", 1).unwrap(),
        signer: Signer::from(key().public_key().address().to_string()),
    }
    .to_any();
    let tx = body(vec![recover.into()]).sign(&key());
    assert!(matches!(
        SignedIbcTx::decode(&tx.to_bytes()).unwrap().actions(),
        Err(IbcTxError::Message { index: 0, .. })
    ));
}

/// The example in docs/TRANSACTIONS.md, whose bytes were built independently in Python (the script is
/// in the doc): the Rust encoder must produce exactly them, and they must decode and verify.
#[test]
fn the_documented_ibc_transaction_example_is_what_the_encoder_produces() {
    let key = PrivateKey::from_seed(&[1; 32]);
    let tx = IbcTxBody {
        chain_id: ChainId::new("basalt-1").unwrap(),
        from: key.public_key(),
        nonce: 0,
        fee: 10,
        gas_limit: 100_000,
        messages: vec![IbcMessage {
            type_url: "/ibc.applications.transfer.v1.MsgTransfer".to_owned(),
            value: hex::decode("0a087472616e73666572").unwrap(),
        }],
    }
    .sign(&key);
    let expected = concat!(
        "0108000000626173616c742d318a88e3dd7409f195fd52db2d3cba5d72ca6709bf1d94121bf3748801b40f6f5c",
        "00000000000000000a000000000000000000000000000000a0860100000000000100000029000000",
        "2f6962632e6170706c69636174696f6e732e7472616e736665722e76312e4d73675472616e73666572",
        "0a0000000a087472616e73666572",
        "a7a66e770f6922774f8586fba36ddd290379c7e0bf246934736fc889433fcfe62cd0161c998b73a94185ad8daadf",
        "08ff9be507f8f31cf6474d6ecf91ae65cb08",
    );
    assert_eq!(hex::encode(tx.to_bytes()), expected);
    let decoded = SignedIbcTx::decode(&hex::decode(expected).unwrap()).unwrap();
    decoded.verify().unwrap();
    assert_eq!(decoded, tx);
}
