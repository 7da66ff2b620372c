//! `basalt relay`: an IBC relayer between two Basalt chains, in the same binary, as its own process.
//!
//! `basalt relay create-path --config relay.toml` finds or creates a client of each chain on the other,
//! an open connection and an open ICS-20 channel, and prints their identifiers. `basalt relay start`
//! (same config) then relays packets, acknowledgements and timeouts both ways on that path until
//! stopped, reconciling from chain state on every pass ([`packets`]; an idle relayer's next pass starts
//! when either chain commits a block that may matter, or after `--poll`: [`wake`]), and watches both
//! clients for conflicting headers, which it submits as misbehaviour ([`watch`]).
//!
//! The config names the two chains:
//!
//! ```toml
//! trusting_period = "32h"      # of the clients it creates; below the tracked chain's evidence max age
//!                              # (default: 2/3 of it); a client is refreshed at a third of it
//! [a]
//! rpc = "http://127.0.0.1:26657"
//! key_file = "accounts.json"   # a priv_validator_key.json, an accounts.json entry or array
//! key_index = 0                # with an array
//! fee = 0                      # paid per relayer transaction
//! [b]
//! rpc = "http://127.0.0.1:27657"
//! key_file = "accounts.json"
//! ```

pub mod metrics;
pub mod packets;
pub mod path;
pub mod remote;
pub mod wake;
pub mod watch;

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::cli::tx::build::load_signing_key;
use crate::cli::tx::TxError;
use remote::Remote;

/// Why the relayer stopped.
#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    /// The config file cannot be used.
    #[error("config {}: {reason}", path.display())]
    Config {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// A JSON-RPC call failed or answered something unexpected.
    #[error("rpc {method}: {reason}")]
    Rpc {
        /// The method.
        method: &'static str,
        /// Why.
        reason: String,
    },
    /// A chain refused a relayer transaction.
    #[error("{chain} refused the relayer's transaction at {stage} with code {code}: {log}")]
    Refused {
        /// The chain.
        chain: String,
        /// `check_tx` or `tx_result`.
        stage: &'static str,
        /// Its code.
        code: u64,
        /// Its log.
        log: String,
    },
    /// A new client's trusting period would not be below its chain's evidence max age (that chain
    /// refuses such a client of itself in the connection handshake).
    #[error(
        "a client of {chain} trusting headers for {period_ms} ms: not below {chain}'s evidence max age \
         ({evidence_max_age_ms} ms); set trusting_period in the config below it"
    )]
    TrustingPeriod {
        /// The chain the client follows.
        chain: String,
        /// The trusting period asked for.
        period_ms: u64,
        /// The chain's `consensus_params.evidence.max_age_duration`, ms.
        evidence_max_age_ms: u64,
    },
    /// The source's headers from the client's latest height up to the one wanted do not verify
    /// under the client's rules (the client expired, or the source serves another chain): the
    /// destination would refuse every update.
    #[error("{chain}'s headers from height {from} to {to} do not verify for its client: {source}")]
    Unverifiable {
        /// The chain the client follows.
        chain: String,
        /// The client's latest height.
        from: u64,
        /// The height wanted.
        to: u64,
        /// Why.
        source: Box<basalt_consensus::light::SkipError>,
    },
    /// A chain's IBC state is not what the relayer expected.
    #[error("unexpected IBC state: {0}")]
    State(String),
    /// The state shows a packet or acknowledgement whose event `tx_search` does not find (yet: a node
    /// indexes a block's events after committing it, and may lag under load). Retried next pass.
    #[error("{chain}: no event found yet for {query}")]
    NotIndexed {
        /// The chain searched.
        chain: String,
        /// The query.
        query: String,
    },
    /// Key file or signing (shared with `basalt tx`).
    #[error(transparent)]
    Tx(TxError),
}

impl From<TxError> for RelayError {
    /// A failed JSON-RPC call is [`RelayError::Rpc`], whichever client made it: the relayer retries
    /// those (a node may restart or be busy), while other `basalt tx` errors stop it.
    fn from(e: TxError) -> RelayError {
        match e {
            TxError::Rpc { method, reason } => RelayError::Rpc { method, reason },
            other => RelayError::Tx(other),
        }
    }
}

