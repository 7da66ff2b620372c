//! The relayer's Prometheus metrics (`basalt relay start --metrics ADDR`): what it relayed, what is in
//! flight, its transactions' outcomes, how long its clients have before they expire, and its balance on
//! each chain (a relayer that runs out of fees stops relaying).

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
    /// Relayer transactions by chain and outcome (`committed`, `refused`, `failed`).
    pub transactions: IntCounterVec,
    /// Seconds until a client's newest consensus state expires, by host chain and client.
    pub client_expiry: IntGaugeVec,
    /// The relayer's native balance on each chain.
    pub balance: IntGaugeVec,
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
            registry,
        })
    }
}
