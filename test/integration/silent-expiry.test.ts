/**
 * A pull request that nats-server ends without a word. 2.9.10's consumer loop, finding a message
 * for a request whose `expires` has just passed before its expiry timer ran, removes the request
 * with no 408 (consumer.go nextWaiting): its heartbeats stop, nothing says it is gone, and a
 * ledger that still counts it holds the next pull back until two heartbeats are missed. Under load
 * this happens when a message arrives within the timer's lag of a request's expiry (a CI run
 * stalled 2 s this way). Here it is provoked: the server is frozen (SIGSTOP) across the expiry
 * with a message queued behind it, so that on SIGCONT the timer and the message race.
 *
 * First the server's own behaviour (a raw pull request), then the library's expiry watch
 * (src/recovery.ts): the message arrives within one heartbeat of the server waking up, before
 * any heartbeat is missed, in every round; the watch must have acted in at least one round.
 */
import { type Consumer, DeliverPolicy } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { fetchMessages, type Notification, pullMessages } from "../../src/index.js";
import { createConsumer, NatsServer } from "../harness/index.js";
import { freshConsumer, until, v3Consumer, within } from "./fixture.js";

let server: NatsServer;

beforeAll(async () => {
  server = await NatsServer.start();
});
afterAll(async () => {
  if (server?.running) server.resume();
  await server?.dispose();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/**
 * Rounds tried, at most, until the server has dropped a request silently; each round races
 * `ITERATORS` requests (one in 4 to one in 20 of them is dropped so: 20 make a round that sees
 * none unlikely, under 1 in 2 even at the low rate).
 */
const MAX_ROUNDS = 20;
const ITERATORS = 20;
/** Raw requests raced per round in the server's test. */
const RAW_REQUESTS = 4;

/**
 * Freezes the server from `pauseAt` to `resumeAt` (Date.now() ms), publishing `payload` to
 * `subject` on `pub` 50 ms before it wakes: the message is in the server's socket when it does.
 */
async function freezeAcross(
  pub: Awaited<ReturnType<typeof connect>>,
  subject: string,
  payload: string,
  pauseAt: number,
  resumeAt: number,
): Promise<number> {
  await sleep(Math.max(0, pauseAt - Date.now()));
  await server.pause();
  await sleep(Math.max(0, resumeAt - 50 - Date.now()));
  pub.publish(subject, payload);
  await sleep(Math.max(0, resumeAt - Date.now()));
  server.resume();
  return Date.now();
}

describe("a pull request ended without a word at its expiry", () => {
  it("the server: frozen across a request's expires with a message queued, it removes the request without a 408 in some rounds (a 408 or the message in the others)", async () => {
    const nc = await connect({ servers: server.url });
    const pub = await connect({ servers: server.url });
    const { stream, subject } = await freshConsumer(server);
    const outcomes: string[] = [];
    try {
      for (let round = 0; round < MAX_ROUNDS && !outcomes.includes("nothing"); round++) {
        // new consumers each round, of new messages only: each sees this round's message alone
        const names = Array.from({ length: RAW_REQUESTS }, (_, i) => `r${round}_${i}`);
        for (const name of names) {
          await createConsumer(server.url, stream, name, { deliver_policy: DeliverPolicy.New });
        }
        const got = names.map(() => [] as string[]);
        const subs = names.map((name, i) => {
          const inbox = `_INBOX.silent.${round}.${i}`;
          const sub = nc.subscribe(inbox, {
            callback: (_e, m) => {
              got[i]?.push(m.headers?.code ? String(m.headers.code) : "message");
            },
          });
          const body = JSON.stringify({ batch: 10, expires: 1_000_000_000 });
          nc.publish(`$JS.API.CONSUMER.MSG.NEXT.${stream}.${name}`, body, { reply: inbox });
          return sub;
        });
        await nc.flush();
        const at = Date.now();
        await freezeAcross(pub, subject, `r${round}`, at + 700, at + 1_250);
        await pub.flush();
        await nc.flush();
        // long enough for any 408 the server sent on waking (its timers run late, not never)
        await sleep(1_000);
        for (const sub of subs) sub.unsubscribe();
        // a request left with nothing leaves its message for the consumer's next request
        outcomes.push(...got.map((g) => g.join(",") || "nothing"));
      }
      // "nothing": no 408 and no message
      expect(outcomes).toContain("nothing");
      expect(outcomes.filter((o) => o !== "nothing" && o !== "408" && o !== "message")).toEqual([]);
    } finally {
      await pub.close();
      await nc.close();
    }
  }, 120_000);

  it("the library: the message published across the expiry reaches every iterator within one idle_heartbeat of the server waking, with no heartbeat missed; its expiry watch re-pulled somewhere", async () => {
    const nc = await connect({ servers: server.url });
    const pub = await connect({ servers: server.url });
    const { stream, subject } = await freshConsumer(server);
    // One durable per iterator, all on one stream: one message races each one's expiry.
    const names = Array.from({ length: ITERATORS }, (_, i) => `d${i}`);
    for (const name of names) await createConsumer(server.url, stream, name);
    const idle_heartbeat = 1_000;
    const late: { round: number; consumer: string; ms: number }[] = [];
    const missed: string[] = [];
    let watched = 0;
    try {
      for (let round = 0; round < MAX_ROUNDS && watched === 0; round++) {
        const runs = names.map((name) => {
          const messages = pullMessages(nc, stream, name, {
            expires: 2_000,
            idle_heartbeat,
            max_messages: 10,
          });
          const run = { name, messages, pulls: [] as number[], notes: [] as Notification[] };
          const got: number[] = [];
          const statuses = (async () => {
            for await (const n of messages.status()) {
              run.notes.push(n);
              if (n.type === "next") run.pulls.push(Date.now());
            }
          })();
          const loop = (async () => {
            for await (const m of messages) {
              got.push(Date.now());
              m.ack();
            }
          })();
          return { ...run, got, ended: Promise.all([loop, statuses]) };
        });
        await until(() => runs.every((r) => r.pulls.length > 0), 5_000, "the first pulls");
        const firstPulls = runs.map((r) => r.pulls[0] as number);
        const t0 = Math.max(...firstPulls);
        // every request expires while the server is frozen; the watch, which notes the state at
        // the expiry and PINGs only if nothing changed a grace (250 ms) later, PINGs after it wakes
        expect(t0 - Math.min(...firstPulls)).toBeLessThan(150);
        // heartbeats at 1 s; frozen from 1.5 s to 2.1 s (the expiry at 2 s); the watch PINGs at
        // 2.25 s; two heartbeats would be missed at 3 s
        const resumedAt = await freezeAcross(pub, subject, `r${round}`, t0 + 1_500, t0 + 2_100);
        await until(() => runs.every((r) => r.got.length > 0), 10_000, "the message").catch(
          () => {},
        );
        for (const r of runs) {
          const ms = (r.got[0] ?? Number.POSITIVE_INFINITY) - resumedAt;
          if (!(ms < idle_heartbeat)) late.push({ round, consumer: r.name, ms });
          if (r.notes.some((n) => n.type === "heartbeats_missed"))
            missed.push(`round ${round} ${r.name}`);
          if (r.notes.some((n) => n.type === "debug" && /without a word/.test(n.description)))
            watched++;
        }
        for (const r of runs) await within(r.messages.close(), 5_000, "close()");
        for (const r of runs) await within(r.ended, 5_000, "loop and status() end");
      }
      expect({ late, missed, watched: watched > 0 }).toEqual({
        late: [],
        missed: [],
        watched: true,
      });
    } finally {
      if (!server.running) server.resume();
      await pub.close();
      await nc.close();
    }
  }, 240_000);

  it("a fetch: a batch whose request the server removed at its expiry ends within one idle_heartbeat of the server waking, without an error, as its 408 would have ended it", async () => {
    const nc = await connect({ servers: server.url });
    const pub = await connect({ servers: server.url });
    const { stream, subject } = await freshConsumer(server);
    const names = Array.from({ length: ITERATORS }, (_, i) => `f${i}`);
    for (const name of names) await createConsumer(server.url, stream, name);
    const idle_heartbeat = 1_000;
    const problems: string[] = [];
    let watched = 0;
    try {
      for (let round = 0; round < MAX_ROUNDS && watched === 0; round++) {
        // the consumer objects first: the fetches then pull within a millisecond of each other
        const consumers = await Promise.all(names.map((name) => v3Consumer(nc, stream, name)));
        const runs = await Promise.all(
          names.map(async (name, i) => {
            const batch = await fetchMessages(consumers[i] as Consumer, {
              max_messages: 10,
              expires: 2_000,
              idle_heartbeat,
            });
            const run = { name, pulls: [] as number[], notes: [] as Notification[] };
            const statuses = (async () => {
              for await (const n of batch.status()) {
                run.notes.push(n as Notification);
                if (n.type === "next") run.pulls.push(Date.now());
              }
            })();
            const ended = (async () => {
              for await (const m of batch) m.ack();
              return Date.now();
            })().catch((e: unknown) => e);
            return { ...run, batch, ended, statuses };
          }),
        );
        await until(() => runs.every((r) => r.pulls.length > 0), 5_000, "the first pulls");
        const firstPulls = runs.map((r) => r.pulls[0] as number);
        const t0 = Math.max(...firstPulls);
        // every request expires while the server is frozen; the watch, which notes the state at
        // the expiry and PINGs only if nothing changed a grace (250 ms) later, PINGs after it wakes
        expect(t0 - Math.min(...firstPulls)).toBeLessThan(150);
        const resumedAt = await freezeAcross(pub, subject, `f${round}`, t0 + 1_500, t0 + 2_100);
        for (const r of runs) {
          const end = await within(r.ended, 10_000, "the fetch's end");
          if (typeof end !== "number") problems.push(`${r.name}: threw ${String(end)}`);
          else if (!(end - resumedAt < idle_heartbeat))
            problems.push(`${r.name}: ended ${end - resumedAt} ms after the server woke`);
          if (r.notes.some((n) => n.type === "debug" && /without a word/.test(n.description)))
            watched++;
          await within(r.statuses, 5_000, "status() end");
        }
      }
      expect({ problems, watched: watched > 0 }).toEqual({ problems: [], watched: true });
    } finally {
      if (!server.running) server.resume();
      await pub.close();
      await nc.close();
    }
  }, 240_000);
});
