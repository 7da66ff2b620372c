//! The RPC methods: parameters in, CometBFT v0.38 JSON out. Handler errors are reported the way
//! CometBFT reports them (-32603 with the reason in `data`); bad parameters as -32602 naming the
//! parameter.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use tokio::sync::{broadcast, Semaphore};

use basalt_consensus::types::{merkle_proof, Block, Commit, Hash, Tx, TxError, ValidatorSet};

use super::backend::{
    BackendError, ConsensusStateView, IndexedTx, NodeEvent, RoundStep, RpcBackend, SearchError,
};
use super::jsonrpc::{BytesEncoding, Params, RpcErr};
use super::proof::{encode_commitment_proof, PROOF_OP_TYPE};
use super::query::TxQuery;
use super::shapes::{self, b64, rfc3339_ms};
use super::RpcLimits;

/// Most block metas `blockchain` returns (CometBFT's limit).
pub const MAX_BLOCKCHAIN_METAS: u64 = 20;
/// Default `per_page` of paginated methods.
pub const DEFAULT_PER_PAGE: usize = 30;
/// Largest `per_page` of paginated methods.
pub const MAX_PER_PAGE: usize = 100;
/// Largest genesis `genesis` returns whole (CometBFT refuses larger ones too).
pub const MAX_GENESIS_BYTES: usize = 16 * 1024 * 1024;
/// Raw genesis bytes per `genesis_chunked` chunk (CometBFT's `genesisChunkSize`).
pub const GENESIS_CHUNK_BYTES: usize = 16 * 1024 * 1024;

/// Every method served by HTTP, with its parameter names in positional order.
pub const METHODS: &[(&str, &[&str])] = &[
    ("health", &[]),
    ("status", &[]),
    ("net_info", &[]),
    ("genesis", &[]),
    ("blockchain", &["minHeight", "maxHeight"]),
    ("block", &["height"]),
    ("block_by_hash", &["hash"]),
    ("header", &["height"]),
    ("header_by_hash", &["hash"]),
    ("commit", &["height"]),
    ("light_block", &["height"]),
    ("raw_block", &["height"]),
    ("validators", &["height", "page", "per_page"]),
    ("consensus_state", &[]),
    ("dump_consensus_state", &[]),
    ("abci_info", &[]),
    ("abci_query", &["path", "data", "height", "prove"]),
    ("check_tx", &["tx"]),
    ("broadcast_tx_async", &["tx"]),
    ("broadcast_tx_sync", &["tx"]),
    ("broadcast_tx_commit", &["tx"]),
    ("tx", &["hash", "prove"]),
    (
        "tx_search",
        &["query", "prove", "page", "per_page", "order_by"],
    ),
    ("unconfirmed_txs", &["limit"]),
    ("num_unconfirmed_txs", &[]),
    ("block_results", &["height"]),
    ("consensus_params", &["height"]),
    ("genesis_chunked", &["chunk"]),
    ("block_search", &["query", "page", "per_page", "order_by"]),
];

/// The parameter names of `method`, if it is served.
pub fn param_names(method: &str) -> Option<&'static [&'static str]> {
    METHODS.iter().find(|(m, _)| *m == method).map(|(_, p)| *p)
}

/// What every handler shares.
#[derive(Clone)]
pub struct Ctx {
    /// The node.
    pub backend: Arc<dyn RpcBackend>,
    /// The limits.
    pub limits: RpcLimits,
    /// Permits for concurrent `broadcast_tx_commit` waits.
    pub commit_waiters: Arc<Semaphore>,
    /// Permits for storage-reading handlers on the blocking pool ([`STORAGE_CALL_PERMITS`]).
    pub storage_calls: Arc<Semaphore>,
    /// Permits for searches and ranges ([`SEARCH_CALL_PERMITS`]).
    pub search_calls: Arc<Semaphore>,
}

impl Ctx {
    /// A context over `backend`.
    pub fn new(backend: Arc<dyn RpcBackend>, limits: RpcLimits) -> Ctx {
        let waiters = limits.max_subscription_clients;
        Ctx {
            backend,
            limits,
            commit_waiters: Arc::new(Semaphore::new(waiters)),
            storage_calls: Arc::new(Semaphore::new(STORAGE_CALL_PERMITS)),
            search_calls: Arc::new(Semaphore::new(SEARCH_CALL_PERMITS)),
        }
    }

    /// How long `method` may run.
    pub fn timeout_for(&self, method: &str) -> Duration {
        if method == "broadcast_tx_commit" {
            // Its own wait is bounded separately; leave room to answer with the timeout error.
            self.limits
                .request_timeout
                .max(self.limits.timeout_broadcast_tx_commit + Duration::from_secs(1))
        } else {
            self.limits.request_timeout
        }
    }
}

fn backend_err(e: BackendError) -> RpcErr {
    RpcErr::internal(e.to_string())
}

/// Storage-reading handlers running at once; more wait for a permit (within the request timeout).
/// Bounds the CPU and I/O that RPC clients can take from consensus and block execution on a 2-core machine.
pub const STORAGE_CALL_PERMITS: usize = 4;
/// Searches and ranges (the methods whose cost grows with the chain) running at once, in a lane of their
/// own: a flood of them waits for these permits and times out, while `status`, `block` and the rest still
/// get theirs.
pub const SEARCH_CALL_PERMITS: usize = 2;

