//! Transaction traffic: clients submit signed transfers to honest nodes' RPC, honest nodes gossip them in
//! batches and judge received batches with the node's own admission (`basalt_node::runtime::txs::admit`
//! over the real mempool), forwarding only what they accepted, as gossipsub does. Byzantine garbage
//! nodes attack that path (issue 14, hole 3) and gossip evidence no block could carry (hole 1).

use std::rc::Rc;

use rand_core::RngCore;

use basalt_consensus::engine::ConsensusMessage;
use basalt_consensus::types::{DuplicateVoteEvidence, SignedVote, Tx, Vote};
use basalt_consensus::{Height, Round, ValidatorIndex, VoteType};
use basalt_node::runtime::txs::{admit, Admitted};

use super::{traffic, Event, NodeId, Sim};

impl Sim {
    /// When the next client transfer is submitted: every 100–400 ms of simulated time.
    pub(super) fn next_submission_ms(&mut self) -> u64 {
        self.now_ms + 100 + self.traffic_rng.next_u64() % 300
    }

    /// A client submits its next transfer to a random node's RPC (refused if that node is down or
    /// byzantine: the client's request fails, as against a real node).
    pub(super) fn submit_client_tx(&mut self) {
        let count = self.client_txs.len() as u64;
        if count >= traffic::MAX_CLIENT_TXS {
            return;
        }
        let next = self.next_submission_ms();
        self.schedule(next, Event::SubmitTx);
        let client = (count % self.clients.len() as u64) as usize;
        let key = &self.clients[client];
        let to = self.clients[(client + 1) % self.clients.len()]
            .public_key()
            .address();
        let nonce = count / self.clients.len() as u64;
        let Some(tx) = traffic::transfer(&self.genesis.chain_id, key.public_key(), key, nonce, to)
        else {
            return;
        };
        let node = (self.traffic_rng.next_u32() as usize) % self.nodes.len();
        let Some(mempool) = self.nodes[node].mempool.as_ref() else {
            return;
        };
        let hash = tx.hash();
        if mempool.insert(tx, traffic::check).is_ok() {
            self.client_txs.insert(hash);
        }
    }

    /// An honest node's gossip tick for transactions: what was submitted to it since the last tick goes
    /// out as one batch to every peer.
    pub(super) fn gossip_txs(&mut self, id: NodeId) {
        let Some(mempool) = self.nodes[id].mempool.as_ref() else {
            return;
        };
        let txs = mempool.take_new_for_gossip(traffic::GOSSIP_BYTES);
        if txs.is_empty() {
            return;
        }
        let publish = self.new_publish();
        let bytes = Rc::new(traffic::batch_bytes(publish, &txs));
        for to in 0..self.nodes.len() {
            if to != id {
                self.send_txs(id, to, bytes.clone(), publish);
            }
        }
    }

    /// Schedules the deliveries of one transactions-topic message (lost, late or twice, as the link
    /// says; nothing across a partition).
    fn send_txs(&mut self, from: NodeId, to: NodeId, bytes: Rc<Vec<u8>>, publish: u64) {
        self.send_traffic(from, to, false, || Event::DeliverTxs {
            to,
            from,
            bytes: bytes.clone(),
            publish,
        });
    }

    /// A batch reaches a node. An honest node decodes it as the network layer does, judges it with the
    /// node's admission over its mempool, and forwards it to its other peers only if accepted; a sender
    /// it punishes must not be honest.
    pub(super) fn deliver_txs(
        &mut self,
        to: NodeId,
        from: NodeId,
        bytes: Rc<Vec<u8>>,
        publish: u64,
    ) {
        let node = &mut self.nodes[to];
        if node.crashed || node.behaviour.is_some() || !node.seen.insert(publish) {
            return;
        }
        let Some(mempool) = node.mempool.as_ref() else {
            return;
        };
        let verdict = match basalt_p2p::decode_txs(&bytes, traffic::MAX_TX_BATCH_BYTES) {
            // The network layer punishes an undecodable message's forwarder.
            Err(_) => Admitted::BadSignature,
            Ok(txs) => admit(mempool, txs, traffic::check),
        };
        match verdict {
            Admitted::New => {
                for next in 0..self.nodes.len() {
                    if next != to && next != from {
                        self.send_txs(to, next, bytes.clone(), publish);
                    }
                }
            }
            Admitted::Nothing => {}
            Admitted::BadSignature => {
                self.record.refused_tx_batches += 1;
                if self.nodes[from].behaviour.is_none() {
                    // An honest node forwarded what it could have refused (or was punished for
                    // something it could not have checked).
                    self.record.honest_penalised.push((to, from, self.now_ms));
                }
            }
        }
    }

