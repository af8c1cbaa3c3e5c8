/**
 * Ordered consumers: the stream, every message once and in order, through a chain of ephemeral
 * pull consumers (ack none, memory storage, one replica) that the library re-creates from the
 * next stream sequence whenever the chain may have broken.
 *
 * The cursor keeps two numbers: the delivery sequence of the last message taken from the current
 * consumer, and the stream sequence of the last message buffered. A data message whose delivery
 * sequence is not the next one (a gap: something was delivered that we did not buffer), and any
 * fault that moves the engine to a new inbox generation (reconnect, missed heartbeats, 409
 * Consumer Deleted, a consumer lookup answered "not found", a message no request accounts for),
 * re-creates the consumer from the buffered stream sequence + 1. The buffer is kept across a
 * re-creation, so the loop sees no gap and no duplicate, and the bound holds as for a durable.
 *
 * One re-creation at a time; while it is out, no pull goes out. The old consumer is deleted
 * best-effort (fire and forget): a deletion that fails leaves it to its inactive threshold.
 *
 * State shared by the iterators of one nats.js consumer object ({@link OrderedState}) lets a
 * later `consume()` / `fetch` / `next` continue after the last message handed to the application
 * (or, before the first one, where the chain started), on the same server consumer when nothing
 * it delivered was discarded.
 */

import { Backoff } from "./backoff.js";
import type { MsgLike, NatsConnectionLike } from "./connection.js";
import { OrderedConsumerError, StreamNotFoundError } from "./errors.js";
import type { Notification } from "./notifications.js";

/** What every iterator made from one nats.js ordered consumer object shares. */
export interface OrderedState {
  /** The suffix of the newest consumer name created (`<prefix>_<serial>`). */
  serial: number;
  /**
   * Stream sequence after which the next iterator starts: the last message handed to the
   * application, or before the first one where the chain's first consumer started (its delivered
   * stream sequence). Undefined while not known (a last_per_subject start, nothing handed yet):
   * the next consumer then starts at the user's policy.
   */
  position: number | undefined;
  /** A server consumer the next iterator may continue on, as the last one left it. */
  resume: Resume | undefined;
  /** An iterator is running: a second one at once is refused, as nats.js does. */
  busy: boolean;
}

interface Resume {
  name: string;
  /** Delivery sequence of the last message taken from it. */
  deliverSeq: number;
  /** Stream sequence of the last message taken from it (or where it starts, minus one). */
  streamSeq: number;
  /** Whether `streamSeq` is known (false: a last_per_subject start that delivered nothing yet). */
  known: boolean;
}

/** An ordered consumer as read from the nats.js object (consume.ts). */
export interface OrderedSpec {
  stream: string;
  /** Consumer names are `<namePrefix>_<serial>`. */
  namePrefix: string;
  /**
   * Server config every consumer of the chain shares: ack none, memory storage, one replica,
   * max_deliver 1, inactive_threshold, and the user's filter, headers_only, replay_policy.
   */
  base: Record<string, unknown>;
  /** The user's start (deliver_policy and its opt_start_*), used while nothing was delivered. */
  start: Record<string, unknown>;
  state: OrderedState;
}

export interface CursorConfig {
  nc: NatsConnectionLike;
  /** JetStream API prefix. */
  prefix: string;
  /** Timeout of the create/delete requests, ms. */
  apiTimeout: number;
  spec: OrderedSpec;
  /** A missing stream ends the iterator (else: notified, and retried). */
  abortOnMissingStream: boolean;
  /**
   * Consecutive failed creations (no answer, or a 5xx) after which the iterator ends; 0 = never
   * (consume: it waits for the server). A refused config (a 4xx answer) ends it at once.
   */
  giveUpAfter: number;
}

export interface CursorHost {
  /** A consumer is ready: pull. */
  ready(): void;
  notify(n: Notification): void;
  /** The iterator must end with `error` (the stream is gone and `abort_on_missing_resource`). */
  end(error: Error): void;
}

/** nats-server's error code for "stream not found". */
const STREAM_NOT_FOUND = 10059;
const RETRY_CAP_MS = 2_000;
const enc = new TextEncoder();
const dec = new TextDecoder();

