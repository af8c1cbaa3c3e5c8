/**
 * The package as users get it, by each of the three ways npm installs it:
 *
 * - **tarball**: `npm pack` (what a registry serves);
 * - **git**: `npm install git+file://…` of a temporary git repository made from the current
 *   tree's files (committed or not), which has no dist/: npm must run `prepare` to build it;
 * - **path**: `npm install /abs/path/to/clone`, which npm links (node_modules/jetstream-iter is a
 *   symlink to the clone, whose `prepare` npm runs there).
 *
 * Each goes into a fresh project with @nats-io/jetstream v3 (`"type": "module"`) and a fresh one
 * with the legacy `nats` v2 package (CommonJS), where `import("jetstream-iter")` and
 * `require("jetstream-iter")` must load, consume from a real nats-server and typecheck; npm must
 * print no warning of ours, and install nothing because of jetstream-iter.
 *
 * Everything runs in a staging copy of the repository (its node_modules linked), so this test
 * never deletes or rewrites the repository's own dist/ while other test files run, and lives in
 * temp dirs that are removed afterwards. The six installs run side by side (--prefer-offline:
 * the repository's own install has filled npm's cache).
 */
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  realpathSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { pathToFileURL } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createConsumer, createStream, NatsServer, publishN } from "../harness/index.js";
import {
  broughtBy,
  cleanEnv,
  copySources,
  installed,
  lsChildren,
  NPM_FLAGS,
  npmWarnings,
  ROOT,
  run,
  TSC,
} from "./npm.js";
import { V2_CJS, V2_ESM, V2_TYPES, V3_CJS, V3_ESM, V3_TYPES } from "./programs.js";

const SOURCES = ["tarball", "git", "path"] as const;
type Source = (typeof SOURCES)[number];
const GENERATIONS = ["v3", "v2"] as const;
type Generation = (typeof GENERATIONS)[number];

interface Project {
  dir: string;
  /** What `npm install` printed on stderr. */
  stderr: string;
}

let work: string;
let stage: string;
let gitUrl: string;
let tarball: string;
let entries: string[];
let server: NatsServer;
const projects = new Map<string, Project>();
const project = (source: Source, gen: Generation): Project => projects.get(`${source}-${gen}`)!;
let streams = 0;

/** A fresh project for `gen` with the package from `spec`, installed by npm. */
async function install(source: Source, gen: Generation, spec: string): Promise<void> {
  const dir = join(work, `app-${source}-${gen}`);
  mkdirSync(dir);
  const pkg: Record<string, unknown> = { name: `app-${source}-${gen}`, private: true };
  if (gen === "v3") pkg.type = "module";
  // npm >= 11.16 lists the install scripts of dependencies that allowScripts does not approve
  // (npm 12 skips them), and `prepare` counts for every source but a registry: a git URL or a
  // folder needs it approved to build dist/ (README says how). A tarball from a file is listed
  // too, though npm never runs its `prepare`; from a registry it is not.
  const key = { tarball: `file:${tarball}`, git: gitUrl, path: `file:${stage}` };
  pkg.allowScripts = { [key[source]]: true };
  writeFileSync(join(dir, "package.json"), `${JSON.stringify(pkg, null, 2)}\n`);
  const nats =
    gen === "v3"
      ? [
          installed("@nats-io/jetstream"),
          installed("@nats-io/nats-core"),
          installed("@nats-io/transport-node"),
        ]
      : [installed("nats")];
  const r = await run("npm", ["install", ...NPM_FLAGS, "--prefix", dir, spec, ...nats], dir);
  projects.set(`${source}-${gen}`, { dir, stderr: r.stderr });
  writeFileSync(join(dir, "consume.mjs"), gen === "v3" ? V3_ESM : V2_ESM);
  writeFileSync(join(dir, "consume.cjs"), gen === "v3" ? V3_CJS : V2_CJS);
  for (const ext of ["mts", "cts"]) {
    writeFileSync(join(dir, `check.${ext}`), gen === "v3" ? V3_TYPES : V2_TYPES);
  }
}

