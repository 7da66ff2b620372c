//! Which pre-signed transfer to send next: a per-account nonce window, retries with back-off, commit
//! tracking, what became of every transaction sent, and the send schedule of a fixed rate. Pure (times
//! are microseconds since the run's epoch, passed in), so it is tested without a clock.
//!
//! Why a window: the node's mempool accepts an account's nonces only from its committed nonce up to
//! [`basalt_state::bank::NONCE_WINDOW`] ahead, so sending further ahead only produces rejections.

use std::collections::BTreeSet;

/// A pre-signed transaction: account index and position in that account's nonce sequence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TxRef {
    /// Index of the account (in the accounts file order, after `--max-accounts`).
    pub account: u32,
    /// Position in the account's sequence (nonce = first nonce + seq).
    pub seq: u32,
}

/// Send time of a transaction that was never sent.
const NOT_SENT: u64 = u64::MAX;

/// One account's progress.
#[derive(Debug, Clone)]
struct AccountState {
    /// Presigned transactions of this account.
    len: usize,
    /// `seq < committed` are committed (nonces commit in order).
    committed: usize,
    /// Next never-sent seq.
    next: usize,
    /// Seqs to send again (rejected with a transient reason, or stalled), all `>= committed`.
    retry: BTreeSet<usize>,
    /// No sends before this time (back-off after a transient rejection).
    blocked_until_us: u64,
    /// Last time `committed` advanced (or a stall was handled).
    last_progress_us: u64,
    /// When each seq was meant to go out (its slot in the rate schedule, or its first send without a
    /// rate), or [`NOT_SENT`]: latency is measured from here.
    first_sent_us: Vec<u64>,
    /// Whether a node accepted each seq at least once.
    accepted: Vec<bool>,
}

/// The scheduler of all accounts; accounts are pinned to nodes (account `i` to node `i % nodes`), so an
/// account's transactions always reach the same mempool in order.
#[derive(Debug, Clone)]
pub struct Scheduler {
    accounts: Vec<AccountState>,
    by_node: Vec<Vec<u32>>,
    cursor: Vec<usize>,
    window: usize,
    retry_backoff_us: u64,
}

/// What became of the transactions a run sent, each counted once: `sent = committed + pending + lost`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    /// Distinct transactions sent at least once.
    pub sent: u64,
    /// Of those, committed (seen in a block, or implied by a later nonce committing).
    pub committed: u64,
    /// Accepted by a node but not committed when the run ended (still in a mempool, or dropped).
    pub pending: u64,
    /// Never accepted by any node and not committed (every send was refused).
    pub lost: u64,
}

/// What a commit event did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommitEffect {
    /// How many of the account's transactions became committed (more than 1 if earlier ones were
    /// committed in blocks this watcher did not see).
    pub newly_committed: usize,
    /// Submit → commit latency of this transaction, if it was sent by this run and not committed before.
    pub latency_us: Option<u64>,
}

impl Scheduler {
    /// A scheduler for accounts with `lens[i]` presigned transactions each, spread over `nodes` nodes.
    /// `window` is how many uncommitted transactions an account may have outstanding.
    pub fn new(lens: &[usize], nodes: usize, window: usize, retry_backoff_us: u64) -> Scheduler {
        let nodes = nodes.max(1);
        let mut by_node = vec![Vec::new(); nodes];
        for i in 0..lens.len() {
            by_node[i % nodes].push(i as u32);
        }
        Scheduler {
            accounts: lens
                .iter()
                .map(|&len| AccountState {
                    len,
                    committed: 0,
                    next: 0,
                    retry: BTreeSet::new(),
                    blocked_until_us: 0,
                    last_progress_us: 0,
                    first_sent_us: vec![NOT_SENT; len],
                    accepted: vec![false; len],
                })
                .collect(),
            cursor: vec![0; nodes],
            by_node,
            window: window.max(1),
            retry_backoff_us,
        }
    }

    /// The node an account is pinned to.
    pub fn node_of(&self, account: u32) -> usize {
        account as usize % self.by_node.len()
    }

    /// Up to `max` transactions for `node` that may be sent now: each account's retries first, then its
    /// next unsent ones, never beyond its window; accounts are visited round-robin so all make progress.
    pub fn take_ready(&mut self, node: usize, max: usize, now_us: u64) -> Vec<TxRef> {
        let mut out = Vec::new();
        let Some(list) = self.by_node.get(node) else {
            return out;
        };
        let n = list.len();
        let start = self.cursor[node];
        for step in 0..n {
            if out.len() >= max {
                break;
            }
            let pos = (start + step) % n;
            let account = list[pos];
            let state = &mut self.accounts[account as usize];
            if state.blocked_until_us > now_us {
                continue;
            }
            let limit = (state.committed + self.window).min(state.len);
            let before = out.len();
            while out.len() < max {
                match state.retry.first().copied() {
                    Some(seq) if seq < limit => {
                        state.retry.remove(&seq);
                        out.push(TxRef {
                            account,
                            seq: seq as u32,
                        });
                    }
                    _ => break,
                }
            }
            while out.len() < max && state.next < limit {
                out.push(TxRef {
                    account,
                    seq: state.next as u32,
                });
                state.next += 1;
            }
            if out.len() > before {
                self.cursor[node] = (pos + 1) % n;
            }
        }
        out
    }

