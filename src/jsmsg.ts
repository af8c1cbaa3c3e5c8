/**
 * JsMsg: a JetStream message as the library hands it out, with acks and the delivery info
 * parsed from its `$JS.ACK…` reply subject. Satisfies the `JsMsg` of nats.js v3 and v2.
 */
import type { AckQueue } from "./acks.js";
import type { HeadersLike, MsgLike, NatsConnectionLike } from "./connection.js";

/** Which nats.js generation a message imitates: its `info` has that generation's fields. */
export type JsMsgFlavor = "v3" | "v2";

/**
 * Delivery info parsed from the ack reply subject (nats.js's `DeliveryInfo`), with the fields,
 * values and key order of the generation in use: `@nats-io/jetstream` 3.4 has no
 * `redeliveryCount`; `nats` 2.29 has it, equal to `deliveryCount` (1 on the first delivery).
 */
export interface DeliveryInfo {
  /** JetStream domain, "" when none. */
  domain: string;
  /** Account hash: "" with the 9-token subject layout (as nats.js has it). */
  account_hash?: string;
  stream: string;
  consumer: string;
  /** Times this message has been delivered, this delivery included (1 = first). */
  deliveryCount: number;
  /**
   * As nats 2.29 has it: equal to `deliveryCount` (so 1 on the first delivery, despite the
   * name). nats v2's field; `@nats-io/jetstream` (v3) has none, so for a v3 consumer it is
   * present but not enumerable: the info's keys, JSON and deep equality are v3's.
   */
  redeliveryCount: number;
  redelivered: boolean;
  streamSequence: number;
  deliverySequence: number;
  /** Stream timestamp in nanoseconds since the epoch (as a Number, so not exact; see `timestampNanos`). */
  timestampNanos: number;
  /** Messages still pending for the consumer after this one. */
  pending: number;
}

/** Pull options of `JsMsg.next()` (nats.js's `PullOptions`). */
export interface NextPullOptions {
  batch: number;
  max_bytes: number;
  expires: number;
  idle_heartbeat: number;
  no_wait: boolean;
}

const enc = new TextEncoder();
const dec = new TextDecoder();
const ACK = enc.encode("+ACK");
const NAK = enc.encode("-NAK");
const WPI = enc.encode("+WPI");
const TERM = enc.encode("+TERM");

/** Why an inbox message is not a JetStream message of ours; undefined when it is. */
export type ReplyProblem = string;

/**
 * Parses a `$JS.ACK…` reply subject. Returns the info, or a string saying what is wrong.
 * Layouts: 9 tokens `$JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<dseq>.<ts>.<pending>`,
 * or 11+ `$JS.ACK.<domain>.<hash>.<stream>.<consumer>.<delivered>.<sseq>.<dseq>.<ts>.<pending>[.<token>…]`.
 * The result has the fields and key order of `flavor`'s nats.js (see {@link DeliveryInfo}).
 */
export function parseAckReply(
  reply: string,
  flavor: JsMsgFlavor = "v3",
): DeliveryInfo | ReplyProblem {
  if (!reply.startsWith("$JS.ACK.")) return "reply subject is not $JS.ACK";
  const t = reply.split(".");
  let i: number;
  let domain = "";
  let account_hash = "";
  if (t.length === 9) {
    i = 2;
  } else if (t.length >= 11) {
    domain = t[2] === "_" ? "" : (t[2] ?? "");
    account_hash = t[3] ?? "";
    i = 4;
  } else {
    return `ack subject has ${t.length} tokens (want 9 or 11+)`;
  }
  const stream = t[i] ?? "";
  const consumer = t[i + 1] ?? "";
  const n = [t[i + 2], t[i + 3], t[i + 4], t[i + 5], t[i + 6]].map(parseUint);
  if (!stream || !consumer || n.some((x) => x < 0)) return "ack subject has a non-numeric field";
  const [delivered, sseq, dseq, ts, pending] = n as [number, number, number, number, number];
  if (delivered < 1) return "ack subject has delivery count 0";
  // Key order as nats.js builds it, so that logs and snapshots of the two read the same.
  const head = { domain, account_hash, stream, consumer, deliveryCount: delivered };
  const tail = {
    redelivered: delivered > 1,
    streamSequence: sseq,
    deliverySequence: dseq,
    timestampNanos: ts,
    pending,
  };
  if (flavor === "v2") return { ...head, redeliveryCount: delivered, ...tail };
  const info = { ...head, ...tail } as DeliveryInfo;
  Object.defineProperty(info, "redeliveryCount", {
    value: delivered,
    enumerable: false,
    writable: true,
    configurable: true,
  });
  return info;
}

