/**
 * The integration suite's core scenarios, run against one cell of the nats.js version matrix:
 * the connection and the consumer objects come from that cell's nats.js release, the stream,
 * the consumers and the publishing from the harness. Where acks are at stake, a scenario asserts
 * what the server shows at the end (nothing pending, nothing ack-pending), not only what the loop
 * saw.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { consume, fetchMessages, type JsMsg, type Messages, nextMessage } from "../../src/index.js";
import { consumerInfo, createConsumer, jsmOn, NatsServer } from "../harness/index.js";
import { freshConsumer, publishN, until, within } from "../integration/fixture.js";
import type { Cell, Conn } from "./cells.js";

/** Messages typed with the library's own JsMsg (what they are at run time, in every cell). */
type Iter = Messages<JsMsg, unknown>;
const asIter = (m: unknown): Iter => m as Iter;

/** What the cell's nats.js `consumer.next()` resolves (its own JsMsg). */
interface OwnMsg {
  info: Record<string, unknown>;
  seq: number;
  ack(): void;
}

async function settled(server: NatsServer, stream: string, consumer: string): Promise<void> {
  await until(
    async () => {
      const ci = await consumerInfo(server.url, stream, consumer);
      return ci.num_pending === 0 && ci.num_ack_pending === 0;
    },
    10_000,
    `${stream}/${consumer}: nothing pending, nothing ack-pending`,
  );
}

/** Releases older than 2.29.0 have no `deliveryCount` in `info` (only `redeliveryCount`). */
function extraInfoKeys(cell: Cell): string[] {
  if (cell.generation === "v3") return [];
  const [maj, min] = cell.version.split(".").map(Number) as [number, number];
  return maj === 2 && min < 29 ? ["deliveryCount"] : [];
}

