//! Request-response: Status, Blocks and Proposal round trips, clamping of a Blocks count, an unanswered
//! request timing out without hanging, and a request to an unreachable peer failing.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use basalt_p2p::{NetworkEvent, RequestError, SyncRequest, SyncResponse, MAX_SYNC_BLOCKS};
use common::*;
use tokio::sync::{mpsc, oneshot};

/// Serves B's requests like a node would, reporting each request it sees on `seen`; a Proposal request
/// for height 99 is held and never answered.
fn serve(
    mut node: Node,
    seen: mpsc::UnboundedSender<SyncRequest>,
) -> tokio::task::JoinHandle<Node> {
    tokio::spawn(async move {
        let mut held: Vec<oneshot::Sender<SyncResponse>> = Vec::new();
        while let Some(event) = node.events.recv().await {
            let NetworkEvent::SyncRequest { request, reply, .. } = event else {
                continue;
            };
            seen.send(request.clone()).unwrap();
            let response = match request {
                SyncRequest::Status => SyncResponse::Status {
                    base: 1,
                    latest: 10,
                },
                SyncRequest::Blocks { from, count } => SyncResponse::Blocks(
                    (from..from + u64::from(count).min(3))
                        .map(|h| {
                            let b = block(h, txs(3, 50, h as u8));
                            let c = commit(&b);
                            (b, c)
                        })
                        .collect(),
                ),
                SyncRequest::Proposal { height: 99, .. } => {
                    held.push(reply);
                    continue;
                }
                SyncRequest::Proposal { height, round } => {
                    SyncResponse::Proposal(Some(proposal(height, round)))
                }
                SyncRequest::Snapshots => SyncResponse::Snapshots(Vec::new()),
                SyncRequest::SnapshotChunk { .. } => SyncResponse::SnapshotChunk(None),
            };
            let _ = reply.send(response);
            if held.len() > 10 {
                break;
            }
        }
        node
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_blocks_and_proposal_round_trip_and_silence_times_out() {
    let b = start(config(32, vec![])).await;
    let b_handle = b.handle.clone();
    let b_id = b.id();
    let mut a = start(basalt_p2p::NetworkConfig {
        request_timeout: Duration::from_millis(1500),
        ..config(31, vec![b.addr()])
    })
    .await;
    wait_connected(&mut a, b_id).await;
    let (seen_tx, mut seen) = mpsc::unbounded_channel();
    let server = serve(b, seen_tx);

    let status = a.handle.request(b_id, SyncRequest::Status).await.unwrap();
    assert_eq!(
        status,
        SyncResponse::Status {
            base: 1,
            latest: 10
        }
    );
    assert_eq!(seen.recv().await.unwrap(), SyncRequest::Status);

    let blocks = a
        .handle
        .request(
            b_id,
            SyncRequest::Blocks {
                from: 4,
                count: 1000,
            },
        )
        .await
        .unwrap();
    // The server saw the count clamped to the protocol maximum.
    assert_eq!(
        seen.recv().await.unwrap(),
        SyncRequest::Blocks {
            from: 4,
            count: MAX_SYNC_BLOCKS
        }
    );
    let SyncResponse::Blocks(blocks) = blocks else {
        panic!("expected blocks, got {blocks:?}");
    };
    assert_eq!(blocks.len(), 3);
    for (i, (block, commit)) in blocks.iter().enumerate() {
        assert_eq!(block.height().0, 4 + i as u64);
        assert_eq!(
            *block,
            common::block(4 + i as u64, txs(3, 50, (4 + i) as u8))
        );
        assert_eq!(commit.block_id, block.id());
    }

    let got = a
        .handle
        .request(
            b_id,
            SyncRequest::Proposal {
                height: 7,
                round: 2,
            },
        )
        .await
        .unwrap();
    assert_eq!(got, SyncResponse::Proposal(Some(proposal(7, 2))));
    seen.recv().await.unwrap();

    // A handler that never answers: Timeout after the configured 1.5 s, not a hang.
    let started = std::time::Instant::now();
    let err = a
        .handle
        .request(
            b_id,
            SyncRequest::Proposal {
                height: 99,
                round: 0,
            },
        )
        .await
        .unwrap_err();
    assert_eq!(err, RequestError::Timeout { peer: b_id });
    assert!(started.elapsed() >= Duration::from_millis(1500));
    assert!(started.elapsed() < Duration::from_secs(10));

    // The connection survived; requests still work.
    let status = a.handle.request(b_id, SyncRequest::Status).await.unwrap();
    assert_eq!(
        status,
        SyncResponse::Status {
            base: 1,
            latest: 10
        }
    );

    a.handle.shutdown().await;
    b_handle.shutdown().await;
    server.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_nobody_answers_is_answered_with_an_error() {
    // B's node drops every request unanswered: the network answers Error for it.
    let mut b = start(config(34, vec![])).await;
    let mut a = start(config(33, vec![b.addr()])).await;
    wait_connected(&mut a, b.id()).await;
    let b_id = b.id();
    let drop_requests = tokio::spawn(async move {
        while let Some(event) = b.events.recv().await {
            if let NetworkEvent::SyncRequest { reply, .. } = event {
                drop(reply);
                break;
            }
        }
        b
    });
    let response = a.handle.request(b_id, SyncRequest::Status).await.unwrap();
    assert!(matches!(response, SyncResponse::Error(_)), "{response:?}");
    let b = drop_requests.await.unwrap();
    a.handle.shutdown().await;
    b.handle.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_to_an_unknown_peer_fails_fast() {
    let a = start(config(35, vec![])).await;
    assert_eq!(a.id(), basalt_p2p::peer_id_from_seed(&[35; 32]));
    assert_ne!(
        a.handle.listen_addr().port(),
        0,
        "the real port is reported"
    );
    let stranger = basalt_p2p::peer_id_from_seed(&[36; 32]);
    let err = a
        .handle
        .request(stranger, SyncRequest::Status)
        .await
        .unwrap_err();
    assert_eq!(err, RequestError::DialFailure { peer: stranger });
    let clone = a.handle.clone();
    a.handle.shutdown().await;
    assert!(clone.is_stopped());
    // After shutdown, requests fail instead of hanging, and queries answer empty.
    let err = clone
        .request(stranger, SyncRequest::Status)
        .await
        .unwrap_err();
    assert_eq!(err, RequestError::Shutdown);
    assert!(clone.peers().await.is_empty());
}
