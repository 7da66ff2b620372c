//! Validator-set changes by transaction on a real network (issue 18's "done means", first part): four
//! validators and a full node on a chain whose genesis names a validator authority. The authority adds
//! the full node as a fifth validator — it is in the set from the block's height + 2 and signs
//! commits; the network then goes on with one validator of five stopped; a validator is removed — from
//! its height + 2 the set has no slot for it; a validator's power changes at its height + 2; a
//! restarted node rebuilds the sets from its store; and the stopped validator catches up (block sync)
//! across the change heights.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use basalt_consensus::types::{PrivateKey, PublicKey};
use basalt_tests::testnet::{basalt_bin, Testnet};
use serde_json::{json, Value};
use std::process::Command;

/// Bound on the whole test (network start included).
const TEST_BUDGET: Duration = Duration::from_secs(150);
/// Bound on one wait for a height.
const WAIT: Duration = Duration::from_secs(40);
const VALIDATORS: usize = 4;
/// The full node that becomes a validator.
const NEWCOMER: usize = 4;
/// Heights after the newcomer joins within which one of its precommits must be in a commit.
const SIGNING_WINDOW: u64 = 30;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validators_are_added_and_removed_by_the_authority() {
    tokio::time::timeout(TEST_BUDGET, run())
        .await
        .expect("validator change test exceeded its time budget");
}

fn consensus_key(net: &Testnet, i: usize) -> PublicKey {
    net.consensus_key(i).unwrap()
}

/// Names the first account as the validator authority in every node's genesis.
fn name_authority(net: &Testnet, authority: &str) {
    for i in 0..=NEWCOMER {
        let path = net.home(i).join("config/genesis.json");
        let mut genesis: Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        genesis["app_state"]["validator_authority"] = json!(authority);
        std::fs::write(&path, serde_json::to_string_pretty(&genesis).unwrap()).unwrap();
    }
}

/// Submits a validator transaction through node `via` and waits for its commit; its height.
async fn change(
    net: &Testnet,
    via: usize,
    authority: &PrivateKey,
    nonce: u64,
    changes: Vec<(PublicKey, u64)>,
) -> u64 {
    net.change_validators(via, authority, nonce, changes)
        .await
        .unwrap()
}

/// `basalt show-validator` of node `i`, then `basalt tx validator --power 0` for it through node `via`
/// signed by the authority (the first entry of accounts.json); the height that committed it.
async fn remove_with_cli(net: &Testnet, i: usize, via: usize) -> u64 {
    let bin = basalt_bin().unwrap();
    let shown = Command::new(&bin)
        .args(["--home", net.home(i).to_str().unwrap(), "show-validator"])
        .output()
        .unwrap();
    assert!(shown.status.success());
    let pubkey = String::from_utf8(shown.stdout).unwrap();
    let sent = Command::new(&bin)
        .args([
            "tx",
            "validator",
            "--key-file",
            net.root().join("accounts.json").to_str().unwrap(),
            "--pubkey",
            pubkey.trim(),
            "--power",
            "0",
            "--fee",
            "1",
            "--node",
            &net.rpc_url(via),
        ])
        .output()
        .unwrap();
    assert!(
        sent.status.success(),
        "basalt tx validator: {}",
        String::from_utf8_lossy(&sent.stderr)
    );
    let hash = String::from_utf8(sent.stdout).unwrap();
    let found = net.wait_tx(via, hash.trim(), WAIT).await.unwrap();
    assert_eq!(found["tx_result"]["code"], 0, "{found}");
    found["height"].as_str().unwrap().parse().unwrap()
}

/// The set of `height` as node `via` serves it: (address, voting power), sorted by address.
async fn validators_at(net: &Testnet, via: usize, height: u64) -> Vec<(String, u64)> {
    let r = net
        .rpc(
            via,
            "validators",
            json!({"height": height.to_string(), "per_page": "100"}),
        )
        .await
        .unwrap();
    let mut set: Vec<(String, u64)> = r["validators"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            (
                v["address"].as_str().unwrap().to_owned(),
                v["voting_power"].as_str().unwrap().parse().unwrap(),
            )
        })
        .collect();
    set.sort();
    set
}

/// The voting power of `address` in the set of `height`, if it is a member.
async fn power_of(net: &Testnet, via: usize, height: u64, address: &str) -> Option<u64> {
    validators_at(net, via, height)
        .await
        .into_iter()
        .find(|(a, _)| a == address)
        .map(|(_, power)| power)
}

/// The addresses of the set of `height`, sorted.
async fn set_at(net: &Testnet, via: usize, height: u64) -> Vec<String> {
    validators_at(net, via, height)
        .await
        .into_iter()
        .map(|(address, _)| address)
        .collect()
}

