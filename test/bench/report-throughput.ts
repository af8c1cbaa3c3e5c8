/**
 * Throughput: medians over runs, the table (with server CPU per message and our JetStream
 * layer's client CPU above the core-subscription ceiling as first-class columns, and the
 * per-cell target verdicts), the throughput chart and the CPU chart. Pure functions.
 */
import {
  CHART_CONFIG,
  clientColors,
  fmt,
  fmtInt,
  median,
  mib,
  payloadLabel,
  ratio,
  yesNo,
} from "./format.js";
import type { Run } from "./report.js";
import {
  CONTENDERS,
  type Contender,
  LABELS,
  type ThroughputJob,
  type ThroughputResult,
} from "./types.js";

export interface ThroughputRow {
  contender: Contender;
  ack: boolean;
  payload: number;
  maxMessages: number;
  messages: number;
  runs: number;
  failed: number;
  msgPerSec: number;
  cpuUsPerMsg: number;
  /**
   * nats-server CPU per message: over the measured interval (the child reads /proc/<pid>/stat
   * at the same moments as its own CPU), or, for runs recorded before that, over the child's life.
   */
  serverCpuUsPerMsg: number;
  maxRssMiB: number;
}

export function throughputRows(runs: readonly Run[]): ThroughputRow[] {
  const groups = new Map<
    string,
    { job: ThroughputJob; results: ThroughputResult[]; server: number[]; failed: number }
  >();
  for (const run of runs) {
    if (run.job.kind !== "throughput") continue;
    const job = run.job as ThroughputJob;
    const key = `${job.contender}|${job.ack}|${job.payload}|${job.maxMessages}`;
    let g = groups.get(key);
    if (!g) {
      g = { job, results: [], server: [], failed: 0 };
      groups.set(key, g);
    }
    if (run.result?.kind === "throughput") {
      g.results.push(run.result);
      if (run.result.serverCpuUs !== undefined)
        g.server.push(run.result.serverCpuUs / job.messages);
      else if (run.cpu) g.server.push((run.cpu.serverMs * 1000) / job.messages);
    } else {
      g.failed++;
    }
  }
  return [...groups.values()].map(({ job, results, server, failed }) => ({
    contender: job.contender,
    ack: job.ack,
    payload: job.payload,
    maxMessages: job.maxMessages,
    messages: job.messages,
    runs: results.length,
    failed,
    msgPerSec: median(results.map((r) => r.msgPerSec)),
    cpuUsPerMsg: median(results.map((r) => r.cpuUsPerMsg)),
    serverCpuUsPerMsg: median(server),
    maxRssMiB: median(results.map((r) => mib(r.maxRssKb))),
  }));
}

export function findRow(
  rows: readonly ThroughputRow[],
  contender: Contender,
  ack: boolean,
  payload: number,
  maxMessages: number,
): ThroughputRow | undefined {
  if (contender === "core")
    return rows.find((r) => r.contender === "core" && r.payload === payload);
  return rows.find(
    (r) =>
      r.contender === contender &&
      r.ack === ack &&
      r.payload === payload &&
      r.maxMessages === maxMessages,
  );
}

/**
 * Client CPU that the JetStream layer adds above the core subscription (same payload, no acks,
 * pushed), ours over nats.js v3's: (ours − ceiling) / (v3 − ceiling). NaN when a figure is
 * missing or v3 is not above the ceiling.
 */
export function layerRatio(rows: readonly ThroughputRow[], r: ThroughputRow): number {
  const core = findRow(rows, "core", false, r.payload, 0);
  const v3 = findRow(rows, "v3", r.ack, r.payload, r.maxMessages);
  if (!core || !v3) return Number.NaN;
  const theirs = v3.cpuUsPerMsg - core.cpuUsPerMsg;
  if (!(theirs > 0)) return Number.NaN;
  return (r.cpuUsPerMsg - core.cpuUsPerMsg) / theirs;
}

