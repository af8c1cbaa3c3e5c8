/**
 * One client under a fault, in its own process: `node child.js '<ClientJob as JSON>'`.
 * Connects, looks the durable up, consumes it with `consume()` — jetstream-iter's or nats.js
 * v3's, with the options of the job (the defaults unless the fault needs otherwise) — acks every
 * message, and reports to the runner over IPC: each delivery's id and time (batched every
 * 20 ms; the times are taken when the loop gets the message), connection events and consumer
 * notifications. It runs until the runner says stop (or disconnects), then exits at once.
 */
import { jetstream } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { consume } from "../../src/index.js";
import {
  type ChildMessage,
  type ClientJob,
  CONNECTION,
  idOf,
  type ParentMessage,
} from "./types.js";

const job = JSON.parse(process.argv[2] ?? "") as ClientJob;
const send = (m: ChildMessage) => process.send?.(m);

let batch: number[] = [];
const flush = () => {
  if (batch.length === 0) return;
  send({ type: "deliveries", d: batch });
  batch = [];
};
setInterval(flush, 20);

const exit = () => {
  flush();
  // Let the IPC channel carry the last batch, then go, whatever the client is doing.
  setTimeout(() => process.exit(0), 50);
};
process.on("message", (m: ParentMessage) => {
  if (m.type === "stop") exit();
});
process.on("disconnect", () => process.exit(0));

function describe(n: { type: string; code?: number; description?: string; count?: number }) {
  if (n.type === "heartbeats_missed") return `${n.type}(${n.count})`;
  if (n.code !== undefined) return `${n.type} ${n.code}${n.description ? ` ${n.description}` : ""}`;
  return n.type;
}

async function main(): Promise<void> {
  const nc = await connect({
    servers: job.servers,
    noRandomize: job.noRandomize,
    ...CONNECTION,
  });
  void (async () => {
    for await (const s of nc.status()) {
      if (s.type === "disconnect" || s.type === "reconnect") {
        const on = s.type === "reconnect" ? ` (to ${nc.info?.server_name ?? "?"})` : "";
        send({ type: "event", t: Date.now(), what: `${s.type}${on}` });
      }
    }
  })().catch(() => {});
  const js = jetstream(nc, job.domain ? { domain: job.domain } : {});
  const c = await js.consumers.get(job.stream, job.consumer);
  const messages =
    job.client === "jetstream-iter"
      ? await consume(c, job.consumeOptions)
      : await c.consume(job.consumeOptions);
  void (async () => {
    for await (const n of messages.status()) {
      const x = n as { type: string };
      if (x.type === "heartbeat" || x.type === "next") continue;
      send({ type: "event", t: Date.now(), what: describe(x) });
    }
  })().catch(() => {});
  send({ type: "ready" });
  try {
    for await (const m of messages) {
      batch.push(idOf(m.data), Date.now());
      m.ack();
    }
    send({ type: "ended", t: Date.now() });
  } catch (err) {
    send({ type: "ended", t: Date.now(), error: String(err) });
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`faults child (${job.client}): ${String(err)}\n`);
  process.exit(1);
});