/// One chain of the relayer's config.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChainConfig {
    /// Its node's RPC address.
    pub rpc: String,
    /// The relayer's key on it.
    pub key_file: PathBuf,
    /// With an accounts.json array, which entry.
    #[serde(default)]
    pub key_index: usize,
    /// Fee per relayer transaction.
    #[serde(default)]
    pub fee: u128,
}

/// The relayer's config file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RelayConfig {
    /// Trusting period of the clients the relayer creates (`"32h"`, `"1h"`; default two thirds of the
    /// tracked chain's evidence max age, below which it must be). The relayer refreshes a client once
    /// its newest state is a third of this old.
    #[serde(default)]
    pub trusting_period: Option<String>,
    /// One chain.
    pub a: ChainConfig,
    /// The other.
    pub b: ChainConfig,
}

/// Largest config file read.
pub const MAX_CONFIG_BYTES: u64 = 64 * 1024;

impl RelayConfig {
    /// The configured trusting period of new clients, in ms (none: the default of
    /// [`path::new_client_trusting_period_ms`]).
    pub fn trusting_period_ms(&self) -> Option<u64> {
        self.trusting_period
            .as_deref()
            .and_then(|t| crate::config::parse_duration(t).ok())
            .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }

    /// Reads `path`; key files are relative to its directory.
    pub fn load(path: &Path) -> Result<RelayConfig, RelayError> {
        let bad = |reason: String| RelayError::Config {
            path: path.to_path_buf(),
            reason,
        };
        let len = std::fs::metadata(path)
            .map_err(|e| bad(e.to_string()))?
            .len();
        if len > MAX_CONFIG_BYTES {
            return Err(bad(format!("{len} bytes, more than {MAX_CONFIG_BYTES}")));
        }
        let text = std::fs::read_to_string(path).map_err(|e| bad(e.to_string()))?;
        let mut config: RelayConfig = toml::from_str(&text).map_err(|e| bad(e.to_string()))?;
        if let Some(text) = &config.trusting_period {
            let period = crate::config::parse_duration(text)
                .map_err(|e| bad(format!("trusting_period: {e}")))?;
            if period.as_millis() == 0 || period.as_millis() > u128::from(u64::MAX) {
                return Err(bad("trusting_period: must be positive".to_owned()));
            }
        }
        let dir = path.parent().unwrap_or(Path::new("."));
        for chain in [&mut config.a, &mut config.b] {
            if chain.key_file.is_relative() {
                chain.key_file = dir.join(&chain.key_file);
            }
        }
        Ok(config)
    }
}

/// Arguments shared by the relay commands.
#[derive(Debug, Clone, clap::Args)]
pub struct RelayArgs {
    /// The relayer's config (two chains: RPC address and key).
    #[arg(long)]
    pub config: PathBuf,
    /// Timeout of each RPC request.
    #[arg(long, default_value = "30s", value_parser = crate::config::parse_duration)]
    pub timeout: Duration,
}

/// `basalt relay <command>`.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum RelayCommand {
    /// Find or create clients, a connection and an ICS-20 channel between the two chains; print them as
    /// JSON.
    CreatePath(RelayArgs),
    /// Relay packets, acknowledgements and timeouts both ways on the path (found as create-path finds
    /// it) until stopped.
    Start(StartArgs),
}

/// Arguments of `basalt relay start`.
#[derive(Debug, Clone, clap::Args)]
pub struct StartArgs {
    /// Config and RPC timeout.
    #[command(flatten)]
    pub relay: RelayArgs,
    /// Longest pause after a pass that moved nothing (a block subscription ends it sooner; while the
    /// subscription is down, the passes poll this often). Idle chains' clients are checked for refresh
    /// once per pause: keep it far below a third of their trusting period.
    #[arg(long, default_value = "200ms", value_parser = crate::config::parse_duration)]
    pub poll: Duration,
    /// Serve Prometheus metrics on this address (`127.0.0.1:0` picks a free port; the address is
    /// printed).
    #[arg(long)]
    pub metrics: Option<String>,
}

async fn connect(chain: &ChainConfig, timeout: Duration) -> Result<Remote, RelayError> {
    let key = load_signing_key(&chain.key_file, chain.key_index)?;
    Remote::connect(&chain.rpc, key, chain.fee, timeout).await
}

