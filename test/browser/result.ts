/** What the browser test's page (page.ts) reports on `window.__result`. */
export interface PageResult {
  /** Distinct stream sequences handed out by the iterator. */
  received: number;
  /** Messages of the stream never handed out: `count - received`. */
  lost: number;
  /** Messages handed out twice. */
  duplicates: number;
  /** How `closed()` resolved after the drain: "undefined" or an error's message. */
  drainVerdict: string;
  /** The iterator's counters once done. */
  counters: Record<string, number>;
  /** WebSocket frames the page sent that carried at least one ack. */
  ackFrames: number;
  /**
   * A timer queued just before the first ack: when it ran, that ack had been written to the
   * WebSocket (acks leave before the next task). Undefined if the timer never ran.
   */
  firstAckBeforeTimer: boolean | undefined;
  /**
   * A second iterator, open and waiting, when the page closes the connection: how its
   * `closed()` resolved ("undefined", an error's message, or "timeout" after 5 s).
   */
  closedWithConnection: string;
  /** Uncaught errors and unhandled rejections the page saw. */
  errors: string[];
  /** Set when the run itself threw. */
  failure?: string;
}
