/**
 * stdout for a command whose lines are promises to the user: `consume --ack` acks a message only
 * once its line is written, and must hear when the reader has gone (`… | head -n 3`: EPIPE) so it
 * can end the way Ctrl-C does, instead of the process exiting with fetched messages un-acked.
 *
 * A failed write can surface three ways: a synchronous throw from `write()` (a file, written
 * with fs.writeSync), the write's callback (a pipe), or an 'error' event on the stream. All three
 * end here, once.
 */

/** How many outputs own stdout's errors now; main's last-resort handler stays out meanwhile. */
let owners = 0;

/** True while a command handles stdout's 'error' events itself. */
export function stdoutOwned(): boolean {
  return owners > 0;
}

/** True for the error of a write to a pipe whose reader has gone. */
export function isBrokenPipe(err: unknown): boolean {
  return (err as NodeJS.ErrnoException | undefined)?.code === "EPIPE";
}

export class LineOutput {
  private failed: Error | undefined;
  private inFlight = 0;
  private readonly whenIdle: (() => void)[] = [];
  private readonly onFailure = new Set<(err: Error) => void>();
  private readonly onError = (err: Error) => this.fail(err);
  private disposed = false;

  constructor(private readonly out: NodeJS.WriteStream = process.stdout) {
    out.on("error", this.onError);
    owners++;
  }

  /** Why no line can be written any more (EPIPE: the reader has gone), once that is known. */
  get failure(): Error | undefined {
    return this.failed;
  }

  /** No line written from now on will reach the reader. */
  get closed(): boolean {
    // `writable` turns false as soon as a write fails, before its callback runs.
    return this.failed !== undefined || !this.out.writable;
  }

  /** Calls `fn` once, when writing fails for good (at once if it already has). */
  onClosed(fn: (err: Error) => void): void {
    if (this.failed) fn(this.failed);
    else this.onFailure.add(fn);
  }

  /**
   * Writes `line` and a newline. `done(true)` once it has been written, `done(false)` if it
   * never will be. `done` is never called synchronously; `writeLine` never throws.
   */
  writeLine(line: string, done: (written: boolean) => void): void {
    this.inFlight++;
    let settled = false;
    const settle = (written: boolean, err?: Error | null) => {
      if (settled) return;
      settled = true;
      if (err) this.fail(err);
      done(written);
      if (--this.inFlight === 0) for (const fn of this.whenIdle.splice(0)) fn();
    };
    if (this.closed) {
      process.nextTick(settle, false);
      return;
    }
    try {
      this.out.write(`${line}\n`, (err) => settle(!err, err));
    } catch (err) {
      process.nextTick(settle, false, err instanceof Error ? err : new Error(String(err)));
    }
  }

  /** Resolves once every line written so far has been settled (its `done` called). */
  settled(): Promise<void> {
    if (this.inFlight === 0) return Promise.resolve();
    return new Promise((resolve) => this.whenIdle.push(resolve));
  }

  /** Gives stdout's errors back to main's handler. */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.out.off("error", this.onError);
    owners--;
  }

  private fail(err: Error): void {
    if (this.failed) return;
    this.failed = err;
    for (const fn of this.onFailure) fn(err);
    this.onFailure.clear();
  }
}
