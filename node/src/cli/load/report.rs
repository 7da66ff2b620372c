//! Counting what happened during a run and the report printed at the end (text, or one JSON object).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use super::schedule::Tally;
use super::submit::{Outcome, Transport};

/// Most distinct rejection reasons counted separately (the rest go under "other").
pub const MAX_REASONS: usize = 32;
/// Seconds without progress after which an account's sent transactions are sent again (see
/// [`super::schedule::Scheduler::requeue_stalled`]).
pub const STALL_S: u64 = 10;
/// Most blocks remembered (an hour of 20 blocks/s is 72,000).
pub const MAX_BLOCKS: usize = 200_000;

/// A block seen during the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockRecord {
    /// When the watcher received it, µs since the epoch of the run.
    pub at_us: u64,
    /// Height.
    pub height: u64,
    /// Transactions in it.
    pub txs: u32,
    /// Of those, this run's.
    pub ours: u32,
}

/// Counters of a run, filled by the submitters and the watcher.
#[derive(Debug, Default)]
pub struct Stats {
    /// Transactions sent (retries count again).
    pub submitted: u64,
    /// Answered with code 0 and the expected hash.
    pub accepted: u64,
    /// Everything else, by [`Outcome::reason_key`].
    pub rejected: BTreeMap<String, u64>,
    /// The first log/message seen for each reason.
    pub rejected_examples: BTreeMap<String, String>,
    /// This run's transactions seen committed before the submission deadline (the run's total is the
    /// scheduler's [`Tally`]).
    pub committed_in_duration: u64,
    /// Intended send → commit latency of each transaction seen committed.
    pub latency: LatencyHistogram,
    /// With a rate: how late each new transaction was sent after its slot in the schedule.
    pub send_lag: LatencyHistogram,
    /// Blocks received since submission started (at most [`MAX_BLOCKS`]).
    pub blocks: Vec<BlockRecord>,
    /// Heights the watcher skipped (a gap between consecutive events).
    pub missed_heights: u64,
    /// Last height seen.
    pub last_height: Option<u64>,
    /// When the last block with one of this run's transactions arrived, µs since the epoch.
    pub last_commit_us: Option<u64>,
    /// Transactions queued again because their account made no progress.
    pub requeued: u64,
    /// Re-sends answered "already in cache" (the node still holds them; not counted as rejected).
    pub resent_in_cache: u64,
    /// Why commit tracking failed (subscription and polling both), if it did: the run fails.
    pub watch_error: Option<String>,
    /// Why the block subscription ended, if it did and the watcher went on by polling blocks.
    pub watch_fallback: Option<String>,
    /// Transactions found committed only by their account's nonce at the end (no latency sample).
    pub committed_unseen: u64,
    /// When every presigned transaction had been sent, µs since the epoch, if before the deadline.
    pub ran_out_us: Option<u64>,
}

impl Stats {
    /// Counts one submission's outcome; `first_send` is false for a re-send of a stalled transaction,
    /// whose "already in cache" answer only means the node still has it and is not a rejection.
    pub fn record(&mut self, outcome: &Outcome, first_send: bool) {
        self.submitted += 1;
        let Some(mut key) = outcome.reason_key() else {
            self.accepted += 1;
            return;
        };
        if !first_send && key.contains("cache") {
            self.resent_in_cache += 1;
            return;
        }
        if !self.rejected.contains_key(&key) && self.rejected.len() >= MAX_REASONS {
            key = "other".to_owned();
        }
        *self.rejected.entry(key.clone()).or_default() += 1;
        self.rejected_examples.entry(key).or_insert_with(|| {
            let example = match outcome {
                Outcome::Rejected { log, .. } => log.clone(),
                Outcome::RpcError { message } | Outcome::Transport { message } => message.clone(),
                Outcome::HashMismatch { reported } => format!("node reported {reported}"),
                Outcome::Accepted => String::new(),
            };
            example.chars().take(200).collect()
        });
    }

    /// Records a block received at `at_us`; `ours` of its transactions belong to this run.
    pub fn record_block(&mut self, at_us: u64, height: u64, txs: usize, ours: usize) {
        if let Some(last) = self.last_height {
            if height > last + 1 {
                self.missed_heights += height - last - 1;
            }
        }
        self.last_height = Some(height);
        if ours > 0 {
            self.last_commit_us = Some(at_us);
        }
        if self.blocks.len() < MAX_BLOCKS {
            self.blocks.push(BlockRecord {
                at_us,
                height,
                txs: u32::try_from(txs).unwrap_or(u32::MAX),
                ours: u32::try_from(ours).unwrap_or(u32::MAX),
            });
        }
    }
}