/** Decimal digits only → the number; anything else → -1. */
function parseUint(s: string | undefined): number {
  if (!s || s.length > 20) return -1;
  for (let k = 0; k < s.length; k++) {
    const c = s.charCodeAt(k);
    if (c < 48 || c > 57) return -1;
  }
  return Number(s);
}

const DOT = 46;

/**
 * The counters of an ack subject as {@link scanAckReply} read them. The caller passes one record
 * and reuses it for every message, so that the per-message path allocates nothing (an ordered
 * consumer needs the sequences of every message; building `DeliveryInfo` for that cost a third
 * of its CPU). Only valid when the scan returned a number.
 */
export interface AckCounters {
  deliveryCount: number;
  streamSequence: number;
  deliverySequence: number;
  pending: number;
}

/** A record for {@link scanAckReply} to fill. */
export function ackCounters(): AckCounters {
  return { deliveryCount: 0, streamSequence: 0, deliverySequence: 0, pending: 0 };
}

/** Notes counter `field` (0 delivered, 1 stream seq, 2 consumer seq, 3 timestamp, 4 pending). */
function note(out: AckCounters | undefined, field: number, value: number): void {
  if (out === undefined) return;
  if (field === 0) out.deliveryCount = value;
  else if (field === 1) out.streamSequence = value;
  else if (field === 2) out.deliverySequence = value;
  else if (field === 4) out.pending = value;
}

/** `$JS.ACK.<stream>.<consumer>.`: how the 9-token ack subjects of `consumer`'s messages start. */
export function ackPrefix(stream: string, consumer: string): string {
  return `$JS.ACK.${stream}.${consumer}.`;
}

/**
 * Checks a `$JS.ACK…` reply subject on the per-message path without allocating: the layout,
 * that it names `stream`/`consumer`, and that the five counters are decimal numbers with a
 * delivery count of at least 1. Returns the `pending` counter, or a string saying what is wrong;
 * when it returns a number and `out` is given, `out` holds the counters. `prefix` is
 * {@link ackPrefix}`(stream, consumer)`, made once by a caller that scans many messages.
 * (`parseAckReply` builds the full `DeliveryInfo`, lazily, when a message's `info` is read.)
 */
export function scanAckReply(
  reply: string,
  stream: string,
  consumer: string,
  out?: AckCounters,
  prefix = ackPrefix(stream, consumer),
): number | string {
  // The common case in one pass: `$JS.ACK.<stream>.<consumer>.<five counters>`, nothing after.
  // (One startsWith of the whole prefix: a profile of ordered replay found three, for the
  // pieces, the dearest part of the scan.)
  if (reply.startsWith(prefix)) {
    const pending = scanCounters(reply, prefix.length, out);
    if (pending >= 0) return pending;
  }
  return scanAckReplySlowly(reply, stream, consumer, out);
}

/**
 * The five counters of a 9-token ack subject, from `i` to the end of `reply`: the `pending`
 * counter, or -1 if they are not five decimal numbers ending the subject with a delivery count
 * of at least 1 (then the full check says why).
 */
function scanCounters(reply: string, i: number, out: AckCounters | undefined): number {
  let value = 0;
  for (let field = 0; field < 5; field++) {
    const start = i;
    value = 0;
    for (; i < reply.length; i++) {
      const c = reply.charCodeAt(i) - 48;
      if (c < 0 || c > 9) break;
      value = value * 10 + c;
    }
    if (i === start || i - start > 20) return -1;
    if (field === 0 && value < 1) return -1;
    note(out, field, value);
    if (field < 4) {
      if (reply.charCodeAt(i) !== DOT) return -1;
      i++;
    }
  }
  return i === reply.length ? value : -1;
}

