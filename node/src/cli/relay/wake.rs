//! Wake-ups for `relay start`: a websocket subscription to each chain's `NewBlockEvents` ends the pause
//! between idle passes as soon as a block that can change the path's state is committed, instead of
//! after the whole `--poll`. Events are only a wake-up — every pass reconciles from chain state — so a
//! subscription that fails or drops costs latency only: the passes poll every `--poll` while it
//! reconnects (after [`MIN_BACKOFF`], doubling to [`MAX_BACKOFF`]).
//!
//! Not every block wakes the relayer: IBC state changes only by transactions, and a change becomes
//! provable with the next block (its header carries the app hash). So a block wakes it when it holds
//! transactions or follows one that did ([`Wakes`]); an idle chain's empty blocks cost nothing.

use std::sync::Arc;
use std::time::Duration;

use prometheus::IntGauge;
use serde_json::Value;
use tokio::sync::Notify;

use crate::cli::load::submit::{next_text, websocket_url, ws_connect};
use crate::cli::load::watch::subscribe_request;

/// First pause before reconnecting a dropped subscription.
pub const MIN_BACKOFF: Duration = Duration::from_millis(100);
/// Longest pause between reconnection attempts.
pub const MAX_BACKOFF: Duration = Duration::from_secs(10);
/// How long connecting and subscribing may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Which blocks wake the relayer: those with transactions, and the block after each (which makes
/// their state provable).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Wakes {
    previous_had_txs: bool,
}

impl Wakes {
    /// Whether a block of `num_txs` transactions wakes the relayer (blocks come in order).
    pub fn block(&mut self, num_txs: u64) -> bool {
        let wake = num_txs > 0 || self.previous_had_txs;
        self.previous_had_txs = num_txs > 0;
        wake
    }
}

/// What one websocket message of the subscription says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Message {
    /// A committed block with this many transactions.
    Block {
        /// `num_txs` of the event.
        num_txs: u64,
    },
    /// The answer to `subscribe`, or anything else that is not an event.
    Other,
    /// The node refused or ended the subscription.
    Ended(String),
}

/// Parses one text message of the subscription.
pub fn parse(text: &str) -> Message {
    let Ok(value) = serde_json::from_str::<Value>(text) else {
        return Message::Ended("a message that is not JSON".to_owned());
    };
    if let Some(error) = value.get("error").filter(|e| !e.is_null()) {
        return Message::Ended(error.to_string());
    }
    match value.pointer("/result/data/value/num_txs") {
        // CometBFT encodes it as a string; accept a number too.
        Some(n) => match n.as_str().map_or(n.as_u64(), |s| s.parse().ok()) {
            Some(num_txs) => Message::Block { num_txs },
            None => Message::Ended(format!("num_txs {n} is not a count")),
        },
        None => Message::Other,
    }
}

