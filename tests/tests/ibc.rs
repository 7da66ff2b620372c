//! IBC transactions on a live node (issue 16): a relayer's signed `MsgCreateClient` submitted over
//! JSON-RPC is executed by the node's application, its events are what relayers look for (and are
//! indexed for `tx_search`), the client state is readable at its ICS-24 path with `/store/ibc/key`, and
//! the fee and nonce rules are the bank's.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use basalt_consensus::light::fixture::{light_block, seed_of, set};
use basalt_consensus::light::{LightBlock, Options, TrustLevel, TrustedBlock};
use basalt_consensus::types::{ChainId, Hash, PrivateKey};
use basalt_consensus::Height;
use basalt_ibc::client::{ClientState, ConsensusState};
use basalt_ibc::tx::{IbcMessage, IbcTxBody};
use basalt_tests::testnet::Testnet;
use base64::Engine as _;
use ibc_core::client::types::msgs::MsgCreateClient;
use ibc_core::primitives::proto::Any;
use ibc_core::primitives::{Signer, ToProto};
use prost::Message;
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(60);

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// A client of chain `basalt-b` at height 10, made of a header signed a minute ago.
fn create_client(signer: &str) -> Any {
    let now_ms = u64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap();
    let counterparty = ChainId::new("basalt-b").unwrap();
    let vals = set(&[(1, 10), (2, 10), (3, 10)]);
    let signers: Vec<u8> = (0..vals.len()).map(|i| seed_of(&vals, i)).collect();
    let block = light_block(
        &counterparty,
        10,
        now_ms - 60_000,
        &vals,
        &vals,
        Hash::digest(b"basalt-b state"),
        &signers,
    );
    let client = ClientState::new(
        counterparty,
        Height(10),
        TrustLevel::ONE_THIRD,
        24 * 3_600_000,
        10_000,
    )
    .unwrap();
    MsgCreateClient {
        client_state: client.to_any(),
        consensus_state: ConsensusState::of(&block.header).to_any(),
        signer: Signer::from(signer.to_owned()),
    }
    .to_any()
}

fn ibc_tx(chain_id: &str, key: &PrivateKey, nonce: u64, fee: u128) -> Vec<u8> {
    let signer = key.public_key().address().to_hex_upper();
    IbcTxBody {
        chain_id: ChainId::new(chain_id).unwrap(),
        from: key.public_key(),
        nonce,
        fee,
        gas_limit: 1_000_000,
        messages: vec![IbcMessage::from(create_client(&signer))],
    }
    .sign(key)
    .to_bytes()
}

fn attribute<'a>(events: &'a Value, kind: &str, key: &str) -> Option<&'a str> {
    events.as_array()?.iter().find(|e| e["type"] == kind)?["attributes"]
        .as_array()?
        .iter()
        .find(|a| a["key"] == key)?["value"]
        .as_str()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_node_executes_an_ibc_create_client_transaction() {
    let mut net = Testnet::generate(1, 0, 1).unwrap();
    net.start(0, &[]).unwrap();
    net.wait_height(0, 2, WAIT).await.unwrap();
    let chain_id = net.chain_id().await.unwrap();
    let (address, seed) = net.accounts().unwrap().remove(0);
    let key = PrivateKey::from_seed(&hex::decode(&seed).unwrap().try_into().unwrap());

    let tx = ibc_tx(&chain_id, &key, 0, 3);
    let committed = net
        .rpc(0, "broadcast_tx_commit", json!({"tx": b64(&tx)}))
        .await
        .unwrap();
    assert_eq!(committed["check_tx"]["code"], 0, "{committed}");
    assert_eq!(committed["tx_result"]["code"], 0, "{committed}");
    let events = &committed["tx_result"]["events"];
    assert_eq!(
        attribute(events, "create_client", "client_id"),
        Some("99-basalt-0"),
        "{events}"
    );
    assert_eq!(
        attribute(events, "create_client", "client_type"),
        Some("99-basalt")
    );
    assert_eq!(attribute(events, "tx", "fee_payer"), Some(address.as_str()));

    // A relayer finds the transaction by its event...
    let found = net
        .rpc(
            0,
            "tx_search",
            json!({"query": "create_client.client_id='99-basalt-0'"}),
        )
        .await
        .unwrap();
    assert_eq!(found["total_count"], "1", "{found}");
    assert_eq!(found["txs"][0]["hash"], committed["hash"]);

    // ...and reads the client state at its ICS-24 path, with a proof.
    let answer = net
        .rpc(
            0,
            "abci_query",
            json!({
                "path": "/store/ibc/key",
                "data": hex::encode(b"clients/99-basalt-0/clientState"),
                "prove": true,
            }),
        )
        .await
        .unwrap();
    let response = &answer["response"];
    assert_eq!(response["code"], 0, "{answer}");
    assert!(
        response["proofOps"]["ops"]
            .as_array()
            .is_some_and(|o| !o.is_empty()),
        "{answer}"
    );
    let value = base64::engine::general_purpose::STANDARD
        .decode(response["value"].as_str().unwrap())
        .unwrap();
    let stored = ClientState::from_any(&Any::decode(value.as_slice()).unwrap()).unwrap();
    assert_eq!(stored.chain_id.as_str(), "basalt-b");
    assert_eq!(stored.latest_height, Height(10));

    // What a relayer builds client headers from: `light_block`, verified here as the client will.
    let (h1, h2) = (
        2u64,
        committed["height"]
            .as_str()
            .unwrap()
            .parse::<u64>()
            .unwrap(),
    );
    let (header1, _, _, next1) = net.light_block(0, h1).await.unwrap();
    let (header2, commit2, validators2, _) = net.light_block(0, h2).await.unwrap();
    let trusted = TrustedBlock::of(&header1);
    let untrusted = LightBlock {
        header: header2,
        commit: commit2,
        validators: validators2,
    };
    let options = Options {
        trust_level: TrustLevel::ONE_THIRD,
        trusting_period_ms: 3_600_000,
        max_clock_drift_ms: 10_000,
    };
    let now_ms = untrusted.header.time_ms + 1;
    basalt_consensus::light::verify(&trusted, &next1, &untrusted, &options, now_ms).unwrap();
    // And the proof of the client state above is against the app hash of the block after it.
    assert_eq!(untrusted.header.height.0, h2);

    // `basalt tx ibc-transfer` builds and submits an ICS-20 transfer: admitted (the ante rules pass),
    // then refused by IBC in the block (this chain has no channel), its fee paid.
    let hash = net.ibc_transfer(0, &address, 5, &["--fee", "2"]).unwrap();
    let outcome = net.wait_tx(0, &hash, WAIT).await.unwrap();
    assert_eq!(outcome["tx_result"]["code"], 8, "{outcome}");
    assert!(
        outcome["tx_result"]["log"]
            .as_str()
            .is_some_and(|l| l.contains("channel")),
        "{outcome}"
    );
    assert_eq!(
        attribute(&outcome["tx_result"]["events"], "tx", "fee"),
        Some("2")
    );

    // Its nonce again (other bytes: another fee) is a replay: refused at admission.
    let again = net
        .rpc(
            0,
            "broadcast_tx_sync",
            json!({"tx": b64(&ibc_tx(&chain_id, &key, 0, 4))}),
        )
        .await
        .unwrap();
    assert_eq!(again["code"], 4, "{again}");
}
