/**
 * Type tests: `consume()` is a drop-in for nats.js `consumer.consume()` of both generations.
 * This file is only type-checked (vitest typecheck mode and `tsc --noEmit`), never run: every
 * assertion below fails the build, not a test run, when the types drift.
 */
import type {
  ConsumeOptions as V3ConsumeOptions,
  Consumer as V3Consumer,
  ConsumerMessages as V3ConsumerMessages,
  ConsumerNotification as V3ConsumerNotification,
  JsMsg as V3JsMsg,
} from "@nats-io/jetstream";
import type { NatsConnection as V3NatsConnection } from "@nats-io/nats-core";
import type {
  ConsumeOptions as V2ConsumeOptions,
  Consumer as V2Consumer,
  ConsumerMessages as V2ConsumerMessages,
  ConsumerStatus as V2ConsumerStatus,
  JsMsg as V2JsMsg,
  NatsConnection as V2NatsConnection,
} from "nats";
import { describe, expectTypeOf, test } from "vitest";
import {
  type ConsumeOptions,
  consume,
  type JsMsg,
  type Messages,
  type MessagesOf,
  type MsgOf,
  type Notification,
  pullMessages,
  type StatusOf,
} from "../../src/index.js";

declare const v3: V3Consumer;
declare const v2: V2Consumer;
declare const nc3: V3NatsConnection;
declare const nc2: V2NatsConnection;
declare const signal: AbortSignal;

describe("consume() with a @nats-io/jetstream (v3) Consumer", () => {
  test("resolves something assignable to v3 ConsumerMessages", async () => {
    const messages: V3ConsumerMessages = await consume(v3);
    void messages;
    expectTypeOf(consume(v3)).resolves.toExtend<V3ConsumerMessages>();
    expectTypeOf(consume(v3, { max_messages: 10 })).resolves.toExtend<V3ConsumerMessages>();
    expectTypeOf<MessagesOf<V3Consumer>>().toExtend<V3ConsumerMessages>();
  });

  test("status() is AsyncIterable<ConsumerNotification> of v3", async () => {
    const messages = await consume(v3);
    expectTypeOf(messages.status()).toEqualTypeOf<AsyncIterable<V3ConsumerNotification>>();
    expectTypeOf<StatusOf<V3Consumer>>().toEqualTypeOf<AsyncIterable<V3ConsumerNotification>>();
    const s: AsyncIterable<V3ConsumerNotification> = messages.status();
    void s;
    for await (const n of messages.status()) {
      expectTypeOf(n).toEqualTypeOf<V3ConsumerNotification>();
    }
  });

  test("iterated messages are v3 JsMsg", async () => {
    const messages = await consume(v3);
    expectTypeOf<MsgOf<V3Consumer>>().toEqualTypeOf<V3JsMsg>();
    for await (const m of messages) {
      expectTypeOf(m).toEqualTypeOf<V3JsMsg>();
      const j: V3JsMsg = m;
      j.ack();
    }
  });

  test("next({ signal, timeout }) resolves the message type", async () => {
    const messages = await consume(v3);
    expectTypeOf(messages.next({ signal, timeout: 1_000 })).toEqualTypeOf<Promise<V3JsMsg>>();
    expectTypeOf(messages.next()).toEqualTypeOf<Promise<V3JsMsg>>();
    expectTypeOf(messages.next({ signal })).resolves.toEqualTypeOf<V3JsMsg>();
    expectTypeOf(messages.next({ timeout: 5 })).resolves.toEqualTypeOf<V3JsMsg>();
  });

  test("the lifecycle methods have nats.js signatures plus drain()", async () => {
    const messages = await consume(v3);
    expectTypeOf(messages.close()).toEqualTypeOf<Promise<void | Error>>();
    expectTypeOf(messages.closed()).toEqualTypeOf<Promise<void | Error>>();
    expectTypeOf(messages.drain()).toEqualTypeOf<Promise<void>>();
    expectTypeOf(messages.drain({ timeout: 100 })).toEqualTypeOf<Promise<void>>();
    expectTypeOf(messages.stop).parameters.toEqualTypeOf<[err?: Error]>();
    expectTypeOf(messages.getProcessed()).toEqualTypeOf<number>();
    expectTypeOf(messages.getPending()).toEqualTypeOf<number>();
    expectTypeOf(messages.getReceived()).toEqualTypeOf<number>();
    expectTypeOf(messages[Symbol.asyncDispose]()).toEqualTypeOf<Promise<void>>();
  });

  test("a callback typed with v3 JsMsg is accepted", () => {
    const cb = (m: V3JsMsg): void => {
      m.ack();
    };
    expectTypeOf(consume(v3, { callback: cb })).resolves.toExtend<V3ConsumerMessages>();
    expectTypeOf(
      consume(v3, {
        callback: async (m) => {
          expectTypeOf(m).toEqualTypeOf<V3JsMsg>();
          await m.ackAck();
        },
      }),
    ).resolves.toExtend<V3ConsumerMessages>();
    // v3's own callback type (may return Promise<never>) fits too.
    const own: NonNullable<V3ConsumeOptions["callback"]> = (m) => m.ack();
    expectTypeOf(consume(v3, { callback: own })).resolves.toExtend<V3ConsumerMessages>();
  });

  test("a v3 ConsumeOptions value of the supported fields is accepted as is", () => {
    const byMessages: V3ConsumeOptions = {
      max_messages: 10,
      threshold_messages: 5,
      expires: 10_000,
      idle_heartbeat: 5_000,
      abort_on_missing_resource: true,
      bind: false,
      callback: (m) => m.ack(),
    };
    const byBytes: V3ConsumeOptions = { max_bytes: 1024, threshold_bytes: 512 };
    expectTypeOf(consume(v3, byMessages)).resolves.toExtend<V3ConsumerMessages>();
    expectTypeOf(consume(v3, byBytes)).resolves.toExtend<V3ConsumerMessages>();
  });
});

