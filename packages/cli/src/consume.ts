/**
 * `jetstream-iter consume`: tail an existing durable pull consumer. Prints one line per message
 * (subject, stream sequence, delivery count, payload preview) on stdout, acks it with `--ack`,
 * stops after `--max N`. Ctrl-C (or SIGTERM) drains: no new pulls, and the messages the server
 * already sent are still printed (and acked) before it exits 0.
 *
 * A message is acked only once its line has been written. When stdout's reader goes away
 * (`… | head -n 3`: EPIPE) it ends as Ctrl-C does and exits 0, except that what was fetched and
 * not printed can no longer be shown: it is NAKed (close()) for immediate redelivery rather than
 * handed out, and nothing is left waiting for ack_wait.
 */
import type { NatsConnection } from "@nats-io/nats-core";
import { consume } from "jetstream-iter";
import { CliError, EXIT_OK, oneLine } from "./errors.js";
import { count, duration, preview } from "./format.js";
import { connectTo, loadNats, manager } from "./nats.js";
import { Interrupts } from "./signals.js";
import { isBrokenPipe, LineOutput } from "./stdout.js";

export interface ConsumeCommandOptions {
  server: string[];
  stream: string;
  consumer: string;
  ack: boolean;
  max: number | undefined;
}

/** Pull batch (`max_messages`) when no `--max` bounds it. */
const BATCH = 100;

const say = (line: string) => void process.stderr.write(`${line}\n`);

/** Notifications worth a line on stderr (the rest is protocol chatter). */
const QUIET = new Set(["next", "heartbeat", "debug", "discard"]);

