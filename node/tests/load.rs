//! `basalt load` end to end: a 2-validator fast-local network of real `basalt` processes on 127.0.0.1 (free
//! ports), a few seconds of load at a low rate over HTTP and over the websocket, and checks of the JSON
//! report. A minimal launcher rather than `basalt-tests`' harness, which this crate cannot depend on.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::fs::File;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_basalt");

/// Children killed when the test ends, however it ends.
struct Nodes(Vec<Child>);

impl Drop for Nodes {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A base port with p2p (+0), RPC (+1) and metrics (+4) free for `nodes` nodes spaced by 100.
fn free_base_port(nodes: u16) -> u16 {
    let seed = u64::from(std::process::id()) * 7919 + 17;
    for attempt in 0..200u64 {
        let base = 20_000 + ((seed + attempt * 1543) % 30_000) as u16;
        let free = (0..nodes).all(|i| {
            [0u16, 1, 4].iter().all(|off| {
                let port = base + 100 * i + off;
                TcpListener::bind(("127.0.0.1", port)).is_ok()
                    && TcpListener::bind(("0.0.0.0", port)).is_ok()
            })
        });
        if free {
            return base;
        }
    }
    panic!("no free port range");
}

fn rpc_url(base: u16, i: u16) -> String {
    format!("http://127.0.0.1:{}", base + 100 * i + 1)
}

/// Runs `cmd` to completion within `limit` (killed after it), returning its output.
fn run_bounded(cmd: &mut Command, limit: Duration) -> Output {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + limit;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() >= deadline {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "timed out after {limit:?}; stderr: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

/// Latest height of the node at `url` (0 if it does not answer).
async fn height(client: &reqwest::Client, url: &str) -> u64 {
    let Ok(response) = client.get(format!("{url}/status")).send().await else {
        return 0;
    };
    let Ok(value) = response.json::<Value>().await else {
        return 0;
    };
    value["result"]["sync_info"]["latest_block_height"]
        .as_str()
        .and_then(|h| h.parse().ok())
        .unwrap_or(0)
}

/// Generates and starts `n` validators; waits until every one has committed height 2.
fn start_network(dir: &Path, n: u16) -> (Nodes, u16) {
    let base = free_base_port(n);
    let out = run_bounded(
        Command::new(BIN)
            .args(["testnet", "--validators", &n.to_string(), "--output"])
            .arg(dir)
            .args(["--starting-port", &base.to_string()])
            .args(["--profile", "fast-local", "--accounts", "40"]),
        Duration::from_secs(30),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut nodes = Nodes(Vec::new());
    for i in 0..n {
        let log = File::create(dir.join(format!("node{i}.log"))).unwrap();
        let child = Command::new(BIN)
            .arg("start")
            .arg("--home")
            .arg(dir.join(format!("node{i}")))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        nodes.0.push(child);
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(2))
            .build()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(40);
        for i in 0..n {
            while height(&client, &rpc_url(base, i)).await < 2 {
                assert!(
                    Instant::now() < deadline,
                    "node {i} did not commit height 2; log: {}",
                    std::fs::read_to_string(dir.join(format!("node{i}.log"))).unwrap_or_default()
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    });
    (nodes, base)
}

/// Runs `basalt load` with `extra` arguments and returns its JSON report.
fn load(dir: &Path, nodes: &str, extra: &[&str]) -> Value {
    let out = run_bounded(
        Command::new(BIN)
            .arg("load")
            .arg("--accounts")
            .arg(dir.join("accounts.json"))
            .args(["--node", nodes, "--output", "json", "--drain", "8s"])
            .args(extra),
        Duration::from_secs(40),
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "basalt load failed: {}\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("not JSON ({e}): {stdout}"))
}

fn f(report: &Value, pointer: &str) -> f64 {
    report
        .pointer(pointer)
        .and_then(Value::as_f64)
        .unwrap_or_else(|| panic!("{pointer} missing in {report}"))
}

/// The checks every healthy low-rate run passes.
fn check_report(report: &Value, transport: &str, nodes: usize) {
    assert_eq!(report["transport"], transport, "{report}");
    assert_eq!(report["nodes"].as_array().unwrap().len(), nodes);
    assert!(report["watch_error"].is_null(), "{report}");
    let (submitted, accepted, committed) = (
        f(report, "/submitted"),
        f(report, "/accepted"),
        f(report, "/committed"),
    );
    assert!(committed > 0.0, "nothing committed: {report}");
    assert!(committed <= accepted && accepted <= submitted, "{report}");
    assert_eq!(
        f(report, "/rejected_total") + f(report, "/resent_in_cache"),
        submitted - accepted
    );
    assert!(f(report, "/committed_tps") > 0.0, "{report}");
    let latency: Vec<f64> = ["p50_ms", "p95_ms", "p99_ms", "max_ms"]
        .iter()
        .map(|k| f(report, &format!("/latency/{k}")))
        .collect();
    assert!(latency[0] > 0.0, "{report}");
    assert!(
        latency.windows(2).all(|w| w[0] <= w[1]),
        "percentiles out of order: {report}"
    );
    // Every latency sample is a commit the watcher saw; the rest were found by nonce at the end.
    assert_eq!(
        f(report, "/latency/samples"),
        committed - f(report, "/committed_unseen"),
        "{report}"
    );
    // Every transaction sent ends somewhere, once.
    assert_eq!(
        f(report, "/sent"),
        committed + f(report, "/pending") + f(report, "/lost"),
        "{report}"
    );
    assert_eq!(
        f(report, "/uncommitted"),
        f(report, "/pending") + f(report, "/lost")
    );
    assert!(f(report, "/blocks") >= 1.0, "{report}");
    assert!(f(report, "/mean_txs_per_block") > 0.0, "{report}");
    assert!(f(report, "/first_height") <= f(report, "/last_height"));
}

#[test]
fn load_reports_commits_and_latency_against_a_local_network() {
    let dir = tempfile::tempdir().unwrap();
    let (_nodes, base) = start_network(dir.path(), 2);
    let both = format!("{},{}", rpc_url(base, 0), rpc_url(base, 1));

    let http = load(dir.path(), &both, &["--rate", "40", "--duration", "3s"]);
    check_report(&http, "http", 2);
    // 40 tx/s for 3 s: the schedule offered 120, and what was not sent is said.
    assert_eq!(f(&http, "/offered"), 120.0, "{http}");
    assert_eq!(
        f(&http, "/offered"),
        f(&http, "/sent") + f(&http, "/not_sent")
    );
    let submitted = f(&http, "/submitted");
    assert!((60.0..=130.0).contains(&submitted), "{http}");
    assert_eq!(f(&http, "/rate_tx_s"), 40.0);

    // Over the websocket, to one node, starting from the nonces the first run left.
    let ws = load(
        dir.path(),
        &rpc_url(base, 1),
        &[
            "--rate",
            "40",
            "--duration",
            "2s",
            "--transport",
            "ws",
            "--max-accounts",
            "10",
        ],
    );
    check_report(&ws, "ws", 1);
    assert_eq!(f(&ws, "/accounts"), 10.0);
    assert_eq!(f(&ws, "/uncommitted"), 0.0, "{ws}");
}

#[test]
fn load_refuses_bad_input_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let missing: PathBuf = dir.path().join("nope.json");
    let out = run_bounded(
        Command::new(BIN)
            .arg("load")
            .arg("--accounts")
            .arg(&missing)
            .args(["--node", "http://127.0.0.1:1", "--duration", "1s"]),
        Duration::from_secs(20),
    );
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("nope.json") && stderr.lines().count() == 1,
        "{stderr}"
    );

    let out = run_bounded(
        Command::new(BIN).args(["load", "--accounts", "x", "--rate", "-5"]),
        Duration::from_secs(20),
    );
    assert!(!out.status.success());

    // A node that is not there: the run stops before any load with the address in the message.
    let accounts = dir.path().join("accounts.json");
    let key = basalt_consensus::types::PrivateKey::from_seed(&[9; 32]);
    let entry = serde_json::json!([{
        "address": key.public_key().address().to_hex_upper(),
        "seed": hex::encode([9u8; 32]),
    }]);
    std::fs::write(&accounts, entry.to_string()).unwrap();
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let out = run_bounded(
        Command::new(BIN)
            .arg("load")
            .arg("--accounts")
            .arg(&accounts)
            .args([
                "--node",
                &format!("http://127.0.0.1:{port}"),
                "--timeout",
                "2s",
            ]),
        Duration::from_secs(20),
    );
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(&port.to_string()), "{stderr}");
}
