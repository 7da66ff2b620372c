//! Bans: garbage and oversized gossip ban the sender at once (and it cannot reconnect while banned) while
//! honest traffic continues; report_peer bans, the ban expires, and persistent peers are redialled after
//! a ban and after a restart.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::{Duration, Instant};

use basalt_consensus::engine::ConsensusMessage;
use basalt_consensus::{Height, Round};
use basalt_p2p::{GossipTopic, Misbehaviour, NetworkConfig, NetworkEvent, Verdict, ENVELOPE_BYTES};
use common::*;

const BATCH_LIMIT: usize = 64 * 1024;

fn limited(seed: u8, peers: Vec<basalt_p2p::PeerAddr>) -> NetworkConfig {
    NetworkConfig {
        max_tx_batch_bytes: BATCH_LIMIT,
        ban_duration: Duration::from_secs(60),
        ..config(seed, peers)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_and_oversized_gossip_ban_the_sender_and_honest_traffic_continues() {
    let mut b = start(limited(42, vec![])).await;
    let mut a = start(limited(41, vec![b.addr()])).await;
    let mut garbler = start(limited(43, vec![b.addr()])).await;
    let mut stuffer = start(limited(44, vec![b.addr()])).await;
    for node in [&mut a, &mut garbler, &mut stuffer] {
        wait_connected(node, b.id()).await;
        for topic in [GossipTopic::Consensus, GossipTopic::Txs] {
            wait_subscribed(&node.handle, topic, b.id()).await;
        }
    }

    // Garbage on the consensus topic (a plausible envelope around bytes that are no message).
    let mut garbage = vec![0u8; ENVELOPE_BYTES];
    garbage.extend_from_slice(&[0xEE; 300]);
    garbler
        .handle
        .publish_raw_for_tests(GossipTopic::Consensus, garbage);
    // A well-formed batch twice the txs topic's limit.
    let mut oversized = vec![1u8; ENVELOPE_BYTES];
    oversized.extend_from_slice(&basalt_consensus::types::encode(&txs(4, 32 * 1024, 5)));
    assert!(oversized.len() > BATCH_LIMIT + ENVELOPE_BYTES);
    stuffer
        .handle
        .publish_raw_for_tests(GossipTopic::Txs, oversized);

    // B drops both without telling its node, and disconnects both senders.
    let mut gone = Vec::new();
    while gone.len() < 2 {
        let peer = wait_event(&mut b.events, "a ban disconnect", |e| match e {
            NetworkEvent::PeerDisconnected { peer } => Some(peer),
            NetworkEvent::Consensus { .. } | NetworkEvent::Txs { .. } => {
                panic!("bad gossip reached the node: {e:?}")
            }
            _ => None,
        })
        .await;
        gone.push(peer);
    }
    gone.sort();
    let mut expected = vec![garbler.id(), stuffer.id()];
    expected.sort();
    assert_eq!(gone, expected);
    let mut banned = b.handle.banned().await;
    banned.sort();
    assert_eq!(banned, expected);

    // The banned peers redial (persistent, 1 s then 2 s back-off) and are refused. B must count at least
    // two refused connections - so the check is not passing only because nobody tried yet - and never
    // report a banned peer connected, while the honest link keeps working.
    let status = ConsensusMessage::Status {
        height: Height(3),
        round: Round(0),
    };
    a.handle.publish_consensus(&status);
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut honest_delivered = false;
    while !honest_delivered || b.handle.refused_banned().await < 2 {
        assert!(
            Instant::now() < deadline,
            "within 30 s: honest traffic delivered {honest_delivered}, refused {}",
            b.handle.refused_banned().await
        );
        tokio::select! {
            // Polls the counter between events.
            _ = tokio::time::sleep(Duration::from_millis(100)) => {}
            event = b.events.recv() => match event.unwrap() {
                NetworkEvent::PeerConnected { peer, .. } => {
                    assert!(!expected.contains(&peer), "banned peer {peer} reconnected");
                }
                NetworkEvent::Consensus { id, from, message } => {
                    assert_eq!((from, &message), (a.id(), &status));
                    b.handle.report_validation(id, Verdict::Accept);
                    honest_delivered = true;
                }
                other => panic!("unexpected {other:?}"),
            },
        }
    }
    assert!(honest_delivered, "honest traffic continued");
    let connected: Vec<_> = b.handle.peers().await.into_iter().map(|p| p.id).collect();
    assert_eq!(connected, vec![a.id()]);

    for node in [a, b, garbler, stuffer] {
        node.handle.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reported_peer_is_banned_until_expiry_then_redialled() {
    let ban = Duration::from_millis(2500);
    let a = start(config(51, vec![])).await;
    // B keeps A as a persistent peer: it must not redial A while A is banned, and must after.
    let mut b = start(NetworkConfig {
        ban_duration: ban,
        ..config(52, vec![a.addr()])
    })
    .await;
    wait_connected(&mut b, a.id()).await;

    let banned_at = Instant::now();
    b.handle.report_peer(a.id(), Misbehaviour::BadSignature);
    wait_disconnected(&mut b, a.id()).await;
    assert_eq!(b.handle.banned().await, vec![a.id()]);

    wait_connected(&mut b, a.id()).await;
    assert!(
        banned_at.elapsed() >= ban,
        "redialled {:?} after the ban, before it expired",
        banned_at.elapsed()
    );
    assert!(b.handle.banned().await.is_empty(), "the ban expired");
    assert!(b
        .handle
        .peers()
        .await
        .iter()
        .any(|p| p.id == a.id() && p.outbound));

    a.handle.shutdown().await;
    b.handle.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn minor_offences_ban_only_when_they_add_up() {
    let a = start(config(61, vec![])).await;
    let mut b = start(config(62, vec![a.addr()])).await;
    wait_connected(&mut b, a.id()).await;
    for _ in 0..basalt_p2p::MAX_MINOR_OFFENCES - 1 {
        b.handle
            .report_peer(a.id(), Misbehaviour::Other("slow".into()));
    }
    assert!(b.handle.banned().await.is_empty());
    b.handle
        .report_peer(a.id(), Misbehaviour::Other("slow".into()));
    wait_disconnected(&mut b, a.id()).await;
    assert_eq!(b.handle.banned().await, vec![a.id()]);
    a.handle.shutdown().await;
    b.handle.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_persistent_peer_is_redialled() {
    let a = start(config(71, vec![])).await;
    let a_addr = a.addr();
    let mut b = start(config(72, vec![a_addr.clone()])).await;
    wait_connected(&mut b, a_addr.id).await;

    a.handle.shutdown().await;
    wait_disconnected(&mut b, a_addr.id).await;

    // Same key, same port.
    let a = start(NetworkConfig {
        listen_addr: a_addr.addr,
        ..config(71, vec![])
    })
    .await;
    assert_eq!(a.addr(), a_addr);
    wait_connected(&mut b, a_addr.id).await;
    a.handle.shutdown().await;
    b.handle.shutdown().await;
}
