#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use basalt_state::{StateStore, StoreConfig};

use super::*;

const TIMEOUT_MS: u64 = 1_000;

/// A snapshot of a state of 300 keys at `version` (of a store with versions 1..=`version`), cut into
/// chunks of about 1 KiB: its manifest encoded and its chunks.
struct Offer {
    height: u64,
    root: RootHash,
    manifest: Vec<u8>,
    chunks: Vec<Vec<u8>>,
}

fn offer(version: u64, chunk_bytes: usize) -> Offer {
    offer_of(version, chunk_bytes, "")
}

/// As [`offer`], with every value prefixed by `salt` (another state).
fn offer_of(version: u64, chunk_bytes: usize, salt: &str) -> Offer {
    let dir = tempfile::tempdir().unwrap();
    let store = StateStore::open(dir.path(), StoreConfig::default()).unwrap();
    for v in 1..=version {
        let writes = (0..300u64)
            .map(|k| {
                (
                    format!("k{k}").into_bytes(),
                    Some(format!("{salt}{v}").into_bytes()),
                )
            })
            .collect();
        store.apply_batch(v, writes).unwrap();
    }
    let mut chunks = Vec::new();
    let manifest = store
        .export_snapshot(version, chunk_bytes, |_, bytes| {
            chunks.push(bytes.to_vec());
            Ok(())
        })
        .unwrap();
    Offer {
        height: version,
        root: manifest.root,
        manifest: manifest.encode(),
        chunks,
    }
}

fn limits() -> StateSyncLimits {
    let config = StoreConfig::default();
    StateSyncLimits {
        in_flight: 4,
        per_peer: 2,
        chunk_timeout_ms: TIMEOUT_MS,
        restore: RestoreLimits {
            max_key_bytes: config.max_key_bytes,
            max_value_bytes: config.max_value_bytes,
            max_total_bytes: 1 << 30,
        },
    }
}

fn fetches(steps: &[Step<u8>]) -> Vec<(u8, u32)> {
    steps
        .iter()
        .filter_map(|s| match s {
            Step::Fetch { peer, index, .. } => Some((*peer, *index)),
            _ => None,
        })
        .collect()
}

fn bans(steps: &[Step<u8>]) -> Vec<u8> {
    let mut banned: Vec<u8> = steps
        .iter()
        .filter_map(|s| match s {
            Step::Ban { peer, .. } => Some(*peer),
            _ => None,
        })
        .collect();
    banned.sort_unstable();
    banned
}

/// Answers every fetch from `serve` until nothing is asked; returns every step taken.
fn run(
    sync: &mut StateSync<u8>,
    mut pending: Vec<(u8, u32)>,
    height: u64,
    serve: &dyn Fn(u8, u32) -> Option<Vec<u8>>,
) -> Vec<Step<u8>> {
    let mut all = Vec::new();
    let mut rounds = 0;
    while let Some((peer, index)) = pending.pop() {
        rounds += 1;
        assert!(rounds < 10_000, "the fetch does not end");
        let steps = sync.chunk(peer, height, index, serve(peer, index), 0);
        pending.extend(fetches(&steps));
        all.extend(steps);
    }
    all
}

#[test]
fn the_highest_snapshot_is_verified_then_fetched_from_every_provider_within_the_limits() {
    let low = offer(4, 1024);
    let high = offer(6, 1024);
    let mut sync = StateSync::new(limits());
    // Peer 1 offers both, peer 2 the high one: the high one is verified first.
    assert_eq!(
        sync.offered(
            1,
            vec![
                (high.height, high.manifest.clone()),
                (low.height, low.manifest.clone())
            ]
        ),
        vec![Step::Verify { height: 6 }]
    );
    assert!(sync
        .offered(2, vec![(high.height, high.manifest.clone())])
        .is_empty());
    let first = sync.trusted(6, high.root, 0);
    let asked = fetches(&first);
    // Four in flight, two per peer, from both providers.
    assert_eq!(asked.len(), 4);
    for peer in [1, 2] {
        assert_eq!(asked.iter().filter(|(p, _)| *p == peer).count(), 2);
    }
    let steps = run(&mut sync, asked, 6, &|_, i| {
        Some(high.chunks[i as usize].clone())
    });
    assert!(bans(&steps).is_empty());
    let restore = sync.complete().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = StateStore::open(dir.path(), StoreConfig::default()).unwrap();
    let result = restore.finish(&store);
    assert_eq!(result.as_ref().unwrap(), &high.root);
    assert!(sync.finished(&result).is_empty());

    // With one provider, only its share is in flight at once.
    let mut single = StateSync::new(limits());
    single.offered(3, vec![(high.height, high.manifest.clone())]);
    assert_eq!(fetches(&single.trusted(6, high.root, 0)).len(), 2);
}

