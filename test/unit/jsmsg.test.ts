import { describe, expect, it } from "vitest";
import { AckQueue } from "../../src/acks.js";
import type { MsgLike, NatsConnectionLike } from "../../src/connection.js";
import { ackCounters, ackPrefix, JsMsg, parseAckReply, scanAckReply } from "../../src/jsmsg.js";

/** Ack subjects both parsers refuse, with a word of the reason they give. */
const MALFORMED: [string, string][] = [
  ["_INBOX.abc", "not $JS.ACK"],
  ["$JS.ACK.S.C.1.2.3", "tokens"],
  ["$JS.ACK.S.C.1.2.3.4.5.6", "tokens"],
  ["$JS.ACK.S.C.1.2.3.4.5.", "tokens"],
  ["$JS.ACK.S.C.1.2.3.4.5x", "non-numeric"],
  ["$JS.ACK.S.C.1.2.3.123456789012345678901.5", "non-numeric"],
  ["$JS.ACK.S.C.x.2.3.4.5", "non-numeric"],
  ["$JS.ACK.S.C.1.2.-3.4.5", "non-numeric"],
  ["$JS.ACK.S.C.1..3.4.5", "non-numeric"],
  ["$JS.ACK.S.C.0.2.3.4.5", "delivery count 0"],
];

describe("parseAckReply", () => {
  it("reads the 9-token layout", () => {
    const info = parseAckReply("$JS.ACK.ORDERS.worker.3.120.45.1700000000123456789.7");
    // nats.js v3's fields, in its key order; redeliveryCount is there but not enumerable
    const v3 = {
      domain: "",
      account_hash: "",
      stream: "ORDERS",
      consumer: "worker",
      deliveryCount: 3,
      redelivered: true,
      streamSequence: 120,
      deliverySequence: 45,
      timestampNanos: Number("1700000000123456789"),
      pending: 7,
    };
    expect(info).toStrictEqual(v3);
    expect(Object.keys(info)).toEqual(Object.keys(v3));
    expect((info as { redeliveryCount: number }).redeliveryCount).toBe(3);
    // nats v2's: redeliveryCount is deliveryCount (nats 2.29), after it
    const v2 = parseAckReply("$JS.ACK.ORDERS.worker.3.120.45.1700000000123456789.7", "v2");
    expect(Object.entries(v2)).toEqual(
      Object.entries({
        domain: "",
        account_hash: "",
        stream: "ORDERS",
        consumer: "worker",
        deliveryCount: 3,
        redeliveryCount: 3,
        redelivered: true,
        streamSequence: 120,
        deliverySequence: 45,
        timestampNanos: Number("1700000000123456789"),
        pending: 7,
      }),
    );
    expect(parseAckReply("$JS.ACK.S.C.1.2.3.4.5", "v2")).toMatchObject({
      deliveryCount: 1,
      redeliveryCount: 1,
      redelivered: false,
    });
  });

  it("reads the 11+-token layout with domain, account hash and a trailing token", () => {
    const info = parseAckReply("$JS.ACK.hub.ACCHASH.ORDERS.worker.1.5.6.1700000000000000000.0.tok");
    expect(info).toMatchObject({
      domain: "hub",
      account_hash: "ACCHASH",
      stream: "ORDERS",
      consumer: "worker",
      deliveryCount: 1,
      redelivered: false,
      streamSequence: 5,
      deliverySequence: 6,
      pending: 0,
    });
    expect(parseAckReply("$JS.ACK._.H.S.C.1.5.6.7.0")).toMatchObject({ domain: "", stream: "S" });
  });

  it.each([...MALFORMED, ["$JS.ACK..C.1.2.3.4.5", "non-numeric"]])(
    "rejects %s with a reason",
    (reply, reason) => {
      const r = parseAckReply(reply);
      expect(typeof r).toBe("string");
      expect(r).toContain(reason);
    },
  );
});

function fakeNc(version = "2.9.10") {
  const published: { subject: string; data: string; reply?: string }[] = [];
  const requests: { subject: string; data: string; timeout: number }[] = [];
  const nc = {
    info: { version },
    publish(subject: string, payload?: Uint8Array, opts?: { reply?: string }) {
      published.push({ subject, data: new TextDecoder().decode(payload), reply: opts?.reply });
    },
    request(subject: string, payload?: Uint8Array, opts?: { timeout: number }) {
      requests.push({
        subject,
        data: new TextDecoder().decode(payload),
        timeout: opts?.timeout ?? 0,
      });
      return Promise.resolve({} as MsgLike);
    },
  } as unknown as NatsConnectionLike;
  return { nc, published, requests };
}

