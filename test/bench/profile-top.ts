/**
 * Prints the top self-time functions of one or more V8 .cpuprofile files (as written by
 * `node --cpu-prof`, e.g. `npm run bench -- --only ours --cpu-prof DIR`).
 *
 *   node test/bench/results/tmp/build/test/bench/profile-top.js DIR_OR_FILES… [--top N] [--filter src/]
 */
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { top: { type: "string", default: "25" }, filter: { type: "string" } },
});

const files = positionals.flatMap((p) =>
  statSync(p).isDirectory()
    ? readdirSync(p)
        .filter((f) => f.endsWith(".cpuprofile"))
        .map((f) => join(p, f))
    : [p],
);
if (files.length === 0) {
  process.stderr.write("usage: profile-top.js DIR_OR_FILES… [--top N] [--filter SUBSTRING]\n");
  process.exit(2);
}

const self = new Map<string, number>();
let total = 0;
for (const file of files) {
  const prof = JSON.parse(readFileSync(file, "utf8")) as Profile;
  const byId = new Map(prof.nodes.map((n) => [n.id, n]));
  prof.samples.forEach((id, i) => {
    const dt = prof.timeDeltas[i] ?? 0;
    const n = byId.get(id);
    if (!n) return;
    const { functionName, url, lineNumber } = n.callFrame;
    const where = url.replace(/^file:\/\//, "").replace(/.*\/node_modules\//, "");
    const short = where.replace(/.*\/results\/tmp\/build\//, "");
    const key = `${functionName || "(anonymous)"}  ${short}${url ? `:${lineNumber + 1}` : ""}`;
    self.set(key, (self.get(key) ?? 0) + dt);
    total += dt;
  });
}

const filter = values.filter;
const rows = [...self.entries()]
  .filter(([k]) => !filter || k.includes(filter))
  .sort((a, b) => b[1] - a[1])
  .slice(0, Number(values.top));
process.stdout.write(`${files.length} profile(s), ${(total / 1000).toFixed(0)} ms sampled\n`);
process.stdout.write("  self ms     %  function  location\n");
for (const [k, us] of rows) {
  process.stdout.write(
    `${(us / 1000).toFixed(1).padStart(8)}  ${((100 * us) / total).toFixed(1).padStart(5)}  ${k}\n`,
  );
}
