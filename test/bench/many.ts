/**
 * Many iterators on one connection, the child side of one cell (run with `node --expose-gc`).
 *
 * Idle phase: `n` iterators, each on its own durable filtering a subject nothing is published
 * to, so each holds an open pull request and does nothing but heartbeats and re-pulls. Live heap
 * and RSS over the base taken before they opened (after a full GC), per iterator; client and
 * server CPU over a window of whole `expires` periods, scaled to a minute; then every iterator
 * is ended at once (`drain()` / `stop()`) and the time until the last loop ends is taken.
 *
 * Load phase: `n` new iterators, each on its own durable filtering its share of a backlog
 * published round robin over `n` subjects, every message acked. Aggregate throughput from the
 * first consume() call until `loadFraction` of the backlog was counted; at that moment a full
 * GC and the live heap per iterator (buffers included), then every iterator is ended at once
 * while messages still flow.
 */
import { performance } from "node:perf_hooks";
import { setTimeout as sleep } from "node:timers/promises";
import type { BenchConsumer, BenchIter, Session } from "./contenders/api.js";
import { cpuUs, maxRssKb, pidCpuMs } from "./proc.js";
import type { ManyJob, ManyPhase, ManyResult } from "./types.js";

const LOOKUP_WINDOW = 100;
const LATE_MS = 10_000;
/** After the iterators opened: let the first pulls and timers settle before measuring. */
const SETTLE_MS = 500;

function gc(): void {
  const g = (globalThis as { gc?: () => void }).gc;
  if (!g) throw new Error("many: run the child with node --expose-gc");
  g();
}

/** Live heap and RSS now, after a full GC, KiB. */
function memory(): { heapKb: number; rssKb: number } {
  gc();
  const m = process.memoryUsage();
  return { heapKb: m.heapUsed / 1024, rssKb: m.rss / 1024 };
}

async function lookup(s: Session, job: ManyJob, prefix: string): Promise<BenchConsumer[]> {
  const out: BenchConsumer[] = [];
  for (let k = 0; k < job.n; k += LOOKUP_WINDOW) {
    const batch = [];
    for (let j = k; j < Math.min(job.n, k + LOOKUP_WINDOW); j++) {
      batch.push(s.consumer(job.stream, `${prefix}${j}`));
    }
    out.push(...(await Promise.all(batch)));
  }
  return out;
}

interface Running {
  its: BenchIter[];
  /** performance.now() at which each loop ended (0 while it runs). */
  endedAt: number[];
  loops: Promise<void>[];
  /** Set when the end calls are made; from then on the loops count what they still get. */
  ending: boolean;
  handedOutAfter: number;
}

/** Opens one iterator per consumer, each with its own `for await` loop running `body`. */
async function openAll(
  consumers: BenchConsumer[],
  job: ManyJob,
  body: (m: { ack(): void }) => void,
): Promise<Running> {
  const r: Running = { its: [], endedAt: [], loops: [], ending: false, handedOutAfter: 0 };
  for (const [k, c] of consumers.entries()) {
    const it = await c.consume(job.maxMessages, { expires: job.expires });
    r.its.push(it);
    r.endedAt.push(0);
    r.loops.push(
      (async () => {
        for await (const m of it.messages) {
          if (r.ending) r.handedOutAfter++;
          body(m);
        }
        r.endedAt[k] = performance.now();
      })(),
    );
  }
  return r;
}

/** Ends every iterator at once; resolves the time until the last loop ended and how many were late. */
async function endAll(r: Running): Promise<{ ms: number; late: number; after: number }> {
  const t0 = performance.now();
  r.ending = true;
  for (const it of r.its) it.end();
  let timer: ReturnType<typeof setTimeout> | undefined;
  await Promise.race([
    Promise.allSettled(r.loops),
    new Promise((resolve) => {
      timer = setTimeout(resolve, LATE_MS);
    }),
  ]);
  clearTimeout(timer);
  const late = r.endedAt.filter((t) => t === 0).length;
  const ms = late > 0 ? Number.NaN : Math.max(...r.endedAt) - t0;
  await Promise.race([Promise.allSettled(r.its.map((it) => it.closed())), sleep(LATE_MS)]);
  return { ms, late, after: r.handedOutAfter };
}

