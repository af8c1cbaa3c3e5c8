/**
 * How the CLI ends: exit 0 on success, 1 on a failure (no server, a server that cannot be
 * reached, a lost message), 2 on bad arguments. Every error is printed as one line, never as a
 * stack trace (set JETSTREAM_ITER_DEBUG=1 to see stacks).
 */

export const EXIT_OK = 0;
export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;
/** A second Ctrl-C: the usual 128 + SIGINT. */
export const EXIT_FORCED = 130;

/** An error meant for the user: its message is printed as is, and the CLI exits with `exitCode`. */
export class CliError extends Error {
  override readonly name = "CliError";
  constructor(
    message: string,
    readonly exitCode: number = EXIT_FAILURE,
  ) {
    super(message);
  }
}

/** Bad arguments: exit 2. */
export class UsageError extends CliError {
  constructor(message: string) {
    super(message, EXIT_USAGE);
  }
}

/** The message of anything thrown, on one line. */
export function oneLine(err: unknown): string {
  const text = err instanceof Error ? err.message || err.name : String(err);
  return text.replace(/\s*\n\s*/g, " ").trim();
}

export const debugEnabled = (): boolean =>
  process.env.JETSTREAM_ITER_DEBUG !== undefined && process.env.JETSTREAM_ITER_DEBUG !== "0";

/** Writes `jetstream-iter: error: <message>` (plus the stack when debugging) to stderr. */
export function reportError(err: unknown): void {
  process.stderr.write(`jetstream-iter: error: ${oneLine(err)}\n`);
  if (debugEnabled() && err instanceof Error && err.stack) {
    process.stderr.write(`${err.stack}\n`);
  }
}

/** The exit code for anything thrown. */
export function exitCodeOf(err: unknown): number {
  return err instanceof CliError ? err.exitCode : EXIT_FAILURE;
}
