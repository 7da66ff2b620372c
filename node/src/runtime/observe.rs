//! The driver's measurements, fed into the Prometheus metrics (CometBFT names, see `crate::metrics`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use basalt_consensus::engine::ConsensusMessage;
use basalt_consensus::types::{Address, Block, CommitSig, ValidatorSet};
use basalt_consensus::Round;

use crate::mempool::MempoolStats;
use crate::metrics::Metrics;

/// The `message_type` label of a consensus message (CometBFT labels by message type too).
fn message_type(message: &ConsensusMessage) -> &'static str {
    match message {
        ConsensusMessage::Proposal(_) => "proposal",
        ConsensusMessage::Vote(_) => "vote",
        ConsensusMessage::Decision { .. } => "decision",
        ConsensusMessage::Status { .. } => "status",
        ConsensusMessage::Evidence(_) => "evidence",
    }
}

/// Encoded size without building the encoding (a proposal is up to megabytes; this runs per message).
fn encoded_len<T: borsh::BorshSerialize>(value: &T) -> u64 {
    borsh::object_length(value).map_or(0, |n| n as u64)
}

/// Updates the metrics from the driver's events. Without metrics (disabled) every call is a no-op.
#[derive(Debug, Default)]
pub struct Observer {
    metrics: Option<Arc<Metrics>>,
    own_address: Option<String>,
    total_txs: u64,
    peers: i64,
    last_block_time_ms: Option<u64>,
    step: Option<(&'static str, Instant)>,
    mempool_seen: MempoolStats,
}

impl Observer {
    /// An observer writing to `metrics`; `total_txs` is the count committed before this start.
    pub fn new(
        metrics: Option<Arc<Metrics>>,
        own_address: Option<Address>,
        total_txs: u64,
    ) -> Observer {
        Observer {
            metrics,
            own_address: own_address.map(|a| a.to_hex_upper()),
            total_txs,
            ..Observer::default()
        }
    }

    /// Block sync started or ended.
    pub fn syncing(&self, on: bool) {
        if let Some(m) = &self.metrics {
            m.blocksync.syncing.set(i64::from(on));
        }
    }

    /// A WAL fsync took `took`.
    pub fn wal_fsync(&self, took: Duration) {
        if let Some(m) = &self.metrics {
            m.basalt.wal_fsync_seconds.observe(took.as_secs_f64());
        }
    }

    /// The signer's state write took `took`.
    pub fn privval_fsync(&self, took: Duration) {
        if let Some(m) = &self.metrics {
            m.basalt.privval_fsync_seconds.observe(took.as_secs_f64());
        }
    }

    /// We signed a message at `height`.
    pub fn signed(&self, height: u64) {
        if let (Some(m), Some(address)) = (&self.metrics, &self.own_address) {
            m.consensus
                .validator_last_signed_height
                .with_label_values(&[address.as_str()])
                .set(i64::try_from(height).unwrap_or(i64::MAX));
        }
    }

    /// A peer connected (+1) or left (-1).
    pub fn peer_change(&mut self, delta: i64) {
        self.peers = (self.peers + delta).max(0);
        if let Some(m) = &self.metrics {
            m.p2p.peers.set(self.peers);
        }
    }

    /// A consensus message arrived.
    pub fn received(&self, message: &ConsensusMessage) {
        if let Some(m) = &self.metrics {
            m.p2p
                .message_receive_bytes_total
                .with_label_values(&[message_type(message)])
                .inc_by(encoded_len(message));
        }
    }

    /// A consensus message was sent.
    pub fn sent(&self, message: &ConsensusMessage) {
        if let Some(m) = &self.metrics {
            m.p2p
                .message_send_bytes_total
                .with_label_values(&[message_type(message)])
                .inc_by(encoded_len(message));
        }
    }

    /// Signatures verified (votes and commits: `kind` label).
    pub fn verified(&self, kind: &str, count: u64) {
        if let Some(m) = &self.metrics {
            m.basalt
                .signature_verifications_total
                .with_label_values(&[kind])
                .inc_by(count);
        }
    }

