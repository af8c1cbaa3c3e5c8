/**
 * The publisher of a latency cell, in its own process (so its work competes with the consumer
 * for the CPU as another application's would, not inside the consumer's event loop): JetStream
 * publishes at a fixed rate, in 1 ms ticks, each awaiting its PubAck. The message's index goes in
 * the payload's first 4 bytes (little-endian); the monotonic times of each publish call and each
 * PubAck are the result.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { jetstream } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { monoMs } from "./proc.js";
import type { PublishJob, PublishResult } from "./types.js";

/** Runs the publisher: `job.messages` JetStream publishes at `job.rate` per second. */
export async function publisher(job: PublishJob): Promise<PublishResult> {
  const nc = await connect({ servers: job.url });
  const js = jetstream(nc, { timeout: 10_000 });
  const template = new Uint8Array(job.payload);
  for (let i = 4; i < job.payload; i++) template[i] = (i * 31 + 7) & 0xff;
  const sentAt = new Array<number>(job.messages).fill(-1);
  const ackedAt = new Array<number>(job.messages).fill(-1);
  const inFlight: Promise<void>[] = [];
  const periodMs = 1000 / job.rate;
  let behindMaxMs = 0;
  const t0 = monoMs();
  let i = 0;
  while (i < job.messages) {
    const now = monoMs();
    // Everything due by now goes out in this tick (1 ms timers: ~rate/1000 per tick).
    while (i < job.messages && t0 + i * periodMs <= now) {
      const k = i++;
      const data = template.slice();
      data[0] = k & 0xff;
      data[1] = (k >>> 8) & 0xff;
      data[2] = (k >>> 16) & 0xff;
      data[3] = (k >>> 24) & 0xff;
      const at = monoMs();
      sentAt[k] = at;
      behindMaxMs = Math.max(behindMaxMs, at - (t0 + k * periodMs));
      inFlight.push(
        js.publish(job.subject, data).then(() => {
          ackedAt[k] = monoMs();
        }),
      );
    }
    if (i < job.messages) await sleep(Math.max(0, t0 + i * periodMs - monoMs()));
  }
  await Promise.all(inFlight);
  await nc.close();
  const r3 = (t: number) => Math.round(t * 1000) / 1000;
  return { kind: "publish", sentAt: sentAt.map(r3), ackedAt: ackedAt.map(r3), behindMaxMs };
}
