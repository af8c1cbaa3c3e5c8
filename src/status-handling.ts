/**
 * Status handling: what each server status on an inbox does to the ledger, the fetch, the
 * ordered chain and the retry. What a status *means* is the pure mapping of statuses.ts; this
 * module acts on it, through the pieces and operations of the engine ({@link StatusEngine}).
 */

import type { MsgLike } from "./connection.js";
import type { EngineConfig, EngineHost } from "./engine-host.js";
import { ConsumerDeletedError, JetStreamStatusError } from "./errors.js";
import type { HeartbeatMonitor } from "./heartbeats.js";
import type { Generation, Inboxes } from "./inboxes.js";
import type { PullLedger } from "./ledger.js";
import type { OrderedCursor } from "./ordered.js";
import type { Recovery } from "./recovery.js";
import { classifyStatus } from "./statuses.js";

/** What status handling works through: the engine's pieces, and the operations it needs of it. */
export interface StatusEngine {
  readonly cfg: EngineConfig;
  readonly host: EngineHost;
  readonly ledger: PullLedger;
  readonly inboxes: Inboxes;
  readonly monitor: HeartbeatMonitor;
  readonly recovery: Recovery;
  /** An ordered consumer's position and current server consumer; undefined for a durable. */
  readonly cursor: OrderedCursor | undefined;
  /**
   * After 409 Message Size Exceeds MaxBytes: the bytes of room the next message needs, at least
   * (the room the request had, plus one).
   */
  needRoom(bytes: number): void;
  /** Moves to a new inbox generation after a fault; its open requests are forgotten. */
  rotate(how: "retire" | "drop"): void;
  /** Re-pulls after a backoff, capped at `capMs` (default and at most `idle_heartbeat`). */
  retryLater(capMs?: number): void;
  /** A fetch's batch is complete: stop, and let the iterator close with what it holds. */
  completeFetch(): void;
  /** Publishes a pull request if one is due. */
  maybePull(): void;
  /** The heartbeat monitor watches while a request is open and the connection is up. */
  watchHeartbeats(): void;
  debug(description: string): void;
}

/** Backoff cap after 409 Exceeded MaxWaiting, ms. */
const MAX_WAITING_RETRY_MS = 200;

