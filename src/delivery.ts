/**
 * Delivery: what a data message on an inbox must pass before it is buffered: its inbox
 * generation, its ack subject, the ledger and, for an ordered consumer, the chain's sequence. It
 * works through the pieces and operations of the engine ({@link DeliveryEngine}).
 */

import { type MsgLike, msgSize } from "./connection.js";
import type { EngineConfig, EngineHost } from "./engine-host.js";
import type { HeartbeatMonitor } from "./heartbeats.js";
import type { Generation, Inboxes } from "./inboxes.js";
import { type AckTarget, ackCounters, JsMsg, scanAckReply } from "./jsmsg.js";
import type { PullLedger } from "./ledger.js";
import type { OrderedCursor } from "./ordered.js";

/** What delivery works through: the engine's pieces, and the operations it needs of it. */
export interface DeliveryEngine {
  readonly cfg: EngineConfig;
  readonly host: EngineHost;
  readonly ledger: PullLedger;
  readonly inboxes: Inboxes;
  readonly monitor: HeartbeatMonitor;
  /** An ordered consumer's position and current server consumer; undefined for a durable. */
  readonly cursor: OrderedCursor | undefined;
  /** What the messages' acks go through. */
  readonly ackTarget: AckTarget;
  /** A fetch: what its batch has brought so far. */
  readonly fetched: { msgs: number; bytes: number };
  /** The server consumer pulls go to; undefined while an ordered one is being re-created. */
  consumerName(): string | undefined;
  /** `ackPrefix(stream, consumer)`, made once per consumer rather than once per message. */
  ackPrefix(consumer: string): string;
  /**
   * A message of `size` bytes is accepted: the retry backoff and the room awaited after 409
   * Message Size Exceeds MaxBytes start over, `pending` (from its ack subject) is the server's
   * backlog now, and when and how big it was is noted for telling a cut (cuts.ts).
   */
  accepted(pending: number, size: number): void;
  /** Moves to a new inbox generation after a fault; its open requests are forgotten. */
  rotate(how: "retire" | "drop"): void;
  /** Publishes a pull request if one is due. */
  maybePull(): void;
  /** The heartbeat monitor watches while a request is open and the connection is up. */
  watchHeartbeats(): void;
  debug(description: string): void;
}

/**
 * The counters of the message being handled, filled by `scanAckReply`: one record reused for
 * every message (handleData reads it before anything it calls could handle another message), so
 * the per-message path reads the sequences without building the message's `info`.
 */
const counters = ackCounters();

/** A message with a reply subject that arrived on inbox generation `g`: data, perhaps ours. */
export function handleData(
  engine: DeliveryEngine,
  g: Generation,
  msg: MsgLike,
  reply: string,
): void {
  const cursor = engine.cursor;
  if (cursor && g !== engine.inboxes.current) {
    // From a consumer of the chain already left behind: the new one starts after the cursor.
    engine.inboxes.letGo(g);
    engine.debug("dropped a message of a replaced ordered consumer");
    return;
  }
  const consumer = engine.consumerName();
  if (consumer === undefined) {
    engine.debug("dropped a message that arrived while the ordered consumer is re-created");
    return;
  }
  const pending = scanAckReply(
    reply,
    engine.cfg.stream,
    consumer,
    counters,
    engine.ackPrefix(consumer),
  );
  if (typeof pending === "string") {
    engine.debug(`dropped inbox message: ${pending}`);
    return;
  }
  const { deliverySequence, streamSequence } = counters;
  const m = new JsMsg(msg, reply, engine.ackTarget, streamSequence);
  if (g !== engine.inboxes.current) {
    // A request cut off after a fault is alive after all (a hung server came back): cut its
    // interest, and give the message back.
    engine.inboxes.letGo(g);
    engine.host.reject(m, "its pull request was replaced after a fault");
    return;
  }
  const size = msgSize(msg);
  if (cursor) {
    if (!engine.ledger.received(size) || !cursor.accept(deliverySequence, streamSequence)) {
      // Delivered but not buffered (no request accounts for it, or one before it is missing):
      // the chain broke here.
      engine.debug(
        `ordered consumer: delivery ${deliverySequence} (stream ${streamSequence}) out of sequence after stream ${cursor.streamSequence}: re-creating`,
      );
      engine.rotate("drop");
      return;
    }
  } else if (!engine.ledger.received(size)) {
    engine.host.reject(m, "no open pull request accounts for it");
    return;
  }
  if (engine.cfg.fetch) {
    engine.fetched.msgs++;
    engine.fetched.bytes += size;
  }
  engine.inboxes.releaseRetired();
  engine.monitor.alive();
  engine.accepted(pending, size);
  engine.host.deliver(m, size);
  engine.maybePull();
  engine.watchHeartbeats();
}
