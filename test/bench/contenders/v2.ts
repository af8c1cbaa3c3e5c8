/** nats.js v2: the legacy `nats` package's `consumer.consume()`. */
import { connect } from "nats";
import type { Session } from "./api.js";

export async function open(url: string): Promise<Session> {
  const nc = await connect({ servers: url });
  const js = nc.jetstream();
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