/// The methods that take a [`SEARCH_CALL_PERMITS`] permit.
const SEARCH_METHODS: &[&str] = &["tx_search", "block_search", "blockchain"];

/// Runs `method` (already known to be served) with `params`. Methods that wait on the network or the
/// mempool run here on the async runtime; every method that reads storage runs on the blocking pool
/// ([`STORAGE_CALL_PERMITS`] at a time), so a slow query can neither hold up the runtime that also carries
/// the p2p layer nor escape the request timeout (which wraps the wait for it).
pub async fn call(ctx: &Ctx, method: &str, params: &Params) -> Result<Value, RpcErr> {
    let b = ctx.backend.as_ref();
    match method {
        "health" => Ok(json!({})),
        "net_info" => Ok(net_info(b).await),
        "broadcast_tx_async" | "broadcast_tx_sync" => {
            let tx = tx_param(params)?;
            let hash = tx.hash();
            let r = b
                .broadcast_tx(tx)
                .await
                .map_err(|e| RpcErr::internal(e.to_string()))?;
            // Async reports only admission; CometBFT does not wait for CheckTx's verdict there.
            let (code, log) = if method == "broadcast_tx_sync" {
                (r.code, r.log)
            } else {
                (0, String::new())
            };
            Ok(
                json!({"code": code, "data": "", "log": log, "codespace": "", "hash": hash.to_hex_upper()}),
            )
        }
        "broadcast_tx_commit" => broadcast_tx_commit(ctx, params).await,
        _ => {
            let lane = if SEARCH_METHODS.contains(&method) {
                &ctx.search_calls
            } else {
                &ctx.storage_calls
            };
            let permit = lane
                .clone()
                .acquire_owned()
                .await
                .map_err(|_| RpcErr::internal("the RPC server is shutting down"))?;
            let backend = ctx.backend.clone();
            let method = method.to_owned();
            let params = params.clone();
            tokio::task::spawn_blocking(move || {
                let _permit = permit;
                call_storage(backend.as_ref(), &method, &params)
            })
            .await
            .map_err(|e| RpcErr::internal(format!("the handler failed: {e}")))?
        }
    }
}

/// The methods that read storage (run on the blocking pool by [`call`]).
fn call_storage(b: &dyn RpcBackend, method: &str, params: &Params) -> Result<Value, RpcErr> {
    match method {
        "status" => Ok(status(b)),
        "genesis" => genesis(b),
        "blockchain" => blockchain(b, params),
        "block" => {
            let h = height_param(b, params, "height", false)?;
            block_response(b, h)
        }
        "block_by_hash" => {
            let h = height_by_hash(b, params)?;
            match h {
                Some(h) => block_response(b, h),
                None => Ok(json!({"block_id": shapes::empty_block_id(), "block": null})),
            }
        }
        "header" => {
            let h = height_param(b, params, "height", false)?;
            header_response(b, h)
        }
        "header_by_hash" => match height_by_hash(b, params)? {
            Some(h) => header_response(b, h),
            None => Ok(json!({"header": null})),
        },
        "commit" => commit(b, params),
        "light_block" => light_block(b, params),
        "raw_block" => raw_block(b, params),
        "validators" => validators(b, params),
        "consensus_state" => Ok(consensus_state(b, false)),
        "dump_consensus_state" => Ok(consensus_state(b, true)),
        "abci_info" => Ok(abci_info(b)),
        "abci_query" => abci_query(b, params),
        "check_tx" => {
            let tx = tx_param(params)?;
            Ok(shapes::check_tx(&b.check_tx(&tx)))
        }
        "tx" => tx(b, params),
        "tx_search" => tx_search(b, params),
        "unconfirmed_txs" => {
            let limit = per_page(params, "limit")?;
            let u = b.unconfirmed_txs(limit);
            let txs: Vec<String> = u
                .txs
                .iter()
                .take(limit)
                .map(|t| b64(t.as_bytes()))
                .collect();
            Ok(json!({
                "n_txs": txs.len().to_string(), "total": u.total.to_string(),
                "total_bytes": u.total_bytes.to_string(), "txs": txs,
            }))
        }
        "num_unconfirmed_txs" => {
            let u = b.unconfirmed_txs(0);
            Ok(json!({
                "n_txs": u.total.to_string(), "total": u.total.to_string(),
                "total_bytes": u.total_bytes.to_string(), "txs": null,
            }))
        }
        "block_results" => block_results(b, params),
        "consensus_params" => consensus_params(b, params),
        "genesis_chunked" => genesis_chunked(b, params),
        "block_search" => block_search(b, params),
        other => Err(RpcErr::method_not_found(other)),
    }
}

/// The node id as CometBFT clients parse it: 40 hex characters. A libp2p peer id is mapped to the
/// first 20 bytes of its BLAKE2s hash (documented in `docs/RPC.md`).
pub fn node_id_hex(id: &str) -> String {
    if id.len() == 40 && id.bytes().all(|c| c.is_ascii_hexdigit()) {
        id.to_ascii_lowercase()
    } else {
        hex::encode(&Hash::digest(id.as_bytes()).0[..20])
    }
}

fn node_info_json(b: &dyn RpcBackend) -> Value {
    let n = b.node_info();
    json!({
        "protocol_version": {"p2p": shapes::P2P_PROTOCOL, "block": shapes::BLOCK_PROTOCOL, "app": "0"},
        "id": node_id_hex(&n.id),
        "listen_addr": n.listen_addr,
        "network": n.network,
        "version": shapes::COMETBFT_COMPAT_VERSION,
        "channels": "",
        "moniker": n.moniker,
        "other": {"tx_index": if n.tx_index { "on" } else { "off" }, "rpc_address": n.rpc_address, "peer_id": n.id, "basalt_version": n.version},
    })
}