/// Runs a relay command.
pub fn run(command: &RelayCommand) -> Result<(), RelayError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| RelayError::Rpc {
            method: "connect",
            reason: format!("cannot start a tokio runtime: {e}"),
        })?;
    match command {
        RelayCommand::CreatePath(args) => runtime.block_on(async {
            let config = RelayConfig::load(&args.config)?;
            let a = connect(&config.a, args.timeout).await?;
            let b = connect(&config.b, args.timeout).await?;
            let ids = path::create_path(&a, &b, config.trusting_period_ms()).await?;
            println!(
                "{}",
                serde_json::json!({
                    "a": {"chain_id": a.chain_id.to_string(), "client": ids.clients.0.to_string(),
                          "connection": ids.connections.0.to_string(), "channel": ids.channels.0.to_string()},
                    "b": {"chain_id": b.chain_id.to_string(), "client": ids.clients.1.to_string(),
                          "connection": ids.connections.1.to_string(), "channel": ids.channels.1.to_string()},
                })
            );
            Ok(())
        }),
        RelayCommand::Start(args) => runtime.block_on(start(args)),
    }
}

/// `relay start`: passes over both directions until stopped; one line per pass that moved something.
/// An RPC failure is reported and the pass retried (a node may restart); state errors stop the relayer.
async fn start(args: &StartArgs) -> Result<(), RelayError> {
    let config = RelayConfig::load(&args.relay.config)?;
    let a = connect(&config.a, args.relay.timeout).await?;
    let b = connect(&config.b, args.relay.timeout).await?;
    let ids = path::create_path(&a, &b, config.trusting_period_ms()).await?;
    eprintln!(
        "relaying {} {} <-> {} {}",
        a.chain_id, ids.channels.0, b.chain_id, ids.channels.1
    );
    let metrics = metrics::RelayMetrics::new().map_err(|e| RelayError::State(e.to_string()))?;
    if let Some(addr) = &args.metrics {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|e| RelayError::State(format!("metrics address {addr}: {e}")))?;
        let bound = listener
            .local_addr()
            .map_err(|e| RelayError::State(format!("metrics address {addr}: {e}")))?;
        eprintln!("metrics on http://{bound}/metrics");
        let registry = metrics.registry.clone();
        tokio::spawn(async move {
            if let Err(e) =
                crate::metrics::serve_metrics(listener, registry, std::future::pending()).await
            {
                eprintln!("metrics server stopped: {e}");
            }
        });
    }
    // Series that only count rare events exist from the start (a dashboard shows 0, not "no data").
    for chain in [&a.chain_id, &b.chain_id] {
        metrics
            .misbehaviour
            .with_label_values(&[chain.as_str()])
            .inc_by(0);
    }
    // Block subscriptions wake idle passes; without them the passes poll.
    let wake = std::sync::Arc::new(tokio::sync::Notify::new());
    for (chain, rpc) in [(&a.chain_id, &config.a.rpc), (&b.chain_id, &config.b.rpc)] {
        let up = metrics.subscription_up.with_label_values(&[chain.as_str()]);
        tokio::spawn(wake::follow(rpc.clone(), wake.clone(), up));
    }
    let mut floors = [1u64, 1u64];
    let sent = [
        packets::SentPackets::default(),
        packets::SentPackets::default(),
    ];
    let mut watchers = [
        watch::Watcher::new(ids.clients.0.clone()),
        watch::Watcher::new(ids.clients.1.clone()),
    ];
    let mut halted = false;
    loop {
        let mut moved = false;
        let checking = std::time::Instant::now();
        // Misbehaviour first: nothing is relayed over a client that accepted a forged header. A frozen
        // client halts the whole path (acknowledgements and timeouts need both clients).
        let mut frozen = false;
        for (watcher, (host, client, source)) in watchers
            .iter_mut()
            .zip([(&a, &ids.clients.0, &b), (&b, &ids.clients.1, &a)])
        {
            let chain = host.chain_id.to_string();
            let was = metrics
                .client_frozen
                .with_label_values(&[&chain, client.as_str()])
                .get();
            match watcher.pass(host, source).await {
                Ok(watch::ClientHealth::Sound) => {}
                Ok(watch::ClientHealth::Frozen { conflict }) => {
                    frozen = true;
                    if conflict.is_some() {
                        metrics.misbehaviour.with_label_values(&[&chain]).inc();
                    }
                    if was == 0 {
                        metrics
                            .client_frozen
                            .with_label_values(&[&chain, client.as_str()])
                            .set(1);
                        let why = conflict.map_or_else(
                            || "by misbehaviour".to_owned(),
                            |h| format!("by our evidence of {} at height {h}", source.chain_id),
                        );
                        eprintln!(
                            "{client} on {chain} is frozen {why}: this path relays nothing more"
                        );
                    }
                }
                Err(e) => failed(&metrics, &chain, e)?,
            }
        }
        if frozen || halted {
            halted = true;
            tokio::time::sleep(args.poll).await;
            continue;
        }
        for (host, client, source) in [(&a, &ids.clients.0, &b), (&b, &ids.clients.1, &a)] {
            let chain = host.chain_id.to_string();
            match path::refresh_client(host, client, source).await {
                Ok((refreshed, left_ms)) => {
                    moved |= refreshed;
                    if refreshed {
                        metrics
                            .transactions
                            .with_label_values(&[&chain, "committed"])
                            .inc();
                    }
                    metrics
                        .client_expiry
                        .with_label_values(&[&chain, client.as_str()])
                        .set(left_ms / 1000);
                }
                Err(e) => failed(&metrics, &chain, e)?,
            }
            if let Ok(account) = host.account().await {
                metrics
                    .balance
                    .with_label_values(&[&chain])
                    .set(i64::try_from(account.balance).unwrap_or(i64::MAX));
            }
        }
        // The clients' health and freshness and the balances, before the packets: how long they took
        // is part of every pass line (the packets wait for them).
        let checks_ms = u64::try_from(checking.elapsed().as_millis()).unwrap_or(u64::MAX);
        for (i, direction) in packets::directions(&a, &b, &ids, &sent).iter().enumerate() {
            let (src, dst) = (
                direction.src.chain_id.to_string(),
                direction.dst.chain_id.to_string(),
            );
            match packets::relay_pass(direction, floors[i]).await {
                Ok((pass, first_pending)) => {
                    floors[i] = first_pending;
                    for (kind, n) in [
                        ("recv", pass.received),
                        ("ack", pass.acknowledged),
                        ("timeout", pass.timed_out),
                    ] {
                        metrics
                            .packets
                            .with_label_values(&[&src, &dst, kind])
                            .inc_by(n);
                    }
                    metrics
                        .pending
                        .with_label_values(&[&src, &dst])
                        .set(i64::try_from(pass.pending).unwrap_or(i64::MAX));
                    metrics
                        .oldest_pending
                        .with_label_values(&[&src, &dst])
                        .set(i64::try_from(pass.oldest_pending_ms / 1000).unwrap_or(i64::MAX));
                    if pass.received + pass.acknowledged + pass.timed_out > 0 {
                        moved = true;
                        eprintln!(
                            "{src} -> {dst}: received {}, acknowledged {}, timed out {}, in flight {} \
                             (client checks {checks_ms} ms, reads {} ms, transactions {} ms)",
                            pass.received,
                            pass.acknowledged,
                            pass.timed_out,
                            pass.pending,
                            pass.judge_ms,
                            pass.submit_ms
                        );
                    }
                }
                Err(e) => failed(&metrics, &src, e)?,
            }
        }
        // The packet transactions the passes saw committed, on the chain that committed them (a pass
        // that failed on one chain still counts the other's).
        for chain in [&a, &b] {
            metrics
                .transactions
                .with_label_values(&[chain.chain_id.as_str(), "committed"])
                .inc_by(chain.take_committed());
        }
        if !moved {
            wake::pause(&wake, args.poll).await;
        }
    }
}

