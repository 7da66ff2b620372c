//! `basalt light` against a real 4-validator network (issue 18's "done means"): the tendermint-rpc
//! client reads `status`, `header`, `commit`, `validators`, `block` and a proved `abci_query` through
//! the proxy and gets what the node itself serves; then a deliberately lying RPC server between the
//! proxy and the node (forged headers, a block of another height, altered query values) is refused on
//! every lie while the heights it did not tamper with are still served.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};
use basalt_consensus::types::{decode, encode, Block, Commit, Hash, Header, ValidatorSet};
use basalt_tests::testnet::{basalt_bin, Testnet};
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use serde_json::{json, Value};
use tendermint_rpc::client::CompatMode;
use tendermint_rpc::{Client, HttpClient, Paging};

/// Bound on the whole test (network start included).
const TEST_BUDGET: Duration = Duration::from_secs(90);
/// Bound on one wait for a height.
const WAIT: Duration = Duration::from_secs(30);
const VALIDATORS: usize = 4;
/// The trusted root.
const ROOT: u64 = 3;

/// A `basalt light` process, killed on drop.
struct Proxy {
    child: Child,
    url: String,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `basalt light` on a free port with `primary` (and `witnesses`), trusting `hash` at [`ROOT`];
/// waits (bounded) for its "serving" line. `--update-period` is long so it verifies only what it is asked for.
fn start_proxy(chain_id: &str, primary: &str, hash: &Hash, witnesses: &[&str]) -> Proxy {
    let mut command = Command::new(basalt_bin().unwrap());
    command.args([
        "light",
        chain_id,
        "--primary",
        primary,
        "--height",
        &ROOT.to_string(),
        "--hash",
        &hash.to_hex_upper(),
        "--laddr",
        "tcp://127.0.0.1:0",
        "--update-period",
        "1h",
    ]);
    if !witnesses.is_empty() {
        command.args(["--witnesses", &witnesses.join(",")]);
    }
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    let mut proxy = Proxy {
        child,
        url: String::new(),
    };
    let line = rx.recv_timeout(WAIT).expect("basalt light printed no line");
    let started: Value = serde_json::from_str(&line)
        .unwrap_or_else(|e| panic!("basalt light's first line {line:?}: {e}"));
    assert_eq!(started["light"], "serving", "{line}");
    proxy.url = started["laddr"]
        .as_str()
        .unwrap()
        .replacen("tcp://", "http://", 1);
    proxy
}

fn client(url: &str) -> HttpClient {
    HttpClient::builder(url.parse().unwrap())
        .compat_mode(CompatMode::V0_38)
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap()
}

/// One raw JSON-RPC call; the whole answer (with `result` or `error`).
async fn raw(url: &str, method: &str, params: Value) -> Value {
    reqwest::Client::new()
        .post(url)
        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

fn error_text(answer: &Value) -> String {
    assert!(answer.get("result").is_none(), "a lie was served: {answer}");
    answer["error"]["data"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_light_proxy_serves_verified_answers_and_refuses_a_lying_primary() {
    tokio::time::timeout(TEST_BUDGET, run())
        .await
        .expect("light proxy test exceeded its time budget");
}

async fn run() {
    let mut net = Testnet::generate(VALIDATORS, 0, 4).unwrap();
    for i in 0..VALIDATORS {
        net.start(i, &[]).unwrap();
    }
    net.wait_height(0, ROOT + 3, WAIT).await.unwrap();
    let chain_id = net.chain_id().await.unwrap();
    let (root_header, _, _, _) = net.light_block(0, ROOT).await.unwrap();
    let root_hash = root_header.hash();

    // --- honest primary: the proxy serves what the node serves -------------------------------------
    let proxy = start_proxy(&chain_id, &net.rpc_url(0), &root_hash, &[&net.rpc_url(1)]);
    let c = client(&proxy.url);
    let status = c.status().await.unwrap();
    let latest = status.sync_info.latest_block_height.value();
    assert!(latest >= ROOT, "{status:?}");
    let node_block = net
        .rpc(0, "block", json!({"height": latest.to_string()}))
        .await
        .unwrap();
    assert_eq!(
        status.sync_info.latest_block_hash.to_string(),
        node_block["block_id"]["hash"].as_str().unwrap()
    );
    // The app hash after `latest` is the one the next header carries.
    let (next_header, _, _, _) = net.light_block(0, latest + 1).await.unwrap();
    assert_eq!(
        status.sync_info.latest_app_hash.as_bytes(),
        next_header.app_hash.0
    );

    // Above the root (skipping verification), the root itself and below it (hash links).
    for h in [latest, ROOT, 1] {
        let (header, _, validators, _) = net.light_block(0, h).await.unwrap();
        // Basalt's header hash is not tendermint-rs's: compare the commit's block id and the fields.
        let commit = c.commit(h as u32).await.unwrap();
        assert_eq!(
            commit.signed_header.commit.block_id.hash.as_bytes(),
            header.hash().0,
            "commit {h}"
        );
        assert_eq!(commit.signed_header.header.height.value(), h);
        let through = c.header(h as u32).await.unwrap();
        assert_eq!(through.header.app_hash.as_bytes(), header.app_hash.0);
        assert_eq!(through.header.height.value(), h);
        let block = c.block(h as u32).await.unwrap();
        assert_eq!(block.block_id.hash.as_bytes(), header.hash().0);
        let set = c.validators(h as u32, Paging::All).await.unwrap();
        assert_eq!(set.total as usize, validators.len());
        let mut got: Vec<String> = set
            .validators
            .iter()
            .map(|v| v.address.to_string())
            .collect();
        let mut want: Vec<String> = validators
            .validators()
            .iter()
            .map(|v| v.address.to_hex_upper())
            .collect();
        got.sort();
        want.sort();
        assert_eq!(got, want, "validators {h}");
    }

    // A proved query, at the latest state and at an explicit height, equal to the node's answer.
    let (address, _) = net.accounts().unwrap().remove(0);
    let path = format!("/bank/balance/{address}");
    for height in [None, Some(ROOT)] {
        let q = c
            .abci_query(
                Some(path.clone()),
                Vec::<u8>::new(),
                height.map(|h| (h as u32).into()),
                true,
            )
            .await
            .unwrap();
        assert!(q.code.is_ok(), "{q:?}");
        assert!(q.proof.is_some());
        let node = net
            .rpc(
                0,
                "abci_query",
                json!({"path": path, "height": q.height.value().to_string()}),
            )
            .await
            .unwrap();
        assert_eq!(
            BASE64.encode(&q.value),
            node["response"]["value"].as_str().unwrap()
        );
        assert!(!q.value.is_empty() && q.value != b"0", "a funded account");
    }
    // What cannot be verified is not served.
    let refused = raw(&proxy.url, "tx_search", json!({"query": "tx.height=1"})).await;
    assert_eq!(refused["error"]["code"], -32601, "{refused}");
    drop(proxy);

    // --- lying primary ------------------------------------------------------------------------------
    let liar = Liar::start(net.rpc_url(0)).await;
    let proxy = start_proxy(&chain_id, &liar.url, &root_hash, &[]);
    // Forged headers above the root: the commit no longer signs them.
    for (method, height) in [("commit", ROOT + 2), ("light_block", ROOT + 1)] {
        let forged = raw(&proxy.url, method, json!({"height": height.to_string()})).await;
        assert!(
            error_text(&forged).contains("verification failed"),
            "{method} {height}: {forged}"
        );
    }
    // Below the root the liar is honest about headers: those are served…
    let header = raw(&proxy.url, "header", json!({"height": "2"})).await;
    assert_eq!(
        header["result"]["header"]["height"], "2",
        "an untampered height is served: {header}"
    );
    // …but the block it serves for them is another height's, and its query values are altered.
    let block = raw(&proxy.url, "block", json!({"height": "2"})).await;
    assert!(error_text(&block).contains("not verified"), "{block}");
    let query = raw(
        &proxy.url,
        "abci_query",
        json!({"path": path, "height": "1", "prove": true}),
    )
    .await;
    assert!(error_text(&query).contains("not verified"), "{query}");
    assert!(liar.lies() >= 4, "the liar was asked and lied");
    drop(proxy);

    // --- lying witness: it cannot prove its headers, so it is dropped and the primary is served -----
    let proxy = start_proxy(&chain_id, &net.rpc_url(0), &root_hash, &[&liar.url]);
    let height = net.height(0).await.unwrap();
    let commit = raw(&proxy.url, "commit", json!({"height": height.to_string()})).await;
    assert_eq!(
        commit["result"]["signed_header"]["header"]["height"],
        height.to_string(),
        "{commit}"
    );
}

/// A JSON-RPC server in front of a real node that forwards every call and lies in some answers:
/// `light_block` above [`ROOT`] gets its header's app hash changed, `raw_block` answers with the block
/// below the one asked for, and `abci_query` answers a different value.
struct Liar {
    url: String,
    lies: Arc<std::sync::atomic::AtomicUsize>,
    _server: tokio::task::JoinHandle<()>,
}

#[derive(Clone)]
struct LiarState {
    node: String,
    http: reqwest::Client,
    lies: Arc<std::sync::atomic::AtomicUsize>,
}

impl Liar {
    async fn start(node: String) -> Liar {
        let lies = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let state = LiarState {
            node,
            http: reqwest::Client::new(),
            lies: Arc::clone(&lies),
        };
        let app = Router::new().route("/", post(lie)).with_state(state);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Liar {
            url,
            lies,
            _server: server,
        }
    }

    fn lies(&self) -> usize {
        self.lies.load(std::sync::atomic::Ordering::SeqCst)
    }
}

async fn forward(state: &LiarState, request: &Value) -> Value {
    state
        .http
        .post(&state.node)
        .json(request)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

async fn lie(State(state): State<LiarState>, Json(mut request): Json<Value>) -> Json<Value> {
    let method = request["method"].as_str().unwrap_or_default().to_owned();
    let height: u64 = request["params"]["height"]
        .as_str()
        .and_then(|h| h.parse().ok())
        .unwrap_or(0);
    if method == "raw_block" && height > 1 {
        request["params"]["height"] = json!((height - 1).to_string());
    }
    let mut answer = forward(&state, &request).await;
    let result = &mut answer["result"];
    let lied = match method.as_str() {
        "light_block" if height > ROOT => {
            let bytes = BASE64
                .decode(result["light_block"].as_str().unwrap())
                .unwrap();
            let (mut header, commit, validators, next): (
                Header,
                Commit,
                ValidatorSet,
                ValidatorSet,
            ) = decode("light block", &bytes, 1 << 24).unwrap();
            header.app_hash = Hash::digest(b"a state the chain never had");
            result["light_block"] =
                json!(BASE64.encode(encode(&(&header, &commit, &validators, &next))));
            true
        }
        "raw_block" if height > 1 => {
            // Still a well-formed block, just not the one asked for.
            let bytes = BASE64.decode(result["block"].as_str().unwrap()).unwrap();
            let _: Block = decode("block", &bytes, 1 << 24).unwrap();
            result["height"] = json!(height.to_string());
            true
        }
        "abci_query" => {
            result["response"]["value"] = json!(BASE64.encode(b"999"));
            true
        }
        _ => false,
    };
    if lied {
        state.lies.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
    Json(answer)
}
