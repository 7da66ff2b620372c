//! `basalt relay create-path` between two live networks (issue 16): two chains of two validators each,
//! the relayer process creates a client of each on the other, opens a connection and an ICS-20 channel
//! (every handshake step proved over JSON-RPC with `light_block` and `abci_query`), and a second run finds
//! the same path instead of creating another. Then `basalt tx ibc-transfer` sends tokens into the
//! channel and `basalt relay start` delivers them (a voucher on the other chain) and brings the
//! acknowledgement back; a transfer that times out while the relayer is stopped is refunded once it
//! runs again. The relayer is woken by the chains' blocks (not its poll), also after the node it
//! subscribes to restarts.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use basalt_tests::relayer::{self, Relayer};
use basalt_tests::testnet::Testnet;
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(60);

async fn network(chain_id: &str) -> Testnet {
    let mut net = Testnet::generate_chain(2, 0, 2, Some(chain_id)).unwrap();
    net.start(0, &[]).unwrap();
    net.start(1, &[]).unwrap();
    net.wait_height(0, 3, WAIT).await.unwrap();
    net
}

/// Two running networks and a relayer config naming them (node 0 of a, node 1 of b; the relayer signs
/// with each chain's first test account).
async fn two_networks() -> (Testnet, Testnet, tempfile::TempDir, std::path::PathBuf) {
    two_networks_with("").await
}

/// [`two_networks`] with `extra` lines at the top of the relayer's config.
async fn two_networks_with(
    extra: &str,
) -> (Testnet, Testnet, tempfile::TempDir, std::path::PathBuf) {
    let a = network("basalt-a").await;
    let b = network("basalt-b").await;
    let dir = tempfile::tempdir().unwrap();
    let config = relayer::write_config(&a, &b, 1, dir.path(), extra).unwrap();
    (a, b, dir, config)
}

fn create_path(config: &std::path::Path) -> Value {
    relayer::create_path(config).unwrap()
}

fn start_relayer(config: &std::path::Path, log: &std::path::Path) -> Relayer {
    relayer::start(config, log, &[]).unwrap()
}

fn start_relayer_with(config: &std::path::Path, log: &std::path::Path, extra: &[&str]) -> Relayer {
    relayer::start(config, log, extra).unwrap()
}

async fn metrics_url(log: &std::path::Path) -> String {
    relayer::metrics_url(log, WAIT).await.unwrap()
}

/// The value of the series `name{labels}` (labels as Prometheus prints them, sorted) in `text`.
fn series(text: &str, name_and_labels: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name_and_labels)?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {name_and_labels} in\n{text}"))
}

/// Sends `amount` from a's first account over channel-0 to `receiver`; returns the committed tx.
async fn ibc_transfer(a: &Testnet, receiver: &str, amount: u64, extra: &[&str]) -> Value {
    let hash = a.ibc_transfer(0, receiver, amount, extra).unwrap();
    let committed = a.wait_tx(0, &hash, WAIT).await.unwrap();
    assert_eq!(committed["tx_result"]["code"], 0, "{committed}");
    committed
}

/// Polls `probe` until it gives a value, for at most `limit`.
async fn wait_for<T, F, Fut>(limit: Duration, probe: F) -> T
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if let Some(value) = probe().await {
            return value;
        }
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The raw value of an `abci_query` of `path` with `data` on node `i` (empty when absent).
async fn query_value(net: &Testnet, i: usize, path: &str, data: &str) -> Vec<u8> {
    let answer = net
        .rpc(i, "abci_query", json!({"path": path, "data": data}))
        .await
        .unwrap();
    base64::Engine::decode(
        &base64::engine::general_purpose::STANDARD,
        answer["response"]["value"].as_str().unwrap(),
    )
    .unwrap()
}

/// The raw value at `key` of a `/store/<store>/key` query on node `i` (empty when absent).
async fn store(net: &Testnet, i: usize, store: &str, key: &str) -> Vec<u8> {
    query_value(net, i, &format!("/store/{store}/key"), &hex::encode(key)).await
}

/// The `/store/transfer/key` key of `owner`'s voucher of chain a's native token (received over
/// channel-0).
fn voucher_key(owner: &str) -> String {
    format!(
        "balances/{}/transfer/channel-0/basalt",
        owner.to_ascii_lowercase()
    )
}

