/**
 * The server restarts (SIGKILL five times, SIGTERM once) or hangs (SIGSTOP) under load: the
 * iterator resumes by itself and nothing the server acknowledged to the publisher is lost.
 */

import type { ConsumerNotification } from "@nats-io/jetstream";
import { jetstream } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/nats-core";
import { connect } from "@nats-io/transport-node";
import { describe, expect, it } from "vitest";
import { consume } from "../../src/index.js";
import { consumerInfo, NatsServer } from "../harness/index.js";
import { freshConsumer, observePulls, until, v3, v3Consumer, within } from "./fixture.js";

const reconnecting = { maxReconnectAttempts: -1, reconnectTimeWait: 50, timeout: 1000 };

/** Publishes `<subject>` messages numbered 0, 1, 2… until stopped; records what the server acked. */
function startPublisher(server: NatsServer, subject: string) {
  const acked = new Set<number>();
  let stop = false;
  let nc: NatsConnection | undefined;
  const done = (async () => {
    nc = await connect({ servers: server.url, ...reconnecting });
    const js = jetstream(nc, { timeout: 1000 });
    let i = 0;
    while (!stop) {
      const id = i++;
      try {
        await js.publish(subject, String(id));
        acked.add(id);
      } catch {
        await new Promise((r) => setTimeout(r, 20));
      }
      if (id % 50 === 0) await new Promise((r) => setImmediate(r));
    }
    await nc.close();
  })();
  return {
    acked,
    async stop() {
      stop = true;
      await done;
    },
  };
}

describe("server restarts under load", () => {
  it("5 x SIGKILL and 1 x SIGTERM restarts: consumption resumes unaided, 0 lost, one waiting pull at most", async () => {
    const server = await NatsServer.start();
    const nc = await v3(server, reconnecting);
    try {
      const { stream, consumer, subject } = await freshConsumer(server, {
        ack_wait: 2_000_000_000, // acks lost in a crash come back after 2 s, not 30 s
      });
      const messages = await consume(await v3Consumer(nc, stream, consumer), {
        max_messages: 50,
        expires: 5000,
        idle_heartbeat: 1000,
      });
      const seen = new Map<number, number>(); // id -> times consumed
      const loop = (async () => {
        for await (const m of messages) {
          const id = Number(m.string());
          seen.set(id, (seen.get(id) ?? 0) + 1);
          m.ack();
        }
      })();
      const publisher = startPublisher(server, subject);
      for (let round = 0; round < 6; round++) {
        const before = seen.size;
        await until(() => seen.size >= before + 100, 20_000, `consumption before restart ${round}`);
        if (round === 5) await server.stop();
        else await server.kill();
        await server.restart();
      }
      // consumption resumes after the last restart without any call from us
      const afterLast = seen.size;
      await until(() => seen.size >= afterLast + 100, 20_000, "consumption after the last restart");
      await publisher.stop();
      const acked = [...publisher.acked];
      await until(() => acked.every((id) => seen.has(id)), 30_000, "every acked publish consumed");
      // acks and publishes on the consumer's own connection work after the restarts
      const pa = await jetstream(nc).publish(subject, "-1");
      expect(pa.seq).toBeGreaterThan(0);
      await until(() => seen.has(-1), 10_000, "the message published on the consumer's connection");
      await nc.flush();
      await until(
        async () => (await consumerInfo(server.url, stream, consumer)).num_ack_pending === 0,
        20_000,
        "all acked",
      );
      const ci = await consumerInfo(server.url, stream, consumer);
      expect(ci.num_waiting).toBeLessThanOrEqual(1);
      const duplicates = [...seen.values()].reduce((sum, n) => sum + n - 1, 0);
      console.info(
        `restarts: ${acked.length} acked publishes, ${seen.size} consumed, ${duplicates} redelivered duplicates`,
      );
      expect(acked.length).toBeGreaterThan(600);
      await messages.drain();
      await within(loop, 5000, "loop end");
      const c = messages.counters();
      expect(c.received).toBe(c.processed + c.naked + c.dropped);
    } finally {
      await nc.close();
      await server.dispose();
    }
  }, 120_000);
});

describe("hung server", () => {
  it("SIGSTOP for 3 x idle_heartbeat, then SIGCONT: heartbeats_missed, no stacked pulls, consumption resumes, nothing lost", async () => {
    const server = await NatsServer.start();
    const nc = await v3(server, reconnecting);
    const observer = await observePulls(server);
    try {
      const { stream, consumer, subject } = await freshConsumer(server);
      const idle_heartbeat = 500;
      const messages = await consume(await v3Consumer(nc, stream, consumer), {
        max_messages: 20,
        expires: 10_000,
        idle_heartbeat,
      });
      const notes: ConsumerNotification[] = [];
      const notesDone = (async () => {
        for await (const n of messages.status()) notes.push(n);
      })();
      // the request is open and idle: heartbeats flow
      await until(() => notes.some((n) => n.type === "heartbeat"), 5000, "a heartbeat");
      await observer.flush();
      const pullsBefore = observer.events.filter((e) => e.kind === "pull").length;
      server.pause();
      await until(
        () => notes.some((n) => n.type === "heartbeats_missed"),
        5000,
        "heartbeats_missed",
      );
      await new Promise((r) => setTimeout(r, idle_heartbeat)); // stay hung for 3 intervals in all
      server.resume();
      const pub = await connect({ servers: server.url });
      const js = jetstream(pub);
      for (let i = 0; i < 10; i++) await js.publish(subject, String(i));
      await pub.close();
      const got: string[] = [];
      for (let i = 0; i < 10; i++) {
        const m = await within(messages.next(), 10_000, `message ${i}`);
        got.push(m.string());
        m.ack();
      }
      expect(got).toEqual(["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"]);
      await observer.flush();
      const pullsDuring = observer.events.filter((e) => e.kind === "pull").length - pullsBefore;
      // at most the one re-pull after the server answered again; nothing stacked while hung
      expect(pullsDuring).toBeLessThanOrEqual(1);
      const ci = await consumerInfo(server.url, stream, consumer);
      expect(ci.num_waiting).toBeLessThanOrEqual(1);
      await messages.close();
      await notesDone;
    } finally {
      if (server.running) server.resume();
      await observer.close();
      await nc.close();
      await server.dispose();
    }
  }, 30_000);
});