fn status(b: &dyn RpcBackend) -> Value {
    let s = b.sync_info();
    // A node without a validator key reports a placeholder key with power 0 (CometBFT nodes always
    // have one); the identity point is a valid ed25519 encoding, so clients can parse it.
    let validator = match b.validator_info() {
        Some(v) => json!({
            "address": v.address.to_hex_upper(),
            "pub_key": shapes::pub_key(&v.public_key),
            "voting_power": v.power.to_string(),
        }),
        None => {
            let mut identity = [0u8; 32];
            identity[0] = 1;
            json!({
                "address": hex::encode_upper([0u8; 20]),
                "pub_key": {"type": "tendermint/PubKeyEd25519", "value": b64(&identity)},
                "voting_power": "0",
            })
        }
    };
    json!({
        "node_info": node_info_json(b),
        "sync_info": {
            "latest_block_hash": s.latest_block_hash.to_hex_upper(),
            "latest_app_hash": s.latest_app_hash.to_hex_upper(),
            "latest_block_height": s.latest_block_height.to_string(),
            "latest_block_time": rfc3339_ms(s.latest_block_time_ms),
            "earliest_block_hash": s.earliest_block_hash.to_hex_upper(),
            "earliest_app_hash": s.earliest_app_hash.to_hex_upper(),
            "earliest_block_height": s.earliest_block_height.to_string(),
            "earliest_block_time": rfc3339_ms(s.earliest_block_time_ms),
            "catching_up": s.catching_up,
        },
        "validator_info": validator,
    })
}

async fn net_info(b: &dyn RpcBackend) -> Value {
    let n = b.net_info().await;
    let me = b.node_info();
    let zero_monitor = json!({
        "Active": false, "Start": shapes::ZERO_TIME, "Duration": "0", "Idle": "0", "Bytes": "0",
        "Samples": "0", "InstRate": "0", "CurRate": "0", "AvgRate": "0", "PeakRate": "0",
        "BytesRem": "0", "TimeRem": "0", "Progress": 0,
    });
    let peers: Vec<Value> = n
        .peers
        .iter()
        .map(|p| {
            json!({
                "node_info": {
                    "protocol_version": {"p2p": shapes::P2P_PROTOCOL, "block": shapes::BLOCK_PROTOCOL, "app": "0"},
                    "id": node_id_hex(&p.node_id),
                    "listen_addr": "",
                    "network": me.network,
                    "version": "",
                    "channels": "",
                    "moniker": p.moniker.clone().unwrap_or_default(),
                    "other": {"tx_index": "on", "rpc_address": "", "peer_id": p.node_id},
                },
                "is_outbound": p.is_outbound,
                "connection_status": {
                    "Duration": (u128::from(p.connected_secs) * 1_000_000_000).to_string(),
                    "SendMonitor": zero_monitor, "RecvMonitor": zero_monitor, "Channels": [],
                },
                "remote_ip": p.remote_ip.to_string(),
            })
        })
        .collect();
    json!({
        "listening": n.listening,
        "listeners": n.listeners,
        "n_peers": peers.len().to_string(),
        "peers": peers,
    })
}

fn genesis(b: &dyn RpcBackend) -> Result<Value, RpcErr> {
    let text = b.genesis_json();
    if text.len() > MAX_GENESIS_BYTES {
        return Err(RpcErr::internal(
            "genesis response is large, please use the genesis_chunked API instead",
        ));
    }
    let genesis: Value = serde_json::from_str(&text)
        .map_err(|e| RpcErr::internal(format!("genesis file is not valid JSON: {e}")))?;
    Ok(json!({ "genesis": genesis }))
}

/// Resolves a height parameter as CometBFT's `getHeight`: absent → latest; ≤ 0, above the latest
/// (or latest + 1 when `allow_next`) or below the earliest stored → an error with CometBFT's text.
fn height_param(
    b: &dyn RpcBackend,
    params: &Params,
    name: &str,
    allow_next: bool,
) -> Result<u64, RpcErr> {
    let sync = b.sync_info();
    let latest = sync.latest_block_height;
    let Some(h) = params.opt_i64(name)? else {
        if latest == 0 {
            return Err(RpcErr::internal("no blocks have been committed yet"));
        }
        return Ok(latest);
    };
    check_height(
        h,
        latest + u64::from(allow_next),
        sync.earliest_block_height,
    )
}

fn check_height(h: i64, latest: u64, base: u64) -> Result<u64, RpcErr> {
    if h <= 0 {
        return Err(RpcErr::internal(format!(
            "height must be greater than 0, but got {h}"
        )));
    }
    let h = h as u64;
    if h > latest {
        return Err(RpcErr::internal(format!(
            "height {h} must be less than or equal to the current blockchain height {latest}"
        )));
    }
    if h < base {
        return Err(RpcErr::internal(format!(
            "height {h} is not available, lowest height is {base}"
        )));
    }
    Ok(h)
}

fn height_by_hash(b: &dyn RpcBackend, params: &Params) -> Result<Option<u64>, RpcErr> {
    let hash = hash_param(params, "hash")?;
    b.block_height_by_hash(&hash).map_err(backend_err)
}

