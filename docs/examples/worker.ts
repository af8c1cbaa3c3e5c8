/**
 * A worker that drains on SIGTERM (or SIGINT).
 *
 * It handles messages one at a time and acks each. On the first SIGTERM it calls `drain()`: no
 * new pull is sent, every message the server already sent still arrives, the loop handles and
 * acks everything it holds, and ends by itself. A second signal calls `close()`: what is still
 * buffered is NAKed, so another worker gets it at once instead of after `ack_wait`.
 *
 * Environment:
 *   NATS_URL          server URL (default nats://127.0.0.1:4222)
 *   STREAM, CONSUMER  an existing stream and durable pull consumer (default ORDERS, worker)
 *   WORK_MS           simulated work per message, milliseconds (default 10)
 *   DRAIN_TIMEOUT_MS  bound of the drain fence, milliseconds (default 5000)
 *   EXAMPLE_MAX       optional: drain by itself after this many messages
 *
 * Run (from the repository root): npx tsc -p docs/examples && node docs/examples/dist/docs/examples/worker.js
 */
import { jetstream } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
// In your code: import { consume } from "jetstream-iter";
import { consume } from "../../src/index.js";

const url = process.env.NATS_URL ?? "nats://127.0.0.1:4222";
const stream = process.env.STREAM ?? "ORDERS";
const durable = process.env.CONSUMER ?? "worker";
const workMs = Number(process.env.WORK_MS ?? 10);
const drainTimeout = Number(process.env.DRAIN_TIMEOUT_MS ?? 5_000);
const max = process.env.EXAMPLE_MAX ? Number(process.env.EXAMPLE_MAX) : Number.POSITIVE_INFINITY;

const nc = await connect({ servers: url, name: "worker-example" });
const consumer = await jetstream(nc).consumers.get(stream, durable);
// Keep max_messages x the time one message takes well below ack_wait and below the time the
// platform gives you to stop (see docs/guide.md).
const messages = await consume(consumer, { max_messages: 20 });

let signals = 0;
function onSignal(signal: NodeJS.Signals): void {
  if (++signals === 1) {
    console.log(`${signal}: draining`);
    void messages.drain({ timeout: drainTimeout });
  } else {
    console.log(`${signal} again: closing now, NAKing what is buffered`);
    void messages.close();
  }
}
process.on("SIGTERM", onSignal);
process.on("SIGINT", onSignal);

console.log(`ready: consuming ${stream}/${durable} on ${url}`);

let handled = 0;
for await (const m of messages) {
  await new Promise((resolve) => setTimeout(resolve, workMs)); // your work here
  m.ack();
  handled++;
  console.log(`handled ${m.seq}`);
  if (handled === max) void messages.drain({ timeout: drainTimeout });
}

// The loop ended: drained (or closed). closed() says whether it ended with an error.
const error = await messages.closed();
await nc.drain();
process.off("SIGTERM", onSignal);
process.off("SIGINT", onSignal);
console.log(`done: handled ${handled}, ${JSON.stringify(messages.counters())}`);
if (error) {
  console.error(`ended with ${error.name}: ${error.message}`);
  process.exitCode = 1;
}
