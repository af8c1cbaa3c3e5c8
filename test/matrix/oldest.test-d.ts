/**
 * Type tests against the oldest releases of the declared peer ranges (test/matrix/oldest): the
 * drop-in assignments of test/types/ hold with those releases' own types too. Only type-checked
 * (vitest typecheck mode and `tsc --noEmit`), never run.
 */
import { describe, expectTypeOf, test } from "vitest";
import {
  consume,
  fetchMessages,
  type JsMsg,
  type MessagesOf,
  type MsgOf,
  nextMessage,
  pullMessages,
  wrapConsumer,
} from "../../src/index.js";
import type {
  V2ConsumeOptions,
  V2Consumer,
  V2ConsumerMessages,
  V2ConsumerStatus,
  V2JsMsg,
  V2NatsConnection,
  V3ConsumeOptions,
  V3Consumer,
  V3ConsumerMessages,
  V3ConsumerNotification,
  V3JsMsg,
  V3NatsConnection,
} from "./oldest/index.js";

declare const v3: V3Consumer;
declare const v2: V2Consumer;
declare const nc3: V3NatsConnection;
declare const nc2: V2NatsConnection;
declare const signal: AbortSignal;
// As each release's own `fetch()` / `next()` take them (nats < 2.22 does not export NextOptions).
type V3FetchOptions = Parameters<V3Consumer["fetch"]>[0];
type V3NextOptions = Parameters<V3Consumer["next"]>[0];
type V2FetchOptions = Parameters<V2Consumer["fetch"]>[0];
type V2NextOptions = Parameters<V2Consumer["next"]>[0];

describe("the oldest @nats-io/jetstream of the range", () => {
  test("consume() resolves its ConsumerMessages; messages and status() are its own types", async () => {
    const messages: V3ConsumerMessages = await consume(v3, { max_messages: 10, signal });
    void messages;
    expectTypeOf<MessagesOf<V3Consumer>>().toExtend<V3ConsumerMessages>();
    expectTypeOf<MsgOf<V3Consumer>>().toEqualTypeOf<V3JsMsg>();
    expectTypeOf((await consume(v3)).status()).toEqualTypeOf<
      AsyncIterable<V3ConsumerNotification>
    >();
    const opts: V3ConsumeOptions = { max_messages: 10, expires: 5_000, callback: (m) => m.ack() };
    expectTypeOf(consume(v3, opts)).resolves.toExtend<V3ConsumerMessages>();
  });

  test("fetchMessages(), nextMessage() and wrapConsumer() fit its Consumer", () => {
    const fetch: V3Consumer["fetch"] = (o: V3FetchOptions) => fetchMessages(v3, o);
    const next: V3Consumer["next"] = (o: V3NextOptions) => nextMessage(v3, o);
    const wrapped: V3Consumer = wrapConsumer(v3);
    void [fetch, next, wrapped];
  });

  test("pullMessages() takes its NatsConnection; the library's JsMsg has its JsMsg's members", () => {
    void pullMessages(nc3, "S", "C");
    expectTypeOf<JsMsg>().toExtend<Omit<V3JsMsg, "headers">>();
  });
});

describe("the oldest nats (v2) of the range", () => {
  test("consume() resolves its ConsumerMessages; messages and status() are its own types", async () => {
    const messages: V2ConsumerMessages = await consume(v2, { max_messages: 10, signal });
    void messages;
    expectTypeOf<MessagesOf<V2Consumer>>().toExtend<V2ConsumerMessages>();
    expectTypeOf<MsgOf<V2Consumer>>().toEqualTypeOf<V2JsMsg>();
    expectTypeOf((await consume(v2)).status()).toEqualTypeOf<
      Promise<AsyncIterable<V2ConsumerStatus>>
    >();
    const opts: V2ConsumeOptions = { max_messages: 5, expires: 5_000, callback: (m) => m.ack() };
    expectTypeOf(consume(v2, opts)).resolves.toExtend<V2ConsumerMessages>();
  });

  test("fetchMessages(), nextMessage() and wrapConsumer() fit its Consumer", () => {
    const fetch: V2Consumer["fetch"] = (o: V2FetchOptions) => fetchMessages(v2, o);
    const next: V2Consumer["next"] = (o: V2NextOptions) => nextMessage(v2, o);
    const wrapped: V2Consumer = wrapConsumer(v2);
    void [fetch, next, wrapped];
  });

  test("pullMessages() takes its NatsConnection; the library's JsMsg has its JsMsg's members", () => {
    void pullMessages(nc2, "S", "C");
    expectTypeOf<JsMsg>().toExtend<Omit<V2JsMsg, "headers">>();
  });
});
