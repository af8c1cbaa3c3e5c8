/**
 * Faults of one nats-server: restarted (SIGKILL, SIGTERM), hung (SIGSTOP, then SIGCONT), the
 * consumers deleted and re-created; and a TCP cut through a proxy between the clients and it.
 */
import { DeliverPolicy, jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { NatsServer, TcpProxy } from "../../harness/index.js";
import { DURABLES, durableConfig, makeFixture } from "../fixture.js";
import { type Ctx, type Provoked, type Scenario, sleep, type Topology, until } from "../run.js";
import { CLIENTS, type Client, CONNECTION } from "../types.js";

/** How long the server stays SIGSTOPped: past two default idle heartbeats (2 x 15 s). */
export const HANG_MS = 35_000;

export class Single implements Topology {
  constructor(
    readonly server: NatsServer,
    readonly proxy?: TcpProxy,
  ) {}
  static async start(withProxy = false): Promise<Single> {
    const server = await NatsServer.start({ name: "single" });
    return new Single(server, withProxy ? await TcpProxy.start(server.port) : undefined);
  }
  async dispose(): Promise<void> {
    await this.proxy?.close();
    await this.server.dispose();
  }
}

/** The same time for both clients. */
export const both = (t: number): Record<Client, number> => ({
  "jetstream-iter": t,
  "nats.js": t,
});

/** Resolves when the server first acked a publish first tried after `t` (undefined after `ms`). */
export async function publisherBack(ctx: Ctx, t: number, ms = 60_000): Promise<number | undefined> {
  await until(() => ctx.publisher.firstAckAfter(t) !== undefined, ms, 20);
  return ctx.publisher.firstAckAfter(t);
}

const fixture = (s: Single, id: string, run: number) =>
  makeFixture({
    adminServers: [s.server.url],
    stream: `F_${id}_${run}`,
    clientServers: [s.proxy ? s.proxy.url() : s.server.url],
    publisherServers: [s.server.url],
  });

const single = (): Promise<Single> => Single.start();

export const sigkill: Scenario<Single> = {
  id: "sigkill",
  label: "server restart (SIGKILL)",
  from: "the SIGKILL (the restart follows at once)",
  back: "the server acked a publish again",
  topology: "single",
  start: single,
  fixture: (s, run) => fixture(s, "sigkill", run),
  async provoke(s, _fx, ctx): Promise<Provoked> {
    const t = Date.now();
    await s.server.kill();
    await s.server.restart();
    const back = await publisherBack(ctx, t);
    return { fault: both(t), ref: both(t), ...(back ? { back } : {}) };
  },
};

export const sigterm: Scenario<Single> = {
  id: "sigterm",
  label: "server restart (SIGTERM)",
  from: "the SIGTERM; a message counts as new once the server has exited (it serves on for a moment); the restart follows at once",
  back: "the server acked a publish again",
  topology: "single",
  start: single,
  fixture: (s, run) => fixture(s, "sigterm", run),
  async provoke(s, _fx, ctx): Promise<Provoked> {
    const t = Date.now();
    await s.server.stop();
    const exited = Date.now();
    await s.server.restart();
    const back = await publisherBack(ctx, exited);
    return { fault: both(exited), ref: both(t), ...(back ? { back } : {}) };
  },
};

export const sigstop: Scenario<Single> = {
  id: "sigstop",
  label: `server hung (SIGSTOP ${HANG_MS / 1000} s, then SIGCONT)`,
  from: "the SIGCONT",
  back: "the server acked a publish tried after the SIGCONT",
  topology: "single",
  runs: 3,
  start: single,
  fixture: (s, run) => fixture(s, "sigstop", run),
  async provoke(s, _fx, ctx): Promise<Provoked> {
    s.server.pause();
    try {
      await sleep(HANG_MS);
    } finally {
      s.server.resume();
    }
    const t = Date.now();
    // "after the fault" is after the SIGCONT: what was tried while hung does not count
    const back = await publisherBack(ctx, t);
    return { fault: both(t), ref: both(t), ...(back ? { back } : {}) };
  },
};

export const deleted: Scenario<Single> = {
  id: "deleted",
  label: "consumer deleted and re-created",
  from: "the re-creation (a few ms after the delete), from the ack floor + 1",
  topology: "single",
  start: single,
  fixture: (s, run) => fixture(s, "deleted", run),
  async provoke(s, fx): Promise<Provoked> {
    const nc = await connect({ servers: s.server.url, ...CONNECTION });
    try {
      const jsm = await jetstreamManager(nc, { timeout: 5000 });
      const floors = await Promise.all(
        CLIENTS.map(async (c) => (await jsm.consumers.info(fx.stream, DURABLES[c])).ack_floor),
      );
      const t = Date.now();
      await Promise.all(CLIENTS.map((c) => jsm.consumers.delete(fx.stream, DURABLES[c])));
      // Re-created from what the old one had acked: nothing the fault itself skips
      await Promise.all(
        CLIENTS.map((c, i) =>
          jsm.consumers.add(
            fx.stream,
            durableConfig(DURABLES[c], {
              deliver_policy: DeliverPolicy.StartSequence,
              opt_start_seq: floors[i]!.stream_seq + 1,
            }),
          ),
        ),
      );
      const ref = Date.now();
      return { fault: both(t), ref: both(ref) };
    } finally {
      await nc.close();
    }
  },
};

export const tcpCut: Scenario<Single> = {
  id: "tcp-cut",
  label: "TCP cut (a proxy resets the clients' connections; the server stays up)",
  from: "the cut",
  topology: "proxy",
  start: () => Single.start(true),
  fixture: (s, run) => fixture(s, "tcp", run),
  async provoke(s): Promise<Provoked> {
    // both clients' connections, and nothing around the proxy
    if (s.proxy!.connections !== 2) {
      throw new Error(
        `expected the 2 clients' connections through the proxy: ${s.proxy!.connections}`,
      );
    }
    const t = Date.now();
    s.proxy!.cut();
    return { fault: both(t), ref: both(t) };
  },
};
