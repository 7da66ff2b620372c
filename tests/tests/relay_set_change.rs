//! The relayer follows a chain whose validator set was replaced completely (issue 16 with issue 18's
//! set changes): chain a starts with validators 0 and 1 and two full nodes; after the path is created
//! (b's client of a trusts a's set {0, 1}), a's authority adds nodes 2 and 3, raises their power and
//! removes 0 and 1 — a third of the power at most per block, as the application allows — so no
//! validator b's client trusts signs a's later headers. A transfer from a then still arrives on b: the
//! relayer's update of b's client bisects (one `MsgUpdateClient` per pivot), where a single update
//! from the trusted height is refused for lack of trusted signatures.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use basalt_consensus::types::PrivateKey;
use basalt_tests::relayer;
use basalt_tests::testnet::Testnet;
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use serde_json::{json, Value};

/// Bound on the whole test (networks' start included).
const TEST_BUDGET: Duration = Duration::from_secs(180);
const WAIT: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transfer_is_relayed_after_the_source_replaced_its_whole_validator_set() {
    tokio::time::timeout(TEST_BUDGET, run())
        .await
        .expect("the test exceeded its time budget");
}

/// Addresses of the validators of `height` on node `via`.
async fn set_at(net: &Testnet, via: usize, height: u64) -> Vec<String> {
    let answer = net
        .rpc(via, "validators", json!({"height": height.to_string()}))
        .await
        .unwrap();
    answer["validators"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["address"].as_str().unwrap().to_owned())
        .collect()
}

/// The latest height of b's client `99-basalt-0` (of chain a).
async fn client_height(b: &Testnet) -> u64 {
    relayer::client_state(b, 0).await.unwrap().latest_height.0
}

async fn run() {
    // Chain a: validators 0 and 1 (power 10 each), full nodes 2 and 3; account 1 is the authority.
    let mut a = Testnet::generate_chain(2, 2, 2, Some("basalt-a")).unwrap();
    let (authority_address, authority_seed) = a.accounts().unwrap().remove(1);
    for i in 0..4 {
        let path = a.home(i).join("config/genesis.json");
        let mut genesis: Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        genesis["app_state"]["validator_authority"] = json!(authority_address);
        std::fs::write(&path, serde_json::to_string_pretty(&genesis).unwrap()).unwrap();
    }
    let authority =
        PrivateKey::from_seed(&hex::decode(authority_seed).unwrap().try_into().unwrap());
    for i in 0..4 {
        a.start(i, &[]).unwrap();
    }
    a.wait_height(3, 3, WAIT).await.unwrap();
    let mut b = Testnet::generate_chain(2, 0, 2, Some("basalt-b")).unwrap();
    b.start(0, &[]).unwrap();
    b.start(1, &[]).unwrap();
    b.wait_height(0, 3, WAIT).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = relayer::write_config(&a, &b, 1, dir.path(), "").unwrap();
    relayer::create_path(&config).unwrap();
    let trusted = client_height(&b).await;
    let old_set = set_at(&a, 0, trusted).await;
    assert_eq!(old_set.len(), 2);

    // Replace a's set, a third of the power at most per block: {0:10, 1:10} → {2:12, 3:14}.
    let steps = [(2, 6), (3, 8), (2, 12), (3, 14), (0, 0), (1, 0)];
    let mut last = 0;
    for (nonce, (node, power)) in steps.into_iter().enumerate() {
        let key = a.consensus_key(node).unwrap();
        last = a
            .change_validators(2, &authority, nonce as u64, vec![(key, power)])
            .await
            .unwrap();
    }
    a.wait_height(2, last + 3, WAIT).await.unwrap();
    let new_set = set_at(&a, 2, last + 2).await;
    assert_eq!(new_set.len(), 2);
    assert!(
        new_set.iter().all(|v| !old_set.contains(v)),
        "{old_set:?} -> {new_set:?}: the sets must be disjoint"
    );

    // A transfer from a, relayed with b's client still trusting {0, 1} at `trusted`.
    let (receiver, _) = b.accounts().unwrap().remove(1);
    let hash = a.ibc_transfer(2, &receiver, 55, &[]).unwrap();
    let committed = a.wait_tx(2, &hash, WAIT).await.unwrap();
    assert_eq!(committed["tx_result"]["code"], 0, "{committed}");
    let log = dir.path().join("relay.log");
    let mut relayer = relayer::start(&config, &log, &[]).unwrap();
    let voucher_key = format!(
        "balances/{}/transfer/channel-0/basalt",
        receiver.to_ascii_lowercase()
    );
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let answer = b
            .rpc(
                0,
                "abci_query",
                json!({"path": "/store/transfer/key", "data": hex::encode(&voucher_key)}),
            )
            .await
            .unwrap();
        let value = BASE64
            .decode(answer["response"]["value"].as_str().unwrap())
            .unwrap();
        if !value.is_empty() {
            assert_eq!(u128::from_be_bytes(value.try_into().unwrap()), 55);
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the transfer never arrived; relayer log:\n{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // b's client now follows a's new set, through consensus states between the two sets.
    assert!(client_height(&b).await > last + 2);
    let _ = relayer.0.kill();
    let _ = relayer.0.wait();
}
