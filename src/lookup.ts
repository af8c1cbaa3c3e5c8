/**
 * Consumer lookup: asks the JetStream API for the consumer's info after a fault, to tell a
 * deleted consumer or stream from a server or cluster that is only briefly unavailable.
 *
 * While the consumer has no leader (a cluster failover) nats-server answers neither pulls nor
 * info requests. The lookup keeps asking, at short intervals, for as long as the engine says
 * the fault lasts; the first answer after unanswered ones means a leader is back — the moment
 * to pull again, instead of waiting out more heartbeats.
 */
import type { MsgLike, NatsConnectionLike } from "./connection.js";

/** An urgent lookup's request timeout and pause between requests, ms (see `check`). */
const URGENT_TIMEOUT_MS = 1_000;
const URGENT_INTERVAL_MS = 250;
/** Urgent requests unanswered in a row after which the lookup asks with its ordinary timeout. */
const URGENT_TRIES = 5;

/** JetStream API error codes of an info request. */
const CONSUMER_NOT_FOUND = 10014;
const STREAM_NOT_FOUND = 10059;

export type LookupResult = "exists" | "consumer_not_found" | "stream_not_found";

export interface LookupConfig {
  nc: NatsConnectionLike;
  /**
   * `$JS.API.CONSUMER.INFO.<stream>.<consumer>` (with the API prefix); undefined while there is
   * no consumer to ask about (an ordered consumer being re-created): no request then.
   */
  subject(): string | undefined;
  /** How long one request waits for an answer, ms. */
  timeout: number;
  /** Pause between an unanswered request and the next, ms. */
  interval: number;
  /** Whether to keep asking after an unanswered request (the fault still lasts). */
  retry(): boolean;
  /**
   * An answer. `afterOutage`: earlier requests of this lookup went unanswered. `numPending`: the
   * consumer's messages not yet delivered, when it exists.
   */
  answered(result: LookupResult, afterOutage: boolean, numPending?: number): void;
}

export class ConsumerLookup {
  private inFlight = false;
  private unanswered = 0;
  /** Some request of this lookup was answered: lookups work on this connection. */
  private answeredOnce = false;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private cancelled = false;
  /** Asked for after a reconnect: short timeouts and intervals until the first answer. */
  private urgent = false;
  /** Which request is the current one: an urgent check supersedes one already out. */
  private seq = 0;
  /** Urgent requests unanswered in a row (see {@link URGENT_TRIES}). */
  private urgentUnanswered = 0;

  constructor(private readonly cfg: LookupConfig) {}

  /**
   * The last request went unanswered and no answer has come since, though earlier ones were
   * answered: the consumer has no leader (or the server is hung). Pulls sent now would be lost;
   * the first answer says when to pull. Never true on a connection whose lookups were never
   * answered (no permission to read consumer info, say): there it tells nothing.
   */
  get inOutage(): boolean {
    return this.unanswered > 0 && this.answeredOnce;
  }

  /**
   * Starts a lookup unless one is already under way. `urgent` (after a reconnect, when the
   * consumer may be without a leader and every pull is lost until it has one): until an answer
   * comes, each request waits at most {@link URGENT_TIMEOUT_MS} and the next follows after
   * {@link URGENT_INTERVAL_MS}, so that the first answer — a leader is back — comes within about a
   * second of the election.
   */
  check(urgent = false): void {
    if (this.cancelled) return;
    // Nothing to ask about (an ordered consumer being re-created): no urgency either, so that it
    // does not linger into a later, ordinary lookup.
    const subject = this.cfg.subject();
    if (subject === undefined) {
      this.urgent = false;
      return;
    }
    if (urgent && !this.urgent) {
      this.urgent = true;
      this.urgentUnanswered = 0;
      // A lookup already under way waits with an ordinary timeout, or pauses before its next
      // request: the urgent one must not wait for either. The request out is superseded (its
      // answer is ignored), the pause cleared.
      clearTimeout(this.timer);
      this.timer = undefined;
      this.inFlight = false;
    }
    if (this.inFlight || this.timer) return;
    const { nc } = this.cfg;
    const timeout = this.urgent ? Math.min(this.cfg.timeout, URGENT_TIMEOUT_MS) : this.cfg.timeout;
    this.inFlight = true;
    // Numbered before the request: one that throws still supersedes the one before it.
    const seq = ++this.seq;
    let p: Promise<MsgLike>;
    try {
      p = nc.request(subject, undefined, { timeout });
    } catch {
      this.inFlight = false;
      return;
    }
    p.then(
      (m) => this.settle(seq, m),
      () => this.settle(seq, undefined),
    );
  }

  /** No more requests; a pending retry timer is cleared. An answer in flight is ignored. */
  cancel(): void {
    this.cancelled = true;
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  private settle(seq: number, m: MsgLike | undefined): void {
    const answer = m ? parse(m) : undefined;
    if (seq !== this.seq) {
      // Superseded by an urgent request: what it says is old, but an answer still shows that
      // lookups work on this connection (the urgent one keeps retrying if it goes unanswered).
      if (answer !== undefined) this.answeredOnce = true;
      return;
    }
    this.inFlight = false;
    if (this.cancelled) return;
    if (answer === undefined) {
      // No answer (no leader, no responders, a slow server), or an answer we cannot read.
      this.unanswered++;
      // An API slower than the urgent timeout would never answer in time: after a few urgent
      // requests go unanswered, ask with the ordinary timeout again.
      if (this.urgent && ++this.urgentUnanswered >= URGENT_TRIES) this.urgent = false;
      // Keep asking at short intervals only where asking has worked: an account that may not
      // read consumer info would be polled for nothing (the engine then relies on PINGs, see
      // inOutage, and looks up once per missed-heartbeat report).
      if (this.answeredOnce && this.cfg.retry()) {
        const interval = this.urgent
          ? Math.min(this.cfg.interval, URGENT_INTERVAL_MS)
          : this.cfg.interval;
        this.timer = setTimeout(() => {
          this.timer = undefined;
          this.check();
        }, interval);
      } else {
        this.urgent = false;
      }
      return;
    }
    this.urgent = false;
    this.urgentUnanswered = 0;
    // (Also the first answer after unanswered ones: the iterator may have started during an
    // election; its pulls since then were lost.)
    const afterOutage = this.unanswered > 0;
    this.unanswered = 0;
    this.answeredOnce = true;
    this.cfg.answered(answer.result, afterOutage, answer.numPending);
  }
}

function parse(m: MsgLike): { result: LookupResult; numPending?: number } | undefined {
  try {
    const r = JSON.parse(new TextDecoder().decode(m.data)) as {
      error?: { err_code?: number };
      config?: unknown;
      num_pending?: unknown;
    };
    const code = r.error?.err_code;
    if (code === CONSUMER_NOT_FOUND) return { result: "consumer_not_found" };
    if (code === STREAM_NOT_FOUND) return { result: "stream_not_found" };
    if (r.error) return undefined;
    const n = r.num_pending;
    return { result: "exists", numPending: typeof n === "number" && n >= 0 ? n : undefined };
  } catch {
    return undefined;
  }
}
