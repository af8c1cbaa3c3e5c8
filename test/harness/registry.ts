/**
 * Bookkeeping that guarantees no nats-server outlives the test run.
 *
 * Every server the harness spawns is recorded as a file `<pid>` in the run directory that
 * the global setup creates (env `JSITER_HARNESS_RUN_DIR`). The file holds the temp dirs
 * to remove. The global teardown kills every recorded pid that is still a nats-server,
 * by pid, and removes the dirs — also when a worker crashed and never cleaned up.
 */
import { readdirSync, readFileSync, rmSync, unlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";

export const RUN_DIR_ENV = "JSITER_HARNESS_RUN_DIR";

function runDir(): string | undefined {
  return process.env[RUN_DIR_ENV];
}

/** Records a spawned server so the global teardown can reap it. */
export function recordProcess(pid: number, dirs: string[]): void {
  const dir = runDir();
  if (!dir) return;
  writeFileSync(join(dir, String(pid)), JSON.stringify(dirs));
}

/** Forgets a server the harness has already stopped and cleaned up itself. */
export function forgetProcess(pid: number): void {
  const dir = runDir();
  if (!dir) return;
  try {
    unlinkSync(join(dir, String(pid)));
  } catch {
    // already gone
  }
}

/** True when `pid` is alive and is a nats-server (guards against a recycled pid). */
export function isNatsServerPid(pid: number): boolean {
  try {
    const cmdline = readFileSync(`/proc/${pid}/cmdline`, "utf8");
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // state field follows the parenthesised command name; Z = zombie (already dead)
    const state = stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3);
    return cmdline.split("\0")[0]?.endsWith("nats-server") === true && state !== "Z";
  } catch {
    return false;
  }
}

/** Kills every recorded server still alive and removes its dirs; returns the pids it killed. */
export function reapRecorded(dir: string): number[] {
  const killed: number[] = [];
  let entries: string[] = [];
  try {
    entries = readdirSync(dir);
  } catch {
    return killed;
  }
  for (const name of entries) {
    const pid = Number(name);
    if (!Number.isInteger(pid) || pid <= 0) continue;
    if (isNatsServerPid(pid)) {
      try {
        process.kill(pid, "SIGKILL");
        killed.push(pid);
      } catch {
        // exited meanwhile
      }
    }
    try {
      const dirs = JSON.parse(readFileSync(join(dir, name), "utf8")) as string[];
      for (const d of dirs) rmSync(d, { recursive: true, force: true });
    } catch {
      // unreadable record: nothing more to clean
    }
  }
  return killed;
}
