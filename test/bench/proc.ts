/**
 * CPU and clock readings shared by the runner and the child processes: /proc/stat (the whole
 * machine), /proc/<pid>/stat (one process, e.g. the nats-server), this process's own CPU, and a
 * monotonic clock that every process on the machine reads the same.
 */
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";

/** Clock ticks per second of /proc's CPU times (`getconf CLK_TCK`, 100 where unknown). */
export const CLK_TCK = (() => {
  try {
    return Number.parseInt(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }), 10) || 100;
  } catch {
    return 100;
  }
})();

/** Busy CPU time of the whole machine so far, ms (/proc/stat; 0 where there is none). */
export function machineBusyMs(): number {
  try {
    const line = readFileSync("/proc/stat", "utf8").split("\n")[0]!;
    const f = line.trim().split(/\s+/).slice(1).map(Number);
    const total = f.slice(0, 8).reduce((a, b) => a + b, 0);
    const idle = (f[3] ?? 0) + (f[4] ?? 0);
    return ((total - idle) * 1000) / CLK_TCK;
  } catch {
    return 0;
  }
}

/**
 * CPU time (user + system) of process `pid` so far, ms (/proc/<pid>/stat; 0 where there is
 * none). Resolution: one clock tick (10 ms at CLK_TCK 100), so a figure per message needs a
 * cell of many messages.
 */
export function pidCpuMs(pid: number | undefined): number {
  if (pid === undefined) return 0;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return ((Number(f[11]) + Number(f[12])) * 1000) / CLK_TCK;
  } catch {
    return 0;
  }
}

/** User + system CPU time of this process so far, microseconds. */
export function cpuUs(): number {
  const r = process.resourceUsage();
  return r.userCPUTime + r.systemCPUTime;
}

/** Peak RSS of this process so far, KiB. */
export function maxRssKb(): number {
  return process.resourceUsage().maxRSS;
}

/**
 * Milliseconds on the system-wide monotonic clock (`process.hrtime`, CLOCK_MONOTONIC on Linux):
 * two processes on one machine read the same clock, so a time taken by the publisher and one
 * taken by the consumer can be subtracted.
 */
export function monoMs(): number {
  return Number(process.hrtime.bigint()) / 1e6;
}