    /// Whether `tx` was never sent (a send of it is a first send and takes a slot of the rate schedule).
    pub fn is_unsent(&self, tx: TxRef) -> bool {
        self.accounts
            .get(tx.account as usize)
            .and_then(|a| a.first_sent_us.get(tx.seq as usize))
            .is_some_and(|t| *t == NOT_SENT)
    }

    /// Records that `tx` went out, meant for `intended_us` (kept from the first send for latency);
    /// returns whether this is its first send.
    pub fn mark_sent(&mut self, tx: TxRef, intended_us: u64) -> bool {
        match self
            .accounts
            .get_mut(tx.account as usize)
            .and_then(|a| a.first_sent_us.get_mut(tx.seq as usize))
        {
            Some(slot) if *slot == NOT_SENT => {
                *slot = intended_us;
                true
            }
            _ => false,
        }
    }

    /// A node accepted `tx`.
    pub fn mark_accepted(&mut self, tx: TxRef) {
        if let Some(flag) = self
            .accounts
            .get_mut(tx.account as usize)
            .and_then(|a| a.accepted.get_mut(tx.seq as usize))
        {
            *flag = true;
        }
    }

    /// The chain says `account` has `count` of its presigned transactions committed (its nonce moved
    /// past them), e.g. read at the end of a run: those the watcher did not see become committed, without
    /// a latency sample (when they committed is unknown). Returns how many.
    pub fn reconcile(&mut self, account: u32, count: usize) -> usize {
        let Some(state) = self.accounts.get_mut(account as usize) else {
            return 0;
        };
        let count = count.min(state.len);
        if count <= state.committed {
            return 0;
        }
        let newly = count - state.committed;
        state.committed = count;
        state.next = state.next.max(count);
        state.retry = state.retry.split_off(&count);
        newly
    }

    /// Accounts with sent transactions not yet committed.
    pub fn accounts_outstanding(&self) -> Vec<u32> {
        (0..self.accounts.len() as u32)
            .filter(|&a| {
                let state = &self.accounts[a as usize];
                state.first_sent_us[state.committed..state.next]
                    .iter()
                    .any(|&t| t != NOT_SENT)
            })
            .collect()
    }

    /// What became of every transaction sent (see [`Tally`]).
    pub fn tally(&self) -> Tally {
        let mut tally = Tally::default();
        for state in &self.accounts {
            // Nonces commit in order: everything below `committed` is committed, whether this run saw
            // its first send or not (a resend after a restart of the tool would be the same tx).
            tally.committed += state.committed as u64;
            for seq in state.committed..state.len {
                if state.first_sent_us[seq] == NOT_SENT {
                    continue;
                }
                if state.accepted[seq] {
                    tally.pending += 1;
                } else {
                    tally.lost += 1;
                }
            }
        }
        tally.sent = tally.committed + tally.pending + tally.lost;
        tally
    }

    /// A transient rejection (mempool full, nonce ahead of a lagging node, connection error): send `tx`
    /// again after the back-off.
    pub fn retry_later(&mut self, tx: TxRef, now_us: u64) {
        if let Some(state) = self.accounts.get_mut(tx.account as usize) {
            if (tx.seq as usize) >= state.committed {
                state.retry.insert(tx.seq as usize);
                state.blocked_until_us = now_us.saturating_add(self.retry_backoff_us);
            }
        }
    }

    /// `tx` was seen in a committed block at `now_us`.
    pub fn committed(&mut self, tx: TxRef, now_us: u64) -> CommitEffect {
        let none = CommitEffect {
            newly_committed: 0,
            latency_us: None,
        };
        let Some(state) = self.accounts.get_mut(tx.account as usize) else {
            return none;
        };
        let seq = tx.seq as usize;
        if seq < state.committed || seq >= state.len {
            return none;
        }
        let newly_committed = seq + 1 - state.committed;
        state.committed = seq + 1;
        state.next = state.next.max(state.committed);
        state.retry = state.retry.split_off(&state.committed);
        state.last_progress_us = now_us;
        let sent = state.first_sent_us[seq];
        CommitEffect {
            newly_committed,
            latency_us: (sent != NOT_SENT).then(|| now_us.saturating_sub(sent)),
        }
    }

