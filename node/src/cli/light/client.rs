//! The verifying side of `basalt light`: a bounded store of verified light blocks, grown from the
//! operator's trusted root by skipping verification forwards and hash links backwards, over what the
//! primary serves. Every block it hands out passed [`basalt_consensus::light`]'s checks; the clock is
//! read here, at the edge, and passed in.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use basalt_consensus::light::{verify_backwards, Options, Skipping, VerifiedBlock};
use basalt_consensus::types::{encode, ChainId, Hash};
use basalt_consensus::Height;
use tokio::sync::Mutex;

use super::source::Primary;
use super::LightError;

/// Most verified blocks kept (the root and the latest always among them).
pub const MAX_STORED_BLOCKS: usize = 1_000;
/// Most bytes of verified blocks kept (their encoded size).
pub const MAX_STORED_BYTES: usize = 64 * 1024 * 1024;
/// Most headers walked back from the nearest trusted one to reach an older height: each is one
/// request to the primary, so a request for a height far below the root is refused rather than left
/// to run for minutes.
pub const MAX_BACKWARDS_STEPS: u64 = 10_000;

/// The verified blocks, bounded by [`MAX_STORED_BLOCKS`] and [`MAX_STORED_BYTES`].
#[derive(Debug)]
struct Store {
    blocks: BTreeMap<u64, (VerifiedBlock, usize)>,
    bytes: usize,
    /// The root, also kept here so the store is never without a latest block.
    root: VerifiedBlock,
}

impl Store {
    fn new(root: VerifiedBlock) -> Store {
        let mut store = Store {
            blocks: BTreeMap::new(),
            bytes: 0,
            root: root.clone(),
        };
        store.insert(root);
        store
    }

    fn insert(&mut self, block: VerifiedBlock) {
        let size = encode(&(
            &block.block.header,
            &block.block.commit,
            &block.block.validators,
            &block.next_validators,
        ))
        .len();
        if let Some((_, old)) = self.blocks.insert(block.height().0, (block, size)) {
            self.bytes -= old;
        }
        self.bytes += size;
        // Evict the lowest heights other than the root, never the latest.
        while self.blocks.len() > MAX_STORED_BLOCKS || self.bytes > MAX_STORED_BYTES {
            let latest = self.latest().height().0;
            let root = self.root.height().0;
            let Some(victim) = self
                .blocks
                .keys()
                .copied()
                .find(|h| *h != root && *h != latest)
            else {
                break;
            };
            if let Some((_, size)) = self.blocks.remove(&victim) {
                self.bytes -= size;
            }
        }
    }

    fn get(&self, height: u64) -> Option<&VerifiedBlock> {
        self.blocks.get(&height).map(|(b, _)| b)
    }

    fn latest(&self) -> &VerifiedBlock {
        self.blocks
            .values()
            .next_back()
            .map_or(&self.root, |(b, _)| b)
    }

    fn highest_below(&self, height: u64) -> Option<&VerifiedBlock> {
        self.blocks.range(..height).next_back().map(|(_, (b, _))| b)
    }

    fn lowest_above(&self, height: u64) -> Option<&VerifiedBlock> {
        self.blocks
            .range(height.saturating_add(1)..)
            .next()
            .map(|(_, (b, _))| b)
    }
}

/// Milliseconds since the Unix epoch, now.
fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_millis()
        .try_into()
        .unwrap_or(u64::MAX)
}

/// A light client of one chain through one primary.
#[derive(Debug)]
pub struct LightClient {
    primary: Primary,
    options: Options,
    chain_id: ChainId,
    root: VerifiedBlock,
    /// Held for the whole of a verification, so concurrent requests for one height verify it once.
    store: Mutex<Store>,
}

impl LightClient {
    /// Starts from the block of `height` that hashes to `hash` on chain `chain_id`, as the primary
    /// serves it.
    pub async fn start(
        primary: Primary,
        chain_id: ChainId,
        options: Options,
        height: u64,
        hash: Hash,
    ) -> Result<LightClient, LightError> {
        let (block, next) = primary.light_block(height).await?;
        if block.header.chain_id != chain_id {
            return Err(LightError::WrongChain {
                expected: chain_id.to_string(),
                got: block.header.chain_id.to_string(),
            });
        }
        let root = VerifiedBlock::trust_root(block, next, &hash)?;
        Ok(LightClient {
            primary,
            options,
            chain_id,
            store: Mutex::new(Store::new(root.clone())),
            root,
        })
    }