/// Longest latency recorded exactly, µs (longer ones are recorded as this).
pub const MAX_LATENCY_US: u64 = 3_600_000_000;

/// Latencies in an HDR histogram: 3 significant digits from 1 µs to an hour, in constant memory however
/// long the run.
#[derive(Debug, Clone)]
pub struct LatencyHistogram(Option<hdrhistogram::Histogram<u64>>);

impl Default for LatencyHistogram {
    fn default() -> Self {
        // These bounds are valid (low ≥ 1, high ≥ 2 × low, 3 digits), so construction cannot fail.
        LatencyHistogram(hdrhistogram::Histogram::new_with_bounds(1, MAX_LATENCY_US, 3).ok())
    }
}

impl LatencyHistogram {
    /// Records one latency (clamped to 1 µs..[`MAX_LATENCY_US`]).
    pub fn record(&mut self, us: u64) {
        if let Some(h) = &mut self.0 {
            let _ = h.record(us.clamp(1, MAX_LATENCY_US));
        }
    }

    /// Samples recorded.
    pub fn len(&self) -> u64 {
        self.0.as_ref().map_or(0, |h| h.len())
    }

    /// Whether nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The percentiles, `None` without samples.
    pub fn summary(&self) -> Option<Latency> {
        let h = self.0.as_ref().filter(|h| !h.is_empty())?;
        let ms = |us: u64| us as f64 / 1000.0;
        Some(Latency {
            samples: h.len() as usize,
            p50_ms: ms(h.value_at_quantile(0.50)),
            p95_ms: ms(h.value_at_quantile(0.95)),
            p99_ms: ms(h.value_at_quantile(0.99)),
            p999_ms: ms(h.value_at_quantile(0.999)),
            max_ms: ms(h.max()),
            mean_ms: h.mean() / 1000.0,
        })
    }
}

/// Latency percentiles in milliseconds (from the histogram: within 0.1% of the exact value).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Latency {
    /// Number of samples.
    pub samples: usize,
    /// Median.
    pub p50_ms: f64,
    /// 95th percentile.
    pub p95_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// 99.9th percentile.
    pub p999_ms: f64,
    /// Largest.
    pub max_ms: f64,
    /// Mean.
    pub mean_ms: f64,
}

impl Latency {
    /// The same, each figure rounded to 0.1 ms (as reported).
    fn rounded(self) -> Latency {
        Latency {
            p50_ms: round1(self.p50_ms),
            p95_ms: round1(self.p95_ms),
            p99_ms: round1(self.p99_ms),
            p999_ms: round1(self.p999_ms),
            max_ms: round1(self.max_ms),
            mean_ms: round1(self.mean_ms),
            ..self
        }
    }
}

/// The run's parameters, as echoed in the report.
#[derive(Debug, Clone, Serialize)]
pub struct RunParams {
    /// HTTP or websocket.
    pub transport: Transport,
    /// The nodes submitted to (the first one is also watched).
    pub nodes: Vec<String>,
    /// Sending accounts.
    pub accounts: usize,
    /// Concurrent connections (in-flight requests).
    pub connections: usize,
    /// Most transactions per request batch.
    pub batch: usize,
    /// Target rate, or `None` for as fast as accepted.
    pub rate_tx_s: Option<f64>,
    /// Submission duration, seconds.
    pub duration_s: f64,
    /// Longest wait for outstanding transactions after the deadline, seconds.
    pub drain_s: f64,
    /// Presigned transactions.
    pub presigned: usize,
    /// Time spent reading nonces and signing, seconds (before the clock started).
    pub presign_s: f64,
}