export async function many(job: ManyJob, s: Session): Promise<ManyResult> {
  const idle = await idlePhase(job, s);
  const load = await loadPhase(job, s);
  // Every ack the loops made is on the server before the runner counts what is left un-acked.
  await s.flush();
  await s.close();
  return {
    kind: "many",
    n: job.n,
    lookupMs: idle.lookupMs + load.lookupMs,
    idle: idle.result,
    load: load.result,
    maxRssKb: maxRssKb(),
  };
}

async function idlePhase(
  job: ManyJob,
  s: Session,
): Promise<{ lookupMs: number; result: ManyResult["idle"] }> {
  const l0 = performance.now();
  const consumers = await lookup(s, job, job.idlePrefix);
  const lookupMs = performance.now() - l0;
  const base = memory();
  const running = await openAll(consumers, job, (m) => m.ack());
  await s.flush();
  await sleep(SETTLE_MS);
  const at = memory();
  const c0 = cpuUs();
  const sv0 = pidCpuMs(job.serverPid);
  await sleep(job.idleWindowMs);
  const cpuMs = (cpuUs() - c0) / 1000;
  const serverMs = pidCpuMs(job.serverPid) - sv0;
  const end = await endAll(running);
  const perMinute = 60_000 / job.idleWindowMs;
  return {
    lookupMs,
    result: {
      ...phase(job.n, base, at, end),
      windowMs: job.idleWindowMs,
      cpuMsPerIterPerMin: (cpuMs / job.n) * perMinute,
      ...(job.serverPid !== undefined
        ? { serverCpuMsPerIterPerMin: (serverMs / job.n) * perMinute }
        : {}),
    },
  };
}

async function loadPhase(
  job: ManyJob,
  s: Session,
): Promise<{ lookupMs: number; result: ManyResult["load"] }> {
  const l0 = performance.now();
  const consumers = await lookup(s, job, job.loadPrefix);
  const lookupMs = performance.now() - l0;
  const base = memory();
  const target = Math.max(1, Math.floor(job.messages * job.loadFraction));
  let count = 0;
  let hit!: () => void;
  const reached = new Promise<void>((r) => {
    hit = r;
  });
  let t1 = 0;
  let c1 = 0;
  let sv1 = 0;
  const t0 = performance.now();
  const c0 = cpuUs();
  const sv0 = pidCpuMs(job.serverPid);
  const running = await openAll(consumers, job, (m) => {
    m.ack();
    if (++count === target) {
      t1 = performance.now();
      c1 = cpuUs();
      sv1 = pidCpuMs(job.serverPid);
      hit();
    }
  });
  let timer: ReturnType<typeof setTimeout> | undefined;
  const outcome = await Promise.race([
    reached.then(() => "reached" as const),
    new Promise<"timeout">((r) => {
      timer = setTimeout(() => r("timeout"), 120_000);
    }),
  ]);
  clearTimeout(timer);
  if (outcome === "timeout") {
    await endAll(running);
    throw new Error(`many: ${count} of ${target} messages after 120 s with ${job.n} iterators`);
  }
  // Everything the loops hold now counts (a GC first: live objects only, buffers included).
  const at = memory();
  const end = await endAll(running);
  return {
    lookupMs,
    result: {
      ...phase(job.n, base, at, end),
      messages: target,
      msgPerSec: target / ((t1 - t0) / 1000),
      cpuUsPerMsg: (c1 - c0) / target,
      ...(job.serverPid !== undefined ? { serverCpuUsPerMsg: ((sv1 - sv0) * 1000) / target } : {}),
    },
  };
}

function phase(
  n: number,
  base: { heapKb: number; rssKb: number },
  at: { heapKb: number; rssKb: number },
  end: { ms: number; late: number; after: number },
): ManyPhase {
  return {
    heapPerIterKb: (at.heapKb - base.heapKb) / n,
    rssPerIterKb: (at.rssKb - base.rssKb) / n,
    drainAllMs: end.ms,
    drainAllLate: end.late,
    handedOutAfter: end.after,
  };
}
