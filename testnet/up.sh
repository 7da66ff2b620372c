#!/usr/bin/env bash
# Starts a local Basalt network of N validators (default 4) in the background: builds the release binary,
# generates the homes with `basalt testnet --profile fast-local`, starts every node with nohup, waits (bounded)
# until every node has committed height 2, and prints the RPC and metrics addresses. If Prometheus is installed
# it is started too, scraping every node each second. Stop everything with testnet/down.sh.
#
# Usage: testnet/up.sh [N] [--dir DIR]
# Environment:
#   BASALT_BIN=path           use this binary instead of building the release one (tests, CI, quick tries)
#   BASALT_TESTNET_DIR=DIR    run directory (default testnet/.run; --dir wins)
#   BASALT_STARTING_PORT=P    p2p port of node0 (default 26656; node i: p2p P+100i, RPC +1, metrics +4)
#   BASALT_CHAIN_ID=ID        chain id of a newly generated network (default basalt-local)
#   BASALT_WAIT_SECS=S        how long to wait for height 2 (default 60)
#   PROMETHEUS_PORT=P         first port tried for Prometheus (default 9090; the next free one is used)
#   BASALT_NO_PROMETHEUS=1    do not start Prometheus even if installed
#
# Running it again while the network runs changes nothing (it prints the addresses). After `down.sh`
# (without --clean) it restarts the same network from its data.
set -euo pipefail

script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(dirname "$script_dir")

die() {
  echo "up.sh: $*" >&2
  exit 1
}

nodes=4
run_dir=${BASALT_TESTNET_DIR:-$script_dir/.run}
while [ $# -gt 0 ]; do
  case "$1" in
    --dir)
      [ $# -ge 2 ] || die "--dir needs a directory"
      run_dir=$2
      shift 2
      ;;
    -h | --help)
      sed -n '2,20p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
      exit 0
      ;;
    *[!0-9]* | '')
      die "unknown argument '$1' (usage: testnet/up.sh [N] [--dir DIR])"
      ;;
    *)
      nodes=$1
      shift
      ;;
  esac
done
if [ "$nodes" -lt 1 ] || [ "$nodes" -gt 100 ]; then die "N must be 1..100, got $nodes"; fi
starting_port=${BASALT_STARTING_PORT:-26656}
chain_id=${BASALT_CHAIN_ID:-basalt-local}
wait_secs=${BASALT_WAIT_SECS:-60}
command -v curl >/dev/null || die "curl is required (apt-get install -y curl)"

mkdir -p "$run_dir"
run_dir=$(cd "$run_dir" && pwd)
pids_file=$run_dir/pids
env_file=$run_dir/testnet.env
log_dir=$run_dir/logs

# Whether process $1 runs (zombies count as gone: nothing may reap them in a container).
alive() {
  kill -0 "$1" 2>/dev/null || return 1
  local state
  state=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null || echo X)
  [ "$state" != Z ] && [ "$state" != X ]
}

# Whether something listens on 127.0.0.1:$1.
port_busy() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

rpc_port() { echo $((starting_port + 100 * $1 + 1)); }
metrics_port() { echo $((starting_port + 100 * $1 + 4)); }

# The latest committed height of node $1 (0 when it does not answer).
height_of() {
  local body
  body=$(curl -fsS --max-time 2 "http://127.0.0.1:$(rpc_port "$1")/status" 2>/dev/null) || {
    echo 0
    return
  }
  # The int64 is a JSON string: "latest_block_height":"17"
  local h
  h=$(sed -n 's/.*"latest_block_height":"\{0,1\}\([0-9][0-9]*\).*/\1/p' <<<"$body")
  h="${h%%$'\n'*}"
  echo "${h:-0}"
}

