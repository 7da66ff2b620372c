//! The verifying side of `basalt light`: a bounded store of verified light blocks, grown from the
//! operator's trusted root by skipping verification forwards and hash links backwards, over what the
//! primary serves. Every block it hands out passed [`basalt_consensus::light`]'s checks; the clock is
//! read here, at the edge, and passed in.
//!
//! **Witnesses** (CometBFT's detector): a header verified forwards is compared with what each witness
//! serves at its height. A witness serving the same header agrees; one that serves another header is
//! asked to prove it from the same trusted block — if it cannot, it is faulty and dropped; if it can,
//! two headers of one height both carry the signatures of the trusted validators: the chain has forked
//! (or the validators attacked), and the proxy refuses the height instead of picking a side.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use basalt_consensus::light::{verify_backwards, Options, Skipping, VerifiedBlock};
use basalt_consensus::types::{encode, ChainId, Hash};
use basalt_consensus::Height;
use tokio::sync::Mutex;

use super::source::{Primary, Source};
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
pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_millis()
        .try_into()
        .unwrap_or(u64::MAX)
}

/// A light client of one chain through one primary, checked against witnesses.
#[derive(Debug)]
pub struct LightClient<S: Source = Primary> {
    primary: S,
    /// Witnesses still trusted to answer honestly (a faulty one is dropped).
    witnesses: Mutex<Vec<S>>,
    options: Options,
    chain_id: ChainId,
    root: VerifiedBlock,
    /// Held for the whole of a verification, so concurrent requests for one height verify it once.
    store: Mutex<Store>,
}