fn hash_param(params: &Params, name: &str) -> Result<Hash, RpcErr> {
    let bytes = params
        .opt_bytes(name, BytesEncoding::Hash)?
        .ok_or_else(|| RpcErr::invalid_param(name, "missing"))?;
    let arr: [u8; 32] = bytes.try_into().map_err(|v: Vec<u8>| {
        RpcErr::invalid_param(name, format!("expected 32 bytes, got {}", v.len()))
    })?;
    Ok(Hash(arr))
}

fn load_block(b: &dyn RpcBackend, height: u64) -> Result<Block, RpcErr> {
    b.block(height)
        .map_err(backend_err)?
        .ok_or_else(|| RpcErr::internal(format!("block at height {height} not found")))
}

/// The whole block in CometBFT's shape (last commit and evidence included).
pub fn block_json(b: &dyn RpcBackend, block: &Block) -> Result<Value, RpcErr> {
    let time_ms = block.header().time_ms;
    let last_commit = match block.last_commit() {
        None => shapes::empty_commit(),
        Some(c) => {
            let set = b
                .validators(c.height.0)
                .map_err(backend_err)?
                .ok_or_else(|| {
                    RpcErr::internal(format!("validator set of height {} not found", c.height.0))
                })?;
            shapes::commit(c, &set, time_ms).map_err(|e| RpcErr::internal(e.to_string()))?
        }
    };
    let evidence = block
        .evidence()
        .iter()
        .map(|e| {
            let set = b.validators(e.height().0).ok().flatten();
            shapes::evidence(e, set.as_ref(), time_ms)
        })
        .collect();
    Ok(shapes::block(block, last_commit, evidence))
}

fn block_response(b: &dyn RpcBackend, height: u64) -> Result<Value, RpcErr> {
    let block = load_block(b, height)?;
    Ok(json!({
        "block_id": shapes::block_id(&block.id().hash),
        "block": block_json(b, &block)?,
    }))
}

fn header_response(b: &dyn RpcBackend, height: u64) -> Result<Value, RpcErr> {
    let block = load_block(b, height)?;
    Ok(json!({ "header": shapes::header(block.header()) }))
}

fn blockchain(b: &dyn RpcBackend, params: &Params) -> Result<Value, RpcErr> {
    let sync = b.sync_info();
    let (latest, base) = (sync.latest_block_height, sync.earliest_block_height.max(1));
    let min = params.opt_i64("minHeight")?.unwrap_or(0);
    let max = params.opt_i64("maxHeight")?.unwrap_or(0);
    // CometBFT's filterMinMax.
    if min < 0 || max < 0 {
        return Err(RpcErr::internal("heights must be non-negative"));
    }
    let (mut min, mut max) = (min as u64, max as u64);
    if min == 0 {
        min = 1;
    }
    if max == 0 {
        max = latest;
    }
    max = max.min(latest);
    min = min.max(base);
    min = min.max((max + 1).saturating_sub(MAX_BLOCKCHAIN_METAS));
    if min > max {
        return Err(RpcErr::internal(format!(
            "min height {min} can't be greater than max height {max}"
        )));
    }
    let mut metas = Vec::new();
    for h in (min..=max).rev() {
        if let Some(block) = b.block(h).map_err(backend_err)? {
            metas.push(shapes::block_meta(&block));
        }
    }
    Ok(json!({"last_height": latest.to_string(), "block_metas": metas}))
}

fn commit(b: &dyn RpcBackend, params: &Params) -> Result<Value, RpcErr> {
    let h = height_param(b, params, "height", false)?;
    let block = load_block(b, h)?;
    let (c, canonical) = commit_of(b, h)?;
    let set = validators_of(b, h)?;
    let commit = shapes::commit(&c, &set, block.header().time_ms)
        .map_err(|e| RpcErr::internal(e.to_string()))?;
    Ok(json!({
        "signed_header": {"header": shapes::header(block.header()), "commit": commit},
        "canonical": canonical,
    }))
}

/// The commit of block `h` and whether it is canonical. The latest block's commit is this node's
/// "seen" commit; earlier ones are canonical: the `last_commit` of the next block, which its proposer
/// may have completed with late precommits.
fn commit_of(b: &dyn RpcBackend, h: u64) -> Result<(Commit, bool), RpcErr> {
    let canonical = h < b.sync_info().latest_block_height;
    let in_next_block = if canonical {
        b.block(h + 1)
            .map_err(backend_err)?
            .and_then(|next| next.last_commit().cloned())
    } else {
        None
    };
    let c = match in_next_block {
        Some(c) => c,
        None => b
            .commit(h)
            .map_err(backend_err)?
            .ok_or_else(|| RpcErr::internal(format!("commit for height {h} not found")))?,
    };
    Ok((c, canonical))
}

fn validators_of(b: &dyn RpcBackend, h: u64) -> Result<ValidatorSet, RpcErr> {
    b.validators(h)
        .map_err(backend_err)?
        .ok_or_else(|| RpcErr::internal(format!("validator set of height {h} not found")))
}

