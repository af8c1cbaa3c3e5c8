/**
 * The package as users get it: `npm run build` and `npm pack`, then the tarball installed into
 * two fresh projects — one with @nats-io/jetstream v3 (`"type": "module"`), one with the legacy
 * `nats` v2 package (CommonJS) — where `import("jetstream-iter")` and `require("jetstream-iter")`
 * must both load, consume from a real nats-server, and typecheck under node16/nodenext
 * resolution.
 *
 * The build runs in a staging copy of the repository (its node_modules linked), so this test
 * never deletes or rewrites the repository's own dist/ while other test files run. Everything
 * lives in temp dirs that are removed afterwards.
 */
import { execFile } from "node:child_process";
import {
  copyFileSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createConsumer, createStream, NatsServer, publishN } from "../harness/index.js";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const TSC = join(ROOT, "node_modules", "typescript", "bin", "tsc");
const NPM_FLAGS = ["--no-audit", "--no-fund", "--prefer-offline"];

/** What .gitignore keeps out of a checkout (and .git itself): not copied to the staging copy. */
const NOT_SOURCES = /^(node_modules|\.git|dist|coverage)$|\.(tgz|cpuprofile)$/;

/**
 * Copies the repository's sources (everything a checkout has) from `from` to `to`. Files that
 * vanish while copying (other tools write temp files in the tree) are skipped.
 */
function copySources(from: string, to: string): void {
  mkdirSync(to, { recursive: true });
  let names: string[];
  try {
    names = readdirSync(from);
  } catch {
    return;
  }
  for (const name of names) {
    if (NOT_SOURCES.test(name)) continue;
    const src = join(from, name);
    if (src === join(ROOT, "test", "bench", "results", "tmp")) continue;
    let entry: ReturnType<typeof lstatSync>;
    try {
      entry = lstatSync(src);
    } catch {
      continue;
    }
    if (entry.isDirectory()) copySources(src, join(to, name));
    else if (entry.isFile()) {
      try {
        copyFileSync(src, join(to, name));
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
      }
    }
  }
}

/** The version of a package installed in the repository (the one its own tests use). */
function installed(name: string): string {
  const pkg = JSON.parse(readFileSync(join(ROOT, "node_modules", name, "package.json"), "utf8"));
  return `${name}@${pkg.version as string}`;
}

/**
 * The environment for child npm processes: without the npm_* variables of an enclosing
 * `npm test`, which would point them back at this repository (npm_config_local_prefix, …).
 */
function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (!/^npm_/i.test(k) && k !== "INIT_CWD") env[k] = v;
  }
  return { ...env, ...extra };
}

interface Run {
  stdout: string;
  stderr: string;
}

/** Runs a command; rejects with its whole output when it fails. */
function run(
  cmd: string,
  args: string[],
  cwd: string,
  env: NodeJS.ProcessEnv = cleanEnv(),
  timeout = 300_000,
): Promise<Run> {
  return new Promise((resolve, reject) => {
    execFile(
      cmd,
      args,
      { cwd, env, timeout, maxBuffer: 64 * 1024 * 1024 },
      (err, stdout, stderr) => {
        if (err) {
          reject(
            new Error(
              `${cmd} ${args.join(" ")} (in ${cwd}) failed: ${err.message}\n${stdout}\n${stderr}`,
            ),
          );
        } else {
          resolve({ stdout, stderr });
        }
      },
    );
  });
}

// ── the programs and type checks written into the two projects ───────────────────────────────

/** A consume of COUNT messages from STREAM/c, reporting where the package was loaded from. */
const V3_ESM = `import { jetstream } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import * as lib from "jetstream-iter";
const nc = await connect({ servers: process.env.NATS_URL });
const c = await jetstream(nc).consumers.get(process.env.STREAM, "c");
const messages = await lib.consume(c, { max_messages: 10 });
let handled = 0;
for await (const m of messages) {
  m.ack();
  if (++handled === Number(process.env.COUNT)) await messages.drain();
}
await nc.drain();
console.log(JSON.stringify({
  resolved: import.meta.resolve("jetstream-iter"),
  exports: Object.fromEntries(["consume", "pullMessages", "MsgIteratorClosedError"].map((k) => [k, typeof lib[k]])),
  closedError: new lib.MsgIteratorClosedError().name,
  handled,
  counters: messages.counters(),
}));
`;

