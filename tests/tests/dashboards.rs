//! The shipped Grafana dashboards against a live network and a real Prometheus (issue 5's "done means").
//!
//! Four validators from `basalt testnet` (the process harness) commit blocks while a few transfers are
//! submitted; a real `prometheus` scrapes every node's metrics each second; then every panel query of every
//! dashboard JSON in `testnet/grafana/dashboards/` (Grafana variables replaced by concrete values) must return
//! at least one sample that is a number, and every template variable query must find values. A misspelt
//! metric, a label the node does not export, or a histogram that is never observed fails the test.
//!
//! Prometheus is `$PROMETHEUS_BIN`, else `prometheus` on the PATH; when missing, the test installs it with
//! `apt-get install -y prometheus` if it runs as root (CI does) and otherwise fails saying so.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use basalt_consensus::types::Address;
use basalt_tests::relayer;
use basalt_tests::testnet::{transfer_tx, Testnet};
use base64::Engine as _;
use serde_json::{json, Value};

/// How long the nodes may take to commit height 2.
const NODES_WAIT: Duration = Duration::from_secs(30);
/// How long Prometheus may take to start answering.
const READY_WAIT: Duration = Duration::from_secs(20);
/// How long the queries may take to all return data (rates need two scrapes inside their window).
const DATA_WAIT: Duration = Duration::from_secs(40);
/// What `$__rate_interval` / `$__interval` / `$__range` become: 10 scrapes at the 1 s interval.
const RATE_INTERVAL: &str = "10s";
/// Transfers submitted so the transaction panels see committed transactions.
const TRANSFERS: usize = 20;

/// The dashboards this repository ships.
fn dashboards_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("testnet")
        .join("grafana")
        .join("dashboards")
}

/// One panel query to check.
#[derive(Debug, Clone)]
struct PanelQuery {
    /// `file: panel title [refId]`, for failure messages.
    place: String,
    /// The expression as shipped.
    expr: String,
}

/// One template variable's `label_values(...)` query.
#[derive(Debug, Clone)]
struct VariableQuery {
    place: String,
    /// The series selector (None: `label_values(label)` over every series).
    selector: Option<String>,
    label: String,
}

/// Panels of a dashboard JSON, rows' nested panels included.
fn collect_panels<'a>(panels: &'a [Value], out: &mut Vec<&'a Value>) {
    for panel in panels {
        out.push(panel);
        if let Some(nested) = panel.get("panels").and_then(Value::as_array) {
            collect_panels(nested, out);
        }
    }
}

/// What a dashboard shows: the nodes' metrics, or `basalt relay start`'s (tagged `relayer`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Source {
    Nodes,
    Relayer,
}

/// Every panel query and variable query of every dashboard of `source`, after checking the shape
/// Grafana needs.
fn load_dashboards(source: Source) -> (Vec<PanelQuery>, Vec<VariableQuery>) {
    let dir = dashboards_dir();
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no dashboard JSON in {}", dir.display());
    let mut queries = Vec::new();
    let mut variables = Vec::new();
    for file in &files {
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        let text = std::fs::read_to_string(file).unwrap();
        let dashboard: Value =
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name} is not JSON: {e}"));
        assert!(dashboard["uid"].is_string(), "{name}: no uid");
        assert!(dashboard["title"].is_string(), "{name}: no title");
        let relayer = dashboard["tags"]
            .as_array()
            .is_some_and(|tags| tags.iter().any(|t| t == "relayer"));
        if relayer != (source == Source::Relayer) {
            continue;
        }
        let templating = dashboard["templating"]["list"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let has_chain_var = templating.iter().any(|v| v["name"] == "chain_id");
        assert!(has_chain_var, "{name}: no chain_id variable");
        for var in &templating {
            if var["type"] != "query" {
                continue;
            }
            let var_name = var["name"].as_str().unwrap_or("?");
            let place = format!("{name}: variable {var_name}");
            let query = var["query"]["query"]
                .as_str()
                .or_else(|| var["query"].as_str())
                .unwrap_or_else(|| panic!("{place}: no query"));
            variables.push(parse_label_values(&place, query));
        }
        let mut panels = Vec::new();
        collect_panels(
            dashboard["panels"]
                .as_array()
                .map_or(&[][..], Vec::as_slice),
            &mut panels,
        );
        for panel in panels {
            if panel["type"] == "row" {
                continue;
            }
            let title = panel["title"].as_str().unwrap_or("?");
            let targets = panel["targets"].as_array().cloned().unwrap_or_default();
            assert!(!targets.is_empty(), "{name}: panel {title:?} has no query");
            for target in targets {
                let ref_id = target["refId"].as_str().unwrap_or("?");
                let place = format!("{name}: panel {title:?} [{ref_id}]");
                let expr = target["expr"]
                    .as_str()
                    .filter(|e| !e.trim().is_empty())
                    .unwrap_or_else(|| panic!("{place}: empty expr"));
                // Every series is of one chain (the nodes' chain_id, the relayer's chain or src_chain
                // label): a query that does not select it mixes chains on one Prometheus.
                assert!(
                    expr.contains("$chain_id"),
                    "{place}: does not select chain_id: {expr}"
                );
                queries.push(PanelQuery {
                    place,
                    expr: expr.to_owned(),
                });
            }
        }
    }
    assert!(!queries.is_empty(), "no panel queries in {}", dir.display());
    (queries, variables)
}