/** One iterator's position in the stream, and the consumer it pulls from. */
export class OrderedCursor {
  /** The consumer pulls go to; undefined while one is being created. */
  private current: string | undefined;
  private dseq = 0;
  private sseq = 0;
  private known = false;
  private creating = false;
  /** Re-creation after a failed create: 50 ms doubling, capped at RETRY_CAP_MS (backoff.ts). */
  private readonly retry = new Backoff();
  private fails = 0;
  private stopped = false;
  private finished = false;

  constructor(
    private readonly cfg: CursorConfig,
    private readonly host: CursorHost,
  ) {
    const { state } = cfg.spec;
    state.busy = true;
    const r = state.resume;
    state.resume = undefined;
    // Continue on the consumer the last iterator left when everything it delivered was handed out.
    if (r?.known && r.streamSeq === state.position) {
      this.current = r.name;
      this.dseq = r.deliverSeq;
      this.sseq = r.streamSeq;
      this.known = true;
      return;
    }
    if (r) this.retire(r.name);
    if (state.position !== undefined) {
      this.sseq = state.position;
      this.known = true;
    }
  }

  /** The consumer to pull from, or undefined while one is being created. */
  get name(): string | undefined {
    return this.current;
  }

  /** The stream sequence of the last message buffered (0 = none yet). */
  get streamSequence(): number {
    return this.sseq;
  }

  /** Creates the first consumer unless the iterator continues on one. */
  start(): void {
    if (this.current === undefined) this.recreate();
  }

  /**
   * A data message from the current consumer: true (and the cursor advances) when it is the next
   * delivery; false for a gap (the caller drops it and re-creates).
   */
  accept(deliverSeq: number, streamSeq: number): boolean {
    if (this.finished) {
      // Released (its fence was done, so this is rare): the consumer it left for the next
      // iterator has moved on without it: nobody may continue on it.
      this.forgetResume();
      return false;
    }
    if (this.current === undefined || deliverSeq !== this.dseq + 1) return false;
    this.dseq = deliverSeq;
    this.sseq = streamSeq;
    this.known = true;
    return true;
  }

  /**
   * The chain may have broken: the current consumer is let go (deleted best-effort) and a new one
   * is created from the next stream sequence. A creation already under way stands (its consumer
   * starts where this one would). Idempotent until the new consumer is ready.
   */
  recreate(): void {
    if (this.stopped) return;
    if (this.current !== undefined) {
      this.host.notify({ type: "reset", name: this.current });
      this.retire(this.current);
      this.current = undefined;
    }
    if (this.creating || this.retry.pending) return;
    this.create();
  }

  /** No more creations (the iterator stopped pulling); a retry is cleared. Idempotent. */
  halt(): void {
    this.stopped = true;
    this.retry.cancel();
  }

  /**
   * The iterator is done. When nothing taken from the current consumer was discarded (every
   * message buffered was handed out), the next iterator of the same nats.js consumer may continue
   * on it; otherwise it is deleted, and the next one starts after the last message handed out.
   * Idempotent.
   */
  finish(): void {
    this.halt();
    if (this.finished) return;
    this.finished = true;
    const { state } = this.cfg.spec;
    state.busy = false;
    const name = this.current;
    if (name === undefined) return;
    if (this.known && this.sseq === state.position) {
      state.resume = { name, deliverSeq: this.dseq, streamSeq: this.sseq, known: true };
    } else {
      this.retire(name);
    }
  }

  /** The consumer this iterator left for the next one can no longer be continued on: delete it. */
  private forgetResume(): void {
    const { state } = this.cfg.spec;
    if (this.current !== undefined && state.resume?.name === this.current) {
      state.resume = undefined;
      this.retire(this.current);
    }
  }

  private startFields(): Record<string, unknown> {
    if (this.known) return { deliver_policy: "by_start_sequence", opt_start_seq: this.sseq + 1 };
    return this.cfg.spec.start;
  }

