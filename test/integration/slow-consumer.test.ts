/**
 * A pull the server cannot deliver without cutting the client: `max_messages` 1000 of 16 KiB
 * messages (no `max_bytes`) against a server whose `max_pending` is 256 KiB. The server queues
 * the deliveries faster than it can write them, exceeds max_pending, and closes the connection as
 * a slow consumer ("Slow Consumer Detected: MaxPending of 262144 Exceeded" in its log; the client
 * gets no -ERR, only a disconnect). Every reconnect re-pulled the same 16 MiB and was cut again
 * within milliseconds: measured, ~93 of 1,500 messages in 8 s, for this library and nats.js alike.
 *
 * What the client can tell (nats-server 2.9.10): the connection dropped while a pull was
 * outstanding and its messages were arriving, and it reconnected to the same server process
 * (same `server_id`), so the server was not restarted: it cut us. The rule (docs/faults.md): after
 * such a cut, pulls ask for at most a quarter of what was outstanding at the cut, for the rest of
 * the iterator's life, until one fits.
 */

import { jetstream } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/nats-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { consume } from "../../src/index.js";
import { createConsumer, createStream, NatsServer, publishN } from "../harness/index.js";
import { v3, within } from "./fixture.js";

const KiB = 1024;
let server: NatsServer;

beforeAll(async () => {
  server = await NatsServer.start({ config: "max_pending: 262144\nmax_payload: 65536" });
});
afterAll(async () => {
  await server?.dispose();
});

async function run(name: string, opts: { max_messages: number; max_bytes?: number }) {
  await createStream(server.url, name);
  // ack_wait 2 s: what a cut leaves un-acked comes back soon
  await createConsumer(server.url, name, "c", { ack_wait: 2_000_000_000 });
  await publishN(server.url, `${name}.x`, 1500, {
    payload: (i) => {
      const b = new Uint8Array(16 * KiB);
      new DataView(b.buffer).setUint32(0, i);
      return b;
    },
    window: 64,
  });
  const nc: NatsConnection = await v3(server, {
    maxReconnectAttempts: -1,
    reconnectTimeWait: 50,
  });
  let disconnects = 0;
  void (async () => {
    for await (const s of nc.status()) if (s.type === "disconnect") disconnects++;
  })();
  try {
    const messages = await consume(await jetstream(nc).consumers.get(name, "c"), opts);
    const notes: string[] = [];
    void (async () => {
      for await (const n of messages.status()) {
        if (n.type === "debug" || n.type === "next")
          notes.push(`${Date.now() % 100000} ${JSON.stringify(n)}`);
      }
    })();
    const seen = new Set<number>();
    let maxPending = 0;
    const loop = (async () => {
      for await (const m of messages) {
        seen.add(new DataView(m.data.buffer, m.data.byteOffset).getUint32(0));
        maxPending = Math.max(maxPending, messages.getPending());
        m.ack();
        if (seen.size === 1500) break;
      }
    })();
    await within(loop, 90_000, `all 1500 consumed (${seen.size} so far)`);
    if (process.env.SC_DEBUG) {
      console.info(
        server.log
          .filter((l) => /Slow Consumer/.test(l))
          .slice(-50)
          .join("\n"),
      );
      console.info(notes.join("\n"));
    }
    return { seen: seen.size, disconnects, maxPending };
  } finally {
    await nc.close();
  }
}

describe("a pull the server can only deliver by cutting the client (max_pending 256 KiB)", () => {
  it("max_messages 1000 of 16 KiB, no max_bytes: recovers by itself, consumes all 1500, 0 lost, the bound holds", async () => {
    const r = await run("SC1", { max_messages: 1000 });
    console.info(`slow-consumer cut: ${r.disconnects} cuts, ${r.seen} consumed`);
    expect(r.seen).toBe(1500);
    expect(r.maxPending).toBeLessThanOrEqual(1000);
    expect(r.disconnects).toBeGreaterThan(0); // the scenario did cut the client
    expect(r.disconnects).toBeLessThanOrEqual(10); // not ~120: the rule converged
  }, 120_000);

  it("with a max_bytes that fits (64 KiB), nothing changes: no cut at all", async () => {
    const r = await run("SC2", { max_messages: 1000, max_bytes: 64 * KiB });
    expect(r.seen).toBe(1500);
    expect(r.disconnects).toBe(0);
  }, 120_000);
});