function jsMsg(nc: NatsConnectionLike, termReason = false) {
  const reply = "$JS.ACK.S.C.2.10.4.1700000000123456789.0";
  const msg: MsgLike = { subject: "S.x", reply, data: new TextEncoder().encode('{"a":1}'), sid: 7 };
  return new JsMsg(msg, reply, { nc, acks: new AckQueue(nc), ackTimeout: 1234, termReason });
}

/** Lets the acks of this turn leave (they are published once the turn's microtasks are done). */
const turnEnd = () => new Promise<void>((resolve) => setImmediate(resolve));

describe("scanAckReply (the per-message check)", () => {
  it("accepts both layouts for our stream and consumer and returns pending", () => {
    expect(scanAckReply("$JS.ACK.S.C.3.120.45.1700000000123456789.7", "S", "C")).toBe(7);
    expect(scanAckReply("$JS.ACK.hub.HASH.S.C.1.5.6.1700000000000000000.42.tok", "S", "C")).toBe(
      42,
    );
    expect(scanAckReply("$JS.ACK._.HASH.S.C.1.5.6.7.0", "S", "C")).toBe(0);
    // a domain and account hash that look like the stream and consumer: still the 11+ layout
    expect(scanAckReply("$JS.ACK.S.C.S.C.1.2.3.4.5.tok", "S", "C")).toBe(5);
    // the timestamp's 19 digits do not spill into pending
    expect(scanAckReply("$JS.ACK.S.C.1.2.3.99999999999999999999.8", "S", "C")).toBe(8);
  });

  it.each([
    ...MALFORMED,
    ["$JS.ACK.S.OTHER.1.2.3.4.5", "another stream or consumer"],
    ["$JS.ACK.SS.C.1.2.3.4.5", "another stream or consumer"],
    ["$JS.ACK.d.h.S.CC.1.2.3.4.5", "another stream or consumer"],
  ])("rejects %s with a reason", (reply, reason) => {
    const r = scanAckReply(reply, "S", "C");
    expect(typeof r).toBe("string");
    expect(r).toContain(reason);
  });

  it("agrees with parseAckReply on what it accepts", () => {
    for (const reply of [
      "$JS.ACK.S.C.3.120.45.1700000000123456789.7",
      "$JS.ACK.hub.HASH.S.C.1.5.6.1700000000000000000.42.tok",
    ]) {
      const info = parseAckReply(reply);
      expect(typeof info).toBe("object");
      expect(scanAckReply(reply, "S", "C")).toBe((info as { pending: number }).pending);
    }
  });
});