/** Every layout (JetStream domains too), and the reason when the subject is not usable. */
function scanAckReplySlowly(
  reply: string,
  stream: string,
  consumer: string,
  out: AckCounters | undefined,
): number | string {
  if (!reply.startsWith("$JS.ACK.")) return "reply subject is not $JS.ACK";
  let tokens = 1;
  for (let i = 0; i < reply.length; i++) if (reply.charCodeAt(i) === DOT) tokens++;
  let pos: number; // start of the stream token
  if (tokens === 9) {
    pos = 8;
  } else if (tokens >= 11) {
    pos = reply.indexOf(".", reply.indexOf(".", 8) + 1) + 1; // skip domain and account hash
  } else {
    return `ack subject has ${tokens} tokens (want 9 or 11+)`;
  }
  if (
    !reply.startsWith(stream, pos) ||
    reply.charCodeAt(pos + stream.length) !== DOT ||
    !reply.startsWith(consumer, pos + stream.length + 1) ||
    reply.charCodeAt(pos + stream.length + 1 + consumer.length) !== DOT
  ) {
    return "ack subject is for another stream or consumer";
  }
  // five counters: delivered, stream seq, consumer seq, timestamp, pending
  let i = pos + stream.length + consumer.length + 2;
  let value = 0;
  for (let field = 0; field < 5; field++) {
    value = 0;
    const start = i;
    while (i < reply.length && reply.charCodeAt(i) !== DOT) {
      const c = reply.charCodeAt(i) - 48;
      if (c < 0 || c > 9) return "ack subject has a non-numeric field";
      value = value * 10 + c;
      i++;
    }
    if (i === start || i - start > 20) return "ack subject has a non-numeric field";
    if (field === 0 && value < 1) return "ack subject has delivery count 0";
    note(out, field, value);
    i++;
  }
  return value;
}

/** What a JsMsg needs from the iterator that made it. */
export interface AckTarget {
  readonly nc: NatsConnectionLike;
  /** Where fire-and-forget acks go: published together at the end of the run (acks.ts). */
  readonly acks: AckQueue;
  /** Default timeout of `ackAck()`, milliseconds. */
  readonly ackTimeout: number;
  /** Whether `+TERM <reason>` is understood (nats-server >= 2.10). */
  readonly termReason: boolean;
  /** Whose `DeliveryInfo` shape `info` has (default "v3"). */
  readonly flavor?: JsMsgFlavor;
}

export class JsMsg {
  /** Set once a terminal ack (ack, nak, term, next) was sent: later ones are not sent. */
  private acked = false;
  private parsed: DeliveryInfo | undefined;

  /**
   * @param reply the `$JS.ACK…` subject acks are published to, already checked with
   * `scanAckReply` (or `parseAckReply`)
   * @param streamSequence its stream sequence, when the scan already read it: `seq` then needs no
   * parse of the subject (the ordered consumer reads it for every message it hands out)
   */
  constructor(
    private readonly msg: MsgLike,
    readonly reply: string,
    private readonly target: AckTarget,
    private readonly streamSequence?: number,
  ) {}

  /** Delivery info parsed from the ack subject (on first read). */
  get info(): DeliveryInfo {
    if (this.parsed) return this.parsed;
    const info = parseAckReply(this.reply, this.target.flavor);
    if (typeof info === "string") throw new TypeError(`JsMsg: ${info}: ${this.reply}`);
    this.parsed = info;
    return info;
  }

  get subject(): string {
    return this.msg.subject;
  }
  get data(): Uint8Array {
    return this.msg.data;
  }
  /** The headers, as the connection's nats.js parsed them; undefined when there are none. */
  get headers(): HeadersLike | undefined {
    return this.msg.headers;
  }
  get sid(): number {
    return this.msg.sid;
  }
  /** Stream sequence. */
  get seq(): number {
    return this.streamSequence ?? this.info.streamSequence;
  }
  get redelivered(): boolean {
    return this.info.redelivered;
  }
  /** Stream timestamp, exact, in nanoseconds since the epoch. */
  get timestampNanos(): bigint {
    const tokens = this.reply.split(".");
    const ts = tokens[tokens.length === 9 ? 7 : 9];
    return BigInt(ts ?? 0);
  }
  /** Stream timestamp as a Date (millisecond precision). */
  get time(): Date {
    return new Date(Number(this.timestampNanos / 1_000_000n));
  }
  /** Stream timestamp as an ISO-8601 string. */
  get timestamp(): string {
    return this.time.toISOString();
  }

