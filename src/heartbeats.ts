/**
 * The heartbeat monitor: counts idle-heartbeat intervals in which the server showed no life on
 * the open pull requests, as nats.js does. Once two are missed it reports the count, and again
 * at every interval while the silence lasts (2, 3, 4, …); any life resets the count. It watches
 * only while the engine says so (a request is open and the connection is up); a watch that
 * starts counts the silence from that moment. What to do about a silence is the engine's call.
 */
export class HeartbeatMonitor {
  private timer: ReturnType<typeof setTimeout> | undefined;
  private lastLife = 0;
  private missed = 0;
  private lives = 0;

  constructor(
    /** `idle_heartbeat`, ms. */
    private readonly interval: number,
    private readonly onMissed: (count: number) => void,
  ) {}

  /**
   * How many times the server showed life so far: a token to compare, to tell whether it
   * showed any between two moments.
   */
  get lifeCount(): number {
    return this.lives;
  }

  /** How long the server has shown no life (since the last, or since the watch began), ms. */
  get silentFor(): number {
    return Date.now() - this.lastLife;
  }

  /** Intervals missed in the current silence (0 while the server shows life). */
  get missedCount(): number {
    return this.missed;
  }

  /** Something arrived from the server on the current generation. */
  alive(): void {
    this.lives++;
    this.lastLife = Date.now();
    this.missed = 0;
  }

  /** Watches while `on`; stops (clearing its timer) when not. Idempotent. */
  watch(on: boolean): void {
    if (!on) {
      clearTimeout(this.timer);
      this.timer = undefined;
      return;
    }
    if (this.timer) return;
    this.lastLife = Date.now();
    this.missed = 0;
    this.timer = setTimeout(tick, this.interval, this);
  }

  /** @internal One interval passed (see {@link tick}). */
  tick(): void {
    this.timer = setTimeout(tick, this.interval, this);
    if (Date.now() - this.lastLife >= this.interval) this.missed++;
    if (this.missed >= 2) this.onMissed(this.missed);
  }
}

/** The timer's callback, shared: a closure per monitor cost each iterator ~0.1 KB of heap. */
function tick(m: HeartbeatMonitor): void {
  m.tick();
}
