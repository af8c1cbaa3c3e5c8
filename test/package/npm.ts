/**
 * Helpers of the packaging test: a staging copy of the repository's files, child processes
 * without the enclosing `npm test`'s environment, and what an npm install left behind — its
 * warnings, and the packages only jetstream-iter could have brought in.
 */
import { execFile } from "node:child_process";
import { copyFileSync, lstatSync, mkdirSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

export const ROOT = fileURLToPath(new URL("../..", import.meta.url));
export const TSC = join(ROOT, "node_modules", "typescript", "bin", "tsc");
export const NPM_FLAGS = ["--no-audit", "--no-fund", "--prefer-offline"];

/** What .gitignore keeps out of a checkout (and .git itself): not copied to the staging copy. */
const NOT_SOURCES = /^(node_modules|\.git|dist|coverage)$|\.(tgz|cpuprofile)$/;
/** Build output of the benchmark and faults runners (ignored by git). */
const NOT_SOURCE_DIRS = [join("test", "bench", "results", "tmp"), join("test", "faults", "tmp")];

/**
 * Copies the repository's files as a checkout has them — committed or not, without what
 * .gitignore keeps out — from `from` (ROOT or a folder below it) to `to`. Files that vanish
 * while copying (other tools write temp files in the tree) are skipped.
 */
export function copySources(from: string, to: string): void {
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
    if (NOT_SOURCE_DIRS.some((d) => src === join(ROOT, d))) continue;
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
export function installed(name: string): string {
  const pkg = JSON.parse(readFileSync(join(ROOT, "node_modules", name, "package.json"), "utf8"));
  return `${name}@${pkg.version as string}`;
}

/**
 * The environment for child npm processes: without the npm_* variables of an enclosing
 * `npm test`, which would point them back at this repository (npm_config_local_prefix, …).
 */
export function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (!/^npm_/i.test(k) && k !== "INIT_CWD") env[k] = v;
  }
  return { ...env, ...extra };
}

export interface Run {
  stdout: string;
  stderr: string;
}

/** Runs a command; rejects with its whole output when it fails. */
export function run(
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

/**
 * nats.js v3's `@nats-io/nuid` 3 declares Node.js >= 22: on Node.js 20 npm warns about it in any
 * project that installs nats.js v3, with or without this package (README says so).
 */
const NUID_ENGINE =
  /^npm warn EBADENGINE Unsupported engine \{\nnpm warn EBADENGINE {3}package: '@nats-io\/nuid@[^']+',\n(?:npm warn EBADENGINE .*\n)*?npm warn EBADENGINE \}\n/gm;

/** The `npm warn` lines of an npm run's stderr, less the known @nats-io/nuid engine warning. */
export function npmWarnings(stderr: string): string[] {
  const text = `${stderr.replaceAll("\r\n", "\n")}\n`.replace(NUID_ENGINE, "");
  return text.split("\n").filter((line) => /^npm warn/i.test(line));
}

interface LockEntry {
  link?: boolean;
  dependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
}

/**
 * The packages in `dir/node_modules` that nothing but `pkg` explains: everything npm installed
 * (its hidden lockfile, node_modules/.package-lock.json) less what the project's other
 * dependencies reach through their own dependencies, optional and peer dependencies. With a
 * package that brings in nothing, that is `node_modules/<pkg>` alone.
 */
export function broughtBy(dir: string, pkg: string): string[] {
  const lockFile = join(dir, "node_modules", ".package-lock.json");
  const { packages } = JSON.parse(readFileSync(lockFile, "utf8")) as {
    packages: Record<string, LockEntry>;
  };
  const app = JSON.parse(readFileSync(join(dir, "package.json"), "utf8")) as {
    dependencies?: Record<string, string>;
  };
  /** Where Node finds `name` from the package at `from` ("" is the project). */
  const find = (from: string, name: string): string | undefined => {
    let base = from;
    for (;;) {
      const at = base ? `${base}/node_modules/${name}` : `node_modules/${name}`;
      if (packages[at]) return at;
      if (!base) return undefined;
      const up = base.lastIndexOf("/node_modules/");
      base = up === -1 ? "" : base.slice(0, up);
    }
  };
  const reached = new Set<string>();
  const visit = (from: string, names: string[]) => {
    for (const name of names) {
      const at = find(from, name);
      if (at === undefined || reached.has(at)) continue;
      reached.add(at);
      const e = packages[at]!;
      visit(at, [
        ...Object.keys(e.dependencies ?? {}),
        ...Object.keys(e.optionalDependencies ?? {}),
        ...Object.keys(e.peerDependencies ?? {}),
      ]);
    }
  };
  visit(
    "",
    Object.keys(app.dependencies ?? {}).filter((n) => n !== pkg),
  );
  return Object.keys(packages)
    .filter((p) => p.startsWith("node_modules/") && !reached.has(p))
    .sort();
}

interface LsNode {
  version?: string;
  dependencies?: Record<string, LsNode>;
}

/** The children `npm ls --omit=dev --all --json` gives `pkg` in the project at `dir`. */
export async function lsChildren(dir: string, pkg: string): Promise<Record<string, LsNode>> {
  const { stdout } = await run("npm", ["ls", "--omit=dev", "--all", "--json"], dir);
  const tree = JSON.parse(stdout) as LsNode;
  const node = tree.dependencies?.[pkg];
  if (!node) throw new Error(`npm ls shows no ${pkg} in ${dir}:\n${stdout}`);
  return node.dependencies ?? {};
}
