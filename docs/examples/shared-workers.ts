/**
 * Several workers sharing one durable pull consumer.
 *
 * Each worker has its own connection and its own `consume()` of the same consumer, as separate
 * processes or pods would. The server hands each message to one of them; each worker holds at
 * most `max_messages`, so a small value spreads the work. On SIGTERM (or after EXAMPLE_MAX
 * messages in all) every worker drains: what each one holds is handled and acked, nothing is
 * stranded.
 *
 * Environment:
 *   NATS_URL          server URL (default nats://127.0.0.1:4222)
 *   STREAM, CONSUMER  an existing stream and durable pull consumer (default ORDERS, worker)
 *   WORKERS           how many workers (default 3)
 *   WORK_MS           simulated work per message, milliseconds (default 5)
 *   EXAMPLE_MAX       optional: drain every worker once this many messages were handled in all
 *
 * Prints one JSON line at the end: {"handled", "perWorker", "duplicates"}.
 *
 * Run (from the repository root):
 *   npx tsc -p docs/examples && node docs/examples/dist/docs/examples/shared-workers.js
 */
import { jetstream } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/nats-core";
import { connect } from "@nats-io/transport-node";
// In your code: import { consume } from "jetstream-iter";
import { consume } from "../../src/index.js";

const url = process.env.NATS_URL ?? "nats://127.0.0.1:4222";
const stream = process.env.STREAM ?? "ORDERS";
const durable = process.env.CONSUMER ?? "worker";
const workers = Number(process.env.WORKERS ?? 3);
const workMs = Number(process.env.WORK_MS ?? 5);
const max = process.env.EXAMPLE_MAX ? Number(process.env.EXAMPLE_MAX) : Number.POSITIVE_INFINITY;

const seen = new Set<number>();
let duplicates = 0;
const perWorker: number[] = new Array(workers).fill(0);

// One connection per worker, as separate processes would have.
const connections: NatsConnection[] = await Promise.all(
  Array.from({ length: workers }, (_, i) => connect({ servers: url, name: `worker-${i}` })),
);
const all = await Promise.all(
  connections.map(async (nc) =>
    consume(await jetstream(nc).consumers.get(stream, durable), { max_messages: 10 }),
  ),
);

/** Drains every worker; each one still hands out what it holds. Idempotent. */
function drainAll(): void {
  for (const messages of all) void messages.drain();
}
process.once("SIGTERM", drainAll);
process.once("SIGINT", drainAll);

console.log(`ready: ${workers} workers on ${stream}/${durable}`);

async function work(id: number): Promise<void> {
  const messages = all[id]!;
  for await (const m of messages) {
    await new Promise((resolve) => setTimeout(resolve, workMs)); // your work here
    if (seen.has(m.seq)) duplicates++;
    seen.add(m.seq);
    m.ack();
    perWorker[id]!++;
    if (seen.size >= max) drainAll();
  }
}

await Promise.all(all.map((_, id) => work(id)));
await Promise.all(connections.map((nc) => nc.drain()));
process.off("SIGTERM", drainAll);
process.off("SIGINT", drainAll);
const handled = perWorker.reduce((a, b) => a + b, 0);
console.log(JSON.stringify({ handled, perWorker, duplicates }));
