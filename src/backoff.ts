/**
 * A retry timer with exponential backoff: 50 ms doubling up to a cap, with jitter (75–100 % of
 * the delay, so that many iterators do not retry in step). At most one retry is pending.
 */

const BASE_MS = 50;

export class Backoff {
  private timer: ReturnType<typeof setTimeout> | undefined;
  private attempt = 0;

  /** A retry is scheduled and has not run yet. */
  get pending(): boolean {
    return this.timer !== undefined;
  }

  /** Runs `fn` after the next delay (capped at `capMs`) unless a retry is already pending. */
  schedule(capMs: number, fn: () => void): void {
    if (this.timer) return;
    const delay = Math.min(capMs, BASE_MS * 2 ** Math.min(this.attempt, 16));
    this.attempt++;
    this.timer = setTimeout(
      () => {
        this.timer = undefined;
        fn();
      },
      Math.round(delay * (0.75 + Math.random() * 0.25)),
    );
  }

  /** It worked: the next delay starts from the base again. */
  reset(): void {
    this.attempt = 0;
  }

  /** Clears a pending retry. Idempotent. */
  cancel(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }
}
