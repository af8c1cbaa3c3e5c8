/**
 * The one shape the bench drives every contender through. Each contender lives in its own
 * module, imported by the child process on demand, so a child loads only the client it measures
 * (that keeps the peak RSS figures honest).
 */

/** What the loop body touches: `ack()` and the payload. */
export interface BenchMsg {
  ack(): void;
  readonly data: Uint8Array;
}

/** A running consume(): the library's own iterator plus the calls the bench needs. */
export interface BenchIter {
  /** The library's iterator itself (not a wrapper): the loop runs `for await` over it. */
  readonly messages: AsyncIterable<BenchMsg>;
  /** Graceful end: `drain()` for jetstream-iter, `stop()` for nats.js. */
  end(): void;
  /** Messages buffered locally, not yet handed to the loop (`getPending()`). */
  pending(): number;
  /** Resolves once the iterator is fully done. */
  closed(): Promise<unknown>;
}

/** Options beyond `max_messages` that some measurements set (the rest stay at their defaults). */
export interface ConsumeExtra {
  /** `expires` of each pull request, ms (default 30 000). */
  expires?: number;
}

/** A pull consumer looked up on the server (`consumers.get()`), ready to consume. */
export interface BenchConsumer {
  consume(maxMessages: number, extra?: ConsumeExtra): Promise<BenchIter>;
  /**
   * One batch: `fetchMessages()` for jetstream-iter, `fetch()` for nats.js, with
   * `{ max_messages, expires }`. The loop ends when the batch is complete.
   */
  fetch(maxMessages: number, expires: number): Promise<AsyncIterable<BenchMsg>>;
}

/** One connection of the contender's client generation. */
export interface Session {
  /** The name the end call has in this client: `drain()` or `stop()`. */
  readonly endCall: string;
  consumer(stream: string, name: string): Promise<BenchConsumer>;
  /** An ordered consumer of the whole stream (`consumers.get(stream)`); consume() only. */
  ordered(stream: string): Promise<BenchConsumer>;
  flush(): Promise<void>;
  close(): Promise<void>;
}

/** A plain core NATS subscription (the ceiling): no JetStream client code at all. */
export interface CoreSession {
  /**
   * Subscribes to `subject` and counts `count` data messages in a `for await` loop (summing
   * their payload sizes), answering the push consumer's flow-control requests. Calls `onLast`
   * at the last one, before leaving the loop; calls `onData` (when given) with each data
   * message's payload, in the loop body. Resolves the bytes seen.
   */
  receive(
    subject: string,
    count: number,
    onLast: () => void,
    onData?: (data: Uint8Array) => void,
  ): Promise<number>;
  /** Ends a `receive()` that is still waiting (unsubscribes; the loop ends). */
  stop(): void;
  flush(): Promise<void>;
  close(): Promise<void>;
}
