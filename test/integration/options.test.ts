/**
 * Options against a real nats-server: every invalid option passed to `consume()` of a real
 * nats.js consumer rejects with `InvalidOptionError` and leaves no trace: no subscription is
 * created on the connection, nothing is published, and no pull request reaches the server
 * (observed from a second connection subscribed to `$JS.API.CONSUMER.MSG.NEXT.>`).
 */
import { type Consumer, jetstream } from "@nats-io/jetstream";
import type { NatsConnection, Subscription } from "@nats-io/nats-core";
import { connect } from "@nats-io/transport-node";
import { connect as connectV2, type NatsConnection as NatsConnectionV2 } from "nats";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type ConsumeOptions, consume, InvalidOptionError, isAbortError } from "../../src/index.js";
import { createConsumer, createStream, NatsServer } from "../harness/index.js";

const STREAM = "OPTS";
const CONSUMER = "c";
const PULL_SUBJECTS = "$JS.API.CONSUMER.MSG.NEXT.>";

/** nats.js keeps its subscriptions in `protocol.subscriptions` (v3 nats-core and v2 alike). */
interface SubscriptionsView {
  protocol: { subscriptions: { size(): number; sidCounter: number } };
  stats(): { outMsgs: number };
}

/** What a connection has done so far: live subscriptions, subscriptions ever made, messages sent. */
function footprint(nc: NatsConnection | NatsConnectionV2) {
  const v = nc as unknown as SubscriptionsView;
  return {
    subscriptions: v.protocol.subscriptions.size(),
    everSubscribed: v.protocol.subscriptions.sidCounter,
    published: v.stats().outMsgs,
  };
}

let server: NatsServer;
let nc: NatsConnection;
let observer: NatsConnection;
let pulls: { subject: string; body: string }[] = [];
let watch: Subscription;
let consumer: Consumer;

beforeAll(async () => {
  server = await NatsServer.start();
  await createStream(server.url, STREAM);
  await createConsumer(server.url, STREAM, CONSUMER);
  observer = await connect({ servers: server.url });
  watch = observer.subscribe(PULL_SUBJECTS, {
    callback: (_err, m) => {
      pulls.push({ subject: m.subject, body: m.string() });
    },
  });
  await observer.flush();
  nc = await connect({ servers: server.url });
  consumer = await jetstream(nc).consumers.get(STREAM, CONSUMER);
});

afterAll(async () => {
  watch?.unsubscribe();
  await observer?.close();
  await nc?.close();
  await server?.dispose();
});

/** Flushes the connection under test, then the observer: whatever was sent has been seen. */
async function settle(): Promise<void> {
  await nc.flush();
  await observer.flush();
}

const FN = () => {};

const cases: { what: string; opts: unknown; option: string }[] = [
  { what: "max_messages 0", opts: { max_messages: 0 }, option: "max_messages" },
  { what: "max_messages -1", opts: { max_messages: -1 }, option: "max_messages" },
  { what: "max_messages 1.5", opts: { max_messages: 1.5 }, option: "max_messages" },
  { what: 'max_messages "10"', opts: { max_messages: "10" }, option: "max_messages" },
  { what: "max_messages NaN", opts: { max_messages: Number.NaN }, option: "max_messages" },
  { what: "max_bytes -1", opts: { max_bytes: -1 }, option: "max_bytes" },
  { what: "expires 999", opts: { expires: 999 }, option: "expires" },
  { what: 'expires "x"', opts: { expires: "x" }, option: "expires" },
  { what: "idle_heartbeat 100", opts: { idle_heartbeat: 100 }, option: "idle_heartbeat" },
  {
    what: "idle_heartbeat >= expires",
    opts: { expires: 4_000, idle_heartbeat: 4_000 },
    option: "idle_heartbeat",
  },
  {
    what: "idle_heartbeat > expires / 2 (nats-server: 400 heartbeat value too large)",
    opts: { expires: 2_000, idle_heartbeat: 1_500 },
    option: "idle_heartbeat",
  },
  {
    what: "idle_heartbeat > 30000",
    opts: { expires: 120_000, idle_heartbeat: 30_001 },
    option: "idle_heartbeat",
  },
  {
    what: "threshold_messages >= max_messages",
    opts: { max_messages: 10, threshold_messages: 10 },
    option: "threshold_messages",
  },
  {
    what: "threshold_bytes without max_bytes",
    opts: { threshold_bytes: 100 },
    option: "threshold_bytes",
  },
  {
    what: "threshold_bytes >= max_bytes",
    opts: { max_bytes: 1_000, threshold_bytes: 1_000 },
    option: "threshold_bytes",
  },
  { what: "callback not a function", opts: { callback: "x" }, option: "callback" },
  {
    what: "abort_on_missing_resource not boolean",
    opts: { abort_on_missing_resource: "yes" },
    option: "abort_on_missing_resource",
  },
  { what: "bind not boolean", opts: { bind: 1 }, option: "bind" },
  { what: "signal not an AbortSignal", opts: { signal: {} }, option: "signal" },
  { what: "signal a function", opts: { signal: FN }, option: "signal" },
  { what: "an unknown option", opts: { max_msgs: 10 }, option: "max_msgs" },
  { what: "options a string", opts: "x", option: "options" },
  { what: "options a number", opts: 42, option: "options" },
];

