/**
 * One measured run, in a fresh process: `node child.js '<Job as JSON>'`. Loads only the client
 * it measures, runs the job, prints one JSON line (a Result) on stdout and exits. A latency
 * consumer prints a `READY` line first (the runner then starts the publisher). Anything on
 * stderr is passed through by the runner; a non-zero exit is a failed run.
 */
import { performance } from "node:perf_hooks";
import { setTimeout as sleep } from "node:timers/promises";
import type { BenchIter, CoreSession, Session } from "./contenders/api.js";
import { cpuUs, maxRssKb, pidCpuMs } from "./proc.js";
import type {
  ChildJob,
  Contender,
  DrainJob,
  DrainResult,
  Result,
  SlowJob,
  SlowResult,
  Stat,
  ThroughputJob,
  ThroughputResult,
} from "./types.js";

async function openSession(c: Exclude<Contender, "core">, url: string): Promise<Session> {
  switch (c) {
    case "ours":
      return (await import("./contenders/ours.js")).open(url);
    case "v3":
      return (await import("./contenders/v3.js")).open(url);
    case "v2":
      return (await import("./contenders/v2.js")).open(url);
  }
}

async function openCore(url: string): Promise<CoreSession> {
  return (await import("./contenders/core.js")).open(url);
}

/** Resolves `p`'s outcome, or "timeout" after `ms` (the timer is cleared either way). */
async function within<T>(p: Promise<T>, ms: number): Promise<T | "timeout"> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const t = new Promise<"timeout">((r) => {
    timer = setTimeout(() => r("timeout"), ms);
  });
  try {
    return await Promise.race([p, t]);
  } finally {
    clearTimeout(timer);
  }
}

async function throughput(job: ThroughputJob): Promise<ThroughputResult> {
  let t0: number;
  let c0: number;
  let s0: number;
  let t1 = 0;
  let c1 = 0;
  let s1 = 0;
  const last = () => {
    t1 = performance.now();
    c1 = cpuUs();
    s1 = pidCpuMs(job.serverPid);
  };
  if (job.contender === "core") {
    const s = await openCore(job.url);
    t0 = performance.now();
    c0 = cpuUs();
    s0 = pidCpuMs(job.serverPid);
    await s.receive(job.deliverSubject!, job.messages, last);
    await s.close();
  } else {
    const s = await openSession(job.contender, job.url);
    const consumer = await s.consumer(job.stream, job.consumer);
    t0 = performance.now();
    c0 = cpuUs();
    s0 = pidCpuMs(job.serverPid);
    const it = await consumer.consume(job.maxMessages);
    let n = 0;
    let bytes = 0;
    for await (const m of it.messages) {
      bytes += m.data.length;
      if (job.ack) m.ack();
      if (++n === job.messages) {
        // The acks count as done once the server has them: flush (PING/PONG) before the clock stops.
        if (job.ack) await s.flush();
        last();
        break;
      }
    }
    if (n !== job.messages) throw new Error(`the loop ended after ${n} of ${job.messages}`);
    if (bytes !== n * job.payload)
      throw new Error(`payload bytes ${bytes}, want ${n * job.payload}`);
    await s.close();
  }
  if (t1 === 0) throw new Error("the loop ended before the last message");
  const seconds = (t1 - t0) / 1000;
  const cpu = c1 - c0;
  return {
    kind: "throughput",
    messages: job.messages,
    seconds,
    msgPerSec: job.messages / seconds,
    cpuUs: cpu,
    cpuUsPerMsg: cpu / job.messages,
    ...(job.serverPid !== undefined ? { serverCpuUs: (s1 - s0) * 1000 } : {}),
    maxRssKb: maxRssKb(),
  };
}

const HUNG_MS = 5_000;

function stat(xs: number[]): Stat {
  if (xs.length === 0) return { min: Number.NaN, median: Number.NaN, max: Number.NaN };
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return {
    min: s[0]!,
    median: s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2,
    max: s[s.length - 1]!,
  };
}

