//! Prometheus metrics with CometBFT v0.38's names, and the `/metrics` endpoint.
//!
//! Every series is `<namespace>_<subsystem>_<name>` (namespace `cometbft` by default; older dashboards
//! use `tendermint`) and carries the constant label `chain_id`. The runtime updates the public fields;
//! this module only defines and serves them. Basalt's own series live under `<namespace>_basalt_`.
//! CometBFT series that have no Basalt counterpart are listed in `docs/RPC.md` as skipped.

use std::collections::HashMap;
use std::future::Future;

use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use prometheus::{
    exponential_buckets, linear_buckets, Encoder, GaugeVec, Histogram, HistogramOpts, HistogramVec,
    IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry, TextEncoder,
};

use crate::build_info::BuildInfo;

/// Why metrics could not be built or served.
#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    /// A metric could not be created or registered (a bad name or a duplicate).
    #[error("metric {name}: {source}")]
    Register {
        /// The metric's full name.
        name: String,
        /// The library's error.
        source: prometheus::Error,
    },
    /// The exposition text could not be produced.
    #[error("encoding metrics: {source}")]
    Encode {
        /// The library's error.
        source: prometheus::Error,
    },
    /// The listener or the HTTP server failed.
    #[error("metrics server: {source}")]
    Serve {
        /// The I/O error.
        source: std::io::Error,
    },
}

/// The consensus steps labelled in `step_duration_seconds` (CometBFT's `RoundStepType` names).
pub const STEPS: [&str; 8] = [
    "NewHeight",
    "NewRound",
    "Propose",
    "Prevote",
    "PrevoteWait",
    "Precommit",
    "PrecommitWait",
    "Commit",
];

/// `<namespace>_consensus_*`.
#[derive(Debug, Clone)]
pub struct ConsensusMetrics {
    /// Height of the chain (the height being decided).
    pub height: IntGauge,
    /// The latest committed height (`/status` sync_info).
    pub latest_block_height: IntGauge,
    /// Rounds taken at the current height.
    pub rounds: IntGauge,
    /// Durations of rounds.
    pub round_duration_seconds: Histogram,
    /// Validators in the set.
    pub validators: IntGauge,
    /// Their total power.
    pub validators_power: IntGauge,
    /// This node's power, by `validator_address`.
    pub validator_power: IntGaugeVec,
    /// The last height this validator signed, by `validator_address`.
    pub validator_last_signed_height: IntGaugeVec,
    /// Blocks this validator missed, by `validator_address`.
    pub validator_missed_blocks: IntGaugeVec,
    /// Validators absent from the last commit.
    pub missing_validators: IntGauge,
    /// Their power.
    pub missing_validators_power: IntGauge,
    /// Validators with evidence in the last block.
    pub byzantine_validators: IntGauge,
    /// Their power.
    pub byzantine_validators_power: IntGauge,
    /// Time between consecutive block headers.
    pub block_interval_seconds: Histogram,
    /// Transactions in the last block.
    pub num_txs: IntGauge,
    /// Transactions committed in total.
    pub total_txs: IntGauge,
    /// Size of the last block.
    pub block_size_bytes: IntGauge,
    /// Time spent in each step, by `step` ([`STEPS`]).
    pub step_duration_seconds: HistogramVec,
}

/// `<namespace>_p2p_*`.
#[derive(Debug, Clone)]
pub struct P2pMetrics {
    /// Connected peers.
    pub peers: IntGauge,
    /// Bytes received, by `message_type`.
    pub message_receive_bytes_total: IntCounterVec,
    /// Bytes sent, by `message_type`.
    pub message_send_bytes_total: IntCounterVec,
}

