/**
 * Parity with nats.js where users can observe it, against a real nats-server: the same message
 * consumed through nats.js's own `consume()` and through ours, v3 (`@nats-io/jetstream` 3.4) and
 * v2 (`nats` 2.29), and what each shows: `JsMsg.info` and the other members, the notifications
 * `status()` yields, and the errors. What still differs is listed in docs/migration.md, "Parity".
 */
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { headers } from "@nats-io/nats-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  ConsumerDeletedError,
  ConsumerNotFoundError,
  consume,
  pullMessages,
  StreamNotFoundError,
} from "../../src/index.js";
import { createConsumer, createStream, jsmOn, NatsServer } from "../harness/index.js";
import { until, v2, v3, within } from "./fixture.js";

let server: NatsServer;
let counter = 0;

beforeAll(async () => {
  server = await NatsServer.start();
});
afterAll(async () => {
  await server?.dispose();
});

/** A stream with one JSON message carrying a header, and two identical consumers "a" and "b". */
async function oneMessageTwoConsumers(): Promise<{ stream: string }> {
  const stream = `P${++counter}_${process.pid}`;
  await createStream(server.url, stream);
  for (const name of ["a", "b"]) await createConsumer(server.url, stream, name);
  const nc = await v3(server);
  try {
    const h = headers();
    h.set("X-Parity", "yes");
    await jetstream(nc).publish(`${stream}.x`, JSON.stringify({ n: 1 }), { headers: h });
  } finally {
    await nc.close();
  }
  return { stream };
}

/** What a user can read from a JsMsg, with the consumer name (the only thing that differs) blanked. */
interface MsgLikeForSnapshot {
  info: object;
  seq: number;
  redelivered: boolean;
  subject: string;
  data: Uint8Array;
  headers?: { get(k: string): string } | undefined;
  string(): string;
  json<T>(): T;
  time?: Date;
  timestamp?: string;
  timestampNanos?: bigint;
}
function snapshot(m: MsgLikeForSnapshot): Record<string, unknown> {
  const info = { ...(m.info as Record<string, unknown>), consumer: "<consumer>" };
  return {
    info,
    keys: Object.keys(info),
    json: JSON.stringify(info),
    seq: m.seq,
    redelivered: m.redelivered,
    subject: m.subject,
    data: Array.from(m.data),
    header: m.headers?.get("X-Parity"),
    string: m.string(),
    parsed: m.json(),
    time: m.time?.toISOString(),
    timestamp: m.timestamp,
    timestampNanos: m.timestampNanos?.toString(),
  };
}

/** Two deliveries of the one message (the first NAKed), snapshotted, from an async iterable. */
async function twoDeliveries(
  it: AsyncIterable<MsgLikeForSnapshot & { nak(): void; ack(): void }>,
): Promise<Record<string, unknown>[]> {
  const out: Record<string, unknown>[] = [];
  for await (const m of it) {
    out.push(snapshot(m));
    if (out.length === 1) m.nak();
    else {
      m.ack();
      break;
    }
  }
  return out;
}

/** The members of nats.js 3.4.0's `JsMsg` type. */
const V3_MEMBERS = [
  "redelivered",
  "info",
  "seq",
  "headers",
  "data",
  "subject",
  "sid",
  "time",
  "timestamp",
  "timestampNanos",
  "ack",
  "nak",
  "working",
  "next",
  "term",
  "ackAck",
  "json",
  "string",
  "reply",
];

describe("JsMsg: the same message through nats.js and through us", () => {
  it("v3: info (first delivery and a redelivery) and every other member read the same", async () => {
    const { stream } = await oneMessageTwoConsumers();
    const nc = await v3(server);
    try {
      const js = jetstream(nc);
      const theirs = await js.consumers.get(stream, "a");
      const theirMsgs = await theirs.consume({ max_messages: 1 });
      const expected = await within(twoDeliveries(theirMsgs), 10_000, "nats.js deliveries");
      theirMsgs.stop();
      const ours = await consume(await js.consumers.get(stream, "b"), { max_messages: 1 });
      const seen = await within(twoDeliveries(ours), 10_000, "our deliveries");
      await ours.close();
      expect(seen).toEqual(expected);
      expect(expected[0]).toMatchObject({
        info: { deliveryCount: 1, redelivered: false, account_hash: "" },
        header: "yes",
      });
      expect(expected[1]).toMatchObject({ info: { deliveryCount: 2, redelivered: true } });
      expect(expected[0]?.keys).not.toContain("redeliveryCount");
    } finally {
      await nc.close();
    }
  });

  it("v2: info (redeliveryCount 1 on the first delivery, as nats 2.29) and members read the same", async () => {
    const { stream } = await oneMessageTwoConsumers();
    const nc = await v2(server);
    try {
      const js = nc.jetstream();
      const theirs = await js.consumers.get(stream, "a");
      const theirMsgs = await theirs.consume({ max_messages: 1 });
      const expected = await within(
        twoDeliveries(theirMsgs as unknown as AsyncIterable<MsgLikeForSnapshot & JsMsgAcks>),
        10_000,
        "nats.js deliveries",
      );
      theirMsgs.stop();
      const ours = await consume(await js.consumers.get(stream, "b"), { max_messages: 1 });
      const seen = await within(
        twoDeliveries(ours as unknown as AsyncIterable<MsgLikeForSnapshot & JsMsgAcks>),
        10_000,
        "our deliveries",
      );
      await ours.close();
      // v2 has no time, timestamp or timestampNanos; ours has them (extra members)
      const v2Only = (s: Record<string, unknown>) => ({
        ...s,
        time: undefined,
        timestamp: undefined,
        timestampNanos: undefined,
      });
      expect(seen.map(v2Only)).toEqual(expected.map(v2Only));
      expect(expected[0]).toMatchObject({
        info: { deliveryCount: 1, redeliveryCount: 1, redelivered: false },
      });
      expect(expected[1]).toMatchObject({
        info: { deliveryCount: 2, redeliveryCount: 2, redelivered: true },
      });
    } finally {
      await nc.close();
    }
  });

  it("ours has every member of nats.js 3.4's JsMsg", async () => {
    const { stream } = await oneMessageTwoConsumers();
    const nc = await v3(server);
    try {
      const ours = await consume(await jetstream(nc).consumers.get(stream, "b"));
      const m = await ours.next({ timeout: 5000 });
      const missing = V3_MEMBERS.filter((k) => !(k in m));
      expect(missing).toEqual([]);
      m.ack();
      await ours.close();
    } finally {
      await nc.close();
    }
  });
});

