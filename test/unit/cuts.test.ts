/**
 * The cut detector (src/cuts.ts): a disconnect while a pull's messages were flowing, followed by
 * a reconnect to the same server process, lowers what may be outstanding; anything else does not.
 */
import { describe, expect, it } from "vitest";
import { CutDetector } from "../../src/cuts.js";
import { nextPull, PullLedger } from "../../src/ledger.js";

/** A drop of `outstanding` 16 KiB messages (well over the 1 MiB max_payload when many). */
function drop(outstanding: number, sending: boolean, serverId: string | undefined) {
  return { outstanding, sending, meanSize: 16 * 1024, maxPayload: 1024 * 1024, serverId };
}

describe("CutDetector", () => {
  it("a cut while messages flow, back on the same server: a quarter of what was outstanding", () => {
    const d = new CutDetector();
    expect(d.cap).toBe(Number.POSITIVE_INFINITY);
    d.disconnected(drop(990, true, "S1"));
    expect(d.reconnected("S1")).toBe(247);
    expect(d.cap).toBe(247);
  });

  it("cuts again: divides again while what was outstanding could overflow the server, never back up", () => {
    const d = new CutDetector();
    for (const [out, cap] of [
      [990, 247],
      [240, 60],
      [65, 16], // 65 x 16 KiB > 1 MiB: still a cut
      [15, 16], // 15 x 16 KiB < 1 MiB (max_pending >= max_payload): cannot have been a cut
      [1000, 16],
    ] as const) {
      d.disconnected(drop(out, true, "S1"));
      d.reconnected("S1");
      expect(d.cap).toBe(cap);
    }
  });

  it("a few small messages outstanding (a proxy cutting light traffic) is never taken for a cut", () => {
    const d = new CutDetector();
    d.disconnected({
      outstanding: 100,
      sending: true,
      meanSize: 200,
      maxPayload: 1 << 20,
      serverId: "S1",
    });
    expect(d.reconnected("S1")).toBeUndefined();
    expect(d.cap).toBe(Number.POSITIVE_INFINITY);
  });

  it("before any message arrived (size unknown), a large pull cut at once counts", () => {
    const d = new CutDetector();
    d.disconnected({
      outstanding: 1000,
      sending: true,
      meanSize: 0,
      maxPayload: 1 << 20,
      serverId: "S1",
    });
    expect(d.reconnected("S1")).toBe(250);
  });

  it("back on another server (a restart, a failover): not a cut", () => {
    const d = new CutDetector();
    d.disconnected(drop(990, true, "S1"));
    expect(d.reconnected("S2")).toBeUndefined();
    expect(d.cap).toBe(Number.POSITIVE_INFINITY);
  });

  it("the server was not sending (an idle consumer waiting on its pull): not a cut", () => {
    const d = new CutDetector();
    d.disconnected(drop(990, false, "S1"));
    expect(d.reconnected("S1")).toBeUndefined();
    expect(d.cap).toBe(Number.POSITIVE_INFINITY);
  });

  it("nothing (or one message) outstanding: not a cut", () => {
    const d = new CutDetector();
    d.disconnected(drop(1, true, "S1"));
    expect(d.reconnected("S1")).toBeUndefined();
    d.disconnected(drop(0, true, "S1"));
    expect(d.reconnected("S1")).toBeUndefined();
  });

  it("a reconnect without a disconnect seen, or without server ids: not a cut", () => {
    const d = new CutDetector();
    expect(d.reconnected("S1")).toBeUndefined();
    d.disconnected(drop(990, true, undefined));
    expect(d.reconnected(undefined)).toBeUndefined();
    expect(d.cap).toBe(Number.POSITIVE_INFINITY);
  });
});

describe("nextPull with a cap after a cut", () => {
  const o = { max_messages: 1000, max_bytes: 0, threshold_messages: 750, threshold_bytes: 0 };

  it("asks for no more than the cap, counting what is already outstanding", () => {
    const ledger = new PullLedger();
    const held = { size: 0, bytes: 0 };
    expect(nextPull(o, held, ledger, 0, 0, 15)).toEqual({ batch: 15, maxBytes: 0 });
    ledger.opened({ id: "a", msgs: 15, bytes: 0, at: 0 });
    // a backlog would allow a second request: not beyond the cap
    expect(nextPull(o, held, ledger, 5000, 0, 15)).toBeUndefined();
    for (let i = 0; i < 10; i++) ledger.received(16_000);
    expect(nextPull(o, { size: 10, bytes: 160_000 }, ledger, 5000, 0, 15)).toEqual({
      batch: 10,
      maxBytes: 0,
    });
  });

  it("without a cut (cap Infinity) the room decides, as before", () => {
    expect(nextPull(o, { size: 0, bytes: 0 }, new PullLedger(), 0)).toEqual({
      batch: 1000,
      maxBytes: 0,
    });
  });
});