/** Issue 14's per-cell targets for one of our rows: name → holds (undefined: no data). */
export function cellTargets(
  rows: readonly ThroughputRow[],
  r: ThroughputRow,
): [string, boolean | undefined][] {
  const v3 = findRow(rows, "v3", r.ack, r.payload, r.maxMessages);
  const core = findRow(rows, "core", false, r.payload, 0);
  const q = (a: number | undefined, b: number | undefined) =>
    a !== undefined && b !== undefined && Number.isFinite(a) && b > 0 ? a / b : Number.NaN;
  const check = (x: number, ok: (x: number) => boolean) => (Number.isFinite(x) ? ok(x) : undefined);
  const out: [string, boolean | undefined][] = [];
  const tput = q(r.msgPerSec, v3?.msgPerSec);
  if (r.ack) {
    if (r.payload <= 1024) out.push(["≥ 1.3× v3", check(tput, (x) => x >= 1.3)]);
    out.push([
      "server ≤ 0.8× v3",
      check(q(r.serverCpuUsPerMsg, v3?.serverCpuUsPerMsg), (x) => x <= 0.8),
    ]);
  } else {
    out.push(["≥ 1.0× v3", check(tput, (x) => x >= 1)]);
    if (r.maxMessages === 1000)
      out.push(["≥ 0.8× ceiling", check(q(r.msgPerSec, core?.msgPerSec), (x) => x >= 0.8)]);
  }
  out.push(["layer ≤ 0.5× v3", check(layerRatio(rows, r), (x) => x <= 0.5)]);
  out.push([
    "RSS ≤ v3 + 2 MiB",
    v3 && Number.isFinite(r.maxRssMiB) && Number.isFinite(v3.maxRssMiB)
      ? r.maxRssMiB <= v3.maxRssMiB + 2
      : undefined,
  ]);
  return out;
}

function failNote(r: { failed: number }): string {
  return r.failed > 0 ? ` (${r.failed} run${r.failed > 1 ? "s" : ""} failed)` : "";
}

/** Acks first, then max_messages ascending: the scenarios of the client rows. */
export function scenarios(rows: readonly ThroughputRow[]): [number, number][] {
  return [
    ...new Set(
      rows.filter((r) => r.contender !== "core").map((r) => `${r.ack ? 1 : 0}|${r.maxMessages}`),
    ),
  ]
    .map((k) => k.split("|").map(Number) as [number, number])
    .sort((a, b) => b[0] - a[0] || a[1] - b[1]);
}

export function throughputTable(rows: readonly ThroughputRow[]): string {
  const out = [
    "| acks | payload | max_messages | client | msgs/run | msg/s | ÷ v3 | ÷ ceiling | client CPU µs/msg | ÷ v3 | layer CPU ÷ v3's | server CPU µs/msg | ÷ v3 | peak RSS MiB | ÷ v3 | targets (issue 14) |",
    "|---|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
  ];
  const payloads = [...new Set(rows.map((r) => r.payload))].sort((a, b) => a - b);
  for (const payload of payloads) {
    const ceiling = findRow(rows, "core", false, payload, 0);
    if (ceiling) {
      out.push(
        `| none (push) | ${payloadLabel(payload)} | — | **${LABELS.core}** | ${fmtInt(ceiling.messages)} | ${fmtInt(ceiling.msgPerSec)}${failNote(ceiling)} | | 1.00× | ${fmt(ceiling.cpuUsPerMsg)} | | | ${fmt(ceiling.serverCpuUsPerMsg)} | | ${fmt(ceiling.maxRssMiB, 1)} | | |`,
      );
    }
    for (const [ack, maxMessages] of scenarios(rows)) {
      const v3 = findRow(rows, "v3", ack === 1, payload, maxMessages);
      for (const c of ["ours", "v3", "v2"] as const) {
        const r = findRow(rows, c, ack === 1, payload, maxMessages);
        if (!r) continue;
        const name = c === "ours" ? `**${LABELS[c]}**` : LABELS[c];
        const vs = (a: number, b: number | undefined) =>
          c === "v3" ? "" : ratio(a, b ?? Number.NaN);
        const layer = c === "v3" ? "" : fmt(layerRatio(rows, r));
        const targets =
          c === "ours"
            ? cellTargets(rows, r)
                .map(([t, h]) => `${t}: ${yesNo(h)}`)
                .join("; ")
            : "";
        out.push(
          `| ${ack ? "explicit" : "none"} | ${payloadLabel(payload)} | ${maxMessages} | ${name} | ${fmtInt(r.messages)} | ${fmtInt(r.msgPerSec)}${failNote(r)} | ${vs(r.msgPerSec, v3?.msgPerSec)} | ${ratio(r.msgPerSec, ceiling?.msgPerSec ?? Number.NaN)} | ${fmt(r.cpuUsPerMsg)} | ${vs(r.cpuUsPerMsg, v3?.cpuUsPerMsg)} | ${layer} | ${fmt(r.serverCpuUsPerMsg)} | ${vs(r.serverCpuUsPerMsg, v3?.serverCpuUsPerMsg)} | ${fmt(r.maxRssMiB, 1)} | ${vs(r.maxRssMiB, v3?.maxRssMiB)} | ${targets} |`,
        );
      }
    }
  }
  return out.join("\n");
}

