/**
 * The same worker with the legacy `nats` (v2) package.
 *
 * `consume(consumer, opts)` takes a v2 consumer (`nc.jetstream().consumers.get(…)`) and returns
 * v2's shapes: messages are v2 `JsMsg`s and `status()` is a Promise of `{ type, data }`
 * notifications, as `consumer.consume()` of v2 has them. Drains on SIGTERM or SIGINT, or after
 * EXAMPLE_MAX messages.
 *
 * Environment:
 *   NATS_URL          server URL (default nats://127.0.0.1:4222)
 *   STREAM, CONSUMER  an existing stream and durable pull consumer (default ORDERS, worker)
 *   EXAMPLE_MAX       optional: drain after this many messages
 *
 * Run (from the repository root): npx tsc -p docs/examples && node docs/examples/dist/docs/examples/v2.js
 */
import { connect } from "nats";
// In your code: import { consume } from "jetstream-iter";
import { consume } from "../../src/index.js";

const url = process.env.NATS_URL ?? "nats://127.0.0.1:4222";
const stream = process.env.STREAM ?? "ORDERS";
const durable = process.env.CONSUMER ?? "worker";
const max = process.env.EXAMPLE_MAX ? Number(process.env.EXAMPLE_MAX) : Number.POSITIVE_INFINITY;

const nc = await connect({ servers: url, name: "v2-example" });
const consumer = await nc.jetstream().consumers.get(stream, durable);
// Before: const messages = await consumer.consume({ max_messages: 20 });
const messages = await consume(consumer, { max_messages: 20 });

// v2 shape: status() is a Promise of an async iterable of { type, data }.
const notifications = (async () => {
  for await (const s of await messages.status()) {
    if (s.type !== "next") console.log(`status: ${s.type} ${JSON.stringify(s.data)}`);
  }
})();

const drain = () => void messages.drain();
process.once("SIGTERM", drain);
process.once("SIGINT", drain);
console.log(`ready: consuming ${stream}/${durable} with nats v2`);

let handled = 0;
for await (const m of messages) {
  console.log(`message ${m.seq}: ${m.string()} (delivery ${m.info.deliveryCount})`);
  m.ack();
  if (++handled === max) void messages.drain();
}

const error = await messages.closed();
await notifications;
await nc.drain();
process.off("SIGTERM", drain);
process.off("SIGINT", drain);
console.log(`done: handled ${handled}`);
if (error) {
  console.error(`ended with ${error.name}: ${error.message}`);
  process.exitCode = 1;
}
