/**
 * The matrix tests what package.json declares: each cell is the release it claims to be, the
 * oldest cells are the lower bounds of the peer ranges, the newest lie inside them, and each v3
 * cell runs on one copy of its own matching `@nats-io/nats-core` (as in a user's install), not on
 * the root's.
 */
import { readFileSync } from "node:fs";
import { dirname, join, sep } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { type Cell, natsCoreOf, V2_NEWEST, V2_OLDEST, V3_NEWEST, V3_OLDEST } from "./cells.js";
import * as oldest from "./oldest/index.js";

const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const manifest = JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as {
  peerDependencies: Record<string, string>;
};

type Version = [number, number, number];

function parse(v: string): Version {
  const m = /^(\d+)\.(\d+)\.(\d+)$/.exec(v);
  if (!m) throw new Error(`not a release version: ${v}`);
  return [Number(m[1]), Number(m[2]), Number(m[3])];
}

function compare(a: Version, b: Version): number {
  return a[0] - b[0] || a[1] - b[1] || a[2] - b[2];
}

/** The lower bound of a caret range (the only form the peer ranges use). */
function lowerBound(range: string): Version {
  const m = /^\^(\d+\.\d+\.\d+)$/.exec(range);
  if (!m) throw new Error(`expected a caret range such as ^3.0.0, got ${range}`);
  return parse(m[1]!);
}

function inRange(version: string, range: string): boolean {
  const v = parse(version);
  const low = lowerBound(range);
  return v[0] === low[0] && compare(v, low) >= 0;
}

const peer = (pkg: string): string => {
  const range = manifest.peerDependencies[pkg];
  if (!range) throw new Error(`no peer dependency ${pkg}`);
  return range;
};

describe("the matrix cells are the bounds of the declared peer ranges", () => {
  const pairs: [Cell, Cell][] = [
    [V3_OLDEST, V3_NEWEST],
    [V2_OLDEST, V2_NEWEST],
  ];
  for (const [low, high] of pairs) {
    it(`${low.pkg}: the oldest cell (${low.version}) is the range's lower bound, the newest (${high.version}) inside it`, () => {
      const range = peer(low.pkg);
      expect(parse(low.version)).toEqual(lowerBound(range));
      expect(inRange(high.version, range)).toBe(true);
      expect(compare(parse(high.version), parse(low.version))).toBeGreaterThan(0);
    });
  }

  it("@nats-io/nats-core's peer range has the same lower bound as @nats-io/jetstream's", () => {
    expect(lowerBound(peer("@nats-io/nats-core"))).toEqual(lowerBound(peer("@nats-io/jetstream")));
  });

  for (const cell of [V3_OLDEST, V3_NEWEST]) {
    it(`${cell.name}: jetstream, nats-core and transport-node are one release`, () => {
      expect(new Set(Object.values(cell.versions))).toEqual(new Set([cell.version]));
    });
  }

  it("the oldest v3 cell's jetstream and transport-node share one nats-core of their own release, not the root's", () => {
    const cores = natsCoreOf(oldest.here, ["@nats-io/jetstream", "@nats-io/transport-node"]);
    expect([...cores.values()]).toEqual([V3_OLDEST.version]);
    const [path] = [...cores.keys()];
    expect(path).toContain(`${sep}test${sep}matrix${sep}oldest${sep}node_modules${sep}`);
  });

  it("the newest v3 cell's jetstream and transport-node share the root's nats-core", () => {
    const cores = natsCoreOf(import.meta.url, ["@nats-io/jetstream", "@nats-io/transport-node"]);
    expect([...cores.values()]).toEqual([V3_NEWEST.version]);
    expect([...cores.keys()]).toEqual([
      join(root, "node_modules", "@nats-io", "nats-core", "package.json"),
    ]);
  });
});
