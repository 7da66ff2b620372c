//! `basalt relay create-path` between two live networks (issue 16): two chains of two validators each,
//! the relayer process creates a client of each on the other, opens a connection and an ICS-20 channel
//! (every handshake step proved over JSON-RPC with `light_block` and `abci_query`), and a second run finds
//! the same path instead of creating another. Then `basalt tx ibc-transfer` sends tokens into the
//! channel: they are escrowed on the source.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::Command;
use std::time::Duration;

use basalt_tests::testnet::{basalt_bin, Testnet};
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(60);

async fn network(chain_id: &str) -> Testnet {
    let mut net = Testnet::generate_chain(2, 0, 2, Some(chain_id)).unwrap();
    net.start(0, &[]).unwrap();
    net.start(1, &[]).unwrap();
    net.wait_height(0, 3, WAIT).await.unwrap();
    net
}

fn create_path(config: &std::path::Path) -> Value {
    let out = Command::new(basalt_bin().unwrap())
        .args(["relay", "create-path", "--config"])
        .arg(config)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "create-path failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_relayer_creates_a_path_between_two_live_networks_once() {
    let a = network("basalt-a").await;
    let b = network("basalt-b").await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("relay.toml");
    std::fs::write(
        &config,
        format!(
            "[a]\nrpc = \"{}\"\nkey_file = \"{}\"\n[b]\nrpc = \"{}\"\nkey_file = \"{}\"\n",
            a.rpc_url(0),
            a.root().join("accounts.json").display(),
            b.rpc_url(1),
            b.root().join("accounts.json").display(),
        ),
    )
    .unwrap();

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

    // Again: the same path is found, nothing new is created.
    let again = create_path(&config);
    assert_eq!(again, path);

    // A transfer into the channel: escrowed on a.
    let (sender, _) = a.accounts().unwrap().remove(0);
    let (receiver, _) = b.accounts().unwrap().remove(1);
    let out = Command::new(basalt_bin().unwrap())
        .args([
            "tx",
            "ibc-transfer",
            "--channel",
            "channel-0",
            "--amount",
            "77",
        ])
        .args(["--receiver", &receiver, "--node", &a.rpc_url(0)])
        .arg("--key-file")
        .arg(a.root().join("accounts.json"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let hash = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    let mut committed = Value::Null;
    for _ in 0..400 {
        if let Ok(found) = a.rpc(0, "tx", json!({"hash": hash})).await {
            committed = found;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(committed["tx_result"]["code"], 0, "{committed}");
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
}
