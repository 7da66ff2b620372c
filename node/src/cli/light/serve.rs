//! The proxy's JSON-RPC server: CometBFT's methods and shapes (the node's own [`crate::rpc::shapes`])
//! for what can be checked against a verified header, the primary's answers passed through only for
//! transaction submission, and `-32601` for everything else (an answer that cannot be verified is
//! not served).
//!
//! Heights: the proxy's "latest" is one below the highest verified header, because the state after a
//! block is committed to by the *next* header's `app_hash`: `status` reports that block with the app
//! hash after it, and `abci_query` at height 0 reads that state.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use basalt_consensus::light::VerifiedBlock;
use basalt_consensus::types::encode;
use basalt_jsonrpc::{err_response, ok_response, parse_request, BytesEncoding, Params, RpcErr};
use basalt_state::app::{verify_answer, QueryTarget};
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use super::client::LightClient;
use super::LightError;
use crate::rpc::methods::{page, param_names, per_page};
use crate::rpc::proof::{encode_commitment_proof, PROOF_OP_TYPE};
use crate::rpc::server::LimitedListener;
use crate::rpc::shapes::{self, b64, rfc3339_ms};

/// Largest request body.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;
/// Most requests in one batch.
pub const MAX_BATCH: usize = 20;
/// Most connections open at once; more are answered `503` and closed (the node's listener).
pub const MAX_CONNECTIONS: usize = 256;
/// Most requests answered at once; more are refused at once rather than queued.
pub const MAX_IN_FLIGHT: usize = 64;
/// Longest one request may take (a verification far from any trusted header fetches many blocks).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// The methods served.
pub const SERVED: [&str; 11] = [
    "health",
    "status",
    "header",
    "commit",
    "validators",
    "block",
    "light_block",
    "abci_query",
    "broadcast_tx_async",
    "broadcast_tx_sync",
    "broadcast_tx_commit",
];

#[derive(Clone)]
struct Shared {
    client: Arc<LightClient>,
    in_flight: Arc<Semaphore>,
}

/// Serves on `listener` until `shutdown` completes.
pub async fn serve(
    listener: TcpListener,
    client: Arc<LightClient>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let shared = Shared {
        client,
        in_flight: Arc::new(Semaphore::new(MAX_IN_FLIGHT)),
    };
    let app = Router::new()
        .route("/", post(post_root))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(shared);
    axum::serve(LimitedListener::new(listener, MAX_CONNECTIONS), app)
        .with_graceful_shutdown(shutdown)
        .await
}

fn json_response(status: StatusCode, body: &Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        basalt_jsonrpc::encode(body),
    )
        .into_response()
}

async fn post_root(State(shared): State<Shared>, body: axum::body::Bytes) -> Response {
    let Ok(_permit) = shared.in_flight.clone().try_acquire_owned() else {
        let err = RpcErr::internal(format!("more than {MAX_IN_FLIGHT} requests in flight"));
        return json_response(
            StatusCode::SERVICE_UNAVAILABLE,
            &err_response(&Value::Null, &err),
        );
    };
    let parsed: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => {
            let err = RpcErr::parse(format!("error unmarshaling request: {e}"));
            return json_response(StatusCode::OK, &err_response(&Value::Null, &err));
        }
    };
    let answer = match parsed {
        Value::Array(items) if items.is_empty() || items.len() > MAX_BATCH => {
            let err = RpcErr::invalid_request(format!(
                "a batch must hold 1 to {MAX_BATCH} requests, got {}",
                items.len()
            ));
            Some(err_response(&Value::Null, &err))
        }
        Value::Array(items) => {
            let mut out = Vec::with_capacity(items.len());
            for item in items {
                out.extend(handle_one(&shared.client, item).await);
            }
            (!out.is_empty()).then_some(Value::Array(out))
        }
        single => handle_one(&shared.client, single).await,
    };
    match answer {
        Some(body) => json_response(StatusCode::OK, &body),
        None => StatusCode::NO_CONTENT.into_response(),
    }
}

