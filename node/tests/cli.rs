//! End-to-end tests of the `basalt` binary's operator commands (no node is started).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Output};

use basalt_node::config::Config;
use basalt_node::genesis::{load_genesis, GenesisDoc};
use basalt_node::home::Home;
use basalt_node::keys::{pub_key_json, NodeKey, PrivValidatorKey};

fn basalt(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_basalt"))
        .args(args)
        .env_remove("BASALT_HOME")
        .output()
        .expect("run basalt")
}

fn ok(args: &[&str]) -> String {
    let out = basalt(args);
    assert!(
        out.status.success(),
        "basalt {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn fails(args: &[&str]) -> String {
    let out = basalt(args);
    assert!(!out.status.success(), "basalt {args:?} succeeded");
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(
        stderr.trim_end().lines().count(),
        1,
        "not one line: {stderr:?}"
    );
    stderr
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn init_writes_files_that_parse_back() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("home");
    ok(&[
        "init",
        "--home",
        path(&root),
        "--chain-id",
        "my-chain",
        "--moniker",
        "alpha",
    ]);
    let home = Home::new(&root);

    let config = Config::load(&home.config_file()).unwrap();
    config.validate().unwrap();
    assert_eq!(config.moniker, "alpha");
    assert_eq!(
        config,
        Config {
            moniker: "alpha".into(),
            ..Config::default()
        }
    );

    let pv = PrivValidatorKey::load(&home.priv_validator_key_file()).unwrap();
    let node_key = NodeKey::load(&home.node_key_file()).unwrap();
    let genesis = load_genesis(&home.genesis_file()).unwrap();
    assert_eq!(genesis.chain_id.as_str(), "my-chain");
    assert_eq!(genesis.validators.len(), 1);
    assert_eq!(
        genesis.validators.validators()[0].public_key,
        pv.public_key()
    );
    assert_eq!(genesis.validators.total_power(), 10);
    assert!(genesis.bank.accounts.is_empty());

    let state: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(home.priv_validator_state_file()).unwrap())
            .unwrap();
    assert_eq!(
        state,
        serde_json::json!({"height": "0", "round": 0, "step": 0})
    );

    // show-node-id / show-validator print what the files hold.
    let id = ok(&["show-node-id", "--home", path(&root)]);
    assert_eq!(id.trim(), node_key.peer_id().to_base58());
    assert!(id.starts_with("12D3KooW"));
    let shown: serde_json::Value =
        serde_json::from_str(&ok(&["show-validator", "--home", path(&root)])).unwrap();
    assert_eq!(shown, pub_key_json(&pv.public_key()));
}

#[test]
fn fast_local_profile_is_written() {
    let dir = tempfile::tempdir().unwrap();
    ok(&[
        "init",
        "--home",
        path(dir.path()),
        "--profile",
        "fast-local",
    ]);
    let config = Config::load(&Home::new(dir.path()).config_file()).unwrap();
    assert_eq!(config, Config::fast_local());
}

#[test]
fn init_twice_keeps_keys_and_genesis() {
    let dir = tempfile::tempdir().unwrap();
    let home = Home::new(dir.path());
    ok(&["init", "--home", path(dir.path())]);
    let files = [
        home.priv_validator_key_file(),
        home.node_key_file(),
        home.genesis_file(),
        home.config_file(),
    ];
    let before: Vec<Vec<u8>> = files.iter().map(|f| std::fs::read(f).unwrap()).collect();
    let out = ok(&["init", "--home", path(dir.path()), "--chain-id", "other"]);
    assert!(out.contains("Found private validator key"), "{out}");
    assert!(out.contains("Found node key"), "{out}");
    let after: Vec<Vec<u8>> = files.iter().map(|f| std::fs::read(f).unwrap()).collect();
    assert_eq!(before, after);
}

#[test]
fn unsafe_reset_all_keeps_keys_and_resets_signer_state() {
    let dir = tempfile::tempdir().unwrap();
    let home = Home::new(dir.path());
    ok(&["init", "--home", path(dir.path())]);
    let keys_before = (
        std::fs::read(home.priv_validator_key_file()).unwrap(),
        std::fs::read(home.node_key_file()).unwrap(),
        std::fs::read(home.config_file()).unwrap(),
        std::fs::read(home.genesis_file()).unwrap(),
    );
    // Simulate a node that ran: a database, a WAL and a signer state at height 42.
    std::fs::create_dir_all(home.db_dir()).unwrap();
    std::fs::write(home.db_dir().join("000001.sst"), b"x").unwrap();
    std::fs::create_dir_all(home.wal_file().parent().unwrap()).unwrap();
    std::fs::write(home.wal_file(), b"wal").unwrap();
    std::fs::write(
        home.priv_validator_state_file(),
        r#"{"height":"42","round":1,"step":3}"#,
    )
    .unwrap();

    ok(&["unsafe-reset-all", "--home", path(dir.path())]);

    assert!(!home.db_dir().exists());
    assert!(!home.wal_file().exists());
    let state: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(home.priv_validator_state_file()).unwrap())
            .unwrap();
    assert_eq!(state["height"], "0");
    let keys_after = (
        std::fs::read(home.priv_validator_key_file()).unwrap(),
        std::fs::read(home.node_key_file()).unwrap(),
        std::fs::read(home.config_file()).unwrap(),
        std::fs::read(home.genesis_file()).unwrap(),
    );
    assert_eq!(keys_before, keys_after);
}