/// `<namespace>_mempool_*`.
#[derive(Debug, Clone)]
pub struct MempoolMetrics {
    /// Transactions held.
    pub size: IntGauge,
    /// Bytes held.
    pub size_bytes: IntGauge,
    /// Sizes of admitted transactions.
    pub tx_size_bytes: Histogram,
    /// Transactions the application refused.
    pub failed_txs: IntCounter,
    /// Transactions refused because the mempool was full.
    pub rejected_txs: IntCounter,
    /// Transactions evicted.
    pub evicted_txs: IntCounter,
    /// Transactions rechecked after commits.
    pub recheck_times: IntCounter,
}

/// `<namespace>_state_*`.
#[derive(Debug, Clone)]
pub struct StateMetrics {
    /// Time spent executing a block (FinalizeBlock + Commit), in milliseconds as CometBFT has it.
    pub block_processing_time: Histogram,
}

/// `<namespace>_blocksync_*`.
#[derive(Debug, Clone)]
pub struct BlocksyncMetrics {
    /// 1 while block-syncing, else 0.
    pub syncing: IntGauge,
    /// The latest height applied by block sync.
    pub latest_block_height: IntGauge,
    /// Transactions in the last synced block.
    pub num_txs: IntGauge,
    /// Transactions synced in total.
    pub total_txs: IntGauge,
    /// Size of the last synced block.
    pub block_size_bytes: IntGauge,
}

/// `<namespace>_basalt_*`: Basalt's own series.
#[derive(Debug, Clone)]
pub struct BasaltMetrics {
    /// Consensus WAL fsync durations.
    pub wal_fsync_seconds: Histogram,
    /// `priv_validator_state.json` fsync durations (file and directory).
    pub privval_fsync_seconds: Histogram,
    /// Signatures verified, by `kind` (e.g. `vote`, `proposal`, `commit`, `tx`).
    pub signature_verifications_total: IntCounterVec,
    /// `abci_query` requests with a proof.
    pub proof_queries_total: IntCounter,
    /// Always 1, labelled with [`BuildInfo::fields`].
    pub build_info: GaugeVec,
}

/// All node metrics on one registry.
#[derive(Debug, Clone)]
pub struct Metrics {
    registry: Registry,
    /// Consensus.
    pub consensus: ConsensusMetrics,
    /// Networking.
    pub p2p: P2pMetrics,
    /// Mempool.
    pub mempool: MempoolMetrics,
    /// Block execution.
    pub state: StateMetrics,
    /// Block sync.
    pub blocksync: BlocksyncMetrics,
    /// Basalt-specific.
    pub basalt: BasaltMetrics,
}

/// Builds and registers metrics of one namespace.
struct Builder<'a> {
    registry: &'a Registry,
    namespace: &'a str,
}

impl Builder<'_> {
    fn opts(&self, subsystem: &str, name: &str, help: &str) -> Opts {
        Opts::new(name, help)
            .namespace(self.namespace)
            .subsystem(subsystem)
    }

    fn register<M: prometheus::core::Collector + Clone + 'static>(
        &self,
        full: String,
        made: Result<M, prometheus::Error>,
    ) -> Result<M, MetricsError> {
        let err = |source| MetricsError::Register {
            name: full.clone(),
            source,
        };
        let metric = made.map_err(err)?;
        self.registry
            .register(Box::new(metric.clone()))
            .map_err(err)?;
        Ok(metric)
    }

    fn full(&self, subsystem: &str, name: &str) -> String {
        format!("{}_{subsystem}_{name}", self.namespace)
    }

    fn int_gauge(&self, sub: &str, name: &str, help: &str) -> Result<IntGauge, MetricsError> {
        self.register(
            self.full(sub, name),
            IntGauge::with_opts(self.opts(sub, name, help)),
        )
    }

    fn int_gauge_vec(
        &self,
        sub: &str,
        name: &str,
        help: &str,
        labels: &[&str],
    ) -> Result<IntGaugeVec, MetricsError> {
        self.register(
            self.full(sub, name),
            IntGaugeVec::new(self.opts(sub, name, help), labels),
        )
    }

    fn counter(&self, sub: &str, name: &str, help: &str) -> Result<IntCounter, MetricsError> {
        self.register(
            self.full(sub, name),
            IntCounter::with_opts(self.opts(sub, name, help)),
        )
    }

    fn counter_vec(
        &self,
        sub: &str,
        name: &str,
        help: &str,
        labels: &[&str],
    ) -> Result<IntCounterVec, MetricsError> {
        self.register(
            self.full(sub, name),
            IntCounterVec::new(self.opts(sub, name, help), labels),
        )
    }

    fn histogram_opts(
        &self,
        sub: &str,
        name: &str,
        help: &str,
        buckets: Result<Vec<f64>, prometheus::Error>,
    ) -> Result<HistogramOpts, MetricsError> {
        let buckets = buckets.map_err(|source| MetricsError::Register {
            name: self.full(sub, name),
            source,
        })?;
        Ok(HistogramOpts::from(self.opts(sub, name, help)).buckets(buckets))
    }

    fn histogram(
        &self,
        sub: &str,
        name: &str,
        help: &str,
        buckets: Result<Vec<f64>, prometheus::Error>,
    ) -> Result<Histogram, MetricsError> {
        let opts = self.histogram_opts(sub, name, help, buckets)?;
        self.register(self.full(sub, name), Histogram::with_opts(opts))
    }
}

