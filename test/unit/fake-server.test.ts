/**
 * The server model of the scripted connection (`nc.jetstream()`, test/unit/fake-nc.ts) on its
 * own: the parts test/integration/differential.test.ts cannot check against a real server
 * (fake timers, when replies reach the subscriptions, flush fences, disconnects, closing,
 * ack_wait), and the library consuming from it.
 */
import { afterEach, describe, expect, it, vi } from "vitest";
import type { MsgLike } from "../../src/connection.js";
import { pullMessages } from "../../src/consume.js";
import { scanAckReply } from "../../src/jsmsg.js";
import { FakeNatsConnection, goDuration, settle, tick } from "./fake-nc.js";

const NS = 1_000_000;
const enc = new TextEncoder();

afterEach(() => {
  vi.useRealTimers();
});

/** Subscribes `subject`; returns what arrives, as short strings ("#3", "408 pm=1"). */
function listen(nc: FakeNatsConnection, subject: string): string[] {
  const seen: string[] = [];
  nc.subscribe(subject, {
    callback: (_err, m: MsgLike) => {
      const code = m.headers?.code ?? 0;
      if (code > 0) {
        const pm = m.headers?.get("Nats-Pending-Messages");
        seen.push(`${code}${pm ? ` pm=${pm}` : ""}`);
      } else {
        seen.push(`#${m.reply?.split(".")[5]}`);
      }
    },
  });
  return seen;
}

function pull(nc: FakeNatsConnection, reply: string, body: Record<string, unknown>): void {
  nc.publish("$JS.API.CONSUMER.MSG.NEXT.S.C", enc.encode(JSON.stringify(body)), { reply });
}

