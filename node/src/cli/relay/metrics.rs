//! The relayer's Prometheus metrics (`basalt relay start --metrics ADDR`): what it relayed, what is in
//! flight, its transactions' outcomes, how long its clients have before they expire, its balance on
//! each chain (a relayer that runs out of fees stops relaying), and misbehaviour it found.

use prometheus::{IntCounterVec, IntGaugeVec, Opts, Registry};

use crate::metrics::MetricsError;

/// The relayer's series, all prefixed `basalt_relayer_`.
#[derive(Clone, Debug)]
pub struct RelayMetrics {
    /// The registry served on `/metrics`.
    pub registry: Registry,
    /// Packet messages delivered, by source and destination chain and kind (`recv`, `ack`, `timeout`).
    pub packets: IntCounterVec,
    /// Packets in flight after the last pass, by direction.
    pub pending: IntGaugeVec,
    /// Age of the oldest packet in flight (source chain time since the block that sent it), by
    /// direction.
    pub oldest_pending: IntGaugeVec,
    /// Relayer transactions by chain and outcome (`committed`, `refused`, `failed`).
    pub transactions: IntCounterVec,
    /// Seconds until a client's newest consensus state expires, by host chain and client.
    pub client_expiry: IntGaugeVec,
    /// The relayer's native balance on each chain.
    pub balance: IntGaugeVec,
    /// 1 once a client of the path is frozen (relaying over it has stopped), by host chain and client.
    pub client_frozen: IntGaugeVec,
    /// Misbehaviour the relayer submitted (conflicting headers it found), by host chain.
    pub misbehaviour: IntCounterVec,
    /// 1 while the relayer's block subscription to a chain is live (0: it polls), by chain.
    pub subscription_up: IntGaugeVec,
}

fn register<T: prometheus::core::Collector + Clone + 'static>(
    registry: &Registry,
    metric: T,
) -> Result<T, MetricsError> {
    registry
        .register(Box::new(metric.clone()))
        .map_err(|source| MetricsError::Register {
            name: "basalt_relayer".to_owned(),
            source,
        })?;
    Ok(metric)
}

impl RelayMetrics {
    /// A fresh registry with every series.
    pub fn new() -> Result<RelayMetrics, MetricsError> {
        let registry = Registry::new();
        let opts = |name: &str, help: &str| Opts::new(name, help).namespace("basalt_relayer");
        let failed = |name: &str, source| MetricsError::Register {
            name: format!("basalt_relayer_{name}"),
            source,
        };
        let counter = |name: &str, help: &str, labels: &[&str]| {
            IntCounterVec::new(opts(name, help), labels).map_err(|e| failed(name, e))
        };
        let gauge = |name: &str, help: &str, labels: &[&str]| {
            IntGaugeVec::new(opts(name, help), labels).map_err(|e| failed(name, e))
        };
        Ok(RelayMetrics {
            packets: register(
                &registry,
                counter(
                    "packets_total",
                    "Packet messages delivered (recv, ack, timeout).",
                    &["src_chain", "dst_chain", "kind"],
                )?,
            )?,
            pending: register(
                &registry,
                gauge(
                    "packets_pending",
                    "Packets in flight after the last pass.",
                    &["src_chain", "dst_chain"],
                )?,
            )?,
            oldest_pending: register(
                &registry,
                gauge(
                    "packets_oldest_pending_seconds",
                    "Age of the oldest packet in flight, source chain time since the block that sent it.",
                    &["src_chain", "dst_chain"],
                )?,
            )?,
            transactions: register(
                &registry,
                counter(
                    "transactions_total",
                    "Relayer transactions by outcome (committed, refused, failed).",
                    &["chain", "outcome"],
                )?,
            )?,
            client_expiry: register(
                &registry,
                gauge(
                    "client_expiry_seconds",
                    "Seconds until the client's newest consensus state expires (host chain time).",
                    &["chain", "client"],
                )?,
            )?,
            balance: register(
                &registry,
                gauge(
                    "balance",
                    "The relayer account's native balance (saturated to i64).",
                    &["chain"],
                )?,
            )?,
            client_frozen: register(
                &registry,
                gauge(
                    "client_frozen",
                    "1 once the client is frozen by misbehaviour: the path no longer relays.",
                    &["chain", "client"],
                )?,
            )?,
            misbehaviour: register(
                &registry,
                counter(
                    "misbehaviour_total",
                    "Conflicting headers found and submitted as misbehaviour.",
                    &["chain"],
                )?,
            )?,
            subscription_up: register(
                &registry,
                gauge(
                    "block_subscription_up",
                    "1 while the websocket subscription to the chain's blocks is live (0: polling).",
                    &["chain"],
                )?,
            )?,
            registry,
        })
    }
}
