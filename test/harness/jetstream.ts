/**
 * JetStream helpers for tests, on their own short-lived @nats-io (v3) connections:
 * create a stream and a durable pull consumer, publish N messages fast with acks,
 * read consumer info.
 */
import {
  AckPolicy,
  type ConsumerConfig,
  type ConsumerInfo,
  type JetStreamManager,
  jetstream,
  jetstreamManager,
  type StreamConfig,
} from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/nats-core";
import { connect } from "@nats-io/transport-node";

type Servers = string | string[];

/** Opens a v3 connection to `servers`, runs `fn` with a manager, closes the connection. */
export async function jsmOn<T>(
  servers: Servers,
  fn: (jsm: JetStreamManager, nc: NatsConnection) => Promise<T>,
): Promise<T> {
  const nc = await connect({ servers, reconnect: false, timeout: 2000 });
  try {
    const jsm = await jetstreamManager(nc, { timeout: 5000 });
    return await fn(jsm, nc);
  } finally {
    await nc.close();
  }
}

/** Creates a stream capturing `subjects` (default `<name>.>`). */
export async function createStream(
  servers: Servers,
  name: string,
  config: Partial<StreamConfig> = {},
): Promise<void> {
  await jsmOn(servers, async (jsm) => {
    await jsm.streams.add({ name, subjects: [`${name}.>`], ...config });
  });
}

/** Creates a durable pull consumer (explicit acks unless `config` says otherwise). */
export async function createConsumer(
  servers: Servers,
  stream: string,
  name: string,
  config: Partial<ConsumerConfig> = {},
): Promise<ConsumerInfo> {
  return jsmOn(servers, (jsm) =>
    jsm.consumers.add(stream, { durable_name: name, ack_policy: AckPolicy.Explicit, ...config }),
  );
}

/**
 * Publishes `count` messages to `subject` with JetStream acks, `window` in flight at a time.
 * The payload is `payload(i)` (default: the decimal index). Resolves the acked sequences.
 */
export async function publishN(
  servers: Servers,
  subject: string,
  count: number,
  opts: { payload?: (i: number) => Uint8Array | string; window?: number } = {},
): Promise<number[]> {
  const payload = opts.payload ?? ((i: number) => String(i));
  const window = opts.window ?? 256;
  const nc = await connect({ servers, reconnect: false, timeout: 2000 });
  try {
    const js = jetstream(nc, { timeout: 10_000 });
    const seqs: number[] = new Array(count);
    for (let start = 0; start < count; start += window) {
      const end = Math.min(count, start + window);
      const acks = [];
      for (let i = start; i < end; i++) acks.push(js.publish(subject, payload(i)));
      const done = await Promise.all(acks);
      for (let i = start; i < end; i++) seqs[i] = done[i - start]!.seq;
    }
    return seqs;
  } finally {
    await nc.close();
  }
}

/** Reads consumer info (num_pending, num_ack_pending, num_waiting, delivered, cluster leader…). */
export async function consumerInfo(
  servers: Servers,
  stream: string,
  consumer: string,
): Promise<ConsumerInfo> {
  return jsmOn(servers, (jsm) => jsm.consumers.info(stream, consumer));
}
