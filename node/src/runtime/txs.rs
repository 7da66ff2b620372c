//! Admission of gossiped transaction batches, on its own thread: checking signatures is the dominant cost
//! of a busy node and must not delay consensus. Each transaction is checked once per node (the mempool's
//! cache remembers accepted and rejected hashes).

use std::sync::Arc;

use basalt_consensus::types::Tx;
use basalt_p2p::{GossipId, Misbehaviour, NetworkHandle, PeerId, Verdict};
use basalt_state::app::{Application, BankApp, CheckTxResult};
use basalt_state::bank::TxCode;
use tokio::sync::mpsc;

use crate::mempool::{Known, Mempool, MempoolError, TxOrigin};
use crate::metrics::Metrics;

/// Gossiped batches waiting for admission (beyond this, batches are dropped and not forwarded).
pub const INGEST_QUEUE: usize = 1024;

/// Most transactions whose signatures one admission pass verifies together. Batches waiting in the queue
/// are taken together up to this, so a busy node verifies in large batches (about half the cost per
/// signature) while an idle one admits a lone batch at once.
pub const MAX_VERIFY_BATCH: usize = 1024;

/// A gossiped batch to admit.
#[derive(Debug)]
pub struct Batch {
    /// Gossip id (for the forward/penalise verdict).
    pub id: GossipId,
    /// The peer that forwarded it.
    pub from: PeerId,
    /// The transactions.
    pub txs: Vec<Tx>,
}

/// Starts the admission thread; send it batches through the returned channel.
pub fn spawn_ingest(
    mempool: Arc<Mempool>,
    app: BankApp,
    network: NetworkHandle,
    metrics: Option<Arc<Metrics>>,
) -> std::io::Result<mpsc::Sender<Batch>> {
    let (tx, mut rx) = mpsc::channel::<Batch>(INGEST_QUEUE);
    std::thread::Builder::new()
        .name("tx-ingest".into())
        .spawn(move || {
            while let Some(first) = rx.blocking_recv() {
                let batches = take_waiting(first, &mut rx, MAX_VERIFY_BATCH, |b| b.txs.len());
                // Signatures of transactions this node has not judged yet, verified in one batch; what
                // it already judged (valid, or refused: perhaps for a bad signature, which would fail the
                // whole batch every time) is left to `admit`.
                let verified = app.preverify_signatures(
                    batches
                        .iter()
                        .flat_map(|b| &b.txs)
                        .filter(|tx| mempool.known(&tx.hash()) == Known::Unknown),
                );
                count_tx_checks(metrics.as_deref(), verified as u64);
                for batch in batches {
                    let verdict = admit(&mempool, batch.txs, |tx| {
                        if !app.signature_verified(&tx.hash()) {
                            count_tx_checks(metrics.as_deref(), 1);
                        }
                        app.check_tx(tx)
                    });
                    match verdict {
                        Admitted::BadSignature => {
                            network.report_validation(batch.id, Verdict::Reject);
                            network.report_peer(batch.from, Misbehaviour::BadSignature);
                        }
                        Admitted::New => network.report_validation(batch.id, Verdict::Accept),
                        Admitted::Nothing => network.report_validation(batch.id, Verdict::Ignore),
                    }
                }
            }
        })?;
    Ok(tx)
}

/// `first` and the items already waiting behind it, in arrival order, until their `size`s reach `max`
/// (so at least `first`, and at most one item past `max`). Never waits.
fn take_waiting<T>(
    first: T,
    rx: &mut mpsc::Receiver<T>,
    max: usize,
    size: impl Fn(&T) -> usize,
) -> Vec<T> {
    let mut total = size(&first);
    let mut items = vec![first];
    while total < max {
        match rx.try_recv() {
            Ok(item) => {
                total = total.saturating_add(size(&item));
                items.push(item);
            }
            Err(_) => break,
        }
    }
    items
}

/// The verdict on a gossiped batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admitted {
    /// Every transaction in it is valid (checked now or before) and at least one is new: forward it.
    New,
    /// Nothing new, or something in it could not be judged valid (a stale nonce, a full mempool, a check
    /// still running): neither forwarded nor punished. Forwarding it could get this node punished for
    /// what it forwarded.
    Nothing,
    /// It holds a transaction with a bad signature (now or when it was first seen): anyone can check that,
    /// so the sender is punished.
    BadSignature,
}

/// Counts transaction signatures verified (`signature_verifications_total{kind="tx"}`).
pub fn count_tx_checks(metrics: Option<&Metrics>, count: u64) {
    if let Some(m) = metrics {
        m.basalt
            .signature_verifications_total
            .with_label_values(&["tx"])
            .inc_by(count);
    }
}

/// Admits a gossiped batch and judges it as a whole: gossipsub forwards the batch as it came, so it may be
/// forwarded only if every transaction in it is valid here — a transaction this node saw before counts by
/// what its check said then, not as "nothing new".
pub fn admit(
    mempool: &Mempool,
    txs: Vec<Tx>,
    mut check: impl FnMut(&Tx) -> CheckTxResult,
) -> Admitted {
    let bad_signature = TxCode::BadSignature.as_u32();
    let mut any_new = false;
    let mut all_valid = true;
    for tx in txs {
        // Peer-origin: gossipsub forwards the batch itself, so our batcher must not gossip it again.
        match mempool.insert_with_origin(tx, TxOrigin::Peer, &mut check) {
            Ok(_) => any_new = true,
            // An honest peer checked every transaction before gossiping it: a bad signature is provable
            // misbehaviour (unlike a stale nonce, which races can cause).
            Err(MempoolError::Rejected { code, .. }) if code == bad_signature => {
                return Admitted::BadSignature;
            }
            Err(MempoolError::InCache(known)) => match known {
                Known::Valid => {}
                Known::Rejected(code) if code == bad_signature => return Admitted::BadSignature,
                Known::Rejected(_) | Known::Checking | Known::Unknown => all_valid = false,
            },
            Err(_) => all_valid = false,
        }
    }
    if any_new && all_valid {
        Admitted::New
    } else {
        Admitted::Nothing
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn waiting_batches_are_taken_together_up_to_the_limit_without_waiting() {
        let (tx, mut rx) = mpsc::channel::<Vec<u8>>(16);
        // Nothing waiting: the first alone, at once.
        assert_eq!(take_waiting(vec![1], &mut rx, 10, Vec::len), vec![vec![1]]);
        for batch in [vec![2, 2], vec![3, 3, 3], vec![4; 6], vec![5]] {
            tx.try_send(batch).unwrap();
        }
        // 1 + 2 + 3 = 6 < 10 takes the next; 12 ≥ 10 stops: the last batch stays queued, in order.
        assert_eq!(
            take_waiting(vec![1], &mut rx, 10, Vec::len),
            vec![vec![1], vec![2, 2], vec![3, 3, 3], vec![4; 6]]
        );
        assert_eq!(rx.try_recv().unwrap(), vec![5]);
        // A first batch at the limit already takes nothing more.
        tx.try_send(vec![6]).unwrap();
        assert_eq!(
            take_waiting(vec![0; 10], &mut rx, 10, Vec::len),
            vec![vec![0; 10]]
        );
        assert_eq!(rx.try_recv().unwrap(), vec![6]);
    }
}
