/**
 * The small structural view of a NATS connection that the library needs. Both nats v2's and
 * @nats-io/nats-core v3's `NatsConnection` satisfy it; unit tests script their own.
 */

/** Message headers as nats.js parses them (status messages carry `code` and `description`). */
export interface HeadersLike {
  readonly code?: number;
  readonly description?: string;
  get(key: string): string;
}

/** A message as nats.js hands it to a subscription callback. */
export interface MsgLike {
  readonly subject: string;
  readonly reply?: string | undefined;
  readonly data: Uint8Array;
  readonly headers?: HeadersLike | undefined;
  readonly sid: number;
  /** Bytes as the server counts them for max_bytes (subject, reply, headers, payload). */
  size?(): number;
}

export interface SubscriptionLike {
  unsubscribe(max?: number): void;
  /** Sends UNSUB, flushes (PING/PONG), then closes the subscription locally. */
  drain(): Promise<void>;
  isClosed(): boolean;
  readonly closed: Promise<unknown>;
  getSubject(): string;
}

export interface SubscribeOptionsLike {
  callback: (err: Error | null, msg: MsgLike) => void;
}

/** A connection status event; only `disconnect` and `reconnect` matter here. */
export interface ConnectionStatusLike {
  readonly type: string;
}

export interface StatusIteratorLike extends AsyncIterable<ConnectionStatusLike> {
  stop?(err?: Error): void;
  /** Statuses pushed and not yet yielded (nats.js's queued iterator has it). */
  getPending?(): number;
}

export interface NatsConnectionLike {
  subscribe(subject: string, opts: SubscribeOptionsLike): SubscriptionLike;
  publish(subject: string, payload?: Uint8Array, opts?: { reply?: string }): void;
  request(subject: string, payload?: Uint8Array, opts?: { timeout: number }): Promise<MsgLike>;
  flush(): Promise<void>;
  status(): StatusIteratorLike;
  closed(): Promise<void | Error>;
  isClosed(): boolean;
  readonly info?:
    | {
        readonly version?: string;
        readonly server_id?: string;
        /** The largest message payload the server accepts, bytes. */
        readonly max_payload?: number;
        /** Set when the server is in a cluster. */
        readonly cluster?: string;
        /** Set when the server has a JetStream domain. */
        readonly domain?: string;
      }
    | undefined;
  readonly options?: { readonly inboxPrefix?: string } | undefined;
}

const ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/**
 * A unique inbox subject under the connection's inbox prefix (default `_INBOX`). Built flat
 * (fromCharCode, join): appending character by character, or a template literal, makes a chain
 * of cons strings (32 bytes a link) that every iterator kept for its life.
 */
export function newInbox(nc: NatsConnectionLike): string {
  const prefix = nc.options?.inboxPrefix || "_INBOX";
  const bytes = new Uint8Array(22);
  crypto.getRandomValues(bytes);
  const codes = new Array<number>(bytes.length);
  for (let i = 0; i < bytes.length; i++) codes[i] = ALPHABET.charCodeAt(bytes[i]! % 62);
  return [prefix, String.fromCharCode(...codes)].join(".");
}

/** True when `value` looks enough like a NATS connection for this library to use it. */
export function isNatsConnectionLike(value: unknown): value is NatsConnectionLike {
  if (typeof value !== "object" || value === null) return false;
  const v = value as Record<string, unknown>;
  return ["subscribe", "publish", "request", "flush", "status", "closed", "isClosed"].every(
    (k) => typeof v[k] === "function",
  );
}

/** Compares `major.minor` of a server version string with `want` ("2.10"). */
export function serverAtLeast(version: string | undefined, major: number, minor: number): boolean {
  if (!version) return false;
  const m = /^v?(\d+)\.(\d+)/.exec(version);
  if (!m) return false;
  const [maj, min] = [Number(m[1]), Number(m[2])];
  return maj > major || (maj === major && min >= minor);
}

/** Size of a message as the server counts it against a pull request's max_bytes. */
export function msgSize(msg: MsgLike): number {
  if (typeof msg.size === "function") return msg.size();
  return msg.subject.length + (msg.reply?.length ?? 0) + msg.data.length;
}

type ClosedListener = (err: Error | undefined) => void;
const closedWatchers = new WeakMap<NatsConnectionLike, Set<ClosedListener>>();

/**
 * Calls `fn` once when the connection closes: with the Error nats.js reports for a failure, or
 * undefined when the application closed it. Returns the function that removes the listener.
 * One `closed()` handler per connection serves every iterator, so iterators that come and go
 * on a long-lived connection leave nothing behind.
 */
export function onConnectionClosed(nc: NatsConnectionLike, fn: ClosedListener): () => void {
  let set = closedWatchers.get(nc);
  if (!set) {
    const listeners = new Set<ClosedListener>();
    set = listeners;
    closedWatchers.set(nc, listeners);
    nc.closed().then(
      (err) => {
        closedWatchers.delete(nc);
        for (const l of [...listeners]) l(err instanceof Error ? err : undefined);
      },
      (err) => {
        closedWatchers.delete(nc);
        for (const l of [...listeners]) l(err instanceof Error ? err : new Error(String(err)));
      },
    );
  }
  set.add(fn);
  const listeners = set;
  return () => {
    listeners.delete(fn);
  };
}

type StatusListener = (s: ConnectionStatusLike) => void;
interface StatusWatcher {
  iter: StatusIteratorLike;
  /** Each listener, with how many statuses queued before it joined it must not hear. */
  listeners: Map<StatusListener, { skip: number }>;
}
const statusWatchers = new WeakMap<NatsConnectionLike, StatusWatcher>();

/**
 * Calls `fn` with every status of the connection from now on. Returns the function that removes
 * the listener. Throws what `status()` throws (a closed connection). One `status()` iterator per
 * connection serves every iterator on it, and is stopped when the last listener leaves: one per
 * iterator cost each ~1 KB of heap (nats.js's queued iterator, its generator and promises).
 */
export function onConnectionStatus(nc: NatsConnectionLike, fn: StatusListener): () => void {
  let w = statusWatchers.get(nc);
  if (!w) {
    const watcher: StatusWatcher = { iter: nc.status(), listeners: new Map() };
    w = watcher;
    statusWatchers.set(nc, watcher);
    (async () => {
      for await (const s of watcher.iter) {
        for (const [l, joined] of [...watcher.listeners]) {
          // A listener removed by an earlier one (its iterator ended) hears no more.
          if (!watcher.listeners.has(l)) continue;
          // Queued before it joined: not news to it (a new iterator must not re-pull for a
          // reconnect that happened before it started).
          if (joined.skip > 0) {
            joined.skip--;
            continue;
          }
          try {
            l(s);
          } catch {
            // One listener's fault must not deafen the others.
          }
        }
      }
    })()
      .catch(() => {})
      .finally(() => {
        // The iterator ended (the connection closed): the next listener asks for a new one.
        if (statusWatchers.get(nc) === watcher) statusWatchers.delete(nc);
      });
  }
  const watcher = w;
  if (!watcher.listeners.has(fn)) {
    watcher.listeners.set(fn, {
      skip: watcher.iter.getPending?.() ?? 0,
    });
  }
  return () => {
    if (!watcher.listeners.delete(fn) || watcher.listeners.size > 0) return;
    if (statusWatchers.get(nc) === watcher) statusWatchers.delete(nc);
    watcher.iter.stop?.();
  };
}