print_addresses() {
  echo
  echo "Basalt testnet: $nodes validators, chain id $chain_id, run dir $run_dir"
  for ((i = 0; i < nodes; i++)); do
    echo "  node$i  RPC http://127.0.0.1:$(rpc_port "$i")  metrics http://127.0.0.1:$(metrics_port "$i")/metrics  log $log_dir/node$i.log"
  done
  echo "  accounts (test keys, funded): $run_dir/accounts.json"
  local prom_port
  prom_port=$(sed -n 's/^prometheus_port=//p' "$env_file" 2>/dev/null || true)
  if [ -n "$prom_port" ] && grep -q '^prometheus ' "$pids_file" 2>/dev/null; then
    echo "  Prometheus http://127.0.0.1:$prom_port  (config $run_dir/prometheus/prometheus.yml)"
    echo
    echo "Grafana (not started here): provision the datasource and the 'Basalt chain' dashboard with"
    echo "  PROMETHEUS_URL=http://127.0.0.1:$prom_port BASALT_GRAFANA_DASHBOARDS=$script_dir/grafana/dashboards \\"
    echo "    grafana-server --homepath /usr/share/grafana cfg:default.paths.provisioning=$script_dir/grafana/provisioning"
    echo "  or import $script_dir/grafana/dashboards/basalt-chain.json by hand (see testnet/README.md)."
  else
    echo "  Prometheus: not running (install it: apt-get install -y prometheus; then down.sh and up.sh again)"
  fi
  echo
  echo "Stop: $script_dir/down.sh$([ "$run_dir" = "$script_dir/.run" ] || echo " --dir $run_dir")"
}

# --- an existing network in the run directory -------------------------------------------------------------
if [ -f "$pids_file" ]; then
  total=0
  running=0
  while read -r _name pid; do
    total=$((total + 1))
    if alive "$pid"; then running=$((running + 1)); fi
  done <"$pids_file"
  if [ "$running" -gt 0 ]; then
    existing=$(sed -n 's/^nodes=//p' "$env_file" 2>/dev/null || echo "?")
    if [ "$running" -eq "$total" ] && [ "$existing" = "$nodes" ]; then
      # shellcheck disable=SC1090 # written by this script
      . "$env_file"
      echo "up.sh: the testnet in $run_dir is already running"
      print_addresses
      exit 0
    fi
    die "a testnet is running in $run_dir ($running of $total processes, $existing nodes): run testnet/down.sh first"
  fi
  rm -f "$pids_file"
fi
if [ -f "$env_file" ]; then
  existing=$(sed -n 's/^nodes=//p' "$env_file")
  [ "$existing" = "$nodes" ] || die "$run_dir holds a stopped $existing-node testnet; run testnet/down.sh --clean to replace it"
  # Restart from the kept data with the ports and chain id it was generated with.
  # shellcheck disable=SC1090 # written by this script
  . "$env_file"
fi

# --- the binary ----------------------------------------------------------------------------------------------
if [ -n "${BASALT_BIN:-}" ]; then
  bin=$BASALT_BIN
  [ -x "$bin" ] || die "BASALT_BIN=$bin is not an executable file"
else
  command -v cargo >/dev/null || die "cargo not found: install Rust (rustup) or set BASALT_BIN"
  echo "up.sh: building the release binary (cargo build --release --locked --bin basalt)"
  (cd "$repo" && cargo build --release --locked --bin basalt)
  bin=${CARGO_TARGET_DIR:-$repo/target}/release/basalt
  [ -x "$bin" ] || die "the build finished but $bin is missing"
fi
bin=$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin")
echo "up.sh: binary $bin ($("$bin" version 2>/dev/null || echo 'version unknown'))"

# --- generate ------------------------------------------------------------------------------------------------
for ((i = 0; i < nodes; i++)); do
  for port in $((starting_port + 100 * i)) "$(rpc_port "$i")" "$(metrics_port "$i")"; do
    if port_busy "$port"; then
      die "port $port (node$i) is in use: stop what uses it or set BASALT_STARTING_PORT (and run testnet/down.sh --clean)"
    fi
  done
done
if [ ! -f "$env_file" ]; then
  echo "up.sh: generating $nodes validators in $run_dir"
  "$bin" testnet --validators "$nodes" --output "$run_dir" --starting-port "$starting_port" \
    --chain-id "$chain_id" --profile fast-local --force >"$run_dir/testnet.out"
  {
    echo "nodes=$nodes"
    echo "starting_port=$starting_port"
    echo "chain_id=$chain_id"
  } >"$env_file"
