/**
 * Leaf nodes and JetStream domains (issue 12, item 3): a hub server with JetStream in domain
 * `hub`, a leaf server with its own JetStream in domain `leaf`, a leafnode connection between
 * them through a TCP proxy (test/harness/leaf.ts). The client is connected to the **leaf** and
 * consumes a stream that lives on the **hub**: `jetstream(nc, { domain: "hub" })` (v3),
 * `nc.jetstream({ domain: "hub" })` (v2), `pullMessages(nc, …, { domain: "hub" })`.
 *
 * What nats-server 2.9.10 does there (probed with a script before these tests were written; the
 * tests below depend on these facts):
 *
 * - Pulls, heartbeats (100), 408s and data all cross the leafnode link. The data's reply (ack)
 *   subject is the 9-token `$JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<dseq>.<ts>.<pending>`:
 *   2.9.10 puts **no domain and no account hash** in it, so `info.domain` is "". Acks published
 *   on the leaf reach the hub all the same (the hub's consumer subscribes to its ack subjects and
 *   that interest crosses the link); `ackAck()` is answered through the link.
 * - The stream is visible only in the hub's domain: `$JS.API` on the leaf (its own domain) says
 *   "stream not found".
 * - Link down (cut or the hub down): a pull published on the leaf is answered at once with
 *   **503** on its inbox (the leaf has no interest in `$JS.hub.API.>` any more). The request that
 *   was open on the hub says **nothing**: no status, no heartbeat. The hub drops a waiting request
 *   whose reply has lost interest when it sweeps its waiting queue (seen at a heartbeat tick and
 *   at a consumer info; under a steady publish a request has both survived a 4 s break — served
 *   again 17 ms after it — and been dropped, in different runs). A request younger than 2 s is served without
 *   checking interest when leafnodes (or gateways) are enabled (`defaultGatewayRecentSubExpiration`
 *   in consumer.go's `nextWaiting`): those messages go to nobody and wait for `ack_wait`. Once
 *   swept, the request is not served after the link is back (num_waiting 0, messages stay
 *   pending). A hub restart loses it in any case (waiting requests are not persisted).
 * - That 2 s rule also holds after an UNSUB, on the hub itself too: a drain() or close() within
 *   2 s of a pull leaves what the hub sends afterwards waiting for ack_wait unless the client
 *   keeps listening until the request is 2 s old: the library does (tests below).
 * - So while the link is down or the hub restarts, a client on the leaf sees no status and no
 *   disconnect, and after it, nothing either: the only news is silence (missed heartbeats), and
 *   the 503 to a pull of its own — if it sends one.
 * - Leaf killed and restarted: the client sees `disconnect`/`reconnect` (its own server). A pull
 *   sent at once after the reconnect may meet the link not yet redialled (503); the request open
 *   on the hub before can survive a short outage (the hub did not look at its queue meanwhile) and
 *   is served again once the client resubscribes its inbox.
 * - Cross-account (one server, accounts A and B): A exports `$JS.API.>` (`response_type: stream`)
 *   and `$JS.ACK.>` as services; B imports them, the API under `JS.A.API.>`. A client in B pulls
 *   with `api_prefix: "JS.A.API"`; data, heartbeats and 408s come back through the import; the
 *   ack subjects are A's plain `$JS.ACK…` and B's acks reach A through the `$JS.ACK.>` import.
 */

import type { ConsumerNotification } from "@nats-io/jetstream";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/nats-core";
import { connect } from "@nats-io/transport-node";
import { connect as connectV2 } from "nats";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { consume, type JsMsg, type Notification, pullMessages } from "../../src/index.js";
import { consumerInfo, LeafTopology, NatsServer } from "../harness/index.js";
import { freshConsumer, publishN, until, within } from "./fixture.js";

let topo: LeafTopology;

beforeAll(async () => {
  topo = await LeafTopology.start();
});
afterAll(async () => {
  await topo?.dispose();
});