/// The report of a run.
#[derive(Debug, Clone, Serialize)]
pub struct LoadReport {
    /// Parameters.
    #[serde(flatten)]
    pub params: RunParams,
    /// Transactions sent, retries included.
    pub submitted: u64,
    /// Accepted by `broadcast_tx_sync` (code 0).
    pub accepted: u64,
    /// Not accepted, total.
    pub rejected_total: u64,
    /// Not accepted, by code or error class.
    pub rejected: BTreeMap<String, u64>,
    /// One example message per class.
    pub rejected_examples: BTreeMap<String, String>,
    /// Transactions the rate schedule offered within the duration (`None` without `--rate`).
    pub offered: Option<u64>,
    /// Offered but never sent: the client fell behind its schedule (the nonce window was full, nodes
    /// answered slowly).
    pub not_sent: Option<u64>,
    /// Distinct transactions sent: `committed + pending + lost`.
    pub sent: u64,
    /// Of those, committed.
    pub committed: u64,
    /// Of the committed, found only by their account's nonce at the end (no latency sample).
    pub committed_unseen: u64,
    /// Accepted by a node, not committed when the run ended.
    pub pending: u64,
    /// Refused by every node they were sent to, not committed.
    pub lost: u64,
    /// committed / window_s.
    pub committed_tps: f64,
    /// Transactions committed before the submission deadline, per second of the duration.
    pub committed_in_duration_tps: f64,
    /// Accepted per second of the duration.
    pub accepted_tps: f64,
    /// From the first submission to the last block holding one of this run's transactions, seconds.
    pub window_s: f64,
    /// Sent but not committed when the run ended: `pending + lost`.
    pub uncommitted: u64,
    /// Transactions re-queued because their account stalled.
    pub requeued: u64,
    /// Re-sends answered "already in cache" (not counted in `rejected`).
    pub resent_in_cache: u64,
    /// Intended send → commit latency (from the transaction's slot in the rate schedule, or its first
    /// send without a rate, to the block that holds it), `null` without samples.
    pub latency: Option<Latency>,
    /// With `--rate`: how late the client sent each new transaction after its slot in the schedule —
    /// queueing in the client itself (a busy machine, a full nonce window, slow answers), which `latency`
    /// includes; `null` without a rate.
    pub send_lag: Option<Latency>,
    /// Blocks received within the window.
    pub blocks: usize,
    /// Transactions in those blocks (anyone's).
    pub block_txs: u64,
    /// block_txs / blocks.
    pub mean_txs_per_block: f64,
    /// Blocks/s within the window.
    pub blocks_per_s: f64,
    /// First height in the window.
    pub first_height: Option<u64>,
    /// Last height in the window.
    pub last_height: Option<u64>,
    /// Heights the watcher did not receive (their transactions still count as committed).
    pub missed_heights: u64,
    /// If the presigned transactions ran out before the deadline: when, seconds after the start.
    pub ran_out_s: Option<f64>,
    /// Why commit tracking failed, if it did (the run then fails: commit numbers are incomplete).
    pub watch_error: Option<String>,
    /// Why the block subscription ended, if the watcher went on by polling blocks.
    pub watch_fallback: Option<String>,
}

impl LoadReport {
    /// Builds the report; `t0_us` is when submission started, `tally` what became of the transactions
    /// sent and `offered` what the rate schedule offered within the duration.
    pub fn new(
        params: RunParams,
        stats: &Stats,
        t0_us: u64,
        tally: Tally,
        offered: Option<u64>,
    ) -> LoadReport {
        let window_end = stats.last_commit_us.unwrap_or(t0_us).max(t0_us);
        let window_us = window_end - t0_us;
        let in_window: Vec<&BlockRecord> = stats
            .blocks
            .iter()
            .filter(|b| b.at_us >= t0_us && b.at_us <= window_end)
            .collect();
        let block_txs: u64 = in_window.iter().map(|b| u64::from(b.txs)).sum();
        let per_s = |count: f64, us: u64| {
            if us == 0 {
                0.0
            } else {
                count / (us as f64 / 1e6)
            }
        };
        let duration_us = (params.duration_s * 1e6) as u64;
        LoadReport {
            submitted: stats.submitted,
            accepted: stats.accepted,
            rejected_total: stats.rejected.values().sum(),
            rejected: stats.rejected.clone(),
            rejected_examples: stats.rejected_examples.clone(),
            offered,
            not_sent: offered.map(|o| o.saturating_sub(tally.sent)),
            sent: tally.sent,
            committed: tally.committed,
            committed_unseen: stats.committed_unseen,
            pending: tally.pending,
            lost: tally.lost,
            committed_tps: round1(per_s(tally.committed as f64, window_us)),
            committed_in_duration_tps: round1(per_s(
                stats.committed_in_duration as f64,
                duration_us,
            )),
            accepted_tps: round1(per_s(stats.accepted as f64, duration_us)),
            window_s: round3(window_us as f64 / 1e6),
            uncommitted: tally.pending + tally.lost,
            requeued: stats.requeued,
            resent_in_cache: stats.resent_in_cache,
            latency: stats.latency.summary().map(Latency::rounded),
            send_lag: stats.send_lag.summary().map(Latency::rounded),
            blocks: in_window.len(),
            block_txs,
            mean_txs_per_block: if in_window.is_empty() {
                0.0
            } else {
                round1(block_txs as f64 / in_window.len() as f64)
            },
            blocks_per_s: round1(per_s(in_window.len() as f64, window_us)),
            first_height: in_window.first().map(|b| b.height),
            last_height: in_window.last().map(|b| b.height),
            missed_heights: stats.missed_heights,
            ran_out_s: stats
                .ran_out_us
                .map(|t| round3(t.saturating_sub(t0_us) as f64 / 1e6)),
            watch_error: stats.watch_error.clone(),
            watch_fallback: stats.watch_fallback.clone(),
            params,
        }
    }