impl Metrics {
    /// Creates every metric on a new registry whose series all carry `chain_id`, plus the process
    /// collector (resident memory, CPU, open file descriptors).
    pub fn new(namespace: &str, chain_id: &str) -> Result<Metrics, MetricsError> {
        let labels = HashMap::from([("chain_id".to_owned(), chain_id.to_owned())]);
        let registry =
            Registry::new_custom(None, Some(labels)).map_err(|source| MetricsError::Register {
                name: "registry".into(),
                source,
            })?;
        let b = Builder {
            registry: &registry,
            namespace,
        };
        let consensus = consensus(&b)?;
        let p2p = P2pMetrics {
            peers: b.int_gauge("p2p", "peers", "Number of peers.")?,
            message_receive_bytes_total: b.counter_vec(
                "p2p",
                "message_receive_bytes_total",
                "Number of bytes of each message type received.",
                &["message_type"],
            )?,
            message_send_bytes_total: b.counter_vec(
                "p2p",
                "message_send_bytes_total",
                "Number of bytes of each message type sent.",
                &["message_type"],
            )?,
        };
        let mempool = MempoolMetrics {
            size: b.int_gauge("mempool", "size", "Number of uncommitted transactions.")?,
            size_bytes: b.int_gauge(
                "mempool",
                "size_bytes",
                "Total size of the mempool in bytes.",
            )?,
            tx_size_bytes: b.histogram(
                "mempool",
                "tx_size_bytes",
                "Transaction sizes in bytes.",
                exponential_buckets(16.0, 4.0, 8),
            )?,
            failed_txs: b.counter("mempool", "failed_txs", "Number of failed transactions.")?,
            rejected_txs: b.counter(
                "mempool",
                "rejected_txs",
                "Number of transactions rejected by a full mempool.",
            )?,
            evicted_txs: b.counter("mempool", "evicted_txs", "Number of transactions evicted.")?,
            recheck_times: b.counter(
                "mempool",
                "recheck_times",
                "Number of transactions rechecked in the mempool.",
            )?,
        };
        let state = StateMetrics {
            block_processing_time: b.histogram(
                "state",
                "block_processing_time",
                "Time spent processing a block in ms.",
                linear_buckets(1.0, 10.0, 10),
            )?,
        };
        let blocksync = BlocksyncMetrics {
            syncing: b.int_gauge(
                "blocksync",
                "syncing",
                "Whether the node is block syncing: 1 or 0.",
            )?,
            latest_block_height: b.int_gauge(
                "blocksync",
                "latest_block_height",
                "The latest block height.",
            )?,
            num_txs: b.int_gauge(
                "blocksync",
                "num_txs",
                "Number of transactions in the latest block.",
            )?,
            total_txs: b.int_gauge("blocksync", "total_txs", "Total number of transactions.")?,
            block_size_bytes: b.int_gauge(
                "blocksync",
                "block_size_bytes",
                "Size of the latest block.",
            )?,
        };
        let basalt = basalt(&b)?;
        #[cfg(target_os = "linux")]
        registry
            .register(Box::new(
                prometheus::process_collector::ProcessCollector::for_self(),
            ))
            .map_err(|source| MetricsError::Register {
                name: "process".into(),
                source,
            })?;
        Ok(Metrics {
            registry,
            consensus,
            p2p,
            mempool,
            state,
            blocksync,
            basalt,
        })
    }

