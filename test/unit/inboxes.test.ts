/**
 * The inbox generations (src/inboxes.ts) on their own, over the scripted connection: what is
 * subscribed, retired and let go.
 */
import { describe, expect, it } from "vitest";
import { type InboxEvents, Inboxes } from "../../src/inboxes.js";
import { FakeNatsConnection } from "./fake-nc.js";

const events: InboxEvents = { message: () => {}, closedByConnection: () => {} };

describe("Inboxes", () => {
  it("life on the current generation lets every retired one go, also when each goes at once (no fence)", () => {
    const nc = new FakeNatsConnection();
    // Fence 0: letting a generation go unsubscribes it and forgets it synchronously, while
    // releaseRetired() is still going through the generations.
    const inboxes = new Inboxes(nc, "_INBOX.t", events, 0, 60_000);
    inboxes.open();
    inboxes.replace("retire");
    inboxes.replace("retire");
    expect(inboxes.size).toBe(3);
    inboxes.releaseRetired();
    expect(inboxes.size).toBe(1);
    expect(inboxes.current?.inbox).toBe("_INBOX.t.3");
    void inboxes.closeAll(0);
    expect(inboxes.size).toBe(0);
  });

  it("each generation listens on <base>.<gen>.* and its inbox is <base>.<gen>", () => {
    const nc = new FakeNatsConnection();
    const inboxes = new Inboxes(nc, "_INBOX.t", events, 0, 60_000);
    const g1 = inboxes.open();
    inboxes.replace("drop");
    expect(g1.inbox).toBe("_INBOX.t.1");
    expect(g1.sub?.getSubject()).toBe("_INBOX.t.1.*");
    expect(inboxes.current?.sub?.getSubject()).toBe("_INBOX.t.2.*");
    expect(inboxes.size).toBe(1); // dropped at once: no fence
  });
});