const panelName = ([ack, maxMessages]: [number, number]) =>
  `acks ${ack ? "explicit" : "none"}, max_messages ${maxMessages}`;

/** Throughput by payload size, grouped by client, one panel per ack mode × max_messages. */
export function throughputChart(
  rows: readonly ThroughputRow[],
  subtitle: string,
): Record<string, unknown> {
  const values: Record<string, unknown>[] = [];
  const panels = scenarios(rows);
  for (const [ack, maxMessages] of panels) {
    const panel = panelName([ack, maxMessages]);
    for (const r of rows) {
      if (r.contender !== "core" && (r.ack !== (ack === 1) || r.maxMessages !== maxMessages)) {
        continue;
      }
      values.push({
        panel,
        payload: payloadLabel(r.payload),
        payloadBytes: r.payload,
        client: LABELS[r.contender],
        order: CONTENDERS.indexOf(r.contender),
        msgPerSec: Math.round(r.msgPerSec),
      });
    }
  }
  return {
    $schema: "https://vega.github.io/schema/vega-lite/v6.json",
    title: { text: "JetStream consume(): throughput by payload size (msg/s, median)", subtitle },
    data: { values },
    facet: { field: "panel", type: "nominal", title: null, sort: panels.map(panelName) },
    columns: 2,
    spec: {
      width: 300,
      height: 200,
      mark: { type: "bar", tooltip: true },
      encoding: {
        x: {
          field: "payload",
          type: "ordinal",
          title: "payload",
          sort: { field: "payloadBytes" },
          axis: { labelAngle: 0 },
        },
        xOffset: { field: "client", type: "nominal", sort: { field: "order" } },
        y: {
          field: "msgPerSec",
          type: "quantitative",
          title: "msg/s (log scale)",
          scale: {
            type: "log",
            domainMin: 1000,
            domainMax: Math.max(1000, ...rows.map((r) => r.msgPerSec || 0)) * 1.3,
          },
          stack: null,
          axis: { format: "~s" },
        },
        color: clientColors([...new Set(rows.map((r) => r.contender))]),
      },
    },
    config: CHART_CONFIG,
  };
}

/**
 * CPU per message, client and server, for every throughput cell: two rows of panels (client,
 * nats-server), one column per ack mode × max_messages, bars by payload and client.
 */
export function cpuChart(
  rows: readonly ThroughputRow[],
  subtitle: string,
): Record<string, unknown> {
  const values: Record<string, unknown>[] = [];
  const panels = scenarios(rows);
  for (const [ack, maxMessages] of panels) {
    for (const r of rows) {
      if (r.contender !== "core" && (r.ack !== (ack === 1) || r.maxMessages !== maxMessages)) {
        continue;
      }
      for (const [who, us] of [
        ["client CPU µs/msg", r.cpuUsPerMsg],
        ["nats-server CPU µs/msg", r.serverCpuUsPerMsg],
      ] as const) {
        values.push({
          panel: panelName([ack, maxMessages]),
          who,
          payload: payloadLabel(r.payload),
          payloadBytes: r.payload,
          client: LABELS[r.contender],
          order: CONTENDERS.indexOf(r.contender),
          us: Number.isFinite(us) ? us : null,
        });
      }
    }
  }
  return {
    $schema: "https://vega.github.io/schema/vega-lite/v6.json",
    title: { text: "CPU per message: the client and the nats-server (µs, median)", subtitle },
    data: { values },
    facet: {
      row: { field: "who", type: "nominal", title: null },
      column: { field: "panel", type: "nominal", title: null, sort: panels.map(panelName) },
    },
    spec: {
      width: 180,
      height: 160,
      mark: { type: "bar", tooltip: true },
      encoding: {
        x: {
          field: "payload",
          type: "ordinal",
          title: "payload",
          sort: { field: "payloadBytes" },
          axis: { labelAngle: 0 },
        },
        xOffset: { field: "client", type: "nominal", sort: { field: "order" } },
        y: { field: "us", type: "quantitative", title: null },
        color: clientColors([...new Set(rows.map((r) => r.contender))]),
      },
    },
    resolve: { scale: { y: "independent" } },
    config: CHART_CONFIG,
  };
}
