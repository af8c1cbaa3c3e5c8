/**
 * Latency: joining a cell's two sides (the consumer's loop-body times, the publisher's publish
 * and PubAck times), the medians over runs, the table and the chart. Pure functions.
 */
import {
  CHART_CONFIG,
  clientColors,
  fmt,
  fmtInt,
  median,
  percentile,
  ratio,
  yesNo,
} from "./format.js";
import type { Run } from "./report.js";
import {
  CONTENDERS,
  type Contender,
  LABELS,
  type LatencyJob,
  type LatencyRawResult,
  type LatencyResult,
  type Percentiles,
  type PublishResult,
} from "./types.js";

export function percentiles(xs: readonly number[]): Percentiles {
  return {
    count: xs.length,
    p50: percentile(xs, 50),
    p90: percentile(xs, 90),
    p99: percentile(xs, 99),
    max: xs.length ? Math.max(...xs) : Number.NaN,
  };
}

/**
 * Joins the two sides by message index, leaving out the first `job.warmup` messages and any
 * message one side did not see.
 */
export function joinLatency(
  job: LatencyJob,
  raw: LatencyRawResult,
  pub: PublishResult,
): LatencyResult {
  const fromPublish: number[] = [];
  const fromPubAck: number[] = [];
  const pubAck: number[] = [];
  for (let i = job.warmup; i < job.messages; i++) {
    const body = raw.bodyAt[i] ?? -1;
    const sent = pub.sentAt[i] ?? -1;
    const acked = pub.ackedAt[i] ?? -1;
    if (sent >= 0 && acked >= 0) pubAck.push(acked - sent);
    if (body < 0 || sent < 0) continue;
    fromPublish.push(body - sent);
    if (acked >= 0) fromPubAck.push(body - acked);
  }
  return {
    kind: "latency",
    rate: job.rate,
    messages: job.messages,
    received: raw.received,
    fromPublish: percentiles(fromPublish),
    fromPubAck: percentiles(fromPubAck),
    pubAck: percentiles(pubAck),
    behindMaxMs: pub.behindMaxMs,
    cpuUs: raw.cpuUs,
    cpuUsPerMsg: raw.received > 0 ? raw.cpuUs / raw.received : Number.NaN,
    ...(raw.serverCpuUs !== undefined && raw.received > 0
      ? { serverCpuUsPerMsg: raw.serverCpuUs / raw.received }
      : {}),
    maxRssKb: raw.maxRssKb,
    ...(raw.processCpuUs !== undefined ? { processCpuUs: raw.processCpuUs } : {}),
    ...(pub.processCpuUs !== undefined ? { publisherCpuUs: pub.processCpuUs } : {}),
  };
}

export interface LatencyRow {
  contender: Contender;
  rate: number;
  messages: number;
  runs: number;
  failed: number;
  /** Medians over runs of each run's figure, ms. */
  p50: number;
  p99: number;
  max: number;
  ackP50: number;
  ackP99: number;
  pubAckP50: number;
  /** Highest over runs. */
  behindMaxMs: number;
  lost: number;
  cpuUsPerMsg: number;
  serverCpuUsPerMsg: number;
}

export function latencyRows(runs: readonly Run[]): LatencyRow[] {
  const groups = new Map<string, { job: LatencyJob; rs: LatencyResult[]; failed: number }>();
  for (const run of runs) {
    if (run.job.kind !== "latency") continue;
    const job = run.job as LatencyJob;
    const key = `${job.contender}|${job.rate}`;
    let g = groups.get(key);
    if (!g) {
      g = { job, rs: [], failed: 0 };
      groups.set(key, g);
    }
    if (run.result?.kind === "latency") g.rs.push(run.result);
    else g.failed++;
  }
  return [...groups.values()].map(({ job, rs, failed }) => ({
    contender: job.contender,
    rate: job.rate,
    messages: job.messages,
    runs: rs.length,
    failed,
    p50: median(rs.map((r) => r.fromPublish.p50)),
    p99: median(rs.map((r) => r.fromPublish.p99)),
    max: median(rs.map((r) => r.fromPublish.max)),
    ackP50: median(rs.map((r) => r.fromPubAck.p50)),
    ackP99: median(rs.map((r) => r.fromPubAck.p99)),
    pubAckP50: median(rs.map((r) => r.pubAck.p50)),
    behindMaxMs: rs.length ? Math.max(...rs.map((r) => r.behindMaxMs)) : Number.NaN,
    lost: rs.reduce((a, r) => a + (r.messages - r.received), 0),
    cpuUsPerMsg: median(rs.map((r) => r.cpuUsPerMsg)),
    serverCpuUsPerMsg: median(rs.map((r) => r.serverCpuUsPerMsg ?? Number.NaN)),
  }));
}