#[test]
fn testnet_homes_have_distinct_ports_correct_peers_and_one_genesis() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("net");
    ok(&[
        "testnet",
        "--validators",
        "4",
        "--full-nodes",
        "1",
        "--output",
        path(&out),
        "--accounts",
        "25",
        "--balance",
        "777",
        "--starting-port",
        "30000",
        "--profile",
        "fast-local",
        "--chain-id",
        "net-1",
    ]);
    let homes: Vec<Home> = (0..5)
        .map(|i| Home::new(out.join(format!("node{i}"))))
        .collect();
    let ids: Vec<String> = homes
        .iter()
        .map(|h| {
            NodeKey::load(&h.node_key_file())
                .unwrap()
                .peer_id()
                .to_base58()
        })
        .collect();
    assert_eq!(ids.iter().collect::<BTreeSet<_>>().len(), 5);

    let genesis_text = std::fs::read_to_string(homes[0].genesis_file()).unwrap();
    let genesis = GenesisDoc::load(&homes[0].genesis_file())
        .unwrap()
        .validate()
        .unwrap();
    assert_eq!(genesis.chain_id.as_str(), "net-1");
    assert_eq!(genesis.validators.len(), 4);
    assert_eq!(genesis.validators.total_power(), 40);
    assert_eq!(genesis.bank.accounts.len(), 25);
    assert_eq!(genesis.bank.total_supply, 25 * 777);

    let mut ports = BTreeSet::new();
    for (i, home) in homes.iter().enumerate() {
        assert_eq!(
            std::fs::read_to_string(home.genesis_file()).unwrap(),
            genesis_text
        );
        let config = Config::load(&home.config_file()).unwrap();
        config.validate().unwrap();
        assert_eq!(config.consensus, Config::fast_local().consensus);
        let base = 30000 + 100 * i as u16;
        assert_eq!(config.p2p.laddr.port(), base);
        assert_eq!(config.rpc.laddr.port(), base + 1);
        assert_eq!(
            config.instrumentation.prometheus_listen_addr.port(),
            base + 4
        );
        for port in [base, base + 1, base + 4] {
            assert!(ports.insert(port), "port {port} reused");
        }
        let expected: BTreeSet<String> = (0..4)
            .filter(|&v| v != i)
            .map(|v| format!("{}@127.0.0.1:{}", ids[v], 30000 + 100 * v))
            .collect();
        let peers: BTreeSet<String> = config.p2p.persistent_peer_list().into_iter().collect();
        assert_eq!(peers, expected, "node{i}");
        // Validators are in the genesis, the full node is not.
        let pv = PrivValidatorKey::load(&home.priv_validator_key_file()).unwrap();
        assert_eq!(genesis.validators.index_of(&pv.address()).is_some(), i < 4);
    }

    // accounts.json: every funded account's seed matches its address and its allocation.
    let accounts: Vec<serde_json::Value> =
        serde_json::from_str(&std::fs::read_to_string(out.join("accounts.json")).unwrap()).unwrap();
    assert_eq!(accounts.len(), 25);
    let funded: BTreeSet<_> = genesis.bank.accounts.iter().map(|(a, _)| *a).collect();
    for entry in &accounts {
        let mut seed = [0u8; 32];
        hex::decode_to_slice(entry["seed"].as_str().unwrap(), &mut seed).unwrap();
        let address = basalt_consensus::types::PrivateKey::from_seed(&seed)
            .public_key()
            .address();
        assert_eq!(entry["address"], address.to_hex_upper());
        assert!(funded.contains(&address));
    }

    // A second run into the same directory is refused without --force, accepted with it.
    let error = fails(&[
        "testnet",
        "--validators",
        "1",
        "--output",
        path(&out),
        "--accounts",
        "0",
    ]);
    assert!(
        error.contains("--output") && error.contains("--force"),
        "{error}"
    );
    ok(&[
        "testnet",
        "--validators",
        "1",
        "--output",
        path(&out),
        "--accounts",
        "0",
        "--force",
    ]);
}

#[test]
fn testnet_argument_errors_are_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("net");
    for (args, flag) in [
        (vec!["--validators", "0"], "--validators"),
        (
            vec!["--validators", "2", "--starting-port", "65500"],
            "--starting-port",
        ),
        (
            vec!["--validators", "1", "--chain-id", "bad id"],
            "--chain-id",
        ),
    ] {
        let mut all = vec!["testnet", "--output", path(&out)];
        all.extend(args);
        let error = fails(&all);
        assert!(error.contains(flag), "{error}");
    }
}

