/**
 * Callback mode with an async callback.
 *
 * Unlike nats.js, a promise the callback returns is awaited before the next message is handed
 * out: one message at a time, in order. A callback that throws (or rejects) ends the consumer
 * with that error — `closed()` resolves it — and what was buffered is NAKed. Notifications are
 * read from `status()` alongside.
 *
 * Environment:
 *   NATS_URL          server URL (default nats://127.0.0.1:4222)
 *   STREAM, CONSUMER  an existing stream and durable pull consumer (default ORDERS, worker)
 *   WORK_MS           simulated async work per message, milliseconds (default 1)
 *   EXAMPLE_MAX       optional: drain after this many messages (else on SIGTERM or SIGINT)
 *
 * Run (from the repository root):
 *   npx tsc -p docs/examples && node docs/examples/dist/docs/examples/callback.js
 */
import { jetstream } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
// In your code: import { consume } from "jetstream-iter";
import { consume } from "../../src/index.js";

const url = process.env.NATS_URL ?? "nats://127.0.0.1:4222";
const stream = process.env.STREAM ?? "ORDERS";
const durable = process.env.CONSUMER ?? "worker";
const workMs = Number(process.env.WORK_MS ?? 1);
const max = process.env.EXAMPLE_MAX ? Number(process.env.EXAMPLE_MAX) : Number.POSITIVE_INFINITY;

const nc = await connect({ servers: url, name: "callback-example" });
const consumer = await jetstream(nc).consumers.get(stream, durable);

let handled = 0;
let running = 0;
let maxRunning = 0;
const messages = await consume(consumer, {
  max_messages: 50,
  callback: async (m) => {
    running++;
    maxRunning = Math.max(maxRunning, running);
    await new Promise((resolve) => setTimeout(resolve, workMs)); // your async work here
    m.ack();
    running--;
    // drain() from inside the callback: what is buffered is still handed to the callback.
    if (++handled === max) void messages.drain();
  },
});

// Notifications (heartbeats missed, consumer deleted, …) until the consumer is done.
const notifications = (async () => {
  for await (const n of messages.status()) {
    if (n.type !== "next" && n.type !== "heartbeat") console.log(`status: ${JSON.stringify(n)}`);
  }
})();

const drain = () => void messages.drain();
process.once("SIGTERM", drain);
process.once("SIGINT", drain);
console.log(`ready: callback mode on ${stream}/${durable}`);

// closed() never rejects: undefined for an ordinary end, the Error that ended it otherwise.
const error = await messages.closed();
await notifications;
await nc.drain();
process.off("SIGTERM", drain);
process.off("SIGINT", drain);
console.log(`done: handled ${handled}, at most ${maxRunning} callback(s) at once`);
if (error) {
  console.error(`ended with ${error.name}: ${error.message}`);
  process.exitCode = 1;
}
