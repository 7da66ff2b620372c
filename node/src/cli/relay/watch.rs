//! Misbehaviour watching: every header that updated the path's client on one chain (its `update_client`
//! events, whoever sent them) is compared with the block the other chain really committed at that
//! height. A header naming another block means the counterparty's validators signed two blocks at one
//! height (a fork, or an attack on light clients); the relayer then submits both headers as
//! misbehaviour (a `MsgUpdateClient` carrying both), which freezes the client: no packet,
//! acknowledgement or timeout is accepted over it any more, so nothing can be proved from the forged
//! state.
//!
//! Reconciled from chain state like the packets: on start the watcher reads the client's whole update
//! history (paged, a bounded number of pages per pass), then only what is new; the counterparty's block
//! hashes it has checked are cached (bounded), so a pass over headers already seen costs one query.

use std::collections::BTreeMap;

use basalt_consensus::types::Hash;
use basalt_ibc::client::ClientHeader;
use basalt_ibc::relay;
use ibc_core::host::types::identifiers::ClientId;
use serde_json::Value;

use super::path::client_state;
use super::remote::{tx_events, tx_height, Remote, TX_PAGE};
use super::RelayError;

/// Most `tx_search` pages read per pass (the rest waits for the next pass).
pub const MAX_PAGES_PER_PASS: u64 = 10;
/// Most counterparty block hashes remembered.
pub const MAX_CACHED_HASHES: usize = 4096;

/// The state of the path's client on the host chain, as the watcher found it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientHealth {
    /// Every update seen so far matches the counterparty's blocks.
    Sound,
    /// The client is frozen: by this pass's evidence of a conflict at `conflict` (a height of the
    /// counterparty), or earlier (`None`; the client keeps no record of the height).
    Frozen {
        /// The conflicting header's height, when this pass submitted the evidence.
        conflict: Option<u64>,
    },
}

/// What the watcher found wrong: a header the host's client accepted that names another block than the
/// one the counterparty committed at its height.
#[derive(Clone, Debug)]
pub struct Conflict {
    /// The accepted header.
    pub forged: ClientHeader,
    /// The counterparty's real block at that height, as a header from the same trusted height.
    pub real: ClientHeader,
}

/// One client's watcher (the client on `host` of `source`'s chain).
#[derive(Debug)]
pub struct Watcher {
    client: ClientId,
    /// Host heights below this were checked.
    floor: u64,
    /// The counterparty's block hash by height.
    hashes: BTreeMap<u64, Hash>,
}

impl Watcher {
    /// A watcher of `client` that starts from the host's first block.
    pub fn new(client: ClientId) -> Watcher {
        Watcher {
            client,
            floor: 1,
            hashes: BTreeMap::new(),
        }
    }

    /// One pass: the client's state first (a frozen client stays frozen), then the updates committed on
    /// `host` since the last pass; a conflicting one is submitted as misbehaviour, which freezes it.
    pub async fn pass(
        &mut self,
        host: &Remote,
        source: &Remote,
    ) -> Result<ClientHealth, RelayError> {
        let state = client_state(host, &self.client)
            .await?
            .ok_or_else(|| RelayError::State(format!("no client {}", self.client)))?;
        if state.is_frozen() {
            return Ok(ClientHealth::Frozen { conflict: None });
        }
        let Some(conflict) = self.scan(host, source).await? else {
            return Ok(ClientHealth::Sound);
        };
        let height = conflict.forged.height().0;
        eprintln!(
            "misbehaviour: {} on {} accepted a header of {} at height {height} naming block {} (the chain \
             committed {}); submitting both headers to freeze the client",
            self.client,
            host.chain_id,
            source.chain_id,
            conflict.forged.block.header.hash(),
            conflict.real.block.header.hash(),
        );
        let msg = relay::submit_misbehaviour(
            &self.client,
            conflict.forged,
            conflict.real,
            &host.address(),
        );
        host.submit(vec![msg]).await?;
        Ok(ClientHealth::Frozen {
            conflict: Some(height),
        })
    }

    /// Reads the updates of the client committed on `host` from the floor up to its latest height; the
    /// first conflicting header, if any. The floor moves past what was read in full.
    async fn scan(
        &mut self,
        host: &Remote,
        source: &Remote,
    ) -> Result<Option<Conflict>, RelayError> {
        let top = host.latest().await?;
        if top < self.floor {
            return Ok(None);
        }
        let query = format!(
            "update_client.client_id='{}' AND tx.height>={} AND tx.height<={top}",
            self.client, self.floor
        );
        let mut seen = 0u64;
        for page in 1..=MAX_PAGES_PER_PASS {
            let (txs, total) = host.tx_search_page(&query, page).await?;
            for tx in &txs {
                let height = tx_height(tx)?;
                for (client, header) in update_headers(tx)? {
                    if client != self.client {
                        continue;
                    }
                    match self.check(source, header).await? {
                        Check::Matches => {}
                        // The counterparty is not there yet: look again from this transaction.
                        Check::Ahead => {
                            self.floor = height;
                            return Ok(None);
                        }
                        Check::Conflicts(conflict) => return Ok(Some(*conflict)),
                    }
                }
                // Every transaction of a height comes before the next height's: the lower ones are done.
                self.floor = self.floor.max(height);
            }
            seen += txs.len() as u64;
            if seen >= total || (txs.len() as u64) < TX_PAGE {
                self.floor = top + 1;
                break;
            }
        }
        Ok(None)
    }

    /// Compares `header` with the counterparty's block at its height.
    async fn check(&mut self, source: &Remote, header: ClientHeader) -> Result<Check, RelayError> {
        let height = header.height().0;
        let real = match self.hashes.get(&height) {
            Some(hash) => *hash,
            None => {
                if source.latest().await? < height {
                    return Ok(Check::Ahead);
                }
                let (block, _) = source.light_block(height).await?;
                let hash = block.header.hash();
                self.hashes.insert(height, hash);
                while self.hashes.len() > MAX_CACHED_HASHES {
                    self.hashes.pop_first();
                }
                hash
            }
        };
        if header.block.header.hash() == real {
            return Ok(Check::Matches);
        }
        // The real block as a header from the same trusted state the accepted one was verified from.
        let trusted = header.trusted_height;
        let (_, trusted_next) = source.light_block(trusted.0).await?;
        let (block, _) = source.light_block(height).await?;
        Ok(Check::Conflicts(Box::new(Conflict {
            real: ClientHeader {
                block,
                trusted_height: trusted,
                trusted_next_validators: trusted_next,
            },
            forged: header,
        })))
    }
}

/// The outcome of comparing one header with the counterparty's chain.
enum Check {
    Matches,
    Ahead,
    Conflicts(Box<Conflict>),
}

/// The (client, header) of every `update_client` event of a `tx_search` transaction.
fn update_headers(tx: &Value) -> Result<Vec<(ClientId, ClientHeader)>, RelayError> {
    tx_events(tx, "update_client")
        .iter()
        .map(|event| {
            relay::header_from_update_event(event).map_err(|e| RelayError::State(e.to_string()))
        })
        .collect()
}
