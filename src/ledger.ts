/**
 * The pull ledger: how much the open pull requests of the current inbox generation may still
 * deliver, without knowing which request a data message answers.
 *
 * nats-server serves a client's open requests round robin, not in order (2.9.10's waitQueue.pop
 * moves a request that still wants more to the back of the queue), and a data message arrives
 * under the stream's subject, not the request's reply subject. So the ledger keeps totals:
 *
 * - publishing a request adds its `batch` (and `max_bytes`) to what is outstanding;
 * - a data message takes one message (and its size) off the total, whichever request it was for;
 * - a status that ends a request (408/404, 409 Message Size Exceeds MaxBytes) names it by its reply
 *   subject and says in `Nats-Pending-*` exactly what it still had: that much is released;
 * - a refusal (409 Exceeded Max…, 503) ends a request that never received anything: its
 *   whole batch is released;
 * - a request that received its whole batch ends on the server without a status. When nothing is
 *   outstanding any more, every request is complete and the ledger forgets them all.
 *
 * What the server may still send is never more than the totals, so buffered + outstanding stays
 * within `max_messages` / `max_bytes` (the engine's bound). Two cases cannot be settled exactly:
 * a status that ends a request without pending headers (409 Leadership Change, 409 Consumer
 * Deleted) while other requests are open, and a request the server removed silently (its
 * `expires` passed just as a message was ready). The first is reported as `"ambiguous"`: the
 * engine then drops the generation, which cuts every request of it, and calls {@link reset}. The
 * second leaves the request counted until recovery's expiry watch (src/recovery.ts) finds it
 * still open after its `expires` and a PING, and moves to a new generation.
 *
 * Bytes: only a request published with `max_bytes` counts bytes, and such a request is only
 * published when no other is open (the server may end it silently once its bytes are used up,
 * which the totals could not tell apart from the others). With one request open the totals are
 * that request's own remainder, so running out of either messages or bytes ends it.
 */

export interface LedgerEntry {
  /** The reply subject the request was published with. */
  readonly id: string;
  /** Its batch, messages. */
  readonly msgs: number;
  /** Its max_bytes, bytes; 0 = none. */
  readonly bytes: number;
  /** When it was published (recovery.ts `clock()`, monotonic), ms. */
  readonly at: number;
}

/** What ending a request released, for the `discard` notification. */
export interface Released {
  readonly messagesLeft: number;
  readonly bytesLeft: number;
}

export class PullLedger {
  /**
   * Open requests, oldest first: one or two while caught up; during a fast run on a backlog,
   * every request published since outstanding last reached 0 (those already complete cannot be
   * told apart: see the class doc). An array, not a Map keyed by reply subject: a Map's table
   * cost every iterator ~0.25 KB of heap for its life; a lookup (a status) is rare.
   */
  private open: LedgerEntry[] = [];
  private msgs = 0;
  private bytes = 0;

  /** Messages requested and not yet received, over every open request. */
  get outstandingMessages(): number {
    return this.msgs;
  }

  /** Bytes requested and not yet received (requests with `max_bytes` only). */
  get outstandingBytes(): number {
    return this.bytes;
  }

  /** Requests the ledger still counts as open. */
  get openRequests(): number {
    return this.open.length;
  }

  /** Whether `id` is a request the ledger counts as open. */
  has(id: string): boolean {
    return this.open.some((e) => e.id === id);
  }

  /** The request published last of those counted open, if any. */
  newest(): LedgerEntry | undefined {
    return this.open[this.open.length - 1];
  }

  /** Removes request `id` from the open ones; returns it, or undefined if it was not open. */
  private take(id: string): LedgerEntry | undefined {
    const i = this.open.findIndex((e) => e.id === id);
    return i < 0 ? undefined : this.open.splice(i, 1)[0];
  }

  /** A request was published. */
  opened(entry: LedgerEntry): void {
    // A literal when none is open: push() on an empty array reserves 17 slots.
    if (this.open.length === 0) this.open = [entry];
    else this.open.push(entry);
    this.msgs += entry.msgs;
    this.bytes += entry.bytes;
  }

  /**
   * A data message of `size` bytes arrived on the current generation. Returns false, changing
   * nothing, when no open request can account for it (the caller must not buffer it).
   */
  received(size: number): boolean {
    if (this.msgs <= 0) return false;
    this.msgs--;
    let bytesUsedUp = false;
    if (this.bytes > 0) {
      this.bytes = Math.max(0, this.bytes - size);
      bytesUsedUp = this.bytes === 0;
    }
    // With one request the totals are its own: either limit used up ends it. With several,
    // only nothing outstanding at all proves that every one of them is complete.
    if (this.msgs === 0 || (bytesUsedUp && this.open.length === 1)) this.reset();
    return true;
  }

