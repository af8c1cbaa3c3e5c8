/**
 * What must not be taken for a slow-consumer cut (src/cuts.ts): TCP cuts by a proxy while small
 * messages flow, a cut while nothing flows, an idle consumer whose link flaps. (Found by an audit:
 * each used to lower the cap on what is outstanding, for good.)
 */
import { connect } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { consume } from "../../src/index.js";
import { NatsServer, publishN, TcpProxy } from "../harness/index.js";
import { freshConsumer, until, v3Consumer } from "./fixture.js";

let server: NatsServer;
let proxy: TcpProxy;
beforeAll(async () => {
  server = await NatsServer.start();
  proxy = await TcpProxy.start(Number(new URL(server.url).port));
});
afterAll(async () => {
  await proxy?.close();
  await server?.dispose();
});

async function viaProxy() {
  const nc = await connect({
    servers: proxy.url(),
    reconnectTimeWait: 50,
    maxReconnectAttempts: -1,
  });
  let reconnects = 0;
  void (async () => {
    for await (const s of nc.status()) if (s.type === "reconnect") reconnects++;
  })();
  return { nc, reconnects: () => reconnects };
}

describe("not a slow-consumer cut", () => {
  it("TCP cuts by a proxy while small messages flow (max_pending 64 MiB, nothing near it): no cap, full batches after", async () => {
    const { stream, subject } = await freshConsumer(server);
    await publishN(server.url, subject, 20_000);
    const { nc, reconnects } = await viaProxy();
    try {
      const messages = await consume(await v3Consumer(nc, stream, "c"), { max_messages: 100 });
      const batches: number[] = [];
      const debugs: string[] = [];
      void (async () => {
        for await (const n of messages.status()) {
          if (n.type === "next") batches.push((n as { options: { batch: number } }).options.batch);
          if (
            n.type === "debug" &&
            /slow-consumer/.test(String((n as { description?: string }).description))
          )
            debugs.push(String((n as { description?: string }).description));
        }
      })();
      let got = 0;
      const loop = (async () => {
        for await (const m of messages) {
          m.ack();
          got++;
          await new Promise((r) => setTimeout(r, 1));
        }
      })();
      for (let i = 1; i <= 4; i++) {
        await until(() => got > i * 300, 20_000, "flowing");
        proxy.cut();
        await until(() => reconnects() >= i, 10_000, "reconnect");
      }
      const before = got;
      const mark = batches.length;
      const t0 = Date.now();
      await new Promise((r) => setTimeout(r, 2000));
      const rate = ((got - before) * 1000) / (Date.now() - t0);
      console.info(
        `cuts: cuts: ${debugs.length} cut notes; batches after: ${JSON.stringify(batches.slice(mark, mark + 10))}; rate ${rate.toFixed(0)}/s`,
      );
      for (const d of debugs) console.info("cuts:", d.slice(-60));
      await messages.close();
      await loop;
      expect(debugs.length).toBe(0);
    } finally {
      await nc.close();
    }
  }, 90_000);

  it("nothing flowing (max_ack_pending reached, num_pending > 0), one proxy cut: no cap", async () => {
    const { stream, subject } = await freshConsumer(server, {
      max_ack_pending: 10,
      ack_wait: 60_000_000_000,
    });
    await publishN(server.url, subject, 200);
    const { nc, reconnects } = await viaProxy();
    try {
      const messages = await consume(await v3Consumer(nc, stream, "c"), {
        max_messages: 100,
        expires: 1_000,
        idle_heartbeat: 500,
      });
      const debugs: string[] = [];
      const batches: number[] = [];
      void (async () => {
        for await (const n of messages.status()) {
          if (n.type === "next") batches.push((n as { options: { batch: number } }).options.batch);
          if (
            n.type === "debug" &&
            /slow-consumer/.test(String((n as { description?: string }).description))
          )
            debugs.push(String((n as { description?: string }).description));
        }
      })();
      const held: unknown[] = [];
      const loop = (async () => {
        for await (const m of messages) held.push(m); // never acked: the server stops at 10
      })();
      await until(() => held.length === 10, 10_000, "10 delivered");
      await new Promise((r) => setTimeout(r, 3000)); // well over a second with nothing arriving; pulls expire and are re-sent
      proxy.cut();
      await until(() => reconnects() >= 1, 10_000, "reconnect");
      await new Promise((r) => setTimeout(r, 500));
      console.info(
        `cuts: stalled: notes ${JSON.stringify(debugs.map((d) => d.slice(-50)))} batches ${JSON.stringify(batches)}`,
      );
      await messages.close();
      await loop;
      expect(debugs.length).toBe(0);
    } finally {
      await nc.close();
    }
  }, 60_000);
  it("idle consumer, empty stream, a link that flaps (a second drop within 1 s of the reconnect): no cap", async () => {
    const { stream } = await freshConsumer(server);
    const { nc, reconnects } = await viaProxy();
    try {
      const messages = await consume(await v3Consumer(nc, stream, "c"), { max_messages: 100 });
      const debugs: string[] = [];
      void (async () => {
        for await (const n of messages.status())
          if (
            n.type === "debug" &&
            /slow-consumer/.test(String((n as { description?: string }).description))
          )
            debugs.push(String((n as { description?: string }).description));
      })();
      await new Promise((r) => setTimeout(r, 1500));
      proxy.cut();
      await until(() => reconnects() >= 1, 10_000, "reconnect 1");
      await new Promise((r) => setTimeout(r, 200));
      proxy.cut();
      await until(() => reconnects() >= 2, 10_000, "reconnect 2");
      await new Promise((r) => setTimeout(r, 200));
      console.info(`cuts: flap: ${JSON.stringify(debugs.map((d) => d.slice(-50)))}`);
      await messages.close();
      expect(debugs.length).toBe(0);
    } finally {
      await nc.close();
    }
  }, 60_000);
});
