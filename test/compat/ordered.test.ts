/**
 * nats.js v3's own ordered-consumer tests (jetstream/tests/consumers_ordered_test.ts), rewritten
 * for vitest and run against nats.js and against jetstream-iter (`wrapConsumer` of an ordered
 * consumer: `consume`, `fetch`, `next` are ours; `info`, `delete`, … stay nats.js's). Each test
 * keeps its source test's name.
 *
 * Several source tests steer nats.js's internal cursor (`orderedConsumerState.cursor`) to force
 * a re-creation, or read its `serial`. jetstream-iter keeps its own chain state, so for it the
 * same situation is made from outside: the server consumer in use is deleted.
 */
import {
  type ConsumerMessages,
  type ConsumerNotification,
  DeliverPolicy,
  type JetStreamManager,
  jetstream,
  type OrderedConsumerOptions,
} from "@nats-io/jetstream";
import { describe, expect } from "vitest";
import * as lib from "../../src/index.js";
import {
  drainAll,
  it,
  publish,
  rejectionOf,
  skipUnavailable,
  subscriptionCount,
  subscriptionsNow,
  uniqueName,
  until,
  useServer,
  within,
} from "./helpers.js";
import { impls, isOurs } from "./impls.js";

const { env, connectExtra } = useServer();

/** What nats.js's ordered PullConsumerImpl keeps internally (read by some source tests). */
interface OrderedInternals {
  serial: number;
  opts: { name_prefix: string };
  orderedConsumerState?: { cursor: { deliver_seq: number; stream_seq: number } };
  getConsumerOpts(): { opt_start_seq?: number; deliver_policy?: string };
}
const internals = (c: unknown) => c as OrderedInternals;

/** A stream `name` with subjects `name.*`. */
async function addStream(jsm: JetStreamManager, name = uniqueName("O")): Promise<string> {
  await jsm.streams.add({ name, subjects: [`${name}.*`] });
  return name;
}

/** Deletes every consumer of `stream` on the server: whichever one an ordered chain is using. */
async function deleteServerConsumers(jsm: JetStreamManager, stream: string): Promise<number> {
  const names: string[] = [];
  for await (const ci of jsm.consumers.list(stream)) names.push(ci.name);
  await Promise.all(names.map((n) => jsm.consumers.delete(stream, n)));
  return names.length;
}

async function serverConsumerCount(jsm: JetStreamManager, stream: string): Promise<number> {
  let n = 0;
  for await (const _ of jsm.consumers.list(stream)) n++;
  return n;
}

function countRecreates(iter: ConsumerMessages): { n: number; done: Promise<void> } {
  const r = { n: 0, done: Promise.resolve() };
  r.done = (async () => {
    for await (const s of iter.status()) if (s.type === "ordered_consumer_recreated") r.n++;
  })();
  return r;
}

