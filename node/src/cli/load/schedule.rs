//! Which pre-signed transfer to send next: a per-account nonce window, retries with back-off, commit
//! tracking, and a token bucket for a fixed rate. Pure (times are microseconds since the run started,
//! passed in), so it is tested without a clock.
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
    /// First send time of each seq, or [`NOT_SENT`].
    first_sent_us: Vec<u64>,
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

    /// Records that `tx` went out at `now_us` (the first send time is kept for latency); returns whether
    /// this is its first send.
    pub fn mark_sent(&mut self, tx: TxRef, now_us: u64) -> bool {
        match self
            .accounts
            .get_mut(tx.account as usize)
            .and_then(|a| a.first_sent_us.get_mut(tx.seq as usize))
        {
            Some(slot) if *slot == NOT_SENT => {
                *slot = now_us;
                true
            }
            _ => false,
        }
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

/// A token bucket: `rate` tokens per second, at most `burst` saved up. Tokens may be borrowed (the
/// balance goes negative) so concurrent senders share the rate exactly; the caller waits the returned
/// time before sending.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    rate_per_s: f64,
    burst: f64,
    tokens: f64,
    last_us: u64,
}

impl TokenBucket {
    /// A bucket for `rate_per_s` with at most `burst` tokens saved; it starts empty so the run does not
    /// open with a spike.
    pub fn new(rate_per_s: f64, burst: f64) -> TokenBucket {
        TokenBucket {
            rate_per_s: rate_per_s.max(f64::MIN_POSITIVE),
            burst: burst.max(1.0),
            tokens: 0.0,
            last_us: 0,
        }
    }

    /// Takes `n` tokens at `now_us`; returns how long (µs) to wait before using them.
    pub fn take(&mut self, n: usize, now_us: u64) -> u64 {
        let elapsed_s = now_us.saturating_sub(self.last_us) as f64 / 1e6;
        self.last_us = self.last_us.max(now_us);
        self.tokens = (self.tokens + elapsed_s * self.rate_per_s).min(self.burst);
        self.tokens -= n as f64;
        if self.tokens >= 0.0 {
            0
        } else {
            (-self.tokens / self.rate_per_s * 1e6).ceil() as u64
        }
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
    fn token_bucket_holds_the_rate_over_time() {
        let mut b = TokenBucket::new(1000.0, 10.0);
        // 10 txs at t=0 from an empty bucket: wait 10 ms.
        assert_eq!(b.take(10, 0), 10_000);
        // After 20 ms, 20 tokens were added: 10 repay the debt, so 10 more are free.
        assert_eq!(b.take(10, 20_000), 0);
        // Idle time saves at most one burst.
        assert_eq!(b.take(10, 1_000_000), 0);
        assert_eq!(b.take(10, 1_000_000), 10_000);
        // Summed over a second, sends are spaced to 1000/s.
        let mut b = TokenBucket::new(1000.0, 1.0);
        let mut t = 0;
        for _ in 0..100 {
            t += b.take(10, t);
        }
        assert!((990_000..=1_000_000).contains(&t), "{t}");
    }
}
