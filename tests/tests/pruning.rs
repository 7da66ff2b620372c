//! `storage.retain_blocks` and `storage.pruning_keep_recent` prune (issue 14, item 9): on 9496b9c the node
//! read neither for anything but validation, so a node configured to keep 10 blocks kept every block and
//! every state version forever. The same node takes state snapshots (`[statesync] snapshot_interval`,
//! issue 18 item 2) while it prunes: each is of a version it had not pruned, and restores the state
//! whose app hash the next header carries.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::time::{Duration, Instant};

use basalt_p2p::{PeerAddr, SyncRequest, SyncResponse};
use basalt_state::app::QueryTarget;
use basalt_state::snapshot::{Manifest, Restore, RestoreLimits};
use basalt_state::{StateStore, StoreConfig};
use basalt_tests::rogue::rogue;
use basalt_tests::testnet::Testnet;
use base64::Engine as _;
use serde_json::json;

const WAIT: Duration = Duration::from_secs(60);
const KEEP: u64 = 10;
const SNAPSHOT_EVERY: u64 = 5;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn old_blocks_and_state_versions_are_pruned() {
    let mut net = Testnet::generate(1, 0, 1).unwrap();
    net.set_config(0, "storage", "retain_blocks", &KEEP.to_string())
        .unwrap();
    net.set_config(0, "storage", "pruning_keep_recent", &KEEP.to_string())
        .unwrap();
    net.set_config(
        0,
        "statesync",
        "snapshot_interval",
        &SNAPSHOT_EVERY.to_string(),
    )
    .unwrap();
    net.set_config(0, "statesync", "snapshot_chunk_bytes", "1024")
        .unwrap();
    net.start(0, &[]).unwrap();
    net.wait_height(0, 6 * KEEP, WAIT).await.unwrap();

    // The oldest stored block follows the tip (pruning runs after each commit, off the consensus thread).
    let deadline = Instant::now() + WAIT;
    let (earliest, latest) = loop {
        let status = net.rpc(0, "status", json!({})).await.unwrap();
        let sync = &status["sync_info"];
        let number = |key: &str| sync[key].as_str().unwrap().parse::<u64>().unwrap();
        let (earliest, latest) = (
            number("earliest_block_height"),
            number("latest_block_height"),
        );
        if earliest + 2 * KEEP >= latest && earliest > KEEP {
            break (earliest, latest);
        }
        assert!(
            Instant::now() < deadline,
            "blocks are not pruned: earliest {earliest}, latest {latest}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(latest >= 6 * KEEP);

    // The first blocks are gone, and the state at an early height cannot be read any more.
    let first = net.rpc(0, "block", json!({"height": "1"})).await;
    assert!(first.is_err(), "block 1 is still served: {first:?}");
    let (address, _) = net.accounts().unwrap().remove(0);
    let balance_at = |height: u64| json!({"path": format!("/bank/balance/{address}"), "data": "", "height": height.to_string(), "prove": false});
    let recent = net.rpc(0, "abci_query", balance_at(latest)).await.unwrap();
    assert_eq!(recent["response"]["code"], json!(0), "{recent}");
    let old_state = net.rpc(0, "abci_query", balance_at(2)).await.unwrap();
    assert_ne!(
        old_state["response"]["code"],
        json!(0),
        "state version 2 is still readable: {old_state}"
    );
    // Blocks within the window are served.
    net.rpc(0, "block", json!({"height": (earliest + 1).to_string()}))
        .await
        .unwrap();

    // Snapshots: the newest two multiples of the interval are kept and offered to peers; the newest,
    // fetched as a peer fetches it (over p2p), restores into an empty store the state whose root the
    // header above it carries, accounts included.
    let snapshots = Path::new(net.home(0)).join("data").join("snapshots");
    let snapshot_heights = || -> Vec<u64> {
        let mut heights: Vec<u64> = std::fs::read_dir(&snapshots)
            .unwrap()
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
            .collect();
        heights.sort_unstable();
        heights
    };
    let target = PeerAddr {
        id: net.node_id(0).unwrap().parse().unwrap(),
        addr: net.p2p_addr(0),
    };
    let (peer, _events) = rogue(221, target.clone()).await.unwrap();
    let path = format!("/bank/account/{address}");
    // The chain runs on while this reads (tens of heights a second, 10 kept): a snapshot whose
    // header or state was pruned, or that was dropped for newer ones, before it was read is skipped
    // for a newer one.
    let deadline = Instant::now() + WAIT;
    let (newest, chunks, manifest, app_hash, served) = loop {
        assert!(Instant::now() < deadline, "no snapshot could be checked");
        let heights = snapshot_heights();
        // Two kept; a third for the moment between a new one's rename and the oldest's removal.
        assert!(
            (2..=3).contains(&heights.len()) && heights.iter().all(|h| h % SNAPSHOT_EVERY == 0),
            "{heights:?}"
        );
        let Ok(SyncResponse::Snapshots(offers)) =
            peer.request(target.id, SyncRequest::Snapshots).await
        else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        assert!((2..=3).contains(&offers.len()), "{offers:?}");
        assert!(offers.windows(2).all(|w| w[0].height > w[1].height));
        let newest = offers[0].height;
        let manifest = Manifest::decode(&offers[0].manifest).unwrap();
        let mut chunks = Vec::new();
        for index in 0..manifest.chunk_hashes.len() as u32 {
            let request = SyncRequest::SnapshotChunk {
                height: newest,
                index,
            };
            match peer.request(target.id, request).await {
                Ok(SyncResponse::SnapshotChunk(Some(chunk))) => chunks.push(chunk),
                _ => break,
            }
        }
        if chunks.len() != manifest.chunk_hashes.len() {
            continue;
        }
        net.wait_height(0, newest + 1, WAIT).await.unwrap();
        let Ok(above) = net
            .rpc(0, "block", json!({"height": (newest + 1).to_string()}))
            .await
        else {
            continue;
        };
        let query = json!({"path": path, "data": "", "height": newest.to_string(), "prove": false});
        let answer = net.rpc(0, "abci_query", query).await.unwrap();
        if answer["response"]["code"] != json!(0) {
            continue;
        }
        let app_hash = above["block"]["header"]["app_hash"]
            .as_str()
            .unwrap()
            .to_owned();
        let served = answer["response"]["value"].as_str().unwrap().to_owned();
        break (newest, chunks, manifest, app_hash, served);
    };
    assert_eq!(hex::encode_upper(manifest.root), app_hash);
    let config = StoreConfig::default();
    let mut restore = Restore::new(
        manifest.clone(),
        manifest.root,
        RestoreLimits {
            max_key_bytes: config.max_key_bytes,
            max_value_bytes: config.max_value_bytes,
            max_total_bytes: 1 << 30,
        },
    )
    .unwrap();
    for (index, chunk) in chunks.iter().enumerate() {
        restore.add(index as u32, chunk).unwrap();
    }
    let fresh = tempfile::tempdir().unwrap();
    let restored = StateStore::open(fresh.path(), config).unwrap();
    assert_eq!(restore.finish(&restored).unwrap(), manifest.root);
    let QueryTarget::Account { key } = QueryTarget::of(&path, b"").unwrap() else {
        panic!("{path} is not an account query");
    };
    let local = restored.get(&key, newest).unwrap();
    assert!(local.is_some(), "no account {address} in the snapshot");
    assert_eq!(
        base64::engine::general_purpose::STANDARD.encode(local.unwrap()),
        served
    );
    assert!(net.is_running(0));
}