  /**
   * A status ended request `id`, with what it still had when the server knows it (`Nats-Pending-*`
   * headers; `undefined` when the status carries none). Returns what was released,
   * `"unknown"` for a request the ledger does not count as open (it completed, or it was never
   * ours), and `"ambiguous"` when the status carried no pending counts and other requests are
   * still open: the caller must cut the generation and {@link reset}.
   */
  ended(
    id: string,
    pendingMsgs: number | undefined,
    pendingBytes: number | undefined,
  ): Released | "unknown" | "ambiguous" {
    const entry = this.take(id);
    if (!entry) return "unknown";
    const messagesLeft = Math.min(pendingMsgs ?? entry.msgs, entry.msgs);
    const bytesLeft = entry.bytes > 0 ? Math.min(pendingBytes ?? entry.bytes, entry.bytes) : 0;
    if (this.open.length === 0) {
      // Nothing else is open: nothing more can come, whatever this one had left.
      this.msgs = 0;
      this.bytes = 0;
      return { messagesLeft, bytesLeft };
    }
    if (pendingMsgs === undefined) return "ambiguous";
    this.msgs = Math.max(0, this.msgs - messagesLeft);
    this.bytes = Math.max(0, this.bytes - bytesLeft);
    if (this.msgs === 0) this.reset();
    return { messagesLeft, bytesLeft };
  }

  /**
   * The server refused request `id` before serving it (409 Exceeded Max…, 503, or the
   * publish failed): its whole batch is released. Returns false for a request not counted as open.
   */
  refused(id: string): boolean {
    const entry = this.take(id);
    if (!entry) return false;
    this.msgs = Math.max(0, this.msgs - entry.msgs);
    this.bytes = Math.max(0, this.bytes - entry.bytes);
    // Nothing outstanding: the requests still listed completed on the server without a word.
    if (this.msgs === 0) this.reset();
    return true;
  }

  /** Forgets every request: the generation they replied to is gone. */
  reset(): void {
    if (this.open.length > 0) this.open = [];
    this.msgs = 0;
    this.bytes = 0;
  }
}

/** What the pull policy needs to know of the options (milliseconds and counts as resolved). */
export interface PullLimits {
  readonly max_messages: number;
  readonly max_bytes: number;
  readonly threshold_messages: number;
  readonly threshold_bytes: number;
}

/**
 * The pull policy, a pure function of the bound, what is buffered, the ledger and the server's
 * backlog: the batch (and max_bytes, 0 for none) of the request to publish now, or undefined.
 *
 * - What is held counts buffered plus outstanding: a request goes out only when that has fallen
 *   to the threshold, for the room left, so the bound never moves.
 * - Another request while one is open only helps when the server has more than is already
 *   outstanding (`backlog`, the last ack subject's pending count); a caught-up consumer keeps one
 *   request waiting for new messages.
 * - With max_bytes, one at a time: the server ends such a request without a word once its bytes
 *   are used up, which the ledger can only tell when it is the only one.
 * - `needRoom`: after 409 Message Size Exceeds MaxBytes, the next message needs more than the room
 *   that request had; no request for less goes out (bytes; 0 = nothing known).
 * - `cap`: after the server cut the connection for what a pull had outstanding (cuts.ts), at most
 *   this many messages are outstanding at once, over all requests.
 */
export function nextPull(
  o: PullLimits,
  held: { readonly size: number; readonly bytes: number },
  ledger: PullLedger,
  backlog: number,
  needRoom = 0,
  cap = Number.POSITIVE_INFINITY,
): { batch: number; maxBytes: number } | undefined {
  const outMsgs = ledger.outstandingMessages;
  const outBytes = ledger.outstandingBytes;
  if (held.size + outMsgs > o.threshold_messages) return undefined;
  if (o.max_bytes > 0 && held.bytes + outBytes > o.threshold_bytes) return undefined;
  if (ledger.openRequests > 0 && (o.max_bytes > 0 || backlog <= outMsgs)) return undefined;
  const batch = Math.min(o.max_messages - held.size - outMsgs, cap - outMsgs);
  const maxBytes = o.max_bytes > 0 ? o.max_bytes - held.bytes - outBytes : 0;
  if (batch <= 0 || (o.max_bytes > 0 && maxBytes <= 0)) return undefined;
  // The next message is known not to fit less room than `needRoom`: a request for less would
  // only bring back 409 Message Size Exceeds MaxBytes at once.
  // (With nothing buffered the whole of max_bytes is asked for: a message larger than that is
  // the caller's backoff, never a reason to stop pulling.)
  if (o.max_bytes > 0 && held.bytes > 0 && maxBytes < needRoom) return undefined;
  return { batch, maxBytes };
}

/**
 * The pull policy of a fetch (one batch of `max_messages` / `max_bytes` in all): one request at a
 * time, for what the batch still lacks. A fault that forgot the open request (a new inbox
 * generation) asks for the rest; `"complete"` once the batch has all it asked for.
 */
export function fetchPull(
  o: Pick<PullLimits, "max_messages" | "max_bytes">,
  fetched: { readonly msgs: number; readonly bytes: number },
  ledger: PullLedger,
  cap = Number.POSITIVE_INFINITY,
): { batch: number; maxBytes: number } | "complete" | undefined {
  if (ledger.openRequests > 0) return undefined;
  const batch = o.max_messages - fetched.msgs;
  const maxBytes = o.max_bytes > 0 ? o.max_bytes - fetched.bytes : 0;
  if (batch <= 0 || (o.max_bytes > 0 && maxBytes <= 0)) return "complete";
  // After a cut (cuts.ts) the rest is asked for in smaller requests, one at a time.
  return { batch: Math.min(batch, cap), maxBytes };
}
