/**
 * Soak: many messages, 4 iterators on 2 connections, each drained and restarted at random
 * moments, plus server restarts. Every message the server acknowledged to the publisher must
 * be acked by a worker at least once; duplicates (server redeliveries) are reported.
 *
 *   npm run soak                                   # 200,000 messages, 3 restarts
 *   SOAK_MESSAGES=20000 SOAK_RESTARTS=1 npm run soak   # the short form CI runs
 */

import { jetstream } from "@nats-io/jetstream";
import { headers, type NatsConnection } from "@nats-io/nats-core";
import { connect } from "@nats-io/transport-node";
import { expect, it } from "vitest";
import { consume, type Messages } from "../../src/index.js";
import { consumerInfo, createConsumer, createStream, NatsServer } from "../harness/index.js";

const MESSAGES = Number(process.env.SOAK_MESSAGES ?? 200_000);
const RESTARTS = Number(process.env.SOAK_RESTARTS ?? 3);
const WORKERS = 4;
const reconnecting = { maxReconnectAttempts: -1, reconnectTimeWait: 50, timeout: 2000 };

async function until(cond: () => boolean | Promise<boolean>, ms: number, what: string) {
  const deadline = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > deadline)
      throw new Error(`soak: timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

it(`soak: ${MESSAGES} messages, ${WORKERS} iterators on 2 connections, random drains, ${RESTARTS} server restarts`, async () => {
  const server = await NatsServer.start();
  const conns: NatsConnection[] = [];
  try {
    await createStream(server.url, "SOAK", { duplicate_window: 600_000_000_000 });
    await createConsumer(server.url, "SOAK", "workers", { ack_wait: 5_000_000_000 });
    conns.push(await connect({ servers: server.url, ...reconnecting }));
    conns.push(await connect({ servers: server.url, ...reconnecting }));
    const consumers = await Promise.all(
      conns.map((nc) => jetstream(nc).consumers.get("SOAK", "workers")),
    );

    const acked = new Uint8Array(MESSAGES); // times a worker acked id i
    let ackedUnique = 0;
    let acks = 0;
    let drains = 0;
    const t0 = Date.now();

    // ── workers: for await + ack; drained and restarted at random moments ──
    let stopping = false;
    let chaosOn = true;
    const current: (Messages<{ string(): string; ack(): void }, unknown> | undefined)[] = [];
    const workers = Array.from({ length: WORKERS }, async (_, w) => {
      while (!stopping) {
        const messages = await consume(consumers[w % 2]!, {
          max_messages: 100,
          expires: 5000,
          idle_heartbeat: 1000,
        });
        current[w] = messages;
        for await (const m of messages) {
          const id = Number(m.string());
          m.ack();
          acks++;
          if (acked[id]! === 0) ackedUnique++;
          acked[id] = Math.min(255, acked[id]! + 1);
        }
      }
    });
    const chaos = (async () => {
      while (chaosOn) {
        await new Promise((r) => setTimeout(r, 200 + Math.random() * 600));
        const victim = current[Math.floor(Math.random() * WORKERS)];
        if (victim && chaosOn) {
          drains++;
          await victim.drain();
        }
      }
    })();

    // ── publisher: msg ids make retried publishes idempotent ──
    const pubNc = await connect({ servers: server.url, ...reconnecting });
    const js = jetstream(pubNc, { timeout: 2000 });
    const restartAt = Array.from({ length: RESTARTS }, (_, i) =>
      Math.floor(((i + 1) * MESSAGES) / (RESTARTS + 1)),
    );
    let restarts = 0;
    const window = 500;
    for (let start = 0; start < MESSAGES; start += window) {
      const end = Math.min(MESSAGES, start + window);
      let pending = Array.from({ length: end - start }, (_, k) => start + k);
      while (pending.length > 0) {
        const results = await Promise.allSettled(
          pending.map((id) => {
            const h = headers();
            h.set("Nats-Msg-Id", String(id));
            return js.publish("SOAK.x", String(id), { headers: h });
          }),
        );
        pending = pending.filter((_, k) => results[k]!.status === "rejected");
        if (pending.length > 0) await new Promise((r) => setTimeout(r, 100));
      }
      if (restarts < RESTARTS && end >= restartAt[restarts]!) {
        restarts++;
        if (restarts % 2 === 1) await server.kill();
        else await server.stop();
        await server.restart();
      }
    }
    const publishMs = Date.now() - t0;

    await until(() => ackedUnique === MESSAGES, 240_000, "every published message acked");
    // Acks lost in a crash come back as redeliveries: keep the workers running until the
    // server agrees that nothing is pending, then drain them.
    chaosOn = false;
    await chaos;
    await until(
      async () => {
        await Promise.all(conns.map((nc) => nc.flush()));
        const ci = await consumerInfo(server.url, "SOAK", "workers");
        return ci.num_ack_pending === 0 && ci.num_pending === 0;
      },
      60_000,
      "consumer fully acked",
    );
    stopping = true;
    await Promise.all(current.map((m) => m?.drain()));
    await Promise.all(workers);
    let lost = 0;
    for (let i = 0; i < MESSAGES; i++) if (acked[i] === 0) lost++;
    const report = {
      messages: MESSAGES,
      restarts,
      drains,
      acks,
      duplicates: acks - ackedUnique,
      lost,
      publishMs,
      totalMs: Date.now() - t0,
    };
    console.info(`soak report: ${JSON.stringify(report)}`);
    expect(lost).toBe(0);
    await pubNc.close();
  } finally {
    for (const nc of conns) await nc.close().catch(() => {});
    await server.dispose();
  }
});