describe("scanAckReply's counters (what the ordered consumer reads per message)", () => {
  it.each([
    ["9 tokens", "$JS.ACK.S.C.3.120.45.1700000000123456789.7"],
    [
      "11 tokens (domain, account hash)",
      "$JS.ACK.hub.HASH.S.C.2.9007199254740991.44.1700000000000000000.0",
    ],
    ["11 tokens, no domain", "$JS.ACK._.HASH.S.C.1.5.6.7.123456"],
    ["12 tokens (a random token)", "$JS.ACK.hub.HASH.S.C.4.77.12.1700000000000000000.42.tok"],
    ["stream and consumer named like counters", "$JS.ACK.1.2.S.C.1.2.3.4.5.6"],
  ])("reads every counter of %s as parseAckReply does", (_layout, reply) => {
    const info = parseAckReply(reply);
    if (typeof info === "string") throw new Error(info);
    const out = ackCounters();
    expect(scanAckReply(reply, "S", "C", out)).toBe(info.pending);
    expect(out).toEqual({
      deliveryCount: info.deliveryCount,
      streamSequence: info.streamSequence,
      deliverySequence: info.deliverySequence,
      pending: info.pending,
    });
    // the same with the prefix made once by the caller, as delivery does
    const again = ackCounters();
    expect(scanAckReply(reply, "S", "C", again, ackPrefix("S", "C"))).toBe(info.pending);
    expect(again).toEqual(out);
  });

  it("the prefix names the stream and consumer whole", () => {
    expect(ackPrefix("S", "C")).toBe("$JS.ACK.S.C.");
    // "$JS.ACK.S.C" is a prefix of "$JS.ACK.S.CC…" as a string but not as tokens
    expect(
      scanAckReply("$JS.ACK.S.CC.1.2.3.4.5", "S", "C", ackCounters(), "$JS.ACK.S.C."),
    ).toContain("another stream or consumer");
    expect(
      scanAckReply("$JS.ACK.SS.C.1.2.3.4.5", "S", "C", ackCounters(), "$JS.ACK.S.C."),
    ).toContain("another stream or consumer");
  });

  it("reads exact values in the 9-token layout", () => {
    const out = ackCounters();
    expect(scanAckReply("$JS.ACK.S.C.3.120.45.1700000000123456789.7", "S", "C", out)).toBe(7);
    expect(out).toEqual({
      deliveryCount: 3,
      streamSequence: 120,
      deliverySequence: 45,
      pending: 7,
    });
    // the record is reused: a second message overwrites every counter
    expect(scanAckReply("$JS.ACK.hub.H.S.C.1.121.46.1.6.x", "S", "C", out)).toBe(6);
    expect(out).toEqual({
      deliveryCount: 1,
      streamSequence: 121,
      deliverySequence: 46,
      pending: 6,
    });
  });

  it.each([
    ...MALFORMED,
    ["$JS.ACK.S.C.1.2.3.4", "tokens"],
    ["$JS.ACK.d.h.S.C.1.2.3.4", "tokens"],
    ["$JS.ACK.d.h.S.C.1.2.x.4.5", "non-numeric"],
    ["$JS.ACK.d.h.S.C.0.2.3.4.5", "delivery count 0"],
    ["$JS.ACK.S.C.1.2.3.4.5 ", "non-numeric"],
    ["", "not $JS.ACK"],
    ["$JS.ACK.", "tokens"],
    ["$JS.ACK.S.C.1.2.3.4.5.6.7.8.9", "another stream or consumer"],
  ])("rejects %s with a reason and does not throw", (reply, reason) => {
    const out = ackCounters();
    let r: number | string = 0;
    expect(() => {
      r = scanAckReply(reply, "S", "C", out);
    }).not.toThrow();
    expect(typeof r).toBe("string");
    expect(r).toContain(reason);
  });
});