const reconnecting = { maxReconnectAttempts: -1, reconnectTimeWait: 50, timeout: 2000 };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** What the contract tests use of an iterator, whichever way it was made. */
interface Iter {
  [Symbol.asyncIterator](): AsyncIterator<JsMsg>;
  next(): Promise<JsMsg>;
  drain(): Promise<void>;
  close(): Promise<void | Error>;
  closed(): Promise<void | Error>;
  getPending(): number;
  getReceived(): number;
  counters(): { received: number; processed: number; naked: number; dropped: number };
}

type Way = "v3" | "v2" | "pullMessages";
const ways: Way[] = ["v3", "v2", "pullMessages"];

/**
 * Connects to the leaf the way `way` says and starts consuming `stream`/`c` on the hub through
 * domain `hub`. Returns the iterator and a closer for the connection.
 */
async function consumeFromLeaf(
  way: Way,
  stream: string,
  opts: { max_messages?: number } = {},
): Promise<{ messages: Iter; nc: { close(): Promise<void>; flush(): Promise<void> } }> {
  if (way === "v2") {
    const nc = await connectV2({ servers: topo.leaf.url, ...reconnecting });
    const c = await nc.jetstream({ domain: topo.hubDomain }).consumers.get(stream, "c");
    return { messages: (await consume(c, opts)) as unknown as Iter, nc };
  }
  const nc = await connect({ servers: topo.leaf.url, ...reconnecting });
  if (way === "v3") {
    const c = await jetstream(nc, { domain: topo.hubDomain }).consumers.get(stream, "c");
    return { messages: (await consume(c, opts)) as unknown as Iter, nc };
  }
  return {
    messages: pullMessages(nc, stream, "c", { ...opts, domain: topo.hubDomain }) as unknown as Iter,
    nc,
  };
}

