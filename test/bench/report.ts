/**
 * Turns the raw runs into medians and the markdown report, and lists the charts; each family's
 * rows, table and chart live in their own module (report-throughput.ts, report-latency.ts,
 * report-many.ts, report-replay.ts), the targets in targets.ts. Pure functions; the runner does
 * the I/O.
 */
import { fmt, fmtInt, median, mib, percentile, ratio } from "./format.js";
import { latencyChart, latencyRows, latencyTable } from "./report-latency.js";
import { manyChart, manyIdleTable, manyLoadTable, manyRows } from "./report-many.js";
import { replayChart, replayRows, replayTable } from "./report-replay.js";
import { cpuChart, throughputChart, throughputRows, throughputTable } from "./report-throughput.js";
import { targetChecks, targetTable } from "./targets.js";
import {
  type Contender,
  type DrainJob,
  type DrainResult,
  type Job,
  LABELS,
  type Result,
  type SlowJob,
  type SlowResult,
} from "./types.js";

export { median, payloadLabel, percentile } from "./format.js";

/** A measured run's job as latest.json keeps it: without the server URL (of each kind). */
export type RunJob = Job extends infer J ? (J extends Job ? Omit<J, "url"> : never) : never;

/** One measured run as latest.json keeps it. */
export interface Run {
  rep: number;
  job: RunJob;
  /** Wall time of the whole child process, ms. */
  wallMs: number;
  /**
   * CPU during the child's life, ms: the whole machine (/proc/stat), the nats-server, the child
   * (all of its life), the runner, and what is left: other processes on the machine.
   */
  cpu?: { machineMs: number; serverMs: number; childMs: number; parentMs: number; otherMs: number };
  /** How long the runner waited for a quiet machine before this run, ms. */
  quietWaitMs?: number;
  /** Set when the run was measured more than once because other processes were busy. */
  attempts?: number;
  result?: Result;
  error?: string;
}

export interface Meta {
  date: string;
  mode: "full" | "short";
  node: string;
  natsServer: string;
  natsServerBin: string;
  cpus: number;
  cpuModel: string;
  memoryGiB: number;
  kernel: string;
  loadavgStart: number[];
  loadavgEnd: number[];
  libraries: Record<string, string>;
  commit: string;
  options: Record<string, unknown>;
  durationSeconds: number;
}

const JS_CONTENDERS: readonly Exclude<Contender, "core">[] = ["ours", "v3", "v2"];

function okRuns<R extends Result>(runs: readonly Run[], kind: R["kind"]): { job: Job; r: R }[] {
  return runs
    .filter((r) => r.result?.kind === kind)
    .map((r) => ({ job: r.job as Job, r: r.result as R }));
}

// ── drain latency ──────────────────────────────────────────────────────────────────────────

export interface DrainRow {
  contender: Contender;
  call: string;
  mode: "idle" | "buffer";
  runs: number;
  trialsPerRun: number;
  /** Medians over runs of each run's p50 / p99 / max. */
  p50: number;
  p99: number;
  max: number;
  /** p99 over every trial of every run. */
  pooledP99: number;
  hung: number;
  threw: number;
  pendingAtCall: number;
  handedOutAfter: number;
  maxRssMiB: number;
}

export function drainRows(runs: readonly Run[]): DrainRow[] {
  const list = okRuns<DrainResult>(runs, "drain");
  const keys = [...new Set(list.map(({ job }) => `${job.contender}|${(job as DrainJob).mode}`))];
  return keys.map((key) => {
    const sel = list.filter(({ job }) => `${job.contender}|${(job as DrainJob).mode}` === key);
    const job = sel[0]!.job as DrainJob;
    const rs = sel.map((x) => x.r);
    return {
      contender: job.contender,
      call: job.contender === "ours" ? "drain()" : "stop()",
      mode: job.mode,
      runs: rs.length,
      trialsPerRun: job.trials,
      p50: median(rs.map((r) => percentile(r.latenciesMs, 50))),
      p99: median(rs.map((r) => percentile(r.latenciesMs, 99))),
      max: median(rs.map((r) => Math.max(...r.latenciesMs))),
      pooledP99: percentile(
        rs.flatMap((r) => r.latenciesMs),
        99,
      ),
      hung: rs.reduce((a, r) => a + r.hung, 0),
      threw: rs.reduce((a, r) => a + r.threw, 0),
      pendingAtCall: median(rs.map((r) => r.pendingAtCall.median)),
      handedOutAfter: median(rs.map((r) => r.handedOutAfter.median)),
      maxRssMiB: median(rs.map((r) => mib(r.maxRssKb))),
    };
  });
}

