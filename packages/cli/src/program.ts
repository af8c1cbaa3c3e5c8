/**
 * The command line: `jetstream-iter demo | consume`, parsed by commander. Exit codes:
 * 0 success (and `--help`, `--version`), 1 a failure (no nats-server, a server that cannot be
 * reached, a lost message), 2 bad arguments — always with a one-line message, never a stack
 * trace.
 */
import { Command, CommanderError, InvalidArgumentError, Option } from "commander";
import { runConsume } from "./consume.js";
import { DEMO_DEFAULTS, runDemo } from "./demo.js";
import { EXIT_FAILURE, EXIT_OK, EXIT_USAGE, exitCodeOf, reportError } from "./errors.js";
import { parseServers } from "./nats.js";
import { isBrokenPipe, stdoutOwned } from "./stdout.js";
import { packageVersion } from "./version.js";

/** An integer option in [min, max]; `_` and `,` may group digits (100_000, 100,000). */
function integer(min: number, max: number): (value: string) => number {
  return (value) => {
    const digits = value.replace(/[_,]/g, "");
    const n = /^\d+$/.test(digits) ? Number(digits) : Number.NaN;
    if (!Number.isSafeInteger(n) || n < min || n > max) {
      throw new InvalidArgumentError(`expected an integer from ${min} to ${max}`);
    }
    return n;
  };
}

function servers(value: string): string[] {
  try {
    return parseServers(value);
  } catch (err) {
    throw new InvalidArgumentError((err as Error).message.replace(/^--server: /, ""));
  }
}

function name(value: string): string {
  if (!/^[^\s.*>/\\]+$/.test(value)) {
    throw new InvalidArgumentError("expected a name without spaces, dots, slashes or wildcards");
  }
  return value;
}

const DEFAULT_SERVER = process.env.NATS_URL || "nats://127.0.0.1:4222";

interface DemoFlags {
  messages: number;
  workers: number;
  payload: number;
  chaos?: boolean;
  server?: string[];
  stream: string;
  ackWait: number;
  maxMessages: number;
  work: number;
  json?: boolean;
}

interface ConsumeFlags {
  server: string[];
  stream: string;
  consumer: string;
  ack?: boolean;
  max?: number;
}