export async function runConsume(o: ConsumeCommandOptions): Promise<number> {
  const interrupts = new Interrupts("draining: messages already sent are still printed").install();
  let nc: NatsConnection | undefined;
  let out: LineOutput | undefined;
  try {
    const nats = await loadNats();
    nc = await connectTo(nats, o.server, { name: "jetstream-iter consume" });
    const jsm = await manager(nats, nc, o.server);
    const info = await jsm.consumers.info(o.stream, o.consumer).catch((err: unknown) => {
      const code = (err as { code?: unknown }).code;
      if (code === 10059) {
        throw new CliError(`stream ${o.stream} not found on ${o.server.join(", ")}`);
      }
      if (code === 10014) {
        throw new CliError(`consumer ${o.consumer} not found on stream ${o.stream}`);
      }
      throw new CliError(`cannot read consumer ${o.stream}/${o.consumer}: ${oneLine(err)}`);
    });
    if (info.config.deliver_subject) {
      throw new CliError(
        `consumer ${o.consumer} is a push consumer; jetstream-iter consumes pull consumers`,
      );
    }
    const consumer = await nats.jetstream.jetstream(nc).consumers.get(o.stream, o.consumer);
    // With --max, pull no more than needed; anything fetched beyond it is NAKed by close()
    // (break) and so redelivered at once, never left waiting for ack_wait.
    const messages = await consume(consumer, {
      max_messages: o.max === undefined ? BATCH : Math.min(o.max, BATCH),
    });
    const ackWait = duration((info.config.ack_wait ?? 30_000_000_000) / 1_000_000);
    say(
      `consume: ${o.stream}/${o.consumer} on ${o.server.join(", ")}, ${info.num_pending} pending${o.ack ? ", acking" : `, NOT acking: what is printed stays pending and the server redelivers it after ack_wait (${ackWait}); --ack acks each printed message`}${o.max === undefined ? "" : `, at most ${count(o.max)}`}; Ctrl-C drains and exits`,
    );
    void (async () => {
      for await (const s of messages.status()) {
        if (QUIET.has(s.type)) continue;
        const { type, ...rest } = s as { type: string };
        say(`consume: ${type} ${JSON.stringify(rest)}`);
      }
    })();
    let drainStarted: number | undefined;
    const onAbort = () => {
      drainStarted = performance.now();
      void messages.drain();
    };
    if (interrupts.signal.aborted) onAbort();
    else interrupts.signal.addEventListener("abort", onAbort, { once: true });

    // The reader has gone: stop at once. close(), not drain(): the buffer can no longer be
    // printed, so it goes back to the server (NAK) instead of being handed out.
    out = new LineOutput();
    out.onClosed(() => void messages.close());

    let n = 0;
    const tally: Tally = { printed: 0, acked: 0, naked: 0 };
    let stoppedAtMax = false;
    try {
      for await (const m of messages) {
        if (out.closed) {
          // Handed out after the reader went: never printed, so never acked.
          nakUnprinted(m, tally);
          break;
        }
        n++;
        out.writeLine(line(m), (written) =>
          written ? printed(m, o.ack, tally) : nakUnprinted(m, tally),
        );
        if (o.max !== undefined && n >= o.max) {
          stoppedAtMax = true;
          break;
        }
      }
      // The NAKs of close() leave during its fence; the acks wait for their lines' writes.
      await messages.closed();
      await bounded(out.settled());
    } catch (err) {
      throw new CliError(`consuming ${o.stream}/${o.consumer} failed: ${oneLine(err)}`);
    } finally {
      interrupts.signal.removeEventListener("abort", onAbort);
    }
    // The acks and NAKs are on their way; make sure the server has them before we go.
    const handedBack = tally.naked + messages.counters().naked;
    if (tally.acked + handedBack > 0) await bounded(nc.flush());
    // A reader that left (EPIPE) is an ordinary end, as Ctrl-C is; any other write error is not.
    const writeError = out.failure && !isBrokenPipe(out.failure) ? out.failure : undefined;
    const why = out.closed
      ? `stdout closed${writeError ? ` (${oneLine(writeError)})` : ""}; ${count(handedBack)} fetched and not printed handed back (NAK)`
      : stoppedAtMax
        ? `stopped at --max ${count(o.max ?? n)}`
        : drainStarted !== undefined
          ? `drained in ${duration(performance.now() - drainStarted)}`
          : "the consumer ended";
    say(
      `consume: ${count(tally.printed)} messages${o.ack ? `, ${count(tally.acked)} acked` : ""}; ${why}`,
    );
    if (!o.ack && tally.printed > 0) {
      say(
        `consume: the ${count(tally.printed)} printed were not acked (no --ack): the server redelivers them after ack_wait (${ackWait})`,
      );
    }
    if (writeError) throw new CliError(`cannot write to stdout: ${oneLine(writeError)}`);
    return EXIT_OK;
  } finally {
    if (nc && !nc.isClosed()) await nc.close().catch(() => {});
    out?.dispose();
    interrupts.uninstall();
  }
}

interface Tally {
  /** Lines written. */
  printed: number;
  acked: number;
  /** Messages handed out whose line could not be written. */
  naked: number;
}

/** What the user sees of a message: subject, stream sequence, delivery count, payload preview. */
function line(m: {
  subject: string;
  seq: number;
  info: { deliveryCount: number };
  data: Uint8Array;
}) {
  return `${m.subject} seq=${m.seq} deliveryCount=${m.info.deliveryCount} ${preview(m.data)}`;
}

/** Its line is written: the user has seen it, so (with --ack) it may be acked. */
function printed(m: { ack(): void }, ack: boolean, tally: Tally): void {
  tally.printed++;
  if (ack) {
    m.ack();
    tally.acked++;
  }
}

/** Its line never reached the user: back to the server now, not after ack_wait. */
function nakUnprinted(m: { nak(): void }, tally: Tally): void {
  m.nak();
  tally.naked++;
}

/** Waits for `p` at most 5 s (a flush to a server that went silent, a stuck stdout). */
function bounded(p: Promise<unknown>): Promise<void> {
  return Promise.race([
    p.then(
      () => {},
      () => {},
    ),
    new Promise<void>((r) => setTimeout(r, 5_000).unref()),
  ]);
}
