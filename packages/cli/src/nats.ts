/**
 * The NATS client the CLI talks through: nats.js v3 (`@nats-io/transport-node` and
 * `@nats-io/jetstream`), dependencies of this package, loaded on first use so `--help` does
 * not wait for them. Connection and JetStream failures become one-line
 * {@link CliError}s that name the server.
 */
import type { JetStreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/nats-core";
import { CliError, oneLine, UsageError } from "./errors.js";

export type TransportModule = typeof import("@nats-io/transport-node");
export type JetStreamModule = typeof import("@nats-io/jetstream");

export interface NatsClient {
  transport: TransportModule;
  jetstream: JetStreamModule;
}

/** Loads nats.js v3, or says how to install it (should an install have lost it). */
export async function loadNats(): Promise<NatsClient> {
  try {
    const [transport, jetstream] = await Promise.all([
      import("@nats-io/transport-node"),
      import("@nats-io/jetstream"),
    ]);
    return { transport, jetstream };
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    if (code === "ERR_MODULE_NOT_FOUND" || code === "MODULE_NOT_FOUND") {
      throw new CliError(
        "this command needs the NATS client for Node.js, a dependency of jetstream-iter-cli that is not installed: npm install @nats-io/transport-node @nats-io/jetstream",
      );
    }
    throw err;
  }
}

const SCHEMES = new Set(["nats:", "tls:"]);

/**
 * Parses `--server`: one URL or a comma-separated list; `host:port` means `nats://host:port`.
 * Throws {@link UsageError} for anything else.
 */
export function parseServers(value: string): string[] {
  const list = value
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
  if (list.length === 0) throw new UsageError("--server: expected a URL such as nats://host:4222");
  return list.map((s) => {
    const withScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(s) ? s : `nats://${s}`;
    let url: URL;
    try {
      url = new URL(withScheme);
    } catch {
      throw new UsageError(`--server: "${s}" is not a URL (expected e.g. nats://127.0.0.1:4222)`);
    }
    if (!SCHEMES.has(url.protocol)) {
      throw new UsageError(`--server: "${s}" uses ${url.protocol}// (expected nats:// or tls://)`);
    }
    if (!url.hostname) throw new UsageError(`--server: "${s}" has no host`);
    return withScheme;
  });
}

export interface ConnectOptions {
  /** Connection name shown by the server. */
  name: string;
  /** Milliseconds to wait for the first connection. Default 5 000. */
  timeout?: number;
}

/**
 * Connects, reconnecting forever once connected (a restarted server is waited for). A server
 * that cannot be reached at first is a {@link CliError}.
 */
export async function connectTo(
  nats: NatsClient,
  servers: string[],
  opts: ConnectOptions,
): Promise<NatsConnection> {
  try {
    return await nats.transport.connect({
      servers,
      name: opts.name,
      timeout: opts.timeout ?? 5_000,
      maxReconnectAttempts: -1,
      reconnectTimeWait: 250,
    });
  } catch (err) {
    throw new CliError(
      `cannot reach the NATS server at ${servers.join(", ")} (${oneLine(err)}). Is it running? Give its address with --server URL.`,
    );
  }
}

/** A JetStream manager, or a clear error when the server has no JetStream. */
export async function manager(
  nats: NatsClient,
  nc: NatsConnection,
  servers: string[],
): Promise<JetStreamManager> {
  try {
    return await nats.jetstream.jetstreamManager(nc, { timeout: 5_000 });
  } catch (err) {
    throw new CliError(
      `JetStream is not available on ${servers.join(", ")} (${oneLine(err)}). Start nats-server with -js.`,
    );
  }
}

/** True for the JetStream API's "not found" errors (stream 10059, consumer 10014). */
export function isNotFound(err: unknown): boolean {
  const code = (err as { code?: unknown }).code;
  return code === 10059 || code === 10014 || (err as { status?: unknown }).status === 404;
}
