/**
 * Recovery: how the engine finds out that its open pull requests are gone without a word, and
 * when to pull again. The signals, from the earliest:
 *
 * - a reconnect: requests on the old server may or may not have survived: drop the old inbox
 *   (a survivor loses interest and is never served, so nothing is stacked on the new pull) and
 *   pull at once; and look the consumer up at once, urgently: if the node we were on led the
 *   consumer, the cluster is electing a new leader and that pull is lost (2.9.10 answers neither
 *   pulls nor info while there is none, and the new leader's 409 Leadership Change goes to the
 *   dropped inbox). The first answer after unanswered lookups pulls again — about a second after
 *   the election, not two heartbeats after it;
 * - 409 Leadership Change on a retired inbox: a new consumer leader is up, and a pull sent while
 *   there was none was lost: pull again at once;
 * - consumer info answered after unanswered lookups: the consumer has a leader again (or a hung
 *   server came back): pull at once;
 * - missed heartbeats: once the newest request has had two intervals to show life, look the
 *   consumer up (a deleted consumer or stream is reported, and with `abort_on_missing_resource`
 *   ends the iterator) and, unless that lookup goes unanswered, PING the server. A PONG that
 *   comes while nothing changed (same generation, no request published, no life) proves the
 *   silent requests lost: retire their inbox and pull again. No PONG (hung server): nothing is
 *   stacked; the next interval asks again.
 *
 * Every promise here re-checks the engine's state when it settles and changes nothing if the
 * world moved on; nothing is held back while one is out.
 */
import type { NatsConnectionLike } from "./connection.js";
import { ConsumerNotFoundError, StreamNotFoundError } from "./errors.js";
import { ConsumerLookup, type LookupConfig, type LookupResult } from "./lookup.js";
import type { Notification } from "./notifications.js";
import { classifyStatus } from "./statuses.js";

/**
 * What recovery reads from and asks of the engine. Methods only: the engine itself implements it
 * (one per iterator, so no host object or closures of its own; see engine.ts).
 */
export interface RecoveryHost {
  /** Still pulling (open, not stopped). */
  isRunning(): boolean;
  /** The connection is up. */
  isConnected(): boolean;
  /** When the newest request was published (Date.now()). */
  lastPullAt(): number;
  /** Whether the server showed life since the newest request was published (or none is open). */
  heardSincePull(): boolean;
  /** Requests the ledger counts as open. */
  openRequests(): number;
  /** A token of the pull state: it changes with the generation, a request published, or life. */
  epoch(): string;
  /**
   * `$JS.API.CONSUMER.INFO.<stream>.<consumer>` with the API prefix, for the consumer pulled from
   * now; undefined while an ordered consumer is being re-created.
   */
  infoSubject(): string | undefined;
  /** Consumer info says the server has `n` messages not yet delivered to the consumer. */
  pendingOnServer(n: number): void;
  /** Moves to a new inbox generation (the current one retired or dropped) and pulls again. */
  repull(how: "retire" | "drop"): void;
  notify(n: Notification): void;
  end(error: Error): void;
}

export interface RecoveryConfig {
  nc: NatsConnectionLike;
  stream: string;
  consumer: string;
  /** `idle_heartbeat`, ms. */
  idleHeartbeat: number;
  /** JetStream API timeout, ms. */
  apiTimeout: number;
  /** Never look the consumer up. */
  bind: boolean;
  abortOnMissingResource: boolean;
  /**
   * An ordered consumer: one found missing is re-created (`repull("drop")` moves to a new one),
   * whatever `abortOnMissingResource` says; only a missing stream ends it.
   */
  ordered: boolean;
}

/**
 * Recovery is itself its lookup's config (LookupConfig): an object of its own, with a closure per
 * operation, cost each iterator ~0.25 KB of heap.
 */
export class Recovery implements LookupConfig {
  private readonly lookup: ConsumerLookup;
  private notFound = 0;
  /** @internal LookupConfig */
  readonly nc: NatsConnectionLike;
  /** @internal LookupConfig: how long one consumer info request waits, ms. */
  readonly timeout: number;
  /** @internal LookupConfig: pause between an unanswered request and the next, ms. */
  readonly interval: number;