/// Waits until a's packet `seq` on channel-0 is no longer committed (acknowledged or timed out).
async fn wait_cleared(a: &Testnet, seq: u64) {
    let commitment = format!("commitments/ports/transfer/channels/channel-0/sequences/{seq}");
    wait_for(WAIT, || async {
        store(a, 0, "ibc", &commitment)
            .await
            .is_empty()
            .then_some(())
    })
    .await;
}

async fn native_balance(net: &Testnet, address: &str) -> u128 {
    let value = query_value(net, 0, &format!("/bank/balance/{address}"), "").await;
    String::from_utf8(value).unwrap().parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_relayer_creates_a_path_between_two_live_networks_once() {
    let (a, b, dir, config) = two_networks().await;

    let path = create_path(&config);
    assert_eq!(path["a"]["chain_id"], "basalt-a", "{path}");
    assert_eq!(path["b"]["chain_id"], "basalt-b", "{path}");
    for side in ["a", "b"] {
        assert_eq!(path[side]["client"], "99-basalt-0", "{path}");
        assert_eq!(path[side]["connection"], "connection-0", "{path}");
        assert_eq!(path[side]["channel"], "channel-0", "{path}");
    }
    // Both channel ends are open, on either chain, as any node of it reports.
    for (net, node) in [(&a, 1), (&b, 0)] {
        let answer = net
            .rpc(
                node,
                "abci_query",
                json!({"path": "/store/ibc/key",
                       "data": hex::encode("channelEnds/ports/transfer/channels/channel-0")}),
            )
            .await
            .unwrap();
        let value = answer["response"]["value"].as_str().unwrap();
        assert!(!value.is_empty(), "{answer}");
    }

    // Each client trusts headers for two thirds of its chain's evidence max age (genesis 48 h): below
    // it, or the tracked chain would have refused the connection handshake.
    for net in [&a, &b] {
        let client = relayer::client_state(net, 0).await.unwrap();
        assert_eq!(client.trusting_period_ms, 32 * 3_600_000, "{client:?}");
    }

    // Again: the same path is found, nothing new is created.
    let again = create_path(&config);
    assert_eq!(again, path);

    // A transfer into the channel: a send_packet with the transfer's data.
    let (sender, _) = a.accounts().unwrap().remove(0);
    let (receiver, _) = b.accounts().unwrap().remove(1);
    let committed = ibc_transfer(&a, &receiver, 77, &[]).await;
    let events = committed["tx_result"]["events"].as_array().unwrap();
    let send = events.iter().find(|e| e["type"] == "send_packet").unwrap();
    let attr = |key: &str| {
        send["attributes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["key"] == key)
            .unwrap()["value"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    assert_eq!(attr("packet_src_channel"), "channel-0");
    assert_eq!(attr("packet_sequence"), "1");
    let data: Value =
        serde_json::from_slice(&hex::decode(attr("packet_data_hex")).unwrap()).unwrap();
    assert_eq!(data["amount"], "77");
    assert_eq!(
        data["sender"].as_str().unwrap().to_uppercase(),
        sender.to_uppercase()
    );

    // The relayer delivers it: a voucher on b, and the acknowledgement clears the commitment on a.
    let escrow = basalt_ibc::transfer::escrow_address(
        &"transfer".parse().unwrap(),
        &"channel-0".parse().unwrap(),
    )
    .to_hex_upper();
    let voucher_key = voucher_key(&receiver);
    let log = dir.path().join("relay-1.log");
    let relayer = start_relayer_with(&config, &log, &["--metrics", "127.0.0.1:0"]);
    let metrics = metrics_url(&log).await;
    let voucher = wait_for(WAIT, || async {
        let v = store(&b, 0, "transfer", &voucher_key).await;
        (!v.is_empty()).then_some(v)
    })
    .await;
    assert_eq!(u128::from_be_bytes(voucher.try_into().unwrap()), 77);
    wait_cleared(&a, 1).await;
    assert_eq!(native_balance(&a, &escrow).await, 77);
    // Its metrics: the packet and its acknowledgement, committed transactions, client expiry and the
    // relayer's balance on each chain (its transactions counted on the chain that committed them: the
    // receive on b, the acknowledgement on a). The relayer counts them once it has seen them
    // committed, which can be a moment after the chain shows the commitment cleared.
    let ack_series =
        r#"basalt_relayer_packets_total{dst_chain="basalt-b",kind="ack",src_chain="basalt-a"}"#;
    let committed_on_a =
        r#"basalt_relayer_transactions_total{chain="basalt-a",outcome="committed"}"#;
    let text = wait_for(WAIT, || async {
        let text = reqwest::get(&metrics).await.ok()?.text().await.ok()?;
        let at_least = |name: &str, want: f64| {
            text.lines().any(|l| {
                l.strip_prefix(name)
                    .and_then(|v| v.trim().parse::<f64>().ok())
                    .is_some_and(|v| v >= want)
            })
        };
        (at_least(ack_series, 1.0) && at_least(committed_on_a, 1.0)).then_some(text)
    })
    .await;
    let direction = r#"dst_chain="basalt-b",kind="#;
    assert_eq!(
        series(
            &text,
            &format!(r#"basalt_relayer_packets_total{{{direction}"recv",src_chain="basalt-a"}}"#)
        ),
        1.0
    );
    assert_eq!(
        series(
            &text,
            &format!(r#"basalt_relayer_packets_total{{{direction}"ack",src_chain="basalt-a"}}"#)
        ),
        1.0
    );
    assert!(series(&text, committed_on_a) >= 1.0);
    assert!(
        series(
            &text,
            r#"basalt_relayer_transactions_total{chain="basalt-b",outcome="committed"}"#
        ) >= 1.0
    );
    let expiry = series(
        &text,
        r#"basalt_relayer_client_expiry_seconds{chain="basalt-b",client="99-basalt-0"}"#,
    );
    // A client trusting headers for 32 h, refreshed a moment ago.
    assert!(
        expiry > 31.0 * 3600.0 && expiry <= 32.0 * 3600.0,
        "{expiry}"
    );
    assert!(series(&text, r#"basalt_relayer_balance{chain="basalt-a"}"#) > 0.0);
    // Exported for both directions (seconds of source chain time; what it reads depends on the pass).
    for (src, dst) in [("basalt-a", "basalt-b"), ("basalt-b", "basalt-a")] {
        let age = series(
            &text,
            &format!(
                r#"basalt_relayer_packets_oldest_pending_seconds{{dst_chain="{dst}",src_chain="{src}"}}"#
            ),
        );
        assert!(age >= 0.0, "{age}");
    }
    drop(relayer);

    // With the relayer stopped, a transfer that times out two heights into b's future...
    let b_now = b.height(0).await.unwrap();
    let timeout = (b_now + 2).to_string();
    let sent = ibc_transfer(
        &a,
        &receiver,
        5,
        &["--timeout-height", &timeout, "--timeout-seconds", "0"],
    )
    .await;
    assert!(sent["tx_result"]["events"]
        .to_string()
        .contains("send_packet"));
    assert_eq!(native_balance(&a, &escrow).await, 82);
    b.wait_height(0, b_now + 3, WAIT).await.unwrap();
    // ...is refunded when the relayer runs again: the timeout clears it, the escrow gives it back.
    let relayer = start_relayer(&config, &dir.path().join("relay-2.log"));
    wait_cleared(&a, 2).await;
    assert_eq!(native_balance(&a, &escrow).await, 77);
    assert_eq!(
        u128::from_be_bytes(
            store(&b, 0, "transfer", &voucher_key)
                .await
                .try_into()
                .unwrap()
        ),
        77,
        "the timed-out packet was not received"
    );
    drop(relayer);
}

/// Two relayers race on one path, and one of them is killed with SIGKILL while packets are in flight
/// and started again: every packet is delivered and acknowledged, none twice (the vouchers add up to
/// exactly what was sent). Forty packets: more than one relayer transaction holds, so full batches are
/// relayed too (a batch of 32 packets plus its client update exceeded the message limit once, and the
/// relayer retried it for ever).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_and_killed_relayers_deliver_every_packet_exactly_once() {
    const PACKETS: u64 = 40;
    let (a, b, dir, config) = two_networks().await;
    create_path(&config);
    let (receiver, _) = b.accounts().unwrap().remove(1);
    // Forty transfers, 1 to 40 tokens, sent by a's second account (the relayers sign with the first).
    for amount in 1..=PACKETS {
        let nonce = (amount - 1).to_string();
        a.ibc_transfer(
            0,
            &receiver,
            amount,
            &["--key-index", "1", "--nonce", &nonce],
        )
        .unwrap();
    }
    let first_log = dir.path().join("relay-killed.log");
    let mut killed = start_relayer(&config, &first_log);
    // Kill the first one as soon as it has sent something — with a racer running by then. (Started
    // together, the racer sometimes relayed every packet first, the first relayer had nothing to send,
    // and this wait timed out.)
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let log = std::fs::read_to_string(&first_log).unwrap_or_default();
        if log.contains("recv ") {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the first relayer relayed nothing; its log:\n{log}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _racer = start_relayer(&config, &dir.path().join("relay-racer.log"));
    killed.0.kill().unwrap();
    killed.0.wait().unwrap();
    let _restarted = start_relayer(&config, &dir.path().join("relay-restarted.log"));

    // Shorter than `wait_cleared`'s own wait, so a stall ends here, with the relayers' logs.
    let cleared = tokio::time::timeout(WAIT - Duration::from_secs(5), async {
        for seq in 1..=PACKETS {
            wait_cleared(&a, seq).await;
        }
    })
    .await;
    if cleared.is_err() {
        let logs: Vec<String> = ["relay-killed.log", "relay-racer.log", "relay-restarted.log"]
            .iter()
            .map(|name| {
                let text = std::fs::read_to_string(dir.path().join(name)).unwrap_or_default();
                format!("--- {name}\n{text}")
            })
            .collect();
        panic!(
            "packets not all acknowledged; relayer logs:\n{}",
            logs.join("\n")
        );
    }
    let voucher_key = voucher_key(&receiver);
    let voucher = store(&b, 0, "transfer", &voucher_key).await;
    assert_eq!(
        u128::from_be_bytes(voucher.try_into().unwrap()),
        u128::from(PACKETS * (PACKETS + 1) / 2)
    );
}

/// The latest height of the first client (of the other chain) on `net`.
async fn client_height(net: &Testnet) -> u64 {
    client_state(net).await.latest_height.0
}

/// With nothing to relay, the relayer still updates each chain's client of the other before a third of
/// its trusting period has passed (6 s here), so the path never expires: a transfer sent after more than
/// a trusting period still arrives.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_path_keeps_its_clients_from_expiring() {
    let (a, b, dir, config) = two_networks_with("trusting_period = \"6s\"\n").await;
    create_path(&config);
    let (on_a, on_b) = (client_height(&a).await, client_height(&b).await);
    let _relayer = start_relayer(&config, &dir.path().join("relay.log"));
    wait_for(WAIT, || async {
        (client_height(&a).await > on_a && client_height(&b).await > on_b).then_some(())
    })
    .await;
    // Past a whole trusting period of the first clients' states, by b's clock.
    let start = b.height(0).await.unwrap();
    let started = std::time::Instant::now();
    wait_for(WAIT, || async {
        (started.elapsed() > Duration::from_secs(7)).then_some(())
    })
    .await;
    assert!(b.height(0).await.unwrap() > start);
    let (receiver, _) = b.accounts().unwrap().remove(1);
    ibc_transfer(&a, &receiver, 9, &["--key-index", "1"]).await;
    wait_cleared(&a, 1).await;
    let voucher_key = voucher_key(&receiver);
    let voucher = store(&b, 0, "transfer", &voucher_key).await;
    assert_eq!(u128::from_be_bytes(voucher.try_into().unwrap()), 9);
}

/// Blocks wake the relayer, not its poll: with `--poll 10m` a transfer is still delivered and
/// acknowledged within a minute. Then the node its subscription to a is on is killed (the subscription
/// drops: its metric says 0) and restarted: the relayer subscribes again by itself (1), and the next
/// transfer is delivered as fast.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocks_wake_the_relayer_and_a_dropped_subscription_comes_back() {
    let (mut a, b, dir, config) = two_networks().await;
    create_path(&config);
    let log = dir.path().join("relay.log");
    let _relayer = start_relayer_with(
        &config,
        &log,
        &["--metrics", "127.0.0.1:0", "--poll", "10m"],
    );
    let metrics = metrics_url(&log).await;
    let subscription = |chain: &'static str, want: f64| {
        let metrics = metrics.clone();
        async move {
            wait_for(WAIT, || async {
                let text = reqwest::get(&metrics).await.ok()?.text().await.ok()?;
                let series_name =
                    format!(r#"basalt_relayer_block_subscription_up{{chain="{chain}"}}"#);
                text.lines()
                    .any(|l| {
                        l.strip_prefix(&series_name)
                            .and_then(|v| v.trim().parse::<f64>().ok())
                            == Some(want)
                    })
                    .then_some(())
            })
            .await;
        }
    };
    subscription("basalt-a", 1.0).await;
    subscription("basalt-b", 1.0).await;
    let (receiver, _) = b.accounts().unwrap().remove(1);
    ibc_transfer(&a, &receiver, 5, &[]).await;
    wait_cleared(&a, 1).await;

    // The relayer's node on a goes away and comes back.
    a.kill(0);
    subscription("basalt-a", 0.0).await;
    a.start(0, &[]).unwrap();
    subscription("basalt-a", 1.0).await;
    let before = a.height(0).await.unwrap();
    a.wait_height(0, before + 1, WAIT).await.unwrap();
    ibc_transfer(&a, &receiver, 6, &[]).await;
    wait_cleared(&a, 2).await;
    let voucher = store(&b, 0, "transfer", &voucher_key(&receiver)).await;
    assert_eq!(u128::from_be_bytes(voucher.try_into().unwrap()), 11);
}

/// B's real light block at `height` turned into a forgery: another app hash (so another block), its
/// commit re-signed by B's validators (their keys from B's homes) — what a coalition of B's validators
/// signing two blocks at one height would produce. Verifies from any trusted state the real one does.
async fn forged_light_block(b: &Testnet, height: u64) -> basalt_consensus::light::LightBlock {
    use basalt_consensus::types::{BlockId, CommitSig, Hash, Vote};
    use basalt_consensus::{ValidatorIndex, VoteType};
    let (mut header, commit, validators, _) = b.light_block(0, height).await.unwrap();
    header.app_hash = Hash([0xee; 32]);
    let block_id = BlockId {
        hash: header.hash(),
    };
    let keys: Vec<_> = (0..2)
        .map(|i| {
            basalt_node::keys::PrivValidatorKey::load(
                &b.home(i).join("config/priv_validator_key.json"),
            )
            .unwrap()
            .private_key()
            .clone()
        })
        .collect();
    let signatures = validators
        .validators()
        .iter()
        .enumerate()
        .map(|(index, validator)| {
            let key = keys
                .iter()
                .find(|k| k.public_key().address() == validator.address)
                .unwrap();
            let vote = Vote {
                vote_type: VoteType::Precommit,
                height: header.height,
                round: commit.round,
                block_id: Some(block_id),
                validator_index: ValidatorIndex(u32::try_from(index).unwrap()),
            };
            CommitSig::ForBlock(key.sign(&vote.sign_bytes(&header.chain_id)))
        })
        .collect();
    basalt_consensus::light::LightBlock {
        commit: basalt_consensus::types::Commit {
            height: header.height,
            round: commit.round,
            block_id,
            signatures,
        },
        header,
        validators,
    }
}

/// The first client on `net` (of the other chain).
async fn client_state(net: &Testnet) -> basalt_ibc::client::ClientState {
    relayer::client_state(net, 0).await.unwrap()
}

/// Signs `messages` as one IBC transaction of `net`'s test account `account` (its next nonce) and
/// commits it; the `broadcast_tx_commit` answer.
async fn submit_ibc(
    net: &Testnet,
    account: usize,
    messages: Vec<ibc_core::primitives::proto::Any>,
) -> Value {
    use basalt_ibc::tx::{IbcMessage, IbcTxBody};
    let (address, seed) = net.accounts().unwrap().remove(account);
    let key = basalt_consensus::types::PrivateKey::from_seed(
        &hex::decode(&seed).unwrap().try_into().unwrap(),
    );
    let status = net.rpc(0, "status", json!({})).await.unwrap();
    let chain_id = status["node_info"]["network"].as_str().unwrap();
    let bytes = query_value(net, 0, &format!("/bank/account/{address}"), "").await;
    let nonce = basalt_state::bank::Account::from_bytes(&bytes)
        .unwrap()
        .nonce;
    let tx = IbcTxBody {
        chain_id: basalt_consensus::types::ChainId::new(chain_id).unwrap(),
        from: key.public_key(),
        nonce,
        fee: 0,
        gas_limit: 5_000_000,
        messages: messages.into_iter().map(IbcMessage::from).collect(),
    }
    .sign(&key)
    .to_bytes();
    net.rpc(
        0,
        "broadcast_tx_commit",
        json!({"tx": base64::Engine::encode(&base64::engine::general_purpose::STANDARD, &tx)}),
    )
    .await
    .unwrap()
}

/// An injected conflicting header freezes the client (issue 16): after a transfer relayed honestly (the
/// watcher finds nothing wrong in the relayer's own updates), a header of chain b at a height past a's
/// client, naming another block than b committed there and signed by b's validators, is accepted by a's
/// client as an update. The relayer's watcher compares it with b's real block, submits both headers as
/// misbehaviour, and the client freezes; from then on a's chain refuses packets over the path (a
/// transfer into the channel fails) and the relayer relays nothing more (its metrics say so).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_conflicting_header_freezes_the_client_and_later_packets_are_refused() {
    let (a, b, dir, config) = two_networks().await;
    create_path(&config);
    let log = dir.path().join("relay.log");
    let _relayer = start_relayer_with(&config, &log, &["--metrics", "127.0.0.1:0"]);
    let metrics = metrics_url(&log).await;
    let (receiver, _) = b.accounts().unwrap().remove(1);
    ibc_transfer(&a, &receiver, 3, &["--key-index", "1"]).await;
    wait_cleared(&a, 1).await;

    // The relayer is idle now: a's client of b stays at its latest height. Forge b's block two heights
    // past it, from that trusted state.
    let trusted = client_state(&a).await.latest_height.0;
    let height = trusted + 2;
    b.wait_height(0, height, WAIT).await.unwrap();
    let (_, _, _, trusted_next) = b.light_block(0, trusted).await.unwrap();
    let forged = forged_light_block(&b, height).await;
    let (real, _, _, _) = b.light_block(0, height).await.unwrap();
    assert_ne!(forged.header.hash(), real.hash());
    let (someone, _) = a.accounts().unwrap().remove(1);
    let update = basalt_ibc::relay::update_client(
        &"99-basalt-0".parse().unwrap(),
        forged,
        trusted,
        trusted_next,
        &basalt_consensus::types::Address::from_hex(&someone).unwrap(),
    );
    let committed = submit_ibc(&a, 1, vec![update]).await;
    assert_eq!(
        committed["tx_result"]["code"], 0,
        "the forged update was accepted: {committed}"
    );

    // The watcher finds it and freezes the client.
    wait_for(WAIT, || async { client_state(&a).await.frozen_height }).await;
    let found = a
        .rpc(
            0,
            "tx_search",
            json!({"query": "client_misbehaviour.client_id='99-basalt-0'"}),
        )
        .await
        .unwrap();
    assert_eq!(found["total_count"], "1", "{found}");
    let text = wait_for(WAIT, || async {
        let text = reqwest::get(&metrics).await.ok()?.text().await.ok()?;
        text.contains(r#"basalt_relayer_client_frozen{chain="basalt-a",client="99-basalt-0"} 1"#)
            .then_some(text)
    })
    .await;
    assert_eq!(
        series(
            &text,
            r#"basalt_relayer_misbehaviour_total{chain="basalt-a"}"#
        ),
        1.0
    );
    assert!(
        !client_state(&b).await.is_frozen(),
        "b's client of a is sound"
    );

    // Later packets are refused: a transfer into the channel fails on a (its client of b is frozen).
    let hash = a
        .ibc_transfer(0, &receiver, 4, &["--key-index", "1"])
        .unwrap();
    let refused = a.wait_tx(0, &hash, WAIT).await.unwrap();
    assert_eq!(
        refused["tx_result"]["code"], 8,
        "a transfer over a frozen client must fail: {refused}"
    );
    assert!(
        refused["tx_result"]["log"]
            .as_str()
            .unwrap()
            .to_lowercase()
            .contains("frozen"),
        "{refused}"
    );
}