#[test]
fn a_corrupted_chunk_bans_its_sender_and_the_sync_completes_from_the_others() {
    let snap = offer(5, 1024);
    let mut sync = StateSync::new(limits());
    for peer in [1, 2, 3] {
        sync.offered(peer, vec![(snap.height, snap.manifest.clone())]);
    }
    let asked = fetches(&sync.trusted(5, snap.root, 0));
    // Peer 2 corrupts everything it serves.
    let steps = run(&mut sync, asked, 5, &|peer, i| {
        let mut chunk = snap.chunks[i as usize].clone();
        if peer == 2 {
            chunk[5] ^= 0xff;
        }
        Some(chunk)
    });
    assert_eq!(bans(&steps), vec![2]);
    // Nothing more is asked of the banned peer once banned.
    let after_ban = steps
        .iter()
        .position(|s| matches!(s, Step::Ban { .. }))
        .unwrap();
    assert!(fetches(&steps[after_ban..]).iter().all(|(p, _)| *p != 2));
    let restore = sync
        .complete()
        .expect("complete despite the corrupting peer");
    let dir = tempfile::tempdir().unwrap();
    let store = StateStore::open(dir.path(), StoreConfig::default()).unwrap();
    assert_eq!(restore.finish(&store).unwrap(), snap.root);
}

#[test]
fn a_snapshot_not_matching_the_verified_app_hash_bans_its_providers_and_the_next_is_tried() {
    let honest = offer(4, 1024);
    let forged = offer(6, 1024);
    let mut sync = StateSync::new(limits());
    sync.offered(1, vec![(forged.height, forged.manifest.clone())]);
    sync.offered(2, vec![(honest.height, honest.manifest.clone())]);
    // The light client says the state after block 6 has another app hash than the forged manifest.
    let steps = sync.trusted(6, [9; 32], 0);
    assert_eq!(bans(&steps), vec![1]);
    assert!(steps.contains(&Step::Verify { height: 4 }));
    assert!(!fetches(&sync.trusted(4, honest.root, 0)).is_empty());
    // Offers from a banned peer are ignored.
    assert!(sync
        .offered(1, vec![(forged.height, forged.manifest.clone())])
        .is_empty());
}

#[test]
fn an_unverifiable_height_is_set_aside_without_blame() {
    let recent = offer(6, 1024);
    let older = offer(4, 1024);
    let mut sync = StateSync::new(limits());
    sync.offered(
        1,
        vec![
            (recent.height, recent.manifest.clone()),
            (older.height, older.manifest.clone()),
        ],
    );
    let steps = sync.unverifiable(6);
    assert_eq!(steps, vec![Step::Verify { height: 4 }]);
    assert_eq!(sync.candidates_left(), 1);
}

#[test]
fn manifests_that_lie_about_their_height_or_do_not_decode_ban_the_peer() {
    let snap = offer(5, 1024);
    let mut sync = StateSync::new(limits());
    assert_eq!(
        bans(&sync.offered(1, vec![(9, snap.manifest.clone())])),
        vec![1]
    );
    assert_eq!(bans(&sync.offered(2, vec![(5, vec![1, 2, 3])])), vec![2]);
    assert_eq!(sync.candidates_left(), 0);
}