    /// The transaction attack of a garbage node on honest node `to`: it submits a badly signed transfer
    /// to `to`'s RPC (refused and remembered as refused), then gossips `to` a batch of one new valid
    /// transfer and that refused one. Forwarding the batch because something in it was new would get
    /// `to` punished by every peer (hole 3 on 9496b9c); it must be refused and its sender punished. Also an
    /// undecodable batch.
    pub(super) fn garbage_txs(&mut self, id: NodeId, to: NodeId) {
        let chain_id = self.genesis.chain_id.clone();
        let own = self.nodes[id].key.clone();
        let victim = self.clients[0].public_key();
        let nonce = self.traffic_rng.next_u64();
        let target = own.public_key().address();
        let (Some(forged), Some(fresh)) = (
            traffic::transfer(&chain_id, victim, &own, nonce, target),
            traffic::transfer(&chain_id, own.public_key(), &own, nonce, target),
        ) else {
            return;
        };
        if let Some(mempool) = self.nodes[to].mempool.as_ref() {
            // The RPC refuses it (bad signature), and the node remembers that.
            let _ = mempool.insert(forged.clone(), traffic::check);
        }
        let mut junk = vec![0u8; 1 + (self.traffic_rng.next_u32() % 64) as usize];
        self.traffic_rng.fill_bytes(&mut junk);
        let batches: [Vec<u8>; 2] = [
            traffic::batch_bytes(self.traffic_rng.next_u64(), &[fresh, forged]),
            junk,
        ];
        for bytes in batches {
            let publish = self.new_publish();
            self.send_txs(id, to, Rc::new(bytes), publish);
        }
    }

    /// Evidence a garbage node gossips to `to`: its own genuine double votes at heights no block can carry
    /// yet (a few heights ahead and 2^62: checking them against the validator set of that height cost the
    /// node on 9496b9c a walk to that height — hole 1), and evidence forged for another validator.
    pub(super) fn garbage_evidence(&mut self, id: NodeId, to: NodeId, height: Height) {
        let chain_id = self.genesis.chain_id.clone();
        let address = self.nodes[id].key.public_key().address();
        let Some(own) = self.genesis.set_for(Height(1)).index_of(&address) else {
            return;
        };
        let other = ValidatorIndex((own.0 + 1) % self.nodes.len() as u32);
        let far = height.0 + 2 + self.traffic_rng.next_u64() % 1_000_000;
        let pairs = [
            (Height(far), own),
            (Height(u64::MAX / 4), own),
            (height, other),
        ];
        for (at, index) in pairs {
            let [a, b] = [0u8, 1].map(|tag| {
                let mut hash = [tag; 32];
                hash[1..9].copy_from_slice(&self.traffic_rng.next_u64().to_le_bytes());
                let vote = Vote {
                    vote_type: VoteType::Prevote,
                    height: at,
                    round: Round(0),
                    block_id: Some(basalt_consensus::types::BlockId {
                        hash: basalt_consensus::types::Hash(hash),
                    }),
                    validator_index: index,
                };
                SignedVote {
                    signature: self.nodes[id].key.sign(&vote.sign_bytes(&chain_id)),
                    vote,
                }
            });
            let Ok(evidence) = DuplicateVoteEvidence::new(a, b) else {
                continue;
            };
            let bytes = Rc::new(ConsensusMessage::Evidence(evidence).to_bytes());
            let publish = self.new_publish();
            self.send_traffic(id, to, false, || Event::Deliver {
                to,
                from: id,
                side: None,
                bytes: bytes.clone(),
                publish,
            });
        }
    }

    /// Client transfers in a block an honest node decided.
    pub(super) fn count_client_txs(&mut self, txs: &[Tx]) {
        for tx in txs {
            let hash = tx.hash();
            if self.client_txs.contains(&hash) {
                self.record.client_txs_committed.insert(hash);
            }
        }
    }
}
