//! A validator killed in the middle of signing — at each point between the WAL write, the signer-state
//! write and the send — never produces a conflicting vote after restart, and signs again (issue 4).
//!
//! The kill is a failpoint (`BASALT_FAILPOINT=<point>:<n>`): the process aborts on the n-th time it reaches
//! the point, as abruptly as `kill -9`. Conflicting votes would reach the other validators, whose engines
//! turn them into duplicate-vote evidence that the chain commits: the test reads every block and finds
//! none. (`tests/tests/evidence.rs` shows that a real equivocation does end up in a block.)
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use basalt_tests::testnet::Testnet;
use serde_json::json;

const WAIT: Duration = Duration::from_secs(60);

async fn crash_at(point: &str) {
    let mut net = Testnet::generate(4, 0, 10).unwrap();
    for i in 0..4 {
        if i == 1 {
            net.start(i, &[("BASALT_FAILPOINT", &format!("{point}:7"))])
                .unwrap();
        } else {
            net.start(i, &[]).unwrap();
        }
    }
    assert!(
        net.wait_exit(1, WAIT),
        "node 1 never reached failpoint {point}"
    );
    let crashed_log = net.log(1, 0);
    assert!(
        crashed_log.contains("failpoint"),
        "node 1 exited without the failpoint: {crashed_log}"
    );
    let before = net.height(0).await.unwrap();
    net.start(1, &[]).unwrap();
    net.wait_height(1, before + 5, WAIT).await.unwrap();
    // Node 0 may lag a few heights behind (it can miss a block the crashed node proposed and catch up by
    // block sync a moment later); the commits below are read from its chain.
    net.wait_height(0, before + 5, WAIT).await.unwrap();
    let address = net.rpc(1, "status", json!({})).await.unwrap()["validator_info"]["address"]
        .as_str()
        .unwrap()
        .to_owned();
    // It signs again: its precommit is in a later commit.
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let h = net.height(0).await.unwrap();
        let commit = net
            .rpc(0, "commit", json!({"height": h.to_string()}))
            .await
            .unwrap();
        let signed = commit["signed_header"]["commit"]["signatures"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|s| s["validator_address"] == address.as_str() && s["block_id_flag"] == 2);
        if signed {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{point}: node 1 never signed again"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Conflicting votes would have reached the other validators, whose engines turn them into
    // duplicate-vote evidence that the next proposers commit: let the chain go on, then read every block
    // from before the crash to the end and look at what it committed.
    let end = net.height(0).await.unwrap() + 10;
    net.wait_height(0, end, WAIT).await.unwrap();
    for height in 1..=end {
        let block = net
            .rpc(0, "block", json!({"height": height.to_string()}))
            .await
            .unwrap();
        let evidence = &block["block"]["evidence"]["evidence"];
        assert!(
            evidence.as_array().is_some_and(Vec::is_empty),
            "{point}: block {height} commits evidence of a conflicting vote: {evidence}"
        );
    }
}

/// One scenario per crash point, run one after another (each starts 4 processes; in parallel they would
/// compete for this machine's two cores).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_at_every_signing_step_never_double_signs() {
    for point in [
        "sign.before_privval",
        "sign.after_privval",
        "sign.after_wal",
        "sign.after_send",
        "commit.before_store",
        "commit.after_store",
    ] {
        crash_at(point).await;
    }
}
