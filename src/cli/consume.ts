/**
 * `jetstream-iter consume`: tail an existing durable pull consumer. Prints one line per message
 * (subject, stream sequence, delivery count, payload preview) on stdout, acks it with `--ack`,
 * stops after `--max N`. Ctrl-C (or SIGTERM) drains: no new pulls, and the messages the server
 * already sent are still printed (and acked) before it exits 0.
 */
import type { NatsConnection } from "@nats-io/nats-core";
import { consume } from "../index.js";
import { CliError, EXIT_OK, oneLine } from "./errors.js";
import { count, duration, preview } from "./format.js";
import { connectTo, loadNats, manager } from "./nats.js";
import { Interrupts } from "./signals.js";

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
    say(
      `consume: ${o.stream}/${o.consumer} on ${o.server.join(", ")}, ${info.num_pending} pending${o.ack ? ", acking" : ", not acking (--ack to ack)"}${o.max === undefined ? "" : `, at most ${count(o.max)}`}; Ctrl-C drains and exits`,
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

    let n = 0;
    let acked = 0;
    let stoppedAtMax = false;
    try {
      for await (const m of messages) {
        n++;
        process.stdout.write(
          `${m.subject} seq=${m.seq} deliveryCount=${m.info.deliveryCount} ${preview(m.data)}\n`,
        );
        if (o.ack) {
          m.ack();
          acked++;
        }
        if (o.max !== undefined && n >= o.max) {
          stoppedAtMax = true;
          break;
        }
      }
    } catch (err) {
      throw new CliError(`consuming ${o.stream}/${o.consumer} failed: ${oneLine(err)}`);
    } finally {
      interrupts.signal.removeEventListener("abort", onAbort);
    }
    // The acks are on their way; make sure the server has them before we go.
    if (acked > 0) {
      await Promise.race([nc.flush(), new Promise((r) => setTimeout(r, 5_000).unref())]).catch(
        () => {},
      );
    }
    const why = stoppedAtMax
      ? `stopped at --max ${count(o.max ?? n)}`
      : drainStarted !== undefined
        ? `drained in ${duration(performance.now() - drainStarted)}`
        : "the consumer ended";
    say(`consume: ${count(n)} messages${o.ack ? `, ${count(acked)} acked` : ""}; ${why}`);
    return EXIT_OK;
  } finally {
    if (nc && !nc.isClosed()) await nc.close().catch(() => {});
    interrupts.uninstall();
  }
}
