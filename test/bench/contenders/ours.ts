/** jetstream-iter's `consume()` and `fetchMessages()` (from src/) over a nats.js v3 consumer and connection. */
import { type Consumer, jetstream } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { consume, fetchMessages } from "../../../src/index.js";
import type { BenchConsumer, Session } from "./api.js";

function wrap(c: Consumer): BenchConsumer {
  return {
    async consume(maxMessages, extra) {
      const messages = await consume(c, { max_messages: maxMessages, ...extra });
      return {
        messages,
        end: () => void messages.drain(),
        pending: () => messages.getPending(),
        closed: () => messages.closed(),
      };
    },
    fetch: (maxMessages, expires) => fetchMessages(c, { max_messages: maxMessages, expires }),
  };
}

export async function open(url: string): Promise<Session> {
  const nc = await connect({ servers: url });
  const js = jetstream(nc);
  return {
    endCall: "drain()",
    consumer: async (stream, name) => wrap(await js.consumers.get(stream, name)),
    ordered: async (stream) => wrap(await js.consumers.get(stream)),
    flush: () => nc.flush(),
    close: () => nc.close(),
  };
}
