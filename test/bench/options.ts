/**
 * The runner's flags and the options they give (defaults for a full run and for `--short`).
 * A bad flag is one line on stderr and exit 2, as the CLI does (never a stack trace).
 */
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { CONTENDERS, type Contender } from "./types.js";

/** The kinds of measurement `--skip` can leave out. */
export const FAMILIES = ["throughput", "drain", "slow", "latency", "many", "replay"] as const;
export type Family = (typeof FAMILIES)[number];

export function usage(message: string): never {
  process.stderr.write(
    `bench: ${message}\nbench: options: --short, --reps N, --messages N, --messages-16k N, --trials N, --only ours,v3,v2,core, --payloads 128,1024, --max-messages 100,1000, --rates 1000,10000, --iterators 1,100,1000, --fetch-batch 100, --skip ${FAMILIES.join(",")}, --cpu-prof DIR, --out DIR, --from-json FILE\n`,
  );
  process.exit(2);
}

function parse() {
  return parseArgs({
    options: {
      short: { type: "boolean", default: false },
      reps: { type: "string" },
      messages: { type: "string" },
      "messages-16k": { type: "string" },
      trials: { type: "string" },
      only: { type: "string" },
      payloads: { type: "string" },
      "max-messages": { type: "string" },
      rates: { type: "string" },
      iterators: { type: "string" },
      "fetch-batch": { type: "string" },
      skip: { type: "string" },
      "cpu-prof": { type: "string" },
      out: { type: "string" },
      "from-json": { type: "string" },
    },
  });
}

export const { values: flags } = (() => {
  try {
    return parse();
  } catch (err) {
    return usage((err as Error).message);
  }
})();

export const short = flags.short === true;

const int = (s: string | undefined, d: number, name = "a number") => {
  if (s === undefined) return d;
  const n = Number(s.replace(/_/g, ""));
  if (!Number.isSafeInteger(n) || n < 1)
    usage(`${name}: expected a positive integer, got ${JSON.stringify(s)}`);
  return n;
};
const list = (s: string | undefined, name = "a list") => s?.split(",").map((x) => int(x, 0, name));

/** Resolves the options; `root` is the repository root (for the default output folder). */
export function resolveOptions(root: string) {
  const skip = new Set(flags.skip?.split(",") ?? []);
  for (const s of skip) {
    if (!(FAMILIES as readonly string[]).includes(s))
      usage(`--skip: unknown kind ${s} (expected ${FAMILIES.join(", ")})`);
  }
  const opts = {
    reps: int(flags.reps, short ? 1 : 3, "--reps"),
    messages: int(flags.messages, short ? 20_000 : 200_000, "--messages"),
    messages16k: int(flags["messages-16k"], short ? 20_000 : 100_000, "--messages-16k"),
    payloads: list(flags.payloads, "--payloads") ?? (short ? [1024] : [128, 1024, 16384]),
    maxMessages: list(flags["max-messages"], "--max-messages") ?? (short ? [100] : [100, 1000]),
    /** Kinds of run to leave out. */
    skip: skip as Set<string>,
    acks: [true, false],
    trials: int(flags.trials, short ? 50 : 200, "--trials"),
    slowMessages: short ? 300 : 2_000,
    slowMaxMessages: 100,
    bodyMs: 1,
    drainMaxMessages: 100,
    /** Server-side cap of un-acked messages per consumer; the 2.9 default (1000) would cap max_messages 1000. */
    maxAckPending: 20_000,
    contenders: (flags.only?.split(",") ?? [...CONTENDERS]) as Contender[],
    latency: {
      /** Publish rates, msg/s. */
      rates: list(flags.rates, "--rates") ?? [1_000, 10_000],
      /** How long the publisher publishes at each rate, s (so rate × seconds messages). */
      seconds: (rate: number) => (short ? (rate >= 10_000 ? 0.5 : 1) : rate >= 10_000 ? 3 : 4),
      /** The first part of each run left out of the percentiles, s. */
      warmupSeconds: short ? 0.2 : 0.5,
      payload: 1024,
      maxMessages: 100,
    },
    many: {
      /** Iterators per cell. */
      counts: list(flags.iterators, "--iterators") ?? (short ? [1, 100] : [1, 100, 1_000]),
      /** Backlog per cell, spread round robin over the iterators' subjects. */
      messages: short ? 4_000 : 20_000,
      payload: 128,
      maxMessages: 10,
      /** `expires` of every pull, ms; the idle CPU window is one such period. */
      expires: short ? 2_000 : 5_000,
      loadFraction: 0.8,
    },
    replay: {
      /**
       * `max_messages` of the ordered consume(): nats.js's default, and 1000 (at 100 every client
       * waits on round trips; 1000 shows what a client costs per message).
       */
      orderedMaxMessages: short ? [100] : [100, 1000],
      /** Messages per fetch batch. */
      fetchBatch: int(flags["fetch-batch"], 100, "--fetch-batch"),
      fetchExpires: 5_000,
    },
    /** Before each run, wait until other processes use less than this share of one core, %… */
    quietPercent: 15,
    /** …but wait no more than this in all, ms. */
    quietBudgetMs: short ? 10_000 : 300_000,
    /** Measure a run again when other processes took more than this share of one core during it, %… */
    noisyPercent: 25,
    /** …at most this many times. */
    retries: short ? 0 : 2,
    /** A latency cell is measured again, too, when its publisher fell this far behind its schedule, ms. */
    latenessMs: 10,
    outDir: resolve(flags.out ?? join(root, "test/bench/results", short ? "tmp" : "")),
    cpuProf: flags["cpu-prof"] ? resolve(flags["cpu-prof"]) : undefined,
  };
  for (const c of opts.contenders) {
    if (!CONTENDERS.includes(c))
      usage(`--only: unknown contender ${c} (expected ${CONTENDERS.join(", ")})`);
  }
  return opts;
}

export type Options = ReturnType<typeof resolveOptions>;