describe("client on the leaf, stream on the hub (domain hub)", () => {
  it("the stream is not in the leaf's own domain", async () => {
    const { stream } = await freshConsumer(topo.hub);
    const nc = await connect({ servers: topo.leaf.url });
    try {
      const own = await jetstreamManager(nc);
      await expect(own.streams.info(stream)).rejects.toThrow(/stream not found/);
      const hub = await jetstreamManager(nc, { domain: topo.hubDomain });
      expect((await hub.streams.info(stream)).config.name).toBe(stream);
    } finally {
      await nc.close();
    }
  });

  for (const way of ways) {
    it(`${way}: acks reach the hub (9-token ack subject, no domain in 2.9.10), ackAck answered; the buffer bound holds while the loop stalls; drain() inside the loop resolves, the loop ends, everything handed out is acked`, async () => {
      const { stream, subject } = await freshConsumer(topo.hub, { ack_wait: 30_000_000_000 });
      await publishN(topo.hub.url, subject, 300);
      const { messages, nc } = await consumeFromLeaf(way, stream, { max_messages: 20 });
      try {
        const seqs: number[] = [];
        let maxAckPending = 0;
        let maxBuffered = 0;
        let ackAcked: boolean | undefined;
        for await (const m of messages) {
          seqs.push(m.seq);
          if (seqs.length === 1) {
            expect(m.reply).toMatch(
              new RegExp(`^\\$JS\\.ACK\\.${stream}\\.c\\.1\\.1\\.1\\.\\d+\\.\\d+$`),
            );
            expect(m.info).toMatchObject({ domain: "", stream, consumer: "c", streamSequence: 1 });
            // the loop stalls: nothing more may be requested than max_messages
            const stallUntil = Date.now() + 1000;
            while (Date.now() < stallUntil) {
              maxBuffered = Math.max(maxBuffered, messages.getPending());
              const ci = await consumerInfo(topo.hub.url, stream, "c");
              maxAckPending = Math.max(maxAckPending, ci.num_ack_pending);
              await sleep(50);
            }
            ackAcked = await within(m.ackAck(), 5000, "ackAck() through the link");
            continue;
          }
          m.ack();
          if (seqs.length === 150) await within(messages.drain(), 5000, "drain() in the loop");
        }
        await within(messages.closed(), 5000, "closed()");
        expect(ackAcked).toBe(true);
        expect(maxBuffered).toBeLessThanOrEqual(20);
        expect(maxAckPending).toBeGreaterThan(0);
        expect(maxAckPending).toBeLessThanOrEqual(20);
        const n = seqs.length;
        expect(n).toBeGreaterThanOrEqual(150);
        expect(seqs).toEqual(Array.from({ length: n }, (_, i) => i + 1));
        await nc.flush();
        // Nothing stranded: the hub delivered exactly what was handed out, and has every ack.
        await until(
          async () => (await consumerInfo(topo.hub.url, stream, "c")).ack_floor.stream_seq === n,
          5000,
          "every ack on the hub",
        );
        const ci = await consumerInfo(topo.hub.url, stream, "c");
        expect(messages.counters()).toMatchObject({ received: n, processed: n, naked: 0 });
        expect(ci.num_redelivered).toBe(0);
        // Nothing the hub sent went to nobody: drain() listens until the newest request is 2 s
        // old before its UNSUB (see "2.9.10 with leafnodes enabled…" below); before that, 5–20
        // of 20 were stranded here until ack_wait.
        const stranded = ci.delivered.stream_seq - n;
        console.info(`leaf: ${way}: drain() at 150: ${n} handed out, ${stranded} stranded`);
        expect(stranded).toBe(0);
        expect(ci.num_ack_pending).toBe(0);
        expect(ci.num_pending).toBe(300 - n);
      } finally {
        await within(messages.close(), 5000, "close()").catch(() => {});
        await nc.close();
      }
    }, 30_000);

    const end = way === "v2" ? "close()" : "break";
    it(`${way}: ${end} after message 1 of a 10-message buffer NAKs the other 9: back well before ack_wait`, async () => {
      const { stream, subject } = await freshConsumer(topo.hub, { ack_wait: 60_000_000_000 });
      await publishN(topo.hub.url, subject, 10);
      const { messages, nc } = await consumeFromLeaf(way, stream, { max_messages: 10 });
      try {
        await until(() => messages.getReceived() === 10, 5000, "10 buffered");
        if (end === "break") {
          for await (const m of messages) {
            m.ack();
            break;
          }
        } else {
          const m = await messages.next();
          m.ack();
          expect(await within(messages.close(), 5000, "close()")).toBeUndefined();
        }
        expect(await within(messages.closed(), 5000, "closed()")).toBeUndefined();
        expect(messages.counters()).toMatchObject({ received: 10, processed: 1, naked: 9 });
        // ack_wait is 60 s: only the NAKs bring them back now
        const again = await consumeFromLeaf(way, stream, { max_messages: 10 });
        try {
          const seqs: number[] = [];
          for (let i = 0; i < 9; i++) {
            const m = await within(again.messages.next(), 5000, `redelivery ${i + 1}`);
            expect(m.info.deliveryCount).toBe(2);
            seqs.push(m.seq);
            m.ack();
          }
          expect(seqs.sort((a, b) => a - b)).toEqual([2, 3, 4, 5, 6, 7, 8, 9, 10]);
        } finally {
          await within(again.messages.close(), 5000, "close()").catch(() => {});
          await again.nc.close();
        }
      } finally {
        await within(messages.close(), 5000, "close()").catch(() => {});
        await nc.close();
      }
    }, 30_000);
  }
});