impl<S: Source> LightClient<S> {
    /// Starts from the block of `height` that hashes to `hash` on chain `chain_id`, as the primary
    /// serves it; forward verifications are then checked against `witnesses`.
    pub async fn start(
        primary: S,
        witnesses: Vec<S>,
        chain_id: ChainId,
        options: Options,
        height: u64,
        hash: Hash,
    ) -> Result<Self, LightError> {
        let (block, next) = primary.light_block(height).await?;
        if block.header.chain_id != chain_id {
            return Err(LightError::WrongChain {
                expected: chain_id.to_string(),
                got: block.header.chain_id.to_string(),
            });
        }
        let root = VerifiedBlock::trust_root(block, next, &hash)?;
        Ok(Self {
            primary,
            witnesses: Mutex::new(witnesses),
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
    pub fn primary(&self) -> &S {
        &self.primary
    }

    /// The addresses of the witnesses still consulted.
    pub async fn witnesses(&self) -> Vec<String> {
        self.witnesses
            .lock()
            .await
            .iter()
            .map(|w| w.url().to_owned())
            .collect()
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
        if let Some(below) = below.cloned() {
            let verified = skip(&self.primary, below.clone(), height, self.options).await?;
            self.cross_check(&below, &verified.0).await?;
            for block in verified.1 {
                store.insert(block);
            }
            return Ok(verified.0);
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

    /// Compares `ours` (verified from `trusted`) with each witness's header of its height (see the
    /// module docs). A witness that cannot answer for the height (behind, unreachable) is skipped.
    async fn cross_check(
        &self,
        trusted: &VerifiedBlock,
        ours: &VerifiedBlock,
    ) -> Result<(), LightError> {
        let height = ours.height().0;
        let our_hash = ours.block.header.hash();
        let mut witnesses = self.witnesses.lock().await;
        let mut faulty = Vec::new();
        for (index, witness) in witnesses.iter().enumerate() {
            let Ok((block, _)) = witness.light_block(height).await else {
                continue;
            };
            let their_hash = block.header.hash();
            if their_hash == our_hash {
                continue;
            }
            match skip(witness, trusted.clone(), height, self.options).await {
                Ok(_) => {
                    return Err(LightError::Conflict {
                        height,
                        witness: witness.url().to_owned(),
                        primary_hash: our_hash.to_hex_upper(),
                        witness_hash: their_hash.to_hex_upper(),
                    })
                }
                Err(e) => {
                    eprintln!(
                        "{}",
                        serde_json::json!({"light": "witness dropped", "witness": witness.url(),
                                           "height": height, "error": e.to_string()})
                    );
                    faulty.push(index);
                }
            }
        }
        for index in faulty.into_iter().rev() {
            witnesses.remove(index);
        }
        Ok(())
    }
}

/// Skipping verification of `height` from `trusted` over `source`: the target and every block
/// verified on the way (the target last).
async fn skip<S: Source>(
    source: &S,
    trusted: VerifiedBlock,
    height: u64,
    options: Options,
) -> Result<(VerifiedBlock, Vec<VerifiedBlock>), LightError> {
    let mut skipping = Skipping::new(trusted, Height(height), options)?;
    let mut verified = Vec::new();
    while let Some(wanted) = skipping.wanted() {
        let (block, next) = source.light_block(wanted.0).await?;
        if let Some(block) = skipping.feed(block, next, now_ms())? {
            verified.push(block);
        }
    }
    Ok((skipping.trusted().clone(), verified))
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

    /// A source serving a fixed chain of heights 1..=`top` (one block a second, the last at `end_ms`) signed by
    /// validators of key seeds `seeds`; heights above `fork` get app hashes tagged `tag`.
    #[derive(Debug)]
    struct Fixed {
        url: String,
        blocks: BTreeMap<u64, (basalt_consensus::light::LightBlock, ValidatorSet)>,
    }

    use basalt_consensus::types::ValidatorSet;

    impl Fixed {
        fn chain(url: &str, end_ms: u64, top: u64, seeds: &[u8], fork: u64, tag: &[u8]) -> Fixed {
            let chain = ChainId::new("witness-test").unwrap();
            let members: Vec<(u8, u64)> = seeds.iter().map(|s| (*s, 10)).collect();
            let validators = set(&members);
            let blocks = (1..=top)
                .map(|h| {
                    let app_hash = if h > fork {
                        Hash::digest(&[tag, &h.to_be_bytes()].concat())
                    } else {
                        Hash::digest(&h.to_be_bytes())
                    };
                    let block = light_block(
                        &chain,
                        h,
                        end_ms - (top - h) * 1_000,
                        &validators,
                        &validators,
                        app_hash,
                        seeds,
                    );
                    (h, (block, validators.clone()))
                })
                .collect();
            Fixed {
                url: url.to_owned(),
                blocks,
            }
        }
    }

    impl Source for Fixed {
        fn url(&self) -> &str {
            &self.url
        }

        async fn light_block(
            &self,
            height: u64,
        ) -> Result<(basalt_consensus::light::LightBlock, ValidatorSet), LightError> {
            self.blocks
                .get(&height)
                .cloned()
                .ok_or_else(|| LightError::Rpc {
                    method: "light_block",
                    reason: format!("no height {height}"),
                })
        }

        async fn latest(&self) -> Result<u64, LightError> {
            Ok(self.blocks.keys().next_back().copied().unwrap_or(0))
        }
    }

    fn options() -> Options {
        Options {
            trust_level: basalt_consensus::light::TrustLevel::ONE_THIRD,
            trusting_period_ms: 24 * 3_600_000,
            max_clock_drift_ms: 10_000,
        }
    }

    const KEYS: [u8; 4] = [1, 2, 3, 4];

    async fn client(end_ms: u64, witnesses: Vec<Fixed>) -> LightClient<Fixed> {
        let primary = Fixed::chain("primary", end_ms, 30, &KEYS, 30, b"");
        let root = primary.blocks[&5].0.header.hash();
        LightClient::<Fixed>::start(
            primary,
            witnesses,
            ChainId::new("witness-test").unwrap(),
            options(),
            5,
            root,
        )
        .await
        .unwrap()
    }

    #[tokio::test]
    async fn agreeing_and_lagging_witnesses_let_a_header_through() {
        let end = now_ms();
        let c = client(
            end,
            vec![
                Fixed::chain("same", end, 30, &KEYS, 30, b""),
                Fixed::chain("behind", end, 12, &KEYS, 30, b""),
            ],
        )
        .await;
        assert_eq!(c.verified(20).await.unwrap().height().0, 20);
        assert_eq!(c.witnesses().await, vec!["same", "behind"]);
    }

    #[tokio::test]
    async fn a_witness_that_cannot_prove_its_header_is_dropped() {
        // Another chain past height 10, signed by keys the trusted set never had.
        let end = now_ms();
        let liar = Fixed::chain("liar", end, 30, &[21, 22, 23, 24], 10, b"forged");
        let c = client(end, vec![liar]).await;
        assert_eq!(c.verified(20).await.unwrap().height().0, 20);
        assert!(
            c.witnesses().await.is_empty(),
            "the faulty witness is dropped"
        );
    }

    #[tokio::test]
    async fn a_fork_signed_by_the_trusted_validators_is_refused() {
        // The same validators signed a second chain from height 11 on: both verify from the root.
        let end = now_ms();
        let c = client(end, vec![Fixed::chain("fork", end, 30, &KEYS, 10, b"fork")]).await;
        let err = c.verified(20).await.unwrap_err();
        assert!(
            matches!(err, LightError::Conflict { height: 20, .. }),
            "{err}"
        );
        // Nothing of the refused verification was kept.
        assert_eq!(c.latest().await.height().0, 5);
        assert!(
            c.verified(20).await.is_err(),
            "still refused when asked again"
        );
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
