/**
 * What a full (or short) run measures, in order: repetition 1 of every family for every
 * contender, then repetition 2, … Within a scenario the contenders run one after the other
 * (never at the same time), each in a fresh process on a fresh consumer, their order rotated
 * each repetition so no contender always follows the same other one.
 */
import { AckPolicy, DeliverPolicy, type JetStreamManager } from "@nats-io/jetstream";
import { payloadLabel } from "./format.js";
import type { Options } from "./options.js";
import type { Contender, Job, PublishJob } from "./types.js";

/** One planned run: what to create on the server first, the job, what to remove afterwards. */
export interface Planned {
  rep: number;
  job: Job;
  describe: string;
  setup(jsm: JetStreamManager): Promise<void>;
  teardown(jsm: JetStreamManager): Promise<void>;
  /** Latency cells: the publisher, started once the consumer printed READY. */
  publisher?: PublishJob;
  /** Extra node flags for the child (e.g. --expose-gc). */
  nodeArgs?: string[];
  /** After the child, before teardown: what the server says it left un-acked. */
  unacked?(jsm: JetStreamManager): Promise<number>;
}

/** Stream names the runner creates and fills before the runs (main.ts). */
export const streamFor = (payload: number) => `P${payload}`;
export const LATENCY_STREAM = "LAT";
export const manyStream = (n: number) => `MANY${n}`;
/** The stream ordered replay and fetch drain: the 128 B one when it is there. */
export const replayPayload = (o: Options) => (o.payloads.includes(128) ? 128 : o.payloads[0]!);
export const messagesFor = (o: Options, payload: number) =>
  payload >= 16384 ? o.messages16k : o.messages;

const WINDOW = 100;

/** Runs `fn(k)` for k in 0..n-1, WINDOW at a time. */
async function windowed(n: number, fn: (k: number) => Promise<unknown>): Promise<void> {
  for (let k = 0; k < n; k += WINDOW) {
    const batch = [];
    for (let j = k; j < Math.min(n, k + WINDOW); j++) batch.push(fn(j));
    await Promise.all(batch);
  }
}

function oneConsumer(stream: string, config: Record<string, unknown>) {
  const name = config.durable_name as string;
  return {
    setup: async (jsm: JetStreamManager) => {
      await jsm.consumers.add(stream, config);
    },
    teardown: async (jsm: JetStreamManager) => {
      await jsm.consumers.delete(stream, name).catch(() => {});
    },
  };
}

const nothing = { setup: async () => {}, teardown: async () => {} };

