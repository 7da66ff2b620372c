// Basalt's RPC as CosmJS (@cosmjs/tendermint-rpc, pinned in package.json) sees it, used exactly as a
// wallet or explorer would. Run by tests/tests/cosmjs.rs against a real network:
//
//   node check.mjs <http url> <ws url without /websocket> <signed tx, base64>
//
// Prints one JSON object of what it saw and exits 0, or prints the failure and exits 1.
import { sha256 } from "@cosmjs/crypto";
import { fromBase64, toHex } from "@cosmjs/encoding";
import { connectComet, isComet38Client } from "@cosmjs/tendermint-rpc";

const [http, ws, txBase64] = process.argv.slice(2);
const deadline = Date.now() + 60_000;

function check(condition, what) {
  if (!condition) {
    throw new Error(`check failed: ${what}`);
  }
}

async function withTimeout(promise, what, ms = 30_000) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out: ${what}`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

async function main() {
  const seen = {};
  // connectComet picks its dialect from status.node_info.version: the 0.38 client only for "0.38.x".
  const client = await withTimeout(connectComet(http), "connectComet(http)");
  check(isComet38Client(client), "connectComet chose the CometBFT 0.38 client");
  const status = await client.status();
  seen.version = status.nodeInfo.version;
  seen.network = status.nodeInfo.network;
  seen.height = status.syncInfo.latestBlockHeight;
  check(seen.height >= 1, "status reports a committed block");

  const block = await client.block(seen.height);
  check(block.block.header.height === seen.height, "block(h) is block h");
  await client.blockResults(seen.height);
  const validators = await client.validators({});
  seen.validators = validators.total;
  check(validators.total >= 1, "validators lists the set");

  // The hash CosmJS computes for a transaction is the one the node answers with and finds it by.
  const tx = fromBase64(txBase64);
  const computed = toHex(sha256(tx)).toUpperCase();
  const broadcast = await client.broadcastTxSync({ tx });
  check(broadcast.code === 0, `broadcastTxSync accepted the tx (code ${broadcast.code}: ${broadcast.log})`);
  seen.hash = toHex(broadcast.hash).toUpperCase();
  check(seen.hash === computed, `broadcast hash ${seen.hash} is SHA-256 of the tx ${computed}`);
  let found;
  while (!found) {
    check(Date.now() < deadline, "the tx was committed within 60 s");
    try {
      found = await client.tx({ hash: sha256(tx) });
    } catch {
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }
  seen.txHeight = found.height;
  check(found.result.code === 0, "the committed tx succeeded");
  const search = await client.txSearch({ query: `tx.hash='${computed}'` });
  check(search.totalCount === 1 && search.txs.length === 1, "txSearch by tx.hash finds it");
  const byHeight = await client.txSearch({ query: `tx.height=${found.height}` });
  check(
    byHeight.txs.some((t) => toHex(t.hash).toUpperCase() === computed),
    "txSearch by tx.height finds it",
  );
  client.disconnect();

  // A websocket client subscribes to new block headers (CosmJS's subscribeNewBlockHeader).
  const live = await withTimeout(connectComet(ws), "connectComet(ws)");
  check(isComet38Client(live), "connectComet(ws) chose the CometBFT 0.38 client");
  const header = await withTimeout(
    new Promise((resolve, reject) => {
      const subscription = live.subscribeNewBlockHeader().subscribe({
        next: (h) => {
          subscription.unsubscribe();
          resolve(h);
        },
        error: reject,
        complete: () => reject(new Error("the NewBlockHeader stream ended")),
      });
    }),
    "a NewBlockHeader event",
  );
  seen.headerHeight = header.height;
  check(header.height > found.height - 1, "the header is a new one");
  live.disconnect();
  console.log(JSON.stringify(seen));
}

main().then(
  () => process.exit(0),
  (error) => {
    console.error(error.stack || String(error));
    process.exit(1);
  },
);
