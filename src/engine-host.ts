/**
 * The pull engine's contract with the iterator that owns it (messages.ts): what the engine is
 * given ({@link EngineConfig}) and what it needs from the iterator ({@link EngineHost}).
 */

import type { AckQueue } from "./acks.js";
import type { NatsConnectionLike } from "./connection.js";
import type { JsMsg, JsMsgFlavor } from "./jsmsg.js";
import type { Notification } from "./notifications.js";
import type { ResolvedOptions } from "./options.js";
import type { OrderedSpec } from "./ordered.js";

/** What the engine needs from the iterator that owns it. */
export interface EngineHost {
  /** Messages (`size`) and bytes buffered, not yet handed out: the channel itself. */
  readonly held: { readonly size: number; readonly bytes: number };
  /** A data message the ledger accounted for: buffer it (or NAK it if closed). */
  deliver(msg: JsMsg, bytes: number): void;
  /** A data message that must not be buffered (no open request accounts for it): NAK it. */
  reject(msg: JsMsg, reason: string): void;
  notify(n: Notification): void;
  /** The connection is gone: drop what is buffered (it can be neither acked nor NAKed). */
  drop(): void;
  /**
   * The consumer must end: `terminal` for a server status no retry can fix (fence, hand out
   * the buffer, then end with `error`); `lost` when the connection closed (nothing more can be
   * acked or fenced). For `lost` the verdict (an error for a failure, undefined for a close by the
   * application) may come a little later, as a promise that always settles: the iterator ends at
   * once, and nothing gentler (a `drain()`) can change how it ended meanwhile.
   */
  end(kind: "terminal", error: Error): void;
  end(kind: "lost", verdict: Error | undefined | Promise<Error | undefined>): void;
  /**
   * A fetch's batch is complete (received, or ended by the server): nothing more will come, or,
   * when `fenced`, nothing after the unsubscribe's fence (the request may still be alive).
   */
  complete(fenced: boolean): void;
}

export interface EngineConfig {
  nc: NatsConnectionLike;
  stream: string;
  consumer: string;
  /** JetStream API prefix, e.g. `$JS.API` or `$JS.<domain>.API`. */
  prefix: string;
  opts: ResolvedOptions<unknown>;
  /** Timeout of JetStream API requests (consumer info) and the default of `ackAck()`, ms. */
  apiTimeout: number;
  /** The iterator's outgoing acks (acks.ts): the messages it makes queue their acks there. */
  acks: AckQueue;
  /** An ordered consumer (ordered.ts): the engine pulls from the chain its cursor keeps. */
  ordered?: OrderedSpec;
  /**
   * One batch (`fetchMessages()`): `max_messages` / `max_bytes` in all, one request at a time;
   * after a fault only the rest is asked for; the batch ends when it is received or the server
   * ends the request (408 at `expires`, or the expiry watch finding it removed without one:
   * recovery.ts), never by a client timer alone; missed heartbeats end it with an error.
   */
  fetch?: boolean;
  /** Whose `JsMsg.info` shape the messages have (nats.js v3 or v2); default v3. */
  flavor?: JsMsgFlavor;
}