    /// Accounts whose sent transactions have not advanced for `stall_us` get them queued again (a
    /// transaction can be dropped by a mempool, e.g. on recheck); returns how many were queued.
    pub fn requeue_stalled(&mut self, now_us: u64, stall_us: u64) -> usize {
        let mut queued = 0;
        for state in &mut self.accounts {
            if state.committed < state.next
                && now_us.saturating_sub(state.last_progress_us) >= stall_us
            {
                for seq in state.committed..state.next {
                    queued += usize::from(state.retry.insert(seq));
                }
                state.last_progress_us = now_us;
            }
        }
        queued
    }

    /// Gives back a transaction that was taken but not sent (it is offered again, without back-off).
    pub fn unsend(&mut self, tx: TxRef) {
        if let Some(state) = self.accounts.get_mut(tx.account as usize) {
            if (tx.seq as usize) >= state.committed {
                state.retry.insert(tx.seq as usize);
            }
        }
    }

    /// Sent (at least once) but not yet committed.
    pub fn outstanding(&self) -> usize {
        self.accounts
            .iter()
            .map(|a| {
                a.first_sent_us[a.committed..a.next]
                    .iter()
                    .filter(|&&t| t != NOT_SENT)
                    .count()
            })
            .sum()
    }

    /// Committed transactions of this run (counted by nonce advance).
    pub fn total_committed(&self) -> usize {
        self.accounts.iter().map(|a| a.committed).sum()
    }

    /// Every presigned transaction has been sent and none waits for a retry.
    pub fn exhausted(&self) -> bool {
        self.accounts
            .iter()
            .all(|a| a.next == a.len && a.retry.is_empty())
    }
}

/// The send schedule of a fixed rate: the k-th new transaction of the run is due `k / rate` seconds
/// after the start. Senders take slots in order and send no earlier than their slots; a transaction's
/// latency is measured from its slot, so a client that falls behind (waiting for the nonce window, a
/// slow node, its own queue) cannot hide the wait — the coordinated-omission correction of a
/// constant-rate load generator.
#[derive(Debug, Clone)]
pub struct RateSchedule {
    start_us: u64,
    interval_us: f64,
    issued: u64,
}

impl RateSchedule {
    /// A schedule of `rate_per_s` transactions per second from `start_us`.
    pub fn new(rate_per_s: f64, start_us: u64) -> RateSchedule {
        RateSchedule {
            start_us,
            interval_us: 1e6 / rate_per_s.max(f64::MIN_POSITIVE),
            issued: 0,
        }
    }

    /// The due times (µs) of the next `n` slots.
    pub fn take(&mut self, n: usize) -> Vec<u64> {
        let first = self.issued;
        self.issued = self.issued.saturating_add(n as u64);
        (first..self.issued)
            .map(|k| {
                self.start_us
                    .saturating_add((k as f64 * self.interval_us).round() as u64)
            })
            .collect()
    }