    /// The registry (to serve with [`serve_metrics`]).
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// The Prometheus text exposition of every series.
    pub fn render(&self) -> Result<String, MetricsError> {
        render(&self.registry)
    }
}

fn consensus(b: &Builder<'_>) -> Result<ConsensusMetrics, MetricsError> {
    let c = "consensus";
    let step_opts = b.histogram_opts(
        c,
        "step_duration_seconds",
        "Time spent per step.",
        exponential_buckets(0.005, 2.0, 12),
    )?;
    let step_duration_seconds = b.register(
        b.full(c, "step_duration_seconds"),
        HistogramVec::new(step_opts, &["step"]),
    )?;
    // Every step exists from the start, so dashboards see zeros rather than gaps.
    for step in STEPS {
        let _ = step_duration_seconds.with_label_values(&[step]);
    }
    Ok(ConsensusMetrics {
        height: b.int_gauge(c, "height", "Height of the chain.")?,
        latest_block_height: b.int_gauge(c, "latest_block_height", "The latest block height.")?,
        rounds: b.int_gauge(c, "rounds", "Number of rounds.")?,
        round_duration_seconds: b.histogram(
            c,
            "round_duration_seconds",
            "Histogram of round duration.",
            exponential_buckets(0.05, 2.0, 12),
        )?,
        validators: b.int_gauge(c, "validators", "Number of validators.")?,
        validators_power: b.int_gauge(c, "validators_power", "Total power of all validators.")?,
        validator_power: b.int_gauge_vec(
            c,
            "validator_power",
            "Power of a validator.",
            &["validator_address"],
        )?,
        validator_last_signed_height: b.int_gauge_vec(
            c,
            "validator_last_signed_height",
            "Last signed height for a validator.",
            &["validator_address"],
        )?,
        validator_missed_blocks: b.int_gauge_vec(
            c,
            "validator_missed_blocks",
            "Total missed blocks for a validator.",
            &["validator_address"],
        )?,
        missing_validators: b.int_gauge(
            c,
            "missing_validators",
            "Number of validators who did not sign.",
        )?,
        missing_validators_power: b.int_gauge(
            c,
            "missing_validators_power",
            "Total power of the missing validators.",
        )?,
        byzantine_validators: b.int_gauge(
            c,
            "byzantine_validators",
            "Number of validators who tried to double sign.",
        )?,
        byzantine_validators_power: b.int_gauge(
            c,
            "byzantine_validators_power",
            "Total power of the byzantine validators.",
        )?,
        block_interval_seconds: b.histogram(
            c,
            "block_interval_seconds",
            "Time between this and the last block.",
            exponential_buckets(0.01, 2.0, 12),
        )?,
        num_txs: b.int_gauge(c, "num_txs", "Number of transactions.")?,
        total_txs: b.int_gauge(c, "total_txs", "Total number of transactions.")?,
        block_size_bytes: b.int_gauge(c, "block_size_bytes", "Size of the block.")?,
        step_duration_seconds,
    })
}