describe("2.9.10 with leafnodes enabled serves a pull request younger than 2 s without checking interest in its reply", () => {
  // The UNSUB-then-PING fence assumes the server stops serving a request once its reply has no
  // interest. nats-server 2.9.10 does not when leafnodes (or gateways) are enabled: consumer.go's
  // nextWaiting() delivers to a waiting request younger than defaultGatewayRecentSubExpiration
  // (2 s) without looking at interest, so what it sends to such a request after the UNSUB goes to
  // nobody and waits for ack_wait (stranded, not lost) — on the hub itself too (any server with a
  // leafnodes block), not only through the leaf. drain() therefore listens until the newest open
  // request is 2 s old before it unsubscribes, on a server that may be one of those (in a cluster,
  // in a JetStream domain, or reached through an API prefix): what arrives meanwhile is handed
  // out. close() and break hold the same way (below) and NAK what arrives meanwhile.
  for (const where of ["leaf", "hub"] as const) {
    it(`client on the ${where}: drain() right after the first pull, then 5 published: none waits for ack_wait`, async () => {
      const { stream, subject } = await freshConsumer(topo.hub, { ack_wait: 30_000_000_000 });
      const server = where === "leaf" ? topo.leaf : topo.hub;
      const nc = await connect({ servers: server.url, ...reconnecting });
      try {
        const c = await jetstream(nc, { domain: topo.hubDomain }).consumers.get(stream, "c");
        const messages = await consume(c, { max_messages: 20 });
        await until(
          async () => (await consumerInfo(topo.hub.url, stream, "c")).num_waiting === 1,
          5000,
          "the pull on the hub",
        );
        await within(messages.drain(), 5000, "drain()");
        await within(messages.closed(), 5000, "closed()");
        await publishN(topo.hub.url, subject, 5);
        await sleep(500);
        const ci = await consumerInfo(topo.hub.url, stream, "c");
        console.info(
          `leaf: drain() then 5 published, client on the ${where}: ${ci.num_ack_pending} stranded`,
        );
        expect(ci.num_ack_pending).toBe(0);
      } finally {
        await nc.close();
      }
    });
  }

  // close() holds as drain() does, and NAKs what arrives in the hold once it has unsubscribed.
  // A NAKed message stays in the server's num_ack_pending until a request takes it again (on
  // every nats-server version), so the proof is a second iterator getting them back before
  // ack_wait. nats-server < 2.10.14 may hold one NAKed message until ack_wait when no request is
  // waiting (docs/faults.md, "A known nats-server 2.9 bug"; seen here on the hub, not on the
  // leaf): at most one may wait. Without the hold all five did.
  for (const [where, how] of [
    ["leaf", "close()"],
    ["leaf", "break"],
    ["hub", "close()"],
  ] as const) {
    it(`client on the ${where}: ${how} right after the first pull, 5 published during it: all 5 NAKed; at least 4 back before ack_wait, all 5 by ack_wait`, async () => {
      const ackWaitMs = 8000;
      const { stream, subject } = await freshConsumer(topo.hub, {
        ack_wait: ackWaitMs * 1_000_000,
      });
      const server = where === "leaf" ? topo.leaf : topo.hub;
      const nc = await connect({ servers: server.url, ...reconnecting });
      try {
        const c = await jetstream(nc, { domain: topo.hubDomain }).consumers.get(stream, "c");
        const messages = await consume(c, { max_messages: 20 });
        await until(
          async () => (await consumerInfo(topo.hub.url, stream, "c")).num_waiting === 1,
          5000,
          "the pull on the hub",
        );
        let closing: Promise<unknown>;
        if (how === "break") {
          // The loop body never runs: break is the iterator's return(), as for-await calls it.
          const it = messages[Symbol.asyncIterator]();
          closing = it.return ? it.return() : Promise.reject(new Error("no return()"));
        } else {
          closing = messages.close();
        }
        const publishedAt = Date.now();
        await publishN(topo.hub.url, subject, 5);
        await within(closing, 5000, how);
        expect(await within(messages.closed(), 5000, "closed()")).toBeUndefined();
        expect(messages.counters()).toMatchObject({ received: 5, processed: 0, naked: 5 });
        const again = await consume(c, { max_messages: 20 });
        try {
          const seen = new Map<number, { count: number; ms: number }>();
          while (seen.size < 5) {
            const m = await within(
              again.next(),
              ackWaitMs + 5000,
              `redelivery (have ${[...seen.keys()]})`,
            );
            seen.set(m.seq, { count: m.info.deliveryCount, ms: Date.now() - publishedAt });
            m.ack();
          }
          console.info(`leaf ${where} ${how}: back (seq, count, ms) ${JSON.stringify([...seen])}`);
          // Back before ack_wait could have brought it (ack_wait runs from the delivery, after the publish).
          const early = [...seen.values()].filter((v) => v.ms < ackWaitMs - 1000);
          expect(early.length).toBeGreaterThanOrEqual(4);
          expect([...seen.keys()].sort((a, b) => a - b)).toEqual([1, 2, 3, 4, 5]);
        } finally {
          await within(again.close(), 5000, "close()").catch(() => {});
        }
      } finally {
        await nc.close();
      }
    }, 30_000);
  }
});

