/**
 * Peak RSS with 16 KiB messages (and in the slow consumer), and what moves it
 * (`npm run bench:rss-step`).
 *
 * The throughput runs measure jetstream-iter 4–20 MiB above nats.js v3 in peak RSS at 16 KiB
 * (at 128 B and 1 KiB, within ±2 MiB). This runs the same child as those runs (a fresh process,
 * `consume()` without acks, `max_messages` 100) for nats.js v3 alone, for nats.js v3 with
 * something else loaded before it — jetstream-iter's `src/` imported and never used, or ~150 KiB
 * of plain objects kept alive — and for jetstream-iter, interleaved, on one server. If v3 with an
 * unused import, or with 150 KiB of anything, measures as jetstream-iter does, the difference is
 * not what the iterator holds but how V8 sizes its heap (and so how long dead socket buffers
 * live) once the process holds a little more than nats.js alone: docs/benchmarks.md.
 * `--slow` does the same with the slow consumer's run (1 KiB, explicit acks, 1 ms per message,
 * 2,000 messages), where the throughput runs measured +7 MiB.
 *
 *   npm run bench:rss-step [-- --reps N] [-- --messages N] [-- --slow]
 */
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
import { AckPolicy, DeliverPolicy } from "@nats-io/jetstream";
import { createConsumer, createStream, NatsServer, publishN } from "../harness/index.js";
import { runChild } from "./children.js";
import type { SlowJob, ThroughputJob } from "./types.js";

const here = dirname(fileURLToPath(import.meta.url));
const childJs = join(here, "child.js");
/** The built `src/index.js` the bench's jetstream-iter contender loads. */
const oursIndex = pathToFileURL(join(here, "../../src/index.js")).href;
/** ~150 KiB of live heap: 60 arrays of 64 small objects, kept by a global. */
const allocation =
  "data:text/javascript,globalThis.__rssStep=Array.from({length:60},()=>Array.from({length:64},(_,i)=>({i})))";

const { values } = parseArgs({
  options: {
    reps: { type: "string", default: "5" },
    messages: { type: "string" },
    slow: { type: "boolean", default: false },
  },
});
const slow = values.slow;
const reps = Number(values.reps);
const messages = Number(values.messages ?? (slow ? 2_000 : 30_000));
if (!(Number.isInteger(reps) && reps > 0))
  throw new Error(`--reps: a positive integer, got ${values.reps}`);
if (!(Number.isInteger(messages) && messages > 0))
  throw new Error(`--messages: a positive integer, got ${values.messages}`);

const VARIANTS = [
  { label: "nats.js v3 consume()", contender: "v3", nodeArgs: [] },
  {
    label: "nats.js v3 consume(), jetstream-iter imported first (never used)",
    contender: "v3",
    nodeArgs: ["--import", oursIndex],
  },
  {
    label: "nats.js v3 consume(), ~150 KiB of plain objects allocated first",
    contender: "v3",
    nodeArgs: ["--import", allocation],
  },
  { label: "jetstream-iter consume()", contender: "ours", nodeArgs: [] },
] as const;

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

const server = await NatsServer.start();
try {
  const url = server.url;
  const payload = slow ? 1_024 : 16_384;
  await createStream(url, "RSS");
  const body = new Uint8Array(payload).fill(7);
  await publishN(url, "RSS.m", messages, { payload: () => body, window: 256 });
  const rss = VARIANTS.map(() => [] as number[]);
  let seq = 0;
  for (let rep = 0; rep < reps; rep++) {
    for (const [i, v] of VARIANTS.entries()) {
      const consumer = `rss${++seq}`;
      await createConsumer(url, "RSS", consumer, {
        ack_policy: slow ? AckPolicy.Explicit : AckPolicy.None,
        deliver_policy: DeliverPolicy.All,
      });
      const common = { contender: v.contender, url, stream: "RSS", consumer, messages };
      const job: ThroughputJob | SlowJob = slow
        ? { kind: "slow", ...common, maxMessages: 100, bodyMs: 1 }
        : { kind: "throughput", ...common, ack: false, payload, maxMessages: 100 };
      const result = await runChild(childJs, job, {
        profileName: consumer,
        nodeArgs: [...v.nodeArgs],
      });
      if (result.kind !== job.kind || !("maxRssKb" in result)) {
        throw new Error(`unexpected result ${result.kind}`);
      }
      rss[i]!.push(result.maxRssKb / 1024);
      process.stderr.write(`rss-step: ${v.label}: ${(result.maxRssKb / 1024).toFixed(1)} MiB\n`);
    }
  }
  const base = median(rss[0]!);
  console.log(
    `\nPeak RSS, ${slow ? "slow consumer: 1 KiB, explicit acks, 1 ms per message" : "16 KiB, no acks"}, max_messages 100, ${messages.toLocaleString("en-US")} messages, median of ${reps} (fresh process each, interleaved)\n`,
  );
  console.log("| process | peak RSS MiB (median) | lowest – highest | − v3 alone |");
  console.log("|---|---:|---:|---:|");
  for (const [i, v] of VARIANTS.entries()) {
    const xs = rss[i]!;
    console.log(
      `| ${v.label} | ${median(xs).toFixed(1)} | ${Math.min(...xs).toFixed(1)} – ${Math.max(...xs).toFixed(1)} | ${i === 0 ? "" : `${(median(xs) - base).toFixed(1)}`} |`,
    );
  }
} finally {
  await server.stop();
}
