/**
 * The browser test's page script: bundled with esbuild (platform "browser") by browser.test.ts
 * and run in headless Chromium. It consumes a stream over WebSocket (`wsconnect` from
 * @nats-io/nats-core) with this library, acks every message, drains, and publishes what it saw
 * on `window.__result` (the Node side waits for that, then checks the server's consumer info).
 *
 * Configuration comes from the query string: `ws`, `stream`, `consumer`, `count`.
 */
import { jetstream } from "@nats-io/jetstream";
import { wsconnect } from "@nats-io/nats-core";
import { consume } from "../../src/index.js";
import type { PageResult } from "./result.js";

declare global {
  interface Window {
    __result?: PageResult;
  }
}

const errors: string[] = [];
window.addEventListener("error", (e) => errors.push(`error: ${e.message}`));
window.addEventListener("unhandledrejection", (e) =>
  errors.push(`unhandled rejection: ${e.reason}`),
);

/** Every WebSocket frame the page sends, decoded (the NATS protocol is text but for payloads). */
const sent: string[] = [];
const dec = new TextDecoder();
const send = WebSocket.prototype.send;
WebSocket.prototype.send = function (
  this: WebSocket,
  data: string | ArrayBufferLike | Blob | ArrayBufferView,
) {
  if (typeof data === "string") sent.push(data);
  else if (data instanceof ArrayBuffer || ArrayBuffer.isView(data)) sent.push(dec.decode(data));
  return send.call(this, data);
};

function within<T>(p: Promise<T>, ms: number, onTimeout: T): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const t = new Promise<T>((resolve) => {
    timer = setTimeout(() => resolve(onTimeout), ms);
  });
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}

const describeVerdict = (e: Error | void) => (e ? e.message : "undefined");

async function run(ws: string, stream: string, consumerName: string, count: number) {
  const nc = await wsconnect({ servers: ws, reconnect: false });
  const consumer = await jetstream(nc).consumers.get(stream, consumerName);

  // 1. Consume every message, ack each, drain once all have come.
  const messages = await consume(consumer, { max_messages: 100 });
  const seen = new Set<number>();
  let duplicates = 0;
  let firstAckBeforeTimer: boolean | undefined;
  let draining: Promise<void> | undefined;
  for await (const m of messages) {
    if (seen.has(m.seq)) duplicates++;
    seen.add(m.seq);
    if (seen.size === 1) {
      // The ack subject (this library's JsMsg has it; nats.js's type does not show it).
      const frame = `PUB ${(m as unknown as { reply: string }).reply} `;
      setTimeout(() => {
        firstAckBeforeTimer = sent.some((s) => s.includes(frame));
      }, 0);
    }
    m.ack();
    if (seen.size === count && !draining) draining = messages.drain();
  }
  await draining;
  const drainVerdict = describeVerdict(await messages.closed());
  const counters = { ...messages.counters() };
  const ackFrames = sent.filter((s) => s.includes("+ACK")).length;
  // Every ack has reached the server before the connection goes.
  await nc.flush();

  // 2. The application closes the connection under an open iterator (nothing left to deliver):
  // the iterator ends, and closed() settles without an error.
  const idle = await consume(consumer, { max_messages: 10 });
  const handedOut = (async () => {
    let n = 0;
    for await (const _ of idle) n++;
    return n;
  })();
  await nc.close();
  const closedWithConnection = await within(
    idle.closed().then(describeVerdict, (e: Error) => `rejected: ${e.message}`),
    5000,
    "timeout",
  );
  await within(handedOut, 5000, -1);

  return {
    received: seen.size,
    lost: count - seen.size,
    duplicates,
    drainVerdict,
    counters,
    ackFrames,
    firstAckBeforeTimer,
    closedWithConnection,
  };
}

const q = new URLSearchParams(location.search);
const count = Number(q.get("count"));
run(q.get("ws") ?? "", q.get("stream") ?? "", q.get("consumer") ?? "", count).then(
  (r) => {
    console.log(`lost ${r.lost}`);
    window.__result = { ...r, errors };
  },
  (err: unknown) => {
    window.__result = {
      received: 0,
      lost: count,
      duplicates: 0,
      drainVerdict: "",
      counters: {},
      ackFrames: 0,
      firstAckBeforeTimer: undefined,
      closedWithConnection: "",
      errors,
      failure: err instanceof Error ? `${err.name}: ${err.message}\n${err.stack}` : String(err),
    };
  },
);
