/**
 * When acks leave the process (src/acks.ts, docs/design.md "Acks"), against a real nats-server:
 * the acks of one turn go out in one socket write, and the iterator sends what is queued before
 * the code after the loop runs, so a `nc.close()` right after the loop loses none.
 */
import { jetstream } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/nats-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { consume } from "../../src/index.js";
import { consumerInfo, NatsServer } from "../harness/index.js";
import { freshConsumer, publishN, until, v2, v3, v3Consumer, within } from "./fixture.js";

let server: NatsServer;

beforeAll(async () => {
  server = await NatsServer.start();
});
afterAll(async () => {
  await server?.dispose();
});

/** Counts the socket writes of a nats.js connection (its transport's socket, reached inside). */
function countWrites(nc: unknown): { readonly writes: number; stop(): void } {
  // biome-ignore lint/suspicious/noExplicitAny: a test probe into nats.js's transport
  const socket = (nc as any).protocol.transport.socket as {
    write: (...args: unknown[]) => boolean;
  };
  const original = socket.write;
  let writes = 0;
  socket.write = function (this: unknown, ...args: unknown[]) {
    writes++;
    return original.apply(this, args);
  };
  return {
    get writes() {
      return writes;
    },
    stop() {
      socket.write = original;
    },
  };
}

/** Everything delivered is acked: nothing waits for an ack, the ack floor is at `n`. */
async function allAcked(stream: string, consumer: string, n: number): Promise<void> {
  await until(
    async () => {
      const ci = await consumerInfo(server.url, stream, consumer);
      return ci.num_ack_pending === 0 && ci.ack_floor.stream_seq === n;
    },
    5000,
    `${n} messages acked`,
  );
}

describe("acks leave together", () => {
  it("a loop acking 2,000 buffered messages writes to the socket far fewer than 2,000 times", async () => {
    const nc = await v3(server);
    try {
      const { stream, consumer, subject } = await freshConsumer(server, {
        max_ack_pending: 10_000,
      });
      await publishN(server.url, subject, 2000);
      const messages = await consume(await v3Consumer(nc, stream, consumer), {
        max_messages: 1000,
      });
      const probe = countWrites(nc);
      let n = 0;
      for await (const m of messages) {
        m.ack();
        if (++n === 2000) break;
      }
      await nc.flush();
      probe.stop();
      await allAcked(stream, consumer, 2000);
      // One write per ack would be 2,000 (plus pulls and the flush). A turn's acks share a
      // write; turns are as many as the socket reads, a few dozen here.
      expect(probe.writes).toBeLessThan(2000 / 4);
    } finally {
      await nc.close();
    }
  });
});

describe("acks made in the turn the loop ends are sent before the code after the loop runs", () => {
  it.each(["v3", "v2"])(
    "%s: drain() at message 10 of a full buffer; the loop acks the rest and nc.close() follows it at once",
    async (flavor) => {
      const { stream, consumer, subject } = await freshConsumer(server);
      await publishN(server.url, subject, 300);
      const nc = flavor === "v3" ? await v3(server) : await v2(server);
      const c =
        flavor === "v3"
          ? await jetstream(nc as NatsConnection).consumers.get(stream, consumer)
          : await (nc as Awaited<ReturnType<typeof v2>>)
              .jetstream()
              .consumers.get(stream, consumer);
      const messages = await consume(c, { max_messages: 100 });
      await until(() => messages.getPending() === 100, 5000, "a full buffer");
      let handed = 0;
      for await (const m of messages) {
        m.ack();
        handed++;
        // Resumes in the turn the fence ends; the rest of the buffer and the end are handed
        // out in that same turn, so their acks are still queued when the loop is left.
        if (handed === 10) await messages.drain();
      }
      const closing = nc.close(); // no await between the loop and the close
      await within(closing, 5000, "nc.close()");
      expect(handed).toBeGreaterThan(10);
      await allAcked(stream, consumer, handed);
    },
  );
});

describe("an ack followed at once by nc.close() in the loop body", () => {
  it("v3: the ack is sent (nats.js v3's close() yields before it refuses publishes)", async () => {
    const { stream, consumer, subject } = await freshConsumer(server);
    await publishN(server.url, subject, 5);
    const nc = await v3(server);
    const messages = await consume(await v3Consumer(nc, stream, consumer));
    for await (const m of messages) {
      m.ack();
      await nc.close();
    }
    await within(messages.closed(), 5000, "closed()");
    const ci = await consumerInfo(server.url, stream, consumer);
    expect(ci.ack_floor.stream_seq).toBe(1);
  });

  it("v3: also an ack made in a timer, nc.close() right after it in the same callback (the iterator publishes its queue when close() closes its subscription)", async () => {
    const { stream, consumer, subject } = await freshConsumer(server);
    await publishN(server.url, subject, 5);
    const nc = await v3(server);
    const messages = await consume(await v3Consumer(nc, stream, consumer));
    const m = await within(messages.next(), 5000, "a message");
    let closing: Promise<void> | undefined;
    await new Promise<void>((resolve) =>
      setTimeout(() => {
        m.ack();
        closing = nc.close(); // the same synchronous block: no microtask ran since the ack
        resolve();
      }, 0),
    );
    await within(closing!, 5000, "nc.close()");
    await within(messages.closed(), 5000, "closed()");
    const ci = await consumerInfo(server.url, stream, consumer);
    expect(ci.ack_floor.stream_seq).toBe(1);
  });

  it("v2: the ack is not sent (v2's close() refuses publishes at once), and the message is redelivered after ack_wait, not lost", async () => {
    const { stream, consumer, subject } = await freshConsumer(server, {
      ack_wait: 1_000_000_000, // 1 s
    });
    await publishN(server.url, subject, 5);
    const nc = await v2(server);
    const messages = await consume(await nc.jetstream().consumers.get(stream, consumer));
    let first = 0;
    for await (const m of messages) {
      first = m.seq;
      m.ack();
      await nc.close();
    }
    expect(first).toBe(1);
    await within(messages.closed(), 5000, "closed()");
    const ci = await consumerInfo(server.url, stream, consumer);
    expect(ci.ack_floor.stream_seq).toBe(0);
    // A new connection gets it again once ack_wait has passed.
    const again = await v3(server);
    try {
      const next = await consume(await v3Consumer(again, stream, consumer), { max_messages: 1 });
      const m = await within(next.next(), 5000, "redelivery");
      expect(m.seq).toBe(1);
      expect(m.redelivered).toBe(true);
      m.ack();
      await next.close();
    } finally {
      await again.close();
    }
  });
});