describe("an ordered consumer does not hold (it acks nothing: nothing it misses waits for ack_wait)", () => {
  it("client on the leaf, ordered consumer of the hub's stream: break right after the first pull ends at once, not after the 2 s hold; a second iterator resumes with every message once", async () => {
    const { stream, subject } = await freshConsumer(topo.hub, {});
    await publishN(topo.hub.url, subject, 3);
    const nc = await connect({ servers: topo.leaf.url, ...reconnecting });
    try {
      const c = await jetstream(nc, { domain: topo.hubDomain }).consumers.get(stream);
      const first = await consume(c, { max_messages: 20 });
      const seqs: number[] = [];
      const started = Date.now();
      for await (const m of first) {
        seqs.push(m.info.streamSequence);
        break;
      }
      await within(first.closed(), 5000, "closed()");
      const tookMs = Date.now() - started;
      // The young-request hold would take 2 s at least (the pull went out just now).
      expect(tookMs).toBeLessThan(1_900);
      await publishN(topo.hub.url, subject, 2);
      const second = await consume(c, { max_messages: 20 });
      try {
        while (seqs.length < 5) {
          const m = await within(second.next(), 5000, `message ${seqs.length + 1}`);
          seqs.push(m.info.streamSequence);
        }
        expect(seqs).toEqual([1, 2, 3, 4, 5]);
      } finally {
        await within(second.close(), 5000, "close()");
      }
    } finally {
      await nc.close();
    }
  });
});

/**
 * Publishes `<subject>` messages numbered 0, 1, 2… from a connection to the hub until stopped;
 * records what the hub acked.
 */