    /// Slots due by `until_us` (the transactions the schedule offered by then).
    pub fn due_by(&self, until_us: u64) -> u64 {
        let elapsed = until_us.saturating_sub(self.start_us) as f64;
        (elapsed / self.interval_us).floor() as u64 + 1
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    fn seqs(txs: &[TxRef]) -> Vec<(u32, u32)> {
        txs.iter().map(|t| (t.account, t.seq)).collect()
    }

    #[test]
    fn window_limits_outstanding_per_account() {
        let mut s = Scheduler::new(&[10, 10], 1, 3, 1000);
        let first = s.take_ready(0, 100, 0);
        assert_eq!(
            seqs(&first),
            vec![(0, 0), (0, 1), (0, 2), (1, 0), (1, 1), (1, 2)]
        );
        assert!(s.take_ready(0, 100, 0).is_empty(), "window is full");
        assert_eq!(s.outstanding(), 0, "taken is not sent");
        for t in &first[..5] {
            s.mark_sent(*t, 1);
        }
        s.unsend(first[5]);
        assert_eq!(s.outstanding(), 5);
        assert_eq!(seqs(&s.take_ready(0, 100, 0)), vec![(1, 2)], "given back");
        // Committing seq 1 of account 0 (seq 0 implied) opens two slots.
        let effect = s.committed(TxRef { account: 0, seq: 1 }, 10);
        assert_eq!(effect.newly_committed, 2);
        assert_eq!(seqs(&s.take_ready(0, 100, 10)), vec![(0, 3), (0, 4)]);
        assert_eq!(s.total_committed(), 2);
    }

    #[test]
    fn accounts_are_pinned_to_nodes_and_visited_round_robin() {
        let mut s = Scheduler::new(&[5, 5, 5, 5], 2, 5, 0);
        assert_eq!(s.node_of(0), 0);
        assert_eq!(s.node_of(3), 1);
        assert_eq!(seqs(&s.take_ready(1, 2, 0)), vec![(1, 0), (1, 1)]);
        // The next call starts after account 1 on node 1, i.e. with account 3.
        assert_eq!(seqs(&s.take_ready(1, 1, 0)), vec![(3, 0)]);
        assert_eq!(seqs(&s.take_ready(1, 1, 0)), vec![(1, 2)]);
        assert!(s.take_ready(0, 1, 0).iter().all(|t| t.account % 2 == 0));
    }

    #[test]
    fn retries_wait_for_the_backoff_and_go_first() {
        let mut s = Scheduler::new(&[10], 1, 4, 100);
        let sent = s.take_ready(0, 2, 0);
        s.retry_later(sent[0], 50);
        assert!(s.take_ready(0, 10, 100).is_empty(), "blocked until 150");
        assert_eq!(
            seqs(&s.take_ready(0, 10, 150)),
            vec![(0, 0), (0, 2), (0, 3)]
        );
    }

    #[test]
    fn latency_uses_the_first_send_and_counts_once() {
        let mut s = Scheduler::new(&[3], 1, 3, 0);
        let txs = s.take_ready(0, 3, 0);
        for t in &txs {
            assert!(s.mark_sent(*t, 1_000));
        }
        assert!(!s.mark_sent(txs[0], 5_000), "a resend keeps the first time");
        let effect = s.committed(txs[0], 3_500);
        assert_eq!(effect.latency_us, Some(2_500));
        assert_eq!(
            s.committed(txs[0], 4_000),
            CommitEffect {
                newly_committed: 0,
                latency_us: None
            }
        );
        assert_eq!(s.outstanding(), 2);
    }

    #[test]
    fn stalled_accounts_are_requeued_once_per_stall() {
        let mut s = Scheduler::new(&[4], 1, 4, 0);
        let _ = s.take_ready(0, 4, 0);
        assert_eq!(s.requeue_stalled(999, 1_000), 0);
        assert_eq!(s.requeue_stalled(1_000, 1_000), 4);
        assert_eq!(s.requeue_stalled(1_500, 1_000), 0);
        s.committed(TxRef { account: 0, seq: 1 }, 1_600);
        assert_eq!(seqs(&s.take_ready(0, 10, 1_600)), vec![(0, 2), (0, 3)]);
        s.committed(TxRef { account: 0, seq: 3 }, 1_700);
        assert!(s.exhausted());
        assert_eq!(s.outstanding(), 0);
    }

    #[test]
    fn the_rate_schedule_spaces_slots_and_counts_what_was_due() {
        let mut r = RateSchedule::new(1000.0, 5_000);
        assert_eq!(r.take(3), vec![5_000, 6_000, 7_000]);
        assert_eq!(r.take(1), vec![8_000]);
        // Slots keep their times however late they are taken.
        assert_eq!(r.take(2), vec![9_000, 10_000]);
        // One second at 1000/s offered 1000 transactions (slot 0 at the start).
        assert_eq!(r.due_by(5_000 + 999_999), 1000);
        assert_eq!(r.due_by(5_000), 1);
        let mut odd = RateSchedule::new(3.0, 0);
        assert_eq!(odd.take(4), vec![0, 333_333, 666_667, 1_000_000]);
    }

    #[test]
    fn latency_counts_from_the_intended_time_and_every_send_ends_somewhere() {
        let mut s = Scheduler::new(&[4, 4], 1, 4, 0);
        let txs = s.take_ready(0, 8, 0);
        assert!(txs.iter().all(|t| s.is_unsent(*t)));
        // Meant for 1 ms, sent late: latency still counts from 1 ms.
        assert!(s.mark_sent(txs[0], 1_000));
        assert!(!s.is_unsent(txs[0]));
        s.mark_accepted(txs[0]);
        assert_eq!(s.committed(txs[0], 51_000).latency_us, Some(50_000));
        // Account 0: seq 1 accepted and pending, seq 2 refused everywhere (lost), seq 3 never sent.
        s.mark_sent(txs[1], 2_000);
        s.mark_accepted(txs[1]);
        s.mark_sent(txs[2], 3_000);
        // Account 1: all four sent and accepted; the chain says three committed (the watcher saw none).
        for t in &txs[4..] {
            s.mark_sent(*t, 4_000);
            s.mark_accepted(*t);
        }
        assert_eq!(s.accounts_outstanding(), vec![0, 1]);
        assert_eq!(s.reconcile(1, 3), 3);
        assert_eq!(s.reconcile(1, 2), 0, "a lower count changes nothing");
        let tally = s.tally();
        assert_eq!(
            tally,
            Tally {
                sent: 7,
                committed: 4,
                pending: 2,
                lost: 1
            }
        );
        assert_eq!(tally.sent, tally.committed + tally.pending + tally.lost);
    }
}
