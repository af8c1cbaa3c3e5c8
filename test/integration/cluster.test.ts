/**
 * Cluster failover: a 3-node JetStream cluster, an R3 stream and an R3 durable pull consumer.
 * While messages flow, SIGKILL the node that leads the consumer, then the node that leads the
 * stream: each time consumption resumes within a few seconds by itself — re-pulling on the
 * server's signal (a 409 leadership change, no responders, a reconnect), not by waiting out
 * heartbeats — and nothing the server acknowledged to the publisher is lost.
 *
 * How "resumed" is measured: at the kill, at most `max_messages` messages can be buffered or on
 * their way to us; so the first message handed out after the kill that was either published
 * after the kill, or is more than `max_messages` past the last one handed out before it, came
 * from a pull served after the kill. The time from the kill to that message is the resume time.
 * The servers' own logs say when each new leader was elected.
 *
 * What the server sends (nats-server 2.9.10, measured): while the consumer's group has no
 * leader, a pull gets no answer at all (no 503) and is forgotten; on election the new leader
 * sends `409 Leadership Change` to the pulls that were pending on the old one, as far as they
 * were replicated to it. A second connection watches the pulls and, for the duration of a
 * consumer failover, the inbox of the pull open at the kill, to report that 409; where it was
 * sent, the engine must re-pull on it rather than on its next missed-heartbeats tick.
 */

import {
  AckPolicy,
  type ClusterInfo,
  type ConsumerNotification,
  type JetStreamManager,
  jetstream,
  jetstreamManager,
} from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/nats-core";
import { connect } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { consume } from "../../src/index.js";
import { NatsCluster, type NatsServer } from "../harness/index.js";
import { until, within } from "./fixture.js";

const reconnecting = { maxReconnectAttempts: -1, reconnectTimeWait: 50, timeout: 1000 };
const STREAM = "FAILOVER";
const CONSUMER = "c";
const MAX_MESSAGES = 50;
const IDLE_HEARTBEAT = 1000;
/** "A few seconds": generous, for a 2-core machine running three servers and the test. */
const RESUME_BOUND_MS = 10_000;
/** A pull made this soon after a notification or reconnect is taken to be caused by it. */
const CAUSE_WINDOW_MS = 250;
const PULL = "pull";

interface Event {
  t: number;
  what: string;
}

interface Delivery {
  t: number;
  id: number;
  seq: number;
  deliveryCount: number;
}

