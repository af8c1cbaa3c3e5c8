/**
 * `jetstream-iter bench`: runs the benchmark suite of a source checkout, exactly as
 * `npm run bench` does — compile test/bench with `tsc -p test/bench/tsconfig.json`, then run
 * `node test/bench/results/tmp/build/test/bench/main.js [args]` — from the package root.
 * An installed package has no test/bench: that is a clear error, not a crash.
 */
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";
import { CliError } from "./errors.js";
import { packageRoot } from "./root.js";

const BENCH_TSCONFIG = "test/bench/tsconfig.json";
const BENCH_MAIN = "test/bench/results/tmp/build/test/bench/main.js";

/** Runs a child to its end with the terminal's stdio; forwards SIGINT/SIGTERM to it by pid. */
function run(cmd: string, args: string[], cwd: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd, stdio: "inherit" });
    const forward = (sig: NodeJS.Signals) => {
      if (child.pid !== undefined && child.exitCode === null) child.kill(sig);
    };
    process.on("SIGINT", forward);
    process.on("SIGTERM", forward);
    const done = () => {
      process.off("SIGINT", forward);
      process.off("SIGTERM", forward);
    };
    child.once("error", (err) => {
      done();
      reject(err);
    });
    child.once("exit", (code, signal) => {
      done();
      resolve(code ?? (signal === "SIGINT" ? 130 : 1));
    });
  });
}

export async function runBench(args: string[], root = packageRoot()): Promise<number> {
  const missing = (what: string) =>
    new CliError(
      `the benchmark sources are not here (${what}); they ship with the repository, not the package: clone it and run "npm ci && npm run bench" (or "jetstream-iter bench" from the clone)`,
    );
  if (!root) throw missing("no jetstream-iter package root found");
  if (!existsSync(join(root, BENCH_TSCONFIG)) || !existsSync(join(root, "test/bench/main.ts"))) {
    throw missing(`no ${BENCH_TSCONFIG} under ${root}`);
  }
  let tsc: string;
  try {
    tsc = createRequire(join(root, "package.json")).resolve("typescript/bin/tsc");
  } catch {
    throw new CliError(
      `the benchmark is compiled with TypeScript, which is not installed in ${root}: run "npm ci" there first`,
    );
  }
  process.stderr.write(`bench: compiling (tsc -p ${BENCH_TSCONFIG})\n`);
  const compiled = await run(process.execPath, [tsc, "-p", BENCH_TSCONFIG], root);
  if (compiled !== 0) throw new CliError(`compiling the benchmark failed (tsc exit ${compiled})`);
  process.stderr.write(`bench: node ${[BENCH_MAIN, ...args].join(" ")}\n`);
  return run(process.execPath, [BENCH_MAIN, ...args], root);
}
