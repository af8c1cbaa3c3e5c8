// Two open pull requests on a backlog (issue 10, item 1): side by side in one process, on one
// nats-server, runs interleaved. Compares builds of this library (e.g. before and after a change)
// and nats.js v3's own consume(), all with the same options.
//
//   node test/bench/backlog.mjs <nats port> <label>=<path to dist/esm/index.js> [...] [runs]
//
// Start a scratch server first, e.g. `nats-server -a 127.0.0.1 -p 14999 -js -sd "$(mktemp -d)"`.
// Each run: 12,000 × 128 B published first (a backlog of 1.2 × max_messages, so the engine keeps
// a second request open), plus a trickle of 40 messages during the run; max_messages 10,000,
// expires 2,000 ms (idle_heartbeat 1,000), an ack per message. Prints one JSON line per run:
// throughput, heartbeats_missed notifications, and the trickle's publish → loop latency.
import { AckPolicy, jetstream, jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";

const args = process.argv.slice(2);
const port = args.shift();
const runs = /^\d+$/.test(args.at(-1) ?? "") ? Number(args.pop()) : 3;
const sides = [];
for (const a of args) {
  const [label, path] = a.split("=");
  const { consume } = await import(path);
  sides.push({ label, start: (c, o) => consume(c, o) });
}
sides.push({ label: "nats.js v3", start: (c, o) => c.consume(o) });

const N = 12_000;
const TRICKLE = 40;
const nc = await connect({ servers: `nats://127.0.0.1:${port}` });
const jsm = await jetstreamManager(nc);
const js = jetstream(nc);

async function once(side, k) {
  const name = `BACKLOG_${k}_${Date.now()}`;
  await jsm.streams.add({ name, subjects: [`${name}.>`] });
  await jsm.consumers.add(name, { durable_name: "c", ack_policy: AckPolicy.Explicit });
  const payload = new Uint8Array(128);
  for (let s = 0; s < N; s += 500) {
    const batch = Array.from({ length: Math.min(500, N - s) }, () =>
      js.publish(`${name}.x`, payload),
    );
    await Promise.all(batch);
  }
  const c = await js.consumers.get(name, "c");
  const t0 = performance.now();
  const messages = await side.start(c, { max_messages: 10_000, expires: 2_000 });
  let missed = 0;
  void (async () => {
    for await (const s of await messages.status()) if (s.type === "heartbeats_missed") missed++;
  })().catch(() => {});
  const sent = new Map();
  const trickle = (async () => {
    for (let i = 0; i < TRICKLE; i++) {
      await new Promise((r) => setTimeout(r, 50));
      sent.set(String(i), performance.now());
      await js.publish(`${name}.t`, String(i));
    }
  })();
  const lat = [];
  let n = 0;
  for await (const m of messages) {
    if (m.subject.endsWith(".t")) lat.push(performance.now() - sent.get(m.string()));
    m.ack();
    if (++n === N + TRICKLE) break;
  }
  const ms = performance.now() - t0;
  await trickle;
  lat.sort((a, b) => a - b);
  await jsm.streams.delete(name);
  return {
    side: side.label,
    msgsPerSec: Math.round((N + TRICKLE) / (ms / 1000)),
    heartbeatsMissed: missed,
    trickleP50ms: +lat[Math.floor(lat.length / 2)].toFixed(1),
    trickleMaxMs: +lat[lat.length - 1].toFixed(1),
  };
}

for (let r = 0; r < runs; r++) {
  for (const side of sides) console.log(JSON.stringify(await once(side, r)));
}
await nc.close();
