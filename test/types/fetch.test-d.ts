/**
 * Type tests: `fetchMessages()`, `nextMessage()` and `wrapConsumer()` are drop-ins for nats.js
 * `consumer.fetch()`, `consumer.next()` and the consumer itself, in both generations. Only
 * type-checked, never run: a drift fails the build.
 */
import type {
  Consumer as V3Consumer,
  ConsumerMessages as V3ConsumerMessages,
  FetchOptions as V3FetchOptions,
  JsMsg as V3JsMsg,
  NextOptions as V3NextOptions,
} from "@nats-io/jetstream";
import type {
  Consumer as V2Consumer,
  ConsumerMessages as V2ConsumerMessages,
  FetchOptions as V2FetchOptions,
  JsMsg as V2JsMsg,
  NextOptions as V2NextOptions,
} from "nats";
import { describe, expectTypeOf, test } from "vitest";
import { fetchMessages, nextMessage, wrapConsumer } from "../../src/index.js";

declare const v3: V3Consumer;
declare const v2: V2Consumer;
declare const signal: AbortSignal;

describe("v3 (@nats-io/jetstream)", () => {
  test("fetchMessages() takes v3 FetchOptions and resolves v3 ConsumerMessages", () => {
    const fetch: V3Consumer["fetch"] = (o?: V3FetchOptions) => fetchMessages(v3, o);
    void fetch;
    expectTypeOf(fetchMessages(v3)).resolves.toExtend<V3ConsumerMessages>();
    expectTypeOf(
      fetchMessages(v3, { max_messages: 5, expires: 1000, signal }),
    ).resolves.toExtend<V3ConsumerMessages>();
  });

  test("nextMessage() takes v3 NextOptions and resolves v3 JsMsg | null", () => {
    const next: V3Consumer["next"] = (o?: V3NextOptions) => nextMessage(v3, o);
    void next;
    expectTypeOf(nextMessage(v3)).resolves.toEqualTypeOf<V3JsMsg | null>();
  });

  test("wrapConsumer() is a v3 Consumer", () => {
    const w: V3Consumer = wrapConsumer(v3);
    void w;
    expectTypeOf(wrapConsumer(v3)).toEqualTypeOf<V3Consumer>();
  });
});

describe("v2 (nats)", () => {
  test("fetchMessages() takes v2 FetchOptions and resolves v2 ConsumerMessages", () => {
    const fetch: V2Consumer["fetch"] = (o?: V2FetchOptions) => fetchMessages(v2, o);
    void fetch;
    expectTypeOf(fetchMessages(v2)).resolves.toExtend<V2ConsumerMessages>();
  });

  test("nextMessage() takes v2 NextOptions and resolves v2 JsMsg | null", () => {
    const next: V2Consumer["next"] = (o?: V2NextOptions) => nextMessage(v2, o);
    void next;
    expectTypeOf(nextMessage(v2)).resolves.toEqualTypeOf<V2JsMsg | null>();
  });

  test("wrapConsumer() is a v2 Consumer", () => {
    const w: V2Consumer = wrapConsumer(v2);
    void w;
  });
});