/// `label_values(selector, label)` or `label_values(label)`.
fn parse_label_values(place: &str, query: &str) -> VariableQuery {
    let inner = query
        .trim()
        .strip_prefix("label_values(")
        .and_then(|q| q.strip_suffix(')'))
        .unwrap_or_else(|| {
            panic!("{place}: only label_values(...) variables are checked, got {query}")
        });
    let (selector, label) = match inner.rsplit_once(',') {
        Some((selector, label)) => (Some(selector.trim().to_owned()), label.trim().to_owned()),
        None => (None, inner.trim().to_owned()),
    };
    VariableQuery {
        place: place.to_owned(),
        selector,
        label,
    }
}

/// Replaces the Grafana variables a dashboard may use by concrete values; an error names any other `$name`.
fn substitute(place: &str, expr: &str, chain_id: &str) -> Result<String, String> {
    // Longest names first: `$__interval` is a prefix of `$__interval_ms`.
    let values = [
        ("__rate_interval", RATE_INTERVAL),
        ("__interval_ms", "1000"),
        ("__interval", RATE_INTERVAL),
        ("__range_s", "60"),
        ("__range", "1m"),
        ("chain_id", chain_id),
        ("instance", ".+"),
        ("datasource", "basalt-prometheus"),
    ];
    let mut out = expr.to_owned();
    for (name, value) in values {
        out = out
            .replace(&format!("${{{name}}}"), value)
            .replace(&format!("[[{name}]]"), value)
            .replace(&format!("${name}"), value);
    }
    let leftover = out.char_indices().filter(|&(_, c)| c == '$').any(|(i, _)| {
        out[i + 1..]
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == '{')
    });
    if leftover {
        return Err(format!(
            "{place}: unknown Grafana variable in {expr} (known: see `substitute` in tests/tests/dashboards.rs)"
        ));
    }
    Ok(out)
}

/// The `prometheus` binary: `$PROMETHEUS_BIN`, or `prometheus` on the PATH (scripts/install-deps.sh, which
/// `.ci/run` and scripts/test.sh run first, installs it; a test installs nothing).
fn prometheus_bin() -> PathBuf {
    if let Some(path) = std::env::var_os("PROMETHEUS_BIN") {
        return PathBuf::from(path);
    }
    let found = Command::new("prometheus")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        found,
        "prometheus is not installed: run scripts/install-deps.sh (or set PROMETHEUS_BIN)"
    );
    PathBuf::from("prometheus")
}

