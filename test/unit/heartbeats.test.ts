/**
 * The heartbeat monitor (src/heartbeats.ts) under fake timers: counts as nats.js does (2, 3, 4,
 * … once per interval while the silence lasts), resets on life, and leaves no timer behind.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { HeartbeatMonitor } from "../../src/heartbeats.js";

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

describe("heartbeat monitor", () => {
  it("reports 2 after two silent intervals, then 3, 4 at each further one", () => {
    const counts: number[] = [];
    const m = new HeartbeatMonitor(1_000, (n) => counts.push(n));
    m.watch(true);
    vi.advanceTimersByTime(1_999);
    expect(counts).toEqual([]);
    vi.advanceTimersByTime(1);
    expect(counts).toEqual([2]);
    vi.advanceTimersByTime(2_000);
    expect(counts).toEqual([2, 3, 4]);
    m.watch(false);
  });

  it("life resets the count: the next report is 2 again, two intervals later", () => {
    const counts: number[] = [];
    const m = new HeartbeatMonitor(1_000, (n) => counts.push(n));
    m.watch(true);
    vi.advanceTimersByTime(3_000);
    expect(counts).toEqual([2, 3]);
    m.alive();
    expect(m.missedCount).toBe(0);
    vi.advanceTimersByTime(1_999);
    expect(counts).toEqual([2, 3]);
    vi.advanceTimersByTime(1);
    expect(counts).toEqual([2, 3, 2]);
    m.watch(false);
  });

  it("regular life: never reports", () => {
    const onMissed = vi.fn();
    const m = new HeartbeatMonitor(500, onMissed);
    m.watch(true);
    for (let i = 0; i < 20; i++) {
      vi.advanceTimersByTime(400);
      m.alive();
    }
    expect(onMissed).not.toHaveBeenCalled();
    m.watch(false);
  });

  it("watch(false) clears its timer; watching again counts the silence from then", () => {
    const counts: number[] = [];
    const m = new HeartbeatMonitor(1_000, (n) => counts.push(n));
    m.watch(true);
    vi.advanceTimersByTime(1_500);
    m.watch(false);
    expect(vi.getTimerCount()).toBe(0);
    vi.advanceTimersByTime(10_000);
    expect(counts).toEqual([]);
    m.watch(true);
    m.watch(true); // idempotent: one timer
    expect(vi.getTimerCount()).toBe(1);
    vi.advanceTimersByTime(2_000);
    expect(counts).toEqual([2]);
    m.watch(false);
    expect(vi.getTimerCount()).toBe(0);
  });

  it("lifeCount changes with every sign of life (a token to compare across an await)", () => {
    const m = new HeartbeatMonitor(1_000, () => {});
    const before = m.lifeCount;
    m.alive();
    expect(m.lifeCount).not.toBe(before);
  });
});
