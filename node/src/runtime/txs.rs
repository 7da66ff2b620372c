//! Admission of gossiped transaction batches, on its own thread: checking signatures is the dominant cost
//! of a busy node and must not delay consensus. Each transaction is checked once per node (the mempool's
//! cache remembers accepted and rejected hashes).

use std::sync::Arc;

use basalt_consensus::types::Tx;
use basalt_p2p::{GossipId, Misbehaviour, NetworkHandle, PeerId, Verdict};
use basalt_state::app::{Application, BankApp};
use basalt_state::bank::TxCode;
use tokio::sync::mpsc;

use crate::mempool::{Mempool, MempoolError, TxOrigin};
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
                let verdict = admit(&mempool, &app, batch.txs, metrics.as_deref());
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

enum Admitted {
    New,
    Nothing,
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

fn admit(mempool: &Mempool, app: &BankApp, txs: Vec<Tx>, metrics: Option<&Metrics>) -> Admitted {
    let mut any_new = false;
    for tx in txs {
        // Peer-origin: gossipsub forwards the batch itself, so our batcher must not gossip it again.
        let check = |tx: &Tx| {
            count_tx_check(metrics);
            app.check_tx(tx)
        };
        match mempool.insert_with_origin(tx, TxOrigin::Peer, check) {
            Ok(_) => any_new = true,
            // An honest peer checked every transaction before gossiping it: a bad signature is provable
            // misbehaviour (unlike a stale nonce, which races can cause).
            Err(MempoolError::Rejected { code, .. }) if code == TxCode::BadSignature.as_u32() => {
                return Admitted::BadSignature;
            }
            Err(_) => {}
        }
    }
    if any_new {
        Admitted::New
    } else {
        Admitted::Nothing
    }
}