/// A Prometheus child process, killed when dropped.
struct Prometheus {
    child: Child,
    url: String,
    log: PathBuf,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Prometheus {
    /// Starts `bin` on a free loopback port scraping `targets` (host:port) every second; waits until ready.
    async fn start(
        bin: &Path,
        dir: &Path,
        targets: &[String],
        http: &reqwest::Client,
    ) -> Prometheus {
        let config = dir.join("prometheus.yml");
        let mut yaml = String::from(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: basalt\n    static_configs:\n",
        );
        for (i, target) in targets.iter().enumerate() {
            yaml.push_str(&format!(
                "      - targets: ['{target}']\n        labels: {{node: node{i}}}\n"
            ));
        }
        std::fs::write(&config, yaml).unwrap();
        // The port is free when read back but could be taken before Prometheus binds it: retry a few times.
        for attempt in 0..3 {
            let port = TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            let log = dir.join(format!("prometheus.{attempt}.log"));
            let out = std::fs::File::create(&log).unwrap();
            let child = Command::new(bin)
                .arg(format!("--config.file={}", config.display()))
                .arg(format!(
                    "--storage.tsdb.path={}",
                    dir.join(format!("data{attempt}")).display()
                ))
                .arg(format!("--web.listen-address=127.0.0.1:{port}"))
                .stdin(Stdio::null())
                .stdout(out.try_clone().unwrap())
                .stderr(out)
                .spawn()
                .unwrap_or_else(|e| panic!("starting {}: {e}", bin.display()));
            let mut prometheus = Prometheus {
                child,
                url: format!("http://127.0.0.1:{port}"),
                log,
            };
            let deadline = Instant::now() + READY_WAIT;
            while Instant::now() < deadline {
                if let Ok(Some(_)) = prometheus.child.try_wait() {
                    break;
                }
                let ready = http.get(format!("{}/-/ready", prometheus.url)).send().await;
                if ready.is_ok_and(|r| r.status().is_success()) {
                    return prometheus;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            eprintln!(
                "prometheus attempt {attempt} on port {port} did not become ready:\n{}",
                prometheus.log_tail()
            );
        }
        panic!("prometheus did not start (logs in {})", dir.display());
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    /// An instant query; the result samples as (labels, value text).
    async fn query(
        &self,
        http: &reqwest::Client,
        expr: &str,
    ) -> Result<Vec<(Value, String)>, String> {
        let response = http
            .get(format!("{}/api/v1/query", self.url))
            .query(&[("query", expr)])
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let body: Value = response.json().await.map_err(|e| e.to_string())?;
        if body["status"] != "success" {
            return Err(format!("{}: {}", body["errorType"], body["error"]));
        }
        let data = &body["data"];
        let sample = |v: &Value| v[1].as_str().unwrap_or("").to_owned();
        Ok(match data["resultType"].as_str() {
            Some("vector") => data["result"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|s| (s["metric"].clone(), sample(&s["value"])))
                .collect(),
            Some("scalar") => vec![(Value::Null, sample(&data["result"]))],
            other => return Err(format!("unexpected result type {other:?}")),
        })
    }

    /// Values of `label` on the series `selector` matches.
    async fn label_values(
        &self,
        http: &reqwest::Client,
        label: &str,
        selector: Option<&str>,
    ) -> Result<Vec<String>, String> {
        let mut request = http.get(format!("{}/api/v1/label/{label}/values", self.url));
        if let Some(selector) = selector {
            request = request.query(&[("match[]", selector)]);
        }
        let body: Value = request
            .send()
            .await
            .map_err(|e| e.to_string())?
            .json()
            .await
            .map_err(|e| e.to_string())?;
        if body["status"] != "success" {
            return Err(format!("{}: {}", body["errorType"], body["error"]));
        }
        Ok(body["data"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect())
    }
}

/// Submits `TRANSFERS` transfers spread over the nodes; returns how many were accepted.
async fn submit_transfers(net: &Testnet, chain_id: &str) -> usize {
    let accounts = net.accounts().unwrap();
    assert!(accounts.len() >= TRANSFERS / 2, "too few funded accounts");
    let sink = Address([0x5a; 20]);
    let mut accepted = 0;
    for n in 0..TRANSFERS {
        // Two transfers (nonces 0 and 1) from each of TRANSFERS/2 accounts.
        let (_, seed) = &accounts[n / 2];
        let tx = transfer_tx(chain_id, seed, &sink, 7, (n % 2) as u64).unwrap();
        let b64 = base64::engine::general_purpose::STANDARD.encode(&tx);
        let res = net
            .rpc(n % 4, "broadcast_tx_sync", json!({"tx": b64}))
            .await
            .unwrap();
        assert_eq!(res["code"], 0, "transfer {n} refused: {res}");
        accepted += 1;
    }
    accepted
}

/// The panel and variable queries that return no data for `chain_id` yet, each with what it got.
async fn missing_data(
    prometheus: &Prometheus,
    http: &reqwest::Client,
    queries: &[PanelQuery],
    variables: &[VariableQuery],
    chain_id: &str,
) -> Vec<String> {
    let mut failing = Vec::new();
    for q in queries {
        let expr = substitute(&q.place, &q.expr, chain_id).unwrap();
        match prometheus.query(http, &expr).await {
            Ok(samples) if samples.iter().any(|(_, v)| v != "NaN") => {}
            Ok(samples) => failing.push(format!(
                "{}: {expr}\n    -> {} sample(s), none a number",
                q.place,
                samples.len()
            )),
            Err(e) => failing.push(format!("{}: {expr}\n    -> error {e}", q.place)),
        }
    }
    for v in variables {
        let selector = v
            .selector
            .as_deref()
            .map(|s| substitute(&v.place, s, chain_id).unwrap());
        match prometheus
            .label_values(http, &v.label, selector.as_deref())
            .await
        {
            Ok(values) if v.label == "chain_id" && !values.iter().any(|v| v == chain_id) => failing
                .push(format!(
                    "{}: label_values({selector:?}, {}) lacks {chain_id}: {values:?}",
                    v.place, v.label
                )),
            Ok(values) if !values.is_empty() => {}
            other => failing.push(format!(
                "{}: label_values({selector:?}, {}) -> {other:?}",
                v.place, v.label
            )),
        }
    }
    failing
}

/// Polls until `probe` (what must be true of the data first: `(expr, what it must show)`) and every
/// panel and variable query answer with data for `chain_id`, for at most [`DATA_WAIT`]; fails listing
/// every query that never did.
async fn wait_for_every_query(
    prometheus: &Prometheus,
    http: &reqwest::Client,
    (queries, variables): (&[PanelQuery], &[VariableQuery]),
    chain_id: &str,
    probe: (&str, &dyn Fn(&str) -> bool),
) {
    let (expr, wanted) = probe;
    let deadline = Instant::now() + DATA_WAIT;
    let mut failing: Vec<String>;
    loop {
        failing = Vec::new();
        match prometheus.query(http, expr).await {
            Ok(samples) if samples.iter().any(|(_, v)| wanted(v)) => {}
            other => failing.push(format!("{expr}: got {other:?}")),
        }
        failing.extend(missing_data(prometheus, http, queries, variables, chain_id).await);
        if failing.is_empty() || Instant::now() >= deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert!(
        failing.is_empty(),
        "{} of {} dashboard queries returned no data within {}s (Prometheus log tail:\n{}):\n{}",
        failing.len(),
        queries.len() + variables.len() + 1,
        DATA_WAIT.as_secs(),
        prometheus.log_tail(),
        failing.join("\n")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_dashboard_panel_returns_data_from_a_live_network() {
    let started = Instant::now();
    // Parse first: a broken dashboard fails before any process starts.
    let (queries, variables) = load_dashboards(Source::Nodes);
    // Unknown variables fail here too, before any process starts (the chain id is filled in later).
    for q in &queries {
        substitute(&q.place, &q.expr, "chain").unwrap_or_else(|e| panic!("{e}"));
    }
    for v in &variables {
        if let Some(selector) = &v.selector {
            substitute(&v.place, selector, "chain").unwrap_or_else(|e| panic!("{e}"));
        }
    }
    let bin = prometheus_bin();

    let mut net = Testnet::generate(4, 0, TRANSFERS).unwrap();
    for i in 0..4 {
        net.start(i, &[]).unwrap();
    }
    for i in 0..4 {
        net.wait_height(i, 2, NODES_WAIT).await.unwrap();
    }
    let chain_id = net.chain_id().await.unwrap();

    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let prom_dir = tempfile::tempdir().unwrap();
    let targets: Vec<String> = (0..4)
        .map(|i| {
            net.metrics_url(i)
                .trim_start_matches("http://")
                .trim_end_matches("/metrics")
                .to_owned()
        })
        .collect();
    let prometheus = Prometheus::start(&bin, prom_dir.path(), &targets, &http).await;

    let submitted = submit_transfers(&net, &chain_id).await;

    // Wait (bounded) until every query answers with data; report every one that never did. Prometheus
    // must see the committed transfers first: the samples are the chain's, not stale zeros.
    let total = format!("max(cometbft_consensus_total_txs{{chain_id=\"{chain_id}\"}})");
    let enough = |v: &str| v.parse::<f64>().is_ok_and(|v| v >= submitted as f64);
    wait_for_every_query(
        &prometheus,
        &http,
        (&queries, &variables),
        &chain_id,
        (&total, &enough),
    )
    .await;
    eprintln!(
        "{} panel queries and {} variables returned data in {:.1}s",
        queries.len(),
        variables.len(),
        started.elapsed().as_secs_f64()
    );
    drop(prometheus);
    for i in 0..4 {
        net.kill(i);
    }
}

/// The relayer dashboards (tagged `relayer`) against a live `basalt relay start`: two chains of one
/// validator each, a path between them, a transfer each way relayed and acknowledged, and a real
/// Prometheus scraping the relayer's `--metrics` endpoint each second; every panel and variable query
/// must return data for chain `basalt-a`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_relayer_panel_returns_data_from_a_live_relayer() {
    let started = Instant::now();
    let (queries, variables) = load_dashboards(Source::Relayer);
    for q in &queries {
        substitute(&q.place, &q.expr, "chain").unwrap_or_else(|e| panic!("{e}"));
    }
    let bin = prometheus_bin();
    let mut chains = Vec::new();
    for chain_id in ["basalt-a", "basalt-b"] {
        let mut net = Testnet::generate_chain(1, 0, 2, Some(chain_id)).unwrap();
        net.start(0, &[]).unwrap();
        net.wait_height(0, 2, NODES_WAIT).await.unwrap();
        chains.push(net);
    }
    let (a, b) = (&chains[0], &chains[1]);
    let dir = tempfile::tempdir().unwrap();
    let config = relayer::write_config(a, b, 0, dir.path(), "").unwrap();
    relayer::create_path(&config).unwrap();
    let log = dir.path().join("relay.log");
    let _relayer = relayer::start(&config, &log, &["--metrics", "127.0.0.1:0"]).unwrap();
    let metrics = relayer::metrics_url(&log, NODES_WAIT).await.unwrap();

    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let prom_dir = tempfile::tempdir().unwrap();
    let target = metrics
        .trim_start_matches("http://")
        .trim_end_matches("/metrics")
        .to_owned();
    let prometheus = Prometheus::start(&bin, prom_dir.path(), &[target], &http).await;

    // A transfer each way (from each chain's second account: the relayer signs with the first).
    for (from, to) in [(a, b), (b, a)] {
        let (receiver, _) = to.accounts().unwrap().remove(1);
        let hash = from
            .ibc_transfer(0, &receiver, 5, &["--key-index", "1"])
            .unwrap();
        let committed = from.wait_tx(0, &hash, NODES_WAIT).await.unwrap();
        assert_eq!(committed["tx_result"]["code"], 0, "{committed}");
    }

    // Prometheus must have scraped the relayed packets, not only the relayer's start.
    let relayed = r#"sum(basalt_relayer_packets_total{src_chain="basalt-a",kind="ack"})"#;
    wait_for_every_query(
        &prometheus,
        &http,
        (&queries, &variables),
        "basalt-a",
        (relayed, &|v: &str| v == "1"),
    )
    .await;
    eprintln!(
        "{} relayer panel queries and {} variables returned data in {:.1}s",
        queries.len(),
        variables.len(),
        started.elapsed().as_secs_f64()
    );
}

#[test]
fn substitution_replaces_known_variables_and_rejects_unknown_ones() {
    let expr = r#"rate(x{chain_id="$chain_id", instance=~"${instance}"}[$__rate_interval]) / $__interval_ms"#;
    assert_eq!(
        substitute("t", expr, "c-1").unwrap(),
        r#"rate(x{chain_id="c-1", instance=~".+"}[10s]) / 1000"#
    );
    let unknown = substitute("t", "x{a=\"$node\"}", "c").unwrap_err();
    assert!(unknown.contains("$node"), "{unknown}");
    assert!(substitute("t", "x{a=\"${node}\"}", "c").is_err());
    // A `$` ending a regex is PromQL, not a variable.
    assert_eq!(
        substitute("t", r#"x{a=~"b$"}"#, "c").unwrap(),
        r#"x{a=~"b$"}"#
    );
}

#[test]
fn label_values_queries_parse() {
    let v = parse_label_values("p", r#"label_values(m{chain_id="$chain_id"}, instance)"#);
    assert_eq!(v.selector.as_deref(), Some(r#"m{chain_id="$chain_id"}"#));
    assert_eq!(v.label, "instance");
    let v = parse_label_values("p", "label_values(chain_id)");
    assert_eq!((v.selector, v.label.as_str()), (None, "chain_id"));
}
