//! `/websocket`: JSON-RPC over a websocket, with `subscribe`, `unsubscribe` and `unsubscribe_all` for
//! queries on CometBFT v0.38's event types (see [`super::query`]), and every HTTP method too.
//!
//! Block events (`NewBlock`, `NewBlockHeader`, `NewBlockEvents`, `Tx`, `NewEvidence`) and consensus
//! events (`NewRound`, `Vote`, `Polka`, ...) come from two channels: a client listens to a channel only
//! while it has a subscription there, so block subscribers are not woken for every vote.
//!
//! Each client has one reader loop and one writer task joined by a bounded queue of
//! `ws_send_queue` messages. Events are queued without waiting: when the queue is full (the client
//! reads too slowly), or the node's event channel overflowed for this client, the client gets an error
//! message and is disconnected. The node never waits for a client. Clients are pinged every
//! `ws_ping_interval`; one that sends nothing, not even a pong, for `ws_read_timeout` is disconnected.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{Message, WebSocket};
use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::sync::{broadcast, mpsc, OwnedSemaphorePermit};

use super::backend::{ConsensusEvent, IndexedTx, NewBlockEvent, NodeEvent};
use super::jsonrpc::{err_response, ok_response, parse_request, Params, RpcErr};
use super::methods::{self, Ctx};
use super::query::{matches_plain_event, EventKind, QueryMatch, TxQuery};
use super::server::call_with_timeout;
use super::shapes;

/// How long a closing client's queued messages may take to flush before the socket is dropped.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(2);

/// One subscription of a client.
struct Subscription {
    query: TxQuery,
    kind: EventKind,
    id: Value,
}

/// Why a client loop ends early.
enum Stop {
    /// The client went away or asked to close.
    Closed,
    /// The client's queue is full or it missed events: it was sent `message` and is disconnected.
    TooSlow,
}

/// Serves one websocket client until it closes or is disconnected. `_permit` holds the client's slot
/// among `max_subscription_clients`.
pub async fn run(socket: WebSocket, ctx: Ctx, _permit: OwnedSemaphorePermit) {
    let (mut sink, mut stream) = socket.split();
    let capacity = ctx.limits.ws_send_queue.max(2);
    let (out, mut out_rx) = mpsc::channel::<Message>(capacity);
    let writer = tokio::spawn(async move {
        while let Some(m) = out_rx.recv().await {
            if sink.send(m).await.is_err() {
                return;
            }
        }
        let _ = sink.close().await;
    });
    let read_timeout = ctx.limits.ws_read_timeout;
    let ping_interval = ctx.limits.ws_ping_interval.max(Duration::from_millis(10));
    let mut pings =
        tokio::time::interval_at(tokio::time::Instant::now() + ping_interval, ping_interval);
    pings.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_heard = tokio::time::Instant::now();
    let mut client = Client {
        ctx,
        out,
        subs: Vec::new(),
        events: None,
        consensus: None,
    };
    loop {
        let step = tokio::select! {
            msg = stream.next() => {
                last_heard = tokio::time::Instant::now();
                match msg {
                    None | Some(Err(_)) | Some(Ok(Message::Close(_))) => Err(Stop::Closed),
                    Some(Ok(Message::Text(text))) => client.on_request(text.as_bytes()).await,
                    Some(Ok(Message::Binary(bytes))) => client.on_request(&bytes).await,
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => Ok(()),
                }
            }
            event = recv(&mut client.events) => client.on_event(event),
            event = recv(&mut client.consensus) => client.on_consensus_event(event),
            _ = pings.tick() => client.keepalive(last_heard.elapsed(), read_timeout),
        };
        match step {
            Ok(()) => {}
            Err(Stop::Closed) | Err(Stop::TooSlow) => break,
        }
    }
    drop(client);
    // The writer sends what is queued (including a final error) and closes; a client that does not
    // read is cut off after DRAIN_TIMEOUT.
    let abort = writer.abort_handle();
    if tokio::time::timeout(DRAIN_TIMEOUT, writer).await.is_err() {
        abort.abort();
    }
}