/// A pass's failure: RPC failures, refusals, events not indexed yet and headers that do not verify for
/// a client are reported and retried on the next pass (a node may restart or lag; another relayer may
/// have delivered first, or a nonce moved; an RPC node may serve a stale or wrong header for a while,
/// and an expired client stays reported each pass until it is replaced: stopping would stall the other
/// direction too); anything else stops the relayer.
fn failed(metrics: &metrics::RelayMetrics, chain: &str, e: RelayError) -> Result<(), RelayError> {
    let outcome = match &e {
        RelayError::Refused {
            chain: refused_by, ..
        } => {
            metrics
                .transactions
                .with_label_values(&[refused_by, "refused"])
                .inc();
            "refused"
        }
        RelayError::Rpc { .. } => "failed",
        RelayError::NotIndexed { .. } => "waiting",
        RelayError::Unverifiable { .. } => "unverifiable",
        _ => return Err(e),
    };
    if outcome == "failed" {
        metrics
            .transactions
            .with_label_values(&[chain, "failed"])
            .inc();
    }
    eprintln!("{e}; retrying");
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]

    use super::*;

    fn load(text: &str) -> Result<RelayConfig, RelayError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("relay.toml");
        std::fs::write(&path, text).unwrap();
        RelayConfig::load(&path).map(|mut c| {
            // Relative key files are resolved against the config's directory.
            for chain in [&mut c.a, &mut c.b] {
                chain.key_file = chain
                    .key_file
                    .strip_prefix(dir.path())
                    .unwrap()
                    .to_path_buf();
            }
            c
        })
    }

    const CHAINS: &str = "[a]\nrpc = \"http://127.0.0.1:1\"\nkey_file = \"k.json\"\n\
                          [b]\nrpc = \"http://127.0.0.1:2\"\nkey_file = \"k.json\"\nkey_index = 3\n";

    /// A JSON-RPC failure from the shared `basalt tx` client is retried like the relayer's own (it once
    /// stopped the relayer: a node's refusal of one `tx_search` ended `relay start`); a key error is not.
    #[test]
    fn rpc_failures_are_retried_and_other_errors_stop_the_relayer() {
        let metrics = metrics::RelayMetrics::new().unwrap();
        let rpc = RelayError::from(TxError::Rpc {
            method: "tx_search",
            reason: "query refused".to_owned(),
        });
        assert!(matches!(rpc, RelayError::Rpc { .. }), "{rpc:?}");
        assert!(failed(&metrics, "basalt-a", rpc).is_ok());
        let key = RelayError::from(TxError::KeyFile {
            path: PathBuf::from("k.json"),
            reason: "missing".to_owned(),
        });
        assert!(failed(&metrics, "basalt-a", key).is_err());
        // A client its source's headers cannot be verified for (expired, or a lying RPC node): the
        // relayer keeps running and says so each pass.
        let expired = RelayError::Unverifiable {
            chain: "basalt-b".to_owned(),
            from: 10,
            to: 20,
            source: Box::new(basalt_consensus::light::SkipError::WrongHeight {
                asked: basalt_consensus::Height(20),
                got: basalt_consensus::Height(21),
            }),
        };
        assert!(failed(&metrics, "basalt-a", expired).is_ok());
        assert_eq!(
            metrics
                .transactions
                .with_label_values(&["basalt-a", "failed"])
                .get(),
            1
        );
    }

    #[test]
    fn a_relay_config_reads_both_chains_and_the_trusting_period() {
        let config = load(CHAINS).unwrap();
        assert_eq!(config.a.key_file, PathBuf::from("k.json"));
        assert_eq!((config.b.key_index, config.b.fee), (3, 0));
        assert_eq!(config.trusting_period_ms(), None);
        let config = load(&format!("trusting_period = \"90s\"\n{CHAINS}")).unwrap();
        assert_eq!(config.trusting_period_ms(), Some(90_000));
    }

    #[test]
    fn a_bad_relay_config_is_refused_with_its_reason() {
        for (text, reason) in [
            (
                format!("trusting_period = \"soon\"\n{CHAINS}"),
                "trusting_period",
            ),
            (
                format!("trusting_period = \"0s\"\n{CHAINS}"),
                "trusting_period",
            ),
            (format!("colour = \"red\"\n{CHAINS}"), "unknown field"),
            (
                "[a]\nrpc = \"x\"\nkey_file = \"k\"\n".to_owned(),
                "missing field",
            ),
        ] {
            match load(&text) {
                Err(RelayError::Config { reason: got, .. }) => {
                    assert!(got.contains(reason), "{got} lacks {reason}")
                }
                other => panic!("{text}: {other:?}"),
            }
        }
    }
}