    /// The report as a few aligned lines.
    pub fn to_text(&self) -> String {
        let p = &self.params;
        let mut out = String::new();
        let rate = match p.rate_tx_s {
            Some(r) => format!("rate {r} tx/s"),
            None => "as fast as accepted".to_owned(),
        };
        let transport = match p.transport {
            Transport::Http => "http",
            Transport::Ws => "ws",
        };
        let _ = writeln!(
            out,
            "load: {transport}, {} node(s), {} accounts, {} connections, batch {}, {rate}, {}s (+ up to {}s drain)",
            p.nodes.len(), p.accounts, p.connections, p.batch, p.duration_s, p.drain_s
        );
        let _ = writeln!(
            out,
            "presigned   {} txs in {:.1}s",
            p.presigned, p.presign_s
        );
        let reasons: Vec<String> = self
            .rejected
            .iter()
            .map(|(k, v)| format!("{k}: {v}"))
            .collect();
        let _ = writeln!(
            out,
            "submitted   {}  accepted {} ({:.0} tx/s)  rejected {}{}",
            self.submitted,
            self.accepted,
            self.accepted_tps,
            self.rejected_total,
            if reasons.is_empty() {
                String::new()
            } else {
                format!(" ({})", reasons.join(", "))
            }
        );
        if let (Some(offered), Some(not_sent)) = (self.offered, self.not_sent) {
            let _ = writeln!(
                out,
                "offered     {offered} by the schedule; sent {}, not sent {not_sent}{}",
                self.sent,
                if not_sent > 0 {
                    " (the client fell behind: nonce window full or nodes slow)"
                } else {
                    ""
                }
            );
        }
        let _ = writeln!(
            out,
            "outcome     sent {} = committed {} + pending {} + lost {}{}",
            self.sent,
            self.committed,
            self.pending,
            self.lost,
            if self.committed_unseen > 0 {
                format!(
                    "  ({} committed found by nonce, not seen in a block)",
                    self.committed_unseen
                )
            } else {
                String::new()
            }
        );
        let _ = writeln!(
            out,
            "committed   {} in {:.2}s = {:.0} tx/s  (within the duration: {:.0} tx/s)",
            self.committed, self.window_s, self.committed_tps, self.committed_in_duration_tps,
        );
        match &self.latency {
            Some(l) => {
                let _ = writeln!(
                    out,
                    "latency     p50 {:.0} ms  p95 {:.0} ms  p99 {:.0} ms  p99.9 {:.0} ms  max {:.0} ms  mean {:.0} ms  ({} samples, from the intended send time)",
                    l.p50_ms, l.p95_ms, l.p99_ms, l.p999_ms, l.max_ms, l.mean_ms, l.samples
                );
            }
            None => {
                let _ = writeln!(out, "latency     no samples");
            }
        }
        if let Some(l) = &self.send_lag {
            let _ = writeln!(
                out,
                "send lag    p50 {:.0} ms  p99 {:.0} ms  max {:.0} ms  (how late the client sent after each slot; part of the latency)",
                l.p50_ms, l.p99_ms, l.max_ms
            );
        }
        let heights = match (self.first_height, self.last_height) {
            (Some(a), Some(b)) => format!("heights {a}..={b}"),
            _ => "no heights".to_owned(),
        };
        let _ = writeln!(
            out,
            "blocks      {} ({heights}, {:.1}/s), mean {:.1} txs/block{}",
            self.blocks,
            self.blocks_per_s,
            self.mean_txs_per_block,
            if self.missed_heights > 0 {
                format!(", {} heights missed by the watcher", self.missed_heights)
            } else {
                String::new()
            }
        );
        if let Some(t) = self.ran_out_s {
            let _ = writeln!(
                out,
                "note        presigned transactions ran out {t:.1}s after the start (raise --txs-per-account)"
            );
        }
        if self.requeued > 0 {
            let _ = writeln!(
                out,
                "note        {} transactions re-sent after their account stalled for {}s ({} of those answered \"already in cache\")",
                self.requeued, STALL_S, self.resent_in_cache
            );
        }
        if let Some(e) = &self.watch_fallback {
            let _ = writeln!(
                out,
                "note        block subscription ended ({e}); blocks were then read by height"
            );
        }
        if let Some(e) = &self.watch_error {
            let _ = writeln!(out, "error       commit tracking failed: {e}");
        }
        out
    }
}

