/**
 * Starting the child processes of a run (`node child.js '<job>'`), and killing the ones still
 * running when the runner stops. Every child is killed by its own pid, never by name.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdirSync } from "node:fs";
import type { ChildJob, Result } from "./types.js";

const running = new Set<ChildProcess>();

/** Kills every child still running (SIGKILL, by pid). */
export function killChildren(): void {
  for (const child of running) {
    if (child.pid !== undefined && child.exitCode === null) child.kill("SIGKILL");
  }
}

export interface ChildOptions {
  /** Profile the child with `node --cpu-prof` into this folder. */
  cpuProf?: string | undefined;
  profileName: string;
  nodeArgs?: string[] | undefined;
  /** Called with each line the child prints before its result (e.g. READY). */
  onLine?: (line: string) => void;
  /** Killed after this long, ms. */
  timeoutMs?: number;
}

/** Runs one job in a fresh `node child.js`; resolves its Result (or rejects with its stderr). */
export function runChild(childJs: string, job: ChildJob, o: ChildOptions): Promise<Result> {
  const args: string[] = [...(o.nodeArgs ?? [])];
  if (o.cpuProf) {
    mkdirSync(o.cpuProf, { recursive: true });
    args.push(
      "--cpu-prof",
      "--cpu-prof-dir",
      o.cpuProf,
      "--cpu-prof-name",
      `${o.profileName}.cpuprofile`,
    );
  }
  args.push(childJs, JSON.stringify(job));
  return new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, args, { stdio: ["ignore", "pipe", "pipe"] });
    running.add(child);
    let stdout = "";
    let seen = 0;
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (d: string) => {
      stdout += d;
      if (!o.onLine) return;
      // Lines before the result: hand each complete one over once.
      let nl = stdout.indexOf("\n", seen);
      while (nl !== -1) {
        o.onLine(stdout.slice(seen, nl));
        seen = nl + 1;
        nl = stdout.indexOf("\n", seen);
      }
    });
    child.stderr.setEncoding("utf8").on("data", (d: string) => {
      stderr += d;
    });
    const timer = setTimeout(() => child.kill("SIGKILL"), o.timeoutMs ?? 300_000);
    child.once("error", (err) => {
      clearTimeout(timer);
      running.delete(child);
      reject(err);
    });
    child.once("exit", (code, signal) => {
      clearTimeout(timer);
      running.delete(child);
      const line = stdout.trim().split("\n").pop();
      if (code === 0 && line) {
        try {
          resolvePromise(JSON.parse(line) as Result);
          return;
        } catch {
          // fall through
        }
      }
      reject(
        new Error(
          `child exited ${code ?? signal}: ${stderr.trim().split("\n").slice(-3).join(" | ")}`,
        ),
      );
    });
  });
}

/**
 * A latency cell: the consumer first; once it printed READY, the publisher. Resolves both
 * results; if either fails, the other is killed and the failure is thrown.
 */
export async function runPair(
  childJs: string,
  consumer: ChildJob,
  publisher: ChildJob,
  o: ChildOptions,
): Promise<{ consumer: Result; publisher: Result }> {
  let ready!: () => void;
  const isReady = new Promise<void>((r) => {
    ready = r;
  });
  const c = runChild(childJs, consumer, {
    ...o,
    onLine: (line) => {
      if (line === "READY") ready();
    },
  });
  try {
    // The consumer failing before READY rejects here.
    await Promise.race([isReady, c]);
    const p = runChild(childJs, publisher, { ...o, profileName: `${o.profileName}-publisher` });
    const [cr, pr] = await Promise.all([c, p]);
    return { consumer: cr, publisher: pr };
  } catch (err) {
    killChildren();
    await c.catch(() => {});
    throw err;
  }
}
