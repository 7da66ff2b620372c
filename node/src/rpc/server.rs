//! The HTTP side: axum routes for JSON-RPC over POST, the URI form, the method list and the websocket
//! upgrade, with the limits of [`RpcLimits`] enforced before any work is done.
//!
//! - Connections: a counting listener answers connections beyond `max_open_connections` with
//!   `503 Service Unavailable` and a JSON-RPC error naming the limit, then closes them (it never stops
//!   accepting, so the node's other clients are not starved; at most [`MAX_PENDING_REFUSALS`] refusals
//!   are in flight, each bounded by [`REFUSAL_TIME`], and a flood beyond that is closed unanswered).
//! - Headers: names, values and the request target together at most `max_header_bytes` (431 beyond).
//! - Bodies: at most `max_body_bytes` (413 beyond, with a JSON-RPC error body).
//! - Batches: at most `max_batch_requests` requests.
//! - Time: each call is bounded by `request_timeout` (`broadcast_tx_commit` by its own timeout).
//! - Websocket buffers: [`WS_READ_BUFFER`] and [`WS_WRITE_BUFFER`] per client (tungstenite's defaults,
//!   128 KiB each, made an idle subscriber cost ~136 KiB), and at most [`WS_MAX_WRITE_BUFFER`] pending.

use std::collections::BTreeMap;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::extract::{Path, Query, Request, State, WebSocketUpgrade};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use basalt_consensus::types::Tx;
use serde_json::Value;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::backend::RpcBackend;
use super::jsonrpc::{
    err_response, ok_response, parse_request, Params, Request as RpcRequest, RpcErr,
};
use super::methods::{self, Ctx, METHODS};
use super::{ws, RpcError, RpcLimits};

/// Serves JSON-RPC on `listener` until `shutdown` completes; then stops accepting and lets open
/// requests finish.
pub async fn serve(
    listener: TcpListener,
    backend: Arc<dyn RpcBackend>,
    limits: RpcLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), RpcError> {
    let addr = listener
        .local_addr()
        .map_err(|source| RpcError::Listener { source })?;
    let listener = LimitedListener::new(listener, limits.max_open_connections);
    let app = router(Ctx::new(backend, limits));
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
        .map_err(|source| RpcError::Serve { addr, source })
}

/// Shared state of the routes.
#[derive(Clone)]
struct AppState {
    ctx: Ctx,
    ws_clients: Arc<Semaphore>,
}

fn router(ctx: Ctx) -> Router {
    let state = AppState {
        ws_clients: Arc::new(Semaphore::new(ctx.limits.max_subscription_clients)),
        ctx,
    };
    Router::new()
        .route("/", post(post_root).get(list_methods))
        .route("/websocket", get(websocket))
        .route("/{method}", get(uri_call))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            header_limit,
        ))
        .with_state(state)
}

/// A JSON body with a status.
fn json_response(status: StatusCode, body: &Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        basalt_jsonrpc::encode(body),
    )
        .into_response()
}

async fn header_limit(State(st): State<AppState>, req: Request, next: Next) -> Response {
    let size: usize = req
        .headers()
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len())
        .sum::<usize>()
        + req.uri().to_string().len();
    let max = st.ctx.limits.max_header_bytes;
    if size > max {
        let err = RpcErr::invalid_request(format!(
            "request headers of {size} bytes exceed max_header_bytes {max}"
        ));
        return json_response(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            &err_response(&Value::Null, &err),
        );
    }
    next.run(req).await
}

async fn post_root(State(st): State<AppState>, req: Request) -> Response {
    let max = st.ctx.limits.max_body_bytes;
    let too_large = || {
        let err = RpcErr::invalid_request(format!("request body exceeds max_body_bytes {max}"));
        json_response(
            StatusCode::PAYLOAD_TOO_LARGE,
            &err_response(&Value::Null, &err),
        )
    };
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > max as u64) {
        return too_large();
    }
    let Ok(bytes) = axum::body::to_bytes(req.into_body(), max).await else {
        return too_large();
    };
    match handle_body(&st.ctx, &bytes).await {
        Some(body) => json_response(StatusCode::OK, &body),
        None => StatusCode::NO_CONTENT.into_response(),
    }
}

