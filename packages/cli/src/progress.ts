/**
 * Progress on stderr: a live bar (cli-progress) when stderr is a terminal, otherwise (CI, a
 * pipe, a file) a plain line every few seconds. A phase samples its own counters on a timer,
 * so the hot path (publishing, acking) only increments numbers.
 */
import cliProgress from "cli-progress";

export interface Sample {
  /** Progress towards the total. */
  value: number;
  /** The rest of the line: rates, counts (short: a bar leaves little room). */
  detail: string;
}

export interface ProgressOptions {
  /** Where to write. Default process.stderr. */
  stream?: NodeJS.WriteStream;
  /** Draw bars; default: whether the stream is a TTY (and `CI` is not set). */
  tty?: boolean;
  /** Milliseconds between plain lines when not a TTY. Default 1 000. */
  plainIntervalMs?: number;
}

export interface Phase {
  /** Takes a last sample, prints it, and ends the phase. Idempotent. */
  stop(): void;
}

const TTY_INTERVAL_MS = 200;

export class Progress {
  private readonly stream: NodeJS.WriteStream;
  readonly tty: boolean;
  private readonly plainIntervalMs: number;
  private bars: cliProgress.MultiBar | undefined;

  constructor(opts: ProgressOptions = {}) {
    this.stream = opts.stream ?? process.stderr;
    // CI runners that fake a terminal still get plain lines.
    this.tty = opts.tty ?? (this.stream.isTTY === true && !process.env.CI);
    this.plainIntervalMs = opts.plainIntervalMs ?? 1_000;
  }

  /** A line of text (above the bar, when one is drawn). */
  log(line: string): void {
    if (this.bars) this.bars.log(`${line}\n`);
    else this.stream.write(`${line}\n`);
  }

  /**
   * Starts a phase named `label` towards `total`, showing `sample(wide)` until stopped; `wide`
   * is false when the text goes next to a bar.
   */
  phase(label: string, total: number, sample: (wide: boolean) => Sample): Phase {
    return this.tty ? this.barPhase(label, total, sample) : this.plainPhase(label, total, sample);
  }

  private barPhase(label: string, total: number, sampleWide: (wide: boolean) => Sample): Phase {
    const sample = () => sampleWide(false);
    this.stopBars();
    const bars = new cliProgress.MultiBar(
      {
        stream: this.stream,
        format: `${label.padEnd(8)} [{bar}] {percentage}% | {detail}`,
        hideCursor: true,
        clearOnComplete: false,
        barsize: 16,
        fps: 10,
        gracefulExit: false,
        autopadding: true,
      },
      cliProgress.Presets.shades_classic,
    );
    this.bars = bars;
    const first = sample();
    const bar = bars.create(total, first.value, { detail: first.detail });
    const timer = setInterval(() => {
      const s = sample();
      bar.update(s.value, { detail: s.detail });
    }, TTY_INTERVAL_MS);
    let stopped = false;
    return {
      stop: () => {
        if (stopped) return;
        stopped = true;
        clearInterval(timer);
        const s = sample();
        bar.update(s.value, { detail: s.detail });
        this.stopBars();
      },
    };
  }

  private plainPhase(label: string, total: number, sampleWide: (wide: boolean) => Sample): Phase {
    const sample = () => sampleWide(true);
    const line = () => {
      const s = sample();
      const pct = total > 0 ? Math.floor((100 * s.value) / total) : 100;
      this.stream.write(`${label}: ${pct}% | ${s.detail}\n`);
    };
    const timer = setInterval(line, this.plainIntervalMs);
    let stopped = false;
    return {
      stop: () => {
        if (stopped) return;
        stopped = true;
        clearInterval(timer);
        line();
      },
    };
  }

  private stopBars(): void {
    const bars = this.bars;
    this.bars = undefined;
    bars?.stop();
  }

  /** Ends any bar (restoring the cursor). Safe to call at any time, also on a forced exit. */
  stop(): void {
    this.stopBars();
  }
}

/** A rate over the interval between two calls (per second). */
export class RateMeter {
  private lastT = performance.now();
  private lastN = 0;
  private last = 0;

  /** The rate since the previous call, given the running total `n`. */
  sample(n: number): number {
    const t = performance.now();
    const dt = t - this.lastT;
    if (dt >= 100) {
      this.last = ((n - this.lastN) * 1000) / dt;
      this.lastT = t;
      this.lastN = n;
    }
    return this.last;
  }
}