export function drainTable(rows: readonly DrainRow[]): string {
  const out = [
    "| state at the call | client | call | trials × runs | p50 ms | p99 ms | max ms | ended late (> 5 s) / threw | buffered at the call | handed out after the call |",
    "|---|---|---|---:|---:|---:|---:|---:|---:|---:|",
  ];
  for (const mode of ["idle", "buffer"] as const) {
    for (const c of JS_CONTENDERS) {
      const r = rows.find((x) => x.contender === c && x.mode === mode);
      if (!r) continue;
      out.push(
        `| ${mode === "idle" ? "idle (pull open, nothing to deliver)" : "holding a buffer"} | ${c === "ours" ? `**${LABELS[c]}**` : LABELS[c]} | \`${r.call}\` | ${r.trialsPerRun} × ${r.runs} | ${fmt(r.p50, 3)} | ${fmt(r.p99, 3)} | ${fmt(r.max, 3)} | ${r.hung} / ${r.threw} | ${fmtInt(r.pendingAtCall)} | ${fmtInt(r.handedOutAfter)} |`,
      );
    }
  }
  return out.join("\n");
}

// ── slow consumer ──────────────────────────────────────────────────────────────────────────

export interface SlowRow {
  contender: Contender;
  maxMessages: number;
  messages: number;
  bodyMs: number;
  runs: number;
  /** Highest backlog over all runs, and the median of each run's peak. */
  peakPendingMax: number;
  peakPendingMedian: number;
  maxRssMiB: number;
  cpuUsPerMsg: number;
  seconds: number;
}

export function slowRows(runs: readonly Run[]): SlowRow[] {
  const list = okRuns<SlowResult>(runs, "slow");
  const contenders = [...new Set(list.map(({ job }) => job.contender))];
  return contenders.map((c) => {
    const sel = list.filter(({ job }) => job.contender === c);
    const job = sel[0]!.job as SlowJob;
    const rs = sel.map((x) => x.r);
    return {
      contender: c,
      maxMessages: job.maxMessages,
      messages: job.messages,
      bodyMs: job.bodyMs,
      runs: rs.length,
      peakPendingMax: Math.max(...rs.map((r) => r.peakPending)),
      peakPendingMedian: median(rs.map((r) => r.peakPending)),
      maxRssMiB: median(rs.map((r) => mib(r.maxRssKb))),
      cpuUsPerMsg: median(rs.map((r) => r.cpuUs / r.messages)),
      seconds: median(rs.map((r) => r.seconds)),
    };
  });
}

export function slowTable(rows: readonly SlowRow[]): string {
  const out = [
    "| client | max_messages | messages × runs | peak backlog (highest) | peak backlog (median) | peak RSS MiB | ÷ v3 | seconds |",
    "|---|---:|---:|---:|---:|---:|---:|---:|",
  ];
  const v3 = rows.find((r) => r.contender === "v3");
  for (const c of JS_CONTENDERS) {
    const r = rows.find((x) => x.contender === c);
    if (!r) continue;
    out.push(
      `| ${c === "ours" ? `**${LABELS[c]}**` : LABELS[c]} | ${r.maxMessages} | ${fmtInt(r.messages)} × ${r.runs} | ${r.peakPendingMax} | ${fmtInt(r.peakPendingMedian)} | ${fmt(r.maxRssMiB, 1)} | ${c === "v3" ? "" : ratio(r.maxRssMiB, v3?.maxRssMiB ?? Number.NaN)} | ${fmt(r.seconds, 2)} |`,
    );
  }
  return out.join("\n");
}

// ── the whole report ───────────────────────────────────────────────────────────────────────

export function metaLines(meta: Meta): string {
  const libs = Object.entries(meta.libraries)
    .map(([k, v]) => `${k} ${v}`)
    .join(", ");
  return [
    `- nats-server ${meta.natsServer} (${meta.natsServerBin}), one server for the whole run, on 127.0.0.1`,
    `- Node ${meta.node}; ${meta.cpus} CPUs (${meta.cpuModel}); ${meta.memoryGiB} GiB RAM; Linux ${meta.kernel}`,
    `- ${libs}; jetstream-iter at ${meta.commit}`,
    `- ${meta.date}, ${meta.mode} run, ${Math.round(meta.durationSeconds)} s; load average before ${meta.loadavgStart.map((x) => x.toFixed(2)).join(" ")}, after ${meta.loadavgEnd.map((x) => x.toFixed(2)).join(" ")}`,
  ].join("\n");
}

/** How much CPU other processes on the machine took while the children ran, in % of one core. */
export function interference(runs: readonly Run[]): { median: number; max: number } {
  const shares = runs
    .filter((r) => r.cpu && r.wallMs > 0)
    .map((r) => (100 * r.cpu!.otherMs) / r.wallMs);
  return { median: median(shares), max: shares.length ? Math.max(...shares) : Number.NaN };
}