/// Answers a JSON-RPC body (single or batch); `None` if it held only notifications.
pub async fn handle_body(ctx: &Ctx, bytes: &[u8]) -> Option<Value> {
    let parsed: Value = match serde_json::from_slice(bytes) {
        Ok(v) => v,
        Err(e) => {
            let err = RpcErr::parse(format!("error unmarshaling request: {e}"));
            return Some(err_response(&Value::Null, &err));
        }
    };
    match parsed {
        Value::Array(items) => {
            if items.is_empty() {
                return Some(err_response(
                    &Value::Null,
                    &RpcErr::invalid_request("empty batch"),
                ));
            }
            let max = ctx.limits.max_batch_requests;
            if items.len() > max {
                let err = RpcErr::invalid_request(format!(
                    "batch of {} requests exceeds max_batch_requests {max}",
                    items.len()
                ));
                return Some(err_response(&Value::Null, &err));
            }
            let submitted: Vec<Tx> = items.iter().filter_map(submitted_tx).collect();
            if submitted.len() > 1 {
                // The batch's transactions are verified together before each is admitted alone.
                ctx.backend.preverify_txs(submitted).await;
            }
            let mut out = Vec::with_capacity(items.len());
            for item in items {
                if let Some(r) = handle_one(ctx, item).await {
                    out.push(r);
                }
            }
            (!out.is_empty()).then_some(Value::Array(out))
        }
        single => handle_one(ctx, single).await,
    }
}

/// The transaction a batch item submits (`broadcast_tx_*` with a valid `tx`), if any; anything else
/// (other methods, bad requests) is `None` here and answered by [`handle_one`].
fn submitted_tx(item: &Value) -> Option<Tx> {
    let method = item.get("method")?.as_str()?;
    if !methods::BROADCAST_METHODS.contains(&method) {
        return None;
    }
    let req = parse_request(item.clone()).ok()?;
    let params = Params::from_json(req.params, methods::param_names(&req.method)?).ok()?;
    methods::tx_param(&params).ok()
}

async fn handle_one(ctx: &Ctx, item: Value) -> Option<Value> {
    let req: RpcRequest = match parse_request(item) {
        Ok(r) => r,
        Err((id, err)) => return Some(err_response(&id, &err)),
    };
    let id = req.id.clone()?;
    let result = match methods::param_names(&req.method) {
        None => Err(RpcErr::method_not_found(&req.method)),
        Some(names) => match Params::from_json(req.params, names) {
            Ok(params) => call_with_timeout(ctx, &req.method, &params).await,
            Err(e) => Err(e),
        },
    };
    Some(match result {
        Ok(v) => ok_response(&id, v),
        Err(e) => err_response(&id, &e),
    })
}

/// Calls a method within its time bound.
pub async fn call_with_timeout(ctx: &Ctx, method: &str, params: &Params) -> Result<Value, RpcErr> {
    let limit = ctx.timeout_for(method);
    match tokio::time::timeout(limit, methods::call(ctx, method, params)).await {
        Ok(r) => r,
        Err(_) => Err(RpcErr::internal(format!(
            "request timed out after {}",
            humantime::format_duration(limit)
        ))),
    }
}

async fn uri_call(
    State(st): State<AppState>,
    Path(method): Path<String>,
    req: Request,
) -> Response {
    // CometBFT's URI form answers with id -1.
    let id = Value::from(-1);
    let Some(names) = methods::param_names(&method) else {
        return json_response(
            StatusCode::NOT_FOUND,
            &err_response(&id, &RpcErr::method_not_found(&method)),
        );
    };
    let query = match Query::<BTreeMap<String, String>>::try_from_uri(req.uri()) {
        Ok(Query(q)) => q,
        Err(e) => {
            let err = RpcErr::invalid_param("query string", e.body_text());
            return json_response(StatusCode::OK, &err_response(&id, &err));
        }
    };
    if let Some(unknown) = query.keys().find(|k| !names.contains(&k.as_str())) {
        let err = RpcErr::invalid_param(unknown, format!("not a parameter of {method}"));
        return json_response(StatusCode::OK, &err_response(&id, &err));
    }
    let body = match call_with_timeout(&st.ctx, &method, &Params::Uri(query)).await {
        Ok(v) => ok_response(&id, v),
        Err(e) => err_response(&id, &e),
    };
    json_response(StatusCode::OK, &body)
}

async fn list_methods() -> Response {
    let mut html = String::from(
        "<html><body><br>Available endpoints:<br><a href=\"//websocket\">//websocket</a><br>",
    );
    for (method, params) in METHODS {
        let args: Vec<String> = params.iter().map(|p| format!("{p}=_")).collect();
        let link = if args.is_empty() {
            format!("//{method}")
        } else {
            format!("//{method}?{}", args.join("&"))
        };
        html.push_str(&format!("<a href=\"{link}\">{link}</a><br>"));
    }
    html.push_str("</body></html>");
    ([(header::CONTENT_TYPE, "text/html")], html).into_response()
}

