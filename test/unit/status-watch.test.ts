/**
 * One nats.js status() iterator per connection serves every iterator on it (connection.ts
 * onConnectionStatus). These tests drive it with nats.js's own queued iterator, as status()
 * returns it, so that what "queued" means is the real thing.
 */
import { QueuedIteratorImpl } from "@nats-io/nats-core/internal";
import { describe, expect, it } from "vitest";
import {
  type ConnectionStatusLike,
  type NatsConnectionLike,
  onConnectionStatus,
} from "../../src/connection.js";

function statusConnection() {
  const iters: QueuedIteratorImpl<ConnectionStatusLike>[] = [];
  const nc = {
    status() {
      const it = new QueuedIteratorImpl<ConnectionStatusLike>();
      iters.push(it);
      return it;
    },
  } as unknown as NatsConnectionLike;
  const emit = (type: string) => {
    for (const it of iters) it.push({ type } as ConnectionStatusLike);
  };
  return { nc, iters, emit };
}

const settle = async () => {
  for (let i = 0; i < 20; i++) await undefined;
};

describe("onConnectionStatus", () => {
  it("a status queued before a listener joined is not heard by it (a new iterator does not re-pull for an old reconnect); the others hear it", async () => {
    const { nc, iters, emit } = statusConnection();
    const a: string[] = [];
    const b: string[] = [];
    const offA = onConnectionStatus(nc, (s) => a.push(s.type));
    await settle();
    emit("reconnect"); // queued, not yet handed to the listeners
    const offB = onConnectionStatus(nc, (s) => b.push(s.type));
    await settle();
    expect(a).toEqual(["reconnect"]);
    expect(b).toEqual([]);
    emit("disconnect");
    await settle();
    expect(a).toEqual(["reconnect", "disconnect"]);
    expect(b).toEqual(["disconnect"]);
    expect(iters).toHaveLength(1); // shared
    offA();
    offB();
  });

  it("the last listener leaving stops the shared iterator; the next one gets a new one", async () => {
    const { nc, iters, emit } = statusConnection();
    const seen: string[] = [];
    const off = onConnectionStatus(nc, () => {});
    off();
    expect(iters[0]?.done).toBe(true);
    const off2 = onConnectionStatus(nc, (s) => seen.push(s.type));
    expect(iters).toHaveLength(2);
    emit("reconnect");
    await settle();
    expect(seen).toEqual(["reconnect"]);
    off2();
  });
});
