/**
 * Ordered replay and fetch batches, the child side of one run.
 *
 * `ordered`: an ordered consumer of the whole stream (`consumers.get(stream)`), consumed with
 * `max_messages` until as many messages as the stream holds were seen (count and bytes are
 * checked; order is the integration tests' business, reading each message's sequence here would
 * add a parse to the loop body).
 * `fetch`: a durable with explicit acks drained by repeated batches (`fetchMessages()` /
 * `fetch()`, `max_messages` per batch), each message acked, until every message was seen.
 * Clock and CPU: from the first consume()/fetch call to the last message (with acks: after a
 * flush, so every ack reached the server).
 */
import { performance } from "node:perf_hooks";
import type { Session } from "./contenders/api.js";
import { cpuUs, maxRssKb, pidCpuMs } from "./proc.js";
import type { ReplayJob, ReplayResult } from "./types.js";

export async function replay(job: ReplayJob, s: Session): Promise<ReplayResult> {
  const consumer =
    job.mode === "ordered"
      ? await s.ordered(job.stream)
      : await s.consumer(job.stream, job.consumer);
  let n = 0;
  let bytes = 0;
  let batches = 0;
  const t0 = performance.now();
  const c0 = cpuUs();
  const sv0 = pidCpuMs(job.serverPid);
  if (job.mode === "ordered") {
    const it = await consumer.consume(job.maxMessages);
    for await (const m of it.messages) {
      bytes += m.data.length;
      if (++n === job.messages) break;
    }
  } else {
    while (n < job.messages) {
      batches++;
      const before = n;
      const batch = await consumer.fetch(Math.min(job.maxMessages, job.messages - n), job.expires);
      for await (const m of batch) {
        bytes += m.data.length;
        m.ack();
        n++;
      }
      if (n === before) throw new Error(`fetch: an empty batch after ${n} of ${job.messages}`);
    }
    await s.flush();
  }
  const t1 = performance.now();
  const c1 = cpuUs();
  const sv1 = pidCpuMs(job.serverPid);
  if (n !== job.messages) throw new Error(`the loop ended after ${n} of ${job.messages}`);
  if (bytes !== n * job.payload) throw new Error(`payload bytes ${bytes}, want ${n * job.payload}`);
  await s.close();
  const seconds = (t1 - t0) / 1000;
  return {
    kind: "replay",
    messages: n,
    seconds,
    msgPerSec: n / seconds,
    cpuUs: c1 - c0,
    cpuUsPerMsg: (c1 - c0) / n,
    ...(job.serverPid !== undefined ? { serverCpuUs: (sv1 - sv0) * 1000 } : {}),
    batches,
    maxRssKb: maxRssKb(),
  };
}
