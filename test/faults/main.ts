/**
 * The recovery-time table (`npm run faults`, `npm run faults:short`).
 *
 * Runs each fault of docs/faults.md that can be provoked on one machine against jetstream-iter's
 * `consume()` and nats.js v3's `consumer.consume()`, both with their default options, at the same
 * time on the same fixture (one stream, one durable each, one publisher, one fault), each client
 * in its own process. Prints progress on stderr and the table on stdout; writes every run's raw
 * result as JSON (test/faults/results/latest.json for a full run, test/faults/tmp/short.json for
 * a short one).
 *
 * The numbers are measurements, not assertions. The exit status is non-zero only when
 * jetstream-iter did not receive a message the server acked to the publisher (lost), or a run
 * could not be carried out at all (a server that would not start…). nats.js's losses are
 * reported, not failed on.
 *
 * Flags: --short (one run each of SIGKILL restart, TCP cut, consumer deleted), --runs N (every
 * fault N times), --only id,id (faults by id), --out FILE, --merge FILE (take the faults not run
 * now from an earlier run's JSON: re-run some faults of a full run).
 */

import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { cpus, tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { findNatsServer } from "../harness/index.js";
import { RUN_DIR_ENV, reapRecorded } from "../harness/registry.js";
import { packageRoot } from "../harness/root.js";
import { type Failure, runLine, table } from "./report.js";
import { live, type RunResult, runOnce, type Scenario, type Topology } from "./run.js";
import { consumerLeader, ownNode, streamLeader } from "./scenarios/cluster.js";
import { leafCut } from "./scenarios/leaf.js";
import { deleted, sigkill, sigstop, sigterm, tcpCut } from "./scenarios/single.js";
import { slowCut } from "./scenarios/slow.js";

const here = dirname(fileURLToPath(import.meta.url));
/** The repository root: the nearest folder up from here whose package.json is this project's. */
const root =
  packageRoot(fileURLToPath(import.meta.url)) ??
  (() => {
    throw new Error(`no jetstream-iter package.json above ${here}`);
  })();

function version(pkg: string): string {
  try {
    const p = JSON.parse(readFileSync(join(root, "node_modules", pkg, "package.json"), "utf8")) as {
      version: string;
    };
    return p.version;
  } catch {
    return "?";
  }
}

const ALL = [
  sigkill,
  sigterm,
  sigstop,
  deleted,
  tcpCut,
  slowCut,
  leafCut,
  consumerLeader,
  streamLeader,
  ownNode,
] as Scenario<Topology>[];
const SHORT = ["sigkill", "tcp-cut", "deleted"];

/** A bad argument: one line on stderr and exit 2 (never a stack trace). */
function usage(message: string): never {
  process.stderr.write(
    `faults: ${message}\nfaults: options: --short, --runs N, --only ${ALL.map((s) => s.id).join(",")}, --out FILE, --merge FILE\n`,
  );
  process.exit(2);
}

const { values: flags } = (() => {
  try {
    return parseArgs({
      options: {
        short: { type: "boolean", default: false },
        runs: { type: "string" },
        only: { type: "string" },
        out: { type: "string" },
        merge: { type: "string" },
      },
    });
  } catch (err) {
    return usage((err as Error).message);
  }
})();
if (flags.runs !== undefined && !/^[1-9]\d*$/.test(flags.runs)) {
  usage(`--runs: expected a positive integer, got ${JSON.stringify(flags.runs)}`);
}
const short = flags.short === true;
const only = flags.only?.split(",") ?? (short ? SHORT : undefined);
for (const id of only ?? []) {
  if (!ALL.some((s) => s.id === id)) usage(`--only: unknown fault ${id}`);
}
const scenarios = ALL.filter((s) => !only || only.includes(s.id));
const runsOf = (s: Scenario<Topology>) =>
  flags.runs !== undefined ? Number.parseInt(flags.runs, 10) : short ? 1 : (s.runs ?? 5);
// results/ only for a full, unfiltered run; anything else goes to the ignored tmp/
const outFile = resolve(
  flags.out ??
    ((short || only || flags.runs) && !flags.merge
      ? join(root, "test/faults/tmp/last.json")
      : join(root, "test/faults/results/latest.json")),
);

const log = (s: string) => process.stderr.write(`${s}\n`);

// Every nats-server started here is recorded, and killed by pid at exit whatever happens.
const runDir = mkdtempSync(join(tmpdir(), "jsiter-faults-"));
process.env[RUN_DIR_ENV] = runDir;
process.on("exit", () => {
  for (const c of live) c.kill("SIGKILL");
  reapRecorded(runDir);
  rmSync(runDir, { recursive: true, force: true });
});
for (const sig of ["SIGINT", "SIGTERM"] as const) {
  process.once(sig, () => {
    log(`faults: ${sig}, stopping`);
    process.exit(130);
  });
}

function natsServerVersion(): string {
  try {
    return execFileSync(findNatsServer(), ["--version"], { encoding: "utf8" }).trim();
  } catch {
    return "?";
  }
}

async function main(): Promise<number> {
  const results: RunResult[] = [];
  const failures: Failure[] = [];
  const t0 = Date.now();
  let topo: Topology | undefined;
  let topoKey: string | undefined;
  try {
    for (const sc of scenarios) {
      if (topoKey !== sc.topology) {
        await topo?.dispose();
        topo = undefined;
        topoKey = sc.topology;
        log(`faults: starting the ${sc.topology} topology`);
        topo = await sc.start();
      }
      const n = runsOf(sc);
      for (let run = 1; run <= n; run++) {
        const started = Date.now();
        try {
          const r = await runOnce(sc, topo!, run, log);
          results.push(r);
          log(
            `${sc.id} ${run}/${n} (${((Date.now() - started) / 1000).toFixed(0)} s): ${runLine(r)}`,
          );
        } catch (err) {
          failures.push({ scenario: sc.id, run, error: String(err) });
          log(`${sc.id} ${run}/${n}: FAILED ${String(err)}`);
        }
      }
    }
  } finally {
    await topo?.dispose();
  }
  const took = (Date.now() - t0) / 1000;
  if (flags.merge) {
    // The runs of the faults not run now come from an earlier run's JSON
    const earlier = JSON.parse(readFileSync(flags.merge, "utf8")) as {
      results: RunResult[];
      failures: Failure[];
    };
    const now = new Set(scenarios.map((s) => s.id));
    results.unshift(...earlier.results.filter((r) => !now.has(r.scenario)));
    failures.unshift(...earlier.failures.filter((f) => !now.has(f.scenario)));
  }
  const shown = ALL.filter(
    (s) => results.some((r) => r.scenario === s.id) || scenarios.includes(s),
  );
  const md = table(shown, results, failures);
  process.stdout.write(`${md}\n`);
  const cpu = cpus()[0]?.model ?? "?";
  log(`faults: ${took.toFixed(0)} s; ${cpus().length} × ${cpu}`);
  mkdirSync(dirname(outFile), { recursive: true });
  const meta = {
    date: new Date().toISOString(),
    tookSeconds: Math.round(took),
    cpus: cpus().length,
    cpu,
    node: process.version,
    natsServer: natsServerVersion(),
    natsJs: version("@nats-io/jetstream"),
    transportNode: version("@nats-io/transport-node"),
  };
  writeFileSync(outFile, `${JSON.stringify({ ...meta, results, failures }, null, 1)}\n`);
  log(`faults: ${JSON.stringify(meta)}`);
  log(`faults: raw results in ${outFile}`);
  const lost = results.flatMap((r) =>
    r.clients.filter((c) => c.client === "jetstream-iter" && c.lost > 0).map(() => r),
  );
  if (lost.length > 0) {
    log(
      `faults: jetstream-iter lost messages in ${lost.map((r) => `${r.scenario} run ${r.run}`).join(", ")}`,
    );
    return 1;
  }
  if (failures.length > 0) return 1;
  return 0;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    log(`faults: ${String(err)}`);
    process.exit(1);
  },
);
