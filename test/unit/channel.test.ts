import { describe, expect, it, vi } from "vitest";
import { Channel, type End, isEnd } from "../../src/channel.js";

function recorder<T>() {
  const got: (T | End)[] = [];
  const waiter = vi.fn((item: T | End) => {
    got.push(item);
  });
  return { got, waiter };
}

describe("Channel", () => {
  describe("order", () => {
    it("hands items out in the order they were pushed", () => {
      const ch = new Channel<number>();
      for (const n of [1, 2, 3]) expect(ch.push(n)).toBe(true);
      expect(ch.size).toBe(3);
      expect([ch.tryTake(), ch.tryTake(), ch.tryTake()]).toEqual([1, 2, 3]);
      expect(ch.tryTake()).toBeUndefined();
      expect(ch.size).toBe(0);
    });

    it("serves waiters oldest first, synchronously, once each", () => {
      const ch = new Channel<string>();
      const a = recorder<string>();
      const b = recorder<string>();
      ch.take(a.waiter);
      ch.take(b.waiter);
      expect(a.waiter).not.toHaveBeenCalled();
      ch.push("x");
      expect(a.got).toEqual(["x"]);
      expect(b.waiter).not.toHaveBeenCalled();
      ch.push("y");
      expect(b.got).toEqual(["y"]);
      ch.push("z");
      expect(a.waiter).toHaveBeenCalledTimes(1);
      expect(b.waiter).toHaveBeenCalledTimes(1);
      expect(ch.size).toBe(1);
      expect(ch.tryTake()).toBe("z");
    });

    it("take() with an item ready calls the waiter at once and does not keep it", () => {
      const ch = new Channel<number>();
      ch.push(7);
      const a = recorder<number>();
      expect(ch.take(a.waiter)).toBe(a.waiter);
      expect(a.got).toEqual([7]);
      ch.push(8);
      expect(a.waiter).toHaveBeenCalledTimes(1);
      expect(ch.size).toBe(1);
    });

    it("keeps order across the internal compaction of a long queue", () => {
      const ch = new Channel<number>();
      for (let i = 0; i < 3000; i++) ch.push(i, 1);
      const out: number[] = [];
      for (let i = 0; i < 2000; i++) out.push(ch.tryTake() as number);
      for (let i = 3000; i < 3500; i++) ch.push(i, 1);
      expect(ch.size).toBe(1500);
      expect(ch.bytes).toBe(1500);
      let v = ch.tryTake();
      while (v !== undefined) {
        out.push(v as number);
        v = ch.tryTake();
      }
      expect(out).toEqual(Array.from({ length: 3500 }, (_, i) => i));
      expect(ch.bytes).toBe(0);
    });

    it("accounts weights (bytes) of the items waiting", () => {
      const ch = new Channel<string>();
      ch.push("a", 10);
      ch.push("b", 5);
      ch.push("c");
      expect(ch.bytes).toBe(15);
      ch.tryTake();
      expect(ch.bytes).toBe(5);
      ch.tryTake();
      ch.tryTake();
      expect(ch.bytes).toBe(0);
    });
  });

  describe("end item", () => {
    it("comes after every item pushed before close, then forever", () => {
      const ch = new Channel<number>();
      ch.push(1);
      ch.push(2);
      const err = new Error("boom");
      expect(ch.close(err)).toBe(true);
      expect(ch.closed).toBe(true);
      expect(ch.size).toBe(2);
      expect(ch.tryTake()).toBe(1);
      expect(ch.tryTake()).toBe(2);
      const end = ch.tryTake();
      expect(isEnd(end)).toBe(true);
      expect((end as End).error).toBe(err);
      expect(ch.tryTake()).toBe(end);
      const a = recorder<number>();
      ch.take(a.waiter);
      expect(a.got).toEqual([end]);
    });

    it("is handed to every waiter when closed while they wait", () => {
      const ch = new Channel<number>();
      const a = recorder<number>();
      const b = recorder<number>();
      ch.take(a.waiter);
      ch.take(b.waiter);
      ch.close(undefined);
      expect(a.got).toHaveLength(1);
      expect(b.got).toHaveLength(1);
      expect(isEnd(a.got[0])).toBe(true);
      expect((a.got[0] as End).error).toBeUndefined();
      // served waiters are gone: a later push (refused) reaches nobody
      expect(ch.push(1)).toBe(false);
      expect(a.waiter).toHaveBeenCalledTimes(1);
    });

    it("close is idempotent: the first error stays, later calls return false", () => {
      const onEmpty = vi.fn();
      const ch = new Channel<number>(undefined, onEmpty);
      const first = new Error("first");
      expect(ch.close(first)).toBe(true);
      expect(ch.close(new Error("second"))).toBe(false);
      expect(ch.close(undefined)).toBe(false);
      expect((ch.tryTake() as End).error).toBe(first);
      expect(onEmpty).toHaveBeenCalledTimes(1);
    });

    it("push after close is refused and keeps nothing (the caller still owns the item)", () => {
      const onTake = vi.fn();
      const ch = new Channel<number>(onTake);
      ch.close(undefined);
      expect(ch.push(1, 10)).toBe(false);
      expect(ch.size).toBe(0);
      expect(ch.bytes).toBe(0);
      expect(onTake).not.toHaveBeenCalled();
      expect(isEnd(ch.tryTake())).toBe(true);
    });

    it("isEnd recognises only end items", () => {
      expect(isEnd({ end: true, error: undefined })).toBe(true);
      expect(isEnd(undefined)).toBe(false);
      expect(isEnd(null)).toBe(false);
      expect(isEnd({ end: "true" })).toBe(false);
      expect(isEnd(1)).toBe(false);
    });
  });

  describe("cancel-safety", () => {
    it("a cancelled waiter never receives an item; the item goes to the next waiter", () => {
      const ch = new Channel<number>();
      const a = recorder<number>();
      const b = recorder<number>();
      ch.take(a.waiter);
      ch.take(b.waiter);
      expect(ch.cancel(a.waiter)).toBe(true);
      ch.push(1);
      expect(a.waiter).not.toHaveBeenCalled();
      expect(b.got).toEqual([1]);
    });

    it("an item pushed with every waiter cancelled stays in the channel", () => {
      const ch = new Channel<number>();
      const a = recorder<number>();
      ch.take(a.waiter);
      expect(ch.cancel(a.waiter)).toBe(true);
      ch.push(1);
      expect(a.waiter).not.toHaveBeenCalled();
      expect(ch.size).toBe(1);
      expect(ch.tryTake()).toBe(1);
    });

    it("a cancelled waiter does not get the end item either", () => {
      const ch = new Channel<number>();
      const a = recorder<number>();
      ch.take(a.waiter);
      ch.cancel(a.waiter);
      ch.close(undefined);
      expect(a.waiter).not.toHaveBeenCalled();
    });

    it("cancel of a waiter already served (or unknown) returns false and changes nothing", () => {
      const ch = new Channel<number>();
      const a = recorder<number>();
      ch.take(a.waiter);
      ch.push(1);
      expect(ch.cancel(a.waiter)).toBe(false);
      expect(ch.cancel(() => {})).toBe(false);
      ch.push(2);
      expect(ch.size).toBe(1);
      expect(a.waiter).toHaveBeenCalledTimes(1);
    });

    it("cancelling one of two registrations of the same function removes only one", () => {
      const ch = new Channel<number>();
      const a = recorder<number>();
      ch.take(a.waiter);
      ch.take(a.waiter);
      expect(ch.cancel(a.waiter)).toBe(true);
      ch.push(1);
      ch.push(2);
      expect(a.got).toEqual([1]);
      expect(ch.size).toBe(1);
    });
  });

  describe("discard", () => {
    it("returns every waiting item in order and empties the channel without onTake", () => {
      const onTake = vi.fn();
      const onEmpty = vi.fn();
      const ch = new Channel<number>(onTake, onEmpty);
      ch.push(1, 3);
      ch.push(2, 4);
      ch.push(3, 5);
      ch.tryTake();
      onTake.mockClear();
      expect(ch.discard()).toEqual([2, 3]);
      expect(ch.size).toBe(0);
      expect(ch.bytes).toBe(0);
      expect(onTake).not.toHaveBeenCalled();
      // still open: not "empty after end"
      expect(onEmpty).not.toHaveBeenCalled();
      expect(ch.tryTake()).toBeUndefined();
      ch.push(4);
      expect(ch.tryTake()).toBe(4);
    });

    it("on a closed channel makes it empty: onEmptyAfterEnd once, then the end item", () => {
      const onEmpty = vi.fn();
      const ch = new Channel<number>(undefined, onEmpty);
      ch.push(1);
      ch.push(2);
      ch.close(undefined);
      expect(onEmpty).not.toHaveBeenCalled();
      expect(ch.discard()).toEqual([1, 2]);
      expect(onEmpty).toHaveBeenCalledTimes(1);
      expect(ch.discard()).toEqual([]);
      expect(isEnd(ch.tryTake())).toBe(true);
      expect(onEmpty).toHaveBeenCalledTimes(1);
    });

    it("of an empty channel returns [] and calls nothing", () => {
      const onTake = vi.fn();
      const onEmpty = vi.fn();
      const ch = new Channel<number>(onTake, onEmpty);
      expect(ch.discard()).toEqual([]);
      ch.close(undefined);
      expect(onEmpty).toHaveBeenCalledTimes(1);
      expect(ch.discard()).toEqual([]);
      expect(onEmpty).toHaveBeenCalledTimes(1);
      expect(onTake).not.toHaveBeenCalled();
    });
  });

  describe("onTake", () => {
    it("is called with the item and its weight when taken with tryTake", () => {
      const onTake = vi.fn();
      const ch = new Channel<string>(onTake);
      ch.push("a", 11);
      expect(onTake).not.toHaveBeenCalled();
      ch.tryTake();
      expect(onTake).toHaveBeenCalledTimes(1);
      expect(onTake).toHaveBeenCalledWith("a", 11);
    });

    it("is called when an item is handed straight to a waiter, before the waiter runs", () => {
      const calls: string[] = [];
      const ch = new Channel<string>((item, w) => calls.push(`take ${item} ${w}`));
      ch.take((item) => calls.push(`waiter ${isEnd(item) ? "end" : item}`));
      ch.push("a", 2);
      expect(calls).toEqual(["take a 2", "waiter a"]);
      // and the item has left: size and bytes are already 0 when onTake runs
    });

    it("sees the channel without the item (size and bytes already reduced)", () => {
      const seen: { size: number; bytes: number }[] = [];
      const ch: Channel<string> = new Channel<string>(() =>
        seen.push({ size: ch.size, bytes: ch.bytes }),
      );
      ch.push("a", 5);
      ch.push("b", 7);
      ch.tryTake();
      ch.take(() => {});
      expect(seen).toEqual([
        { size: 1, bytes: 7 },
        { size: 0, bytes: 0 },
      ]);
    });

    it("is never called for the end item, a refused push or a discard", () => {
      const onTake = vi.fn();
      const ch = new Channel<number>(onTake);
      ch.push(1);
      ch.discard();
      ch.close(undefined);
      ch.push(2);
      ch.tryTake();
      ch.take(() => {});
      expect(onTake).not.toHaveBeenCalled();
    });
  });

  describe("onEmptyAfterEnd", () => {
    it("is called by close() when the channel is already empty", () => {
      const onEmpty = vi.fn();
      const ch = new Channel<number>(undefined, onEmpty);
      ch.close(undefined);
      expect(onEmpty).toHaveBeenCalledTimes(1);
    });

    it("is called when the last item is taken after close, not before", () => {
      const onEmpty = vi.fn();
      const ch = new Channel<number>(undefined, onEmpty);
      ch.push(1);
      ch.push(2);
      ch.tryTake(); // taken while open: not after end
      ch.push(3);
      ch.close(undefined);
      expect(onEmpty).not.toHaveBeenCalled();
      ch.tryTake();
      expect(onEmpty).not.toHaveBeenCalled();
      ch.take(() => {});
      expect(onEmpty).toHaveBeenCalledTimes(1);
      ch.tryTake();
      ch.take(() => {});
      expect(onEmpty).toHaveBeenCalledTimes(1);
    });

    it("is not called when an open channel becomes empty", () => {
      const onEmpty = vi.fn();
      const ch = new Channel<number>(undefined, onEmpty);
      ch.push(1);
      ch.tryTake();
      ch.take(() => {});
      ch.push(2);
      expect(onEmpty).not.toHaveBeenCalled();
    });

    it("runs after the end item was handed to the waiters (close with waiters)", () => {
      const calls: string[] = [];
      const ch = new Channel<number>(undefined, () => calls.push("empty"));
      ch.take(() => calls.push("waiter"));
      ch.close(undefined);
      expect(calls).toEqual(["waiter", "empty"]);
    });
  });

  describe("onEnd", () => {
    it("runs each time the end item is handed out, before the taker gets it, and never for values", () => {
      const calls: string[] = [];
      const ch = new Channel<number>(undefined, undefined, () => calls.push("end"));
      ch.take((item) => calls.push(isEnd(item) ? "waiter got end" : `waiter got ${item}`));
      ch.push(1);
      ch.take((item) => calls.push(isEnd(item) ? "waiter got end" : `waiter got ${item}`));
      ch.close(undefined);
      ch.tryTake();
      ch.take(() => calls.push("late waiter got end"));
      expect(calls).toEqual([
        "waiter got 1",
        "end",
        "waiter got end",
        "end",
        "end",
        "late waiter got end",
      ]);
    });

    it("does not run while items remain before the end", () => {
      const onEnd = vi.fn();
      const ch = new Channel<number>(undefined, undefined, onEnd);
      ch.push(1);
      ch.close(undefined);
      expect(ch.tryTake()).toBe(1);
      expect(onEnd).not.toHaveBeenCalled();
      expect(isEnd(ch.tryTake())).toBe(true);
      expect(onEnd).toHaveBeenCalledTimes(1);
    });
  });

  describe("an end held back until its error is known", () => {
    it("a take while held waits; release hands it the end with the error given meanwhile", () => {
      const ch = new Channel<number>();
      ch.push(1);
      ch.close(undefined);
      ch.hold();
      expect(ch.tryTake()).toBe(1);
      expect(ch.tryTake()).toBeUndefined();
      const got: (number | End)[] = [];
      ch.take((i) => got.push(i));
      expect(got).toEqual([]);
      const err = new Error("lost");
      expect(ch.fail(err)).toBe(true);
      ch.release();
      expect(got).toHaveLength(1);
      expect(isEnd(got[0]) && (got[0] as End).error).toBe(err);
      // once handed out, the end's error no longer changes, and holding does nothing
      expect(ch.fail(new Error("later"))).toBe(false);
      ch.hold();
      expect(isEnd(ch.tryTake())).toBe(true);
    });

    it("release without waiters leaves the end for the next take; release is idempotent", () => {
      const ch = new Channel<number>();
      ch.close(undefined);
      ch.hold();
      ch.release();
      ch.release();
      expect(isEnd(ch.tryTake())).toBe(true);
    });
  });
});
