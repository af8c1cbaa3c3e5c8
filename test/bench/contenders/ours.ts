/** jetstream-iter's `consume()` (from src/) over a nats.js v3 consumer and connection. */
import { jetstream } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { consume } from "../../../src/index.js";
import type { Session } from "./api.js";

export async function open(url: string): Promise<Session> {
  const nc = await connect({ servers: url });
  const js = jetstream(nc);
  return {
    endCall: "drain()",
    async consumer(stream, name) {
      const c = await js.consumers.get(stream, name);
      return {
        async consume(maxMessages) {
          const messages = await consume(c, { max_messages: maxMessages });
          return {
            messages,
            end: () => void messages.drain(),
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