#[test]
fn light_argument_errors_are_one_line_and_name_the_flag() {
    // Checked before any connection: no server listens at the primary's address.
    let hash = "AB".repeat(32);
    for (extra, flag) in [
        (vec!["--height", "0", "--hash", hash.as_str()], "--height"),
        (vec!["--height", "1", "--hash", "abcd"], "--hash"),
        (
            vec![
                "--height",
                "1",
                "--hash",
                hash.as_str(),
                "--trust-level",
                "1/4",
            ],
            "--trust-level",
        ),
        (
            vec![
                "--height",
                "1",
                "--hash",
                hash.as_str(),
                "--update-period",
                "0s",
            ],
            "--update-period",
        ),
    ] {
        let mut all = vec!["light", "basalt-x", "--primary", "http://127.0.0.1:9"];
        all.extend(extra);
        let error = fails(&all);
        assert!(error.contains(flag), "{error}");
    }
}

#[test]
fn bad_config_makes_start_fail_naming_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let home = Home::new(dir.path());
    ok(&["init", "--home", path(dir.path())]);
    let text = std::fs::read_to_string(home.config_file()).unwrap();
    let text = text.replace("timeout_propose = \"3s\"", "timeout_propose = \"3x\"");
    std::fs::write(home.config_file(), text).unwrap();
    let error = fails(&["start", "--home", path(dir.path())]);
    assert!(
        error.contains("config.toml: consensus.timeout_propose: \"3x\" is not a duration"),
        "{error}"
    );
}

#[test]
fn tx_build_is_deterministic_and_checks_arguments() {
    let dir = tempfile::tempdir().unwrap();
    let home = Home::new(dir.path());
    ok(&["init", "--home", path(dir.path())]);
    let key = home.priv_validator_key_file();
    let to = "00112233445566778899AABBCCDDEEFF00112233";
    let args = [
        "tx",
        "build",
        "--key-file",
        path(&key),
        "--to",
        to,
        "--amount",
        "5",
        "--chain-id",
        "basalt-local",
        "--nonce",
        "0",
        "--output",
        "json",
    ];
    let first: serde_json::Value = serde_json::from_str(&ok(&args)).unwrap();
    let second: serde_json::Value = serde_json::from_str(&ok(&args)).unwrap();
    assert_eq!(first, second);
    assert_eq!(first["hash"].as_str().unwrap().len(), 64);

    let error = fails(&[
        "tx",
        "build",
        "--key-file",
        path(&key),
        "--to",
        "xyz",
        "--amount",
        "5",
        "--chain-id",
        "c",
        "--nonce",
        "0",
    ]);
    assert!(error.contains("--to"), "{error}");
    let error = fails(&[
        "tx",
        "build",
        "--key-file",
        path(&key),
        "--to",
        to,
        "--amount",
        "5",
        "--nonce",
        "0",
    ]);
    assert!(error.contains("--chain-id"), "{error}");
    let error = fails(&[
        "tx",
        "transfer",
        "--key-file",
        path(&dir.path().join("none.json")),
        "--to",
        to,
        "--amount",
        "1",
    ]);
    assert!(error.contains("none.json"), "{error}");
}

#[test]
fn commands_on_a_missing_home_fail_with_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nothing");
    for command in ["show-node-id", "show-validator", "start"] {
        let error = fails(&[command, "--home", path(&missing)]);
        assert!(error.contains("nothing"), "{command}: {error}");
    }
}

#[test]
fn wal_repair_moves_a_corrupt_log_aside() {
    let dir = tempfile::tempdir().unwrap();
    let home = Home::new(dir.path());
    ok(&["init", "--home", path(dir.path())]);
    let error = fails(&["wal", "repair", "--home", path(dir.path())]);
    assert!(error.contains("cs.wal"), "{error}");
    std::fs::create_dir_all(home.wal_file().parent().unwrap()).unwrap();
    std::fs::write(home.wal_file(), b"definitely not a framed record").unwrap();
    let out = ok(&["wal", "repair", "--home", path(dir.path())]);
    assert!(out.contains("moved"), "{out}");
    assert_eq!(std::fs::metadata(home.wal_file()).unwrap().len(), 0);
}

#[test]
fn basalt_home_variable_is_the_default_home() {
    let dir = tempfile::tempdir().unwrap();
    ok(&["init", "--home", path(dir.path())]);
    let expected = NodeKey::load(&Home::new(dir.path()).node_key_file())
        .unwrap()
        .peer_id()
        .to_base58();
    let out = Command::new(env!("CARGO_BIN_EXE_basalt"))
        .arg("show-node-id")
        .env("BASALT_HOME", dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8(out.stdout).unwrap().trim(), expected);
}