export function buildProgram(setExit: (code: number) => void): Command {
  const program = new Command("jetstream-iter")
    .description(
      "A NATS JetStream pull-consumer iterator whose shutdown always ends, loses nothing and never hangs.",
    )
    .version(packageVersion(), "-V, --version", "print the version")
    .helpOption("-h, --help", "show help")
    .exitOverride()
    .configureOutput({
      outputError: (text, write) => write(`jetstream-iter: ${text.trim().split("\n")[0]}\n`),
    })
    .showSuggestionAfterError(true)
    .addHelpText(
      "after",
      `
Examples:
  jetstream-iter demo                                   # embedded nats-server, 100,000 messages, 4 workers
  jetstream-iter demo --chaos                           # … and restart the server half-way through
  jetstream-iter demo --server nats://127.0.0.1:4222    # use a running server
  jetstream-iter consume --stream ORDERS --consumer worker --ack

Exit codes: 0 ok, 1 failure (no server, unreachable server, a lost message), 2 bad arguments.`,
    );

  program
    .command("demo")
    .description(
      "publish N messages, consume them with K draining workers, and report that nothing was lost",
    )
    .option(
      "-n, --messages <n>",
      "messages to publish",
      integer(1, 10_000_000),
      DEMO_DEFAULTS.messages,
    )
    .option(
      "-w, --workers <k>",
      "concurrent for-await workers",
      integer(1, 64),
      DEMO_DEFAULTS.workers,
    )
    .option("--payload <bytes>", "payload size", integer(0, 1_000_000), DEMO_DEFAULTS.payload)
    .option("--chaos", "restart the embedded nats-server once, half-way through consuming")
    .option(
      "-s, --server <url>",
      "use this running server (nats://host:port, comma-separated for a cluster) instead of an embedded one",
      servers,
    )
    .option("--stream <name>", "stream to create (it must not exist)", name, DEMO_DEFAULTS.stream)
    .option(
      "--ack-wait <seconds>",
      "the consumer's ack_wait: when the server redelivers what was never acked",
      integer(1, 3600),
      DEMO_DEFAULTS.ackWaitSeconds,
    )
    .option(
      "--max-messages <n>",
      "each worker's max_messages (messages buffered plus requested)",
      integer(1, 10_000),
      DEMO_DEFAULTS.maxMessages,
    )
    .option(
      "--work <ms>",
      "simulated processing time per message before its ack",
      integer(0, 60_000),
      DEMO_DEFAULTS.workMs,
    )
    .option("--json", "print the final report as one JSON object on stdout")
    .addHelpText(
      "after",
      `
Without --server it starts nats-server (NATS_SERVER_BIN, PATH, /usr/sbin/nats-server) on a free
127.0.0.1 port with a temp store, and stops it (by pid) and removes the store on every exit.
Progress goes to stderr (bars on a terminal, plain lines otherwise), the report to stdout.
Ctrl-C drains every worker and prints the report; Ctrl-C twice forces an exit.
Exit 0 when nothing was lost, 1 otherwise.`,
    )
    .action(async (flags: DemoFlags) => {
      setExit(
        await runDemo({
          messages: flags.messages,
          workers: flags.workers,
          payload: flags.payload,
          chaos: flags.chaos === true,
          server: flags.server,
          stream: flags.stream,
          ackWait: flags.ackWait * 1000,
          maxMessages: flags.maxMessages,
          workMs: flags.work,
          json: flags.json === true,
        }),
      );
    });

  program
    .command("consume")
    .description("tail a durable pull consumer: print each message, ack with --ack; Ctrl-C drains")
    .addOption(
      new Option("-s, --server <url>", "NATS server URL (comma-separated for a cluster)")
        .default(parseServers(DEFAULT_SERVER), process.env.NATS_URL ? "$NATS_URL" : DEFAULT_SERVER)
        .argParser(servers),
    )
    .requiredOption("--stream <name>", "stream name", name)
    .requiredOption("--consumer <name>", "durable pull consumer name", name)
    .option("--ack", "ack each message after printing it")
    .option("--max <n>", "stop after N messages", integer(1, Number.MAX_SAFE_INTEGER))
    .addHelpText(
      "after",
      `
Prints "<subject> seq=<stream seq> deliveryCount=<n> <payload preview>" per message on stdout.
A message is acked only once its line is written. Ctrl-C (or SIGTERM) drains: no new pulls, and
what the server already sent is still printed (and acked), then it exits 0. A closed stdout
(… | head -n 3) ends it the same way, but what was fetched and not printed is NAKed for immediate
redelivery instead, as are messages fetched beyond --max.`,
    )
    .action(async (flags: ConsumeFlags) => {
      setExit(
        await runConsume({
          server: flags.server,
          stream: flags.stream,
          consumer: flags.consumer,
          ack: flags.ack === true,
          max: flags.max,
        }),
      );
    });

  return program;
}

/** Parses `argv` (without node and the script) and runs the command; resolves the exit code. */
export async function run(argv: string[]): Promise<number> {
  if (argv.length === 0) {
    process.stderr.write(
      "jetstream-iter: error: missing command (demo or consume); see jetstream-iter --help\n",
    );
    return EXIT_USAGE;
  }
  let code = EXIT_OK;
  const program = buildProgram((c) => {
    code = c;
  });
  try {
    await program.parseAsync(argv, { from: "user" });
    return code;
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode === 0 ? EXIT_OK : EXIT_USAGE;
    reportError(err);
    return exitCodeOf(err);
  }
}

/** The executable's entry: runs, then exits with the code (never with a stack trace). */
export function main(argv: string[]): void {
  const die = (err: unknown) => {
    reportError(err);
    process.exit(EXIT_FAILURE);
  };
  process.on("uncaughtException", die);
  process.on("unhandledRejection", die);
  // The reader went away (`jetstream-iter demo --json | head`): end quietly, as Unix tools do.
  // The exit handlers still stop an embedded server. A command that owns stdout (`consume`,
  // which has fetched messages to hand back first) ends itself.
  process.stdout.on("error", (err: NodeJS.ErrnoException) => {
    if (stdoutOwned()) return;
    if (isBrokenPipe(err)) process.exit(EXIT_OK);
    die(err);
  });
  // stderr carries only diagnostics, and a failure to write them has nowhere to be reported: a
  // closed stderr (`… 2>&1 | head`) must not turn an orderly end into an uncaught exception.
  process.stderr.on("error", () => {});
  void run(argv).then((code) => {
    process.exitCode = code;
    // Everything is closed by now; should a stray handle remain, do not wait for it.
    setTimeout(() => process.exit(code), 1_000).unref();
  }, die);
}