function startPublisher(subject: string) {
  const acked = new Set<number>();
  let stop = false;
  let nc: NatsConnection | undefined;
  const done = (async () => {
    nc = await connect({ servers: topo.hub.url, ...reconnecting });
    const js = jetstream(nc, { timeout: 1000 });
    let i = 0;
    while (!stop) {
      const id = i++;
      try {
        await js.publish(subject, String(id));
        acked.add(id);
      } catch {
        await sleep(20);
      }
      await sleep(5);
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

type Fault = "hub SIGKILL + restart" | "leaf SIGKILL + restart" | "leaf–hub link cut (proxy)";

/**
 * Under a steady publish on the hub, a v3 iterator on the leaf with default options (and `opts`)
 * goes through `fault`: asserts 0 lost and a loop that never throws; returns the ms from the
 * fault's end to the first new message consumed (also printed, with the notifications seen).
 */
async function underLoad(
  fault: Fault,
  run: () => Promise<void>,
  opts: { idle_heartbeat?: number } = {},
) {
  const { stream, subject } = await freshConsumer(topo.hub, {
    ack_wait: 3_000_000_000, // acks lost in the fault come back after 3 s
  });
  const nc = await connect({ servers: topo.leaf.url, ...reconnecting });
  const c = await jetstream(nc, { domain: topo.hubDomain }).consumers.get(stream, "c");
  const messages = await consume(c, opts);
  const notes: { at: number; n: Notification }[] = [];
  const notesDone = (async () => {
    for await (const n of messages.status() as AsyncIterable<ConsumerNotification>)
      notes.push({ at: Date.now(), n: n as Notification });
  })();
  const seen = new Map<number, number>(); // id -> times consumed
  let lastNew = 0;
  let loopError: unknown;
  const loop = (async () => {
    for await (const m of messages) {
      const id = Number(m.string());
      if (!seen.has(id)) lastNew = Date.now();
      seen.set(id, (seen.get(id) ?? 0) + 1);
      m.ack();
    }
  })().catch((err: unknown) => {
    loopError = err;
  });
  const publisher = startPublisher(subject);
  try {
    await until(() => seen.size >= 100, 10_000, "consumption before the fault");
    const start = Date.now();
    await run();
    const ended = Date.now();
    const before = seen.size;
    await until(() => seen.size > before && lastNew > ended, 60_000, `consumption after ${fault}`);
    const resumedMs = lastNew - ended;
    await sleep(500);
    await publisher.stop();
    const acked = [...publisher.acked];
    await until(() => acked.every((id) => seen.has(id)), 30_000, "every acked publish consumed");
    const lost = acked.filter((id) => !seen.has(id)).length;
    const duplicates = [...seen.values()].reduce((sum, n) => sum + n - 1, 0);
    const during = notes
      .filter((x) => x.at >= start)
      .map((x) => x.n.type)
      .filter((t) => t !== "next" && t !== "heartbeat");
    console.info(
      `leaf: ${fault}, idle_heartbeat ${opts.idle_heartbeat ?? "15000 (default)"}: fault lasted ${ended - start} ms, consumption resumed ${resumedMs} ms after its end; ${acked.length} acked publishes, ${lost} lost, ${duplicates} duplicates; notifications: ${[...new Set(during)].join(", ") || "none"}`,
    );
    await nc.flush();
    await until(
      async () => (await consumerInfo(topo.hub.url, stream, "c")).num_ack_pending === 0,
      20_000,
      "all acked on the hub",
    );
    await within(messages.drain(), 5000, "drain()");
    await within(loop, 5000, "loop end");
    expect(loopError).toBeUndefined();
    expect(lost).toBe(0);
    return { resumedMs };
  } finally {
    await publisher.stop().catch(() => {});
    await within(messages.close(), 5000, "close()").catch(() => {});
    await notesDone.catch(() => {});
    await nc.close();
  }
}

describe("faults under a steady publish", () => {
  it("leaf SIGKILL + restart, default idle_heartbeat (15 s): the client reconnects and pulls at once; 0 lost; resumes within 10 s", async () => {
    const { resumedMs } = await underLoad("leaf SIGKILL + restart", async () => {
      await topo.restartLeaf({ signal: "SIGKILL" });
    });
    expect(resumedMs).toBeLessThan(10_000);
  }, 60_000);

  // Nothing tells a client on the leaf that the hub went away or that its request is gone (see
  // the facts above): the missed heartbeats are the news. With idle_heartbeat 2 s it resumes
  // within 2 x idle_heartbeat (+ the lookup and PING, and the leaf's redial) of the fault's end.
  it("hub SIGKILL, down 1 s, restarted, idle_heartbeat 2 s: 0 lost; resumes within 2 x idle_heartbeat + 3 s", async () => {
    const { resumedMs } = await underLoad(
      "hub SIGKILL + restart",
      async () => {
        await topo.restartHub({ signal: "SIGKILL", downMs: 1000 });
        await topo.waitLinked();
      },
      { idle_heartbeat: 2000 },
    );
    expect(resumedMs).toBeLessThan(2 * 2000 + 3000);
  }, 60_000);

  it("leaf–hub link held down 2 s (both servers up), idle_heartbeat 2 s: 0 lost; resumes within 2 x idle_heartbeat + 3 s", async () => {
    const { resumedMs } = await underLoad(
      "leaf–hub link cut (proxy)",
      async () => {
        topo.pauseLink();
        await sleep(2000);
        topo.resumeLink();
        await topo.waitLinked();
      },
      { idle_heartbeat: 2000 },
    );
    expect(resumedMs).toBeLessThan(2 * 2000 + 3000);
  }, 60_000);

  // BUG: with the default idle_heartbeat (15 s) a hub restart (here) or a break of the
  // leaf–hub link stalls a client on the leaf for 30–45 s after the hub is back (42 s and 40 s
  // measured): the request open on the hub is gone without a word, the client is neither
  // disconnected nor sent a status, and the engine's only signal is two missed heartbeats (as in
  // nats.js). A pull published during the outage would get a 503, but none is due. Not a local
  // fix: it needs a probe through the link (a consumer-info request while the open request is
  // silent, at less than idle_heartbeat, when the consumer is behind a domain or API prefix) — a
  // design decision. (A link break is not used here: whether the hub drops the request during
  // the break varies from run to run — 17 ms and 40 s were both measured after a 4 s break — while
  // a restart always loses it: waiting requests are not persisted.)
  // It takes ~45 s: run it with LEAF_SLOW=1 (the faults table, `npm run faults`, measures it too).
  (process.env.LEAF_SLOW ? it.fails : it.skip)(
    "hub SIGKILL, down 1 s, restarted, default idle_heartbeat (15 s): resumes within 10 s",
    async () => {
      let resumedMs: number;
      try {
        ({ resumedMs } = await underLoad("hub SIGKILL + restart", async () => {
          await topo.restartHub({ signal: "SIGKILL", downMs: 1000 });
          await topo.waitLinked();
        }));
      } catch (err) {
        // Anything but the stall (a loss, a throw) must not pass as the known bug: returning
        // makes it.fails report this test as failed.
        console.error("leaf: unexpected failure, not the known stall:", err);
        return;
      }
      expect(resumedMs).toBeLessThan(10_000);
    },
    90_000,
  );
});

describe("a stream imported from another account with an API prefix", () => {
  it("account B pulls account A's consumer through service imports (api_prefix JS.A.API); acks reach A; drain() fenced", async () => {
    const server = await NatsServer.start({
      config: `accounts {
  A: {
    jetstream: enabled
    users: [{ user: a, password: a }]
    exports: [{ service: "$JS.API.>", response_type: stream }, { service: "$JS.ACK.>" }]
  }
  B: {
    users: [{ user: b, password: b }]
    imports: [
      { service: { account: A, subject: "$JS.API.>" }, to: "JS.A.API.>" }
      { service: { account: A, subject: "$JS.ACK.>" } }
    ]
  }
}`,
    });
    const a = await connect({ servers: server.url, user: "a", pass: "a" });
    const b = await connect({ servers: server.url, user: "b", pass: "b" });
    try {
      const jsm = await jetstreamManager(a);
      await jsm.streams.add({ name: "IMP", subjects: ["IMP.>"] });
      await jsm.consumers.add("IMP", {
        durable_name: "c",
        ack_policy: "explicit" as never,
        ack_wait: 30_000_000_000,
      });
      const js = jetstream(a);
      for (let i = 0; i < 100; i++) await js.publish("IMP.x", String(i));
      const viaV3 = await jetstream(b, { apiPrefix: "JS.A.API" }).consumers.get("IMP", "c");
      const ways = [
        () => pullMessages(b, "IMP", "c", { api_prefix: "JS.A.API", max_messages: 10 }),
        () => consume(viaV3, { max_messages: 10 }),
      ];
      const seqs: number[] = [];
      // one after the other: the second starts pulling once the first has ended
      for (const start of ways) {
        const messages = await start();
        for await (const m of messages) {
          seqs.push(m.seq);
          m.ack();
          if (seqs.length % 50 === 0) await within(messages.drain(), 5000, "drain()");
        }
      }
      const n = seqs.length;
      expect(seqs).toEqual(Array.from({ length: n }, (_, i) => i + 1));
      await b.flush();
      await until(
        async () => (await jsm.consumers.info("IMP", "c")).ack_floor.stream_seq === n,
        5000,
        "every ack in account A",
      );
      const ci = await jsm.consumers.info("IMP", "c");
      expect(ci.num_ack_pending).toBe(0);
      expect(ci.delivered.stream_seq).toBe(n);
      expect(n).toBeGreaterThanOrEqual(100);
    } finally {
      await b.close();
      await a.close();
      await server.dispose();
    }
  }, 30_000);
});