describe("a valid consume() is seen by the observer (the probes work)", () => {
  it("subscribes once and publishes a pull request that reaches the server", async () => {
    await settle();
    pulls = [];
    const before = footprint(nc);
    const messages = await consume(consumer, { max_messages: 3 });
    await settle();
    const during = footprint(nc);
    expect(during.subscriptions).toBe(before.subscriptions + 1);
    expect(during.everSubscribed).toBe(before.everSubscribed + 1);
    expect(during.published).toBeGreaterThan(before.published);
    expect(pulls).toHaveLength(1);
    expect(pulls[0]!.subject).toBe(`$JS.API.CONSUMER.MSG.NEXT.${STREAM}.${CONSUMER}`);
    expect(JSON.parse(pulls[0]!.body)).toMatchObject({ batch: 3 });
    await messages.close();
    await settle();
    expect(footprint(nc).subscriptions).toBe(before.subscriptions);
  });
});

describe("an invalid option to consume() of a real v3 consumer", () => {
  it.each(cases)("$what: InvalidOptionError, no subscription, no pull", async (c) => {
    await settle();
    pulls = [];
    const before = footprint(nc);
    const err = await consume(consumer, c.opts as ConsumeOptions).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(InvalidOptionError);
    expect(err).toBeInstanceOf(TypeError);
    expect((err as InvalidOptionError).code).toBe("JSITER_INVALID_OPTION");
    expect((err as InvalidOptionError).option).toBe(c.option);
    expect((err as InvalidOptionError).message).toContain(c.option);
    await settle();
    expect(footprint(nc)).toEqual(before);
    expect(pulls).toEqual([]);
    expect(nc.isClosed()).toBe(false);
  });
});

describe("nothing of a rejected consume() shows up later", () => {
  it("no late pull arrives and the server has no new waiting request", async () => {
    await settle();
    pulls = [];
    const waiting = (await consumer.info()).num_waiting;
    await settle();
    const before = footprint(nc);
    for (const c of cases) {
      await expect(consume(consumer, c.opts as ConsumeOptions)).rejects.toBeInstanceOf(
        InvalidOptionError,
      );
    }
    // Longer than any timer the library might have armed at once.
    await new Promise((r) => setTimeout(r, 300));
    await settle();
    expect(footprint(nc)).toEqual(before);
    expect(pulls).toEqual([]);
    // (consumer info is a request of its own: read it after the footprint.)
    expect((await consumer.info()).num_waiting).toBe(waiting);
  });
});

describe("other early rejections leave no trace either", () => {
  it("an already-aborted signal rejects an AbortError", async () => {
    await settle();
    pulls = [];
    const before = footprint(nc);
    const err = await consume(consumer, { signal: AbortSignal.abort() }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(isAbortError(err)).toBe(true);
    await settle();
    expect(footprint(nc)).toEqual(before);
    expect(pulls).toEqual([]);
  });

  it("an ordered consumer with bind rejects InvalidOptionError (it creates its own consumers)", async () => {
    const ordered = await jetstream(nc).consumers.get(STREAM);
    await settle();
    pulls = [];
    const before = footprint(nc);
    await expect(consume(ordered, { bind: true })).rejects.toBeInstanceOf(InvalidOptionError);
    await settle();
    expect(footprint(nc)).toEqual(before);
    expect(pulls).toEqual([]);
  });
});

describe("an invalid option to consume() of a real v2 (nats) consumer", () => {
  let nc2: NatsConnectionV2;
  beforeAll(async () => {
    nc2 = await connectV2({ servers: server.url });
  });
  afterAll(async () => {
    await nc2?.close();
  });

  it.each(cases)("$what: InvalidOptionError, no subscription, no pull", async (c) => {
    const consumer2 = await nc2.jetstream().consumers.get(STREAM, CONSUMER);
    await nc2.flush();
    await observer.flush();
    pulls = [];
    const before = footprint(nc2);
    await expect(consume(consumer2, c.opts as ConsumeOptions)).rejects.toSatisfy(
      (e: unknown) => e instanceof InvalidOptionError && e.option === c.option,
    );
    await nc2.flush();
    await observer.flush();
    expect(footprint(nc2)).toEqual(before);
    expect(pulls).toEqual([]);
  });
});
