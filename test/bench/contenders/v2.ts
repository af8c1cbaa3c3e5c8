/** nats.js v2: the legacy `nats` package's `consumer.consume()` and `consumer.fetch()`. */
import { type Consumer, connect } from "nats";
import type { BenchConsumer, Session } from "./api.js";

function wrap(c: Consumer): BenchConsumer {
  return {
    async consume(maxMessages, extra) {
      const messages = await c.consume({ max_messages: maxMessages, ...extra });
      return {
        messages,
        end: () => messages.stop(),
        pending: () => messages.getPending(),
        closed: () => messages.closed(),
      };
    },
    fetch: (maxMessages, expires) => c.fetch({ max_messages: maxMessages, expires }),
  };
}

export async function open(url: string): Promise<Session> {
  const nc = await connect({ servers: url });
  const js = nc.jetstream();
  return {
    endCall: "stop()",
    consumer: async (stream, name) => wrap(await js.consumers.get(stream, name)),
    ordered: async (stream) => wrap(await js.consumers.get(stream)),
    flush: () => nc.flush(),
    close: () => nc.close(),
  };
}
