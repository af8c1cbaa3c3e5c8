/** Ordered replay and fetch batches: medians over runs, the table and the chart. Pure functions. */
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
import { type Contender, NAMES, type ReplayJob, type ReplayResult } from "./types.js";

export interface ReplayRow {
  contender: Contender;
  mode: "ordered" | "fetch";
  maxMessages: number;
  payload: number;
  messages: number;
  runs: number;
  failed: number;
  msgPerSec: number;
  cpuUsPerMsg: number;
  serverCpuUsPerMsg: number;
  maxRssMiB: number;
  batches: number;
}

export function replayRows(runs: readonly Run[]): ReplayRow[] {
  const groups = new Map<string, { job: ReplayJob; rs: ReplayResult[]; failed: number }>();
  for (const run of runs) {
    if (run.job.kind !== "replay") continue;
    const job = run.job as ReplayJob;
    const key = `${job.contender}|${job.mode}|${job.maxMessages}`;
    let g = groups.get(key);
    if (!g) {
      g = { job, rs: [], failed: 0 };
      groups.set(key, g);
    }
    if (run.result?.kind === "replay") g.rs.push(run.result);
    else g.failed++;
  }
  return [...groups.values()].map(({ job, rs, failed }) => ({
    contender: job.contender,
    mode: job.mode,
    maxMessages: job.maxMessages,
    payload: job.payload,
    messages: job.messages,
    runs: rs.length,
    failed,
    msgPerSec: median(rs.map((r) => r.msgPerSec)),
    cpuUsPerMsg: median(rs.map((r) => r.cpuUsPerMsg)),
    serverCpuUsPerMsg: median(rs.map((r) => (r.serverCpuUs ?? Number.NaN) / r.messages)),
    maxRssMiB: median(rs.map((r) => mib(r.maxRssKb))),
    batches: median(rs.map((r) => r.batches)),
  }));
}

/** Ordered replay ≥ 1.2× nats.js v3's ordered consume(), at one `max_messages`. */
export function orderedHolds(
  rows: readonly ReplayRow[],
  maxMessages: number,
): {
  ratio: number;
  holds: boolean | undefined;
} {
  const at = (c: string) =>
    rows.find((r) => r.contender === c && r.mode === "ordered" && r.maxMessages === maxMessages);
  const ours = at("ours");
  const v3 = at("v3");
  if (!ours || !v3 || !Number.isFinite(ours.msgPerSec) || !(v3.msgPerSec > 0)) {
    return { ratio: Number.NaN, holds: undefined };
  }
  const x = ours.msgPerSec / v3.msgPerSec;
  return { ratio: x, holds: x >= 1.2 };
}

const modeLabel = (r: ReplayRow) =>
  r.mode === "ordered"
    ? `ordered consume(), max_messages ${r.maxMessages}`
    : `fetch batches of ${r.maxMessages}, explicit acks`;

/** The call each client makes in each mode. */
function call(c: Contender, mode: ReplayRow["mode"]): string {
  if (mode === "ordered") return c === "ours" ? "consume(ordered)" : "ordered.consume()";
  return c === "ours" ? "fetchMessages()" : "fetch()";
}

export function replayTable(rows: readonly ReplayRow[]): string {
  const out = [
    "| mode | client | messages × runs | msg/s | ÷ v3 | client CPU µs/msg | ÷ v3 | server CPU µs/msg | ÷ v3 | peak RSS MiB | batches | target: ordered ≥ 1.2× v3 |",
    "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
  ];
  const modes = [...new Set(rows.map((r) => `${r.mode}|${r.maxMessages}`))].sort();
  for (const m of modes) {
    const sel = rows.filter((r) => `${r.mode}|${r.maxMessages}` === m);
    const v3 = sel.find((r) => r.contender === "v3");
    for (const c of ["ours", "v3"] as const) {
      const r = sel.find((x) => x.contender === c);
      if (!r) continue;
      const vs = (a: number, b: number | undefined) =>
        c === "v3" ? "" : ratio(a, b ?? Number.NaN);
      const target =
        c === "ours" && r.mode === "ordered" ? yesNo(orderedHolds(rows, r.maxMessages).holds) : "";
      out.push(
        `| ${modeLabel(r)}, ${payloadLabel(r.payload)} | ${c === "ours" ? `**${NAMES[c]}** \`${call(c, r.mode)}\`` : `${NAMES[c]} \`${call(c, r.mode)}\``} | ${fmtInt(r.messages)} × ${r.runs}${r.failed ? ` (${r.failed} failed)` : ""} | ${fmtInt(r.msgPerSec)} | ${vs(r.msgPerSec, v3?.msgPerSec)} | ${fmt(r.cpuUsPerMsg)} | ${vs(r.cpuUsPerMsg, v3?.cpuUsPerMsg)} | ${fmt(r.serverCpuUsPerMsg)} | ${vs(r.serverCpuUsPerMsg, v3?.serverCpuUsPerMsg)} | ${fmt(r.maxRssMiB, 1)} | ${r.mode === "fetch" ? fmtInt(r.batches) : "—"} | ${target} |`,
      );
    }
  }
  return out.join("\n");
}

export function replayChart(rows: readonly ReplayRow[], subtitle: string): Record<string, unknown> {
  const values = rows.map((r) => ({
    mode:
      r.mode === "ordered"
        ? `ordered, max_messages ${r.maxMessages}`
        : `fetch batches of ${r.maxMessages}`,
    client: NAMES[r.contender],
    order: r.contender === "ours" ? 0 : 1,
    msgPerSec: Number.isFinite(r.msgPerSec) ? Math.round(r.msgPerSec) : null,
  }));
  return {
    $schema: "https://vega.github.io/schema/vega-lite/v6.json",
    title: {
      text: `Ordered replay and fetch batches of a ${fmtInt(rows[0]?.messages ?? Number.NaN)}-message stream (msg/s, median)`,
      subtitle,
    },
    data: { values },
    width: 420,
    height: 220,
    mark: { type: "bar", tooltip: true },
    encoding: {
      x: { field: "mode", type: "nominal", title: null, axis: { labelAngle: 0, labelLimit: 220 } },
      xOffset: { field: "client", type: "nominal", sort: { field: "order" } },
      y: { field: "msgPerSec", type: "quantitative", title: "msg/s", axis: { format: "~s" } },
      color: clientColors(["ours", "v3"], NAMES),
    },
    config: CHART_CONFIG,
  };
}