async fn websocket(State(st): State<AppState>, upgrade: WebSocketUpgrade) -> Response {
    let Ok(permit) = st.ws_clients.clone().try_acquire_owned() else {
        let err = RpcErr::server(format!(
            "max_subscription_clients {} reached",
            st.ctx.limits.max_subscription_clients
        ));
        return json_response(
            StatusCode::SERVICE_UNAVAILABLE,
            &err_response(&Value::Null, &err),
        );
    };
    let max = st.ctx.limits.max_body_bytes;
    let ctx = st.ctx.clone();
    upgrade
        .read_buffer_size(WS_READ_BUFFER)
        .write_buffer_size(WS_WRITE_BUFFER)
        .max_write_buffer_size(WS_MAX_WRITE_BUFFER)
        .max_message_size(max)
        .max_frame_size(max)
        .on_upgrade(move |socket| ws::run(socket, ctx, permit))
        .into_response()
}

/// Read buffer of a websocket client, allocated when it connects. Requests are small (the body limit
/// bounds them) and a larger one is read in several steps, so a small buffer costs nothing but keeps
/// thousands of idle subscribers cheap.
pub const WS_READ_BUFFER: usize = 4 * 1024;
/// Bytes collected before a websocket write goes to the socket (events are written whole either way).
pub const WS_WRITE_BUFFER: usize = 16 * 1024;
/// Most bytes a websocket client's write buffer may hold while its socket does not take them (beyond
/// the client's bounded queue of messages): above the largest event, a block of 16 MiB in JSON.
pub const WS_MAX_WRITE_BUFFER: usize = 64 * 1024 * 1024;

/// Most over-the-limit connections answered at once; beyond that they are closed unanswered, so a flood
/// costs the node no more than the refusals it can afford.
pub const MAX_PENDING_REFUSALS: usize = 32;

/// How long one refusal may take: writing the answer and draining what the client sent.
pub const REFUSAL_TIME: std::time::Duration = std::time::Duration::from_secs(1);

/// What a refused connection may send us before we close it (read and discarded).
const REFUSAL_DRAIN_BYTES: usize = 64 * 1024;

/// A listener that holds one permit per open connection and refuses connections beyond the limit as
/// soon as they are accepted (see the module docs). Serve it with `axum::serve`.
pub struct LimitedListener {
    inner: TcpListener,
    permits: Arc<Semaphore>,
    /// `max_open_connections`, for the refusal message.
    limit: usize,
    /// Refusals in flight ([`MAX_PENDING_REFUSALS`]).
    refusals: Arc<Semaphore>,
}

impl LimitedListener {
    /// `inner`, with at most `max_open_connections` connections open at once.
    pub fn new(inner: TcpListener, max_open_connections: usize) -> LimitedListener {
        LimitedListener {
            inner,
            permits: Arc::new(Semaphore::new(max_open_connections)),
            limit: max_open_connections,
            refusals: Arc::new(Semaphore::new(MAX_PENDING_REFUSALS)),
        }
    }
}

/// Answers a connection beyond `max_open_connections` with `503` and a JSON-RPC error naming the limit
/// (as CometBFT's clients get an answer that says why), then closes it. The request is drained after the
/// answer is sent so that closing does not reset the connection before the client has read it.
async fn refuse(mut stream: TcpStream, limit: usize, _slot: OwnedSemaphorePermit) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let err = RpcErr::server(format!(
        "rpc.max_open_connections {limit} reached: too many open connections, try again later"
    ));
    let body = basalt_jsonrpc::encode(&err_response(&Value::Null, &err));
    let response = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n\
         content-length: {}\r\nretry-after: 1\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = tokio::time::timeout(REFUSAL_TIME, async {
        stream.write_all(response.as_bytes()).await?;
        stream.shutdown().await?;
        let mut buf = [0u8; 4096];
        let mut drained = 0;
        while drained < REFUSAL_DRAIN_BYTES {
            match stream.read(&mut buf).await? {
                0 => break,
                n => drained += n,
            }
        }
        Ok::<(), io::Error>(())
    })
    .await;
}

impl axum::serve::Listener for LimitedListener {
    type Io = CountedStream;
    type Addr = std::net::SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let (stream, addr) = match self.inner.accept().await {
                Ok(pair) => pair,
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(error = %e, "rpc accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            };
            match self.permits.clone().try_acquire_owned() {
                Ok(permit) => {
                    return (
                        CountedStream {
                            inner: stream,
                            _permit: permit,
                        },
                        addr,
                    )
                }
                Err(_) => {
                    tracing::debug!(%addr, "rpc connection refused: max_open_connections reached");
                    if let Ok(slot) = self.refusals.clone().try_acquire_owned() {
                        tokio::spawn(refuse(stream, self.limit, slot));
                    }
                }
            }
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.inner.local_addr()
    }
}

/// A connection holding its slot until dropped.
pub struct CountedStream {
    inner: TcpStream,
    _permit: OwnedSemaphorePermit,
}

impl AsyncRead for CountedStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for CountedStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}
