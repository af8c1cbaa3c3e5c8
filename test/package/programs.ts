/**
 * The programs and type checks the packaging test writes into each fresh project: a consume of
 * COUNT messages through import() and through require(), with nats.js v3 and with nats v2, each
 * reporting where the package was loaded from; and a file compiled as .mts and .cts that must
 * read the package's own types.
 */

/** A consume of COUNT messages from STREAM/c, reporting where the package was loaded from. */
export const V3_ESM = `import { jetstream } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import * as lib from "jetstream-iter";
const nc = await connect({ servers: process.env.NATS_URL });
const c = await jetstream(nc).consumers.get(process.env.STREAM, "c");
const messages = await lib.consume(c, { max_messages: 10 });
let handled = 0;
for await (const m of messages) {
  m.ack();
  if (++handled === Number(process.env.COUNT)) await messages.drain();
}
await nc.drain();
console.log(JSON.stringify({
  resolved: import.meta.resolve("jetstream-iter"),
  exports: Object.fromEntries(["consume", "pullMessages", "MsgIteratorClosedError"].map((k) => [k, typeof lib[k]])),
  closedError: new lib.MsgIteratorClosedError().name,
  handled,
  counters: messages.counters(),
}));
`;

export const V3_CJS = `const { jetstream } = require("@nats-io/jetstream");
const { connect } = require("@nats-io/transport-node");
const lib = require("jetstream-iter");
(async () => {
  const nc = await connect({ servers: process.env.NATS_URL });
  const c = await jetstream(nc).consumers.get(process.env.STREAM, "c");
  const messages = await lib.consume(c, { max_messages: 10 });
  let handled = 0;
  for await (const m of messages) {
    m.ack();
    if (++handled === Number(process.env.COUNT)) await messages.drain();
  }
  await nc.drain();
  console.log(JSON.stringify({
    resolved: require.resolve("jetstream-iter"),
    exports: Object.fromEntries(["consume", "pullMessages", "MsgIteratorClosedError"].map((k) => [k, typeof lib[k]])),
    closedError: new lib.MsgIteratorClosedError().name,
    handled,
    counters: messages.counters(),
  }));
})().catch((err) => { console.error(err); process.exitCode = 1; });
`;

/** `text` with each [from, to] replaced; throws when `from` is missing (the programs drifted). */
function swap(text: string, ...pairs: [string, string][]): string {
  for (const [from, to] of pairs) {
    if (!text.includes(from)) throw new Error(`swap: ${JSON.stringify(from)} not found`);
    text = text.replace(from, to);
  }
  return text;
}

/** The same programs with the nats v2 package. */
export const V2_ESM = swap(
  V3_ESM,
  [
    'import { jetstream } from "@nats-io/jetstream";\nimport { connect } from "@nats-io/transport-node";',
    'import { connect } from "nats";',
  ],
  ["await jetstream(nc).consumers", "await nc.jetstream().consumers"],
);

export const V2_CJS = swap(
  V3_CJS,
  [
    'const { jetstream } = require("@nats-io/jetstream");\nconst { connect } = require("@nats-io/transport-node");',
    'const { connect } = require("nats");',
  ],
  ["await jetstream(nc).consumers", "await nc.jetstream().consumers"],
);

/** Compiled as check.mts and check.cts: the package's own types must be read, not `any`. */
export const V3_TYPES = `import { type ConsumerMessages, type JsMsg, jetstream } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/nats-core";
import { type ConsumeOptions, consume, MsgIteratorClosedError, pullMessages } from "jetstream-iter";

export async function check(nc: NatsConnection): Promise<number> {
  const c = await jetstream(nc).consumers.get("S", "c");
  const messages = await consume(c, { max_messages: 10 });
  const asNats: ConsumerMessages = messages;
  const m: JsMsg = await messages.next({ timeout: 1_000 });
  const opts: ConsumeOptions = { max_messages: 1, idle_heartbeat: 500 };
  // @ts-expect-error an unknown option is a type error (so these are the package's types)
  await consume(c, { max_msgs: 1 });
  const raw = pullMessages(nc, "S", "c", opts);
  const err: Error = new MsgIteratorClosedError();
  await messages.drain({ timeout: 1_000 });
  return asNats.getProcessed() + m.seq + raw.getPending() + err.message.length;
}
`;

export const V2_TYPES = `import type { ConsumerMessages, JsMsg, NatsConnection } from "nats";
import { type ConsumeOptions, consume, MsgIteratorClosedError, pullMessages } from "jetstream-iter";

export async function check(nc: NatsConnection): Promise<number> {
  const c = await nc.jetstream().consumers.get("S", "c");
  const messages = await consume(c, { max_messages: 10 });
  const asNats: ConsumerMessages = messages;
  const m: JsMsg = await messages.next({ timeout: 1_000 });
  const opts: ConsumeOptions = { max_messages: 1, idle_heartbeat: 500 };
  // @ts-expect-error an unknown option is a type error (so these are the package's types)
  await consume(c, { max_msgs: 1 });
  const raw = pullMessages(nc, "S", "c", opts);
  const err: Error = new MsgIteratorClosedError();
  await messages.drain({ timeout: 1_000 });
  return asNats.getProcessed() + m.seq + raw.getPending() + err.message.length;
}
`;