/// `light_block` (a Basalt extension; CometBFT has none): what a light client of this chain verifies at
/// `height`, in Basalt's own encoding so nothing is lost in JSON — `light_block` is base64 of the Borsh
/// tuple `(header, commit, validators, next_validators)` (the commit as [`commit_of`] picks it, the sets
/// of `height` and `height + 1`). An IBC relayer builds `99-basalt` client headers from it.
fn light_block(b: &dyn RpcBackend, params: &Params) -> Result<Value, RpcErr> {
    let h = height_param(b, params, "height", false)?;
    let block = load_block(b, h)?;
    let (c, canonical) = commit_of(b, h)?;
    let validators = validators_of(b, h)?;
    let next = validators_of(b, h + 1)?;
    let bytes = basalt_consensus::types::encode(&(block.header(), &c, &validators, &next));
    Ok(json!({
        "height": h.to_string(),
        "canonical": canonical,
        "light_block": b64(&bytes),
    }))
}

/// `raw_block` (a Basalt extension, as `light_block`): the whole block of `height` losslessly —
/// `{"height", "block"}` where `block` is base64 of its Borsh encoding (header, transactions,
/// evidence, last commit). A light client that trusts the header checks the rest by decoding it (a
/// decoded block's content hashes match its header) and comparing the header's hash.
fn raw_block(b: &dyn RpcBackend, params: &Params) -> Result<Value, RpcErr> {
    let h = height_param(b, params, "height", false)?;
    let block = load_block(b, h)?;
    Ok(json!({
        "height": h.to_string(),
        "block": b64(&basalt_consensus::types::encode(&block)),
    }))
}

/// `per_page` as CometBFT's `validatePerPage`: absent or ≤ 0 → default, capped at the maximum.
pub fn per_page(params: &Params, name: &str) -> Result<usize, RpcErr> {
    Ok(match params.opt_i64(name)? {
        None => DEFAULT_PER_PAGE,
        Some(n) if n <= 0 => DEFAULT_PER_PAGE,
        Some(n) => (n as u64).min(MAX_PER_PAGE as u64) as usize,
    })
}

/// `page` as CometBFT's `validatePage`.
pub fn page(params: &Params, per_page: usize, total: usize) -> Result<usize, RpcErr> {
    let pages = if total == 0 {
        1
    } else {
        (total - 1) / per_page + 1
    };
    match params.opt_i64("page")? {
        None => Ok(1),
        Some(p) if p <= 0 || p as u64 > pages as u64 => Err(RpcErr::internal(format!(
            "page should be within [1, {pages}] range, given {p}"
        ))),
        Some(p) => Ok(p as usize),
    }
}

fn validators(b: &dyn RpcBackend, params: &Params) -> Result<Value, RpcErr> {
    let h = height_param(b, params, "height", true)?;
    let set = b
        .validators(h)
        .map_err(backend_err)?
        .ok_or_else(|| RpcErr::internal(format!("validator set of height {h} not found")))?;
    let per = per_page(params, "per_page")?;
    let page = page(params, per, set.len())?;
    let start = (page - 1) * per;
    let end = (start + per).min(set.len());
    let list = shapes::validators(&set, start, end);
    Ok(json!({
        "block_height": h.to_string(),
        "validators": list,
        "count": (end - start).to_string(),
        "total": set.len().to_string(),
    }))
}

/// The engine's view, as CometBFT reports it between heights. Basalt's engine stays on a decided
/// height (step Commit) until `timeout_commit` starts the next one; CometBFT moves to the next height's
/// NewHeight step as soon as the block is committed. So once the engine's height is committed, report
/// `latest + 1 / 0 / NewHeight` with that height's round-0 proposer and no proposal/locked/valid block,
/// keeping `consensus_state`'s height above `status`'s latest height as clients expect.
fn consensus_view(b: &dyn RpcBackend) -> ConsensusStateView {
    let c = b.consensus_state();
    let latest = b.sync_info().latest_block_height;
    if latest == 0 || c.height > latest {
        return c;
    }
    let next = latest + 1;
    let proposer = b.validators(next).ok().flatten().and_then(|set| {
        let index = set.proposer_for_round(basalt_consensus::Round(0));
        set.get(index).map(|v| (v.address, index.0))
    });
    ConsensusStateView {
        height: next,
        round: 0,
        step: RoundStep::NewHeight,
        proposer,
        start_time_ms: c.start_time_ms,
        proposal_block_hash: None,
        locked_block_hash: None,
        valid_block_hash: None,
    }
}

fn consensus_state(b: &dyn RpcBackend, dump: bool) -> Value {
    let c = consensus_view(b);
    let hash = |h: Option<Hash>| h.map(|h| h.to_hex_upper()).unwrap_or_default();
    let (address, index) = c
        .proposer
        .map(|(a, i)| (a.to_hex_upper(), i64::from(i)))
        .unwrap_or((String::new(), -1));
    let round_state = json!({
        "height/round/step": format!("{}/{}/{}", c.height, c.round, c.step as u8),
        "start_time": rfc3339_ms(c.start_time_ms),
        "proposal_block_hash": hash(c.proposal_block_hash),
        "locked_block_hash": hash(c.locked_block_hash),
        "valid_block_hash": hash(c.valid_block_hash),
        "height_vote_set": [],
        "proposer": {"address": address, "index": index},
    });
    if dump {
        json!({"round_state": round_state, "peers": []})
    } else {
        json!({ "round_state": round_state })
    }
}

fn abci_info(b: &dyn RpcBackend) -> Value {
    let i = b.abci_info();
    let mut response = json!({
        "data": "basalt",
        "version": crate::build_info::BuildInfo::current().version,
        "app_version": "0",
        "last_block_height": i.last_height.unwrap_or(0).to_string(),
    });
    if i.last_height.is_some() {
        response["last_block_app_hash"] = json!(b64(&i.last_app_hash.0));
    }
    json!({ "response": response })
}