describe("consume() with a nats (v2) Consumer", () => {
  test("resolves something assignable to v2 ConsumerMessages", async () => {
    const messages: V2ConsumerMessages = await consume(v2);
    void messages;
    expectTypeOf(consume(v2)).resolves.toExtend<V2ConsumerMessages>();
    expectTypeOf<MessagesOf<V2Consumer>>().toExtend<V2ConsumerMessages>();
  });

  test("status() returns Promise<AsyncIterable<ConsumerStatus>>", async () => {
    const messages = await consume(v2);
    expectTypeOf(messages.status()).toEqualTypeOf<Promise<AsyncIterable<V2ConsumerStatus>>>();
    const s: Promise<AsyncIterable<V2ConsumerStatus>> = messages.status();
    for await (const st of await s) {
      expectTypeOf(st).toEqualTypeOf<V2ConsumerStatus>();
    }
  });

  test("iterated messages and next() are v2 JsMsg", async () => {
    const messages = await consume(v2);
    expectTypeOf<MsgOf<V2Consumer>>().toEqualTypeOf<V2JsMsg>();
    for await (const m of messages) {
      expectTypeOf(m).toEqualTypeOf<V2JsMsg>();
    }
    expectTypeOf(messages.next({ signal, timeout: 1_000 })).toEqualTypeOf<Promise<V2JsMsg>>();
  });

  test("a v2 callback and a v2 ConsumeOptions value are accepted", () => {
    const opts: V2ConsumeOptions = { max_messages: 5, expires: 5_000, callback: (m) => m.ack() };
    expectTypeOf(consume(v2, opts)).resolves.toExtend<V2ConsumerMessages>();
    expectTypeOf(
      consume(v2, { callback: (m: V2JsMsg) => m.ack() }),
    ).resolves.toExtend<V2ConsumerMessages>();
  });
});