fn basalt(b: &Builder<'_>) -> Result<BasaltMetrics, MetricsError> {
    let s = "basalt";
    let fsync_buckets = || exponential_buckets(0.0001, 2.0, 16);
    let build_info = b.register(
        b.full(s, "build_info"),
        GaugeVec::new(
            b.opts(s, "build_info", "What the binary was built from; always 1."),
            &BuildInfo::current().fields().map(|(name, _)| name),
        ),
    )?;
    build_info
        .with_label_values(&BuildInfo::current().fields().map(|(_, value)| value))
        .set(1.0);
    Ok(BasaltMetrics {
        wal_fsync_seconds: b.histogram(
            s,
            "wal_fsync_seconds",
            "Consensus WAL fsync durations.",
            fsync_buckets(),
        )?,
        privval_fsync_seconds: b.histogram(
            s,
            "privval_fsync_seconds",
            "Validator signing-state fsync durations.",
            fsync_buckets(),
        )?,
        signature_verifications_total: b.counter_vec(
            s,
            "signature_verifications_total",
            "Signatures verified, by kind.",
            &["kind"],
        )?,
        proof_queries_total: b.counter(
            s,
            "proof_queries_total",
            "State queries answered with a proof.",
        )?,
        build_info,
    })
}

/// The text exposition of `registry`.
pub fn render(registry: &Registry) -> Result<String, MetricsError> {
    let mut buf = Vec::new();
    TextEncoder::new()
        .encode(&registry.gather(), &mut buf)
        .map_err(|source| MetricsError::Encode { source })?;
    Ok(String::from_utf8_lossy(&buf).into_owned())
}