fn abci_query(b: &dyn RpcBackend, params: &Params) -> Result<Value, RpcErr> {
    let path = params.opt_str("path")?.unwrap_or_default();
    let data = params
        .opt_bytes("data", BytesEncoding::Hex)?
        .unwrap_or_default();
    let height = params.opt_i64("height")?.unwrap_or(0);
    if height < 0 {
        return Err(RpcErr::internal(format!(
            "height cannot be negative, got {height}"
        )));
    }
    let prove = params.opt_bool("prove")?.unwrap_or(false);
    let r = b.abci_query(&path, &data, height as u64, prove);
    let proof_ops = r.proof.as_ref().map(|p| {
        json!({"ops": [{"type": PROOF_OP_TYPE, "key": b64(&r.key), "data": b64(&encode_commitment_proof(p))}]})
    });
    Ok(json!({"response": {
        "code": r.code, "log": r.log, "info": "", "index": "0",
        "key": b64(&r.key), "value": b64(&r.value),
        "proofOps": proof_ops, "height": r.height.to_string(), "codespace": "",
    }}))
}

/// The methods that submit a transaction (`tx` parameter).
pub const BROADCAST_METHODS: [&str; 3] = [
    "broadcast_tx_async",
    "broadcast_tx_sync",
    "broadcast_tx_commit",
];

/// The `tx` parameter: base64 bytes within the transaction size bound.
pub fn tx_param(params: &Params) -> Result<Tx, RpcErr> {
    let bytes = params
        .opt_bytes("tx", BytesEncoding::Base64)?
        .ok_or_else(|| RpcErr::invalid_param("tx", "missing"))?;
    Tx::new(bytes).map_err(|e| match e {
        TxError::Empty => RpcErr::invalid_param("tx", "transaction is empty"),
        TxError::TooLarge { len, max } => {
            RpcErr::internal(format!("tx too large. Max size is {max}, but got {len}"))
        }
    })
}

async fn broadcast_tx_commit(ctx: &Ctx, params: &Params) -> Result<Value, RpcErr> {
    let tx = tx_param(params)?;
    let hash = tx.hash();
    let Ok(_permit) = ctx.commit_waiters.clone().try_acquire_owned() else {
        return Err(RpcErr::internal(format!(
            "max_subscription_clients {} reached",
            ctx.limits.max_subscription_clients
        )));
    };
    // Subscribe before submitting, so the commit cannot be missed.
    let mut events = ctx.backend.subscribe();
    let check = ctx
        .backend
        .broadcast_tx(tx)
        .await
        .map_err(|e| RpcErr::internal(e.to_string()))?;
    let check_json = shapes::check_tx(&check);
    if !check.is_ok() {
        return Ok(json!({
            "check_tx": check_json, "tx_result": shapes::tx_result(&empty_result()),
            "hash": hash.to_hex_upper(), "height": "0",
        }));
    }
    let wait = wait_for_tx(&mut events, &hash);
    match tokio::time::timeout(ctx.limits.timeout_broadcast_tx_commit, wait).await {
        Ok(Ok(t)) => Ok(json!({
            "check_tx": check_json, "tx_result": shapes::tx_result(&t.result),
            "hash": hash.to_hex_upper(), "height": t.height.to_string(),
        })),
        Ok(Err(reason)) => Err(RpcErr::internal(reason)),
        Err(_) => Err(RpcErr::internal(
            "timed out waiting for tx to be included in a block",
        )),
    }
}

fn empty_result() -> basalt_state::app::TxResult {
    basalt_state::app::TxResult {
        code: 0,
        log: String::new(),
        gas_wanted: 0,
        gas_used: 0,
        events: Vec::new(),
    }
}

async fn wait_for_tx(
    events: &mut broadcast::Receiver<NodeEvent>,
    hash: &Hash,
) -> Result<Arc<IndexedTx>, String> {
    loop {
        match events.recv().await {
            Ok(NodeEvent::Tx(t)) if t.tx.hash() == *hash => return Ok(t),
            Ok(_) => {}
            Err(broadcast::error::RecvError::Lagged(n)) => {
                return Err(format!(
                "subscription was cancelled (reason: missed {n} events while waiting for the tx)"
            ))
            }
            Err(broadcast::error::RecvError::Closed) => {
                return Err("CometBFT exited".into());
            }
        }
    }
}

fn tx(b: &dyn RpcBackend, params: &Params) -> Result<Value, RpcErr> {
    let hash = hash_param(params, "hash")?;
    let prove = params.opt_bool("prove")?.unwrap_or(false);
    match b.tx(&hash).map_err(backend_err)? {
        Some(t) => indexed_tx(b, &t, prove, &mut None),
        None => Err(RpcErr::internal(format!("tx ({hash}) not found"))),
    }
}

/// A `ResultTx`, with the `TxProof` against its block's `data_hash` when `prove` is set. `last_block`
/// keeps the block loaded for the previous transaction: a page of results is ordered by height, so
/// its transactions mostly share blocks, and a block can be megabytes to decode.
fn indexed_tx(
    b: &dyn RpcBackend,
    t: &IndexedTx,
    prove: bool,
    last_block: &mut Option<Block>,
) -> Result<Value, RpcErr> {
    let mut value = shapes::indexed_tx(t);
    if prove {
        let block = match last_block.take() {
            Some(block) if block.height().0 == t.height => block,
            _ => load_block(b, t.height)?,
        };
        let proof = merkle_proof(block.txs(), t.index as usize).ok_or_else(|| {
            RpcErr::internal(format!(
                "tx index {} is beyond the {} txs of block {}",
                t.index,
                block.txs().len(),
                t.height
            ))
        })?;
        value["proof"] = shapes::tx_proof(&block.header().data_hash, t.tx.as_bytes(), &proof);
        *last_block = Some(block);
    }
    Ok(value)
}