describe("serving pull requests", () => {
  it("serves open requests round robin and expires them on vitest's fake clock", async () => {
    vi.useFakeTimers();
    const nc = new FakeNatsConnection();
    const js = nc.jetstream();
    const a = listen(nc, "_INBOX.a");
    const b = listen(nc, "_INBOX.b");
    pull(nc, "_INBOX.a", { batch: 5, expires: 1000 * NS });
    pull(nc, "_INBOX.b", { batch: 2, expires: 1000 * NS });
    js.publish(6);
    expect(a).toEqual(["#1", "#3", "#5", "#6"]);
    expect(b).toEqual(["#2", "#4"]);
    expect(nc.pulls.map((p) => [p.delivered, p.done])).toEqual([
      [4, false],
      [2, true],
    ]);
    expect(js.waiting.map((w) => [w.reply, w.n])).toEqual([["_INBOX.a", 1]]);

    vi.advanceTimersByTime(999);
    expect(a).toHaveLength(4);
    vi.advanceTimersByTime(1);
    expect(a).toEqual(["#1", "#3", "#5", "#6", "408 pm=1"]);
    expect(b).toEqual(["#2", "#4"]);
    expect(nc.pulls[0]?.done).toBe(true);
    expect(js.waiting).toHaveLength(0);
    // What is left is ack_wait: six messages unacked would be redelivered in 30 s.
    expect(js.numAckPending).toBe(6);
    expect(vi.getTimerCount()).toBe(1);
  });

  it("answers the code under test in a later macrotask, and a flush's PONG comes after", async () => {
    const nc = new FakeNatsConnection();
    const js = nc.jetstream({ clock: "manual" });
    js.publish(2);
    const a = listen(nc, "_INBOX.a");
    pull(nc, "_INBOX.a", { batch: 2, expires: 1000 * NS });
    // The server decided (and logged) at once, but nothing reached the subscription inside publish().
    expect(js.sent.map((s) => s.kind)).toEqual(["data", "data"]);
    expect(a).toEqual([]);
    expect(js.inFlight).toBe(2);
    await nc.flush();
    expect(a).toEqual(["#1", "#2"]);
    expect(js.sent.every((s) => s.delivered === true)).toBe(true);
  });

  it("in flush mode hold, the messages sent before the PONG arrive when the test answers", async () => {
    const nc = new FakeNatsConnection({ flushMode: "hold" });
    const js = nc.jetstream({ clock: "manual" });
    js.publish(1);
    const a = listen(nc, "_INBOX.a");
    pull(nc, "_INBOX.a", { batch: 1, expires: 1000 * NS });
    let ponged = false;
    void nc.flush().then(() => {
      ponged = true;
    });
    expect(a).toEqual([]);
    nc.answerFlushes();
    expect(a).toEqual(["#1"]);
    await settle();
    expect(ponged).toBe(true);
  });

  it("heartbeats a waiting request, resets the interval on data, and says what was delivered last", () => {
    const nc = new FakeNatsConnection();
    const js = nc.jetstream({ clock: "manual" });
    const seen: string[] = [];
    nc.subscribe("_INBOX.h", {
      callback: (_e, m) => {
        const h = m.headers;
        seen.push(
          h?.code === 100
            ? `hb ${h.get("Nats-Last-Consumer")}/${h.get("Nats-Last-Stream")}`
            : h?.code
              ? String(h.code)
              : "data",
        );
      },
    });
    pull(nc, "_INBOX.h", { batch: 5, expires: 2000 * NS, idle_heartbeat: 500 * NS });
    js.advance(500);
    expect(seen).toEqual(["hb 0/0"]);
    js.advance(300); // t=800
    js.publish(1);
    js.advance(400); // t=1200: the interval restarted at 800
    expect(seen).toEqual(["hb 0/0", "data"]);
    js.advance(100); // t=1300
    expect(seen).toEqual(["hb 0/0", "data", "hb 1/1"]);
    js.advance(700); // t=2000: another at 1800, then the 408
    expect(seen).toEqual(["hb 0/0", "data", "hb 1/1", "hb 1/1", "408"]);
  });

  it("drops a request whose inbox lost interest only when it next looks, silently", () => {
    const nc = new FakeNatsConnection();
    const js = nc.jetstream({ clock: "manual" });
    const sub = nc.subscribe("_INBOX.a", { callback: () => {} });
    pull(nc, "_INBOX.a", { batch: 2, expires: 1000 * NS });
    sub.unsubscribe();
    expect(js.waiting).toHaveLength(1);
    js.publish(1);
    expect(js.waiting).toHaveLength(0);
    expect(js.sent).toEqual([]);
    expect(js.numPending).toBe(1);
    expect(nc.pulls[0]?.done).toBe(true);
  });

  it("the expiry race (opt-in): a message published at a request's expiry before the sweep removes it without a 408 and waits for the next request", async () => {
    const nc = new FakeNatsConnection();
    const js = nc.jetstream({ clock: "manual" });
    const a = listen(nc, "_INBOX.a");
    const b = listen(nc, "_INBOX.b");
    pull(nc, "_INBOX.a", { batch: 2, expires: 1000 * NS, idle_heartbeat: 400 * NS });
    expect(js.publishAtExpiry(1, "_INBOX.none")).toBeUndefined();
    expect(js.publishAtExpiry(1)).toBe(js.now() + 1000);
    js.advance(999);
    expect(js.numPending).toBe(0); // not published before the expiry
    js.advance(1);
    expect(a).toEqual(["100", "100"]); // heartbeats at 400 and 800 ms; no 408, no message
    expect(js.waiting).toHaveLength(0);
    expect(nc.pulls[0]?.done).toBe(true);
    expect(js.expiredAtMessage.map((w) => w.reply)).toEqual(["_INBOX.a"]);
    expect(js.numPending).toBe(1);
    pull(nc, "_INBOX.b", { batch: 1, expires: 1000 * NS });
    await nc.flush();
    expect(b).toEqual(["#1"]);
    // Without the race, the sweep at the same deadline comes first: a 408.
    pull(nc, "_INBOX.a", { batch: 1, expires: 1000 * NS });
    js.advance(1000);
    js.publish(1);
    expect(a).toEqual(["100", "100", "408 pm=1"]);
    expect(js.expiredAtMessage).toHaveLength(1);
  });

  it("the expiry race on vitest's fake clock: the message goes to the next request that has not expired", () => {
    vi.useFakeTimers();
    const nc = new FakeNatsConnection();
    const js = nc.jetstream();
    const a = listen(nc, "_INBOX.a");
    const b = listen(nc, "_INBOX.b");
    pull(nc, "_INBOX.a", { batch: 1, expires: 1000 * NS });
    vi.advanceTimersByTime(100);
    pull(nc, "_INBOX.b", { batch: 1, expires: 1000 * NS });
    const at = js.publishAtExpiry([{ data: "late" }]);
    expect(at).toBe(Date.now() + 900);
    vi.advanceTimersByTime(900);
    expect(a).toEqual([]);
    expect(b).toEqual(["#1"]);
    expect(js.expiredAtMessage.map((w) => w.reply)).toEqual(["_INBOX.a"]);
    expect(js.waiting).toHaveLength(0);
    expect(vi.getTimerCount()).toBe(1); // ack_wait of the message b got
    js.dispose();
    expect(vi.getTimerCount()).toBe(0);
  });

  it("refuses what the consumer's limits forbid, without pending headers", () => {
    const nc = new FakeNatsConnection();
    const js = nc.jetstream({
      clock: "manual",
      maxWaiting: 1,
      maxRequestBatch: 10,
      maxRequestExpires: 90_000,
    });
    const seen: string[] = [];
    nc.subscribe("_INBOX.>", {
      callback: (_e, m) => seen.push(`${m.headers?.code} ${m.headers?.description}`),
    });
    pull(nc, "_INBOX.a", { batch: 11, expires: 1000 * NS });
    pull(nc, "_INBOX.b", { batch: 1, expires: 91_000 * NS });
    pull(nc, "_INBOX.c", { batch: 1, expires: 1000 * NS });
    pull(nc, "_INBOX.d", { batch: 1, expires: 1000 * NS });
    js.publish(0);
    expect(seen).toEqual([
      "409 Exceeded MaxRequestBatch of 10",
      "409 Exceeded MaxRequestExpires of 1m30s",
      "409 Exceeded MaxWaiting",
    ]);
    expect(js.sent.filter((s) => s.kind === "status").every((s) => "headers" in s)).toBe(true);
    expect(nc.pulls.map((p) => p.done)).toEqual([true, true, false, true]);
  });

  it("formats durations as Go does", () => {
    expect(
      [0, 500, 1500, 2 * NS, 1500 * NS, 2000 * NS, 90_000 * NS, 3_600_000 * NS].map(goDuration),
    ).toEqual(["0s", "500ns", "1.5µs", "2ms", "1.5s", "2s", "1m30s", "1h0m0s"]);
  });
});