async fn handle_one(client: &LightClient, item: Value) -> Option<Value> {
    let request = match parse_request(item) {
        Ok(r) => r,
        Err((id, err)) => return Some(err_response(&id, &err)),
    };
    let id = request.id.clone()?;
    let result = match tokio::time::timeout(REQUEST_TIMEOUT, call(client, request)).await {
        Ok(r) => r,
        Err(_) => Err(RpcErr::internal(format!(
            "not verified within {REQUEST_TIMEOUT:?}"
        ))),
    };
    Some(match result {
        Ok(v) => ok_response(&id, v),
        Err(e) => err_response(&id, &e),
    })
}

fn failed(e: LightError) -> RpcErr {
    RpcErr::internal(e.to_string())
}

async fn call(client: &LightClient, request: basalt_jsonrpc::Request) -> Result<Value, RpcErr> {
    let Some(&method) = SERVED.iter().find(|m| **m == request.method) else {
        let mut err = RpcErr::method_not_found(&request.method);
        err.data
            .push_str(": the light proxy serves only what it can verify");
        return Err(err);
    };
    let names = param_names(method).unwrap_or(&[]);
    let raw_params = request.params.clone();
    let params = Params::from_json(request.params, names)?;
    match method {
        "health" => Ok(json!({})),
        "status" => status(client).await,
        "header" => {
            let v = at(client, &params).await?;
            Ok(json!({"header": shapes::header(&v.block.header)}))
        }
        "commit" => {
            let v = at(client, &params).await?;
            let commit =
                shapes::commit(&v.block.commit, &v.block.validators, v.block.header.time_ms)
                    .map_err(|e| RpcErr::internal(e.to_string()))?;
            // A verified +2/3 commit of the header, whichever one the primary kept.
            Ok(json!({
                "signed_header": {"header": shapes::header(&v.block.header), "commit": commit},
                "canonical": true,
            }))
        }
        "validators" => validators(client, &params).await,
        "block" => block(client, &params).await,
        "light_block" => {
            let v = at(client, &params).await?;
            let bytes = encode(&(
                &v.block.header,
                &v.block.commit,
                &v.block.validators,
                &v.next_validators,
            ));
            Ok(json!({
                "height": v.height().0.to_string(),
                "canonical": true,
                "light_block": b64(&bytes),
            }))
        }
        "abci_query" => abci_query(client, &params).await,
        "broadcast_tx_async" | "broadcast_tx_sync" | "broadcast_tx_commit" => client
            .primary()
            .call(method, raw_params)
            .await
            .map_err(failed),
        _ => Err(RpcErr::method_not_found(method)),
    }
}

/// The height the proxy calls latest: one below the highest verified header (see the module docs).
async fn served_latest(client: &LightClient) -> Result<u64, RpcErr> {
    let top = client.latest().await.height().0;
    if top < 2 {
        return Err(RpcErr::internal(
            "no block with a verified successor yet".to_owned(),
        ));
    }
    Ok(top - 1)
}

/// The verified block of the `height` parameter (absent: [`served_latest`]).
async fn at(client: &LightClient, params: &Params) -> Result<VerifiedBlock, RpcErr> {
    let height = match params.opt_i64("height")? {
        None => served_latest(client).await?,
        Some(h) if h <= 0 => {
            return Err(RpcErr::internal(format!(
                "height must be greater than 0, but got {h}"
            )))
        }
        Some(h) => h as u64,
    };
    client.verified(height).await.map_err(failed)
}

async fn status(client: &LightClient) -> Result<Value, RpcErr> {
    let mut status = client.primary().status().await.map_err(failed)?;
    let latest = served_latest(client).await?;
    let block = client.verified(latest).await.map_err(failed)?;
    let after = client.verified(latest + 1).await.map_err(failed)?;
    let root = &client.root().block.header;
    status["sync_info"] = json!({
        "latest_block_hash": block.block.header.hash().to_hex_upper(),
        "latest_app_hash": after.block.header.app_hash.to_hex_upper(),
        "latest_block_height": latest.to_string(),
        "latest_block_time": rfc3339_ms(block.block.header.time_ms),
        "earliest_block_hash": root.hash().to_hex_upper(),
        "earliest_app_hash": root.app_hash.to_hex_upper(),
        "earliest_block_height": root.height.0.to_string(),
        "earliest_block_time": rfc3339_ms(root.time_ms),
        "catching_up": false,
    });
    Ok(status)
}