type JsMsgAcks = { nak(): void; ack(): void };

/** Collects an async iterable of notifications in the background until `stop()`. */
function collect<T>(it: AsyncIterable<T>): { seen: T[] } {
  const c = { seen: [] as T[] };
  void (async () => {
    for await (const n of it) c.seen.push(n);
  })();
  return c;
}

/**
 * Options that make an empty stream's pull end with a 408 in about a second. A fresh object for
 * each call: nats.js's consume() writes its defaults into the object it is given (e.g.
 * `threshold_bytes: 1` without `max_bytes`, which ours then rejects).
 */
const SHORT = () => ({ max_messages: 10, expires: 1000, idle_heartbeat: 500 });

describe("notifications: what nats.js emits, where a user can wait for it", () => {
  it("v3: status() right after consume() sees the first next, then discard + debug 408 as nats.js", async () => {
    const stream = `N${++counter}_${process.pid}`;
    await createStream(server.url, stream);
    for (const name of ["a", "b"]) await createConsumer(server.url, stream, name);
    const nc = await v3(server);
    try {
      const js = jetstream(nc);
      const theirs = await (await js.consumers.get(stream, "a")).consume(SHORT());
      const theirNotes = collect(theirs.status());
      void (async () => {
        for await (const _ of theirs) void _;
      })();
      const ours = await consume(await js.consumers.get(stream, "b"), SHORT());
      const ourNotes = collect(ours.status());
      const has408 = (seen: { type: string; code?: number }[]) =>
        seen.some((n) => n.type === "debug" && n.code === 408);
      await until(() => has408(theirNotes.seen) && has408(ourNotes.seen), 5000, "two 408s");

      theirs.stop();
      await ours.close();
      const first = <T extends { type: string }>(seen: T[], type: string) =>
        seen.find((n) => n.type === type);
      expect(ourNotes.seen[0]).toEqual(theirNotes.seen[0]); // the first next, same options
      expect(ourNotes.seen[0]).toEqual({
        type: "next",
        options: { batch: 10, max_bytes: 0, idle_heartbeat: 500e6, expires: 1000e6 },
      });
      expect(first(ourNotes.seen, "discard")).toEqual(first(theirNotes.seen, "discard"));
      const debug408 = (seen: { type: string; code?: number }[]) =>
        seen.find((n) => n.type === "debug" && n.code === 408);
      expect(debug408(ourNotes.seen)).toEqual({
        type: "debug",
        code: 408,
        description: "request timeout",
      });
      expect(debug408(ourNotes.seen)).toEqual(debug408(theirNotes.seen));
      // the whole first request's life, in nats.js's order: next, heartbeat (at 500 ms), then
      // at 1000 ms the 408 as discard followed by debug
      expect(ourNotes.seen.slice(0, 4)).toEqual(theirNotes.seen.slice(0, 4));
      expect(ourNotes.seen.slice(0, 4).map((n) => n.type)).toEqual([
        "next",
        "heartbeat",
        "discard",
        "debug",
      ]);
    } finally {
      await nc.close();
    }
  });

  it("v2: await status() right after consume() sees the first next; a 408 is discard only, no heartbeat debug", async () => {
    const stream = `N${++counter}_${process.pid}`;
    await createStream(server.url, stream);
    for (const name of ["a", "b"]) await createConsumer(server.url, stream, name);
    const nc = await v2(server);
    try {
      const js = nc.jetstream();
      const theirs = await (await js.consumers.get(stream, "a")).consume(SHORT());
      const theirNotes = collect(await theirs.status());
      void (async () => {
        for await (const _ of theirs) void _;
      })();
      const ours = await consume(await js.consumers.get(stream, "b"), SHORT());
      const ourNotes = collect(await ours.status());
      const hasDiscard = (seen: { type: string }[]) => seen.some((n) => n.type === "discard");
      await until(
        () => hasDiscard(theirNotes.seen) && hasDiscard(ourNotes.seen),
        5000,
        "two discards",
      );
      // heartbeats come every 500 ms: wait long enough to have had some
      await new Promise((r) => setTimeout(r, 1200));
      theirs.stop();
      await ours.close();
      expect(ourNotes.seen[0]).toEqual(theirNotes.seen[0]);
      expect(ourNotes.seen[0]).toEqual({
        type: "next",
        data: { batch: 10, max_bytes: 0, idle_heartbeat: 500e6, expires: 1000e6 },
      });
      const first = (seen: { type: string }[], type: string) => seen.find((n) => n.type === type);
      expect(first(ourNotes.seen, "discard")).toEqual(first(theirNotes.seen, "discard"));
      const types = (seen: { type: string }[]) => [...new Set(seen.map((n) => n.type))].sort();
      expect(types(ourNotes.seen)).toEqual(types(theirNotes.seen));
      expect(types(ourNotes.seen)).toEqual(["discard", "next"]);
    } finally {
      await nc.close();
    }
  });
});

