/**
 * Ctrl-C, SIGTERM and SIGHUP. The first one aborts `signal`: the command stops what it is doing and
 * shuts down in order (drain the workers, report, stop the embedded server). A second one is
 * "force": the registered emergency clean-ups run (synchronously: kill the embedded server by
 * pid, remove its temp dir) and the process exits 130.
 */
import { EXIT_FORCED } from "./errors.js";

export class Interrupts {
  private readonly controller = new AbortController();
  private readonly emergency = new Set<() => void>();
  private received = 0;
  private installed = false;
  private readonly handler = (sig: NodeJS.Signals) => this.onSignal(sig);

  /**
   * @param notice what to print on the first signal (e.g. "draining the workers")
   * @param say how to print it (default: a line on stderr; a progress display passes its own)
   */
  constructor(
    private readonly notice: string,
    public say: (line: string) => void = (line) => void process.stderr.write(`${line}\n`),
  ) {}

  /** Aborted by the first SIGINT or SIGTERM. */
  get signal(): AbortSignal {
    return this.controller.signal;
  }

  /** The signal that stopped the command, if any. */
  get interrupted(): boolean {
    return this.received > 0;
  }

  install(): this {
    if (!this.installed) {
      process.on("SIGINT", this.handler);
      process.on("SIGTERM", this.handler);
      process.on("SIGHUP", this.handler);
      this.installed = true;
    }
    return this;
  }

  uninstall(): void {
    process.off("SIGINT", this.handler);
    process.off("SIGTERM", this.handler);
    process.off("SIGHUP", this.handler);
    this.installed = false;
  }

  /** Registers a synchronous clean-up for a forced exit; returns its remover. */
  onForce(fn: () => void): () => void {
    this.emergency.add(fn);
    return () => this.emergency.delete(fn);
  }

  private onSignal(sig: NodeJS.Signals): void {
    this.received++;
    if (this.received === 1) {
      this.say(`${sig}: ${this.notice} (press Ctrl-C again to force quit)`);
      this.controller.abort();
      return;
    }
    process.stderr.write(`\n${sig} again: forced exit\n`);
    for (const fn of this.emergency) {
      try {
        fn();
      } catch {
        // best effort: the process is going away
      }
    }
    process.exit(EXIT_FORCED);
  }
}

/** Resolves when `signal` aborts (at once if it already has). */
export function aborted(signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve) =>
    signal.addEventListener("abort", () => resolve(), { once: true }),
  );
}