async fn validators(client: &LightClient, params: &Params) -> Result<Value, RpcErr> {
    let v = at(client, params).await?;
    let set = &v.block.validators;
    // The node's paging rules (CometBFT's), so clients page through the proxy as through a node.
    let per_page = per_page(params, "per_page")?;
    let page = page(params, per_page, set.len())?;
    let start = (page - 1) * per_page;
    let end = (start + per_page).min(set.len());
    Ok(json!({
        "block_height": v.height().0.to_string(),
        "validators": shapes::validators(set, start, end),
        "count": (end - start).to_string(),
        "total": set.len().to_string(),
    }))
}

async fn block(client: &LightClient, params: &Params) -> Result<Value, RpcErr> {
    let v = at(client, params).await?;
    let height = v.height().0;
    let block = client.primary().block(height).await.map_err(failed)?;
    let hash = v.block.header.hash();
    if block.id().hash != hash {
        return Err(failed(LightError::NotVerified {
            what: format!("the primary's block of height {height}"),
            reason: format!(
                "its header hashes to {}, the verified one to {hash}",
                block.id().hash
            ),
        }));
    }
    let time_ms = block.header().time_ms;
    let last_commit = match block.last_commit() {
        None => shapes::empty_commit(),
        Some(c) => {
            // The set that signed it is the verified previous block's.
            let previous = client.verified(c.height.0).await.map_err(failed)?;
            shapes::commit(c, &previous.block.validators, time_ms)
                .map_err(|e| RpcErr::internal(e.to_string()))?
        }
    };
    let evidence = block
        .evidence()
        .iter()
        .map(|e| shapes::evidence(e, None, time_ms))
        .collect();
    Ok(json!({
        "block_id": shapes::block_id(&hash),
        "block": shapes::block(&block, last_commit, evidence),
    }))
}

async fn abci_query(client: &LightClient, params: &Params) -> Result<Value, RpcErr> {
    let path = params.opt_str("path")?.unwrap_or_default();
    let data = params
        .opt_bytes("data", BytesEncoding::Hex)?
        .unwrap_or_default();
    let prove = params.opt_bool("prove")?.unwrap_or(false);
    let version = match params.opt_i64("height")?.unwrap_or(0) {
        h if h < 0 => {
            return Err(RpcErr::internal(format!(
                "height cannot be negative, got {h}"
            )))
        }
        0 => served_latest(client).await?,
        h => h as u64,
    };
    let target = QueryTarget::of(&path, &data).map_err(|e| RpcErr::internal(e.to_string()))?;
    // The state after block `version` is committed to by header `version + 1`.
    let header = client.verified(version + 1).await.map_err(failed)?;
    let answer = client
        .primary()
        .query(&path, &data, version)
        .await
        .map_err(failed)?;
    let what = || format!("the answer to {path:?} at height {version}");
    if answer.height != version {
        return Err(failed(LightError::NotVerified {
            what: what(),
            reason: format!("it is for height {}", answer.height),
        }));
    }
    verify_answer(
        &target,
        &answer.value,
        &answer.proof,
        &header.block.header.app_hash,
    )
    .map_err(|e| {
        failed(LightError::NotVerified {
            what: what(),
            reason: e.to_string(),
        })
    })?;
    let key = target.into_key();
    // The proof re-encoded from what was verified, not the primary's bytes passed on.
    let proof_ops = prove.then(|| {
        json!({"ops": [{"type": PROOF_OP_TYPE, "key": b64(&key), "data": b64(&encode_commitment_proof(&answer.proof))}]})
    });
    Ok(json!({"response": {
        "code": 0, "log": "", "info": "", "index": "0",
        "key": b64(&key), "value": b64(&answer.value),
        "proofOps": proof_ops, "height": version.to_string(), "codespace": "",
    }}))
}