describe("ConsumeOptions", () => {
  test("accepts every nats.js ConsumeOptions field plus signal", () => {
    const all: ConsumeOptions<V3JsMsg> = {
      max_messages: 100,
      max_bytes: 1024 * 1024,
      expires: 30_000,
      idle_heartbeat: 15_000,
      threshold_messages: 75,
      threshold_bytes: 768 * 1024,
      callback: (m) => m.ack(),
      abort_on_missing_resource: false,
      bind: false,
      signal,
    };
    expectTypeOf(consume(v3, all)).resolves.toExtend<V3ConsumerMessages>();
    expectTypeOf(consume(v3, {})).resolves.toExtend<V3ConsumerMessages>();
    expectTypeOf(consume(v3, undefined)).resolves.toExtend<V3ConsumerMessages>();
  });

  test("each field has the nats.js type", () => {
    type O = ConsumeOptions<V3JsMsg>;
    expectTypeOf<O["max_messages"]>().toEqualTypeOf<number | undefined>();
    expectTypeOf<O["max_bytes"]>().toEqualTypeOf<number | undefined>();
    expectTypeOf<O["expires"]>().toEqualTypeOf<number | undefined>();
    expectTypeOf<O["idle_heartbeat"]>().toEqualTypeOf<number | undefined>();
    expectTypeOf<O["threshold_messages"]>().toEqualTypeOf<number | undefined>();
    expectTypeOf<O["threshold_bytes"]>().toEqualTypeOf<number | undefined>();
    expectTypeOf<O["abort_on_missing_resource"]>().toEqualTypeOf<boolean | undefined>();
    expectTypeOf<O["bind"]>().toEqualTypeOf<boolean | undefined>();
    expectTypeOf<O["signal"]>().toEqualTypeOf<AbortSignal | undefined>();
    expectTypeOf<NonNullable<O["callback"]>>().parameters.toEqualTypeOf<[msg: V3JsMsg]>();
  });
});

describe("pullMessages()", () => {
  test("accepts a v3 and a v2 NatsConnection", () => {
    const a = pullMessages(nc3, "S", "C");
    const b = pullMessages(nc2, "S", "C");
    const c = pullMessages(nc2, "S", "C", { max_messages: 10, signal, api_timeout: 2_000 });
    expectTypeOf(a).toEqualTypeOf<Messages<JsMsg, AsyncIterable<Notification>>>();
    expectTypeOf(b).toEqualTypeOf<Messages<JsMsg, AsyncIterable<Notification>>>();
    expectTypeOf(c.status()).toEqualTypeOf<AsyncIterable<Notification>>();
    const m: Messages = a;
    void m;
  });

  test("next({ signal, timeout }) resolves the library's JsMsg", () => {
    const messages = pullMessages(nc3, "S", "C");
    expectTypeOf(messages.next({ signal, timeout: 10 })).toEqualTypeOf<Promise<JsMsg>>();
  });

  test("the library's JsMsg has every member of nats.js JsMsg (headers typed loosely)", () => {
    expectTypeOf<JsMsg>().toExtend<Omit<V3JsMsg, "headers">>();
    expectTypeOf<JsMsg>().toExtend<Omit<V2JsMsg, "headers">>();
  });
});

describe("wrong things do not compile", () => {
  test("a v2 result is not a v3 ConsumerMessages, nor its status v3's", async () => {
    const messages = await consume(v2);
    // @ts-expect-error v2's status() is a Promise, not an AsyncIterable
    const s: AsyncIterable<V3ConsumerNotification> = messages.status();
    void s;
    // @ts-expect-error v2-shaped messages are not v3's ConsumerMessages
    const cm: V3ConsumerMessages = messages;
    void cm;
  });

  test("a v3 result's status is not v2's", async () => {
    const messages = await consume(v3);
    // @ts-expect-error v3's status() is not a Promise
    const s: Promise<AsyncIterable<V2ConsumerStatus>> = messages.status();
    void s;
  });

  test("unknown options and wrong option types are rejected", () => {
    // @ts-expect-error no such option
    void consume(v3, { max_msgs: 10 });
    // @ts-expect-error max_messages is a number
    void consume(v3, { max_messages: "10" });
    // @ts-expect-error signal is an AbortSignal
    void consume(v3, { signal: {} });
    // @ts-expect-error bind is a boolean
    void consume(v3, { bind: 1 });
    // @ts-expect-error a callback for some other message type
    void consume(v3, { callback: (m: string) => void m });
  });

  test("consume() wants a pull consumer, pullMessages() a connection", () => {
    // @ts-expect-error not a consumer
    void consume({});
    // @ts-expect-error not a connection
    void pullMessages({}, "S", "C");
    // @ts-expect-error next() options: timeout is a number
    void pullMessages(nc3, "S", "C").next({ timeout: "1s" });
  });
});