describe.concurrent.each(impls)("$name", (impl) => {
  skipUnavailable(impl);

  /** `jetstream(nc).consumers.get(stream, opts?)` (an ordered consumer), wrapped by `impl`. */
  async function ordered(stream: string, opts?: Partial<OrderedConsumerOptions>) {
    return impl.wrap(await env().js.consumers.get(stream, opts));
  }

  /** Waits until some consumer of `stream` has a waiting pull request. */
  async function pullIsWaiting(stream: string): Promise<void> {
    await until(
      async () => {
        for await (const ci of env().jsm.consumers.list(stream))
          if (ci.num_waiting > 0) return true;
        return false;
      },
      5000,
      "a waiting pull request",
    );
  }

  it("ordered consumers - get", async () => {
    const { js, jsm } = env();
    await expect(js.consumers.get(uniqueName("missing"))).rejects.toThrow("stream not found");
    const stream = await addStream(jsm);
    await publish(js, `${stream}.x`, 1);
    const oc = await ordered(stream);
    const ci = await oc.info();
    expect(ci.name).toBe(`${internals(oc).opts.name_prefix}_${internals(oc).serial}`);
    expect(ci.num_pending).toBe(1);
  });

  it("ordered consumers - fetch", async () => {
    const { js, jsm } = env();
    const stream = await addStream(jsm);
    for (const s of ["a", "b", "c"]) await js.publish(`${stream}.${s}`);
    const oc = await ordered(stream);
    for (const [seq, s] of [
      [1, "a"],
      [2, "b"],
    ] as const) {
      const got = await within(drainAll(await oc.fetch({ max_messages: 1 })), 5000, "fetch");
      expect(got.map((m) => [m.seq, m.subject])).toEqual([[seq, `${stream}.${s}`]]);
    }
  });

  // Drives nats.js's internal cursor back after each first delivery so that every message but
  // the last is delivered twice through a re-creation; no public equivalent exists.
  it.skipIf(isOurs(impl))(
    "ordered consumers - consume reset (cursor rewound; nats.js internals only)",
    async () => {
      const { js, jsm } = env();
      const stream = await addStream(jsm);
      for (const s of ["a", "b", "c"]) await js.publish(`${stream}.${s}`);
      const oc = await ordered(stream);
      const seen = [0, 0, 0];
      let resolve!: () => void;
      const done = new Promise<void>((r) => {
        resolve = r;
      });
      const iter: ConsumerMessages = await oc.consume({
        max_messages: 1,
        callback: (m) => {
          const i = m.seq - 1;
          seen[i]!++;
          if (seen[i] === 1) {
            const cursor = internals(oc).orderedConsumerState!.cursor;
            cursor.deliver_seq--;
            cursor.stream_seq--;
          }
          if (m.info.pending === 0) {
            iter.stop();
            resolve();
          }
        },
      });
      await within(done, 10_000, "the last message");
      expect(seen).toEqual([2, 2, 1]);
      expect(internals(oc).serial).toBe(3);
    },
  );

  it("ordered consumers - consume", async () => {
    const { js, jsm } = env();
    const stream = await addStream(jsm);
    for (const s of ["a", "b", "c"]) await js.publish(`${stream}.${s}`);
    const oc = await ordered(stream);
    const iter = await oc.consume({ max_messages: 1 });
    const seqs: number[] = [];
    await within(
      (async () => {
        for await (const m of iter) {
          seqs.push(m.seq);
          if (m.info.pending === 0) break;
        }
      })(),
      5000,
      "the loop",
    );
    expect(seqs).toEqual([1, 2, 3]);
  });

  it.skip("ordered consumers - filters consume: filter_subjects needs nats-server 2.10 (2.9.10 here)", () => {});
  it.skip("ordered consumers - filters fetch: filter_subjects needs nats-server 2.10 (2.9.10 here)", () => {});

  for (const first of ["fetch", "consume"] as const) {
    it(`ordered consumers - ${first} reject consumer type change or concurrency`, async () => {
      const { jsm } = env();
      const stream = await addStream(jsm);
      const oc = await ordered(stream);
      const iter = first === "fetch" ? await oc.fetch() : await oc.consume({ expires: 3000 });
      const loop = drainAll(iter).catch(() => {});
      const again = rejectionOf(
        first === "fetch" ? oc.fetch() : oc.consume(),
        5000,
        `a second ${first}`,
      );
      const other = rejectionOf(
        first === "fetch" ? oc.consume() : oc.fetch(),
        5000,
        "the other kind",
      );
      if (isOurs(impl)) {
        // consume()/fetchMessages() doc (src/consume.ts): an ordered consumer already being
        // consumed is refused with InvalidConsumerError, whichever call comes second (one
        // consume(), fetch or next at a time, as in nats.js).
        expect(await again).toBeInstanceOf(lib.InvalidConsumerError);
        expect(await other).toBeInstanceOf(lib.InvalidConsumerError);
      } else {
        expect(((await again) as Error).message).toContain(
          `ordered consumer doesn't support concurrent ${first}`,
        );
        expect(((await other) as Error).message).toContain(
          first === "fetch"
            ? "ordered consumer initialized as fetch"
            : "ordered consumer already initialized as consume",
        );
      }
      iter.stop();
      await within(loop, 5000, "the first loop after stop()");
    });
  }

  /** A fetch of one, then (on a fresh ordered consumer) a consume: both start where `opts` say. */
  async function fetchThenConsume(
    stream: string,
    opts: Partial<OrderedConsumerOptions>,
    expected: { seq: number; subject: string },
    publishAfterStart?: () => Promise<void>,
  ): Promise<void> {
    // A fresh options object each time: nats.js's consumers.get() writes into the one it gets.
    let oc = await ordered(stream, { ...opts });
    const fetched = await oc.fetch({ max_messages: 1, expires: 2000 });
    await publishAfterStart?.();
    const got = await within(drainAll(fetched), 5000, "fetch");
    expect(got.map((m) => [m.info.streamSequence, m.subject])).toEqual([
      [expected.seq, expected.subject],
    ]);
    oc = await ordered(stream, { ...opts });
    const iter = await oc.consume({ max_messages: 1 });
    await publishAfterStart?.();
    const first = await within(
      (async () => {
        for await (const m of iter) return m;
      })(),
      5000,
      "consume",
    );
    expect([first?.info.streamSequence, first?.subject]).toEqual([
      expected.seq + (publishAfterStart ? 1 : 0),
      publishAfterStart ? expected.subject.replace(/c$/, "d") : expected.subject,
    ]);
  }

  it("ordered consumers - last per subject", async () => {
    const { js, jsm } = env();
    const stream = await addStream(jsm);
    await js.publish(`${stream}.a`);
    await js.publish(`${stream}.a`);
    await fetchThenConsume(
      stream,
      { deliver_policy: DeliverPolicy.LastPerSubject },
      { seq: 2, subject: `${stream}.a` },
    );
  });

  it("ordered consumers - start sequence", async () => {
    const { js, jsm } = env();
    const stream = await addStream(jsm);
    await js.publish(`${stream}.a`);
    await js.publish(`${stream}.b`);
    await fetchThenConsume(stream, { opt_start_seq: 2 }, { seq: 2, subject: `${stream}.b` });
  });

  it("ordered consumers - last", async () => {
    const { js, jsm } = env();
    const stream = await addStream(jsm);
    await js.publish(`${stream}.a`);
    await js.publish(`${stream}.b`);
    await fetchThenConsume(
      stream,
      { deliver_policy: DeliverPolicy.Last },
      { seq: 2, subject: `${stream}.b` },
    );
  });

  it("ordered consumers - new", async () => {
    const { js, jsm } = env();
    const stream = await addStream(jsm);
    await js.publish(`${stream}.a`);
    await js.publish(`${stream}.b`);
    // Only what is published after the consumer starts: test.c for the fetch, test.d for the
    // consume.
    let next = "c";
    await fetchThenConsume(
      stream,
      { deliver_policy: DeliverPolicy.New },
      { seq: 3, subject: `${stream}.c` },
      async () => {
        await js.publish(`${stream}.${next}`);
        next = "d";
      },
    );
  });

  /** The time of stream message `seq`, plus 1 ms: a start time after it and before the next. */
  async function justAfter(stream: string, seq: number): Promise<string> {
    const sm = await env().jsm.streams.getMessage(stream, { seq });
    if (!sm) throw new Error(`no message ${seq} in ${stream}`);
    return new Date(sm.time.getTime() + 1).toISOString();
  }

  it("ordered consumers - start time", async () => {
    const { js, jsm } = env();
    const stream = await addStream(jsm);
    await js.publish(`${stream}.a`);
    await js.publish(`${stream}.b`);
    // The source sleeps 500 ms and takes the clock; the stored time of message 2 is exact.
    const date = await justAfter(stream, 2);
    await until(async () => Date.now() > Date.parse(date), 1000, "the clock past the start");
    await js.publish(`${stream}.c`);
    await fetchThenConsume(
      stream,
      { deliver_policy: DeliverPolicy.StartTime, opt_start_time: date },
      { seq: 3, subject: `${stream}.c` },
    );
  });

  it("ordered consumers - start time reset", async () => {
    const { js, jsm } = env();
    const stream = await addStream(jsm);
    await js.publish(`${stream}.a`);
    await js.publish(`${stream}.b`);
    const date = await justAfter(stream, 2);
    await until(async () => Date.now() > Date.parse(date), 1000, "the clock past the start");
    const oc = await ordered(stream, {
      deliver_policy: DeliverPolicy.StartTime,
      opt_start_time: date,
    });
    await js.publish(`${stream}.c`);
    const iter = await oc.fetch({ max_messages: 1 });
    const got = await within(drainAll(iter), 5000, "fetch");
    expect(got.map((m) => [m.info.streamSequence, m.subject])).toEqual([[3, `${stream}.c`]]);
    // nats.js's consumer object would re-create from sequence 4 now (its internal options);
    // jetstream-iter keeps that state itself, so only the nats.js side can be read.
    if (!isOurs(impl)) {
      const opts = internals(oc).getConsumerOpts();
      expect(opts.opt_start_seq).toBe(4);
      expect(opts.deliver_policy).toBe(DeliverPolicy.StartSequence);
    }
  });

  it("ordered consumers - next", async () => {
    const { nc, js, jsm } = env();
    const stream = await addStream(jsm);
    const c = await ordered(stream);
    expect(await within(c.next({ expires: 1000 }), 5000, "next() on nothing")).toBeNull();
    await js.publish(`${stream}.x`, "hello");
    await js.publish(`${stream}.x`, "goodbye");
    await nc.flush();
    expect((await within(c.next({ expires: 1000 }), 5000, "next() 1"))?.seq).toBe(1);
    expect((await within(c.next({ expires: 1000 }), 5000, "next() 2"))?.seq).toBe(2);
  });

  it("ordered consumers - sub leaks next()", async () => {
    const { nc, jsm } = env();
    const stream = await addStream(jsm);
    const base = subscriptionCount(nc);
    const c = await ordered(stream);
    await within(c.next({ expires: 1000 }), 5000, "next()");
    expect(subscriptionCount(nc)).toBe(base);
  });

  it("ordered consumers - sub leaks fetch()", async () => {
    const { nc, jsm } = env();
    const stream = await addStream(jsm);
    const base = subscriptionCount(nc);
    const c = await ordered(stream);
    const iter = await c.fetch({ expires: 1000 });
    await within(drainAll(iter), 5000, "fetch");
    // docs/migration.md row 10: jetstream-iter's closed() is where every subscription is gone.
    if (isOurs(impl)) await within(iter.closed(), 5000, "closed()");
    expect(subscriptionCount(nc)).toBe(base);
  });

  it("ordered consumers - sub leaks consume()", async () => {
    const { nc, jsm } = env();
    const stream = await addStream(jsm);
    const base = subscriptionCount(nc);
    const c = await ordered(stream);
    const iter = await c.consume({ expires: 30000 });
    const done = drainAll(iter);
    await pullIsWaiting(stream);
    void iter.close();
    await within(done, 5000, "the loop after close()");
    if (isOurs(impl)) await within(iter.closed(), 5000, "closed()");
    expect(subscriptionCount(nc)).toBe(base);
  });

  it("ordered consumers - consume drain", async () => {
    const { nc, jsm } = env();
    const stream = await addStream(jsm);
    const c = await ordered(stream);
    const iter = await c.consume({ expires: 30000 });
    const done = drainAll(iter);
    await pullIsWaiting(stream);
    void nc.drain();
    await within(done, 1000, "the loop after nc.drain()");
  });

  it("ordered consumers - headers only", async () => {
    const { jsm } = env();
    const stream = await addStream(jsm);
    const oc = await ordered(stream, { headers_only: true });
    expect((await oc.info()).config.headers_only).toBe(true);
  });

  it("ordered consumers - max deliver", async () => {
    const { jsm } = env();
    const stream = await addStream(jsm);
    const oc = await ordered(stream);
    expect((await oc.info()).config.max_deliver).toBe(1);
  });

  it("ordered consumers - mem", async () => {
    const { jsm } = env();
    const stream = await addStream(jsm);
    const oc = await ordered(stream);
    expect((await oc.info()).config.mem_storage).toBe(true);
  });

  it("ordered consumers - inboxPrefix is respected", async () => {
    const { jsm } = env();
    const nc = await connectExtra({ inboxPrefix: "x" });
    const stream = await addStream(jsm);
    const before = subscriptionsNow(nc);
    const consumer = impl.wrap(await jetstream(nc).consumers.get(stream));
    const iter = await consumer.consume();
    const done = drainAll(iter);
    await nc.flush();
    // The source reads nats.js's internal `iter.sub`; here: the subscriptions it made.
    const made = [...subscriptionsNow(nc)].filter((s) => !before.has(s));
    expect(made.length).toBeGreaterThan(0);
    for (const s of made) expect(s.getSubject().startsWith("x.")).toBe(true);
    iter.stop();
    await within(done, 5000, "the loop after stop()");
  });

  it("ordered consumers - fetch deleted consumer", async () => {
    const { jsm } = env();
    const stream = await addStream(jsm);
    const c = await ordered(stream);
    const iter = await c.fetch({ expires: isOurs(impl) ? 1000 : 3000 });
    const exited = drainAll(iter).then(
      (msgs) => ({ msgs }),
      (error: unknown) => ({ error }),
    );
    await pullIsWaiting(stream);
    expect(await deleteServerConsumers(jsm, stream)).toBe(1);
    const r = await within(exited, 10_000, "the fetch");
    if (isOurs(impl)) {
      // docs/migration.md rows O5/O6 (and docs/guide.md, "Ordered consumers"): a deleted
      // ordered consumer is part of the chain's life: re-created on the 409, never an error. The
      // batch ends at expires with what it got (nothing was published).
      expect(r).toEqual({ msgs: [] });
    } else {
      expect("error" in r && (r.error as Error).message).toContain("consumer deleted");
    }
  });

  it("ordered consumers - next deleted consumer", async () => {
    const { jsm } = env();
    const stream = await addStream(jsm);
    const c = await ordered(stream);
    const exited = c.next({ expires: isOurs(impl) ? 1000 : 4000 }).then(
      (m) => ({ m }),
      (error: unknown) => ({ error }),
    );
    await pullIsWaiting(stream);
    expect(await deleteServerConsumers(jsm, stream)).toBe(1);
    const r = await within(exited, 10_000, "next()");
    if (isOurs(impl)) {
      // docs/migration.md rows O5/O6: the deleted ordered consumer is re-created, not an error;
      // nothing was published, so next() resolves null at expires.
      expect(r).toEqual({ m: null });
    } else {
      expect("error" in r && (r.error as Error).message).toContain("consumer deleted");
    }
  });

  it("ordered consumers - consume stream not found request abort", async () => {
    const { jsm } = env();
    const stream = await addStream(jsm);
    const c = await ordered(stream);
    await jsm.streams.delete(stream);
    const iter = await c.consume({ expires: 1000, abort_on_missing_resource: true });
    const err = await rejectionOf(drainAll(iter), 10_000, "the loop");
    if (isOurs(impl)) {
      expect(err).toBeInstanceOf(lib.StreamNotFoundError);
    } else {
      expect((err as Error).message).toContain("stream not found");
    }
  });

  it("ordered consumers - consume consumer deleted request abort", async () => {
    const { js, jsm } = env();
    const stream = await addStream(jsm);
    const c = await ordered(stream);
    const iter = await c.consume({ expires: 3000, abort_on_missing_resource: true });
    if (isOurs(impl)) {
      // docs/migration.md row O6: with abort_on_missing_resource only a missing stream ends an
      // ordered iterator; a deleted consumer is re-created (row O5: at once, on the 409) and
      // the loop goes on: the next message published arrives.
      const r = countRecreates(iter);
      const first = (async () => {
        for await (const m of iter) return m.seq;
      })();
      await pullIsWaiting(stream);
      expect(await deleteServerConsumers(jsm, stream)).toBe(1);
      await until(() => r.n > 0, 5000, "ordered_consumer_recreated");
      await js.publish(`${stream}.x`);
      expect(await within(first, 5000, "a message after the re-creation")).toBe(1);
      await within(iter.close(), 5000, "close()");
      return;
    }
    const done = rejectionOf(drainAll(iter), 10_000, "the loop");
    await pullIsWaiting(stream);
    expect(await deleteServerConsumers(jsm, stream)).toBe(1);
    expect(((await done) as Error).message).toContain("consumer deleted");
  });

  it("ordered consumers - bind is rejected", async () => {
    const { jsm } = env();
    const stream = await addStream(jsm);
    const c = await ordered(stream);
    const calls = [
      () => c.next({ bind: true }),
      () => c.fetch({ bind: true }),
      () => c.consume({ bind: true }),
    ];
    for (const call of calls) {
      const err = await rejectionOf((async () => call())(), 5000, "a call with bind");
      if (isOurs(impl)) {
        // consume() doc (src/consume.ts): InvalidOptionError for bind with an ordered consumer.
        expect(err).toBeInstanceOf(lib.InvalidOptionError);
      } else {
        expect((err as Error).message).toContain("'bind' is not supported");
      }
    }
  });

  it("ordered consumers - name prefix", async () => {
    const { js, jsm } = env();
    const stream = await addStream(jsm);
    const c = await ordered(stream, { name_prefix: "hello" });
    expect((await c.info(true)).name.startsWith("hello")).toBe(true);
    await expect(js.consumers.get(stream, { name_prefix: "" })).rejects.toThrow(
      "name_prefix name required",
    );
    await expect(js.consumers.get(stream, { name_prefix: "one.two" })).rejects.toThrow(
      "name_prefix name ('one.two') cannot contain '.'",
    );
  });

  it("ordered consumers - fetch reset", async () => {
    const { js, jsm } = env();
    const stream = await addStream(jsm);
    const subj = `${stream}.a`;
    await js.publish(subj, JSON.stringify(1));
    const c = await ordered(stream);
    let recreates = 0;
    const sequences: number[] = [];
    // The first batch of 10 gets 1 message and ends at expires (the source: 3 s).
    let iter = await c.fetch({ max_messages: 10, expires: 1_000 });
    let r = countRecreates(iter);
    for await (const m of iter) sequences.push(m.json<number>());
    await within(r.done, 5000, "status() of batch 1");
    recreates += r.n;
    for (let i = 2; i < 12; i++) await js.publish(subj, JSON.stringify(i));
    iter = await c.fetch({ max_messages: 10, expires: 1_000 });
    r = countRecreates(iter);
    await within(
      drainAll(iter, (m) => sequences.push(m.json<number>())),
      5000,
      "batch 2",
    );
    await within(r.done, 5000, "status() of batch 2");
    recreates += r.n;
    expect(recreates).toBe(0);
    expect(sequences).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
    if (!isOurs(impl)) expect(internals(c).serial).toBe(1);
  });

  it("ordered consumers - consume reset", async () => {
    // The source (the second test of this name) sets nats.js's internal cursor to make message
    // 2 look out of order; here the server consumer in use is deleted after message 1, for both
    // libraries: the chain must be re-created from sequence 2, with nothing lost or repeated.
    const { js, jsm } = env();
    const stream = await addStream(jsm);
    const subj = `${stream}.a`;
    await js.publish(subj, JSON.stringify(1));
    const c = await ordered(stream);
    const iter = await c.consume({ max_messages: 11, idle_heartbeat: 500 });
    const r = countRecreates(iter);
    const sequences: number[] = [];
    await within(
      (async () => {
        for await (const m of iter) {
          sequences.push(m.json<number>());
          if (m.seq === 1) {
            expect(await deleteServerConsumers(jsm, stream)).toBe(1);
            for (let i = 2; i < 20; i++) await js.publish(subj, JSON.stringify(i));
          }
          if (m.seq === 11) break;
        }
      })(),
      15_000,
      "messages 1 to 11",
    );
    await within(r.done, 5000, "status() ends with the iterator");
    expect(r.n).toBe(1);
    expect(sequences).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
    if (!isOurs(impl)) expect(internals(c).serial).toBe(2);
  });

  it("ordered consumers - next reset", async () => {
    const { js, jsm } = env();
    const stream = await addStream(jsm);
    await js.publish(`${stream}.a`, JSON.stringify(1));
    await js.publish(`${stream}.a`, JSON.stringify(2));
    const c = await ordered(stream);
    const m1 = await within(c.next({ expires: 1000 }), 5000, "next() 1");
    expect(m1?.json()).toBe(1);
    if (isOurs(impl)) {
      // No cursor to steer from outside: the server consumer is deleted instead; the next
      // next() re-creates the chain from sequence 2 (src/ordered.ts).
      await deleteServerConsumers(jsm, stream);
    } else {
      internals(c).orderedConsumerState!.cursor.deliver_seq = 100;
    }
    const m2 = await within(c.next({ expires: 1000 }), 5000, "next() 2");
    expect(m2?.json()).toBe(2);
    if (!isOurs(impl)) expect(internals(c).serial).toBe(2);
  });

  it("ordered consumers - no reset on next", async () => {
    const { nc, js, jsm } = env();
    const stream = await addStream(jsm);
    await js.publish(`${stream}.a`, JSON.stringify(1));
    await js.publish(`${stream}.a`, JSON.stringify(2));
    await nc.flush();
    const c = await ordered(stream);
    expect(await within(c.next(), 5000, "next() 1")).toBeTruthy();
    expect(await within(c.next(), 5000, "next() 2")).toBeTruthy();
    // No re-creation: one server consumer served both (nats.js: its serial is still 1).
    expect(await serverConsumerCount(jsm, stream)).toBe(1);
    if (!isOurs(impl)) expect(internals(c).serial).toBe(1);
  });

  it("ordered consumers - initial creation fails, consumer fails", async () => {
    const { jsm } = env();
    const stream = await addStream(jsm);
    const c = await ordered(stream);
    await jsm.streams.delete(stream);
    const iter = await c.consume({ abort_on_missing_resource: true, idle_heartbeat: 500 });
    const err = await rejectionOf(drainAll(iter), 10_000, "the loop");
    if (isOurs(impl)) {
      expect(err).toBeInstanceOf(lib.StreamNotFoundError);
    } else {
      expect((err as Error).message).toContain("stream not found");
    }
  });

  it("ordered consumers - stale reference recovers", async () => {
    const { js, jsm } = env();
    const stream = await addStream(jsm);
    await js.publish(`${stream}.a`, JSON.stringify(1));
    await js.publish(`${stream}.a`, JSON.stringify(2));
    const c = await ordered(stream);
    const m1 = await within(c.next({ expires: 1000 }), 5000, "next() 1");
    expect(m1?.json()).toBe(1);
    expect(await deleteServerConsumers(jsm, stream)).toBe(1);
    if (!isOurs(impl)) {
      // nats.js fails once on the stale consumer, then re-creates in line. The source expects
      // "no responders"; nats-server 2.9.10 sends no 503 for a missing consumer, and nats.js
      // 3.4.0 rejects "consumer not found" instead (checked).
      const err = await rejectionOf(c.next({ expires: 1000 }), 5000, "next() on the stale one");
      expect((err as Error).message).toMatch(/no responders|heartbeats missed|consumer not found/);
    }
    // jetstream-iter re-creates the chain at once when its consumer is gone (src/ordered.ts:
    // a lookup answered "not found" re-creates from the next stream sequence).
    const m2 = await within(c.next({ expires: 1000 }), 5000, "next() 2");
    expect(m2?.json()).toBe(2);
  });

  it("ordered consumers - consume stale reference recovers", async () => {
    const { js, jsm } = env();
    const stream = await addStream(jsm);
    await js.publish(`${stream}.a`, JSON.stringify(1));
    const c = await ordered(stream);
    // nats.js's get() creates the server consumer; delete it before anything is consumed.
    await c.info();
    await deleteServerConsumers(jsm, stream);
    const iter = await c.consume({ idle_heartbeat: 500, expires: 30_000 });
    const r = countRecreates(iter);
    let first: unknown;
    await within(
      (async () => {
        for await (const m of iter) {
          first = m.json<number>();
          break;
        }
      })(),
      10_000,
      "message 1",
    );
    await within(r.done, 5000, "status() ends with the iterator");
    expect(first).toBe(1);
    if (!isOurs(impl)) expect(internals(c).serial).toBe(2);
  });

  it("ordered consumer - deliver all policy", async () => {
    const { js, jsm } = env();
    const stream = await addStream(jsm);
    await expect(
      js.consumers.get(stream, { deliver_policy: DeliverPolicy.All }),
    ).resolves.toBeTruthy();
  });

  /**
   * The source expects `no_responders` (consume: notified; fetch, next: rejected). nats-server
   * 2.9.10 never answers a pull for a missing consumer with 503, so that part cannot hold on
   * this server (checked with nats.js 3.4.0). Kept: stream_not_found, and recovery once the
   * stream exists again.
   */
  it("ordered - consume stream not found and no responders", async () => {
    const { js, jsm } = env();
    const stream = await addStream(jsm);
    const c = await ordered(stream);
    await jsm.streams.delete(stream);
    const iter = await c.consume({ expires: 1_000 });
    const seen: ConsumerNotification[] = [];
    const snf = (async () => {
      for await (const s of iter.status()) {
        seen.push(s);
        if (s.type === "stream_not_found") return;
      }
    })();
    const first = new Promise<void>((resolve, reject) => {
      void (async () => {
        for await (const _ of iter) resolve();
      })().catch(reject);
    });
    await within(snf, 8000, "stream_not_found");
    await addStream(jsm, stream);
    await js.publish(`${stream}.m`);
    await within(first, 10_000, "a message once the stream exists again");
    await within(iter.close(), 5000, "close()");
  });

  // nats.js 3.4.0 fails these on nats-server 2.9.10 (checked): without the 503 the source
  // relies on, nothing marks its ordered consumer for re-creation, and the call after the
  // stream is back rejects "consumer not found". Skipped for nats.js, not run as it.fails:
  // each failure costs seconds of missed heartbeats.
  for (const call of ["fetch", "next"] as const) {
    it.skipIf(!isOurs(impl))(`ordered - ${call} stream not found and no responders`, async () => {
      const { js, jsm } = env();
      const stream = await addStream(jsm);
      const c = await ordered(stream);
      await jsm.streams.delete(stream);
      const attempt = async () =>
        call === "fetch"
          ? (await drainAll(await c.fetch({ expires: 1_000 })))[0]
          : c.next({ expires: 1_000 });
      const err = await rejectionOf(attempt(), 8000, call);
      if (isOurs(impl)) {
        expect(err).toBeInstanceOf(lib.StreamNotFoundError);
      } else {
        expect((err as Error).message).toMatch(/no responders|heartbeats missed|stream not found/);
      }
      await addStream(jsm, stream);
      await js.publish(`${stream}.m`);
      const m = await within(
        call === "fetch"
          ? (async () => (await drainAll(await c.fetch({ max_messages: 1, expires: 5_000 })))[0])()
          : c.next({ expires: 5_000 }),
        8000,
        `${call} once the stream exists again`,
      );
      expect(m).toBeTruthy();
    });
  }
});
