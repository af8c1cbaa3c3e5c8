/** Many iterators on one connection: medians over runs, the two tables and the chart. Pure functions. */
import { CHART_CONFIG, clientColors, fmt, fmtInt, median, ratio, yesNo } from "./format.js";
import type { Run } from "./report.js";
import { type Contender, LABELS, type ManyJob, type ManyResult } from "./types.js";

export interface ManyRow {
  contender: Contender;
  n: number;
  runs: number;
  failed: number;
  maxMessages: number;
  expires: number;
  idleWindowMs: number;
  messages: number;
  idleHeapKb: number;
  idleRssKb: number;
  idleCpuMsPerMin: number;
  idleServerMsPerMin: number;
  idleDrainMs: number;
  loadMsgPerSec: number;
  loadHeapKb: number;
  loadRssKb: number;
  loadCpuUsPerMsg: number;
  loadServerUsPerMsg: number;
  loadDrainMs: number;
  /** Messages the loops received after the end calls under load (median over runs). */
  loadAfter: number;
  /** Messages left un-acked on the server after the child exited (median over runs). */
  unacked: number;
  /** Loops that had not ended 10 s after the end calls, over all runs (idle + load). */
  late: number;
}

export function manyRows(runs: readonly Run[]): ManyRow[] {
  const groups = new Map<string, { job: ManyJob; rs: ManyResult[]; failed: number }>();
  for (const run of runs) {
    if (run.job.kind !== "many") continue;
    const job = run.job as ManyJob;
    const key = `${job.contender}|${job.n}`;
    let g = groups.get(key);
    if (!g) {
      g = { job, rs: [], failed: 0 };
      groups.set(key, g);
    }
    if (run.result?.kind === "many") g.rs.push(run.result);
    else g.failed++;
  }
  return [...groups.values()].map(({ job, rs, failed }) => ({
    contender: job.contender,
    n: job.n,
    runs: rs.length,
    failed,
    maxMessages: job.maxMessages,
    expires: job.expires,
    idleWindowMs: job.idleWindowMs,
    messages: job.messages,
    idleHeapKb: median(rs.map((r) => r.idle.heapPerIterKb)),
    idleRssKb: median(rs.map((r) => r.idle.rssPerIterKb)),
    idleCpuMsPerMin: median(rs.map((r) => r.idle.cpuMsPerIterPerMin)),
    idleServerMsPerMin: median(rs.map((r) => r.idle.serverCpuMsPerIterPerMin)),
    idleDrainMs: median(rs.map((r) => r.idle.drainAllMs)),
    loadMsgPerSec: median(rs.map((r) => r.load.msgPerSec)),
    loadHeapKb: median(rs.map((r) => r.load.heapPerIterKb)),
    loadRssKb: median(rs.map((r) => r.load.rssPerIterKb)),
    loadCpuUsPerMsg: median(rs.map((r) => r.load.cpuUsPerMsg)),
    loadServerUsPerMsg: median(rs.map((r) => r.load.serverCpuUsPerMsg)),
    loadDrainMs: median(rs.map((r) => r.load.drainAllMs)),
    loadAfter: median(rs.map((r) => r.load.handedOutAfter)),
    unacked: median(rs.map((r) => r.unacked)),
    late: rs.reduce((a, r) => a + r.idle.drainAllLate + r.load.drainAllLate, 0),
  }));
}

/** Below this many iterators the heap per iterator is within GC noise: no verdict. */
export const HEAP_TARGET_MIN_ITERATORS = 100;

/** Per-iterator heap ≤ nats.js v3's, idle and under load, at `n` iterators. */
export function heapHolds(rows: readonly ManyRow[], n: number): boolean | undefined {
  if (n < HEAP_TARGET_MIN_ITERATORS) return undefined;
  const ours = rows.find((r) => r.contender === "ours" && r.n === n);
  const v3 = rows.find((r) => r.contender === "v3" && r.n === n);
  if (!ours || !v3) return undefined;
  const pairs = [
    [ours.idleHeapKb, v3.idleHeapKb],
    [ours.loadHeapKb, v3.loadHeapKb],
  ] as const;
  if (pairs.some(([a, b]) => !Number.isFinite(a) || !Number.isFinite(b))) return undefined;
  return pairs.every(([a, b]) => a <= b);
}

const CLIENTS: readonly Contender[] = ["ours", "v3"];

function each(rows: readonly ManyRow[], line: (r: ManyRow, v3: ManyRow | undefined) => string) {
  const out: string[] = [];
  for (const n of [...new Set(rows.map((r) => r.n))].sort((a, b) => a - b)) {
    const v3 = rows.find((r) => r.contender === "v3" && r.n === n);
    for (const c of CLIENTS) {
      const r = rows.find((x) => x.contender === c && x.n === n);
      if (r) out.push(line(r, v3));
    }
  }
  return out;
}

