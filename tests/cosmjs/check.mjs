// Basalt's RPC as CosmJS (@cosmjs/tendermint-rpc, pinned in package.json) sees it, used exactly as a
// wallet or explorer would. Run by tests/tests/cosmjs.rs against a real network:
//
//   node check.mjs <http url> <ws url without /websocket> <sender hex> <recipient hex> <tx1> <tx2> <tx3>
//
// tx1..tx3 are signed transfers (base64) of 5 from sender to recipient with nonces 0, 1, 2; the recipient
// holds nothing before. Values are checked against each other (hashes, heights, app hashes), not only
// that calls succeed.
//
// Prints one JSON object of what it saw and exits 0, or prints the failure and exits 1.
import { sha256 } from "@cosmjs/crypto";
import { fromAscii, fromBase64, fromHex, toHex } from "@cosmjs/encoding";
import { connectComet, isComet38Client } from "@cosmjs/tendermint-rpc";

const [http, ws, sender, recipient, ...txsBase64] = process.argv.slice(2);
const [tx1, tx2, tx3] = txsBase64.map(fromBase64);
const hex = (bytes) => toHex(bytes).toUpperCase();
const hashOf = (tx) => hex(sha256(tx));
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

  // One block, four ways: block, blockchain, commit, and the next block's last_block_id.
  const h = seen.height;
  const block = await client.block(h);
  check(block.block.header.height === h, "block(h) is block h");
  const metas = await client.blockchain(h, h);
  check(metas.blockMetas.length === 1, "blockchain(h, h) has one meta");
  check(hex(metas.blockMetas[0].blockId.hash) === hex(block.blockId.hash), "blockchain's block id is block's");
  const commit = await client.commit(h);
  check(commit.header.height === h, "commit(h) is for h");
  check(hex(commit.commit.blockId.hash) === hex(block.blockId.hash), "commit signs block h");
  check(commit.commit.signatures.length === 4, "commit has a slot per validator");
  // The latest app hash is the latest header's (the state before its block), as CometBFT reports it.
  check(hex(status.syncInfo.latestAppHash) === hex(block.block.header.appHash), "status app hash = header app hash");
  const results = await client.blockResults(h);
  check(results.height === h && results.results.length === block.block.txs.length, "block_results matches the block");
  if (h > 1) {
    const previous = await client.block(h - 1);
    check(hex(block.block.header.lastBlockId.hash) === hex(previous.blockId.hash), "last_block_id links the chain");
  }

  const validators = await client.validatorsAll();
  seen.validators = validators.total;
  check(validators.total === 4 && validators.validators.length === 4, "validatorsAll lists the 4 validators");
  const genesis = await client.genesis();
  check(genesis.chainId === seen.network, "genesis chain id is the network");
  const genesisKeys = genesis.validators.map((v) => hex(v.address)).sort().join();
  const liveKeys = validators.validators.map((v) => hex(v.address)).sort().join();
  check(genesisKeys === liveKeys, "genesis validators are the live set");

  // The hash CosmJS computes for a transaction is the one the node answers with and finds it by.
  const computed = hashOf(tx1);
  const broadcast = await client.broadcastTxSync({ tx: tx1 });
  check(broadcast.code === 0, `broadcastTxSync accepted the tx (code ${broadcast.code}: ${broadcast.log})`);
  seen.hash = hex(broadcast.hash);
  check(seen.hash === computed, `broadcast hash ${seen.hash} is SHA-256 of the tx ${computed}`);
  let found;
  while (!found) {
    check(Date.now() < deadline, "the tx was committed within 60 s");
    try {
      found = await client.tx({ hash: sha256(tx1), prove: true });
    } catch {
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }
  seen.txHeight = found.height;
  check(found.result.code === 0, "the committed tx succeeded");
  check(hex(found.tx) === hex(tx1), "tx returns the tx bytes");
  const including = await client.block(found.height);
  check(including.block.txs.some((t) => hashOf(t) === computed), "the block at its height holds the tx");
  check(found.proof !== undefined, "tx with prove=true has a proof");
  check(hex(found.proof.rootHash) === hex(including.block.header.dataHash), "the proof's root is the block's data hash");
  check(hex(found.proof.data) === hex(tx1), "the proof proves the tx bytes");
  const search = await client.txSearch({ query: `tx.hash='${computed}'` });
  check(search.totalCount === 1 && search.txs.length === 1, "txSearch by tx.hash finds it");
  const byHeight = await client.txSearch({ query: `tx.height=${found.height}` });
  check(byHeight.txs.some((t) => hex(t.hash) === computed), "txSearch by tx.height finds it");

  // The state the tx made, read with abci_query (and a proof of it).
  // The address as the query's data (CosmJS always sends data), the path naming the record.
  const balance = await client.abciQuery({ path: "/bank/balance", data: fromHex(recipient) });
  check(balance.code === 0 && fromAscii(balance.value) === "5", `recipient holds 5 (got ${fromAscii(balance.value)})`);
  const account = await client.abciQuery({ path: "/bank/account", data: fromHex(sender), prove: true });
  check(account.value.length === 24, "an account record is 24 bytes");
  check(account.proof && account.proof.ops.length === 1 && account.proof.ops[0].type === "ics23:basalt", "abci_query proves the account");

  // broadcast_tx_commit waits for the block: its height holds the tx, its hash is CosmJS's.
  const committed = await withTimeout(client.broadcastTxCommit({ tx: tx2 }), "broadcastTxCommit");
  check(committed.checkTx.code === 0 && committed.txResult.code === 0, "broadcastTxCommit committed the tx");
  check(hex(committed.hash) === hashOf(tx2), "broadcastTxCommit's hash is CosmJS's");
  const atCommit = await client.block(committed.height);
  check(atCommit.block.txs.some((t) => hashOf(t) === hashOf(tx2)), "the reported height holds the tx");
  const all = await client.txSearchAll({ query: `transfer.sender='${sender}'` });
  check(all.totalCount === 2 && all.txs.length === 2, `txSearchAll finds both transfers (got ${all.totalCount})`);
  check(hex(all.txs[1].hash) === hashOf(tx2), "in height order");
  client.disconnect();

  // A websocket client: a new block, its header, and a transaction as they are committed.
  const live = await withTimeout(connectComet(ws), "connectComet(ws)");
  check(isComet38Client(live), "connectComet(ws) chose the CometBFT 0.38 client");
  const first = (stream, what) =>
    withTimeout(
      new Promise((resolve, reject) => {
        const subscription = stream.subscribe({
          next: (event) => {
            subscription.unsubscribe();
            resolve(event);
          },
          error: reject,
          complete: () => reject(new Error(`the ${what} stream ended`)),
        });
      }),
      `a ${what} event`,
    );
  const header = await first(live.subscribeNewBlockHeader(), "NewBlockHeader");
  seen.headerHeight = header.height;
  check(header.height > committed.height - 1, "the header is a new one");
  const newBlock = await first(live.subscribeNewBlock(), "NewBlock");
  check(newBlock.header.height > header.height - 1, "the block is a new one");
  const byHeader = await live.block(newBlock.header.height);
  check(hex(byHeader.block.header.appHash) === hex(newBlock.header.appHash), "the event's block is the chain's");
  const txEvent = first(live.subscribeTx(`transfer.sender='${sender}'`), "Tx");
  // No wait needed: the subscribe request went out first on this socket, and the node handles one
  // socket's requests in order, so the subscription exists before the tx is submitted.
  const sent = await live.broadcastTxSync({ tx: tx3 });
  check(sent.code === 0, "the third tx was accepted");
  const event = await txEvent;
  check(hex(event.hash) === hashOf(tx3), "the Tx event carries CosmJS's hash");
  check(event.result.code === 0 && hex(event.tx) === hex(tx3), "the Tx event carries the tx and its result");
  const again = await live.tx({ hash: sha256(tx3) });
  check(again.height === event.height, "the event's height is the tx's");
  seen.lastTxHeight = event.height;
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