  constructor(
    private readonly cfg: RecoveryConfig,
    private readonly host: RecoveryHost,
  ) {
    this.nc = cfg.nc;
    this.timeout = Math.min(cfg.apiTimeout, Math.max(250, cfg.idleHeartbeat / 2));
    this.interval = Math.max(100, cfg.idleHeartbeat / 4);
    this.lookup = new ConsumerLookup(this);
  }

  /** @internal LookupConfig: the consumer info subject now. */
  subject(): string | undefined {
    return this.host.infoSubject();
  }

  /** @internal LookupConfig: keep asking after an unanswered request while the fault lasts. */
  retry(): boolean {
    const h = this.host;
    return h.isRunning() && h.isConnected() && !h.heardSincePull();
  }

  /** @internal LookupConfig: an answer to consumer info. */
  answered(result: LookupResult, afterOutage: boolean, numPending?: number): void {
    if (numPending !== undefined) this.host.pendingOnServer(numPending);
    this.onLookup(result, afterOutage);
  }

  /** No more lookups; a pending retry is cleared. Idempotent. */
  stop(): void {
    this.lookup.cancel();
  }

  /**
   * Looks the consumer up (unless `bind`): tells a deleted consumer or stream from a fault, and
   * keeps asking while the open request shows no life.
   */
  checkConsumer(): void {
    if (this.cfg.bind || !this.host.isRunning()) return;
    this.lookup.check();
  }

  /** The connection is back. */
  reconnected(): void {
    if (!this.host.isRunning()) return;
    this.host.repull("drop");
    if (!this.cfg.bind) this.lookup.check(true);
  }

  /**
   * A status on a retired inbox. 409 Leadership Change: a new consumer leader is up; unless the
   * current request already showed life, pull again on a new inbox (the current one dropped:
   * its request may have reached the new leader and must not be served beside the new one).
   * Returns false for any other status (the caller ignores it).
   */
  retiredStatus(code: number, description: string): boolean {
    if (classifyStatus(code, description).kind !== "leadership") return false;
    this.host.notify({ type: "debug", code, description });
    const h = this.host;
    if (h.isRunning() && h.isConnected() && !h.heardSincePull()) h.repull("drop");
    return true;
  }

  /** The heartbeat monitor reports `count` silent intervals (2, 3, …). */
  missed(count: number): void {
    const h = this.host;
    h.notify({ type: "heartbeats_missed", count });
    if (Date.now() - h.lastPullAt() < 2 * this.cfg.idleHeartbeat) return;
    this.checkConsumer();
    // While consumer info goes unanswered the consumer has no leader (or the server is hung):
    // a pull now would be lost too. The lookup's first answer pulls at once (onLookup).
    if (this.lookup.inOutage) return;
    // What the PONG is about: this generation, these requests, this silence.
    const epoch = h.epoch();
    this.cfg.nc.flush().then(
      () => {
        if (!h.isRunning() || !h.isConnected() || h.epoch() !== epoch || h.openRequests() === 0)
          return;
        h.notify({
          type: "debug",
          code: 0,
          description: `heartbeats_missed(${count}): the server answers, the open requests are silent: pulling again on a new inbox`,
        });
        h.repull("retire");
      },
      () => {},
    );
  }

  private onLookup(result: LookupResult, afterOutage: boolean): void {
    const h = this.host;
    if (!h.isRunning()) return;
    const { stream: s, consumer: c, abortOnMissingResource: abort } = this.cfg;
    if (result === "consumer_not_found") {
      h.notify({ type: "consumer_not_found", name: c, stream: s, count: ++this.notFound });
      if (this.cfg.ordered) h.repull("drop");
      else if (abort) h.end(new ConsumerNotFoundError(s, c));
      return;
    }
    if (result === "stream_not_found") {
      h.notify({ type: "stream_not_found", name: s });
      if (abort) h.end(new StreamNotFoundError(s));
      return;
    }
    this.notFound = 0;
    if (afterOutage && h.isConnected() && !h.heardSincePull()) {
      h.notify({
        type: "debug",
        code: 0,
        description: "consumer info answered again after unanswered requests: pulling again",
      });
      h.repull("drop");
    }
  }
}
