/**
 * Turns the raw runs into medians, the markdown tables, the target checks and the chart spec.
 * Pure functions; the runner does the I/O.
 */
import {
  type Contender,
  type DrainJob,
  type DrainResult,
  type Job,
  LABELS,
  type Result,
  type SlowJob,
  type SlowResult,
  type ThroughputJob,
  type ThroughputResult,
} from "./types.js";

/** One measured run as latest.json keeps it. */
export interface Run {
  rep: number;
  job: Omit<Job, "url">;
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

export function median(xs: readonly number[]): number {
  if (xs.length === 0) return Number.NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** Nearest-rank percentile, p in 0..100. */
export function percentile(xs: readonly number[], p: number): number {
  if (xs.length === 0) return Number.NaN;
  const s = [...xs].sort((a, b) => a - b);
  const rank = Math.max(1, Math.ceil((p / 100) * s.length));
  return s[Math.min(s.length, rank) - 1]!;
}

function fmtInt(x: number): string {
  return Number.isFinite(x) ? Math.round(x).toLocaleString("en-US") : "—";
}

function fmt(x: number, digits = 2): string {
  return Number.isFinite(x) ? x.toFixed(digits) : "—";
}

function ratio(a: number, b: number): string {
  return Number.isFinite(a) && Number.isFinite(b) && b > 0 ? `${(a / b).toFixed(2)}×` : "—";
}

export function payloadLabel(bytes: number): string {
  return bytes >= 1024 ? `${bytes / 1024} KiB` : `${bytes} B`;
}

function mib(kb: number): number {
  return kb / 1024;
}

const JS_CONTENDERS: readonly Exclude<Contender, "core">[] = ["ours", "v3", "v2"];

// ── throughput ─────────────────────────────────────────────────────────────────────────────

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
  /** nats-server CPU over the child's life, per message. */
  serverCpuUsPerMsg: number;
  maxRssMiB: number;
}

function okRuns<R extends Result>(runs: readonly Run[], kind: R["kind"]): { job: Job; r: R }[] {
  return runs
    .filter((r) => r.result?.kind === kind)
    .map((r) => ({ job: r.job as Job, r: r.result as R }));
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
      if (run.cpu) g.server.push((run.cpu.serverMs * 1000) / job.messages);
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

function find(
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

export function throughputTable(rows: readonly ThroughputRow[]): string {
  const out = [
    "| acks | payload | max_messages | client | msgs/run | msg/s | ÷ v3 | ÷ ceiling | client CPU µs/msg | ÷ v3 | server CPU µs/msg | peak RSS MiB | ÷ v3 |",
    "|---|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
  ];
  const payloads = [...new Set(rows.map((r) => r.payload))].sort((a, b) => a - b);
  const scenarios = [
    ...new Set(
      rows.filter((r) => r.contender !== "core").map((r) => `${r.ack ? 1 : 0}|${r.maxMessages}`),
    ),
  ]
    .map((k) => k.split("|").map(Number) as [number, number])
    .sort((a, b) => b[0] - a[0] || a[1] - b[1]);
  for (const payload of payloads) {
    const ceiling = find(rows, "core", false, payload, 0);
    if (ceiling) {
      out.push(
        `| none (push) | ${payloadLabel(payload)} | — | **${LABELS.core}** | ${fmtInt(ceiling.messages)} | ${fmtInt(ceiling.msgPerSec)}${failNote(ceiling)} | | 1.00× | ${fmt(ceiling.cpuUsPerMsg)} | | ${fmt(ceiling.serverCpuUsPerMsg)} | ${fmt(ceiling.maxRssMiB, 1)} | |`,
      );
    }
    for (const [ack, maxMessages] of scenarios) {
      const v3 = find(rows, "v3", ack === 1, payload, maxMessages);
      for (const c of JS_CONTENDERS) {
        const r = find(rows, c, ack === 1, payload, maxMessages);
        if (!r) continue;
        const name = c === "ours" ? `**${LABELS[c]}**` : LABELS[c];
        out.push(
          `| ${ack ? "explicit" : "none"} | ${payloadLabel(payload)} | ${maxMessages} | ${name} | ${fmtInt(r.messages)} | ${fmtInt(r.msgPerSec)}${failNote(r)} | ${c === "v3" ? "" : ratio(r.msgPerSec, v3?.msgPerSec ?? Number.NaN)} | ${ratio(r.msgPerSec, ceiling?.msgPerSec ?? Number.NaN)} | ${fmt(r.cpuUsPerMsg)} | ${c === "v3" ? "" : ratio(r.cpuUsPerMsg, v3?.cpuUsPerMsg ?? Number.NaN)} | ${fmt(r.serverCpuUsPerMsg)} | ${fmt(r.maxRssMiB, 1)} | ${c === "v3" ? "" : ratio(r.maxRssMiB, v3?.maxRssMiB ?? Number.NaN)} |`,
        );
      }
    }
  }
  return out.join("\n");
}

function failNote(r: { failed: number }): string {
  return r.failed > 0 ? ` (${r.failed} run${r.failed > 1 ? "s" : ""} failed)` : "";
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

// ── targets ────────────────────────────────────────────────────────────────────────────────

export interface TargetCheck {
  target: string;
  measured: string;
  holds: boolean | undefined;
}

/** The worst case of `ours / v3` (or of `ours` alone) over the rows that match. */
function worst(
  rows: readonly ThroughputRow[],
  pick: (r: ThroughputRow) => boolean,
  value: (ours: ThroughputRow, other: ThroughputRow) => number,
  other: Contender,
  lowIsWorse: boolean,
): { value: number; where: string; all: string[] } {
  let w = { value: Number.NaN, where: "no data", all: [] as string[] };
  for (const ours of rows.filter((r) => r.contender === "ours" && pick(r))) {
    const o = find(rows, other, ours.ack, ours.payload, ours.maxMessages);
    if (!o) continue;
    const v = value(ours, o);
    const where = `${ours.ack ? "acks" : "no acks"} ${payloadLabel(ours.payload)} max ${ours.maxMessages}`;
    w.all.push(`${where}: ${v.toFixed(2)}×`);
    if (Number.isNaN(w.value) || (lowIsWorse ? v < w.value : v > w.value)) {
      w = { value: v, where, all: w.all };
    }
  }
  return w;
}

export function targetChecks(
  tp: readonly ThroughputRow[],
  dr: readonly DrainRow[],
  sl: readonly SlowRow[],
): TargetCheck[] {
  const checks: TargetCheck[] = [];
  const add = (
    target: string,
    w: { value: number; where: string; all: string[] },
    ok: (v: number) => boolean,
  ) => {
    const has = Number.isFinite(w.value);
    checks.push({
      target,
      measured: has ? `worst ${w.value.toFixed(2)}× (${w.where}); ${w.all.join(", ")}` : "no data",
      holds: has ? ok(w.value) : undefined,
    });
  };
  const tput = (o: ThroughputRow, x: ThroughputRow) => o.msgPerSec / x.msgPerSec;
  add(
    "throughput with acks ≥ 1.3× nats.js v3",
    worst(tp, (r) => r.ack, tput, "v3", true),
    (v) => v >= 1.3,
  );
  add(
    "throughput without acks ≥ 1.5× nats.js v3",
    worst(tp, (r) => !r.ack, tput, "v3", true),
    (v) => v >= 1.5,
  );
  add(
    "throughput without acks ≥ 0.6× the core subscription",
    worst(tp, (r) => !r.ack, tput, "core", true),
    (v) => v >= 0.6,
  );
  add(
    "client CPU per message ≤ 0.6× nats.js v3",
    worst(
      tp,
      () => true,
      (o, x) => o.cpuUsPerMsg / x.cpuUsPerMsg,
      "v3",
      false,
    ),
    (v) => v <= 0.6,
  );
  add(
    "peak RSS ≤ nats.js v3's (throughput runs)",
    worst(
      tp,
      () => true,
      (o, x) => o.maxRssMiB / x.maxRssMiB,
      "v3",
      false,
    ),
    (v) => v <= 1,
  );
  const idle = dr.find((r) => r.contender === "ours" && r.mode === "idle");
  checks.push({
    target: "drain latency p99 ≤ 2 ms idle (loopback)",
    measured: idle
      ? `p99 ${fmt(idle.p99, 3)} ms (median of ${idle.runs} runs; over all ${idle.runs * idle.trialsPerRun} trials ${fmt(idle.pooledP99, 3)} ms), ${idle.hung} ended late`
      : "no data",
    holds: idle ? idle.p99 <= 2 && idle.pooledP99 <= 2 && idle.hung === 0 : undefined,
  });
  const oursSlow = sl.find((r) => r.contender === "ours");
  const v3Slow = sl.find((r) => r.contender === "v3");
  checks.push({
    target: "slow consumer: peak RSS ≤ nats.js v3's",
    measured:
      oursSlow && v3Slow
        ? `${fmt(oursSlow.maxRssMiB, 1)} MiB vs ${fmt(v3Slow.maxRssMiB, 1)} MiB (${ratio(oursSlow.maxRssMiB, v3Slow.maxRssMiB)})`
        : "no data",
    holds: oursSlow && v3Slow ? oursSlow.maxRssMiB <= v3Slow.maxRssMiB : undefined,
  });
  checks.push({
    target: "slow consumer: backlog never above max_messages",
    measured: oursSlow
      ? `highest getPending() ${oursSlow.peakPendingMax} with max_messages ${oursSlow.maxMessages}`
      : "no data",
    holds: oursSlow ? oursSlow.peakPendingMax <= oursSlow.maxMessages : undefined,
  });
  return checks;
}

export function targetTable(checks: readonly TargetCheck[]): string {
  const out = ["| target | measured (medians) | holds |", "|---|---|---|"];
  for (const c of checks) {
    out.push(
      `| ${c.target} | ${c.measured} | ${c.holds === undefined ? "n/a" : c.holds ? "yes" : "**no**"} |`,
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

export function markdown(meta: Meta, runs: readonly Run[]): string {
  const tp = throughputRows(runs);
  const dr = drainRows(runs);
  const sl = slowRows(runs);
  const failed = runs.filter((r) => r.error !== undefined);
  const reps = Math.max(...runs.map((r) => r.rep)) + 1;
  const parts = [
    `### Machine\n\n${metaLines(meta)}\n${interferenceLine(runs)}`,
    `### Throughput, client CPU, peak RSS (median of ${reps} run${reps > 1 ? "s" : ""}, each in a fresh process)\n\n${throughputTable(tp)}`,
    `### Drain latency: from the call to the end of the \`for await\` loop (median over runs of each run's percentile)\n\n${drainTable(dr)}`,
    `### Slow consumer (loop body awaits ${sl[0]?.bodyMs ?? 1} ms per message, then acks)\n\n${slowTable(sl)}`,
    `### Targets\n\n${targetTable(targetChecks(tp, dr, sl))}`,
  ];
  if (failed.length > 0) {
    parts.push(
      `### Failed runs\n\n${failed.map((r) => `- rep ${r.rep + 1} ${r.job.kind} ${r.job.contender}: ${r.error}`).join("\n")}`,
    );
  }
  return `${parts.join("\n\n")}\n`;
}

// ── chart ──────────────────────────────────────────────────────────────────────────────────

/** A vega-lite spec: throughput by payload size, grouped by client, one panel per ack mode × max_messages. */
export function chartSpec(meta: Meta, runs: readonly Run[]): Record<string, unknown> {
  const rows = throughputRows(runs);
  const values: Record<string, unknown>[] = [];
  const panels = [
    ...new Set(
      rows.filter((r) => r.contender !== "core").map((r) => `${r.ack ? 1 : 0}|${r.maxMessages}`),
    ),
  ]
    .map((k) => k.split("|").map(Number) as [number, number])
    .sort((a, b) => b[0] - a[0] || a[1] - b[1]);
  for (const [ack, maxMessages] of panels) {
    const panel = `acks ${ack ? "explicit" : "none"}, max_messages ${maxMessages}`;
    for (const r of rows) {
      if (r.contender !== "core" && (r.ack !== (ack === 1) || r.maxMessages !== maxMessages)) {
        continue;
      }
      values.push({
        panel,
        payload: payloadLabel(r.payload),
        payloadBytes: r.payload,
        client: LABELS[r.contender],
        order: ["ours", "v3", "v2", "core"].indexOf(r.contender),
        msgPerSec: Math.round(r.msgPerSec),
      });
    }
  }
  const reps = Math.max(...runs.map((r) => r.rep)) + 1;
  return {
    $schema: "https://vega.github.io/schema/vega-lite/v6.json",
    title: {
      text: "JetStream consume(): throughput by payload size (msg/s, median)",
      subtitle: `nats-server ${meta.natsServer}, Node ${meta.node}, ${meta.cpus} CPUs (${meta.cpuModel}), ${reps} run${reps > 1 ? "s" : ""} each; core subscription = ceiling`,
    },
    data: { values },
    facet: {
      field: "panel",
      type: "nominal",
      title: null,
      sort: panels.map(([a, m]) => `acks ${a ? "explicit" : "none"}, max_messages ${m}`),
    },
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
        color: {
          field: "client",
          type: "nominal",
          sort: { field: "order" },
          scale: {
            domain: [LABELS.ours, LABELS.v3, LABELS.v2, LABELS.core],
            range: ["#e45756", "#4c78a8", "#72b7b2", "#9d9d9d"],
          },
          legend: { orient: "bottom", title: null, columns: 4, labelLimit: 400 },
        },
      },
    },
    config: { font: "DejaVu Sans, Helvetica, Arial, sans-serif", background: "white" },
  };
}
