/**
 * The targets (issue 14, item 5, plus the two earlier ones no later target replaced), checked
 * against the medians of one run. Reporting only: nothing here fails a run, in CI or anywhere.
 */
import { fmt, payloadLabel, ratio } from "./format.js";
import type { DrainRow, SlowRow } from "./report.js";
import { type LatencyRow, latencyHolds } from "./report-latency.js";
import { HEAP_TARGET_MIN_ITERATORS, heapHolds, type ManyRow } from "./report-many.js";
import { orderedHolds, type ReplayRow } from "./report-replay.js";
import { findRow, layerRatio, type ThroughputRow } from "./report-throughput.js";

export interface TargetCheck {
  target: string;
  measured: string;
  holds: boolean | undefined;
}

export interface AllRows {
  tp: readonly ThroughputRow[];
  dr: readonly DrainRow[];
  sl: readonly SlowRow[];
  lat: readonly LatencyRow[];
  many: readonly ManyRow[];
  replay: readonly ReplayRow[];
}

const where = (r: ThroughputRow) =>
  `${r.ack ? "acks" : "no acks"} ${payloadLabel(r.payload)} max ${r.maxMessages}`;

/**
 * The worst value of `value(ours row)` over our rows that `pick` selects (lowest when
 * `lowIsWorse`, else highest), with every cell's value listed.
 */
function worst(
  tp: readonly ThroughputRow[],
  pick: (r: ThroughputRow) => boolean,
  value: (r: ThroughputRow) => number,
  lowIsWorse: boolean,
  unit = "×",
): { value: number; text: string } {
  let w = Number.NaN;
  let at = "";
  const all: string[] = [];
  for (const r of tp.filter((x) => x.contender === "ours" && pick(x))) {
    const v = value(r);
    if (!Number.isFinite(v)) continue;
    all.push(`${where(r)}: ${v.toFixed(2)}${unit}`);
    if (Number.isNaN(w) || (lowIsWorse ? v < w : v > w)) {
      w = v;
      at = where(r);
    }
  }
  return {
    value: w,
    text: Number.isFinite(w)
      ? `worst ${w.toFixed(2)}${unit} (${at}); ${all.join(", ")}`
      : "no data",
  };
}