fn tx_search(b: &dyn RpcBackend, params: &Params) -> Result<Value, RpcErr> {
    let text = params.req_str("query")?;
    let query = TxQuery::parse(&text).map_err(|e| RpcErr::invalid_param("query", e))?;
    let prove = params.opt_bool("prove")?.unwrap_or(false);
    let desc = match params.opt_str("order_by")?.as_deref() {
        None | Some("") | Some("asc") => false,
        Some("desc") => true,
        Some(other) => {
            return Err(RpcErr::invalid_param(
                "order_by",
                format!("expected \"asc\" or \"desc\", got {other:?}"),
            ))
        }
    };
    let per = per_page(params, "per_page")?;
    let requested = params.opt_i64("page")?.unwrap_or(1);
    let first = usize::try_from(requested.max(1)).unwrap_or(usize::MAX);
    let (txs, total) = b.tx_search(&query, first, per, desc).map_err(|e| match e {
        SearchError::TooBroad(reason) => RpcErr::invalid_param("query", reason),
        SearchError::Backend(e) => backend_err(e),
    })?;
    page(params, per, total)?;
    let mut last_block = None;
    let list = txs
        .iter()
        .take(per)
        .map(|t| indexed_tx(b, t, prove, &mut last_block))
        .collect::<Result<Vec<Value>, RpcErr>>()?;
    Ok(json!({"txs": list, "total_count": total.to_string()}))
}

fn block_results(b: &dyn RpcBackend, params: &Params) -> Result<Value, RpcErr> {
    let h = height_param(b, params, "height", false)?;
    let results = b
        .block_results(h)
        .map_err(backend_err)?
        .ok_or_else(|| RpcErr::internal(format!("results for height {h} not found")))?;
    // The app hash after block h is the next header's; the latest block's comes from the app.
    let app_hash = match b.block(h + 1).map_err(backend_err)? {
        Some(next) => next.header().app_hash,
        None => b.abci_info().last_app_hash,
    };
    let list: Vec<Value> = results.iter().map(shapes::tx_result).collect();
    Ok(json!({
        "height": h.to_string(),
        "txs_results": if list.is_empty() { Value::Null } else { Value::Array(list) },
        "finalize_block_events": [],
        "validator_updates": null,
        "consensus_param_updates": null,
        "app_hash": app_hash.to_hex_upper(),
    }))
}

/// `consensus_params`: Basalt's parameters never change after genesis (no app updates), so every
/// height's are genesis.json's `consensus_params` (which the node validated and runs with).
fn consensus_params(b: &dyn RpcBackend, params: &Params) -> Result<Value, RpcErr> {
    // CometBFT resolves an absent height to the latest uncommitted one (latest + 1).
    let h = match params.opt_i64("height")? {
        Some(_) => height_param(b, params, "height", true)?,
        None => b.sync_info().latest_block_height + 1,
    };
    let text = b.genesis_json();
    let genesis: Value = serde_json::from_str(&text)
        .map_err(|e| RpcErr::internal(format!("genesis file is not valid JSON: {e}")))?;
    let consensus_params = genesis
        .get("consensus_params")
        .filter(|v| v.is_object())
        .cloned()
        .ok_or_else(|| RpcErr::internal("genesis file has no consensus_params object"))?;
    Ok(json!({"block_height": h.to_string(), "consensus_params": consensus_params}))
}

/// `genesis_chunked`: chunk `chunk` (0-based) of the genesis file's bytes, base64, as CometBFT
/// (`chunk` and `total` as strings, `data` base64 of at most [`GENESIS_CHUNK_BYTES`] raw bytes).
fn genesis_chunked(b: &dyn RpcBackend, params: &Params) -> Result<Value, RpcErr> {
    let chunk = params
        .opt_i64("chunk")?
        .ok_or_else(|| RpcErr::invalid_param("chunk", "missing"))?;
    let text = b.genesis_json();
    let bytes = text.as_bytes();
    let total = bytes.len().div_ceil(GENESIS_CHUNK_BYTES).max(1);
    let index = usize::try_from(chunk).map_err(|_| {
        RpcErr::invalid_param(
            "chunk",
            format!("expected an unsigned integer, got {chunk}"),
        )
    })?;
    if index >= total {
        return Err(RpcErr::internal(format!(
            "there are {} chunks, {index} is invalid",
            total - 1
        )));
    }
    let start = index * GENESIS_CHUNK_BYTES;
    let end = (start + GENESIS_CHUNK_BYTES).min(bytes.len());
    let data = bytes.get(start..end).unwrap_or_default();
    Ok(json!({"chunk": index.to_string(), "total": total.to_string(), "data": b64(data)}))
}