fi

# --- start ---------------------------------------------------------------------------------------------------
mkdir -p "$log_dir"
: >"$pids_file"
for ((i = 0; i < nodes; i++)); do
  nohup "$bin" start --home "$run_dir/node$i" >>"$log_dir/node$i.log" 2>&1 </dev/null &
  echo "node$i $!" >>"$pids_file"
done
echo "up.sh: started $nodes nodes (pids in $pids_file); waiting up to ${wait_secs}s for every node to commit (height >= 2)"

# Ready: height >= 2 and above the first height seen, so a restarted network must also commit a new block.
declare -a first_height
deadline=$((SECONDS + wait_secs))
while :; do
  ready=0
  for ((i = 0; i < nodes; i++)); do
    pid=$(sed -n "s/^node$i //p" "$pids_file")
    if ! alive "$pid"; then
      echo "up.sh: node$i (pid $pid) exited; the end of $log_dir/node$i.log:" >&2
      tail -n 20 "$log_dir/node$i.log" >&2 || true
      "$script_dir/down.sh" --dir "$run_dir" >&2 || true
      exit 1
    fi
    h=$(height_of "$i")
    if [ "$h" -gt 0 ] && [ -z "${first_height[i]:-}" ]; then first_height[i]=$h; fi
    if [ "$h" -ge 2 ] && [ "$h" -gt "${first_height[i]:-0}" ]; then ready=$((ready + 1)); fi
  done
  [ "$ready" -lt "$nodes" ] || break
  if [ "$SECONDS" -ge "$deadline" ]; then
    echo "up.sh: only $ready of $nodes nodes reached height 2 within ${wait_secs}s; logs in $log_dir" >&2
    "$script_dir/down.sh" --dir "$run_dir" >&2 || true
    exit 1
  fi
  sleep 0.5
done
echo "up.sh: every node has committed height 2 (node0 is at $(height_of 0))"

# --- Prometheus ----------------------------------------------------------------------------------------------
if [ -z "${BASALT_NO_PROMETHEUS:-}" ] && command -v prometheus >/dev/null; then
  prom_port=${PROMETHEUS_PORT:-9090}
  while port_busy "$prom_port"; do
    prom_port=$((prom_port + 1))
    [ "$prom_port" -lt $((${PROMETHEUS_PORT:-9090} + 100)) ] || die "no free port for Prometheus near ${PROMETHEUS_PORT:-9090}"
  done
  mkdir -p "$run_dir/prometheus/data"
  {
    echo "# Generated by testnet/up.sh: every node's metrics endpoint, scraped each second."
    echo "global:"
    echo "  scrape_interval: 1s"
    echo "  evaluation_interval: 1s"
    echo "scrape_configs:"
    echo "  - job_name: basalt"
    echo "    static_configs:"
    for ((i = 0; i < nodes; i++)); do
      echo "      - targets: ['127.0.0.1:$(metrics_port "$i")']"
      echo "        labels: {node: node$i}"
    done
  } >"$run_dir/prometheus/prometheus.yml"
  nohup prometheus --config.file="$run_dir/prometheus/prometheus.yml" \
    --storage.tsdb.path="$run_dir/prometheus/data" --storage.tsdb.retention.time=2d \
    --web.listen-address="127.0.0.1:$prom_port" >>"$log_dir/prometheus.log" 2>&1 </dev/null &
  echo "prometheus $!" >>"$pids_file"
  sed -i '/^prometheus_port=/d' "$env_file"
  echo "prometheus_port=$prom_port" >>"$env_file"
  deadline=$((SECONDS + 30))
  until curl -fsS --max-time 2 "http://127.0.0.1:$prom_port/-/ready" >/dev/null 2>&1; do
    if [ "$SECONDS" -ge "$deadline" ]; then
      echo "up.sh: Prometheus did not become ready within 30s; see $log_dir/prometheus.log" >&2
      break
    fi
    sleep 0.5
  done
fi

print_addresses