/// Waits for the next event, or forever when there are no subscriptions on that channel.
async fn recv<T: Clone>(
    events: &mut Option<broadcast::Receiver<T>>,
) -> Result<T, broadcast::error::RecvError> {
    match events {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

impl Client {
    /// On each ping tick: a client silent for longer than `read_timeout` is gone (a dead TCP peer is
    /// otherwise only noticed when a write fails, which an idle subscription may never do); anyone else
    /// is pinged, and its pong counts as hearing from it.
    fn keepalive(&mut self, silent: Duration, read_timeout: Duration) -> Result<(), Stop> {
        if silent > read_timeout {
            return Err(Stop::Closed);
        }
        self.out
            .try_send(Message::Ping(Default::default()))
            .map_err(|_| Stop::TooSlow)
    }
}

struct Client {
    ctx: Ctx,
    out: mpsc::Sender<Message>,
    subs: Vec<Subscription>,
    /// Block events, while some subscription wants them.
    events: Option<broadcast::Receiver<NodeEvent>>,
    /// Consensus events, while some subscription wants them.
    consensus: Option<broadcast::Receiver<Arc<ConsensusEvent>>>,
}

impl Client {
    /// Queues `msg`, keeping the last slot for the error that announces a disconnection.
    fn push(&self, msg: &Value) -> Result<(), Stop> {
        if self.out.capacity() <= 1 {
            let err = RpcErr::server(
                "subscription was cancelled (reason: client is not pulling messages fast enough)",
            );
            let _ = self.out.try_send(Message::Text(
                basalt_jsonrpc::encode(&err_response(&Value::Null, &err)).into(),
            ));
            return Err(Stop::TooSlow);
        }
        self.out
            .try_send(Message::Text(basalt_jsonrpc::encode(msg).into()))
            .map_err(|_| Stop::TooSlow)
    }

    async fn on_request(&mut self, bytes: &[u8]) -> Result<(), Stop> {
        let value: Value = match serde_json::from_slice(bytes) {
            Ok(v) => v,
            Err(e) => {
                let err = RpcErr::parse(format!("error unmarshaling request: {e}"));
                return self.push(&err_response(&Value::Null, &err));
            }
        };
        let req = match parse_request(value) {
            Ok(r) => r,
            Err((id, err)) => return self.push(&err_response(&id, &err)),
        };
        let Some(id) = req.id.clone() else {
            return Ok(()); // a notification gets no answer
        };
        let result = match req.method.as_str() {
            "subscribe" => self.subscribe(req.params, &id),
            "unsubscribe" => self.unsubscribe(req.params),
            "unsubscribe_all" => {
                self.subs.clear();
                self.listen();
                Ok(json!({}))
            }
            method => match methods::param_names(method) {
                None => Err(RpcErr::method_not_found(method)),
                Some(names) => match Params::from_json(req.params, names) {
                    Ok(p) => call_with_timeout(&self.ctx, method, &p).await,
                    Err(e) => Err(e),
                },
            },
        };
        self.push(&match result {
            Ok(v) => ok_response(&id, v),
            Err(e) => err_response(&id, &e),
        })
    }

    fn subscribe(&mut self, params: Value, id: &Value) -> Result<Value, RpcErr> {
        let params = Params::from_json(params, &["query"])?;
        let text = params.req_str("query")?;
        let query = TxQuery::parse(&text).map_err(|e| RpcErr::invalid_param("query", e))?;
        let Some(kind) = query.event_kind() else {
            return Err(RpcErr::invalid_param(
                "query",
                format!("must contain tm.event = one of {}", EventKind::names()),
            ));
        };
        if self.subs.iter().any(|s| s.query.as_str() == text) {
            return Err(RpcErr::internal("already subscribed"));
        }
        let max = self.ctx.limits.max_subscriptions_per_client;
        if self.subs.len() >= max {
            return Err(RpcErr::internal(format!(
                "max_subscriptions_per_client {max} reached"
            )));
        }
        self.subs.push(Subscription {
            query,
            kind,
            id: id.clone(),
        });
        self.listen();
        Ok(json!({}))
    }

    /// Listens to each event channel exactly while some subscription wants it.
    fn listen(&mut self) {
        let wants_consensus = self.subs.iter().any(|s| s.kind.is_consensus());
        let wants_blocks = self.subs.iter().any(|s| !s.kind.is_consensus());
        match (wants_blocks, self.events.is_some()) {
            (true, false) => self.events = Some(self.ctx.backend.subscribe()),
            (false, true) => self.events = None,
            _ => {}
        }
        match (wants_consensus, self.consensus.is_some()) {
            (true, false) => self.consensus = Some(self.ctx.backend.subscribe_consensus()),
            (false, true) => self.consensus = None,
            _ => {}
        }
    }

    fn unsubscribe(&mut self, params: Value) -> Result<Value, RpcErr> {
        let params = Params::from_json(params, &["query"])?;
        let text = params.req_str("query")?;
        let before = self.subs.len();
        self.subs.retain(|s| s.query.as_str() != text);
        if self.subs.len() == before {
            return Err(RpcErr::internal("subscription not found"));
        }
        self.listen();
        Ok(json!({}))
    }

    /// The event received, or the client is told why its subscriptions end (it missed events, or the
    /// node is stopping) and disconnected.
    fn received<T>(&self, event: Result<T, broadcast::error::RecvError>) -> Result<T, Stop> {
        let (reason, stop) = match event {
            Ok(e) => return Ok(e),
            Err(broadcast::error::RecvError::Lagged(_)) => {
                ("client is not pulling messages fast enough", Stop::TooSlow)
            }
            Err(broadcast::error::RecvError::Closed) => ("CometBFT exited", Stop::Closed),
        };
        let err = RpcErr::server(format!("subscription was cancelled (reason: {reason})"));
        let _ = self.out.try_send(Message::Text(
            basalt_jsonrpc::encode(&err_response(&Value::Null, &err)).into(),
        ));
        Err(stop)
    }

    fn on_consensus_event(
        &mut self,
        event: Result<Arc<ConsensusEvent>, broadcast::error::RecvError>,
    ) -> Result<(), Stop> {
        let event = self.received(event)?;
        let mut data = None;
        for sub in self.subs.iter() {
            if sub.kind.name() != event.name() || !matches_plain_event(&sub.query, sub.kind) {
                continue;
            }
            let data = data.get_or_insert_with(|| {
                (
                    shapes::consensus_event(&event),
                    shapes::event_map(event.name(), &[], &[]),
                )
            });
            self.push(&ok_response(&sub.id, event_message(&sub.query, data)))?;
        }
        Ok(())
    }

    fn on_event(
        &mut self,
        event: Result<NodeEvent, broadcast::error::RecvError>,
    ) -> Result<(), Stop> {
        let event = self.received(event)?;
        match &event {
            NodeEvent::NewBlock(b) => {
                // One rendering per kind, shared by the subscriptions that want it.
                let (mut block, mut header, mut events) = (None, None, None);
                let height = b.block.height().0;
                for sub in self.subs.iter() {
                    if !sub.query.matches_block_event(sub.kind, height, &b.events) {
                        continue;
                    }
                    let data = match sub.kind {
                        EventKind::NewBlock => {
                            &*block.get_or_insert_with(|| new_block_data(&self.ctx, b))
                        }
                        EventKind::NewBlockHeader => {
                            &*header.get_or_insert_with(|| new_block_header_data(&self.ctx, b))
                        }
                        EventKind::NewBlockEvents => {
                            &*events.get_or_insert_with(|| new_block_events_data(b))
                        }
                        _ => continue,
                    };
                    self.push(&ok_response(&sub.id, event_message(&sub.query, data)))?;
                }
            }
            NodeEvent::Tx(t) => {
                let mut data = None;
                for sub in self.subs.iter().filter(|s| s.kind == EventKind::Tx) {
                    if !sub.query.matches(t) {
                        continue;
                    }
                    let data = data.get_or_insert_with(|| tx_data(t));
                    self.push(&ok_response(&sub.id, event_message(&sub.query, data)))?;
                }
            }
            NodeEvent::Evidence {
                evidence,
                height,
                time_ms,
            } => {
                let mut data = None;
                for sub in self
                    .subs
                    .iter()
                    .filter(|s| s.kind == EventKind::NewEvidence)
                {
                    if !matches_plain_event(&sub.query, EventKind::NewEvidence) {
                        continue;
                    }
                    let data = data.get_or_insert_with(|| {
                        let set = self.ctx.backend.validators(evidence.height().0);
                        let set = set.ok().flatten();
                        let value = json!({
                            "evidence": shapes::evidence(evidence, set.as_ref(), *time_ms),
                            "height": height.to_string(),
                        });
                        (
                            json!({"type": "tendermint/event/NewEvidence", "value": value}),
                            shapes::event_map("NewEvidence", &[], &[]),
                        )
                    });
                    self.push(&ok_response(&sub.id, event_message(&sub.query, data)))?;
                }
            }
        }
        Ok(())
    }
}

fn event_message(query: &TxQuery, data: &(Value, Value)) -> Value {
    json!({"query": query.as_str(), "data": data.0, "events": data.1})
}

/// The `data` and `events` of a NewBlock event message.
fn new_block_data(ctx: &Ctx, e: &Arc<NewBlockEvent>) -> (Value, Value) {
    let block = methods::block_json(ctx.backend.as_ref(), &e.block).unwrap_or(Value::Null);
    let tx_results: Vec<Value> = e.tx_results.iter().map(shapes::tx_result).collect();
    let data = json!({
        "type": "tendermint/event/NewBlock",
        "value": {
            "block": block,
            "block_id": shapes::block_id(&e.block.id().hash),
            "result_finalize_block": {
                "events": shapes::events(&e.events),
                "tx_results": tx_results,
                "validator_updates": [],
                "consensus_param_updates": null,
                "app_hash": shapes::b64(&e.app_hash.0),
            },
        },
    });
    let height = e.block.height().0.to_string();
    let events = shapes::event_map("NewBlock", &e.events, &[("block.height", height)]);
    (data, events)
}

/// The `data` and `events` of a NewBlockHeader event message (CometBFT v0.38: the header only, and no
/// block events in the event map).
fn new_block_header_data(ctx: &Ctx, e: &Arc<NewBlockEvent>) -> (Value, Value) {
    let block = methods::block_json(ctx.backend.as_ref(), &e.block).unwrap_or(Value::Null);
    let data = json!({
        "type": "tendermint/event/NewBlockHeader",
        "value": {"header": block["header"]},
    });
    let height = e.block.height().0.to_string();
    let events = shapes::event_map("NewBlockHeader", &[], &[("block.height", height)]);
    (data, events)
}

/// The `data` and `events` of a NewBlockEvents event message: height, finalize-block events, tx count.
fn new_block_events_data(e: &Arc<NewBlockEvent>) -> (Value, Value) {
    let height = e.block.height().0.to_string();
    let data = json!({
        "type": "tendermint/event/NewBlockEvents",
        "value": {
            "height": height,
            "events": shapes::events(&e.events),
            "num_txs": e.block.txs().len().to_string(),
        },
    });
    let events = shapes::event_map("NewBlockEvents", &e.events, &[("block.height", height)]);
    (data, events)
}

/// The `data` and `events` of a Tx event message.
fn tx_data(t: &IndexedTx) -> (Value, Value) {
    let r = &t.result;
    let data = json!({
        "type": "tendermint/event/Tx",
        "value": {"TxResult": {
            "height": t.height.to_string(),
            "index": t.index,
            "tx": shapes::b64(t.tx.as_bytes()),
            "result": {
                "code": r.code,
                "data": null,
                "log": r.log,
                "info": "",
                "gas_wanted": r.gas_wanted.to_string(),
                "gas_used": r.gas_used.to_string(),
                "events": shapes::events(&r.events),
                "codespace": "",
            },
        }},
    });
    let events = shapes::event_map(
        "Tx",
        &r.events,
        &[
            ("tx.hash", t.tx.hash().to_hex_upper()),
            ("tx.height", t.height.to_string()),
        ],
    );
    (data, events)
}