  private create(): void {
    const { nc, prefix, apiTimeout, spec } = this.cfg;
    const name = `${spec.namePrefix}_${++spec.state.serial}`;
    const config = { ...spec.base, ...this.startFields(), name };
    const body = enc.encode(JSON.stringify({ stream_name: spec.stream, config }));
    this.creating = true;
    let p: Promise<MsgLike>;
    try {
      p = nc.request(`${prefix}.CONSUMER.CREATE.${spec.stream}.${name}`, body, {
        timeout: apiTimeout,
      });
    } catch (err) {
      this.failed(name, undefined, err);
      return;
    }
    p.then(
      (m) => {
        const r = parse(m);
        if (r?.config && !r.error) this.created(name, r);
        else this.failed(name, r?.error, undefined);
      },
      (err) => this.failed(name, undefined, err),
    );
  }

  private created(name: string, info: CreateResponse): void {
    this.creating = false;
    if (this.stopped) {
      this.retire(name);
      return;
    }
    this.fails = 0;
    this.retry.reset();
    this.current = name;
    this.dseq = 0;
    // Nothing delivered yet: where the user's start put the consumer (new, last, a start time)
    // is its delivered stream sequence; pin it, so that a re-creation starts there and not at
    // the user's policy again (which for "new" would skip what was published meanwhile).
    // last_per_subject is not a contiguous range: it keeps the user's start until a delivery.
    if (!this.known && this.cfg.spec.start.deliver_policy !== "last_per_subject") {
      const s = info.delivered?.stream_seq;
      if (typeof s === "number" && s >= 0) {
        this.sseq = s;
        this.known = true;
        // Nothing was handed out yet (else the position would be known): a later iterator
        // starts here too.
        this.cfg.spec.state.position = s;
      }
    }
    this.host.notify({ type: "ordered_consumer_recreated", name });
    this.host.ready();
  }

  private failed(name: string, error: ApiError | undefined, err: unknown): void {
    this.creating = false;
    if (this.stopped) return;
    this.fails++;
    const { stream } = this.cfg.spec;
    if (error?.err_code === STREAM_NOT_FOUND) {
      this.host.notify({ type: "stream_not_found", name: stream, consumerCreateFails: this.fails });
      if (this.cfg.abortOnMissingStream) {
        this.host.end(new StreamNotFoundError(stream));
        return;
      }
    } else if (
      (error && (error.code ?? 0) < 500) ||
      (this.cfg.giveUpAfter > 0 && this.fails >= this.cfg.giveUpAfter)
    ) {
      // The server refused the config (a filter that matches no subject, too many consumers, …):
      // no retry can fix that. A fetch also gives up after a few unanswered tries: nothing else
      // would end it while no request is open.
      const code = error?.code ?? 0;
      const why = error?.description ?? String(err);
      this.host.end(new OrderedConsumerError(stream, name, code, why));
      return;
    } else {
      const why = error ? `${error.code ?? ""} ${error.description ?? ""}`.trim() : String(err);
      this.host.notify({
        type: "debug",
        code: error?.code ?? 0,
        description: `ordered consumer ${name} not created (${why}): retrying`,
      });
    }
    this.retry.schedule(RETRY_CAP_MS, () => {
      if (!this.stopped && this.current === undefined && !this.creating) this.create();
    });
  }

  /** Deletes consumer `name`, best-effort: never awaited, never retried. */
  private retire(name: string): void {
    const { nc, prefix, apiTimeout, spec } = this.cfg;
    try {
      nc.request(`${prefix}.CONSUMER.DELETE.${spec.stream}.${name}`, undefined, {
        timeout: apiTimeout,
      }).then(
        () => {},
        () => {},
      );
    } catch {
      // A closed connection: the consumer goes at its inactive threshold.
    }
  }
}

interface ApiError {
  code?: number;
  err_code?: number;
  description?: string;
}

interface CreateResponse {
  config?: unknown;
  delivered?: { stream_seq?: number };
  error?: ApiError;
}

function parse(m: MsgLike): CreateResponse | undefined {
  try {
    return JSON.parse(dec.decode(m.data)) as CreateResponse;
  } catch {
    return undefined;
  }
}