/// Addresses that signed the commit of `height` for the block.
async fn signers(net: &Testnet, via: usize, height: u64) -> (usize, Vec<String>) {
    let r = net
        .rpc(via, "commit", json!({"height": height.to_string()}))
        .await
        .unwrap();
    let slots = r["signed_header"]["commit"]["signatures"]
        .as_array()
        .unwrap();
    let signed = slots
        .iter()
        .filter(|s| s["block_id_flag"] == 2)
        .map(|s| s["validator_address"].as_str().unwrap().to_owned())
        .collect();
    (slots.len(), signed)
}

async fn run() {
    let mut net = Testnet::generate(VALIDATORS, 1, 2).unwrap();
    let (authority_address, authority_seed) = net.accounts().unwrap().remove(0);
    name_authority(&net, &authority_address);
    let authority =
        PrivateKey::from_seed(&hex::decode(authority_seed).unwrap().try_into().unwrap());
    for i in 0..=NEWCOMER {
        net.start(i, &[]).unwrap();
    }
    net.wait_height(NEWCOMER, 3, WAIT).await.unwrap();
    let newcomer = consensus_key(&net, NEWCOMER);
    let newcomer_address = newcomer.address().to_hex_upper();

    // --- add the full node as a fifth validator -----------------------------------------------------
    let added_in = change(&net, 0, &authority, 0, vec![(newcomer, 10)]).await;
    net.wait_height(0, added_in + SIGNING_WINDOW + 1, WAIT)
        .await
        .unwrap();
    assert_eq!(
        set_at(&net, 0, added_in + 1).await.len(),
        4,
        "not yet at h + 1"
    );
    let five = set_at(&net, 0, added_in + 2).await;
    assert_eq!(five.len(), 5, "in the set from h + 2");
    assert!(five.contains(&newcomer_address));
    // It signs: its precommit is in the commits from h + 2 on (a commit holds the precommits its block's
    // proposer had, so a newcomer a little behind may miss the first few at this block rate).
    let mut signed = false;
    for h in added_in + 2..=added_in + SIGNING_WINDOW {
        let (slots, by) = signers(&net, 0, h).await;
        assert_eq!(slots, 5, "commit of {h} has a slot per validator");
        signed |= by.contains(&newcomer_address);
    }
    assert!(
        signed,
        "the new validator signed none of the {SIGNING_WINDOW} first commits it could"
    );

    // --- one validator of five stopped: the chain goes on -------------------------------------------
    assert!(net.stop(0, Duration::from_secs(10)));
    let at = net.height(1).await.unwrap();
    net.wait_height(1, at + 3, WAIT).await.unwrap();

    // --- remove validator 3, with the operator's commands ------------------------------------------
    let removed = consensus_key(&net, 3).address().to_hex_upper();
    let removed_in = remove_with_cli(&net, 3, 1).await;
    net.wait_height(1, removed_in + 4, WAIT).await.unwrap();
    assert!(set_at(&net, 1, removed_in + 1).await.contains(&removed));
    let four = set_at(&net, 1, removed_in + 2).await;
    assert_eq!(four.len(), 4);
    assert!(!four.contains(&removed), "removed from h + 2");
    let (slots, by) = signers(&net, 1, removed_in + 3).await;
    assert_eq!(slots, 4, "no slot for the removed validator");
    assert!(!by.contains(&removed));

    // --- change a validator's power --------------------------------------------------------------------
    let heavier = consensus_key(&net, 1);
    let reweighed_in = change(&net, 1, &authority, 2, vec![(heavier, 15)]).await;
    net.wait_height(1, reweighed_in + 3, WAIT).await.unwrap();
    let address = heavier.address().to_hex_upper();
    assert_eq!(
        power_of(&net, 1, reweighed_in + 1, &address).await,
        Some(10)
    );
    assert_eq!(
        power_of(&net, 1, reweighed_in + 2, &address).await,
        Some(15)
    );

    // --- a restarted node rebuilds the sets from its store ------------------------------------------
    assert!(net.stop(2, Duration::from_secs(10)));
    net.start(2, &[]).unwrap();
    net.wait_height(2, removed_in + 5, WAIT).await.unwrap();
    assert_eq!(set_at(&net, 2, added_in + 2).await, five);
    assert_eq!(set_at(&net, 2, removed_in + 2).await, four);
    assert_eq!(
        power_of(&net, 2, reweighed_in + 2, &address).await,
        Some(15)
    );

    // --- the stopped validator catches up across both change heights --------------------------------
    net.start(0, &[]).unwrap();
    let target = net.height(1).await.unwrap() + 2;
    net.wait_height(0, target, WAIT).await.unwrap();
    assert_eq!(set_at(&net, 0, removed_in + 2).await, four);
}
