// CosmJS's txSearchAll over a long chain (issue 15): every transaction, no silent cut, true totals.
// Run by the ignored test in tests/tests/cosmjs.rs after it built the chain:
//
//   node long_chain.mjs <http url> <expected tx count> <sender hex> <sender's tx count> <min span>
//
// Prints one JSON object of what it saw and exits 0, or prints the failure and exits 1.
import { toHex } from "@cosmjs/encoding";
import { connectComet, isComet38Client } from "@cosmjs/tendermint-rpc";

const [http, expectedText, sender, senderText, spanText] = process.argv.slice(2);
const expected = Number(expectedText);
const senderCount = Number(senderText);
const minSpan = Number(spanText);

function check(condition, what) {
  if (!condition) {
    throw new Error(`check failed: ${what}`);
  }
}

async function main() {
  const client = await connectComet(http);
  check(isComet38Client(client), "connectComet chose the CometBFT 0.38 client");
  const status = await client.status();
  const started = Date.now();
  // Every transaction of the chain, paged by CosmJS until totalCount is reached.
  const all = await client.txSearchAll({ query: "tx.height>=1" });
  const seconds = (Date.now() - started) / 1000;
  check(all.totalCount === expected, `totalCount ${all.totalCount} = ${expected} submitted`);
  check(all.txs.length === expected, `${all.txs.length} transactions returned, ${expected} submitted`);
  const hashes = new Set(all.txs.map((t) => toHex(t.hash)));
  check(hashes.size === expected, "no transaction twice");
  for (let i = 1; i < all.txs.length; i++) {
    const [a, b] = [all.txs[i - 1], all.txs[i]];
    check(a.height < b.height || (a.height === b.height && a.index < b.index), "in height, index order");
  }
  check(all.txs.every((t) => t.result.code === 0), "every transfer succeeded");
  const first = all.txs[0].height;
  const last = all.txs[all.txs.length - 1].height;
  check(last - first >= minSpan, `transactions span ${first}..${last}, at least ${minSpan} blocks`);
  // One sender's transfers, by its indexed event attribute.
  const mine = await client.txSearchAll({ query: `transfer.sender='${sender}'` });
  check(mine.totalCount === senderCount && mine.txs.length === senderCount, `the sender's ${senderCount} transfers`);
  client.disconnect();
  console.log(JSON.stringify({
    chainHeight: status.syncInfo.latestBlockHeight,
    txs: all.txs.length,
    firstHeight: first,
    lastHeight: last,
    searchSeconds: seconds,
  }));
}

main().then(
  () => process.exit(0),
  (error) => {
    console.error(error.stack || String(error));
    process.exit(1);
  },
);