describe("the connection around it", () => {
  it("buffers pulls published while disconnected; requests lose interest while it is down", () => {
    const nc = new FakeNatsConnection();
    const js = nc.jetstream({ clock: "manual" });
    const a = listen(nc, "_INBOX.a");
    pull(nc, "_INBOX.a", { batch: 1, expires: 1000 * NS });
    nc.disconnect();
    pull(nc, "_INBOX.b", { batch: 1, expires: 1000 * NS });
    expect(js.waiting.map((w) => w.reply)).toEqual(["_INBOX.a"]);
    js.publish(1); // a is looked at while the connection is down: gone
    expect(js.waiting).toHaveLength(0);
    const b = listen(nc, "_INBOX.b");
    nc.reconnect(); // the buffered pull reaches the server and takes the message
    expect(js.waiting).toHaveLength(0);
    expect(js.sent.map((s) => s.to)).toEqual(["_INBOX.b"]);
    expect(a).toEqual([]);
    expect(b).toEqual([]); // the answer to a client publish comes in a later macrotask
  });

  it("closing the connection ends every request and leaves no timer", async () => {
    vi.useFakeTimers();
    const nc = new FakeNatsConnection();
    const js = nc.jetstream();
    listen(nc, "_INBOX.a");
    pull(nc, "_INBOX.a", { batch: 3, expires: 5000 * NS, idle_heartbeat: 1000 * NS });
    js.publish(1);
    expect(vi.getTimerCount()).toBe(1);
    await nc.close();
    expect(js.waiting).toHaveLength(0);
    expect(nc.pulls[0]?.done).toBe(true);
    expect(vi.getTimerCount()).toBe(0);
  });
});

