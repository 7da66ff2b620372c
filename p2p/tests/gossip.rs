//! Gossip between three nodes A - B - C (A and C both dial B): nothing is forwarded before B accepts,
//! consensus messages and transaction batches arrive intact, and re-publishing is delivered again.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use basalt_consensus::engine::ConsensusMessage;
use basalt_consensus::{Height, Round};
use basalt_p2p::{GossipId, GossipTopic, NetworkEvent, PeerId, Verdict};
use common::*;

async fn next_consensus(node: &mut Node) -> (GossipId, PeerId, ConsensusMessage) {
    wait_event(&mut node.events, "consensus message", |e| match e {
        NetworkEvent::Consensus { id, from, message } => Some((id, from, message)),
        _ => None,
    })
    .await
}

/// Starts B, then A and C with B as their persistent peer, and waits until B forwards to C on both
/// topics and A can publish to B.
async fn line() -> (Node, Node, Node) {
    let mut b = start(config(2, vec![])).await;
    let mut a = start(config(1, vec![b.addr()])).await;
    let mut c = start(config(3, vec![b.addr()])).await;
    wait_connected(&mut a, b.id()).await;
    wait_connected(&mut c, b.id()).await;
    for topic in [GossipTopic::Consensus, GossipTopic::Txs] {
        wait_mesh(&b.handle, topic, c.id()).await;
        wait_subscribed(&a.handle, topic, b.id()).await;
    }
    // B's events so far are connection events only.
    while let Ok(event) = b.events.try_recv() {
        assert!(
            matches!(event, NetworkEvent::PeerConnected { .. }),
            "unexpected {event:?}"
        );
    }
    (a, b, c)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consensus_and_txs_cross_b_only_after_accept() {
    let (a, mut b, mut c) = line().await;
    assert!(
        !c.handle.peers().await.iter().any(|p| p.id == a.id()),
        "A and C are not directly connected"
    );

    // 1. B ignores a status message: it must not reach C.
    let status = ConsensusMessage::Status {
        height: Height(5),
        round: Round(1),
    };
    a.handle.publish_consensus(&status);
    let (id, from, message) = next_consensus(&mut b).await;
    assert_eq!((from, &message), (a.id(), &status));
    assert_eq!(id.source(), a.id());
    b.handle.report_validation(id, Verdict::Ignore);

    // 2. B accepts a signed vote: it reaches C, and it is the first consensus message C sees, so the
    //    ignored status was not forwarded (B's link to C is ordered; the status came first).
    let vote = vote_message(5, 1);
    a.handle.publish_consensus(&vote);
    let (id, from, message) = next_consensus(&mut b).await;
    assert_eq!((from, &message), (a.id(), &vote));
    b.handle.report_validation(id, Verdict::Accept);
    let (_, from, message) = next_consensus(&mut c).await;
    assert_eq!(from, b.id());
    assert_eq!(message, vote);

    // 3. The status again, accepted this time, does reach C.
    a.handle.publish_consensus(&status);
    let (id, _, message) = next_consensus(&mut b).await;
    assert_eq!(message, status);
    b.handle.report_validation(id, Verdict::Accept);
    let (_, _, message) = next_consensus(&mut c).await;
    assert_eq!(message, status);

    // 4. A transaction batch: withheld while B has not judged it, forwarded on Accept.
    let batch = txs(20, 300, 7);
    a.handle.publish_txs(batch.clone());
    let (id, from, got) = wait_event(&mut b.events, "txs at B", |e| match e {
        NetworkEvent::Txs { id, from, txs } => Some((id, from, txs)),
        _ => None,
    })
    .await;
    assert_eq!((from, &got), (a.id(), &batch));
    assert!(
        c.events.try_recv().is_err(),
        "C has nothing before B's verdict"
    );
    b.handle.report_validation(id, Verdict::Accept);
    let got = wait_event(&mut c.events, "txs at C", |e| match e {
        NetworkEvent::Txs { from, txs, .. } if from == b.id() => Some(txs),
        _ => None,
    })
    .await;
    assert_eq!(got, batch);

    for node in [a, b, c] {
        node.handle.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn republishing_the_same_message_is_delivered_again() {
    let mut b = start(config(12, vec![])).await;
    let mut a = start(config(11, vec![b.addr()])).await;
    wait_connected(&mut a, b.id()).await;
    wait_subscribed(&a.handle, GossipTopic::Consensus, b.id()).await;

    let vote = vote_message(9, 0);
    a.handle.publish_consensus(&vote);
    a.handle.publish_consensus(&vote);
    let (first, _, m1) = next_consensus(&mut b).await;
    let (second, _, m2) = next_consensus(&mut b).await;
    assert_eq!(m1, vote);
    assert_eq!(m2, vote);
    assert_ne!(first, second, "two distinct gossip messages");
    b.handle.report_validation(first, Verdict::Accept);
    b.handle.report_validation(second, Verdict::Accept);

    a.handle.shutdown().await;
    b.handle.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_tx_publishes_are_split_into_batches_within_the_limit() {
    let mut b = start(basalt_p2p::NetworkConfig {
        max_tx_batch_bytes: 10_000,
        ..config(22, vec![])
    })
    .await;
    let mut a = start(basalt_p2p::NetworkConfig {
        max_tx_batch_bytes: 10_000,
        ..config(21, vec![b.addr()])
    })
    .await;
    wait_connected(&mut a, b.id()).await;
    wait_subscribed(&a.handle, GossipTopic::Txs, b.id()).await;

    let all = txs(30, 1000, 3); // ~30 KB: at least 4 batches of <= 10 KB
    a.handle.publish_txs(all.clone());
    let mut received = Vec::new();
    let mut batches = 0;
    while received.len() < all.len() {
        let (id, got) = wait_event(&mut b.events, "a tx batch", |e| match e {
            NetworkEvent::Txs { id, txs, .. } => Some((id, txs)),
            _ => None,
        })
        .await;
        b.handle.report_validation(id, Verdict::Accept);
        batches += 1;
        received.extend(got);
    }
    assert!(batches >= 4, "{batches} batches");
    assert_eq!(received, all, "all transactions, in order");
    assert!(
        b.handle.banned().await.is_empty(),
        "honest batches are not offences"
    );

    a.handle.shutdown().await;
    b.handle.shutdown().await;
}