#[test]
fn late_requests_go_to_another_peer_and_a_peer_late_three_times_is_no_longer_asked() {
    let snap = offer(5, 1024);
    let mut sync = StateSync::new(limits());
    sync.offered(1, vec![(snap.height, snap.manifest.clone())]);
    sync.offered(2, vec![(snap.height, snap.manifest.clone())]);
    let asked = fetches(&sync.trusted(5, snap.root, 0));
    // Peer 2 never answers; peer 1 answers what it was asked.
    let mut now = 0;
    let mut pending: Vec<(u8, u32)> = asked;
    for _ in 0..200 {
        let mut next = Vec::new();
        for (peer, index) in pending.drain(..) {
            if peer == 1 {
                let chunk = Some(snap.chunks[index as usize].clone());
                next.extend(fetches(&sync.chunk(1, 5, index, chunk, now)));
            }
        }
        if sync.complete().is_some() {
            // Peer 2 stopped being asked after its third timeout, and was never banned.
            return;
        }
        now += TIMEOUT_MS;
        let steps = sync.timeouts(now);
        assert!(bans(&steps).is_empty());
        next.extend(fetches(&steps));
        pending = next;
    }
    panic!("the sync did not complete around a silent peer");
}

#[test]
fn a_peer_without_the_snapshot_stops_being_asked_and_unsolicited_chunks_are_ignored() {
    let snap = offer(5, 1024);
    let mut sync = StateSync::new(limits());
    sync.offered(1, vec![(snap.height, snap.manifest.clone())]);
    sync.offered(2, vec![(snap.height, snap.manifest.clone())]);
    let asked = fetches(&sync.trusted(5, snap.root, 0));
    let (index_of_2, _) = asked
        .iter()
        .find(|(p, _)| *p == 2)
        .map(|(p, i)| (*i, *p))
        .unwrap();
    // Peer 3 was never asked: its chunk changes nothing.
    assert!(sync
        .chunk(
            3,
            5,
            index_of_2,
            Some(snap.chunks[index_of_2 as usize].clone()),
            0
        )
        .is_empty());
    // Peer 2 pruned it: its chunk is asked from peer 1, and peer 2 is asked nothing more.
    let steps = sync.chunk(2, 5, index_of_2, None, 0);
    assert!(bans(&steps).is_empty());
    let rest = run(
        &mut sync,
        asked
            .into_iter()
            .filter(|(p, _)| *p == 1)
            .chain(fetches(&steps))
            .collect(),
        5,
        &|peer, i| {
            assert_eq!(peer, 1, "peer 2 was asked again");
            Some(snap.chunks[i as usize].clone())
        },
    );
    assert!(bans(&rest).is_empty());
    assert!(sync.complete().is_some());
}

#[test]
fn chunks_that_hash_as_listed_but_do_not_build_the_root_ban_the_providers() {
    // A forged manifest whose root is the verified one but whose listed chunks hold another state.
    let real = offer(5, 1024);
    let other = offer_of(5, 1024, "minted");
    let mut manifest = Manifest::decode(&other.manifest).unwrap();
    manifest.root = real.root;
    let forged = manifest.encode();
    let mut sync = StateSync::new(limits());
    assert_eq!(
        sync.offered(7, vec![(5, forged)]),
        vec![Step::Verify { height: 5 }]
    );
    let asked = fetches(&sync.trusted(5, real.root, 0));
    let steps = run(&mut sync, asked, 5, &|_, i| {
        Some(other.chunks[i as usize].clone())
    });
    assert!(bans(&steps).is_empty(), "every chunk is the manifest's");
    // The honest offer arrives meanwhile.
    sync.offered(8, vec![(5, real.manifest.clone())]);
    let restore = sync.complete().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = StateStore::open(dir.path(), StoreConfig::default()).unwrap();
    let result = restore.finish(&store);
    assert!(matches!(result, Err(SnapshotError::RootMismatch { .. })));
    assert_eq!(store.latest_version().unwrap(), None);
    let steps = sync.finished(&result);
    assert_eq!(bans(&steps), vec![7]);
    assert_eq!(
        steps.iter().find(|s| matches!(s, Step::Verify { .. })),
        Some(&Step::Verify { height: 5 })
    );
    assert!(!fetches(&sync.trusted(5, real.root, 0)).is_empty());
}
