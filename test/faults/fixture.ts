/** A fresh stream and one durable per client: explicit acks, ack_wait {@link ACK_WAIT_MS}. */
import { AckPolicy, type ConsumerConfig, jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { ACK_WAIT_MS, type Fixture } from "./run.js";
import { CLIENTS, type Client, CONNECTION } from "./types.js";

/** The durables' names, one per client. */
export const DURABLES: Record<Client, string> = { "jetstream-iter": "iter", "nats.js": "natsjs" };

/** The durable's config (also used to re-create it). */
export function durableConfig(name: string, extra: Partial<ConsumerConfig> = {}) {
  return {
    durable_name: name,
    ack_policy: AckPolicy.Explicit,
    ack_wait: ACK_WAIT_MS * 1_000_000,
    ...extra,
  };
}

export interface FixtureOptions {
  /** Where the stream is created (a connection to the stream's own domain). */
  adminServers: string[];
  stream: string;
  replicas?: number;
  clientServers: string[];
  noRandomize?: boolean;
  domain?: string;
  publisherServers?: string[];
  payloadBytes?: number;
  publishEveryMs?: number;
  backlog?: number;
  consumeOptions?: Record<string, number>;
  warmup?: number;
}

export async function makeFixture(o: FixtureOptions): Promise<Fixture> {
  const nc = await connect({ servers: o.adminServers, ...CONNECTION });
  try {
    const jsm = await jetstreamManager(nc, { timeout: 5000 });
    await jsm.streams.add({
      name: o.stream,
      subjects: [`${o.stream}.>`],
      num_replicas: o.replicas ?? 1,
    });
    for (const c of CLIENTS) {
      await jsm.consumers.add(
        o.stream,
        durableConfig(DURABLES[c], { num_replicas: o.replicas ?? 1 }),
      );
    }
  } finally {
    await nc.close();
  }
  return {
    stream: o.stream,
    subject: `${o.stream}.x`,
    consumers: DURABLES,
    clientServers: o.clientServers,
    noRandomize: o.noRandomize ?? false,
    ...(o.domain ? { domain: o.domain } : {}),
    publisherServers: o.publisherServers ?? o.adminServers,
    payloadBytes: o.payloadBytes ?? 128,
    publishEveryMs: o.publishEveryMs ?? 5,
    backlog: o.backlog ?? 0,
    consumeOptions: o.consumeOptions ?? {},
    warmup: o.warmup ?? 200,
    async cleanup() {
      const nc = await connect({ servers: o.adminServers, ...CONNECTION });
      try {
        const jsm = await jetstreamManager(nc, { timeout: 5000 });
        await jsm.streams.delete(o.stream);
      } finally {
        await nc.close();
      }
    },
  };
}
