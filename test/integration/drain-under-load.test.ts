/**
 * drain() of many iterators on one connection while messages keep arriving (docs/faults.md,
 * "drain() while messages flow"). nats-server decides to send a message to a pull request
 * (checking that its reply has interest) before the stream's internal queue routes it; under
 * load that queue lags, and a message decided before the UNSUB is routed after it, to nobody:
 * it waits for ack_wait. A PING/PONG fence does not cover that queue. The library keeps
 * listening while messages flow (until the open requests are complete, or 100 ms without a
 * message, at most 1 s): nothing the loops were sent is left un-acked.
 */
import { AckPolicy, jetstream, jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { consume } from "../../src/index.js";
import { NatsServer } from "../harness/index.js";
import { until, within } from "./fixture.js";

let server: NatsServer;

beforeAll(async () => {
  server = await NatsServer.start();
});
afterAll(async () => {
  await server?.dispose();
});

const ITERATORS = 200;

describe("drain() of many iterators at once while messages flow", () => {
  it(`${ITERATORS} iterators on one connection, publishing round robin without pause: after drain() of all, nothing they were sent waits for ack_wait (num_ack_pending 0 on every durable)`, async () => {
    const nc = await connect({ servers: server.url });
    const pub = await connect({ servers: server.url });
    let publishing = true;
    try {
      const jsm = await jetstreamManager(nc);
      await jsm.streams.add({ name: "LOAD", subjects: ["load.>"], storage: "memory" });
      for (let i = 0; i < ITERATORS; i++) {
        await jsm.consumers.add("LOAD", {
          durable_name: `d${i}`,
          ack_policy: AckPolicy.Explicit,
          filter_subject: `load.${i}`,
          ack_wait: 60_000_000_000,
        });
      }
      // A publisher on its own connection, round robin over the iterators' subjects, without
      // pause (a window of PubAcks), until the end of the test.
      const js = jetstream(pub);
      const body = new Uint8Array(128);
      let n = 0;
      const publisher = (async () => {
        while (publishing) {
          const window: Promise<unknown>[] = [];
          for (let k = 0; k < 200 && publishing; k++) {
            window.push(js.publish(`load.${n++ % ITERATORS}`, body).catch(() => {}));
          }
          await Promise.all(window);
        }
      })();
      const js2 = jetstream(nc);
      const its: { drain(): Promise<void>; closed(): Promise<unknown> }[] = [];
      const loops: Promise<void>[] = [];
      let received = 0;
      for (let i = 0; i < ITERATORS; i++) {
        const it = await consume(await js2.consumers.get("LOAD", `d${i}`), { max_messages: 10 });
        its.push(it);
        loops.push(
          (async () => {
            for await (const m of it) {
              received++;
              m.ack();
            }
          })(),
        );
      }
      // Under way: every iterator has had messages, and they keep coming.
      await until(() => received >= ITERATORS * 20, 30_000, "messages flowing to every iterator");
      await within(Promise.all(its.map((it) => it.drain())), 10_000, "drain() of all");
      await within(Promise.all(loops), 10_000, "every loop ended");
      await within(Promise.all(its.map((it) => it.closed())), 10_000, "closed() of all");
      publishing = false;
      await publisher;
      await nc.flush();
      // The server may still be routing what it decided before the UNSUBs: give it a moment,
      // then count what it considers delivered and not acked.
      await new Promise((r) => setTimeout(r, 1_000));
      let unacked = 0;
      for (let i = 0; i < ITERATORS; i++) {
        unacked += (await jsm.consumers.info("LOAD", `d${i}`)).num_ack_pending;
      }
      expect(unacked, "messages the iterators were sent and never handed out").toBe(0);
    } finally {
      publishing = false;
      await pub.close();
      await nc.close();
    }
  }, 90_000);
});
