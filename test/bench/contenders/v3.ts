/** nats.js v3: `@nats-io/jetstream` `consumer.consume()`. */
import { jetstream } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import type { Session } from "./api.js";

export async function open(url: string): Promise<Session> {
  const nc = await connect({ servers: url });
  const js = jetstream(nc);
  return {
    endCall: "stop()",
    async consumer(stream, name) {
      const c = await js.consumers.get(stream, name);
      return {
        async consume(maxMessages) {
          const messages = await c.consume({ max_messages: maxMessages });
          return {
            messages,
            end: () => messages.stop(),
            pending: () => messages.getPending(),
            closed: () => messages.closed(),
          };
        },
      };
    },
    flush: () => nc.flush(),
    close: () => nc.close(),
  };
}
