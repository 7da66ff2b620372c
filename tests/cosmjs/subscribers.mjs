// Many idle websocket subscribers on one node (issue 17's "3,000 concurrent websocket subscribers"):
// opens <count> connections, each subscribing to tm.event='NewBlock', holds them for <hold seconds>, and
// reports how many connected and confirmed and how many blocks each received (every subscriber should
// get every block). The caller measures the node's RSS meanwhile (see BENCHMARKS.md).
//
//   node subscribers.mjs <ws url, e.g. ws://127.0.0.1:26657/websocket> <count> <hold seconds>
import WebSocket from "ws";

const [url, countText, holdText] = process.argv.slice(2);
const count = Number(countText);
const holdMs = Number(holdText) * 1000;
const subscribe = JSON.stringify({
  jsonrpc: "2.0",
  id: 1,
  method: "subscribe",
  params: { query: "tm.event='NewBlock'" },
});

function open() {
  return new Promise((resolve) => {
    const client = { confirmed: false, heights: [], error: null };
    const ws = new WebSocket(url);
    const timer = setTimeout(() => resolve({ ws, client: { ...client, error: "no confirmation in 30 s" } }), 30_000);
    ws.on("open", () => ws.send(subscribe));
    ws.on("message", (data) => {
      const msg = JSON.parse(data.toString());
      if (msg.error) {
        client.error = JSON.stringify(msg.error);
      } else if (msg.id === 1 && msg.result && !msg.result.data) {
        client.confirmed = true;
        clearTimeout(timer);
        resolve({ ws, client });
      } else if (msg.result && msg.result.data) {
        client.heights.push(Number(msg.result.data.value.block.header.height));
      }
    });
    ws.on("error", (e) => {
      client.error = String(e);
      clearTimeout(timer);
      resolve({ ws, client });
    });
  });
}

const opened = [];
for (let i = 0; i < count; i += 100) {
  const batch = [];
  for (let j = i; j < Math.min(count, i + 100); j++) batch.push(open());
  opened.push(...(await Promise.all(batch)));
}
const start = Date.now();
for (const { client } of opened) client.heights.length = 0;
console.error(`${opened.length} connections open; holding ${holdMs / 1000} s`);
await new Promise((resolve) => setTimeout(resolve, holdMs));
const counts = opened.map(({ client }) => client.heights.length);
// Every subscriber received every height of its window: received count = last - first + 1.
const gapless = opened.every(({ client }) => {
  const h = client.heights;
  return h.length === 0 || h.length === h[h.length - 1] - h[0] + 1;
});
const result = {
  connections: opened.length,
  confirmed: opened.filter(({ client }) => client.confirmed).length,
  errors: opened.filter(({ client }) => client.error).length,
  firstError: (opened.find(({ client }) => client.error) || { client: {} }).client.error || null,
  heldSeconds: (Date.now() - start) / 1000,
  minBlocks: Math.min(...counts),
  maxBlocks: Math.max(...counts),
  gapless,
};
console.log(JSON.stringify(result));
for (const { ws } of opened) ws.terminate();
process.exit(0);