/// Follows the new blocks of the node at `rpc` (its HTTP address) for ever, notifying `wake` for
/// each block that may matter ([`Wakes`]); `up` is 1 while the subscription is live, else 0.
/// Reconnects after any failure, so it only ends when its task is dropped.
pub async fn follow(rpc: String, wake: Arc<Notify>, up: IntGauge) {
    let url = websocket_url(&rpc);
    let mut backoff = MIN_BACKOFF;
    loop {
        let reason = match subscribe(&url).await {
            Ok(mut socket) => {
                up.set(1);
                backoff = MIN_BACKOFF;
                // Whatever happened while no subscription was live is for a pass to find.
                wake.notify_one();
                let mut wakes = Wakes::default();
                let reason = loop {
                    match next_text(&mut socket).await.map(|text| parse(&text)) {
                        Ok(Message::Block { num_txs }) => {
                            if wakes.block(num_txs) {
                                wake.notify_one();
                            }
                        }
                        Ok(Message::Other) => {}
                        Ok(Message::Ended(reason)) | Err(reason) => break reason,
                    }
                };
                up.set(0);
                reason
            }
            Err(reason) => reason,
        };
        eprintln!("block subscription to {url} ended ({reason}); polling until it is back");
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// Connects to `url` and subscribes to `NewBlockEvents`.
async fn subscribe(url: &str) -> Result<crate::cli::load::submit::WsStream, String> {
    use futures::SinkExt as _;
    let mut socket = ws_connect(url, CONNECT_TIMEOUT)
        .await
        .map_err(|e| e.to_string())?;
    let request = subscribe_request("tm.event='NewBlockEvents'");
    socket
        .send(tokio_tungstenite::tungstenite::Message::text(request))
        .await
        .map_err(|e| e.to_string())?;
    Ok(socket)
}

/// Waits for `wake` or `poll`, whichever comes first.
pub async fn pause(wake: &Notify, poll: Duration) {
    tokio::select! {
        () = wake.notified() => {}
        () = tokio::time::sleep(poll) => {}
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn blocks_with_transactions_and_the_block_after_each_wake_the_relayer() {
        let mut wakes = Wakes::default();
        let woken: Vec<bool> = [0, 0, 3, 0, 0, 1, 1, 0, 0]
            .into_iter()
            .map(|n| wakes.block(n))
            .collect();
        assert_eq!(
            woken,
            [false, false, true, true, false, true, true, true, false]
        );
    }

    #[test]
    fn subscription_messages_are_blocks_answers_or_ends() {
        let event = r#"{"jsonrpc":"2.0","id":1,"result":{"query":"tm.event='NewBlockEvents'",
            "data":{"type":"tendermint/event/NewBlockEvents","value":{"height":"7","events":[],"num_txs":"3"}},
            "events":{}}}"#;
        assert_eq!(parse(event), Message::Block { num_txs: 3 });
        assert_eq!(
            parse(r#"{"jsonrpc":"2.0","id":1,"result":{}}"#),
            Message::Other
        );
        assert!(matches!(
            parse(r#"{"jsonrpc":"2.0","id":1,"error":{"code":-32000,"message":"subscription was cancelled"}}"#),
            Message::Ended(reason) if reason.contains("cancelled")
        ));
        assert!(matches!(parse("garbage"), Message::Ended(_)));
        assert!(matches!(
            parse(r#"{"result":{"data":{"value":{"num_txs":"many"}}}}"#),
            Message::Ended(_)
        ));
    }

    /// A node that answers the subscription with one block and then drops the connection, counting
    /// connections: the follower makes the subscription again (after its backoff) and is woken again.
    #[tokio::test]
    async fn a_dropped_subscription_is_made_again_and_wakes_again() {
        use std::sync::atomic::{AtomicUsize, Ordering};

        use axum::extract::ws::{Message as WsMessage, WebSocketUpgrade};
        use axum::routing::get;
        use axum::Router;

        const EVENT: &str = r#"{"jsonrpc":"2.0","id":1,"result":{"query":"q","data":{"type":"tendermint/event/NewBlockEvents","value":{"height":"5","events":[],"num_txs":"1"}},"events":{}}}"#;
        let connections = Arc::new(AtomicUsize::new(0));
        let seen = connections.clone();
        let app = Router::new().route(
            "/websocket",
            get(move |upgrade: WebSocketUpgrade| {
                let seen = seen.clone();
                async move {
                    upgrade.on_upgrade(move |mut socket| async move {
                        seen.fetch_add(1, Ordering::SeqCst);
                        let _subscribe = socket.recv().await;
                        let answer = r#"{"jsonrpc":"2.0","id":1,"result":{}}"#;
                        let _ = socket.send(WsMessage::Text(answer.into())).await;
                        let _ = socket.send(WsMessage::Text(EVENT.into())).await;
                        // Dropped here: the connection ends.
                    })
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        let wake = Arc::new(Notify::new());
        let up = IntGauge::new("up", "up").unwrap();
        let follower = tokio::spawn(follow(format!("http://{addr}"), wake.clone(), up));
        tokio::time::timeout(Duration::from_secs(30), async {
            while connections.load(Ordering::SeqCst) < 2 {
                wake.notified().await;
            }
        })
        .await
        .unwrap();
        follower.abort();
    }
}