const V3_CJS = `const { jetstream } = require("@nats-io/jetstream");
const { connect } = require("@nats-io/transport-node");
const lib = require("jetstream-iter");
(async () => {
  const nc = await connect({ servers: process.env.NATS_URL });
  const c = await jetstream(nc).consumers.get(process.env.STREAM, "c");
  const messages = await lib.consume(c, { max_messages: 10 });
  let handled = 0;
  for await (const m of messages) {
    m.ack();
    if (++handled === Number(process.env.COUNT)) await messages.drain();
  }
  await nc.drain();
  console.log(JSON.stringify({
    resolved: require.resolve("jetstream-iter"),
    exports: Object.fromEntries(["consume", "pullMessages", "MsgIteratorClosedError"].map((k) => [k, typeof lib[k]])),
    closedError: new lib.MsgIteratorClosedError().name,
    handled,
    counters: messages.counters(),
  }));
})().catch((err) => { console.error(err); process.exitCode = 1; });
`;

/** `text` with each [from, to] replaced; throws when `from` is missing (the programs drifted). */
function swap(text: string, ...pairs: [string, string][]): string {
  for (const [from, to] of pairs) {
    if (!text.includes(from)) throw new Error(`swap: ${JSON.stringify(from)} not found`);
    text = text.replace(from, to);
  }
  return text;
}

/** The same programs with the nats v2 package. */
const V2_ESM = swap(
  V3_ESM,
  [
    'import { jetstream } from "@nats-io/jetstream";\nimport { connect } from "@nats-io/transport-node";',
    'import { connect } from "nats";',
  ],
  ["await jetstream(nc).consumers", "await nc.jetstream().consumers"],
);

const V2_CJS = swap(
  V3_CJS,
  [
    'const { jetstream } = require("@nats-io/jetstream");\nconst { connect } = require("@nats-io/transport-node");',
    'const { connect } = require("nats");',
  ],
  ["await jetstream(nc).consumers", "await nc.jetstream().consumers"],
);

/** Compiled as check.mts and check.cts: the package's own types must be read, not `any`. */
const V3_TYPES = `import { type ConsumerMessages, type JsMsg, jetstream } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/nats-core";
import { type ConsumeOptions, consume, MsgIteratorClosedError, pullMessages } from "jetstream-iter";

export async function check(nc: NatsConnection): Promise<number> {
  const c = await jetstream(nc).consumers.get("S", "c");
  const messages = await consume(c, { max_messages: 10 });
  const asNats: ConsumerMessages = messages;
  const m: JsMsg = await messages.next({ timeout: 1_000 });
  const opts: ConsumeOptions = { max_messages: 1, idle_heartbeat: 500 };
  // @ts-expect-error an unknown option is a type error (so these are the package's types)
  await consume(c, { max_msgs: 1 });
  const raw = pullMessages(nc, "S", "c", opts);
  const err: Error = new MsgIteratorClosedError();
  await messages.drain({ timeout: 1_000 });
  return asNats.getProcessed() + m.seq + raw.getPending() + err.message.length;
}
`;