/** A message with no reply subject that arrived on inbox generation `g`: a status, or nothing. */
export function handleStatus(engine: StatusEngine, g: Generation, msg: MsgLike): void {
  const h = msg.headers;
  const code = h?.code ?? 0;
  if (!h || !code) {
    engine.debug("dropped inbox message: no reply subject and no status");
    return;
  }
  const description = h.description ?? "";
  if (g !== engine.inboxes.current) {
    onRetiredStatus(engine, g, code, description);
    return;
  }
  engine.inboxes.releaseRetired();
  engine.monitor.alive();
  const id = msg.subject;
  const action = classifyStatus(code, description);
  switch (action.kind) {
    case "heartbeat":
      engine.host.notify({
        type: "heartbeat",
        lastConsumerSequence: toInt(h.get("Nats-Last-Consumer")),
        lastStreamSequence: toInt(h.get("Nats-Last-Stream")),
      });
      break;
    case "ended": {
      const pendingMsgs = h.get("Nats-Pending-Messages");
      const pendingBytes = h.get("Nats-Pending-Bytes");
      const released = engine.ledger.ended(
        id,
        pendingMsgs ? toInt(pendingMsgs) : undefined,
        pendingBytes ? toInt(pendingBytes) : undefined,
      );
      if (action.tooLarge) engine.host.notify({ type: "exceeded_limits", code, description });
      if (released === "unknown") {
        engine.debug(`status ${code} ${description} for a request that is not open`);
        break;
      }
      if (engine.cfg.fetch) {
        // The server ended the batch (408 at expires, or the next message does not fit).
        engine.completeFetch();
        return;
      }
      if (released === "ambiguous") engine.rotate("drop");
      if (action.tooLarge) {
        // Cut short because the buffer holds part of max_bytes: pull again once the room is
        // larger than this request had. A message larger than max_bytes itself: back off
        // (the server cannot deliver it to us).
        if (engine.host.held.bytes === 0) engine.retryLater();
        else if (released !== "ambiguous") engine.needRoom(released.bytesLeft + 1);
      } else if (released !== "ambiguous") {
        const { messagesLeft, bytesLeft } = released;
        if (messagesLeft > 0 || bytesLeft > 0) {
          engine.host.notify({ type: "discard", messagesLeft, bytesLeft });
        }
      }
      // nats.js v3 reports every 404/408 as `debug` too, after `discard`
      if (!action.tooLarge) engine.host.notify({ type: "debug", code, description });
      break;
    }
    case "limit":
      engine.host.notify({ type: "exceeded_limits", code, description });
      if (engine.cfg.fetch && engine.ledger.has(id)) {
        // A fetch is one request: refused, it fails (as in nats.js); the caller tries again.
        engine.host.end("terminal", new JetStreamStatusError(code, description));
        return;
      }
      // Max waiting is contention: the slot frees when another client's request completes,
      // often within milliseconds, so keep trying often. The other limits are configuration.
      if (engine.ledger.refused(id)) {
        engine.retryLater(action.maxWaiting ? MAX_WAITING_RETRY_MS : undefined);
      }
      break;
    case "leadership":
      engine.host.notify({ type: "debug", code, description });
      if (endWithoutCounts(engine, id)) engine.retryLater();
      break;
    case "deleted":
      engine.host.notify({ type: "consumer_deleted", code, description });
      if (engine.cursor) {
        // Part of the chain: re-created from the last message buffered.
        if (engine.ledger.has(id)) engine.rotate("drop");
        break;
      }
      if (engine.cfg.opts.abort_on_missing_resource || engine.cfg.fetch) {
        const { stream, consumer } = engine.cfg;
        engine.host.end("terminal", new ConsumerDeletedError(stream, consumer, description));
        return;
      }
      if (endWithoutCounts(engine, id)) engine.retryLater();
      break;
    case "no_responders":
      engine.host.notify({ type: "no_responders", code });
      if (engine.cfg.fetch && engine.ledger.has(id)) {
        engine.host.end("terminal", new JetStreamStatusError(code, "No Responders"));
        return;
      }
      if (engine.ledger.refused(id)) {
        engine.recovery.checkConsumer();
        engine.retryLater();
      }
      break;
    case "terminal":
      engine.host.end("terminal", new JetStreamStatusError(code, description));
      return;
    case "unknown":
      engine.host.notify({ type: "debug", code, description });
      break;
  }
  engine.maybePull();
  engine.watchHeartbeats();
}

/**
 * Request `id` ended by a status that does not say what it had left (409 Leadership Change,
 * 409 Consumer Deleted). Alone, nothing more can come; beside other open requests the ledger
 * cannot split the totals, so the generation is dropped, cutting them all. False when the
 * request was not open.
 */
function endWithoutCounts(engine: StatusEngine, id: string): boolean {
  const released = engine.ledger.ended(id, undefined, undefined);
  if (released === "unknown") return false;
  if (released === "ambiguous") engine.rotate("drop");
  return true;
}

/**
 * A status for a generation a fault retired: its request's fate is known, so stop listening to
 * it. 409 Leadership Change there is a recovery signal (recovery.ts); anything else is ignored.
 */
function onRetiredStatus(
  engine: StatusEngine,
  g: Generation,
  code: number,
  description: string,
): void {
  engine.inboxes.letGo(g);
  if (!engine.recovery.retiredStatus(code, description)) {
    engine.debug(`ignored status ${code} of a previous inbox`);
  }
}

function toInt(s: string | undefined): number {
  const n = Number.parseInt(s ?? "", 10);
  return Number.isFinite(n) && n > 0 ? n : 0;
}
