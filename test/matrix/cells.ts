/**
 * The cells of the nats.js version matrix: the oldest and the newest release of each declared
 * peer range, each driven through its own nats.js (its own connection and consumer objects). The
 * oldest come from test/matrix/oldest (its own node_modules); the newest are the root's.
 */
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { pathToFileURL } from "node:url";
import { jetstream as jetstreamNewest } from "@nats-io/jetstream";
import { connect as connectV3Newest } from "@nats-io/transport-node";
import { connect as connectV2Newest } from "nats";
import type { PullConsumerLike } from "../../src/index.js";
import * as oldest from "./oldest/index.js";

/** A connection of the cell's nats.js, as the scenarios use it. */
export interface Conn {
  close(): Promise<void>;
  flush(): Promise<void>;
  isClosed(): boolean;
}

export interface ConnectOptions {
  /** Reconnect for ever, quickly (for the restart scenario); default: nats.js's defaults. */
  reconnecting?: boolean;
}

export interface Cell {
  /** "@nats-io/jetstream 3.0.0", "nats 2.29.3" */
  name: string;
  generation: "v3" | "v2";
  /** The package whose version names the cell, and the version installed. */
  pkg: string;
  version: string;
  /** The versions of every package of this cell, as resolved from where the cell imports them. */
  versions: Record<string, string>;
  connect(url: string, opts?: ConnectOptions): Promise<Conn>;
  /** `consumers.get(stream, name)`: a durable pull consumer. */
  durable(nc: Conn, stream: string, name: string): Promise<PullConsumerLike>;
  /** `consumers.get(stream, { opt_start_seq })`: an ordered consumer. */
  ordered(nc: Conn, stream: string, startSeq: number): Promise<PullConsumerLike>;
}

const RECONNECTING = { maxReconnectAttempts: -1, reconnectTimeWait: 50, timeout: 1000 };

/** The file that `pkg` resolves to from `fromUrl`, as Node would find it. */
function resolveFrom(fromUrl: string, pkg: string): string {
  return createRequire(fromUrl).resolve(pkg);
}

/** The package.json of the package that `file` belongs to: the nearest one that names `pkg`. */
function manifestOf(file: string, pkg: string): { path: string; version: string } {
  for (let dir = dirname(file); dir !== dirname(dir); dir = dirname(dir)) {
    try {
      const path = join(dir, "package.json");
      const m = JSON.parse(readFileSync(path, "utf8")) as { name?: string; version?: string };
      if (m.name === pkg && m.version) return { path, version: m.version };
    } catch {
      // no package.json here: go up
    }
  }
  throw new Error(`no package.json of ${pkg} above ${file}`);
}

/** Where `pkg` resolves from `fromUrl`: its package.json path and version. */
export function installed(fromUrl: string, pkg: string): { path: string; version: string } {
  return manifestOf(resolveFrom(fromUrl, pkg), pkg);
}

/**
 * Which `@nats-io/nats-core` each of `pkgs` uses, as resolved from that package's own files:
 * package.json path → version. One entry means one copy, shared, as in a user's install.
 */
export function natsCoreOf(fromUrl: string, pkgs: string[]): Map<string, string> {
  const out = new Map<string, string>();
  for (const pkg of pkgs) {
    const entry = resolveFrom(fromUrl, pkg);
    const core = installed(pathToFileURL(entry).href, "@nats-io/nats-core");
    out.set(core.path, core.version);
  }
  return out;
}

const V3_PKGS = ["@nats-io/jetstream", "@nats-io/nats-core", "@nats-io/transport-node"];

function versionsOf(fromUrl: string, pkgs: string[]): Record<string, string> {
  return Object.fromEntries(pkgs.map((p) => [p, installed(fromUrl, p).version]));
}

type V3Connect = (opts: Record<string, unknown>) => Promise<Conn>;
type V3Jetstream = (nc: never) => {
  consumers: {
    get(stream: string, name?: string | Record<string, unknown>): Promise<PullConsumerLike>;
  };
};

function v3Cell(fromUrl: string, connect: V3Connect, jetstream: V3Jetstream): Cell {
  const versions = versionsOf(fromUrl, V3_PKGS);
  const version = versions["@nats-io/jetstream"]!;
  return {
    name: `@nats-io/jetstream ${version}`,
    generation: "v3",
    pkg: "@nats-io/jetstream",
    version,
    versions,
    connect: (url, opts = {}) =>
      connect({ servers: url, ...(opts.reconnecting ? RECONNECTING : {}) }),
    durable: (nc, stream, name) => jetstream(nc as never).consumers.get(stream, name),
    ordered: (nc, stream, startSeq) =>
      jetstream(nc as never).consumers.get(stream, { opt_start_seq: startSeq }),
  };
}

type V2Conn = Conn & {
  jetstream(): {
    consumers: {
      get(stream: string, name?: string | Record<string, unknown>): Promise<PullConsumerLike>;
    };
  };
};
type V2Connect = (opts: Record<string, unknown>) => Promise<V2Conn>;

function v2Cell(fromUrl: string, connect: V2Connect): Cell {
  const versions = versionsOf(fromUrl, ["nats"]);
  const version = versions.nats!;
  return {
    name: `nats ${version}`,
    generation: "v2",
    pkg: "nats",
    version,
    versions,
    connect: (url, opts = {}) =>
      connect({ servers: url, ...(opts.reconnecting ? RECONNECTING : {}) }),
    durable: (nc, stream, name) => (nc as V2Conn).jetstream().consumers.get(stream, name),
    ordered: (nc, stream, startSeq) =>
      (nc as V2Conn).jetstream().consumers.get(stream, { opt_start_seq: startSeq }),
  };
}

export const V3_OLDEST: Cell = v3Cell(
  oldest.here,
  oldest.connectV3 as V3Connect,
  oldest.jetstream as unknown as V3Jetstream,
);
export const V3_NEWEST: Cell = v3Cell(
  import.meta.url,
  connectV3Newest as V3Connect,
  jetstreamNewest as unknown as V3Jetstream,
);
export const V2_OLDEST: Cell = v2Cell(oldest.here, oldest.connectV2 as unknown as V2Connect);
export const V2_NEWEST: Cell = v2Cell(import.meta.url, connectV2Newest as unknown as V2Connect);