/** The latency target: our p99 (publish → loop body) no worse than nats.js v3's at that rate. */
export function latencyHolds(rows: readonly LatencyRow[], rate: number): boolean | undefined {
  const ours = rows.find((r) => r.contender === "ours" && r.rate === rate);
  const v3 = rows.find((r) => r.contender === "v3" && r.rate === rate);
  if (!ours || !v3 || !Number.isFinite(ours.p99) || !Number.isFinite(v3.p99)) return undefined;
  return ours.p99 <= v3.p99;
}

export function latencyTable(rows: readonly LatencyRow[]): string {
  const out = [
    "| rate | client | msgs × runs | p50 ms | p99 ms | max ms | p99 ÷ v3 | PubAck → body p50 / p99 ms | publish → PubAck p50 ms | client CPU µs/msg | server CPU µs/msg | ÷ v3 | lost | publisher behind (max) ms | target: p99 ≤ v3 |",
    "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
  ];
  const rates = [...new Set(rows.map((r) => r.rate))].sort((a, b) => a - b);
  for (const rate of rates) {
    const v3 = rows.find((r) => r.contender === "v3" && r.rate === rate);
    for (const c of CONTENDERS) {
      const r = rows.find((x) => x.contender === c && x.rate === rate);
      if (!r) continue;
      const name = c === "ours" ? `**${LABELS[c]}**` : LABELS[c];
      const vs = (a: number, b: number | undefined) =>
        c === "v3" ? "" : ratio(a, b ?? Number.NaN);
      out.push(
        `| ${fmtInt(rate)}/s | ${name} | ${fmtInt(r.messages)} × ${r.runs}${r.failed ? ` (${r.failed} failed)` : ""} | ${fmt(r.p50, 3)} | ${fmt(r.p99, 3)} | ${fmt(r.max, 2)} | ${vs(r.p99, v3?.p99)} | ${fmt(r.ackP50, 3)} / ${fmt(r.ackP99, 3)} | ${fmt(r.pubAckP50, 3)} | ${fmt(r.cpuUsPerMsg)} | ${fmt(r.serverCpuUsPerMsg)} | ${vs(r.serverCpuUsPerMsg, v3?.serverCpuUsPerMsg)} | ${r.lost} | ${fmt(r.behindMaxMs, 1)} | ${c === "ours" ? yesNo(latencyHolds(rows, rate)) : ""} |`,
      );
    }
  }
  return out.join("\n");
}

/** Grouped bars: p50, p99 and max per client, one panel per rate (log scale). */
export function latencyChart(
  rows: readonly LatencyRow[],
  subtitle: string,
): Record<string, unknown> {
  const values = rows.flatMap((r) =>
    (["p50", "p99", "max"] as const).map((stat) => ({
      rate: `${fmtInt(r.rate)} msg/s`,
      rateValue: r.rate,
      stat,
      client: LABELS[r.contender],
      order: CONTENDERS.indexOf(r.contender),
      ms: Number.isFinite(r[stat]) ? Math.max(0.01, r[stat]) : null,
    })),
  );
  return {
    $schema: "https://vega.github.io/schema/vega-lite/v6.json",
    title: {
      text: "Publish → loop body latency, 1 KiB, caught-up consumer (ms, median over runs)",
      subtitle,
    },
    data: { values },
    facet: { field: "rate", type: "nominal", title: null, sort: { field: "rateValue" } },
    columns: 2,
    spec: {
      width: 300,
      height: 220,
      mark: { type: "bar", tooltip: true },
      encoding: {
        x: {
          field: "stat",
          type: "ordinal",
          title: null,
          sort: ["p50", "p99", "max"],
          axis: { labelAngle: 0 },
        },
        xOffset: { field: "client", type: "nominal", sort: { field: "order" } },
        y: {
          field: "ms",
          type: "quantitative",
          title: "ms (log scale)",
          // Bars on a log scale need a floor to start from (and no stacking).
          scale: { type: "log", domainMin: 0.05 },
          stack: null,
          axis: { format: "~g" },
        },
        color: clientColors([...new Set(rows.map((r) => r.contender))]),
      },
    },
    config: CHART_CONFIG,
  };
}