export function matrixScenarios(cell: Cell): void {
  describe(`nats.js matrix: ${cell.name}`, () => {
    let server: NatsServer;
    const conns: Conn[] = [];
    const connect = async (opts?: { reconnecting?: boolean }, on = server) => {
      const nc = await cell.connect(on.url, opts);
      conns.push(nc);
      return nc;
    };

    beforeAll(async () => {
      server = await NatsServer.start();
    });
    afterAll(async () => {
      await Promise.all(conns.map((nc) => (nc.isClosed() ? undefined : nc.close())));
      await server?.dispose();
    });

    it("consume() with acks to the end, then drain(): every message once, nothing pending or ack-pending", async () => {
      const nc = await connect();
      const { stream, consumer, subject } = await freshConsumer(server);
      const total = 300;
      await publishN(server.url, subject, total);
      const messages = asIter(
        await consume(await cell.durable(nc, stream, consumer), { max_messages: 50 }),
      );
      const seen = new Set<number>();
      for await (const m of messages) {
        expect(seen.has(m.seq)).toBe(false);
        seen.add(m.seq);
        m.ack();
        if (seen.size === total) await messages.drain();
      }
      expect(seen.size).toBe(total);
      await within(messages.closed(), 5000, "closed()");
      expect(messages.counters()).toMatchObject({ processed: total, naked: 0, dropped: 0 });
      await nc.flush();
      await settled(server, stream, consumer);
    });

    for (const how of ["close()", "break"] as const) {
      it(`${how} after one message NAKs the buffered ones: redelivered at once, not after ack_wait`, async () => {
        const nc = await connect();
        // ack_wait far beyond the deadlines below: only a NAK can bring the messages back in time
        const { stream, consumer, subject } = await freshConsumer(server, {
          ack_wait: 120_000_000_000,
        });
        await publishN(server.url, subject, 100);
        const c = await cell.durable(nc, stream, consumer);
        const messages = asIter(await consume(c, { max_messages: 100 }));
        await until(() => messages.getReceived() === 100, 5000, "100 buffered");
        // A second worker already waits, as when a replica takes over. (With no request waiting,
        // nats-server < 2.10.14 can hold the first NAKed message until ack_wait: docs/faults.md.)
        const again = asIter(await consume(c, { max_messages: 100 }));
        await until(
          async () => (await consumerInfo(server.url, stream, consumer)).num_waiting >= 1,
          5000,
          "the second worker's pull waiting",
        );
        for await (const m of messages) {
          m.ack();
          if (how === "close()") await messages.close();
          else break;
        }
        await within(messages.closed(), 5000, "closed()");
        expect(messages.counters()).toMatchObject({ received: 100, processed: 1, naked: 99 });
        const seqs: number[] = [];
        const counts = new Set<number>();
        const loop = (async () => {
          for await (const m of again) {
            seqs.push(m.seq);
            counts.add(m.info.deliveryCount);
            m.ack();
            if (seqs.length === 99) await again.drain();
          }
        })();
        try {
          await within(loop, 10_000, `the 99 NAKed messages (${seqs.length} so far)`);
        } finally {
          await again.close();
        }
        expect(seqs).toEqual(Array.from({ length: 99 }, (_, i) => i + 2));
        expect([...counts]).toEqual([2]);
        await nc.flush();
        await settled(server, stream, consumer);
      });
    }

    it("fetchMessages(): a batch ends by itself when complete, a short one at expires", async () => {
      const nc = await connect();
      const { stream, consumer, subject } = await freshConsumer(server);
      await publishN(server.url, subject, 8);
      const c = await cell.durable(nc, stream, consumer);
      const seqs: number[] = [];
      for (const [max_messages, want] of [
        [5, 5],
        [5, 3],
        [5, 0],
      ] as const) {
        const batch = asIter(await fetchMessages(c, { max_messages, expires: 1000 }));
        let n = 0;
        for await (const m of batch) {
          seqs.push(m.seq);
          m.ack();
          n++;
        }
        expect(n).toBe(want);
        await within(batch.closed(), 5000, "closed()");
      }
      expect(seqs).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
      await nc.flush();
      await settled(server, stream, consumer);
    });

    it("nextMessage(): one message per call, null when none came within expires", async () => {
      const nc = await connect();
      const { stream, consumer, subject } = await freshConsumer(server);
      await publishN(server.url, subject, 2);
      const c = await cell.durable(nc, stream, consumer);
      const got: (string | null)[] = [];
      for (let i = 0; i < 3; i++) {
        const m = (await nextMessage(c, { expires: 1000 })) as JsMsg | null;
        got.push(m ? `${m.seq}:${m.string()}` : null);
        m?.ack();
      }
      expect(got).toEqual(["1:0", "2:1", null]);
      await nc.flush();
      await settled(server, stream, consumer);
    });

    it("JsMsg.info has what this release's own consumer.next() gives, with the same values", async () => {
      const nc = await connect();
      const { stream, consumer, subject } = await freshConsumer(server);
      // a second durable consumer like the first: nats.js reads one, the library the other
      const other = "d";
      await createConsumer(server.url, stream, other);
      await publishN(server.url, subject, 1);
      const theirs = (await (
        (await cell.durable(nc, stream, consumer)) as unknown as {
          next(o: { expires: number }): Promise<OwnMsg | null>;
        }
      ).next({ expires: 2000 })) as OwnMsg;
      const ours = (await nextMessage(await cell.durable(nc, stream, other))) as JsMsg;
      theirs.ack();
      ours.ack();
      const own = { ...theirs.info, consumer: other };
      const mine = { ...ours.info } as Record<string, unknown>;
      // every field theirs has, with the same value
      expect(Object.fromEntries(Object.keys(own).map((k) => [k, mine[k]]))).toEqual(own);
      // and nothing more, but the documented extras of this release
      const extra = Object.keys(mine).filter((k) => !(k in own));
      expect(extra).toEqual(extraInfoKeys(cell));
      expect(ours.seq).toBe(theirs.seq);
    });

    it("an ordered consumer from opt_start_seq: every message once, in order, also across a deleted server consumer", async () => {
      const nc = await connect();
      // (the durable consumer made with the stream stays; the ordered one's are the others)
      const { stream, consumer, subject } = await freshConsumer(server);
      await publishN(server.url, subject, 20);
      const ordered = await cell.ordered(nc, stream, 6);
      // Deleted while no request is open, the server says nothing: the second missed heartbeat
      // finds it, so the interval is short.
      const messages = asIter(
        await consume(ordered, { max_messages: 5, expires: 4000, idle_heartbeat: 500 }),
      );
      const seqs: number[] = [];
      for await (const m of messages) {
        seqs.push(m.seq);
        if (m.seq === 15) {
          // the server consumer goes away mid-stream: the library re-creates it after seq 15
          await jsmOn(server.url, async (jsm) => {
            for await (const ci of jsm.consumers.list(stream)) {
              if (ci.name !== consumer) await jsm.consumers.delete(stream, ci.name);
            }
          });
          await publishN(server.url, subject, 5, { payload: (i) => `late ${i}` });
        }
        if (m.seq === 25) await messages.drain();
      }
      expect(seqs).toEqual(Array.from({ length: 20 }, (_, i) => i + 6));
      await within(messages.closed(), 5000, "closed()");
    });

    it("the server is SIGKILLed and restarted mid-consume: consumption resumes unaided, nothing the server acknowledged is lost", async () => {
      const own = await NatsServer.start();
      let nc: Conn | undefined;
      try {
        nc = await connect({ reconnecting: true }, own);
        // acks lost in the crash come back after 2 s, not 30 s
        const { stream, consumer, subject } = await freshConsumer(own, {
          ack_wait: 2_000_000_000,
        });
        await publishN(own.url, subject, 200);
        const messages = asIter(
          await consume(await cell.durable(nc, stream, consumer), {
            max_messages: 20,
            expires: 5000,
            idle_heartbeat: 1000,
          }),
        );
        const seen = new Set<string>();
        let restarted = false;
        const loop = (async () => {
          for await (const m of messages) {
            seen.add(m.string());
            m.ack();
            if (seen.size === 100 && !restarted) {
              // mid-backlog: 100 still in the stream, some buffered here, acks in flight
              await own.kill();
              await own.restart();
              restarted = true;
            }
          }
        })();
        await until(() => restarted, 20_000, "the restart after 100 messages");
        await publishN(own.url, subject, 200, { payload: (i) => String(200 + i) });
        await until(() => seen.size === 400, 30_000, "all 400 messages");
        await nc.flush();
        await settled(own, stream, consumer);
        await messages.drain();
        await within(loop, 5000, "the loop's end");
        const c = messages.counters();
        expect(c.received).toBe(c.processed + c.naked + c.dropped);
      } finally {
        // closed before its server goes for good, or it would go on trying to reconnect
        await nc?.close();
        await own.dispose();
      }
    }, 60_000);
  });
}