describe("acks", () => {
  it("redelivers after ack_wait and after a NAK with a delay, with the delivery count up", () => {
    const nc = new FakeNatsConnection();
    const js = nc.jetstream({ clock: "manual", ackWait: 1000 });
    const replies: string[] = [];
    nc.subscribe("_INBOX.a", { callback: (_e, m) => replies.push(m.reply ?? "") });
    pull(nc, "_INBOX.a", { batch: 10, expires: 10_000 * NS });
    js.publish(2);
    nc.publish(replies[1]!, enc.encode('-NAK {"delay":300000000}'));
    nc.publish(replies[0]!, enc.encode("+WPI"));
    js.advance(300);
    expect(replies.map((r) => r.split(".").slice(4, 7).join("."))).toEqual([
      "1.1.1",
      "1.2.2",
      "2.2.3",
    ]);
    js.advance(700); // #1 was in progress: its ack_wait ends at 1000
    expect(replies.map((r) => r.split(".").slice(4, 7).join("."))).toEqual([
      "1.1.1",
      "1.2.2",
      "2.2.3",
      "2.1.4",
    ]);
    nc.publish(replies[3]!, enc.encode("+ACK"));
    nc.publish(replies[2]!, enc.encode("+TERM"));
    expect(js.numAckPending).toBe(0);
    expect(js.acks.map((a) => a.payload)).toEqual([
      '-NAK {"delay":300000000}',
      "+WPI",
      "+ACK",
      "+TERM",
    ]);
  });

  it("11-token ack subjects parse with the library; headers count in size()", () => {
    const nc = new FakeNatsConnection();
    const js = nc.jetstream({ clock: "manual", ackTokens: 11, domain: "hub" });
    const got: MsgLike[] = [];
    nc.subscribe("_INBOX.a", { callback: (_e, m) => got.push(m) });
    js.publish(["one", { subject: "events.x", data: "two", headers: { "X-K": "v" } }]);
    pull(nc, "_INBOX.a", { batch: 2, expires: 1000 * NS });
    nc.answerFlushes();
    js.deliverOutbox();
    const [m1, m2] = got;
    expect(m1?.reply).toMatch(/^\$JS\.ACK\.hub\.ACCOUNTHASH\.S\.C\.1\.1\.1\.\d{19}\.1$/);
    expect(scanAckReply(m1!.reply!, "S", "C")).toBe(1);
    expect(scanAckReply(m2!.reply!, "S", "C")).toBe(0);
    expect(m1?.size?.()).toBe("events.1".length + m1!.reply!.length + 3);
    const hdr = "NATS/1.0\r\nX-K: v\r\n\r\n".length;
    expect(m2?.size?.()).toBe("events.x".length + m2!.reply!.length + hdr + 3);
    expect(m2?.headers?.get("X-K")).toBe("v");
  });
});

describe("the library over the model", () => {
  it("pullMessages consumes bursts in order with acks, and leaves nothing once closed", async () => {
    vi.useFakeTimers();
    const nc = new FakeNatsConnection();
    const js = nc.jetstream();
    const messages = pullMessages(nc, "S", "C", {
      expires: 2_000,
      idle_heartbeat: 1_000,
      max_messages: 10,
    });
    const seqs: number[] = [];
    const done = (async () => {
      for await (const m of messages) {
        seqs.push(m.seq);
        m.ack();
        if (seqs.length === 95) break;
      }
    })();
    for (let i = 0; i < 40 && seqs.length < 95; i++) {
      js.publish(7);
      await tick(300);
    }
    await done;
    expect(seqs).toEqual(Array.from({ length: 95 }, (_, i) => i + 1));
    await tick(5_000);
    // The library's requests lost interest when it let its inbox go: the model dropped them.
    expect(js.waiting).toHaveLength(0);
    expect(nc.liveSubscriptions).toBe(0);
    // The model may still hold an ack_wait timer (messages the library NAKed on the way out);
    // without it, no timer is left: none of the library's.
    js.dispose();
    expect(vi.getTimerCount()).toBe(0);
  });
});