export function plan(o: Options, url: string, serverPid: number | undefined): Planned[] {
  const out: Planned[] = [];
  let seq = 0;
  const name = () => `bench${++seq}`;
  const explicit = (durable: string) => ({
    durable_name: durable,
    ack_policy: AckPolicy.Explicit,
    deliver_policy: DeliverPolicy.All,
    max_ack_pending: o.maxAckPending,
  });
  for (let rep = 0; rep < o.reps; rep++) {
    // Rotate who goes first, so no contender always runs right after the same other one.
    const order = o.contenders.map((_, i) => o.contenders[(i + rep) % o.contenders.length]!);
    const js = order.filter((c) => c !== "core") as Exclude<Contender, "core">[];
    /** Families 2 and 3 compare with nats.js's current generation only. */
    const oursV3 = js.filter((c) => c === "ours" || c === "v3");
    for (const payload of o.skip.has("throughput") ? [] : o.payloads) {
      const stream = streamFor(payload);
      const messages = messagesFor(o, payload);
      if (order.includes("core")) {
        const consumer = name();
        const deliverSubject = `bench.push.${consumer}`;
        out.push({
          rep,
          job: {
            kind: "throughput",
            contender: "core",
            url,
            stream,
            consumer,
            messages,
            ack: false,
            payload,
            maxMessages: 0,
            deliverSubject,
            serverPid,
          },
          ...oneConsumer(stream, {
            durable_name: consumer,
            deliver_subject: deliverSubject,
            ack_policy: AckPolicy.None,
            deliver_policy: DeliverPolicy.All,
            flow_control: true,
            idle_heartbeat: 5_000_000_000,
          }),
          describe: `throughput ${payloadLabel(payload)} core`,
        });
      }
      for (const ack of o.acks) {
        for (const maxMessages of o.maxMessages) {
          for (const contender of js) {
            const consumer = name();
            out.push({
              rep,
              job: {
                kind: "throughput",
                contender,
                url,
                stream,
                consumer,
                messages,
                ack,
                payload,
                maxMessages,
                serverPid,
              },
              ...oneConsumer(
                stream,
                ack
                  ? explicit(consumer)
                  : {
                      durable_name: consumer,
                      ack_policy: AckPolicy.None,
                      deliver_policy: DeliverPolicy.All,
                    },
              ),
              describe: `throughput ${payloadLabel(payload)} acks ${ack ? "explicit" : "none"} max ${maxMessages} ${contender}`,
            });
          }
        }
      }
    }
    for (const mode of o.skip.has("drain") ? [] : (["idle", "buffer"] as const)) {
      for (const contender of js) {
        const consumer = name();
        const stream = mode === "idle" ? "IDLE" : streamFor(o.payloads[0]!);
        out.push({
          rep,
          job: {
            kind: "drain",
            contender,
            url,
            stream,
            consumer,
            mode,
            trials: o.trials,
            maxMessages: o.drainMaxMessages,
          },
          // No acks: a message that nats.js strands after stop() must not hold up later trials.
          ...oneConsumer(stream, {
            durable_name: consumer,
            ack_policy: AckPolicy.None,
            deliver_policy: DeliverPolicy.All,
          }),
          describe: `drain ${mode} ${contender}`,
        });
      }
    }
    const slowPayload = o.payloads.includes(1024) ? 1024 : o.payloads[0]!;
    for (const contender of o.skip.has("slow") ? [] : js) {
      const consumer = name();
      const stream = streamFor(slowPayload);
      out.push({
        rep,
        job: {
          kind: "slow",
          contender,
          url,
          stream,
          consumer,
          messages: o.slowMessages,
          maxMessages: o.slowMaxMessages,
          bodyMs: o.bodyMs,
        },
        ...oneConsumer(stream, explicit(consumer)),
        describe: `slow consumer ${contender}`,
      });
    }
    for (const rate of o.skip.has("latency") ? [] : o.latency.rates) {
      for (const contender of order)
        out.push(latencyCell(o, rep, name(), contender, rate, url, serverPid));
    }
    for (const n of o.skip.has("many") ? [] : o.many.counts) {
      for (const contender of oursV3)
        out.push(manyCell(o, rep, name(), contender, n, url, serverPid));
    }
    if (!o.skip.has("replay")) {
      const payload = replayPayload(o);
      const stream = streamFor(payload);
      const messages = messagesFor(o, payload);
      for (const maxMessages of o.replay.orderedMaxMessages) {
        for (const contender of oursV3) {
          out.push({
            rep,
            job: {
              kind: "replay",
              mode: "ordered",
              contender,
              url,
              stream,
              consumer: "",
              messages,
              payload,
              maxMessages,
              expires: 30_000,
              serverPid,
            },
            ...nothing,
            describe: `ordered replay ${payloadLabel(payload)} max ${maxMessages} ${contender}`,
          });
        }
      }
      for (const contender of oursV3) {
        const consumer = name();
        out.push({
          rep,
          job: {
            kind: "replay",
            mode: "fetch",
            contender,
            url,
            stream,
            consumer,
            messages,
            payload,
            maxMessages: o.replay.fetchBatch,
            expires: o.replay.fetchExpires,
            serverPid,
          },
          ...oneConsumer(stream, explicit(consumer)),
          describe: `fetch batches of ${o.replay.fetchBatch} ${payloadLabel(payload)} ${contender}`,
        });
      }
    }
  }
  return out;
}

