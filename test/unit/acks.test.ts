import { describe, expect, it } from "vitest";
import { AckQueue } from "../../src/acks.js";

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

const turnEnd = () => new Promise<void>((resolve) => setImmediate(resolve));

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

  it("they leave before the next timer or I/O callback of the process runs", async () => {
    const actions: string[] = [];
    const acks = new AckQueue(loggingNc(actions));
    setTimeout(() => actions.push("timer"), 0);
    setImmediate(() => actions.push("immediate"));
    acks.send("A.1", enc.encode("+ACK"));
    await new Promise((resolve) => setTimeout(resolve, 5));
    expect(actions[0]).toBe("publish A.1 +ACK");
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
