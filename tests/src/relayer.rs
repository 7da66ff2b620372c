//! `basalt relay` processes for process tests: a config naming two running networks, `create-path`, a
//! running `relay start` (killed when dropped) and the metrics address it prints.

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::Duration;

use serde_json::Value;

use crate::testnet::{basalt_bin, HarnessError, Testnet};

fn failed(what: &str, detail: impl ToString) -> HarnessError {
    HarnessError::Command {
        what: what.to_owned(),
        detail: detail.to_string(),
    }
}

/// Writes a relayer config for `a` (its node 0) and `b` (its node `b_node`), with `extra` lines at its
/// top, to `dir/relay.toml`; the relayer signs with each chain's first test account.
pub fn write_config(
    a: &Testnet,
    b: &Testnet,
    b_node: usize,
    dir: &Path,
    extra: &str,
) -> Result<PathBuf, HarnessError> {
    let config = dir.join("relay.toml");
    std::fs::write(
        &config,
        format!(
            "{extra}[a]\nrpc = \"{}\"\nkey_file = \"{}\"\n[b]\nrpc = \"{}\"\nkey_file = \"{}\"\n",
            a.rpc_url(0),
            a.root().join("accounts.json").display(),
            b.rpc_url(b_node),
            b.root().join("accounts.json").display(),
        ),
    )
    .map_err(|e| failed(&format!("writing {}", config.display()), e))?;
    Ok(config)
}

/// Runs `basalt relay create-path`; its JSON answer (its stderr in the error if it fails).
pub fn create_path(config: &Path) -> Result<Value, HarnessError> {
    const WHAT: &str = "basalt relay create-path";
    let out = Command::new(basalt_bin()?)
        .args(["relay", "create-path", "--config"])
        .arg(config)
        .output()
        .map_err(|e| failed(WHAT, e))?;
    if !out.status.success() {
        return Err(failed(WHAT, String::from_utf8_lossy(&out.stderr)));
    }
    serde_json::from_slice(&out.stdout).map_err(|e| failed(WHAT, format!("no JSON printed: {e}")))
}

/// A running `basalt relay start`, killed when dropped (also when the test fails).
pub struct Relayer(pub Child);

impl Drop for Relayer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `basalt relay start --config <config> <extra…>`, its stderr to `log`.
pub fn start(config: &Path, log: &Path, extra: &[&str]) -> Result<Relayer, HarnessError> {
    const WHAT: &str = "basalt relay start";
    let stderr = std::fs::File::create(log).map_err(|e| failed(WHAT, e))?;
    let child = Command::new(basalt_bin()?)
        .args(["relay", "start", "--config"])
        .arg(config)
        .args(extra)
        .stderr(stderr)
        .spawn()
        .map_err(|e| failed(WHAT, e))?;
    Ok(Relayer(child))
}

/// The relayer's metrics URL, from the line it prints when it serves them (`--metrics`), waiting at
/// most `limit` for it.
pub async fn metrics_url(log: &Path, limit: Duration) -> Result<String, HarnessError> {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        if let Some(url) = text.lines().find_map(|l| l.strip_prefix("metrics on ")) {
            return Ok(url.to_owned());
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(HarnessError::Timeout {
                what: format!("the relayer's metrics address in {}", log.display()),
                secs: limit.as_secs(),
            });
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The state of the first IBC client (`99-basalt-0`, of the other chain) as node `node` of `net`
/// stores it.
pub async fn client_state(
    net: &Testnet,
    node: usize,
) -> Result<basalt_ibc::client::ClientState, HarnessError> {
    use base64::Engine as _;
    let answer = net
        .rpc(
            node,
            "abci_query",
            serde_json::json!({"path": "/store/ibc/key",
                               "data": hex::encode("clients/99-basalt-0/clientState")}),
        )
        .await?;
    let text = answer["response"]["value"].as_str().unwrap_or_default();
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text)
        .map_err(|e| failed("client state", e))?;
    let any = <ibc_core::primitives::proto::Any as prost::Message>::decode(bytes.as_slice())
        .map_err(|e| failed("client state", e))?;
    basalt_ibc::client::ClientState::from_any(&any).map_err(|e| failed("client state", e))
}