/** Every file under `dir`, relative, sorted. */
function filesUnder(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      if (e.isDirectory()) walk(join(d, e.name));
      else out.push(relative(dir, join(d, e.name)));
    }
  };
  walk(dir);
  return out.sort();
}

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), "jsiter-package-"));

  // 1. a staging copy of the tree, committed to a git repository of its own (dist/ and
  //    node_modules stay out of it, by .gitignore), then packed (npm pack runs `prepare`)
  stage = join(work, "repo");
  copySources(ROOT, stage);
  const git = ["-c", "user.name=package-test", "-c", "user.email=package-test@example.invalid"];
  await run("git", ["init", "-q"], stage);
  await run("git", ["add", "-A"], stage);
  await run("git", [...git, "commit", "-q", "--no-gpg-sign", "-m", "the tree under test"], stage);
  gitUrl = `git+${pathToFileURL(stage).href}`;
  symlinkSync(join(ROOT, "node_modules"), join(stage, "node_modules"), "dir");
  const packDir = join(work, "pack");
  mkdirSync(packDir);
  const packed = await run("npm", ["pack", "--json", "--pack-destination", packDir], stage);
  // the JSON report follows any output of pack's lifecycle scripts
  const [info] = JSON.parse(packed.stdout.slice(packed.stdout.search(/^\[/m))) as {
    filename: string;
  }[];
  tarball = join(packDir, info!.filename);
  entries = (await run("tar", ["-tzf", tarball], work)).stdout.split("\n").filter(Boolean);

  // 2. six fresh projects. The two folder installs run one after the other: each runs
  //    `prepare` (rm -rf dist, tsc) in the same staging copy.
  await Promise.all([
    ...GENERATIONS.map((gen) => install("tarball", gen, tarball)),
    ...GENERATIONS.map((gen) => install("git", gen, gitUrl)),
    (async () => {
      for (const gen of GENERATIONS) await install("path", gen, stage);
    })(),
  ]);

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

  it("the tarball holds package.json, README.md, LICENSE, CHANGELOG.md and the library's two builds: no CLI, no sources, no maps", () => {
    const allowed =
      /^package\/(package\.json|README\.md|LICENSE|CHANGELOG\.md|dist\/cjs\/package\.json|dist\/(esm|cjs)\/[\w-]+\.(js|d\.ts))$/;
    expect(entries.filter((e) => !allowed.test(e))).toEqual([]);
    expect(entries.filter((e) => /cli|\.map$|(^|\/)(src|test)\//.test(e))).toEqual([]);
    // one module (and its declarations) per file of src/, in each build
    const modules = readdirSync(join(ROOT, "src"))
      .filter((f) => f.endsWith(".ts"))
      .map((f) => f.slice(0, -3))
      .sort();
    for (const build of ["esm", "cjs"]) {
      for (const ext of [".js", ".d.ts"]) {
        const built = entries
          .filter((e) => e.startsWith(`package/dist/${build}/`) && e.endsWith(ext))
          .filter((e) => ext === ".d.ts" || !e.endsWith(".d.ts"))
          .map((e) => e.slice(`package/dist/${build}/`.length, -ext.length))
          .sort();
        expect(built, `dist/${build}/*${ext}`).toEqual(modules);
      }
    }
    expect(entries).toEqual(
      expect.arrayContaining([
        "package/package.json",
        "package/README.md",
        "package/LICENSE",
        "package/CHANGELOG.md",
        "package/dist/cjs/package.json",
      ]),
    );
  });

  it("package.json declares no runtime dependency, no bin; nats.js only as optional peers", () => {
    const pkg = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as Record<
      string,
      unknown
    >;
    expect(pkg.dependencies).toBeUndefined();
    expect(pkg.bin).toBeUndefined();
    const peers = Object.keys(pkg.peerDependencies as object).sort();
    expect(peers).toEqual(["@nats-io/jetstream", "@nats-io/nats-core", "nats"]);
    const meta = pkg.peerDependenciesMeta as Record<string, { optional?: boolean }>;
    for (const p of peers) expect(meta[p]?.optional, p).toBe(true);
  });
});

describe("a git URL", () => {
  it("the repository has no dist/: npm ran `prepare`, and installed what npm pack packs", async () => {
    const committed = (await run("git", ["ls-files"], stage)).stdout.split("\n");
    expect(committed).toContain("src/index.ts");
    expect(committed.filter((f) => f.startsWith("dist/"))).toEqual([]);
    const fromTarball = entries.map((e) => e.slice("package/".length)).sort();
    for (const gen of GENERATIONS) {
      const dir = join(project("git", gen).dir, "node_modules", "jetstream-iter");
      expect(filesUnder(dir), gen).toEqual(fromTarball);
    }
  });
});

describe("a local path", () => {
  it("npm links the clone (node_modules/jetstream-iter is a symlink to it), which `prepare` built", () => {
    for (const gen of GENERATIONS) {
      const dir = join(project("path", gen).dir, "node_modules", "jetstream-iter");
      expect(realpathSync(dir), gen).toBe(realpathSync(stage));
      expect(existsSync(join(dir, "dist", "esm", "index.js"))).toBe(true);
      expect(existsSync(join(dir, "dist", "cjs", "index.js"))).toBe(true);
    }
  });
});

describe.each(SOURCES.flatMap((source) => GENERATIONS.map((gen) => [source, gen] as const)))(
  "from the %s, in a fresh %s project",
  (source, gen) => {
    it("npm printed no warning of ours, and jetstream-iter brought in no package", async () => {
      const p = project(source, gen);
      expect(npmWarnings(p.stderr), p.stderr).toEqual([]);
      const pkg = JSON.parse(
        readFileSync(join(p.dir, "node_modules", "jetstream-iter", "package.json"), "utf8"),
      ) as { dependencies?: object };
      expect(pkg.dependencies).toBeUndefined();
      expect(broughtBy(p.dir, "jetstream-iter")).toEqual(["node_modules/jetstream-iter"]);
      // `npm ls` of a linked folder lists the clone's own devDependencies (installed in the
      // clone, not in the project): its view of a link says nothing about the project.
      if (source !== "path") {
        const children = await lsChildren(p.dir, "jetstream-iter");
        const peers = ["@nats-io/jetstream", "@nats-io/nats-core", "nats"];
        expect(Object.keys(children).filter((c) => !peers.includes(c))).toEqual([]);
        // each peer there is either the project's own nats.js (deduped) or absent (optional)
        const natsjs = gen === "v3" ? ["@nats-io/jetstream", "@nats-io/nats-core"] : ["nats"];
        for (const [name, node] of Object.entries(children)) {
          expect(node.version !== undefined, name).toBe(natsjs.includes(name));
          expect(node.dependencies, name).toBeUndefined();
        }
      }
    });

    it.each([
      ["import()", "esm", "dist/esm/index.js"],
      ["require()", "cjs", "dist/cjs/index.js"],
    ] as const)(
      "%s loads %s's build, exposes the API and consumes from a real server",
      async (_, kind, built) => {
        const p = project(source, gen);
        const stream = `PKG${++streams}`;
        const count = 20;
        await createStream(server.url, stream);
        await createConsumer(server.url, stream, "c");
        await publishN(server.url, `${stream}.x`, count);
        const { stdout } = await run(
          process.execPath,
          [`consume.${kind === "esm" ? "mjs" : "cjs"}`],
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
        // Node resolves symlinks: a linked folder loads from the clone itself
        const home = realpathSync(join(p.dir, "node_modules", "jetstream-iter"));
        const expected = join(home, built);
        expect(kind === "esm" ? out.resolved : pathToFileURL(out.resolved).href).toBe(
          pathToFileURL(expected).href,
        );
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

    // node16 resolves as nodenext does for these files; it is checked once, on the tarball.
    it.each(source === "tarball" ? ["nodenext", "node16"] : ["nodenext"])(
      "types resolve for .mts (ESM) and .cts (CommonJS) with --moduleResolution %s",
      async (mode) => {
        const p = project(source, gen);
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
            ...(gen === "v2" ? ["--skipLibCheck"] : []),
            "check.mts",
            "check.cts",
          ],
          p.dir,
          cleanEnv(),
          120_000,
        );
        const files = stdout.replaceAll("\\", "/");
        // each module system read the declarations of its own build (tsc lists a linked
        // folder's files by their real path)
        const home = realpathSync(join(p.dir, "node_modules", "jetstream-iter")).replaceAll(
          "\\",
          "/",
        );
        expect(files).toContain(`${home}/dist/esm/index.d.ts`);
        expect(files).toContain(`${home}/dist/cjs/index.d.ts`);
      },
    );
  },
);