describe("JsMsg", () => {
  it("seq is the scanned stream sequence when given one, else the subject's", () => {
    const nc = fakeNc().nc;
    const target = { nc, acks: new AckQueue(nc), ackTimeout: 1000, termReason: true };
    const reply = "$JS.ACK.S.C.1.120.45.1700000000123456789.0";
    const msg: MsgLike = { subject: "S.x", reply, data: new Uint8Array(), sid: 1 };
    expect(new JsMsg(msg, reply, target).seq).toBe(120);
    expect(new JsMsg(msg, reply, target, 120).seq).toBe(120);
  });

  it("exposes payload, sequence, redelivery and timestamps", () => {
    const { nc } = fakeNc();
    const m = jsMsg(nc);
    expect(m.subject).toBe("S.x");
    expect(m.string()).toBe('{"a":1}');
    expect(m.json<{ a: number }>()).toEqual({ a: 1 });
    expect(m.seq).toBe(10);
    expect(m.sid).toBe(7);
    expect(m.redelivered).toBe(true);
    expect(m.timestampNanos).toBe(1700000000123456789n);
    expect(m.time.getTime()).toBe(1700000000123);
    expect(m.timestamp).toBe(new Date(1700000000123).toISOString());
  });

  it("sends only the first terminal ack", async () => {
    const { nc, published } = fakeNc();
    const m = jsMsg(nc);
    m.working();
    expect(published.map((p) => p.data)).toEqual(["+WPI"]); // working() is sent at once
    m.ack();
    m.nak();
    m.term();
    m.working();
    expect(published).toHaveLength(1); // the ack waits for the end of the run
    await turnEnd();
    expect(published.map((p) => p.data)).toEqual(["+WPI", "+ACK"]);
    expect(published.every((p) => p.subject === m.reply)).toBe(true);
  });

  it("nak(delay) sends the delay in nanoseconds", async () => {
    const { nc, published } = fakeNc();
    jsMsg(nc).nak(1500);
    await turnEnd();
    expect(published[0]?.data).toBe('-NAK {"delay":1500000000}');
  });

  it("nak(millis) < 0 is a plain -NAK (nats.js would send a negative delay)", async () => {
    const { nc, published } = fakeNc();
    jsMsg(nc).nak(0);
    jsMsg(nc).nak(-5);
    jsMsg(nc).nak(0.0000004);
    await turnEnd();
    expect(published.map((p) => p.data)).toEqual(["-NAK", "-NAK", '-NAK {"delay":0}']);
  });

  it("term(reason) sends plain +TERM to 2.9 servers and the reason to newer ones", async () => {
    const old = fakeNc("2.9.10");
    jsMsg(old.nc, false).term("bad payload");
    await turnEnd();
    expect(old.published[0]?.data).toBe("+TERM");
    const recent = fakeNc("2.10.4");
    jsMsg(recent.nc, true).term("bad payload");
    await turnEnd();
    expect(recent.published[0]?.data).toBe("+TERM bad payload");
  });

  it("next() acks and asks for more on the given inbox", async () => {
    const { nc, published } = fakeNc();
    const m = jsMsg(nc);
    m.next("_INBOX.x", { batch: 5 });
    m.ack();
    await turnEnd();
    expect(published).toEqual([
      { subject: m.reply, data: '+NXT {"batch":5,"no_wait":false}', reply: "_INBOX.x" },
    ]);
  });

  it("next() sends what nats.js sends: batch, no_wait, expires in nanoseconds", async () => {
    const { nc, published } = fakeNc();
    jsMsg(nc).next("_INBOX.x", { batch: 3, expires: 5_000, no_wait: true, max_bytes: 9 });
    jsMsg(nc).next("_INBOX.x");
    jsMsg(nc).next("");
    await turnEnd();
    expect(published.map((p) => [p.data, p.reply])).toEqual([
      ['+NXT {"batch":3,"no_wait":true,"expires":5000000000}', "_INBOX.x"],
      ['+NXT {"batch":1,"no_wait":false}', "_INBOX.x"],
      ['+NXT {"batch":1,"no_wait":false}', undefined],
    ]);
  });

  it("json() and string() are the connection's nats.js Msg's when it has them", () => {
    const { nc } = fakeNc();
    const own = jsMsg(nc);
    expect(own.json()).toEqual({ a: 1 }); // a bare MsgLike: parsed here
    expect(own.string()).toBe('{"a":1}');
    const natsErr = Object.assign(new Error("Bad JSON"), { name: "NatsError", code: "BAD_JSON" });
    const msg = {
      subject: "S.x",
      reply: "$JS.ACK.S.C.1.2.3.4.5",
      data: new Uint8Array(),
      sid: 1,
      json: () => {
        throw natsErr;
      },
      string: () => "from nats.js",
    };
    const m = new JsMsg(msg, msg.reply, {
      nc,
      acks: new AckQueue(nc),
      ackTimeout: 1,
      termReason: false,
    });
    expect(() => m.json()).toThrow(natsErr);
    expect(m.string()).toBe("from nats.js");
  });

  it("ackAck() requests +ACK with the timeout, resolves true once and false after", async () => {
    const { nc, requests, published } = fakeNc();
    const m = jsMsg(nc);
    await expect(m.ackAck()).resolves.toBe(true);
    await expect(m.ackAck({ timeout: 10 })).resolves.toBe(false);
    m.ack();
    await turnEnd();
    expect(requests).toEqual([{ subject: m.reply, data: "+ACK", timeout: 1234 }]);
    expect(published).toEqual([]);
  });

  it("ackAck() and next() send the acks queued before them first", async () => {
    const { nc, requests, published } = fakeNc();
    const order: string[] = [];
    const logged = {
      ...nc,
      publish: (s: string, p?: Uint8Array, o?: { reply?: string }) => {
        order.push(`publish ${new TextDecoder().decode(p)}`);
        nc.publish(s, p, o);
      },
      request: (s: string, p?: Uint8Array, o?: { timeout: number }) => {
        order.push(`request ${new TextDecoder().decode(p)}`);
        return nc.request(s, p, o);
      },
    } as NatsConnectionLike;
    const a = jsMsg(logged);
    a.working();
    await a.ackAck();
    const b = jsMsg(logged);
    b.working();
    b.next("_INBOX.y");
    expect(order).toEqual([
      "publish +WPI",
      "request +ACK",
      "publish +WPI",
      'publish +NXT {"batch":1,"no_wait":false}',
    ]);
    expect(requests).toHaveLength(1);
    expect(published).toHaveLength(3);
  });

  it("an ack on a closed connection does not throw", async () => {
    const nc = {
      publish() {
        throw new Error("closed");
      },
    } as unknown as NatsConnectionLike;
    const m = jsMsg(nc);
    expect(() => m.ack()).not.toThrow();
    expect(m.isAcked).toBe(true);
    await turnEnd();
  });
});
