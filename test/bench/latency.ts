/**
 * Latency, the consumer side of one cell (the publisher is publisher.ts, in its own process; the
 * runner starts the consumer, waits for its READY line, starts the publisher, and joins the two
 * results: report-latency.ts).
 *
 * The consumer: a caught-up iterator (its pull request, or the core subscription, is on the
 * server before the first message is published) that notes, in the loop body, the monotonic time
 * at which it sees each message, and acks it. The publisher: JetStream publishes at a fixed rate,
 * each awaiting its PubAck, noting when each was called and when its PubAck arrived. Both read
 * the same system-wide monotonic clock (proc.ts `monoMs`), so the runner can subtract them.
 */
import type { BenchIter, CoreSession, Session } from "./contenders/api.js";
import { cpuUs, maxRssKb, monoMs, pidCpuMs } from "./proc.js";
import type { LatencyJob, LatencyRawResult } from "./types.js";

/** The message's index, as the publisher wrote it: the payload's first 4 bytes, little-endian. */
function indexOf(data: Uint8Array): number {
  return (data[0]! | (data[1]! << 8) | (data[2]! << 16) | (data[3]! << 24)) >>> 0;
}

/**
 * Runs the consumer side. Calls `ready()` once its pull request (or subscription) is on the
 * server; resolves when `job.messages` messages were seen or `job.deadlineMs` after READY.
 */
export async function latencyConsumer(
  job: LatencyJob,
  open: { session?: Session; core?: CoreSession },
  ready: () => void,
): Promise<LatencyRawResult> {
  const bodyAt = new Array<number>(job.messages).fill(-1);
  let received = 0;
  const see = (data: Uint8Array) => {
    const i = indexOf(data);
    if (i < job.messages && bodyAt[i] === -1) {
      bodyAt[i] = monoMs();
      received++;
    }
  };
  let c0 = 0;
  let s0 = 0;
  let c1 = 0;
  let s1 = 0;
  const start = () => {
    c0 = cpuUs();
    s0 = pidCpuMs(job.serverPid);
  };
  const stop = () => {
    c1 = cpuUs();
    s1 = pidCpuMs(job.serverPid);
  };
  let timer: ReturnType<typeof setTimeout> | undefined;
  if (job.contender === "core") {
    const s = open.core!;
    // receive() subscribes before its first await: the flush after it confirms the subscription.
    const loop = s.receive(job.deliverSubject!, job.messages, stop, see);
    await s.flush();
    start();
    ready();
    timer = setTimeout(() => s.stop(), job.deadlineMs);
    await loop;
    clearTimeout(timer);
    if (c1 === 0) stop();
    await s.close();
  } else {
    const s = open.session!;
    const consumer = await s.consumer(job.stream, job.consumer);
    const it: BenchIter = await consumer.consume(job.maxMessages);
    // The pull request is on the server once the PONG is back: from here on it is caught up.
    await s.flush();
    start();
    ready();
    timer = setTimeout(() => it.end(), job.deadlineMs);
    let n = 0;
    for await (const m of it.messages) {
      see(m.data);
      if (job.ack) m.ack();
      if (++n === job.messages) break;
    }
    clearTimeout(timer);
    if (job.ack) await s.flush();
    stop();
    await s.close();
  }
  const serverMs = s1 - s0;
  return {
    kind: "latency-raw",
    bodyAt: bodyAt.map((t) => (t < 0 ? -1 : Math.round(t * 1000) / 1000)),
    received,
    cpuUs: c1 - c0,
    ...(job.serverPid !== undefined ? { serverCpuUs: serverMs * 1000 } : {}),
    maxRssKb: maxRssKb(),
  };
}