function interferenceLine(runs: readonly Run[]): string {
  const i = interference(runs);
  const again = runs.filter((r) => (r.attempts ?? 1) > 1).length;
  const waited = runs.reduce((a, r) => a + (r.quietWaitMs ?? 0), 0) / 1000;
  return `- other processes' CPU during the kept runs (machine busy time less the server, the child and the runner): median ${fmt(i.median, 1)} %, highest ${fmt(i.max, 1)} % of one core; ${again} run${again === 1 ? "" : "s"} measured again because other processes were busy; ${waited.toFixed(0)} s spent waiting for a quiet machine`;
}

function reps(runs: readonly Run[]): number {
  return runs.length ? Math.max(...runs.map((r) => r.rep)) + 1 : 0;
}

function subtitle(meta: Meta, runs: readonly Run[]): string {
  const n = reps(runs);
  return `nats-server ${meta.natsServer}, Node ${meta.node}, ${meta.cpus} CPUs (${meta.cpuModel}), ${n} run${n > 1 ? "s" : ""} each${meta.mode === "short" ? ", short run" : ""}`;
}

export function markdown(meta: Meta, runs: readonly Run[]): string {
  const tp = throughputRows(runs);
  const dr = drainRows(runs);
  const sl = slowRows(runs);
  const lat = latencyRows(runs);
  const many = manyRows(runs);
  const replay = replayRows(runs);
  const failed = runs.filter((r) => r.error !== undefined);
  const n = reps(runs);
  const parts = [`### Machine\n\n${metaLines(meta)}\n${interferenceLine(runs)}`];
  if (tp.length) {
    parts.push(
      `### Throughput, client and server CPU, peak RSS (median of ${n} run${n > 1 ? "s" : ""}, each in a fresh process)\n\n${throughputTable(tp)}`,
    );
  }
  if (dr.length) {
    parts.push(
      `### Drain latency: from the call to the end of the \`for await\` loop (median over runs of each run's percentile)\n\n${drainTable(dr)}`,
    );
  }
  if (sl.length) {
    parts.push(
      `### Slow consumer (loop body awaits ${sl[0]?.bodyMs ?? 1} ms per message, then acks)\n\n${slowTable(sl)}`,
    );
  }
  if (lat.length) {
    parts.push(
      `### Latency: publish → loop body, 1 KiB, explicit acks, caught-up consumer (median over runs of each run's percentile)\n\n${latencyTable(lat)}`,
    );
  }
  if (many.length) {
    const m = many[0]!;
    parts.push(
      `### Many iterators on one connection, idle (\`max_messages\` ${m.maxMessages}, \`expires\` ${fmtInt(m.expires)} ms; CPU over a ${fmtInt(m.idleWindowMs)} ms window, × ${fmt(60_000 / m.idleWindowMs, 0)} per minute)\n\n${manyIdleTable(many)}`,
      `### Many iterators on one connection, under a shared load (${fmtInt(m.messages)} messages spread over the iterators' subjects, explicit acks; throughput over the first ${fmtInt(m.messages * 0.8)})\n\n${manyLoadTable(many)}`,
    );
  }
  if (replay.length) {
    parts.push(`### Ordered replay and fetch batches\n\n${replayTable(replay)}`);
  }
  parts.push(`### Targets\n\n${targetTable(targetChecks({ tp, dr, sl, lat, many, replay }))}`);
  if (failed.length > 0) {
    parts.push(
      `### Failed runs\n\n${failed.map((r) => `- rep ${r.rep + 1} ${r.job.kind} ${r.job.contender}: ${r.error}`).join("\n")}`,
    );
  }
  return `${parts.join("\n\n")}\n`;
}

/** The charts of a run: file-name suffix and vega-lite spec, for each family that ran. */
export function charts(
  meta: Meta,
  runs: readonly Run[],
): { suffix: string; spec: Record<string, unknown> }[] {
  const sub = subtitle(meta, runs);
  const out: { suffix: string; spec: Record<string, unknown> }[] = [];
  const tp = throughputRows(runs);
  if (tp.length) {
    out.push({ suffix: "", spec: throughputChart(tp, `${sub}; core subscription = ceiling`) });
    out.push({ suffix: "-cpu", spec: cpuChart(tp, sub) });
  }
  const lat = latencyRows(runs);
  if (lat.length) out.push({ suffix: "-latency", spec: latencyChart(lat, sub) });
  const many = manyRows(runs);
  if (many.length) out.push({ suffix: "-many", spec: manyChart(many, sub) });
  const replay = replayRows(runs);
  if (replay.length) out.push({ suffix: "-replay", spec: replayChart(replay, sub) });
  return out;
}
