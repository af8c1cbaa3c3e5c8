/**
 * The repository's root: the nearest folder up from a file whose package.json is the library's
 * (`jetstream-iter`). The bench and faults runners use it from their compiled copies under
 * test/…/tmp/build/, where a fixed number of `..` would not do.
 */
import { existsSync, readFileSync, realpathSync } from "node:fs";
import { dirname, join } from "node:path";

export const PACKAGE_NAME = "jetstream-iter";

function nameIn(dir: string): unknown {
  const file = join(dir, "package.json");
  if (!existsSync(file)) return undefined;
  try {
    return (JSON.parse(readFileSync(file, "utf8")) as { name?: unknown }).name;
  } catch {
    return undefined;
  }
}

/** The nearest folder up from `file` (symlinks resolved) named jetstream-iter; undefined if none. */
export function packageRoot(file: string): string | undefined {
  let dir: string;
  try {
    dir = dirname(realpathSync(file));
  } catch {
    return undefined;
  }
  for (;;) {
    if (nameIn(dir) === PACKAGE_NAME) return dir;
    const up = dirname(dir);
    if (up === dir) return undefined;
    dir = up;
  }
}