const V2_TYPES = `import type { ConsumerMessages, JsMsg, NatsConnection } from "nats";
import { type ConsumeOptions, consume, MsgIteratorClosedError, pullMessages } from "jetstream-iter";

export async function check(nc: NatsConnection): Promise<number> {
  const c = await nc.jetstream().consumers.get("S", "c");
  const messages = await consume(c, { max_messages: 10 });
  const asNats: ConsumerMessages = messages;
  const m: JsMsg = await messages.next({ timeout: 1_000 });
  const opts: ConsumeOptions = { max_messages: 1, idle_heartbeat: 500 };
  // @ts-expect-error an unknown option is a type error (so these are the package's types)
  await consume(c, { max_msgs: 1 });
  const raw = pullMessages(nc, "S", "c", opts);
  const err: Error = new MsgIteratorClosedError();
  await messages.drain({ timeout: 1_000 });
  return asNats.getProcessed() + m.seq + raw.getPending() + err.message.length;
}
`;

interface Project {
  name: "v3" | "v2";
  dir: string;
  /** The program run through import() and through require(). */
  esm: string;
  cjs: string;
}

let work: string;
let stage: string;
let tarball: string;
let entries: string[];
let server: NatsServer;
const projects: Record<"v3" | "v2", Project> = {
  v3: { name: "v3", dir: "", esm: "consume.mjs", cjs: "consume.cjs" },
  v2: { name: "v2", dir: "", esm: "consume.mjs", cjs: "consume.cjs" },
};
let streams = 0;

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), "jsiter-package-"));

  // 1. build and pack a staging copy of the repository
  stage = join(work, "repo");
  copySources(ROOT, stage);
  symlinkSync(join(ROOT, "node_modules"), join(stage, "node_modules"), "dir");
  await run("npm", ["run", "build"], stage);
  const packDir = join(work, "pack");
  mkdirSync(packDir);
  const packed = await run("npm", ["pack", "--json", "--pack-destination", packDir], stage);
  // the JSON report follows any output of pack's lifecycle scripts
  const [info] = JSON.parse(packed.stdout.slice(packed.stdout.search(/^\[/m))) as {
    filename: string;
  }[];
  tarball = join(packDir, info!.filename);
  entries = (await run("tar", ["-tzf", tarball], work)).stdout.split("\n").filter(Boolean);

  // 2. two fresh projects with the tarball installed
  const v3 = join(work, "app-v3");
  const v2 = join(work, "app-v2");
  mkdirSync(v3);
  mkdirSync(v2);
  writeFileSync(
    join(v3, "package.json"),
    `${JSON.stringify({ name: "app-v3", private: true, type: "module" }, null, 2)}\n`,
  );
  writeFileSync(join(v2, "package.json"), `${JSON.stringify({ name: "app-v2", private: true })}\n`);
  projects.v3.dir = v3;
  projects.v2.dir = v2;
  await Promise.all([
    run(
      "npm",
      [
        "install",
        ...NPM_FLAGS,
        "--prefix",
        v3,
        tarball,
        installed("@nats-io/jetstream"),
        installed("@nats-io/nats-core"),
        installed("@nats-io/transport-node"),
      ],
      v3,
    ),
    run("npm", ["install", ...NPM_FLAGS, "--prefix", v2, tarball, installed("nats")], v2),
  ]);
  writeFileSync(join(v3, "consume.mjs"), V3_ESM);
  writeFileSync(join(v3, "consume.cjs"), V3_CJS);
  writeFileSync(join(v2, "consume.mjs"), V2_ESM);
  writeFileSync(join(v2, "consume.cjs"), V2_CJS);
  for (const ext of ["mts", "cts"]) {
    writeFileSync(join(v3, `check.${ext}`), V3_TYPES);
    writeFileSync(join(v2, `check.${ext}`), V2_TYPES);
  }

  server = await NatsServer.start();
}, 900_000);

afterAll(async () => {
  await server?.dispose();
  if (work) rmSync(work, { recursive: true, force: true });
});

