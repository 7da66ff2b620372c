//! `basalt load`'s block watcher never silently stops following the chain (issue 17): heights the
//! subscription skipped are read by height, and when the node cancels the subscription it goes on
//! reading blocks by height; a height that stays unreadable fails the tracking with a reason. The
//! subscription side is a scripted websocket server (so the test decides exactly what arrives when);
//! blocks are read from the real RPC server over a mock backend.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod rpc_mock;

use std::sync::Arc;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde_json::json;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

use basalt_node::cli::load::watch::Watcher;
use basalt_node::rpc::{serve, RpcBackend, RpcLimits};
use rpc_mock::{MockBackend, LATEST};

/// A websocket server for one client: confirms its subscription, then sends what the test scripts.
async fn scripted_ws() -> (String, mpsc::UnboundedSender<String>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/websocket", listener.local_addr().unwrap());
    let (script, mut lines) = mpsc::unbounded_channel::<String>();
    tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let mut ws = tokio_tungstenite::accept_async(tcp).await.unwrap();
        let request = loop {
            if let Some(Ok(Message::Text(t))) = ws.next().await {
                break serde_json::from_str::<serde_json::Value>(t.as_str()).unwrap();
            }
        };
        assert_eq!(request["method"], "subscribe");
        let ok = json!({"jsonrpc": "2.0", "id": request["id"], "result": {}});
        ws.send(Message::text(ok.to_string())).await.unwrap();
        while let Some(line) = lines.recv().await {
            ws.send(Message::text(line)).await.unwrap();
        }
    });
    (url, script)
}

fn event(height: u64) -> String {
    json!({"jsonrpc": "2.0", "id": 1, "result": {"query": "tm.event='NewBlock'", "data": {
        "type": "tendermint/event/NewBlock",
        "value": {"block": {"header": {"height": height.to_string()}, "data": {"txs": []}}},
    }}})
    .to_string()
}

#[tokio::test]
async fn the_watcher_fills_gaps_and_falls_back_to_reading_blocks() {
    let mock = MockBackend::new();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let http = format!("http://{}", listener.local_addr().unwrap());
    let (_stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let backend: Arc<dyn RpcBackend> = mock.clone();
    tokio::spawn(serve(listener, backend, RpcLimits::default(), async {
        let _ = stopped.await;
    }));
    let (ws, script) = scripted_ws().await;
    let mut watcher = Watcher::subscribe(&ws, &http, Duration::from_millis(300))
        .await
        .unwrap();
    let txs_of = |h: u64| mock.block(h).unwrap().unwrap().txs().len();

    // Height 2 by event; then an event for 4: height 3 is read by height before it.
    script.send(event(2)).unwrap();
    assert_eq!(watcher.next_block().await.unwrap().height, 2);
    script.send(event(4)).unwrap();
    let three = watcher.next_block().await.unwrap();
    assert_eq!(three.height, 3, "the skipped height comes first");
    assert!(txs_of(3) > 0);
    assert_eq!(
        three.tx_hashes.len(),
        txs_of(3),
        "read from the node's block 3"
    );
    assert_eq!(watcher.next_block().await.unwrap().height, 4);
    // A repeated event is no new block.
    script.send(event(4)).unwrap();
    assert!(watcher.fallback().is_none());

    // The node cancels the subscription: the watcher reads the following heights by height.
    let cancelled = json!({"jsonrpc": "2.0", "id": null, "error": {"code": -32000,
        "message": "Server error",
        "data": "subscription was cancelled (reason: client is not pulling messages fast enough)"}});
    script.send(cancelled.to_string()).unwrap();
    let mut heights = Vec::new();
    for _ in 5..=LATEST {
        heights.push(watcher.next_block().await.unwrap().height);
    }
    assert_eq!(
        heights,
        (5..=LATEST).collect::<Vec<_>>(),
        "every height once, in order"
    );
    let reason = watcher.fallback().expect("the subscription ended");
    assert!(
        reason.contains("not pulling messages fast enough"),
        "{reason}"
    );

    // The chain ends at LATEST: the next height stays unreadable, and tracking fails saying so.
    let err = watcher.next_block().await.unwrap_err();
    assert!(err.contains(&format!("block {}", LATEST + 1)), "{err}");
}