fn round1(v: f64) -> f64 {
    (v * 10.0).round() / 10.0
}

fn round3(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[test]
    fn percentiles_come_from_the_histogram_within_a_thousandth() {
        let mut h = LatencyHistogram::default();
        assert!(h.summary().is_none());
        for ms in 1..=1000u64 {
            h.record(ms * 1000);
        }
        let l = h.summary().unwrap();
        let close = |got: f64, want: f64| (got - want).abs() <= want / 1000.0 + 1e-9;
        assert_eq!(l.samples, 1000);
        assert!(close(l.p50_ms, 500.0), "{l:?}");
        assert!(close(l.p99_ms, 990.0), "{l:?}");
        assert!(close(l.p999_ms, 999.0), "{l:?}");
        assert!(close(l.max_ms, 1000.0), "{l:?}");
        assert!(close(l.mean_ms, 500.5), "{l:?}");
        // Out-of-range values are clamped, not dropped.
        h.record(0);
        h.record(u64::MAX);
        assert_eq!(h.len(), 1002);
        assert!(close(
            h.summary().unwrap().max_ms,
            MAX_LATENCY_US as f64 / 1000.0
        ));
    }

    #[test]
    fn rejection_reasons_are_bounded() {
        let mut stats = Stats::default();
        for code in 0..(MAX_REASONS as u32 + 10) {
            stats.record(
                &Outcome::Rejected {
                    code: code + 1,
                    log: "x".into(),
                },
                true,
            );
        }
        stats.record(&Outcome::Accepted, true);
        let in_cache = Outcome::RpcError {
            message: "Internal error tx already exists in cache".into(),
        };
        stats.record(&in_cache, false);
        assert_eq!(stats.resent_in_cache, 1);
        // A first send answered "in cache" is a rejection (here past the reason limit: "other").
        stats.record(&in_cache, true);
        assert_eq!(stats.rejected.len(), MAX_REASONS + 1);
        assert_eq!(stats.rejected["other"], 11);
        assert_eq!(stats.submitted, MAX_REASONS as u64 + 13);
        assert_eq!(stats.accepted, 1);
    }

    #[test]
    fn report_window_counts_blocks_up_to_the_last_commit() {
        let mut stats = Stats::default();
        stats.record_block(500, 9, 3, 0); // before the start: not in the window
        stats.record_block(1_000_000, 10, 100, 100);
        stats.record_block(1_500_000, 12, 50, 40);
        stats.record_block(2_000_000, 13, 0, 0); // after the last commit: not in the window
        stats.committed_in_duration = 140;
        stats.latency.record(100_000);
        stats.latency.record(200_000);
        stats.send_lag.record(3_000);
        let params = RunParams {
            transport: Transport::Http,
            nodes: vec!["http://127.0.0.1:1".into()],
            accounts: 2,
            connections: 1,
            batch: 10,
            rate_tx_s: Some(100.0),
            duration_s: 1.0,
            drain_s: 1.0,
            presigned: 200,
            presign_s: 0.1,
        };
        let tally = Tally {
            sent: 150,
            committed: 140,
            pending: 6,
            lost: 4,
        };
        let r = LoadReport::new(params, &stats, 500_000, tally, Some(160));
        assert_eq!(r.blocks, 2);
        assert_eq!(r.block_txs, 150);
        assert_eq!(r.missed_heights, 1);
        assert_eq!(r.window_s, 1.0);
        assert_eq!(r.committed_tps, 140.0);
        assert_eq!((r.first_height, r.last_height), (Some(10), Some(12)));
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(json["transport"], "http");
        assert_eq!(json["latency"]["p50_ms"], 100.0);
        assert_eq!(json["send_lag"]["max_ms"], 3.0);
        let text = r.to_text();
        assert!(text.contains("send lag    p50 3 ms"), "{text}");
        assert!(text.contains("committed   140"), "{text}");
        // The outcome adds up and is shown as such.
        assert_eq!(r.sent, r.committed + r.pending + r.lost);
        assert_eq!(r.offered, Some(r.sent + r.not_sent.unwrap()));
        assert_eq!(r.uncommitted, 10);
        assert!(
            text.contains("sent 150 = committed 140 + pending 6 + lost 4"),
            "{text}"
        );
        assert!(text.contains("offered     160"), "{text}");
    }
}