    /// The chain followed.
    pub fn chain_id(&self) -> &ChainId {
        &self.chain_id
    }

    /// The primary.
    pub fn primary(&self) -> &Primary {
        &self.primary
    }

    /// The root of trust.
    pub fn root(&self) -> &VerifiedBlock {
        &self.root
    }

    /// The highest verified block.
    pub async fn latest(&self) -> VerifiedBlock {
        self.store.lock().await.latest().clone()
    }

    /// Verifies up to the primary's latest block; the highest verified block after.
    pub async fn update(&self) -> Result<VerifiedBlock, LightError> {
        let latest = self.primary.latest().await?;
        self.verified(latest).await
    }

    /// The verified block of `height`: from the store, or verified now — by skipping verification
    /// from the highest trusted block below it (unless that one has expired), or else by hash links
    /// down from the lowest trusted block above it.
    pub async fn verified(&self, height: u64) -> Result<VerifiedBlock, LightError> {
        if height == 0 {
            return Err(LightError::Unavailable {
                height,
                reason: "heights start at 1".into(),
            });
        }
        let mut store = self.store.lock().await;
        if let Some(block) = store.get(height) {
            return Ok(block.clone());
        }
        let now = now_ms();
        let below = store.highest_below(height).filter(|b| {
            b.block
                .header
                .time_ms
                .saturating_add(self.options.trusting_period_ms)
                > now
        });
        if let Some(below) = below {
            let mut skipping = Skipping::new(below.clone(), Height(height), self.options)?;
            while let Some(wanted) = skipping.wanted() {
                let (block, next) = self.primary.light_block(wanted.0).await?;
                if let Some(verified) = skipping.feed(block, next, now_ms())? {
                    store.insert(verified);
                }
            }
            return Ok(skipping.trusted().clone());
        }
        let Some(above) = store.lowest_above(height).cloned() else {
            return Err(LightError::Expired {
                height: store.latest().height().0,
            });
        };
        let steps = above.height().0 - height;
        if steps > MAX_BACKWARDS_STEPS {
            return Err(LightError::Unavailable {
                height,
                reason: format!(
                    "{steps} heights below the nearest trusted block ({}); at most \
                     {MAX_BACKWARDS_STEPS} are walked back: restart from an older trusted height",
                    above.height().0
                ),
            });
        }
        let mut newer = above;
        while newer.height().0 > height {
            let (block, next) = self.primary.light_block(newer.height().0 - 1).await?;
            newer = verify_backwards(&newer.block.header, block, next)?;
        }
        store.insert(newer.clone());
        Ok(newer)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use basalt_consensus::light::fixture::{light_block, set};

    use super::*;

    fn verified(height: u64) -> VerifiedBlock {
        let chain = ChainId::new("store-test").unwrap();
        let validators = set(&[(1, 10)]);
        VerifiedBlock {
            block: light_block(
                &chain,
                height,
                1_000 + height,
                &validators,
                &validators,
                Hash::ZERO,
                &[1],
            ),
            next_validators: validators,
        }
    }

    #[test]
    fn the_store_is_bounded_and_keeps_its_root_and_latest() {
        let mut store = Store::new(verified(500));
        for h in (1..=1_200).filter(|h| *h != 500) {
            store.insert(verified(h));
            assert!(store.blocks.len() <= MAX_STORED_BLOCKS);
            assert!(store.bytes <= MAX_STORED_BYTES);
            assert!(store.get(500).is_some(), "the root is kept");
            assert_eq!(store.latest().height().0, h.max(500), "the latest is kept");
        }
        // The lowest heights went first: 1..=200 for the 200 beyond the bound.
        assert!(store.get(200).is_none());
        assert!(store.get(201).is_some());
        assert!(store.get(1_200).is_some());
        let sum: usize = store.blocks.values().map(|(_, size)| size).sum();
        assert_eq!(store.bytes, sum, "bytes are accounted exactly");
        assert_eq!(store.highest_below(500).map(|b| b.height().0), Some(499));
        assert_eq!(store.lowest_above(500).map(|b| b.height().0), Some(501));
        assert_eq!(
            store.highest_below(1_200).map(|b| b.height().0),
            Some(1_199)
        );
        // Inserting a height again replaces it without double counting.
        store.insert(verified(1_000));
        let sum: usize = store.blocks.values().map(|(_, size)| size).sum();
        assert_eq!(store.bytes, sum);
    }
}
