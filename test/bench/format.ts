/** Medians, percentiles and number formats shared by the report modules. Pure functions. */
import { CONTENDERS, type Contender, LABELS } from "./types.js";

/** Median of the finite values (NaN when there are none). */
export function median(xs: readonly (number | null | undefined)[]): number {
  const s = finite(xs).sort((a, b) => a - b);
  if (s.length === 0) return Number.NaN;
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** Nearest-rank percentile of the finite values, p in 0..100. */
export function percentile(xs: readonly (number | null | undefined)[], p: number): number {
  const s = finite(xs).sort((a, b) => a - b);
  if (s.length === 0) return Number.NaN;
  const rank = Math.max(1, Math.ceil((p / 100) * s.length));
  return s[Math.min(s.length, rank) - 1]!;
}

function finite(xs: readonly (number | null | undefined)[]): number[] {
  // JSON turns NaN into null: a figure a run could not take.
  return xs.filter((x): x is number => typeof x === "number" && Number.isFinite(x));
}

export function fmtInt(x: number): string {
  return Number.isFinite(x) ? Math.round(x).toLocaleString("en-US") : "—";
}

export function fmt(x: number | null | undefined, digits = 2): string {
  return typeof x === "number" && Number.isFinite(x) ? x.toFixed(digits) : "—";
}

export function ratio(a: number, b: number): string {
  return Number.isFinite(a) && Number.isFinite(b) && b > 0 ? `${(a / b).toFixed(2)}×` : "—";
}

export function yesNo(holds: boolean | undefined): string {
  return holds === undefined ? "n/a" : holds ? "yes" : "**no**";
}

export function payloadLabel(bytes: number): string {
  return bytes >= 1024 ? `${bytes / 1024} KiB` : `${bytes} B`;
}

export function mib(kb: number): number {
  return kb / 1024;
}

const COLORS: Record<Contender, string> = {
  ours: "#e45756",
  v3: "#4c78a8",
  v2: "#72b7b2",
  core: "#9d9d9d",
};

/**
 * The charts' colour encoding: the same colour per client in every chart, and a legend with
 * only the clients the chart shows (`labels`: the client names, defaults to LABELS).
 */
export function clientColors(
  present: readonly Contender[] = CONTENDERS,
  labels: Record<Contender, string> = LABELS,
): Record<string, unknown> {
  const shown = CONTENDERS.filter((c) => present.includes(c));
  return {
    field: "client",
    type: "nominal",
    sort: { field: "order" },
    scale: { domain: shown.map((c) => labels[c]), range: shown.map((c) => COLORS[c]) },
    legend: { orient: "bottom", title: null, columns: shown.length, labelLimit: 400 },
  };
}

export const CHART_CONFIG = {
  font: "DejaVu Sans, Helvetica, Arial, sans-serif",
  background: "white",
};
