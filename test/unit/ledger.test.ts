/**
 * The pull ledger (src/ledger.ts) on its own: totals that never depend on which request a data
 * message answered, released exactly by the statuses that end requests.
 */
import { describe, expect, it } from "vitest";
import { PullLedger } from "../../src/ledger.js";

function ledgerWith(...reqs: [id: string, msgs: number, bytes?: number][]): PullLedger {
  const l = new PullLedger();
  for (const [id, msgs, bytes] of reqs) l.opened({ id, msgs, bytes: bytes ?? 0, at: 0 });
  return l;
}

describe("pull ledger", () => {
  it("opening requests adds their batch; data takes one off whichever request it answered", () => {
    const l = ledgerWith(["A", 5], ["B", 2]);
    expect(l.outstandingMessages).toBe(7);
    expect(l.received(10)).toBe(true);
    expect(l.outstandingMessages).toBe(6);
    expect(l.openRequests).toBe(2);
  });

  it("served round robin (A5, B2, 6 messages: A gets m1 m3 m5 m6, B m2 m4): A's 408 with pending 1 releases exactly 1, nothing is left", () => {
    const l = ledgerWith(["A", 5], ["B", 2]);
    for (let i = 0; i < 6; i++) expect(l.received(1)).toBe(true);
    // B completed silently on the server; the ledger still lists both, with 1 outstanding
    expect(l.outstandingMessages).toBe(1);
    expect(l.ended("A", 1, 0)).toEqual({ messagesLeft: 1, bytesLeft: 0 });
    expect(l.outstandingMessages).toBe(0);
    expect(l.openRequests).toBe(0);
  });

  it("the same six messages, B's status never comes (it completed): a 408 of the other request is never 'unknown'", () => {
    // the FIFO assumption would have attributed m1..m5 to A and m6 to B, then ignored A's 408
    const l = ledgerWith(["A", 5], ["B", 2]);
    for (let i = 0; i < 6; i++) l.received(1);
    expect(l.has("A")).toBe(true);
    expect(l.ended("A", 1, 0)).not.toBe("unknown");
  });

  it("when nothing is outstanding, every request is complete and is forgotten", () => {
    const l = ledgerWith(["A", 2], ["B", 1]);
    l.received(1);
    l.received(1);
    expect(l.openRequests).toBe(2);
    l.received(1);
    expect(l.openRequests).toBe(0);
    expect(l.ended("A", 0, 0)).toBe("unknown");
  });

  it("data beyond what is outstanding is refused (the caller NAKs it), and changes nothing", () => {
    const l = ledgerWith(["A", 1]);
    expect(l.received(1)).toBe(true);
    expect(l.received(1)).toBe(false);
    expect(l.outstandingMessages).toBe(0);
  });

  it("a status without pending headers beside other open requests is ambiguous; alone it releases everything", () => {
    const l = ledgerWith(["A", 3], ["B", 3]);
    l.received(1);
    expect(l.ended("A", undefined, undefined)).toBe("ambiguous");
    const single = ledgerWith(["A", 3]);
    single.received(1);
    expect(single.ended("A", undefined, undefined)).toEqual({ messagesLeft: 3, bytesLeft: 0 });
    expect(single.outstandingMessages).toBe(0);
  });

  it("a refusal releases the whole batch of the refused request and keeps the others", () => {
    const l = ledgerWith(["A", 4], ["B", 3]);
    l.received(1);
    expect(l.refused("B")).toBe(true);
    expect(l.outstandingMessages).toBe(3);
    expect(l.refused("B")).toBe(false);
    expect(l.openRequests).toBe(1);
  });

  it("a refusal that leaves nothing outstanding forgets the requests that completed without a word", () => {
    const l = ledgerWith(["A", 2], ["B", 1]);
    l.received(1);
    l.received(1); // A complete on the server (no status comes for it); B waits
    expect(l.outstandingMessages).toBe(1);
    expect(l.refused("B")).toBe(true);
    expect(l.openRequests).toBe(0);
    expect(l.has("A")).toBe(false);
  });

  it("pending headers larger than the request's batch release no more than the batch", () => {
    const l = ledgerWith(["A", 2], ["B", 3]);
    expect(l.ended("A", 99, 0)).toEqual({ messagesLeft: 2, bytesLeft: 0 });
    expect(l.outstandingMessages).toBe(3);
  });

  it("max_bytes: one request; its bytes used up exactly ends it though messages remain", () => {
    const l = ledgerWith(["A", 10, 100]);
    expect(l.outstandingBytes).toBe(100);
    l.received(60);
    expect(l.outstandingBytes).toBe(40);
    expect(l.openRequests).toBe(1);
    l.received(40);
    expect(l.openRequests).toBe(0);
    expect(l.outstandingMessages).toBe(0);
    expect(l.outstandingBytes).toBe(0);
  });

  it("max_bytes: 409 Message Size Exceeds MaxBytes releases what the server says was left", () => {
    const l = ledgerWith(["A", 10, 100]);
    l.received(30);
    expect(l.ended("A", 9, 70)).toEqual({ messagesLeft: 9, bytesLeft: 70 });
    expect(l.outstandingBytes).toBe(0);
    expect(l.outstandingMessages).toBe(0);
  });

  it("reset forgets every request", () => {
    const l = ledgerWith(["A", 10], ["B", 5]);
    l.reset();
    expect(l.outstandingMessages).toBe(0);
    expect(l.openRequests).toBe(0);
    expect(l.has("A")).toBe(false);
  });

  it("never under-counts: random round-robin service and statuses keep outstanding ≥ what the server may still send", () => {
    // A small model of nats-server's waitQueue (pop moves a request that wants more to the back).
    let seed = 7;
    const rand = (n: number) => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed % n;
    };
    for (let run = 0; run < 500; run++) {
      const l = new PullLedger();
      const queue: { id: string; n: number }[] = [];
      let next = 0;
      for (let step = 0; step < 40; step++) {
        const op = rand(4);
        if (op === 0 && queue.length < 3) {
          const id = `R${next++}`;
          const n = 1 + rand(5);
          queue.push({ id, n });
          l.opened({ id, msgs: n, bytes: 0, at: 0 });
        } else if (op === 1 && queue.length > 0) {
          const head = queue.shift() as { id: string; n: number };
          head.n--;
          expect(l.received(1)).toBe(true);
          if (head.n > 0) queue.push(head);
        } else if (op === 2 && queue.length > 0) {
          const i = rand(queue.length);
          const [r] = queue.splice(i, 1);
          if (r) expect(l.ended(r.id, r.n, 0)).not.toBe("unknown");
        }
        const truth = queue.reduce((s, r) => s + r.n, 0);
        expect(l.outstandingMessages).toBe(truth);
      }
    }
  });
});
