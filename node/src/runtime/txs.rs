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
            while let Some(batch) = rx.blocking_recv() {
                let verdict = admit(&mempool, batch.txs, |tx| {
                    count_tx_check(metrics.as_deref());
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
        })?;
    Ok(tx)
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

/// Counts one transaction signature check (`signature_verifications_total{kind="tx"}`).
pub fn count_tx_check(metrics: Option<&Metrics>) {
    if let Some(m) = metrics {
        m.basalt
            .signature_verifications_total
            .with_label_values(&["tx"])
            .inc();
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
