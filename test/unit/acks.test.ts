import { describe, expect, it } from "vitest";
import { ACK_HOLD_MAX_MS, AckQueue, IDLE_GENERATIONS } from "../../src/acks.js";
import { pullMessages } from "../../src/consume.js";
import type { JsMsg } from "../../src/jsmsg.js";
import { FakeNatsConnection, settle } from "./fake-nc.js";

const enc = new TextEncoder();
const dec = new TextDecoder();

/** A connection that logs each publish into the shared `actions` log. */
function loggingNc(actions: string[]) {
  return {
    publish(subject: string, payload?: Uint8Array) {
      actions.push(`publish ${subject} ${dec.decode(payload)}`);
    },
  };
}

/** The next task of the event loop: every microtask of this turn has run by then. */
const turnEnd = () => new Promise<void>((resolve) => setTimeout(resolve, 0));

/** Lets `n` generations of the microtask queue pass (a promise chain advances `n` steps). */
async function generations(n: number): Promise<void> {
  for (let i = 0; i < n; i++) await undefined;
}

async function* buffered(n: number): AsyncGenerator<number> {
  for (let i = 1; i <= n; i++) yield i;
}

describe("AckQueue", () => {
  it("acks made in one turn leave together after that turn's microtasks, in order", async () => {
    const actions: string[] = [];
    const acks = new AckQueue(loggingNc(actions));
    // A loop over a buffer runs in one turn: every iteration is a microtask.
    for await (const i of buffered(3)) {
      actions.push(`ack ${i}`);
      acks.send(`A.${i}`, enc.encode("+ACK"));
    }
    actions.push("loop ended");
    expect(acks.size).toBe(3);
    await turnEnd();
    expect(actions).toEqual([
      "ack 1",
      "ack 2",
      "ack 3",
      "loop ended",
      "publish A.1 +ACK",
      "publish A.2 +ACK",
      "publish A.3 +ACK",
    ]);
    expect(acks.size).toBe(0);
  });

  it("they leave before the next task of any kind: timer, immediate, message event", async () => {
    const actions: string[] = [];
    const acks = new AckQueue(loggingNc(actions));
    // Tasks queued before the acks (a browser's are timers and message events).
    const channel = new MessageChannel();
    channel.port1.on("message", () => actions.push("message"));
    channel.port2.postMessage("x");
    setTimeout(() => actions.push("timer"), 0);
    setImmediate(() => actions.push("immediate"));
    // A chain of acks far longer than the idle bound: each ack waits out a few generations.
    for (let i = 1; i <= 40; i++) {
      acks.send(`A.${i}`, enc.encode("+ACK"));
      await generations(3);
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
    channel.port1.close();
    expect(actions.slice(0, 40)).toEqual(
      Array.from({ length: 40 }, (_, i) => `publish A.${i + 1} +ACK`),
    );
    expect([...actions.slice(40)].sort()).toEqual(["immediate", "message", "timer"]);
  });

  it(`acks up to ${IDLE_GENERATIONS} microtask generations apart leave in one batch; a longer gap makes a second batch, still within the turn`, async () => {
    const actions: string[] = [];
    const acks = new AckQueue(loggingNc(actions));
    let timerRan = false;
    setTimeout(() => {
      timerRan = true;
    }, 0);
    acks.send("A.1", enc.encode("+ACK"));
    await generations(IDLE_GENERATIONS - 1);
    acks.send("A.2", enc.encode("+ACK"));
    await generations(IDLE_GENERATIONS - 1);
    expect(actions).toEqual([]);
    await generations(2);
    expect(actions).toEqual(["publish A.1 +ACK", "publish A.2 +ACK"]);
    acks.send("A.3", enc.encode("+ACK"));
    await generations(IDLE_GENERATIONS + 2);
    expect(actions).toEqual(["publish A.1 +ACK", "publish A.2 +ACK", "publish A.3 +ACK"]);
    expect(timerRan).toBe(false);
  });

  it("acks of different turns leave in different batches", async () => {
    const actions: string[] = [];
    const acks = new AckQueue(loggingNc(actions));
    acks.send("A.1", enc.encode("+ACK"));
    await turnEnd();
    actions.push("turn");
    acks.send("A.2", enc.encode("-NAK"));
    await turnEnd();
    expect(actions).toEqual(["publish A.1 +ACK", "turn", "publish A.2 -NAK"]);
  });

  it("the acks of several queues made in one run leave together, each queue's in order", async () => {
    const actions: string[] = [];
    const a = new AckQueue(loggingNc(actions));
    const b = new AckQueue(loggingNc(actions));
    a.send("A.1", enc.encode("+ACK"));
    await generations(3);
    b.send("B.1", enc.encode("+ACK"));
    await generations(3);
    a.send("A.2", enc.encode("+ACK"));
    await generations(IDLE_GENERATIONS - 1);
    expect(actions).toEqual([]);
    await turnEnd();
    expect(actions).toEqual(["publish A.1 +ACK", "publish A.2 +ACK", "publish B.1 +ACK"]);
  });

  it("flush() publishes now; the end of the turn then has nothing left to send", async () => {
    const actions: string[] = [];
    const acks = new AckQueue(loggingNc(actions));
    acks.send("A.1", enc.encode("+ACK"));
    acks.send("A.2", enc.encode("+WPI"));
    acks.flush();
    actions.push("flushed");
    acks.flush();
    await turnEnd();
    expect(actions).toEqual(["publish A.1 +ACK", "publish A.2 +WPI", "flushed"]);
  });

  it("acks queued after an early flush() leave at the end of the same run", async () => {
    const actions: string[] = [];
    const acks = new AckQueue(loggingNc(actions));
    acks.send("A.1", enc.encode("+ACK"));
    acks.flush();
    await generations(2);
    acks.send("A.2", enc.encode("+ACK"));
    expect(actions).toEqual(["publish A.1 +ACK"]);
    await turnEnd();
    expect(actions).toEqual(["publish A.1 +ACK", "publish A.2 +ACK"]);
    expect(acks.size).toBe(0);
  });

  it("a connection that refuses publishes: every ack is tried, none throws, the queue empties", async () => {
    let tried = 0;
    const acks = new AckQueue({
      publish() {
        tried++;
        throw new Error("closed connection");
      },
    });
    acks.send("A.1", enc.encode("+ACK"));
    acks.send("A.2", enc.encode("+ACK"));
    expect(() => acks.flush()).not.toThrow();
    expect(tried).toBe(2);
    expect(acks.size).toBe(0);
    // and at the end of a turn (an exception there would be an uncaught exception)
    acks.send("A.3", enc.encode("+ACK"));
    await turnEnd();
    expect(tried).toBe(3);
  });
});

/**
 * The guarantee the queue exists for, on the real iterator: a loop running over its buffer sends
 * all of its acks in one batch, once it has taken the last buffered message. (A flush per ack,
 * or one per microtask, would publish the first ack before the loop took the second; a flush in
 * a later task would let timers run first.)
 */
describe("acks that must not wait for the run to end", () => {
  it(`a run that computes between acks: the acks waiting for over ${ACK_HOLD_MAX_MS} ms leave at the next generation, not when the run ends`, async () => {
    const actions: string[] = [];
    const acks = new AckQueue(loggingNc(actions));
    acks.send("A.1", enc.encode("+ACK"));
    const until = Date.now() + ACK_HOLD_MAX_MS + 5;
    while (Date.now() < until) {
      // a loop body computing synchronously
    }
    await generations(1);
    expect(actions).toEqual(["publish A.1 +ACK"]);
    // an ack queued after a long computation goes out with the old ones, at once
    acks.send("A.2", enc.encode("+ACK"));
    const until2 = Date.now() + ACK_HOLD_MAX_MS + 5;
    while (Date.now() < until2) {
      // more work, then another ack in the same generation
    }
    acks.send("A.3", enc.encode("+ACK"));
    expect(actions).toEqual(["publish A.1 +ACK", "publish A.2 +ACK", "publish A.3 +ACK"]);
    await turnEnd();
  });

  it("a queue marked direct (its iterator is done) publishes each ack at once, after what was queued", async () => {
    const actions: string[] = [];
    const acks = new AckQueue(loggingNc(actions));
    acks.send("A.1", enc.encode("+ACK"));
    acks.direct = true;
    acks.send("A.2", enc.encode("+ACK"));
    expect(actions).toEqual(["publish A.1 +ACK", "publish A.2 +ACK"]);
    await turnEnd();
    expect(actions).toHaveLength(2);
  });

  it("an iterator that is done: a message it handed out, acked later, is published at once (nc.close() may follow)", async () => {
    const nc = new FakeNatsConnection();
    const messages = pullMessages(nc, "S", "C", { max_messages: 10, expires: 10_000 });
    await settle();
    nc.sendData(nc.pulls[0]!);
    await settle();
    const m = await messages.next();
    await messages.close();
    await expect(messages.closed()).resolves.toBeUndefined();
    const before = nc.published.filter((p) => p.subject.startsWith("$JS.ACK.")).length;
    m.ack();
    expect(nc.published.filter((p) => p.subject.startsWith("$JS.ACK."))).toHaveLength(before + 1);
  });

  it("working() is published at once, after the acks queued before it", async () => {
    const nc = new FakeNatsConnection();
    const messages = pullMessages(nc, "S", "C", { max_messages: 10, expires: 10_000 });
    await settle();
    nc.sendData(nc.pulls[0]!);
    nc.sendData(nc.pulls[0]!);
    await settle();
    const a = await messages.next();
    const b = await messages.next();
    a.ack();
    b.working();
    const sent = nc.published.filter((p) => p.subject.startsWith("$JS.ACK.")).map((p) => p.payload);
    expect(sent).toEqual(["+ACK", "+WPI"]);
    await messages.close();
  });
});

describe("the iterator's loop over its buffer: one batch of acks", () => {
  const N = 50;

  /** Delivers N messages in one go and records the batches their acks leave in. */
  async function run(loop: (messages: ReturnType<typeof pullMessages>, made: () => void) => void) {
    const nc = new FakeNatsConnection();
    const messages = pullMessages(nc, "S", "C", { max_messages: 100, expires: 10_000 });
    await settle();
    let made = 0;
    /** Each batch: the acks the loop had made when it started, and the acks in it. */
    const batches: { madeBefore: number; acks: number }[] = [];
    let open: { madeBefore: number; acks: number } | undefined;
    const publish = nc.publish.bind(nc);
    nc.publish = (subject, payload, opts) => {
      if (subject.startsWith("$JS.ACK.")) {
        if (!open) {
          const batch = { madeBefore: made, acks: 0 };
          open = batch;
          batches.push(batch);
          // Publishes of one synchronous flush share a batch; the next microtask ends it.
          queueMicrotask(() => {
            open = undefined;
          });
        }
        open.acks++;
      }
      publish(subject, payload, opts);
    };
    loop(messages, () => made++);
    await settle();
    const pull = nc.pulls[0]!;
    for (let i = 0; i < N; i++) nc.sendData(pull);
    await turnEnd();
    await messages.close();
    await settle();
    return { batches, made };
  }

  const cases: [string, (ms: ReturnType<typeof pullMessages>, made: () => void) => void][] = [
    [
      "for await, ack in the body",
      (messages, made) =>
        void (async () => {
          for await (const m of messages) {
            m.ack();
            made();
          }
        })(),
    ],
    [
      "for await, an awaited async handler acks",
      (messages, made) => {
        const handle = async (m: JsMsg) => {
          m.ack();
          made();
        };
        void (async () => {
          for await (const m of messages) await handle(m);
        })();
      },
    ],
    [
      "for await over an async generator that wraps the iterator",
      (messages, made) => {
        async function* wrap(src: AsyncIterable<JsMsg>) {
          for await (const m of src) yield m;
        }
        void (async () => {
          for await (const m of wrap(messages)) {
            m.ack();
            made();
          }
        })();
      },
    ],
    [
      "next() in a loop",
      (messages, made) =>
        void (async () => {
          for (;;) {
            const m = await messages.next().catch(() => undefined);
            if (!m) return;
            m.ack();
            made();
          }
        })(),
    ],
  ];

  it.each(cases)("%s", async (_, loop) => {
    const { batches, made } = await run(loop);
    expect(made).toBe(N);
    expect(batches).toEqual([{ madeBefore: N, acks: N }]);
  });

  it("callback mode with an async callback", async () => {
    const nc = new FakeNatsConnection();
    let made = 0;
    const atPublish: number[] = [];
    const publish = nc.publish.bind(nc);
    nc.publish = (subject, payload, opts) => {
      if (subject.startsWith("$JS.ACK.")) atPublish.push(made);
      publish(subject, payload, opts);
    };
    const messages = pullMessages(nc, "S", "C", {
      max_messages: 100,
      expires: 10_000,
      callback: async (m) => {
        await undefined;
        m.ack();
        made++;
      },
    });
    await settle();
    const pull = nc.pulls[0]!;
    for (let i = 0; i < N; i++) nc.sendData(pull);
    await turnEnd();
    expect(atPublish).toEqual(Array(N).fill(N));
    await messages.close();
  });
});
