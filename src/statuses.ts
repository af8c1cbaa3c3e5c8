/**
 * What a status message on a pull request's reply subject means: a pure mapping from the code
 * and description (compared case-insensitively) to what the engine does. It mirrors the fault
 * table in docs/design.md; the descriptions are nats-server's (2.9.10 server/consumer.go).
 */

export type StatusAction =
  /** 100 Idle Heartbeat: the request is alive. */
  | { kind: "heartbeat" }
  /**
   * The request is over and the server says what it still had (`Nats-Pending-*`): 408 Request
   * Timeout / Interest Expired, 404 No Messages, and 409 Message Size Exceeds MaxBytes
   * (`tooLarge`: the next message does not fit what the request has left).
   */
  | { kind: "ended"; tooLarge: boolean }
  /**
   * Refused before anything was delivered: 409 Exceeded MaxWaiting / MaxRequestBatch /
   * MaxRequestExpires / MaxRequestMaxBytes (limits of the consumer; `maxWaiting` is contention
   * with other clients, the rest is configuration).
   */
  | { kind: "limit"; maxWaiting: boolean }
  /** 409 Leadership Change: the request was open on a consumer leader that is gone. */
  | { kind: "leadership" }
  /** 409 Consumer Deleted. */
  | { kind: "deleted" }
  /** 503: nobody answered the pull subject; the request went nowhere. */
  | { kind: "no_responders" }
  /** 400 Bad Request, 409 Consumer is Push Based: no retry can fix it. */
  | { kind: "terminal" }
  /** Anything else: a `debug` notification, and nothing changes. */
  | { kind: "unknown" };

export function classifyStatus(code: number, description: string): StatusAction {
  const d = description.toLowerCase();
  switch (code) {
    case 100:
      return d.startsWith("idle heartbeat") ? { kind: "heartbeat" } : { kind: "unknown" };
    case 404:
    case 408:
      return { kind: "ended", tooLarge: false };
    case 409:
      if (d.startsWith("message size exceeds maxbytes")) return { kind: "ended", tooLarge: true };
      if (d.startsWith("exceeded max")) {
        return { kind: "limit", maxWaiting: d.startsWith("exceeded maxwaiting") };
      }
      if (d === "leadership change") return { kind: "leadership" };
      if (d === "consumer deleted") return { kind: "deleted" };
      if (d.startsWith("consumer is push based")) return { kind: "terminal" };
      return { kind: "unknown" };
    case 400:
      return { kind: "terminal" };
    case 503:
      return { kind: "no_responders" };
    default:
      return { kind: "unknown" };
  }
}