/// The heights in `[lo, hi]` that `query` selects for `block_search`, as a range (empty: `None`).
///
/// Basalt's blocks carry no block-level (finalize_block) events, so [`QueryMatch::matches_block`] depends
/// on the height alone: `block.height` comparisons narrow the range, `EXISTS` keeps it, and every
/// other condition (event attributes, `tx.*`, `tm.event='Tx'`) matches no block. Computing the range
/// instead of testing each height keeps the method O(page) on any chain length.
fn block_search_range(query: &TxQuery, lo: u64, hi: u64) -> Option<(u64, u64)> {
    use super::query::{Op, Operand};
    let (mut min, mut max) = (lo, hi);
    for c in query.conditions() {
        match (c.key.as_str(), c.op, &c.operand) {
            ("tm.event", Op::Eq, Operand::Str(s)) if s == "NewBlock" => {}
            ("block.height", Op::Exists, _) => {}
            ("block.height", op, Operand::Int(v)) => {
                let v = *v;
                let clamp = |x: i128| x.clamp(0, i128::from(u64::MAX)) as u64;
                match op {
                    Op::Eq if v < 0 => return None,
                    Op::Eq => {
                        min = min.max(clamp(v));
                        max = max.min(clamp(v));
                    }
                    Op::Lt if v <= 0 => return None,
                    Op::Lt => max = max.min(clamp(v - 1)),
                    Op::Le if v < 0 => return None,
                    Op::Le => max = max.min(clamp(v)),
                    Op::Gt => min = min.max(clamp(v.saturating_add(1))),
                    Op::Ge => min = min.max(clamp(v)),
                    Op::Contains | Op::Exists => return None,
                }
            }
            _ => return None,
        }
    }
    (min <= max).then_some((min, max))
}

/// `block_search`: blocks whose height matches the query, newest first unless `order_by` is `asc`
/// (CometBFT's default for blocks is `desc`).
fn block_search(b: &dyn RpcBackend, params: &Params) -> Result<Value, RpcErr> {
    let text = params.req_str("query")?;
    let query = TxQuery::parse(&text).map_err(|e| RpcErr::invalid_param("query", e))?;
    let asc = match params.opt_str("order_by")?.as_deref() {
        None | Some("") | Some("desc") => false,
        Some("asc") => true,
        Some(other) => {
            return Err(RpcErr::invalid_param(
                "order_by",
                format!("expected \"asc\" or \"desc\", got {other:?}"),
            ))
        }
    };
    let sync = b.sync_info();
    let base = sync.earliest_block_height.max(1);
    let range = if sync.latest_block_height == 0 {
        None
    } else {
        block_search_range(&query, base, sync.latest_block_height)
    };
    let total = range.map_or(0, |(min, max)| {
        usize::try_from(max - min + 1).unwrap_or(usize::MAX)
    });
    let per = per_page(params, "per_page")?;
    let page = page(params, per, total)?;
    let skip = ((page - 1) * per) as u64;
    let mut blocks = Vec::new();
    if let Some((min, max)) = range {
        let count = (total as u64).saturating_sub(skip).min(per as u64);
        for i in 0..count {
            let h = if asc { min + skip + i } else { max - skip - i };
            blocks.push(block_response(b, h)?);
        }
    }
    Ok(json!({"blocks": blocks, "total_count": total.to_string()}))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::rpc::query::QueryMatch;

    /// The computed range agrees with `QueryMatch::matches_block` (the reference) height by height.
    #[test]
    fn block_search_range_agrees_with_matches_block() {
        let queries = [
            "block.height = 5",
            "block.height > 3",
            "block.height >= 3 AND block.height < 7",
            "block.height <= 4",
            "block.height < 1",
            "block.height EXISTS",
            "tm.event = 'NewBlock' AND block.height > 8",
            "tm.event = 'Tx'",
            "transfer.sender = 'AB'",
            "tx.height = 3",
            "block.height = -2",
            "block.height > 100",
            "block.height = 2 AND block.height = 3",
        ];
        for text in queries {
            let q = TxQuery::parse(text).unwrap();
            let range = block_search_range(&q, 2, 10);
            for h in 0..=12u64 {
                let in_range = range.is_some_and(|(min, max)| (min..=max).contains(&h));
                let expected = (2..=10).contains(&h) && q.matches_block(h, &[]);
                assert_eq!(in_range, expected, "query {text:?} at height {h}");
            }
        }
    }

    #[test]
    fn heights_are_checked_like_cometbft() {
        assert_eq!(check_height(3, 5, 1).unwrap(), 3);
        let e = check_height(6, 5, 1).unwrap_err();
        assert_eq!(
            e.data,
            "height 6 must be less than or equal to the current blockchain height 5"
        );
        assert_eq!(e.code, super::super::jsonrpc::INTERNAL_ERROR);
        assert!(check_height(0, 5, 1)
            .unwrap_err()
            .data
            .contains("greater than 0"));
        assert!(check_height(-3, 5, 1).unwrap_err().data.contains("-3"));
        assert!(check_height(1, 5, 2)
            .unwrap_err()
            .data
            .contains("lowest height is 2"));
    }

    #[test]
    fn node_ids() {
        let hex40 = "0123456789abcdef0123456789abcdef01234567";
        assert_eq!(node_id_hex(hex40), hex40);
        let mapped = node_id_hex("12D3KooWPeer");
        assert_eq!(mapped.len(), 40);
        assert_eq!(mapped, node_id_hex("12D3KooWPeer"));
    }

    #[test]
    fn method_table_has_unique_names() {
        let mut names: Vec<&str> = METHODS.iter().map(|(m, _)| *m).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), METHODS.len());
    }
}