function latencyCell(
  o: Options,
  rep: number,
  consumer: string,
  contender: Contender,
  rate: number,
  url: string,
  serverPid: number | undefined,
): Planned {
  const seconds = o.latency.seconds(rate);
  const messages = Math.round(rate * seconds);
  const stream = LATENCY_STREAM;
  const deliverSubject = contender === "core" ? `bench.push.${consumer}` : undefined;
  // Caught up: the consumer starts at the end of an empty stream and is waiting when the
  // publisher starts. The ceiling is a push consumer without acks, as in the throughput runs.
  const config =
    contender === "core"
      ? {
          durable_name: consumer,
          deliver_subject: deliverSubject,
          ack_policy: AckPolicy.None,
          deliver_policy: DeliverPolicy.New,
          flow_control: true,
          idle_heartbeat: 5_000_000_000,
        }
      : {
          durable_name: consumer,
          ack_policy: AckPolicy.Explicit,
          deliver_policy: DeliverPolicy.New,
          max_ack_pending: o.maxAckPending,
        };
  const c = oneConsumer(stream, config);
  return {
    rep,
    job: {
      kind: "latency",
      contender,
      url,
      stream,
      consumer,
      rate,
      messages,
      warmup: Math.round(rate * o.latency.warmupSeconds),
      payload: o.latency.payload,
      ack: contender !== "core",
      maxMessages: contender === "core" ? 0 : o.latency.maxMessages,
      ...(deliverSubject ? { deliverSubject } : {}),
      serverPid,
      deadlineMs: seconds * 1000 + 15_000,
    },
    publisher: {
      kind: "publish",
      url,
      subject: `${stream}.m`,
      rate,
      messages,
      payload: o.latency.payload,
    },
    setup: async (jsm) => {
      // Every cell starts on an empty stream (the store does not grow run after run).
      await jsm.streams.purge(stream);
      await c.setup(jsm);
    },
    teardown: c.teardown,
    describe: `latency ${rate.toLocaleString("en-US")} msg/s ${contender}`,
  };
}

function manyCell(
  o: Options,
  rep: number,
  prefix: string,
  contender: Contender,
  n: number,
  url: string,
  serverPid: number | undefined,
): Planned {
  const stream = manyStream(n);
  const durable = (k: number, kind: "idle" | "load") => ({
    durable_name: `${prefix}${kind === "idle" ? "i" : "l"}${k}`,
    ack_policy: AckPolicy.Explicit,
    deliver_policy: DeliverPolicy.All,
    filter_subject: `${stream}.${kind}.${k}`,
  });
  return {
    rep,
    job: {
      kind: "many",
      contender,
      url,
      stream,
      consumer: prefix,
      n,
      idlePrefix: `${prefix}i`,
      loadPrefix: `${prefix}l`,
      messages: o.many.messages,
      payload: o.many.payload,
      maxMessages: o.many.maxMessages,
      expires: o.many.expires,
      idleWindowMs: o.many.expires,
      loadFraction: o.many.loadFraction,
      serverPid,
    },
    nodeArgs: ["--expose-gc"],
    unacked: async (jsm) => {
      let sum = 0;
      await windowed(n, async (k) => {
        const info = await jsm.consumers.info(stream, `${prefix}l${k}`);
        sum += info.num_ack_pending;
      });
      return sum;
    },
    setup: async (jsm) => {
      await windowed(n, (k) => jsm.consumers.add(stream, durable(k, "idle")));
      await windowed(n, (k) => jsm.consumers.add(stream, durable(k, "load")));
    },
    teardown: async (jsm) => {
      await windowed(n, (k) => jsm.consumers.delete(stream, `${prefix}i${k}`).catch(() => {}));
      await windowed(n, (k) => jsm.consumers.delete(stream, `${prefix}l${k}`).catch(() => {}));
    },
    describe: `${n.toLocaleString("en-US")} iterator${n === 1 ? "" : "s"} ${contender}`,
  };
}

/** The many-iterators backlog of stream `manyStream(n)`: message i goes to `<stream>.load.<i mod n>`. */
export function manySubject(n: number, i: number): string {
  return `${manyStream(n)}.load.${i % n}`;
}