const name = (c: Contender) => (c === "ours" ? `**${LABELS[c]}**` : LABELS[c]);
const vs = (r: ManyRow, a: number, b: number | undefined) =>
  r.contender === "v3" ? "" : ratio(a, b ?? Number.NaN);

export function manyIdleTable(rows: readonly ManyRow[]): string {
  return [
    "| iterators | client | runs | heap KiB / iterator | ÷ v3 | RSS KiB / iterator | client CPU ms / iterator / min | ÷ v3 | server CPU ms / iterator / min | end all at once, ms | target: heap ≤ v3 |",
    "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ...each(
      rows,
      (r, v3) =>
        `| ${fmtInt(r.n)} | ${name(r.contender)} | ${r.runs}${r.failed ? ` (${r.failed} failed)` : ""} | ${fmt(r.idleHeapKb, 1)} | ${vs(r, r.idleHeapKb, v3?.idleHeapKb)} | ${fmt(r.idleRssKb, 1)} | ${fmt(r.idleCpuMsPerMin, 2)} | ${vs(r, r.idleCpuMsPerMin, v3?.idleCpuMsPerMin)} | ${fmt(r.idleServerMsPerMin, 2)} | ${fmt(r.idleDrainMs, 1)} | ${r.contender === "ours" ? yesNo(heapHolds(rows, r.n)) : ""} |`,
    ),
  ].join("\n");
}

export function manyLoadTable(rows: readonly ManyRow[]): string {
  return [
    "| iterators | client | msg/s, all iterators | ÷ v3 | heap KiB / iterator | ÷ v3 | RSS KiB / iterator | client CPU µs/msg | server CPU µs/msg | ÷ v3 | end all at once, ms | handed out after the end calls | left un-acked (until ack_wait) | loops late (> 10 s) |",
    "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ...each(
      rows,
      (r, v3) =>
        `| ${fmtInt(r.n)} | ${name(r.contender)} | ${fmtInt(r.loadMsgPerSec)} | ${vs(r, r.loadMsgPerSec, v3?.loadMsgPerSec)} | ${fmt(r.loadHeapKb, 1)} | ${vs(r, r.loadHeapKb, v3?.loadHeapKb)} | ${fmt(r.loadRssKb, 1)} | ${fmt(r.loadCpuUsPerMsg)} | ${fmt(r.loadServerUsPerMsg)} | ${vs(r, r.loadServerUsPerMsg, v3?.loadServerUsPerMsg)} | ${fmt(r.loadDrainMs, 1)} | ${fmtInt(r.loadAfter)} | ${fmtInt(r.unacked)} | ${r.late} |`,
    ),
  ].join("\n");
}

/** One panel per figure (independent scales), bars per iterator count and client. */
export function manyChart(rows: readonly ManyRow[], subtitle: string): Record<string, unknown> {
  const metrics: [string, (r: ManyRow) => number][] = [
    ["idle: heap KiB per iterator", (r) => r.idleHeapKb],
    ["idle: client CPU ms per iterator per minute", (r) => r.idleCpuMsPerMin],
    ["idle: end all at once, ms", (r) => r.idleDrainMs],
    ["load: msg/s, all iterators", (r) => r.loadMsgPerSec],
    ["load: heap KiB per iterator", (r) => r.loadHeapKb],
    ["load: end all at once, ms", (r) => r.loadDrainMs],
  ];
  const values = rows.flatMap((r) =>
    metrics.map(([metric, f], i) => ({
      metric,
      metricOrder: i,
      iterators: fmtInt(r.n),
      n: r.n,
      client: LABELS[r.contender],
      order: r.contender === "ours" ? 0 : 1,
      value: Number.isFinite(f(r)) ? f(r) : null,
    })),
  );
  return {
    $schema: "https://vega.github.io/schema/vega-lite/v6.json",
    title: { text: "Many iterators on one connection (median over runs)", subtitle },
    data: { values },
    facet: { field: "metric", type: "nominal", title: null, sort: metrics.map(([m]) => m) },
    columns: 3,
    resolve: { scale: { y: "independent" } },
    spec: {
      width: 220,
      height: 160,
      mark: { type: "bar", tooltip: true },
      encoding: {
        x: {
          field: "iterators",
          type: "ordinal",
          title: "iterators",
          sort: { field: "n" },
          axis: { labelAngle: 0 },
        },
        xOffset: { field: "client", type: "nominal", sort: { field: "order" } },
        y: { field: "value", type: "quantitative", title: null },
        color: clientColors(CLIENTS),
      },
    },
    config: CHART_CONFIG,
  };
}
