/**
 * Where this package lives: found from the running script (`process.argv[1]`, symlinks
 * resolved), so it works from the ESM and the CJS build alike.
 */
import { existsSync, readFileSync, realpathSync } from "node:fs";
import { dirname, join } from "node:path";

export const PACKAGE_NAME = "jetstream-iter";

function readPackage(dir: string): { name?: unknown; version?: unknown } | undefined {
  const file = join(dir, "package.json");
  if (!existsSync(file)) return undefined;
  try {
    return JSON.parse(readFileSync(file, "utf8")) as { name?: unknown; version?: unknown };
  } catch {
    return undefined;
  }
}

/** The nearest folder up from `script` whose package.json is this package's; undefined if none. */
export function packageRoot(script: string | undefined = process.argv[1]): string | undefined {
  if (!script) return undefined;
  let dir: string;
  try {
    dir = dirname(realpathSync(script));
  } catch {
    return undefined;
  }
  for (;;) {
    if (readPackage(dir)?.name === PACKAGE_NAME) return dir;
    const up = dirname(dir);
    if (up === dir) return undefined;
    dir = up;
  }
}

/** This package's version, or "unknown". */
export function packageVersion(root = packageRoot()): string {
  const v = root ? readPackage(root)?.version : undefined;
  return typeof v === "string" ? v : "unknown";
}