    /// A block was committed.
    pub fn committed(
        &mut self,
        block: &Block,
        validators: &ValidatorSet,
        round: Round,
        processing: Duration,
        syncing: bool,
    ) {
        self.total_txs += block.txs().len() as u64;
        let Some(m) = &self.metrics else {
            return;
        };
        let height = i64::try_from(block.height().0).unwrap_or(i64::MAX);
        let size = i64::try_from(encoded_len(block)).unwrap_or(i64::MAX);
        let txs = i64::try_from(block.txs().len()).unwrap_or(i64::MAX);
        let total = i64::try_from(self.total_txs).unwrap_or(i64::MAX);
        let c = &m.consensus;
        c.latest_block_height.set(height);
        c.height.set(height.saturating_add(1));
        c.rounds.set(i64::from(round.0));
        c.validators.set(validators.len() as i64);
        c.validators_power
            .set(i64::try_from(validators.total_power()).unwrap_or(i64::MAX));
        c.num_txs.set(txs);
        c.total_txs.set(total);
        c.block_size_bytes.set(size);
        c.byzantine_validators.set(block.evidence().len() as i64);
        let byzantine_power: u64 = block
            .evidence()
            .iter()
            .filter_map(|e| validators.get(e.validator_index()))
            .map(|v| v.voting_power)
            .sum();
        c.byzantine_validators_power
            .set(i64::try_from(byzantine_power).unwrap_or(i64::MAX));
        // Missing validators: absent from the last commit this block carries (as CometBFT counts them).
        if let Some(last_commit) = block.last_commit() {
            let mut missing = 0i64;
            let mut missing_power = 0u64;
            for (index, sig) in last_commit.signatures.iter().enumerate() {
                let Some(v) = validators.validators().get(index) else {
                    continue;
                };
                let address = v.address.to_hex_upper();
                c.validator_power
                    .with_label_values(&[address.as_str()])
                    .set(i64::try_from(v.voting_power).unwrap_or(i64::MAX));
                if matches!(sig, CommitSig::Absent) {
                    missing += 1;
                    missing_power += v.voting_power;
                    c.validator_missed_blocks
                        .with_label_values(&[address.as_str()])
                        .inc();
                }
            }
            c.missing_validators.set(missing);
            c.missing_validators_power
                .set(i64::try_from(missing_power).unwrap_or(i64::MAX));
        }
        let time_ms = block.header().time_ms;
        if let Some(previous) = self.last_block_time_ms {
            let interval = time_ms.saturating_sub(previous) as f64 / 1000.0;
            c.block_interval_seconds.observe(interval);
        }
        self.last_block_time_ms = Some(time_ms);
        m.state
            .block_processing_time
            .observe(processing.as_secs_f64() * 1000.0);
        if syncing {
            m.blocksync.latest_block_height.set(height);
            m.blocksync.num_txs.set(txs);
            m.blocksync.total_txs.set(total);
            m.blocksync.block_size_bytes.set(size);
        }
    }

    /// Consensus entered `step` (observes how long the previous step lasted).
    pub fn step(&mut self, step: &'static str) {
        if self.step.is_some_and(|(s, _)| s == step) {
            return;
        }
        if let (Some(m), Some((previous, since))) = (&self.metrics, self.step) {
            m.consensus
                .step_duration_seconds
                .with_label_values(&[previous])
                .observe(since.elapsed().as_secs_f64());
        }
        self.step = Some((step, Instant::now()));
    }

    /// Consensus is at `height`/`round`.
    pub fn consensus_position(&self, height: u64, round: u32) {
        if let Some(m) = &self.metrics {
            m.consensus
                .height
                .set(i64::try_from(height).unwrap_or(i64::MAX));
            m.consensus.rounds.set(i64::from(round));
        }
    }

    /// The mempool's counters now (counters advance by the difference since the last call).
    pub fn mempool(&mut self, stats: MempoolStats) {
        if let Some(m) = &self.metrics {
            let mp = &m.mempool;
            mp.size.set(stats.size as i64);
            mp.size_bytes
                .set(i64::try_from(stats.size_bytes).unwrap_or(i64::MAX));
            mp.failed_txs.inc_by(
                stats
                    .failed_txs
                    .saturating_sub(self.mempool_seen.failed_txs),
            );
            mp.rejected_txs.inc_by(
                stats
                    .rejected_txs
                    .saturating_sub(self.mempool_seen.rejected_txs),
            );
            mp.evicted_txs.inc_by(
                stats
                    .evicted_txs
                    .saturating_sub(self.mempool_seen.evicted_txs),
            );
            mp.recheck_times.inc_by(
                stats
                    .recheck_times
                    .saturating_sub(self.mempool_seen.recheck_times),
            );
        }
        self.mempool_seen = stats;
    }
}
