/**
 * The status mapping (src/statuses.ts): every row of the fault table in docs/design.md, with the
 * descriptions nats-server 2.9.10 sends, compared case-insensitively.
 */
import { describe, expect, it } from "vitest";
import { classifyStatus } from "../../src/statuses.js";

describe("status mapping", () => {
  it.each([
    [100, "Idle Heartbeat", { kind: "heartbeat" }],
    [100, "FlowControl Request", { kind: "unknown" }],
    [408, "Request Timeout", { kind: "ended", tooLarge: false }],
    [408, "Interest Expired", { kind: "ended", tooLarge: false }],
    [404, "No Messages", { kind: "ended", tooLarge: false }],
    [409, "Message Size Exceeds MaxBytes", { kind: "ended", tooLarge: true }],
    [409, "Exceeded MaxWaiting", { kind: "limit", maxWaiting: true }],
    [409, "Exceeded MaxRequestBatch of 10", { kind: "limit", maxWaiting: false }],
    [409, "Exceeded MaxRequestExpires of 1s", { kind: "limit", maxWaiting: false }],
    [409, "Exceeded MaxRequestMaxBytes of 100", { kind: "limit", maxWaiting: false }],
    [409, "Leadership Change", { kind: "leadership" }],
    [409, "Consumer Deleted", { kind: "deleted" }],
    [409, "Consumer is push based", { kind: "terminal" }],
    [409, "Server Shutdown", { kind: "unknown" }],
    [400, "Bad Request - invalid json", { kind: "terminal" }],
    [503, "", { kind: "no_responders" }],
    [418, "Whatever", { kind: "unknown" }],
  ] as const)("%i %s", (code, description, expected) => {
    expect(classifyStatus(code, description)).toEqual(expected);
    expect(classifyStatus(code, description.toUpperCase())).toEqual(expected);
  });
});
