/**
 * The server cuts the client as a slow consumer: `max_pending` 256 KiB, 16 KiB messages, a
 * backlog of 1,500 and `max_messages` 1000 (the one fault not run on the defaults: 1000 × 16 KiB
 * is what test/integration/slow-consumer.test.ts measures; the default 100 × 16 KiB would cut
 * too). The first pull of each client is cut; the fault is that first cut, per client.
 */
import { NatsServer } from "../../harness/index.js";
import { makeFixture } from "../fixture.js";
import { type Provoked, type Scenario, until } from "../run.js";
import { CLIENTS, type Client } from "../types.js";
import { Single } from "./single.js";

export const slowCut: Scenario<Single> = {
  id: "slow-cut",
  label: "slow-consumer cut (max_pending 256 KiB; 1,500 × 16 KiB backlog; max_messages 1000)",
  from: "the client's first disconnect (the server cut it)",
  topology: "slow",
  runs: 3,
  async start() {
    return new Single(
      await NatsServer.start({ name: "slow", config: "max_pending: 262144\nmax_payload: 65536" }),
    );
  },
  fixture: (s, run) =>
    makeFixture({
      adminServers: [s.server.url],
      stream: `F_slow_${run}`,
      clientServers: [s.server.url],
      payloadBytes: 16 * 1024,
      publishEveryMs: 20,
      backlog: 1500,
      consumeOptions: { max_messages: 1000 },
      warmup: 0,
    }),
  async provoke(_s, _fx, ctx): Promise<Provoked> {
    const cutAt = (c: Client) =>
      ctx.clients.get(c)!.events.find((e) => e.what.startsWith("disconnect"))?.t;
    await until(() => CLIENTS.every((c) => cutAt(c) !== undefined), 20_000, 50);
    const fault: Partial<Record<Client, number>> = {};
    for (const c of CLIENTS) {
      const t = cutAt(c);
      if (t !== undefined) fault[c] = t;
      else ctx.log(`  ${c} was not cut within 20 s`);
    }
    return { fault, ref: fault };
  },
};
