//! Admission of gossiped transaction batches, on its own thread: checking signatures is the dominant cost
//! of a busy node and must not delay consensus. Each transaction is checked once per node (the mempool's
//! cache remembers accepted and rejected hashes).

use std::sync::Arc;

use basalt_consensus::types::Tx;
use basalt_p2p::{GossipId, Misbehaviour, NetworkHandle, PeerId, Verdict};
use basalt_state::app::{Application, BankApp, CheckTxResult, Preverified};
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
                let groups: Vec<&[Tx]> = batches.iter().map(|b| b.txs.as_slice()).collect();
                preverify(&app, &mempool, &groups, metrics.as_deref());
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

/// Verifies the signatures of the gossiped batches' (`groups`) transactions this node has not judged yet
/// in one batch (what it already judged — valid, or refused, perhaps for a bad signature that would fail
/// every batch it is in — is left to [`admit`]). If one bad signature fails the whole, each peer's batch is
/// tried alone, so a bad peer costs the honest ones at most one more batch verification.
fn preverify(app: &BankApp, mempool: &Mempool, groups: &[&[Tx]], metrics: Option<&Metrics>) {
    let mut outcomes =
        vec![app.preverify_signatures(groups.iter().flat_map(|g| unjudged(mempool, g)))];
    if matches!(outcomes[0], Preverified::Failed { .. }) && groups.len() > 1 {
        outcomes.extend(
            groups
                .iter()
                .map(|g| app.preverify_signatures(unjudged(mempool, g))),
        );
    }
    for outcome in outcomes {
        let (Preverified::Recorded(verified) | Preverified::Failed { verified }) = outcome;
        count_tx_checks(metrics, verified as u64);
    }
}

/// The transactions of `txs` the mempool knows nothing of.
fn unjudged<'a>(mempool: &'a Mempool, txs: &'a [Tx]) -> impl Iterator<Item = &'a Tx> + 'a {
    txs.iter()
        .filter(|tx| mempool.known(&tx.hash()) == Known::Unknown)
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
    use basalt_consensus::types::{ChainId, PrivateKey};
    use basalt_state::app::testkit::{transfer_tx, transfer_tx_signed_with};
    use basalt_state::app::BankAppConfig;
    use basalt_state::{StateStore, StoreConfig};

    #[test]
    fn a_bad_signature_in_one_peers_batch_does_not_cost_the_others_their_batch() {
        let chain = ChainId::new("basalt-ingest-test").unwrap();
        let key = |i: u8| PrivateKey::from_seed(&[i; 32]);
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(StateStore::open(dir.path(), StoreConfig::default()).unwrap());
        let app = BankApp::new(
            store,
            BankAppConfig {
                chain_id: chain.clone(),
            },
        );
        let mempool = Mempool::new(crate::mempool::MempoolConfig {
            max_txs: 100,
            max_bytes: 1 << 20,
            cache_size: 100,
            max_tx_bytes: 1 << 10,
        });
        let to = key(99).public_key().address();
        let honest: Vec<Tx> = (1..=4)
            .map(|i| transfer_tx(&key(i), &chain, to, 1, 1, 0).unwrap())
            .collect();
        let forged =
            transfer_tx_signed_with(&key(5), &chain, to, 1, 1, 0, |m| key(6).sign(m)).unwrap();
        let bad_peer = vec![honest[3].clone(), forged.clone()];
        preverify(&app, &mempool, &[&honest[..3], &bad_peer], None);
        // The honest peer's batch verified on its own; the bad peer's failed and recorded nothing.
        assert!(honest[..3]
            .iter()
            .all(|tx| app.signature_verified(&tx.hash())));
        assert!(!app.signature_verified(&honest[3].hash()));
        assert!(!app.signature_verified(&forged.hash()));
    }

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
