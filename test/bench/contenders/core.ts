/**
 * The ceiling: a plain core subscription (`@nats-io/transport-node`, the connection the v3
 * contenders use) receiving the stream's messages, pushed by a push consumer (ack policy none,
 * flow control) to an ordinary subject. No pull requests, no acks, no JetStream client code.
 */
import type { Subscription } from "@nats-io/nats-core";
import { connect } from "@nats-io/transport-node";
import type { CoreSession } from "./api.js";

export async function open(url: string): Promise<CoreSession> {
  const nc = await connect({ servers: url });
  let current: Subscription | undefined;
  return {
    async receive(subject, count, onLast, onData) {
      const sub = nc.subscribe(subject);
      current = sub;
      let n = 0;
      let bytes = 0;
      for await (const m of sub) {
        const h = m.headers;
        if (h !== undefined) {
          // Status 100: an idle heartbeat, or a flow-control request that wants a reply.
          if (h.code === 100 && m.reply) m.respond();
          if (h.code !== 0) continue;
        }
        bytes += m.data.length;
        onData?.(m.data);
        if (++n === count) {
          onLast();
          break;
        }
      }
      current = undefined;
      return bytes;
    },
    stop: () => current?.unsubscribe(),
    flush: () => nc.flush(),
    close: () => nc.close(),
  };
}
