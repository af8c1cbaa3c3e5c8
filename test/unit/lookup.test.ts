/**
 * The consumer lookup (src/lookup.ts) on its own, over the scripted connection: an urgent check
 * (after a reconnect) must not wait for an ordinary lookup already under way.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { ConsumerLookup, type LookupResult } from "../../src/lookup.js";
import { FakeNatsConnection, settle, tick } from "./fake-nc.js";

beforeEach(() => {
  vi.useFakeTimers();
});

afterEach(() => {
  vi.clearAllTimers();
  vi.useRealTimers();
});

function lookup(nc: FakeNatsConnection) {
  const answers: { result: LookupResult; afterOutage: boolean }[] = [];
  const l = new ConsumerLookup({
    nc,
    subject: () => "$JS.API.CONSUMER.INFO.S.C",
    timeout: 5_000,
    interval: 3_750,
    retry: () => true,
    answered: (result, afterOutage) => answers.push({ result, afterOutage }),
  });
  return { l, answers };
}

describe("consumer lookup", () => {
  it("an urgent check while an ordinary request is out: a new request at once with the short timeout; the superseded one's answer is ignored", async () => {
    const nc = new FakeNatsConnection();
    nc.requestHandler = () => "hold";
    const { l, answers } = lookup(nc);
    l.check();
    expect(nc.requests.map((r) => r.timeout)).toEqual([5_000]);
    l.check(true);
    expect(nc.requests.map((r) => r.timeout)).toEqual([5_000, 1_000]);
    // the superseded one answers first, "consumer not found": ignored, the urgent one still out
    const [superseded] = nc.heldRequests.splice(0, 1);
    superseded?.settle(
      JSON.stringify({ error: { code: 404, err_code: 10014, description: "consumer not found" } }),
    );
    await settle();
    expect(answers).toEqual([]);
    l.check();
    expect(nc.requests).toHaveLength(2);
    nc.answerHeldRequests("{}");
    await settle();
    expect(answers).toEqual([{ result: "exists", afterOutage: false }]);
    l.cancel();
  });

  it("an urgent check during the pause after an unanswered request (an outage): asks at once, not after the pause", async () => {
    const nc = new FakeNatsConnection();
    let answer: string | Error = "{}";
    nc.requestHandler = () => answer;
    const { l, answers } = lookup(nc);
    l.check();
    await settle();
    expect(answers).toHaveLength(1); // lookups work on this connection
    answer = new Error("TIMEOUT");
    l.check();
    await settle();
    expect(nc.requests).toHaveLength(2);
    // unanswered: the next request would wait 3,750 ms
    answer = "{}";
    l.check(true);
    expect(nc.requests).toHaveLength(3);
    expect(nc.requests[2]?.timeout).toBe(1_000);
    await settle();
    expect(answers.at(-1)).toEqual({ result: "exists", afterOutage: true });
    await tick(10_000);
    expect(nc.requests).toHaveLength(3);
    l.cancel();
  });

  it("an urgent check while an urgent request is out: nothing more (no second request)", async () => {
    const nc = new FakeNatsConnection();
    nc.requestHandler = () => "hold";
    const { l } = lookup(nc);
    l.check(true);
    l.check(true);
    expect(nc.requests).toHaveLength(1);
    l.cancel();
  });

  it("an API slower than the urgent timeout: after 5 urgent requests unanswered in a row, the ordinary timeout again", async () => {
    const nc = new FakeNatsConnection();
    let answer: string | Error = "{}";
    nc.requestHandler = () => answer;
    const { l } = lookup(nc);
    l.check();
    await settle(); // answered once: lookups work here
    answer = new Error("TIMEOUT");
    l.check(true);
    for (let i = 0; i < 10; i++) await tick(250);
    await tick(4_000); // the ordinary pause before the next
    const timeouts = nc.requests.slice(1).map((r) => r.timeout);
    expect(timeouts.slice(0, 5)).toEqual([1_000, 1_000, 1_000, 1_000, 1_000]);
    expect(timeouts[5]).toBe(5_000);
    l.cancel();
  });
});