  /** The payload as UTF-8 text. */
  string(): string {
    const m = this.msg as MsgLike & { string?(): string };
    return typeof m.string === "function" ? m.string() : dec.decode(this.msg.data);
  }
  /**
   * The payload parsed as JSON. Throws if it is not JSON, what the connection's nats.js throws
   * there (v3: a `SyntaxError`; v2: a `NatsError` with code `BAD_JSON`).
   */
  json<T = unknown>(): T {
    const m = this.msg as MsgLike & { json?(): unknown };
    if (typeof m.json === "function") return m.json() as T;
    return JSON.parse(this.string()) as T;
  }

  /**
   * Acknowledges the message. Only the first terminal ack is sent; never throws. Like every
   * fire-and-forget ack here, it is published once the run of microtasks it was made in is done
   * (before the next timer or I/O callback), together with the other acks of that run
   * (docs/design.md, "Acks"); `ackAck()` confirms.
   */
  ack(): void {
    this.terminal(ACK);
  }

  /** Asks for redelivery, after `millis` milliseconds if given. Terminal; never throws. */
  nak(millis?: number): void {
    if (millis !== undefined && millis > 0) {
      this.terminal(enc.encode(`-NAK ${JSON.stringify({ delay: Math.round(millis * 1e6) })}`));
    } else {
      this.terminal(NAK);
    }
  }

  /**
   * Tells the server the message is still being worked on (resets ack_wait). Repeatable. Sent at
   * once (with the acks queued before it), not batched: it is called from long work, where the
   * run of microtasks may not end soon.
   */
  working(): void {
    if (this.acked) return;
    this.send(WPI);
    this.target.acks.flush();
  }

  /**
   * Stops redelivery of this message. `reason` is sent only to servers that understand it
   * (>= 2.10; 2.9 would treat `+TERM <reason>` as no ack at all). Terminal; never throws.
   */
  term(reason?: string): void {
    if (reason && this.target.termReason) this.terminal(enc.encode(`+TERM ${reason}`));
    else this.terminal(TERM);
  }

  /**
   * Acks this message and asks for more to be delivered to `subj` (nats.js `next()`). The request
   * carries what nats.js sends: `batch` (default 1), `no_wait`, and `expires` (milliseconds,
   * sent as nanoseconds) when positive; other options are not sent, as in nats.js. Terminal:
   * unlike nats.js, a later `ack()` is not sent.
   */
  next(subj: string, opts: Partial<NextPullOptions> = { batch: 1 }): void {
    if (this.acked) return;
    this.acked = true;
    const body: { batch: number; no_wait: boolean; expires?: number } = {
      batch: opts.batch || 1,
      no_wait: opts.no_wait || false,
    };
    if (opts.expires && opts.expires > 0) body.expires = opts.expires * 1_000_000;
    this.target.acks.flush();
    try {
      this.target.nc.publish(
        this.reply,
        enc.encode(`+NXT ${JSON.stringify(body)}`),
        subj ? { reply: subj } : undefined,
      );
    } catch {
      // connection closed: the server redelivers after ack_wait
    }
  }

  /**
   * Acks and waits for the server to confirm. Resolves true once confirmed, false when a terminal
   * ack was already sent (nothing is sent again). Rejects if no confirmation arrives within
   * `timeout` ms (default: the JetStream API timeout) or the connection is closed.
   */
  async ackAck(opts: { timeout?: number } = {}): Promise<boolean> {
    if (this.acked) return false;
    this.acked = true;
    // Earlier acks (a working() of this message, say) go first.
    this.target.acks.flush();
    await this.target.nc.request(this.reply, ACK, {
      // as nats.js: 0 (or none) means the default
      timeout: opts.timeout || this.target.ackTimeout,
    });
    return true;
  }

  /** True once a terminal ack was sent. */
  get isAcked(): boolean {
    return this.acked;
  }

  private terminal(payload: Uint8Array): void {
    if (this.acked) return;
    this.acked = true;
    this.send(payload);
  }

  private send(payload: Uint8Array): void {
    this.target.acks.send(this.reply, payload);
  }
}