export function targetChecks(rows: AllRows): TargetCheck[] {
  const { tp, dr, sl, lat, many, replay } = rows;
  const checks: TargetCheck[] = [];
  const add = (target: string, w: { value: number; text: string }, ok: (v: number) => boolean) =>
    checks.push({
      target,
      measured: w.text,
      holds: Number.isFinite(w.value) ? ok(w.value) : undefined,
    });
  const vsV3 = (f: (r: ThroughputRow) => number) => (r: ThroughputRow) => {
    const v3 = findRow(tp, "v3", r.ack, r.payload, r.maxMessages);
    return v3 && f(v3) > 0 ? f(r) / f(v3) : Number.NaN;
  };
  add(
    "throughput with acks ≥ 1.3× nats.js v3, at 128 B and 1 KiB",
    worst(
      tp,
      (r) => r.ack && r.payload <= 1024,
      vsV3((r) => r.msgPerSec),
      true,
    ),
    (v) => v >= 1.3,
  );
  add(
    "throughput without acks ≥ 1.0× nats.js v3 in every cell",
    worst(
      tp,
      (r) => !r.ack,
      vsV3((r) => r.msgPerSec),
      true,
    ),
    (v) => v >= 1,
  );
  add(
    "throughput without acks ≥ 0.8× the core subscription at max_messages 1000",
    worst(
      tp,
      (r) => !r.ack && r.maxMessages === 1000,
      (r) => {
        const core = findRow(tp, "core", false, r.payload, 0);
        return core && core.msgPerSec > 0 ? r.msgPerSec / core.msgPerSec : Number.NaN;
      },
      true,
    ),
    (v) => v >= 0.8,
  );
  add(
    "client CPU our JetStream layer adds above the core subscription ≤ 0.5× nats.js v3's: (ours − ceiling) / (v3 − ceiling)",
    worst(
      tp,
      () => true,
      (r) => layerRatio(tp, r),
      false,
    ),
    (v) => v <= 0.5,
  );
  add(
    "nats-server CPU per message with acks ≤ 0.8× nats.js v3's",
    worst(
      tp,
      (r) => r.ack,
      vsV3((r) => r.serverCpuUsPerMsg),
      false,
    ),
    (v) => v <= 0.8,
  );
  const rss = worst(
    tp,
    () => true,
    (r) => {
      const v3 = findRow(tp, "v3", r.ack, r.payload, r.maxMessages);
      return v3 ? r.maxRssMiB - v3.maxRssMiB : Number.NaN;
    },
    false,
    " MiB",
  );
  const oursSlow = sl.find((r) => r.contender === "ours");
  const v3Slow = sl.find((r) => r.contender === "v3");
  const slowDiff = oursSlow && v3Slow ? oursSlow.maxRssMiB - v3Slow.maxRssMiB : Number.NaN;
  const rssWorst = [rss.value, slowDiff].filter(Number.isFinite);
  checks.push({
    target: "peak RSS ≤ nats.js v3's + 2 MiB (throughput cells and the slow consumer)",
    measured: `throughput: ${rss.text}; slow consumer: ${Number.isFinite(slowDiff) ? `${slowDiff.toFixed(2)} MiB` : "no data"} (ours − v3)`,
    holds: rssWorst.length ? Math.max(...rssWorst) <= 2 : undefined,
  });
  const orderedMaxes = [
    ...new Set(replay.filter((r) => r.mode === "ordered").map((r) => r.maxMessages)),
  ].sort((a, b) => a - b);
  for (const max of orderedMaxes.length ? orderedMaxes : [Number.NaN]) {
    const ordered = orderedHolds(replay, max);
    checks.push({
      target: `ordered replay ≥ 1.2× nats.js v3's ordered consume()${Number.isFinite(max) ? `, max_messages ${max}` : ""}`,
      measured: Number.isFinite(ordered.ratio) ? `${ordered.ratio.toFixed(2)}×` : "no data",
      holds: ordered.holds,
    });
  }
  for (const rate of [...new Set(lat.map((r) => r.rate))].sort((a, b) => a - b)) {
    const ours = lat.find((r) => r.contender === "ours" && r.rate === rate);
    const v3 = lat.find((r) => r.contender === "v3" && r.rate === rate);
    checks.push({
      target: `latency p99 (publish → loop body) no worse than nats.js v3's at ${rate.toLocaleString("en-US")} msg/s`,
      measured:
        ours && v3
          ? `${fmt(ours.p99, 3)} ms vs ${fmt(v3.p99, 3)} ms (${ratio(ours.p99, v3.p99)})`
          : "no data",
      holds: latencyHolds(lat, rate),
    });
  }
  const counts = [...new Set(many.map((r) => r.n))].filter((n) => n >= HEAP_TARGET_MIN_ITERATORS);
  const heap = counts.map((n) => ({ n, holds: heapHolds(many, n) }));
  const heapText = counts
    .map((n) => {
      const o = many.find((r) => r.contender === "ours" && r.n === n);
      const v = many.find((r) => r.contender === "v3" && r.n === n);
      return o && v
        ? `${n}: idle ${fmt(o.idleHeapKb, 1)} vs ${fmt(v.idleHeapKb, 1)} KiB, load ${fmt(o.loadHeapKb, 1)} vs ${fmt(v.loadHeapKb, 1)} KiB`
        : `${n}: no data`;
    })
    .join("; ");
  checks.push({
    target: `heap per iterator ≤ nats.js v3's, idle and under load (${HEAP_TARGET_MIN_ITERATORS}+ iterators)`,
    measured: heapText || "no data",
    holds:
      heap.length && heap.every((h) => h.holds !== undefined)
        ? heap.every((h) => h.holds)
        : undefined,
  });
  const idle = dr.find((r) => r.contender === "ours" && r.mode === "idle");
  checks.push({
    target: "(earlier) drain latency p99 ≤ 2 ms idle (loopback)",
    measured: idle
      ? `p99 ${fmt(idle.p99, 3)} ms (median of ${idle.runs} runs; over all ${idle.runs * idle.trialsPerRun} trials ${fmt(idle.pooledP99, 3)} ms), ${idle.hung} ended late`
      : "no data",
    holds: idle ? idle.p99 <= 2 && idle.pooledP99 <= 2 && idle.hung === 0 : undefined,
  });
  checks.push({
    target: "(earlier) slow consumer: backlog never above max_messages",
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