/// Serves `GET /metrics` (Prometheus text format) on `listener` until `shutdown` completes.
pub async fn serve_metrics(
    listener: tokio::net::TcpListener,
    registry: Registry,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), MetricsError> {
    let app = Router::new().route(
        "/metrics",
        get(move || {
            let registry = registry.clone();
            async move {
                match render(&registry) {
                    Ok(text) => ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text)
                        .into_response(),
                    Err(e) => (axum::http::StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
                        .into_response(),
                }
            }
        }),
    );
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
        .map_err(|source| MetricsError::Serve { source })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    /// Every series name the brief and CometBFT's dashboards rely on.
    const NAMES: &[&str] = &[
        "consensus_height",
        "consensus_latest_block_height",
        "consensus_rounds",
        "consensus_round_duration_seconds_bucket",
        "consensus_validators",
        "consensus_validators_power",
        "consensus_validator_power",
        "consensus_validator_last_signed_height",
        "consensus_validator_missed_blocks",
        "consensus_missing_validators",
        "consensus_missing_validators_power",
        "consensus_byzantine_validators",
        "consensus_byzantine_validators_power",
        "consensus_block_interval_seconds_bucket",
        "consensus_num_txs",
        "consensus_total_txs",
        "consensus_block_size_bytes",
        "consensus_step_duration_seconds_bucket",
        "p2p_peers",
        "p2p_message_receive_bytes_total",
        "p2p_message_send_bytes_total",
        "mempool_size",
        "mempool_size_bytes",
        "mempool_tx_size_bytes_bucket",
        "mempool_failed_txs",
        "mempool_rejected_txs",
        "mempool_evicted_txs",
        "mempool_recheck_times",
        "state_block_processing_time_bucket",
        "blocksync_syncing",
        "blocksync_latest_block_height",
        "blocksync_num_txs",
        "blocksync_total_txs",
        "blocksync_block_size_bytes",
        "basalt_wal_fsync_seconds_bucket",
        "basalt_privval_fsync_seconds_bucket",
        "basalt_signature_verifications_total",
        "basalt_proof_queries_total",
        "basalt_build_info",
    ];

    /// CometBFT's counters whose names lack the `_total` suffix.
    const CUMULATIVE_WITHOUT_TOTAL: &[&str] = &[
        "mempool_failed_txs",
        "mempool_rejected_txs",
        "mempool_evicted_txs",
        "mempool_recheck_times",
    ];

    fn sample() -> Metrics {
        let m = Metrics::new("cometbft", "basalt-test-1").unwrap();
        let addr = ["ABCDEF0123456789ABCDEF0123456789ABCDEF01"];
        m.consensus.validator_power.with_label_values(&addr).set(10);
        m.consensus
            .validator_last_signed_height
            .with_label_values(&addr)
            .set(5);
        m.consensus
            .validator_missed_blocks
            .with_label_values(&addr)
            .set(0);
        m.p2p
            .message_receive_bytes_total
            .with_label_values(&["vote"])
            .inc_by(100);
        m.p2p
            .message_send_bytes_total
            .with_label_values(&["vote"])
            .inc_by(50);
        m.basalt
            .signature_verifications_total
            .with_label_values(&["vote"])
            .inc();
        m.basalt.wal_fsync_seconds.observe(0.002);
        m
    }

    #[test]
    fn every_name_is_exposed_with_the_chain_id_label() {
        let text = sample().render().unwrap();
        for name in NAMES {
            let full = format!("cometbft_{name}");
            let line = text
                .lines()
                .find(|l| l.starts_with(&full) && !l.starts_with('#'))
                .unwrap_or_else(|| panic!("{full} missing from:\n{text}"));
            assert!(line.contains("chain_id=\"basalt-test-1\""), "{line}");
        }
        for step in STEPS {
            assert!(text.contains(&format!("step=\"{step}\"")), "{step}");
        }
        // Every sample line carries the label, process metrics included.
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            assert!(line.contains("chain_id=\"basalt-test-1\""), "{line}");
        }
        #[cfg(target_os = "linux")]
        assert!(text.contains("process_resident_memory_bytes"));
        let build = text
            .lines()
            .find(|l| l.starts_with("cometbft_basalt_build_info"))
            .unwrap();
        assert!(build.contains("cargo_lock_sha256=\""), "{build}");
        assert!(build.ends_with(" 1"), "{build}");
    }

    #[test]
    fn namespace_is_configurable_and_duplicates_are_errors() {
        let m = Metrics::new("tendermint", "c").unwrap();
        assert!(m.render().unwrap().contains("tendermint_consensus_height{"));
        let err = m
            .registry()
            .register(Box::new(m.consensus.height.clone()))
            .unwrap_err();
        assert!(matches!(err, prometheus::Error::AlreadyReg));
        assert!(Metrics::new("bad-namespace", "c").is_err());
    }

    #[test]
    fn promtool_accepts_the_exposition() {
        let text = sample().render().unwrap();
        let promtool = std::path::Path::new("/usr/bin/promtool");
        let found = promtool.exists()
            || std::process::Command::new("promtool")
                .arg("--version")
                .output()
                .is_ok();
        if !found {
            println!("SKIPPED: promtool is not installed (apt-get install prometheus)");
            return;
        }
        use std::io::Write as _;
        let mut child = std::process::Command::new("promtool")
            .args(["check", "metrics"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        let report = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        // CometBFT names these counters without `_total` and dashboards use those names, so the
        // lint about the suffix is expected for exactly them; anything else (and any parse error)
        // fails the test.
        let allowed: Vec<String> = CUMULATIVE_WITHOUT_TOTAL
            .iter()
            .map(|n| format!("cometbft_{n} counter metrics should have \"_total\" suffix"))
            .collect();
        let problems: Vec<&str> = report
            .lines()
            .filter(|l| !l.trim().is_empty() && !allowed.iter().any(|a| a == l.trim()))
            .collect();
        assert!(
            problems.is_empty(),
            "promtool check metrics (exit {:?}) reported:\n{report}",
            out.status.code()
        );
    }

    #[tokio::test]
    async fn serves_metrics_over_http() {
        let m = sample();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(serve_metrics(listener, m.registry().clone(), async {
            let _ = stopped.await;
        }));
        let body = reqwest::get(format!("http://{addr}/metrics"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(body.contains("cometbft_consensus_height{chain_id=\"basalt-test-1\"} 0"));
        let _ = stop.send(());
        tokio::time::timeout(std::time::Duration::from_secs(10), server)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
    }
}