describe("errors: what nats.js gives for the same cause", () => {
  it("consumer and stream not found: v3's name, message, status and apiError(); v2's message and api_error", async () => {
    const stream = `E${++counter}_${process.pid}`;
    await createStream(server.url, stream);
    const nc = await v3(server);
    const nc2 = await v2(server);
    try {
      const jsm = await jetstreamManager(nc);
      const jsm2 = await nc2.jetstreamManager();
      for (const [s, c, Ours] of [
        [stream, "missing", ConsumerNotFoundError],
        [`${stream}_missing`, "c", StreamNotFoundError],
      ] as const) {
        const theirs = (await jsm.consumers.info(s, c).catch((e: unknown) => e)) as Error & {
          status: number;
          apiError(): unknown;
        };
        const theirs2 = (await jsm2.consumers.info(s, c).catch((e: unknown) => e)) as Error & {
          api_error: unknown;
        };
        const messages = pullMessages(nc, s, c, { abort_on_missing_resource: true });
        let err: unknown;
        try {
          for await (const m of messages) m.ack();
        } catch (e) {
          err = e;
        }
        expect(err).toBeInstanceOf(Ours);
        const ours = err as ConsumerNotFoundError;
        expect(ours.name).toBe(theirs.name);
        expect(ours.message).toBe(theirs.message);
        expect(ours.status).toBe(theirs.status);
        expect(ours.apiError()).toEqual(theirs.apiError());
        expect(ours.message).toBe(theirs2.message);
        expect(ours.api_error).toEqual(theirs2.api_error);
      }
    } finally {
      await nc.close();
      await nc2.close();
    }
  });

  it("consumer deleted with abort_on_missing_resource: nats.js's message and status, v3 and v2", async () => {
    const stream = `E${++counter}_${process.pid}`;
    await createStream(server.url, stream);
    for (const name of ["a", "b", "c"]) await createConsumer(server.url, stream, name);
    const nc = await v3(server);
    const nc2 = await v2(server);
    try {
      const opts = () => ({ abort_on_missing_resource: true, expires: 5000 });
      const js = jetstream(nc);
      const theirs = await (await js.consumers.get(stream, "a")).consume(opts());
      const theirs2 = await (await nc2.jetstream().consumers.get(stream, "b")).consume(opts());
      const ours = await consume(await js.consumers.get(stream, "c"), opts());
      const ended = (it: AsyncIterable<unknown>) =>
        (async () => {
          try {
            for await (const _ of it) void _;
          } catch (e) {
            return e as Error & { code: unknown; status?: number };
          }
          return undefined;
        })();
      const [t3, t2, o] = [ended(theirs), ended(theirs2), ended(ours)];
      // every iterator has its pull request open before the consumers go
      await new Promise((r) => setTimeout(r, 300));
      await jsmOn(server.url, async (jsm) => {
        for (const name of ["a", "b", "c"]) await jsm.consumers.delete(stream, name);
      });
      const [e3, e2, e] = await within(Promise.all([t3, t2, o]), 10_000, "three ends");
      expect(e).toBeInstanceOf(ConsumerDeletedError);
      expect(e3?.message).toBe("consumer deleted");
      expect(e2?.message).toBe("consumer deleted");
      expect(e?.message).toBe(e3?.message);
      expect(e?.status).toBe(e3?.code); // v3 has the status in code (409)
      expect(String(e?.status)).toBe(e2?.code); // v2: "409"
      expect(e3?.name).toBe("JetStreamStatusError");
      expect(e?.name).toBe("ConsumerDeletedError"); // ours, stable (a documented difference)
    } finally {
      await nc.close();
      await nc2.close();
    }
  });
});
