/** The table of recovery times (markdown), from the runs' results. */
import type { RunResult, Scenario } from "./run.js";
import { DEADLINE_MS } from "./run.js";
import { CLIENTS } from "./types.js";

const fmtMs = (ms: number): string =>
  ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(ms < 10_000 ? 2 : 1)} s`;

const never = `> ${DEADLINE_MS / 1000} s`;

/** Median of numbers where null is "did not happen" (larger than any number). */
function median(xs: (number | null)[]): number | null {
  const s = [...xs].sort((a, b) => (a === null ? 1 : b === null ? -1 : a - b));
  if (s.length === 0) return null;
  const mid = Math.floor(s.length / 2);
  if (s.length % 2 === 1) return s[mid]!;
  const a = s[mid - 1]!;
  const b = s[mid]!;
  return a === null || b === null ? null : (a + b) / 2;
}

function worst(xs: (number | null)[]): number | null {
  return xs.some((x) => x === null) ? null : Math.max(...(xs as number[]));
}

const show = (x: number | null) => (x === null ? never : fmtMs(x));

export interface Failure {
  scenario: string;
  run: number;
  error: string;
}

/** One row per fault and client. */
export function table(scenarios: Scenario[], results: RunResult[], failures: Failure[]): string {
  const lines = [
    "| fault | resume counted from | back after (median) | client | runs | resume median | resume worst | lost | duplicates |",
    "|---|---|---:|---|---:|---:|---:|---:|---:|",
  ];
  for (const sc of scenarios) {
    const runs = results.filter((r) => r.scenario === sc.id);
    const failed = failures.filter((f) => f.scenario === sc.id);
    if (runs.length === 0) {
      lines.push(
        `| ${sc.label} | ${sc.from} | | both | 0 | — | — | — | — |${failed.length ? ` failed: ${failed[0]!.error}` : ""}`,
      );
      continue;
    }
    const backs = runs.map((r) => r.backMs).filter((x): x is number => x !== null);
    const back = sc.back && backs.length ? `${fmtMs(median(backs)!)} (${sc.back})` : "—";
    CLIENTS.forEach((client, i) => {
      const cs = runs.map((r) => r.clients.find((c) => c.client === client)!);
      const resumes = cs.map((c) => c.resumeMs);
      const lost = cs.reduce((s, c) => s + c.lost, 0);
      const notResumed = cs.filter((c) => c.resumeMs === null).length;
      const dup = cs.reduce((s, c) => s + c.duplicates, 0);
      const lostCell =
        lost === 0
          ? "0"
          : notResumed > 0
            ? `${lost} (not resumed: unconsumed at the deadline)`
            : `**${lost}**`;
      const ended = cs.filter((c) => c.ended).length;
      lines.push(
        [
          "",
          i === 0 ? sc.label : "",
          i === 0 ? sc.from : "",
          i === 0 ? back : "",
          client,
          `${runs.length}${failed.length && i === 0 ? ` (+${failed.length} failed)` : ""}`,
          show(median(resumes)),
          show(worst(resumes)),
          lostCell,
          `${dup}${ended ? ` (loop ended in ${ended})` : ""}`,
          "",
        ]
          .join(" | ")
          .trim(),
      );
    });
  }
  return lines.join("\n");
}

/** One line per run, for the progress log. */
export function runLine(r: RunResult): string {
  const parts = r.clients.map(
    (c) =>
      `${c.client} ${show(c.resumeMs)} (lost ${c.lost}, dup ${c.duplicates}${c.ended ? `, ended: ${c.ended}` : ""})`,
  );
  return `${r.backMs === null ? "" : `back ${fmtMs(r.backMs)}; `}${parts.join("; ")}`;
}
