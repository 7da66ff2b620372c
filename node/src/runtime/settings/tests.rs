//! Walks every key of `config.toml` and proves the node reads it: each key is given another valid value,
//! and either the components' settings change or validation refuses the value naming that key (keys that
//! accept only their CometBFT default, refused rather than ignored). A key added to the file but not
//! wired to any component fails this test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::*;

/// Every key of the default file: `(path, value)`, path `["moniker"]` or `["rpc", "laddr"]`.
fn keys(table: &toml::Table) -> Vec<(Vec<String>, toml::Value)> {
    let mut out = Vec::new();
    for (key, value) in table {
        match value {
            toml::Value::Table(section) => {
                for (field, value) in section {
                    out.push((vec![key.clone(), field.clone()], value.clone()));
                }
            }
            other => out.push((vec![key.clone()], other.clone())),
        }
    }
    out
}

fn set(table: &mut toml::Table, path: &[String], value: toml::Value) {
    match path {
        [key] => {
            table.insert(key.clone(), value);
        }
        [section, field] => {
            let Some(toml::Value::Table(section)) = table.get_mut(section) else {
                panic!("no section {section}");
            };
            section.insert(field.clone(), value);
        }
        _ => panic!("unexpected key path {path:?}"),
    }
}

/// Values tried for a key, in order, until one loads and differs from the default.
fn candidates(value: &toml::Value) -> Vec<toml::Value> {
    use toml::Value::{Boolean, Integer, String};
    match value {
        Integer(i) => vec![Integer(i + 1), Integer(i * 2 + 3), Integer(1)],
        Boolean(b) => vec![Boolean(!b)],
        String(_) => {
            let peer = libp2p::identity::Keypair::ed25519_from_bytes([7u8; 32])
                .unwrap()
                .public()
                .to_peer_id();
            [
                "1500ms".to_owned(),
                "tcp://127.0.0.1:4321".to_owned(),
                "json".to_owned(),
                "debug".to_owned(),
                "renamed-node".to_owned(),
                "0.025".to_owned(),
                format!("{peer}@127.0.0.1:4322"),
            ]
            .into_iter()
            .map(String)
            .collect()
        }
        other => panic!("no candidate values for {other:?}"),
    }
}

/// Issue 14, item 9: every key is read. On 9496b9c `storage.retain_blocks`, `storage.pruning_keep_recent`
/// and `mempool.recheck` were accepted and ignored; a key like that fails here.
#[test]
fn every_config_key_reaches_a_component_or_is_refused_by_name() {
    let default = Config::default();
    let table: toml::Table = default.to_toml().parse().unwrap();
    let base = Settings::from_config(&default).unwrap();
    let keys = keys(&table);
    for (path, value) in &keys {
        let dotted = path.join(".");
        let mut outcome = None;
        let mut refused = Vec::new();
        for candidate in candidates(value) {
            if candidate == *value {
                continue;
            }
            let mut changed = table.clone();
            set(&mut changed, path, candidate.clone());
            let config = match Config::from_toml_str(&toml::to_string(&changed).unwrap()) {
                Ok(config) => config,
                Err(e) => {
                    refused.push(format!("{candidate}: {e}"));
                    continue;
                }
            };
            match config.validate() {
                Ok(()) => {
                    let settings = Settings::from_config(&config).unwrap();
                    assert_ne!(
                        settings, base,
                        "{dotted} = {candidate} is accepted but changes nothing the node is given"
                    );
                    outcome = Some("read");
                    break;
                }
                Err(e) if e.to_string().contains(&dotted) => {
                    outcome = Some("refused by name");
                    break;
                }
                Err(e) => refused.push(format!("{candidate}: {e}")),
            }
        }
        assert!(
            outcome.is_some(),
            "no other value of {dotted} could be tried: {refused:?}"
        );
    }
    // Three top-level keys and the sections' fields: a key missing from the walk is a key missing from
    // the written file.
    assert_eq!(keys.len(), 51, "keys walked: {keys:?}");
}