async function drain(job: DrainJob): Promise<DrainResult> {
  if (job.contender === "core") throw new Error("drain: no core contender");
  const s = await openSession(job.contender, job.url);
  const consumer = await s.consumer(job.stream, job.consumer);
  const out: DrainResult = {
    kind: "drain",
    latenciesMs: [],
    hung: 0,
    threw: 0,
    pendingAtCall: stat([]),
    handedOutAfter: stat([]),
    maxRssKb: 0,
  };
  const pendingAtCall: number[] = [];
  const handedOutAfter: number[] = [];
  for (let i = 0; i < job.trials; i++) {
    const it: BenchIter = await consumer.consume(job.maxMessages);
    let called = false;
    let after = 0;
    let tEnd = 0;
    let release!: () => void;
    const gate = new Promise<void>((r) => {
      release = r;
    });
    let gotFirst!: () => void;
    const first = new Promise<void>((r) => {
      gotFirst = r;
    });
    const loop = (async () => {
      let k = 0;
      for await (const _ of it.messages) {
        if (called) after++;
        if (k++ === 0) {
          // Hold the first message until the call, so the rest piles up in the local buffer.
          gotFirst();
          await gate;
        }
      }
      tEnd = performance.now();
    })();
    const outcome = loop.then(
      () => "ended" as const,
      () => "threw" as const,
    );
    if (job.mode === "idle") {
      // The pull request is on the server, nothing to deliver: the loop waits in next().
      await s.flush();
      await sleep(2);
    } else {
      if ((await within(first, 5_000)) === "timeout") throw new Error("no message arrived");
      const deadline = Date.now() + 500;
      while (it.pending() < job.maxMessages / 2 && Date.now() < deadline) await sleep(1);
    }
    pendingAtCall.push(it.pending());
    const t0 = performance.now();
    called = true;
    it.end();
    release();
    const r = await within(outcome, HUNG_MS);
    if (r === "ended") {
      out.latenciesMs.push(tEnd - t0);
      handedOutAfter.push(after);
    } else if (r === "threw") {
      out.threw++;
    } else {
      out.hung++;
    }
    await within(it.closed(), HUNG_MS);
  }
  out.pendingAtCall = stat(pendingAtCall);
  out.handedOutAfter = stat(handedOutAfter);
  out.maxRssKb = maxRssKb();
  await s.close();
  return out;
}

async function slow(job: SlowJob): Promise<SlowResult> {
  if (job.contender === "core") throw new Error("slow: no core contender");
  const s = await openSession(job.contender, job.url);
  const consumer = await s.consumer(job.stream, job.consumer);
  const t0 = performance.now();
  const c0 = cpuUs();
  const it = await consumer.consume(job.maxMessages);
  let peak = 0;
  const sample = () => {
    const p = it.pending();
    if (p > peak) peak = p;
  };
  const timer = setInterval(sample, 1);
  let n = 0;
  try {
    for await (const m of it.messages) {
      sample();
      await sleep(job.bodyMs);
      m.ack();
      if (++n === job.messages) break;
    }
  } finally {
    clearInterval(timer);
  }
  const seconds = (performance.now() - t0) / 1000;
  const cpu = cpuUs() - c0;
  if (n !== job.messages) throw new Error(`the loop ended after ${n} of ${job.messages}`);
  await s.close();
  return {
    kind: "slow",
    messages: n,
    seconds,
    peakPending: peak,
    cpuUs: cpu,
    maxRssKb: maxRssKb(),
  };
}

async function run(job: ChildJob): Promise<Result> {
  switch (job.kind) {
    case "throughput":
      return throughput(job);
    case "drain":
      return drain(job);
    case "slow":
      return slow(job);
    case "latency": {
      const { latencyConsumer } = await import("./latency.js");
      const open =
        job.contender === "core"
          ? { core: await openCore(job.url) }
          : { session: await openSession(job.contender, job.url) };
      return latencyConsumer(job, open, () => process.stdout.write("READY\n"));
    }
    case "publish":
      return (await import("./publisher.js")).publisher(job);
    case "many": {
      if (job.contender === "core") throw new Error("many: no core contender");
      const { many } = await import("./many.js");
      return many(job, await openSession(job.contender, job.url));
    }
    case "replay": {
      if (job.contender === "core") throw new Error("replay: no core contender");
      const { replay } = await import("./replay.js");
      return replay(job, await openSession(job.contender, job.url));
    }
  }
}

async function main(): Promise<void> {
  const arg = process.argv[2];
  if (!arg) throw new Error("usage: node child.js '<job json>'");
  const result = await run(JSON.parse(arg) as ChildJob);
  result.processCpuUs = cpuUs();
  process.stdout.write(`${JSON.stringify(result)}\n`, () => process.exit(0));
}

main().catch((err: unknown) => {
  process.stderr.write(`bench child failed: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
