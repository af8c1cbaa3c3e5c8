/**
 * Cuts: telling that the server closed our connection because a pull asked for more than it
 * could write to us, and asking for less from then on.
 *
 * nats-server closes a client whose outbound queue exceeds `max_pending` (64 MiB by default; an
 * operator may set far less, but never below `max_payload`) as a slow consumer. It sends no -ERR
 * first (measured on 2.9.10: the client sees a plain disconnect, and the server logs "Slow
 * Consumer Detected: MaxPending of … Exceeded"). A pull for 1000 messages of 16 KiB is 16 MiB
 * queued at once: with `max_pending` 256 KiB every reconnect re-pulled the same and was cut again
 * within milliseconds.
 *
 * What the client can infer, all of which must hold:
 *
 * - the server was sending us more when the connection dropped: messages of the newest pull were
 *   arriving (within the last second), or none had yet but the server had more for us (the last
 *   ack subject's pending count, or before the first message the consumer info's `num_pending`,
 *   which the lookup at start and after each reconnect reads; with no word at all, the pull had
 *   just been published): the server queues a whole batch at once, so a cut can precede the
 *   first message;
 * - what was outstanding could overflow the server's queue: more than one message, and, once the
 *   size of the messages is known (the mean of those received), more bytes than the server's
 *   `max_payload` (its `max_pending` is at least that). A drop with a few small messages
 *   outstanding — a proxy or a load balancer cutting idle or light traffic — is not a cut;
 * - it came back to the same server process (the same `server_id`: not a restart, which changes
 *   it, nor a failover to another node).
 *
 * The rule: from then on at most a quarter of what was outstanding at the cut is outstanding at
 * once (at least one message), for the rest of the iterator's life; a further cut divides again.
 * Not growing back keeps a consumer from being cut over and over (each cut strands what was in
 * flight until `ack_wait`). Limits: the cap counts messages, not bytes (a `max_bytes` above
 * `max_pending` is cut a few more times before the message cap bites); in a cluster the client
 * often comes back to another node, which does not count; `max_pending` is per connection, so
 * other subscriptions' traffic counts too. A `max_bytes` well below the server's `max_pending`
 * avoids cuts altogether.
 */

/** What a cut divides the outstanding request by. */
const SHRINK = 4;

/** What is known at a disconnect. */
export interface DropFacts {
  /** Messages requested and not received. */
  outstanding: number;
  /** The server was sending us more (see above). */
  sending: boolean;
  /** Mean size of the messages received so far, bytes; 0 when none was. */
  meanSize: number;
  /** The server's `max_payload`, bytes (its `max_pending` is at least that). */
  maxPayload: number;
  /** The server we were on. */
  serverId: string | undefined;
}

export class CutDetector {
  /** Most messages outstanding at once; Infinity until a cut. */
  private capMessages = Number.POSITIVE_INFINITY;
  private suspect: { serverId: string; outstanding: number } | undefined;

  /** The most messages that may be outstanding at once, over all requests. */
  get cap(): number {
    return this.capMessages;
  }

  /** The connection dropped: remembers whether it may have been a cut. */
  disconnected(f: DropFacts): void {
    const couldOverflow =
      f.outstanding > 1 && (f.meanSize === 0 || f.outstanding * f.meanSize > f.maxPayload);
    this.suspect =
      f.serverId && f.sending && couldOverflow
        ? { serverId: f.serverId, outstanding: f.outstanding }
        : undefined;
  }

  /**
   * The connection is back on `serverId`. Returns the new cap when this was a cut (the same
   * server process), else undefined.
   */
  reconnected(serverId: string | undefined): number | undefined {
    const s = this.suspect;
    this.suspect = undefined;
    if (!s || !serverId || serverId !== s.serverId) return undefined;
    this.capMessages = Math.max(1, Math.min(this.capMessages, Math.floor(s.outstanding / SHRINK)));
    return this.capMessages;
  }
}