describe("npm pack", () => {
  it("publint finds nothing to fix in the package", async () => {
    const r = await run(join(ROOT, "node_modules", ".bin", "publint"), ["--strict", stage], work);
    expect(r.stdout).toMatch(/All good!/);
  }, 120_000);

  it("@arethetypeswrong/cli: the tarball's types resolve for node10, node16 (CJS and ESM) and bundlers", async () => {
    const r = await run(
      join(ROOT, "node_modules", ".bin", "attw"),
      [tarball, "--format", "json"],
      work,
    );
    const report = JSON.parse(r.stdout) as { problems?: object; analysis?: { problems?: object } };
    const problems = report.problems ?? report.analysis?.problems;
    expect(problems).toBeDefined(); // the report has the shape read here
    expect(Object.keys(problems as object)).toEqual([]);
  }, 120_000);

  it("the tarball holds only package.json, README.md, LICENSE, dist/** and src/** (for source maps), no tests", () => {
    const allowed = /^package\/(package\.json|README\.md|LICENSE|dist\/.+|src\/.+\.ts)$/;
    expect(entries.filter((e) => !allowed.test(e))).toEqual([]);
    expect(entries).toEqual(
      expect.arrayContaining([
        "package/package.json",
        "package/README.md",
        "package/LICENSE",
        "package/src/index.ts",
        "package/dist/esm/index.js",
        "package/dist/esm/index.d.ts",
        "package/dist/cjs/index.js",
        "package/dist/cjs/index.d.ts",
        "package/dist/cjs/package.json",
      ]),
    );
    expect(entries.filter((e) => /\.test(-d)?\.|(^|\/)test\//.test(e))).toEqual([]);
  });
});

describe.each(["v3", "v2"] as const)("installed in a fresh %s project", (name) => {
  it.each([
    ["import()", "esm", "dist/esm/index.js"],
    ["require()", "cjs", "dist/cjs/index.js"],
  ] as const)(
    "%s loads %s's build, exposes the API and consumes from a real server",
    async (_, kind, built) => {
      const p = projects[name];
      const stream = `PKG${++streams}`;
      const count = 20;
      await createStream(server.url, stream);
      await createConsumer(server.url, stream, "c");
      await publishN(server.url, `${stream}.x`, count);
      const { stdout } = await run(
        process.execPath,
        [p[kind]],
        p.dir,
        cleanEnv({ NATS_URL: server.url, STREAM: stream, COUNT: String(count) }),
        60_000,
      );
      const out = JSON.parse(stdout.trim().split("\n").pop() ?? "null") as {
        resolved: string;
        exports: Record<string, string>;
        closedError: string;
        handled: number;
        counters: Record<string, number>;
      };
      expect(out.resolved.replaceAll("\\", "/")).toContain(`node_modules/jetstream-iter/${built}`);
      expect(out.exports).toEqual({
        consume: "function",
        pullMessages: "function",
        MsgIteratorClosedError: "function",
      });
      expect(out.closedError).toBe("MsgIteratorClosedError");
      expect(out.handled).toBe(count);
      expect(out.counters).toMatchObject({ received: count, processed: count, naked: 0 });
    },
  );

  it.each(["nodenext", "node16"])(
    "types resolve for .mts (ESM) and .cts (CommonJS) with --moduleResolution %s",
    async (mode) => {
      const p = projects[name];
      const { stdout } = await run(
        process.execPath,
        [
          TSC,
          "--noEmit",
          "--strict",
          "--target",
          "es2022",
          "--lib",
          "es2022,esnext.disposable",
          "--module",
          mode,
          "--moduleResolution",
          mode,
          "--types",
          "node",
          "--typeRoots",
          join(ROOT, "node_modules", "@types"),
          "--listFiles",
          // nats v2's own declarations do not compile without the DOM lib (TextEncoder as a
          // type); skip library checks there. The v3 project checks ours without skipping.
          ...(name === "v2" ? ["--skipLibCheck"] : []),
          "check.mts",
          "check.cts",
        ],
        p.dir,
        cleanEnv(),
        120_000,
      );
      const files = stdout.replaceAll("\\", "/");
      // each module system read the declarations of its own build
      expect(files).toContain("node_modules/jetstream-iter/dist/esm/index.d.ts");
      expect(files).toContain("node_modules/jetstream-iter/dist/cjs/index.d.ts");
    },
  );
});
