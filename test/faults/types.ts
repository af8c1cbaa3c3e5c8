/** What the fault runner (main.ts) and a client process (child.ts) say to each other. */

/** The two clients measured side by side. */
export const CLIENTS = ["jetstream-iter", "nats.js"] as const;
export type Client = (typeof CLIENTS)[number];

/** What a client process is told to do: `node child.js '<ClientJob as JSON>'`. */
export interface ClientJob {
  client: Client;
  servers: string[];
  /** Connect to `servers` in the order given (the first one is the client's own node). */
  noRandomize: boolean;
  /** JetStream domain the stream lives in (a leaf node's clients reaching the hub). */
  domain?: string;
  stream: string;
  consumer: string;
  /** Options of consume(); `{}` for the defaults. The same for both clients. */
  consumeOptions: Record<string, number>;
}

/** Connection options of both clients and the publisher (see docs/faults.md, Recovery times). */
export const CONNECTION = { maxReconnectAttempts: -1, reconnectTimeWait: 250, timeout: 2000 };

/** A message from a client process. */
export type ChildMessage =
  /** Consuming: consume() returned. */
  | { type: "ready" }
  /** Deliveries since the last report, as pairs: id, Date.now() when the loop got it. */
  | { type: "deliveries"; d: number[] }
  /** A connection status or a consumer notification. */
  | { type: "event"; t: number; what: string }
  /** The loop ended (it should not: nothing ends it but the runner). */
  | { type: "ended"; t: number; error?: string };

/** A message to a client process. */
export type ParentMessage = { type: "stop" };

/** The message id a payload carries (a big-endian uint32 at offset 0). */
export function idOf(data: Uint8Array): number {
  return new DataView(data.buffer, data.byteOffset, data.byteLength).getUint32(0);
}

/** A payload of `size` bytes (at least 4) carrying `id`. */
export function payloadFor(id: number, size: number): Uint8Array {
  const b = new Uint8Array(Math.max(4, size));
  new DataView(b.buffer).setUint32(0, id);
  return b;
}