interface Failover {
  label: string;
  victim: string;
  resumeMs: number;
  /** Election of a new consumer leader after the kill (from the server logs), if there was one. */
  consumerElectedMs: number | undefined;
  streamElectedMs: number | undefined;
  /** When the server first acked a message the publisher first tried after the kill. */
  publisherMs: number | undefined;
  /** When the pull that brought consumption back was published, and what made the engine send it. */
  resumingPullMs: number | undefined;
  resumedBy: string;
  /** When the new leader sent 409 Leadership Change to the pull open at the kill, if it did. */
  leadershipChangeMs: number | undefined;
  notes: string[];
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const secs = (ms: number | undefined) => (ms === undefined ? "-" : `${(ms / 1000).toFixed(2)}s`);

/** Describes a notification in one short line. */
function describeNote(n: ConsumerNotification): string {
  const x = n as { type: string; code?: number; description?: string; count?: number };
  if (x.type === "debug") return `debug ${x.code} ${x.description}`;
  if (x.type === "heartbeats_missed") return `heartbeats_missed(${x.count})`;
  if (x.code !== undefined) return `${x.type} ${x.code}${x.description ? ` ${x.description}` : ""}`;
  return x.type;
}

/** Events in [from, to], relative to `from`, in time order, consecutive repeats collapsed. */
function timelineOf(events: Event[], from: number, to: number): string[] {
  const out: { what: string; first: number; last: number; n: number }[] = [];
  const inWindow = events.filter((e) => e.t >= from && e.t <= to).sort((a, b) => a.t - b.t);
  for (const e of inWindow) {
    const prev = out[out.length - 1];
    if (prev && prev.what === e.what) {
      prev.n++;
      prev.last = e.t - from;
    } else {
      out.push({ what: e.what, first: e.t - from, last: e.t - from, n: 1 });
    }
  }
  return out.map((o) =>
    o.n === 1
      ? `+${secs(o.first)} ${o.what}`
      : `+${secs(o.first)}..+${secs(o.last)} ${o.what} x${o.n}`,
  );
}

/**
 * The first time after `since` that a node logged a line matching `pattern`. nats-server logs
 * local time with microseconds: `[pid] 2025/01/31 12:34:56.789012 [INF] …`.
 */
function loggedAt(
  nodes: NatsServer[],
  pattern: RegExp,
  since: number,
): { t: number; node: string } | undefined {
  let first: { t: number; node: string } | undefined;
  for (const n of nodes) {
    for (const line of n.log) {
      if (!pattern.test(line)) continue;
      const m = /(\d{4})\/(\d\d)\/(\d\d) (\d\d):(\d\d):(\d\d)\.(\d{3})/.exec(line);
      if (!m) continue;
      const [y, mo, d, h, mi, s, ms] = m.slice(1).map(Number) as number[];
      const t = new Date(y!, mo! - 1, d!, h!, mi!, s!, ms!).getTime();
      if (t >= since && (!first || t < first.t)) first = { t, node: n.name ?? "?" };
    }
  }
  return first;
}

/** Records a connection's disconnects and reconnects (with the server it reached). */
function watchConnection(nc: NatsConnection, who: string, events: Event[]): void {
  void (async () => {
    for await (const s of nc.status()) {
      if (s.type === "disconnect" || s.type === "reconnect") {
        events.push({ t: Date.now(), what: `${who} ${s.type} (now on ${nc.info?.server_name})` });
      }
    }
  })().catch(() => {});
}

/**
 * Publishes `<subject>` messages numbered 0, 1, 2… until stopped, each with its number as the
 * JetStream msgID, so that retrying a publish whose ack was lost stores it once. Records when
 * each id was first tried and when the server acked it.
 */
function startPublisher(servers: string[], subject: string, events: Event[]) {
  const acked = new Set<number>();
  const firstTried: number[] = [];
  const ackedAt: number[] = [];
  let stop = false;
  let failing = false;
  const done = (async () => {
    const nc = await connect({ servers, ...reconnecting });
    watchConnection(nc, "publisher", events);
    const js = jetstream(nc, { timeout: 1000 });
    for (let id = 0; !stop; id++) {
      firstTried[id] = Date.now();
      while (!stop) {
        try {
          await js.publish(subject, String(id), { msgID: String(id), timeout: 1000 });
          acked.add(id);
          ackedAt[id] = Date.now();
          if (failing) events.push({ t: Date.now(), what: "publisher acked again" });
          failing = false;
          break;
        } catch (err) {
          if (!failing) {
            events.push({ t: Date.now(), what: `publisher failing: ${(err as Error).message}` });
          }
          failing = true;
          await sleep(20);
        }
      }
      if (id % 50 === 0) await new Promise((r) => setImmediate(r));
    }
    await nc.close();
  })();
  return {
    acked,
    firstTried,
    /** When the server first acked a message first tried after `t`. */
    firstAckOfPublishAfter(t: number): number | undefined {
      for (let id = 0; id < firstTried.length; id++) {
        if (firstTried[id]! > t && ackedAt[id] !== undefined) return ackedAt[id];
      }
      return undefined;
    },
    async stop() {
      stop = true;
      await done;
    },
  };
}

/** A leader and two current, online followers. */
function healthy(c: ClusterInfo | undefined): boolean {
  const r = c?.replicas ?? [];
  return !!c?.leader && r.length === 2 && r.every((p) => p.current && !p.offline);
}

async function bothHealthy(jsm: JetStreamManager): Promise<boolean> {
  try {
    const si = await jsm.streams.info(STREAM);
    const ci = await jsm.consumers.info(STREAM, CONSUMER);
    return healthy(si.cluster) && healthy(ci.cluster);
  } catch {
    return false;
  }
}

describe("cluster failover", () => {
  let cluster: NatsCluster;
  beforeAll(async () => {
    cluster = await NatsCluster.start(3);
  }, 60_000);
  afterAll(async () => {
    await cluster?.dispose();
  });

  it("R3 stream, R3 durable: SIGKILL the consumer leader, then the stream leader, while consuming: resumes within seconds each time without waiting out heartbeats, 0 lost", async () => {
    const subject = `${STREAM}.x`;
    const events: Event[] = [];
    const admin = await connect({ servers: cluster.servers, ...reconnecting });
    const nc = await connect({ servers: cluster.servers, ...reconnecting });
    const wire = await connect({ servers: cluster.servers, ...reconnecting });
    let publisher: ReturnType<typeof startPublisher> | undefined;
    try {
      watchConnection(nc, "consumer connection", events);
      const jsm = await jetstreamManager(admin, { timeout: 1000 });
      await jsm.streams.add({ name: STREAM, subjects: [`${STREAM}.>`], num_replicas: 3 });
      await jsm.consumers.add(STREAM, {
        durable_name: CONSUMER,
        ack_policy: AckPolicy.Explicit,
        ack_wait: 2_000_000_000, // acks lost in a failover come back after 2 s, not 30 s
        num_replicas: 3,
      });
      await until(() => bothHealthy(jsm), 30_000, "stream and consumer on three current replicas");

      const messages = await consume(await jetstream(nc).consumers.get(STREAM, CONSUMER), {
        max_messages: MAX_MESSAGES,
        expires: 5000,
        idle_heartbeat: IDLE_HEARTBEAT,
      });
      let heartbeats = 0;
      const notesDone = (async () => {
        for await (const n of messages.status()) {
          if (n.type === "heartbeat") heartbeats++;
          else if (n.type === "next") events.push({ t: Date.now(), what: PULL });
          else events.push({ t: Date.now(), what: `status: ${describeNote(n)}` });
        }
      })();
      const deliveries: Delivery[] = [];
      const seen = new Map<number, number>(); // id -> times handed out
      const loop = (async () => {
        for await (const m of messages) {
          const id = Number(m.string());
          deliveries.push({
            t: Date.now(),
            id,
            seq: m.info.streamSequence,
            deliveryCount: m.info.deliveryCount,
          });
          seen.set(id, (seen.get(id) ?? 0) + 1);
          m.ack();
        }
      })();
      publisher = startPublisher(cluster.servers, subject, events);
      const pub = publisher;
      // The engine's pull requests, as the servers route them (their reply subjects name the
      // inbox generation and the request: `<inbox>.<generation>.<n>`).
      let lastPullReply = "";
      wire.subscribe(`$JS.API.CONSUMER.MSG.NEXT.${STREAM}.${CONSUMER}`, {
        callback: (_err, m) => {
          if (m.reply) lastPullReply = m.reply;
        },
      });
      await wire.flush();

      /** The first delivery at index >= `k` that must have come from a pull served after `t0`. */
      const resumedAfter = (k: number, t0: number): Delivery | undefined => {
        for (let i = k; i < deliveries.length; i++) {
          const d = deliveries[i]!;
          if (i - k >= MAX_MESSAGES || (pub.firstTried[d.id] ?? 0) > t0) return d;
        }
        return undefined;
      };

      const failover = async (label: string, which: "consumer" | "stream"): Promise<Failover> => {
        const before = deliveries.length;
        await until(() => deliveries.length >= before + 200, 20_000, `consumption before ${label}`);
        const streamLeader = (await jsm.streams.info(STREAM)).cluster?.leader;
        const consumerLeader = (await jsm.consumers.info(STREAM, CONSUMER)).cluster?.leader;
        const victim = which === "consumer" ? consumerLeader : streamLeader;
        expect(victim).toMatch(/^n[123]$/);
        const on = nc.info?.server_name;
        const roles = [
          consumerLeader === victim ? "the consumer" : "",
          streamLeader === victim ? "the stream" : "",
        ].filter(Boolean);
        const header =
          `${label}: SIGKILL ${victim}, leader of ${roles.join(" and ")} ` +
          `(consumer leader ${consumerLeader}, stream leader ${streamLeader}); the consumer's ` +
          `connection is on ${on}` +
          (on === victim ? " (the killed node: it must reconnect)" : " (not the killed node)");
        // When the consumer loses its leader, listen (from `wire`) on the inbox generation of
        // the pull open at the kill, for the 409 the new leader sends it. Only then: that pull
        // can be alive only on the killed node, so the extra interest changes nothing.
        const pullAtKill = lastPullReply;
        const atKillGen = pullAtKill.split(".").slice(0, -1).join(".");
        let leadershipChangeAt: number | undefined;
        const tap =
          consumerLeader === victim && atKillGen
            ? wire.subscribe(`${atKillGen}.*`, {
                callback: (_err, m) => {
                  const h = m.headers;
                  if (m.reply || !h?.code) return;
                  const what = `server sent ${h.code} ${h.description} to pull ${m.subject.split(".").slice(-2).join(".")}`;
                  if (h.code === 409 && /leadership change/i.test(h.description)) {
                    leadershipChangeAt ??= Date.now();
                  }
                  events.push({ t: Date.now(), what });
                },
              })
            : undefined;
        if (tap) await wire.flush();
        const tKill = Date.now();
        events.push({ t: tKill, what: `SIGKILL ${victim}` });
        await cluster.node(victim!).kill();
        // From here the process is gone: nothing published from now on was stored by it, and at
        // most MAX_MESSAGES it delivered are still buffered or on their way to us.
        const t0 = Date.now();
        const k = deliveries.length;

        let resumed: Delivery | undefined;
        const waitForResume = (what: string) =>
          until(
            () => {
              resumed = resumedAfter(k, t0);
              return resumed !== undefined;
            },
            30_000,
            what,
          ).then(
            () => undefined,
            (err: unknown) => err,
          );
        let failure = await waitForResume(`consumption to resume after ${label}`);
        // Bring the node back and let it catch up, so that the next kill leaves a quorum (and
        // every election of this failover is in the logs when we read them below).
        await cluster.node(victim!).restart();
        events.push({ t: Date.now(), what: `restarted ${victim}` });
        if (failure) {
          // Under load nats-server 2.9.10 has elected no new consumer leader while the killed
          // node was down (in 2 of 6 CI runs on this 2-core machine the node that led both the
          // stream and the consumer had to come back first; the election came 30–37 s after
          // the kill). No client can resume before that; what this test holds the library to is
          // resuming soon after the election (RESUME_BOUND_MS, below), whenever it comes.
          failure = await waitForResume(
            `consumption to resume after ${label} and ${victim}'s restart`,
          );
        }
        const caughtUp = await until(
          () => bothHealthy(jsm),
          40_000,
          `${victim} caught up after ${label}`,
        ).then(
          () => undefined,
          (err: unknown) => err,
        );

        tap?.unsubscribe();
        const elected = (what: string, re: RegExp) => {
          const e = loggedAt(cluster.nodes, re, t0);
          if (e) events.push({ t: e.t, what: `${e.node} logged: new ${what} leader` });
          return e && e.t - tKill;
        };
        const consumerElectedMs = elected(
          "consumer",
          new RegExp(`new consumer leader for '.* > ${STREAM} > ${CONSUMER}'`),
        );
        const streamElectedMs = elected(
          "stream",
          new RegExp(`new stream leader for '.* > ${STREAM}'`),
        );
        const metaElectedMs = elected("meta", /Self is new JetStream cluster metadata leader/);
        const publisherAt = pub.firstAckOfPublishAfter(t0);
        const publisherMs = publisherAt && publisherAt - tKill;
        const leadershipChangeMs = leadershipChangeAt && leadershipChangeAt - tKill;
        // The pull that brought consumption back is the last one before the resuming message;
        // what made the engine send it is what happened just before it.
        const pull = resumed && events.filter((e) => e.what === PULL && e.t <= resumed!.t).pop();
        const cause =
          pull &&
          events
            .filter(
              (e) =>
                e.t <= pull.t &&
                e.t >= pull.t - CAUSE_WINDOW_MS &&
                (e.what.startsWith("status: ") || e.what.startsWith("consumer connection")),
            )
            .sort((a, b) => a.t - b.t)
            .pop();
        const resumedBy = cause ? cause.what.replace(/^status: /, "") : "no fault signal";
        const end =
          tKill +
          Math.max(
            resumed ? resumed.t - tKill : 30_000,
            consumerElectedMs ?? 0,
            streamElectedMs ?? 0,
            metaElectedMs ?? 0,
            publisherMs ?? 0,
            leadershipChangeMs ?? 0,
          ) +
          200;
        console.info(
          [
            header,
            `  resumed after ${secs(resumed && resumed.t - tKill)}; new consumer leader elected` +
              ` after ${secs(consumerElectedMs)}, new stream leader after ${secs(streamElectedMs)},` +
              ` new meta leader after ${secs(metaElectedMs)}; publisher acked again after` +
              ` ${secs(publisherMs)}; 409 Leadership Change sent to the pull open at the kill` +
              ` (${pullAtKill.split(".").slice(-2).join(".")}) after ${secs(leadershipChangeMs)};` +
              ` the resuming pull was sent at ${secs(pull && pull.t - tKill)},` +
              ` after: ${pull ? resumedBy : "-"}`,
            ...timelineOf(events, tKill, end).map((l) => `  ${l}`),
          ].join("\n"),
        );
        if (failure) throw failure;
        if (caughtUp) throw caughtUp;
        return {
          label,
          victim: victim!,
          resumeMs: resumed!.t - tKill,
          consumerElectedMs,
          streamElectedMs,
          publisherMs,
          resumingPullMs: pull && pull.t - tKill,
          resumedBy,
          leadershipChangeMs,
          notes: timelineOf(
            events.filter((e) => e.what.startsWith("status: ")),
            tKill,
            end,
          ).map((l) => l.replace("status: ", "")),
        };
      };

      const results = [
        await failover("consumer leader failover", "consumer"),
        await failover("stream leader failover", "stream"),
      ];

      // consumption goes on after both failovers
      const after = deliveries.length;
      await until(() => deliveries.length >= after + 200, 20_000, "consumption after failovers");
      await publisher.stop();
      const acked = [...publisher.acked];
      await until(
        () => acked.every((id) => seen.has(id)),
        30_000,
        "every acked publish consumed",
      ).catch(() => {}); // the assertion below says which are missing
      const lost = acked.filter((id) => !seen.has(id));
      const redelivered = deliveries.filter((d) => d.deliveryCount > 1).length;
      const seqsOf = new Map<number, Set<number>>();
      for (const d of deliveries) seqsOf.set(d.id, (seqsOf.get(d.id) ?? new Set()).add(d.seq));
      const storedTwice = [...seqsOf.values()].filter((s) => s.size > 1).length;
      const pulls = events.filter((e) => e.what === PULL).length;
      console.info(
        [
          `cluster failover: ${acked.length} acked publishes, ${seen.size} distinct consumed,` +
            ` ${lost.length} lost${lost.length ? ` (${lost.slice(0, 20).join(",")}…)` : ""},` +
            ` ${deliveries.length - seen.size} duplicate deliveries` +
            ` (${redelivered} redeliveries, ${storedTwice} ids stored twice);` +
            ` ${pulls} pulls, ${heartbeats} heartbeats`,
          ...results.map(
            (r) =>
              `  ${r.label} (killed ${r.victim}): resumed in ${secs(r.resumeMs)}` +
              ` (consumer leader elected ${secs(r.consumerElectedMs)},` +
              ` stream leader elected ${secs(r.streamElectedMs)},` +
              ` publisher acked again ${secs(r.publisherMs)},` +
              ` 409 Leadership Change sent ${secs(r.leadershipChangeMs)});` +
              ` resuming pull at ${secs(r.resumingPullMs)} after: ${r.resumedBy};` +
              ` notifications: ${r.notes.filter((n) => n !== PULL).join("; ") || "none"}`,
          ),
        ].join("\n"),
      );
      expect(lost).toEqual([]);
      expect(acked.length).toBeGreaterThan(3 * 200); // the load ran: 200 before each kill and after
      for (const r of results) {
        // Measured from when the cluster could serve again: the later of the kill and the new
        // consumer leader's election. (Under load the election itself has taken 27 s on this
        // 2-core machine; the library resumed 20 ms after it. What this test guards is that it
        // does not then wait out heartbeats.)
        const from = Math.max(0, r.consumerElectedMs ?? 0);
        expect(
          r.resumeMs - from,
          `${r.label}: resume time after the cluster was back`,
        ).toBeLessThan(RESUME_BOUND_MS);
      }
      // Where the new consumer leader sent 409 Leadership Change to the pull that was open on
      // the dead one, the engine must re-pull on it, not on its next missed-heartbeats tick.
      for (const r of results) {
        if (r.leadershipChangeMs === undefined) continue;
        expect(
          r.resumedBy,
          `${r.label}: consumption came back on a re-pull after missed heartbeats at` +
            ` ${secs(r.resumingPullMs)}, ${secs((r.resumingPullMs ?? 0) - r.leadershipChangeMs)}` +
            ` after the server sent 409 Leadership Change to the pull open at the kill`,
        ).not.toMatch(/heartbeats_missed/);
      }

      await nc.flush();
      await until(
        async () => {
          try {
            return (await jsm.consumers.info(STREAM, CONSUMER)).num_ack_pending === 0;
          } catch {
            return false;
          }
        },
        20_000,
        "all acked",
      );
      await messages.drain();
      await within(loop, 5000, "loop end");
      await within(notesDone, 5000, "status() end");
      const c = messages.counters();
      expect(c.received).toBe(c.processed + c.naked + c.dropped);
    } finally {
      await publisher?.stop().catch(() => {});
      await nc.close();
      await wire.close();
      await admin.close();
    }
  }, 180_000);
});
