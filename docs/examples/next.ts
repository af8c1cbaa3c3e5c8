/**
 * Explicit `next({ timeout, signal })`, Go style: for tests, scripts and libraries that want
 * one message at a time.
 *
 * 1. Reads the backlog with `next({ timeout })` until no message arrives in time: a
 *    `NextTimeoutError` does not end the iterator, it only says "nothing within the timeout".
 * 2. Waits for one more message with `next({ signal })` until SIGTERM or SIGINT (or
 *    ABORT_AFTER_MS) aborts that wait: an `AbortError` for that call only; a message that
 *    arrives later is not lost, it would go to the next call.
 * 3. Closes the iterator; `next()` on a closed, empty iterator rejects `MsgIteratorClosedError`.
 *
 * Environment:
 *   NATS_URL          server URL (default nats://127.0.0.1:4222)
 *   STREAM, CONSUMER  an existing stream and durable pull consumer (default ORDERS, worker)
 *   NEXT_TIMEOUT_MS   how long one next() waits in step 1 (default 1000)
 *   ABORT_AFTER_MS    optional: abort the wait of step 2 after this long instead of on a signal
 *
 * Run (from the repository root): npx tsc -p docs/examples && node docs/examples/dist/docs/examples/next.js
 */
import { jetstream } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
// In your code: import { consume, isAbortError, … } from "jetstream-iter";
import {
  consume,
  isAbortError,
  MsgIteratorClosedError,
  NextTimeoutError,
} from "../../src/index.js";

const url = process.env.NATS_URL ?? "nats://127.0.0.1:4222";
const stream = process.env.STREAM ?? "ORDERS";
const durable = process.env.CONSUMER ?? "worker";
const timeout = Number(process.env.NEXT_TIMEOUT_MS ?? 1_000);
const abortAfter = process.env.ABORT_AFTER_MS ? Number(process.env.ABORT_AFTER_MS) : undefined;

const nc = await connect({ servers: url, name: "next-example" });
const consumer = await jetstream(nc).consumers.get(stream, durable);
const messages = await consume(consumer, { max_messages: 10 });

// 1. the backlog, until a next() times out
let read = 0;
for (;;) {
  try {
    const m = await messages.next({ timeout });
    console.log(`message ${m.seq}: ${m.string()}`);
    m.ack();
    read++;
  } catch (err) {
    if (!(err instanceof NextTimeoutError)) throw err;
    console.log(`timeout: no message within ${timeout} ms after ${read}; still ${messages.state}`);
    break;
  }
}

// 2. one more wait, ended by a signal
const ac = new AbortController();
const abort = () => ac.abort();
process.once("SIGTERM", abort);
process.once("SIGINT", abort);
const timer = abortAfter === undefined ? undefined : setTimeout(abort, abortAfter);
console.log("waiting for a message; send SIGTERM or SIGINT to stop");
try {
  const m = await messages.next({ signal: ac.signal });
  console.log(`message ${m.seq}: ${m.string()}`);
  m.ack();
} catch (err) {
  if (!isAbortError(err)) throw err;
  console.log(`aborted: that next() only; the iterator is still ${messages.state}`);
} finally {
  clearTimeout(timer);
  process.off("SIGTERM", abort);
  process.off("SIGINT", abort);
}

// 3. close: NAKs anything buffered and never handed out; next() now says "closed"
await messages.close();
try {
  await messages.next();
} catch (err) {
  if (!(err instanceof MsgIteratorClosedError)) throw err;
  console.log(`closed: next() rejects ${err.name}`);
}
await nc.drain();
