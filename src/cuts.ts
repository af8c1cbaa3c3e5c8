/**
 * Cuts: telling that the server closed our connection because a pull asked for more than it
 * could write to us, and asking for less from then on.
 *
 * nats-server closes a client whose outbound queue exceeds `max_pending` (64 MiB by default; an
 * operator may set far less) as a slow consumer. It sends no -ERR first (measured on 2.9.10: the
 * client sees a plain disconnect, and the server logs "Slow Consumer Detected: MaxPending of …
 * Exceeded"). A pull for 1000 messages of 16 KiB is 16 MiB queued at once: with `max_pending`
 * 256 KiB every reconnect re-pulled the same and was cut again within milliseconds.
 *
 * What the client can infer: the connection dropped while more than one message was outstanding
 * and the server was sending us more (messages of the newest pull were arriving, within the last
 * second; or none had yet, but the last ack subject said more were pending or the pull had just
 * been published — the server queues a whole batch at once, so a cut can precede its first
 * message), and it came back to the same server process (the same `server_id`: not
 * a restart, not a failover to another node). Then the server cut us, and what was outstanding was
 * too much. (A cut can come before the first message of a pull arrives: the server queues the
 * whole batch at once. A consumer waiting idle with nothing pending is never taken for cut.) The rule: from then on a pull asks for at
 * most a quarter of what was outstanding at the cut (at least one message), for the rest of the
 * iterator's life; a further cut divides again. Never growing back keeps a consumer from being
 * cut over and over (each cut strands what was in flight until `ack_wait`); `max_bytes` below the
 * server's `max_pending` avoids cuts altogether. A TCP connection cut by something else while
 * messages flow looks the same and also lowers the cap: correct, only slower.
 */

/** What a cut divides the outstanding request by. */
const SHRINK = 4;

export class CutDetector {
  /** Most messages one pull may ask for; Infinity until a cut. */
  private capMessages = Number.POSITIVE_INFINITY;
  private suspect: { serverId: string; outstanding: number } | undefined;

  /** The most a pull may ask for now (messages). */
  get cap(): number {
    return this.capMessages;
  }

  /**
   * The connection dropped. `outstanding`: messages requested and not received; `sending`: the
   * server was sending us more (see above); `serverId` of the server we were on.
   */
  disconnected(outstanding: number, sending: boolean, serverId: string | undefined): void {
    this.suspect = serverId && outstanding > 1 && sending ? { serverId, outstanding } : undefined;
  }

  /**
   * The connection is back on `serverId`. Returns the new cap when this was a cut (same server
   * process), else undefined.
   */
  reconnected(serverId: string | undefined): number | undefined {
    const s = this.suspect;
    this.suspect = undefined;
    if (!s || !serverId || serverId !== s.serverId) return undefined;
    this.capMessages = Math.max(1, Math.min(this.capMessages, Math.floor(s.outstanding / SHRINK)));
    return this.capMessages;
  }
}
