/**
 * Cluster faults: a 3-node cluster (test/harness/cluster.ts), an R3 stream and an R3 durable per
 * client. Before each fault the leaders are arranged: both durables led by one node (C), the
 * stream by another (S), the third (T) leads nothing. Then:
 *
 * - consumer leader killed: SIGKILL C; the clients are connected to T;
 * - stream leader killed: SIGKILL S; the clients are connected to T;
 * - own node killed: SIGKILL C; the clients are connected to C (and fail over to S or T).
 *
 * Resume times count from the moment the cluster is back for the client: its durable answers
 * consumer info with a live leader, and the server has acked a publish first tried after the
 * kill (polled every 50 ms and 20 ms). The killed node is restarted after the measurement, and the next
 * run waits until every replica is current again.
 */
import { type ClusterInfo, type JetStreamManager, jetstreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/nats-core";
import { connect } from "@nats-io/transport-node";
import { NatsCluster } from "../../harness/index.js";
import { DURABLES, makeFixture } from "../fixture.js";
import {
  type Ctx,
  type Fixture,
  type Provoked,
  type Scenario,
  sleep,
  type Topology,
  until,
  waitFor,
} from "../run.js";
import { CLIENTS, type Client, CONNECTION } from "../types.js";
import { both, publisherBack } from "./single.js";

interface Roles {
  /** Leads the stream. */
  S: string;
  /** Leads both durables. */
  C: string;
  /** Leads nothing. */
  T: string;
}

export class Cluster implements Topology {
  /** The roles of the current fixture's leaders. */
  roles: Roles | undefined;
  admin: NatsConnection | undefined;
  private constructor(readonly cluster: NatsCluster) {}

  static async start(): Promise<Cluster> {
    return new Cluster(await NatsCluster.start(3));
  }

  url(name: string): string {
    return this.cluster.node(name).url;
  }

  async dispose(): Promise<void> {
    await this.admin?.close().catch(() => {});
    await this.cluster.dispose();
  }
}

/** A leader and two current, online followers. */
function healthy(c: ClusterInfo | undefined): boolean {
  const r = c?.replicas ?? [];
  return !!c?.leader && r.length === 2 && r.every((p) => p.current && !p.offline);
}

async function allHealthy(jsm: JetStreamManager, stream: string): Promise<boolean> {
  try {
    if (!healthy((await jsm.streams.info(stream)).cluster)) return false;
    for (const c of CLIENTS) {
      if (!healthy((await jsm.consumers.info(stream, DURABLES[c])).cluster)) return false;
    }
    return true;
  } catch {
    return false;
  }
}

/** Steps durables down until both are led by one node that does not lead the stream. */
async function arrange(nc: NatsConnection, jsm: JetStreamManager, stream: string): Promise<Roles> {
  const names = ["n1", "n2", "n3"];
  for (let i = 0; i < 40; i++) {
    await waitFor(() => allHealthy(jsm, stream), 60_000, "stream and durables healthy");
    const S = (await jsm.streams.info(stream)).cluster!.leader!;
    const leaders = await Promise.all(
      CLIENTS.map(async (c) => (await jsm.consumers.info(stream, DURABLES[c])).cluster!.leader!),
    );
    const C = leaders.find((l) => l !== S) ?? names.find((n) => n !== S)!;
    const wrong = CLIENTS.filter((_, j) => leaders[j] !== C);
    if (wrong.length === 0) return { S, C, T: names.find((n) => n !== S && n !== C)! };
    for (const c of wrong) {
      await nc
        .request(`$JS.API.CONSUMER.LEADER.STEPDOWN.${stream}.${DURABLES[c]}`, "", {
          timeout: 2000,
        })
        .catch(() => {});
    }
    await sleep(300);
  }
  throw new Error("could not arrange the leaders");
}

/** When consumer info first names a live leader other than `victim`, polling every 50 ms. */
function leaderBack(
  jsm: JetStreamManager,
  stream: string,
  name: string,
  victim: string,
  ms: number,
): Promise<number | undefined> {
  return new Promise((resolve) => {
    let done = false;
    const finish = (t: number | undefined) => {
      if (done) return;
      done = true;
      clearInterval(timer);
      resolve(t);
    };
    const deadline = Date.now() + ms;
    const tick = () => {
      if (Date.now() > deadline) return finish(undefined);
      jsm.consumers.info(stream, name).then(
        (ci) => {
          if (ci.cluster?.leader && ci.cluster.leader !== victim) finish(Date.now());
        },
        () => {},
      );
    };
    const timer = setInterval(tick, 50);
    tick();
  });
}

function clusterFault(
  id: string,
  label: string,
  victimRole: "C" | "S",
  clientsOn: "C" | "T",
  runs: number,
): Scenario<Cluster> {
  return {
    id,
    label,
    from: "the cluster being back for the client: its durable has a leader and a publish tried after the kill was acked",
    back: "kill → cluster back for both",
    topology: "cluster",
    runs,
    start: () => Cluster.start(),
    async fixture(k, run): Promise<Fixture> {
      await k.admin?.close().catch(() => {});
      k.admin = await connect({ servers: k.cluster.servers, ...CONNECTION });
      const stream = `F_${id.replace(/-/g, "_")}_${run}`;
      const base = await makeFixture({
        adminServers: k.cluster.servers,
        stream,
        replicas: 3,
        clientServers: k.cluster.servers,
      });
      const jsm = await jetstreamManager(k.admin, { timeout: 2000 });
      const roles = await arrange(k.admin, jsm, stream);
      k.roles = roles;
      // The admin connection moves to T, which no fault kills
      await k.admin.close();
      k.admin = await connect({
        servers: [k.url(roles.T), k.url(roles.S), k.url(roles.C)],
        noRandomize: true,
        ...CONNECTION,
      });
      const first = roles[clientsOn];
      return {
        ...base,
        clientServers: [first, ...["n1", "n2", "n3"].filter((n) => n !== first)].map((n) =>
          k.url(n),
        ),
        noRandomize: true,
      };
    },
    async provoke(k, fx, ctx: Ctx): Promise<Provoked> {
      const victim = k.roles![victimRole];
      ctx.log(`  roles: stream ${k.roles!.S}, durables ${k.roles!.C}; killing ${victim}`);
      const jsm = await jetstreamManager(k.admin!, { timeout: 500 });
      const t = Date.now();
      await k.cluster.node(victim).kill();
      const [pub, ...leaders] = await Promise.all([
        publisherBack(ctx, t, 60_000),
        ...CLIENTS.map((c) => leaderBack(jsm, fx.stream, DURABLES[c], victim, 60_000)),
      ]);
      if (pub === undefined || leaders.some((l) => l === undefined)) {
        throw new Error(`the cluster was not back within 60 s of killing ${victim}`);
      }
      // Each client counts from its own durable having a leader (and the stream taking
      // publishes): the two durables' elections can be a second apart
      const ref = Object.fromEntries(
        CLIENTS.map((c, i) => [c, Math.max(pub, leaders[i]!)]),
      ) as Record<Client, number>;
      return { fault: both(t), ref, back: Math.max(pub, ...(leaders as number[])) };
    },
    async heal(k, fx) {
      const victim = k.roles![victimRole];
      await k.cluster.node(victim).restart();
      const jsm = await jetstreamManager(k.admin!, { timeout: 2000 });
      await until(() => allHealthy(jsm, fx.stream), 60_000, 200);
    },
  };
}

export const consumerLeader = clusterFault(
  "consumer-leader",
  "consumer leader killed (SIGKILL; clients on another node)",
  "C",
  "T",
  3,
);
export const streamLeader = clusterFault(
  "stream-leader",
  "stream leader killed (SIGKILL; clients on another node)",
  "S",
  "T",
  5,
);
export const ownNode = clusterFault(
  "own-node",
  "own node killed (SIGKILL the node the clients are on, which leads the durables)",
  "C",
  "C",
  5,
);
