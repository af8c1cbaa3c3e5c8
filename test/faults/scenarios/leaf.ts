/**
 * The leaf link cut: a hub (JetStream domain `hub`, leafnodes listening) and a leaf node
 * (JetStream domain `leaf`) whose remote to the hub goes through a {@link TcpProxy}. The stream
 * is on the hub; the clients connect to the leaf and reach it as domain `hub`; the publisher
 * connects to the hub. The fault: the proxy resets the link (the leaf reconnects by itself; the
 * clients' own connections to the leaf never drop).
 *
 * Built here, minimal, because test/harness/leaf.ts (branch `leaf`) was not on main yet.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { NatsConnection } from "@nats-io/nats-core";
import { connect } from "@nats-io/transport-node";
import { freePort, NatsServer, TcpProxy } from "../../harness/index.js";
import { makeFixture } from "../fixture.js";
import { type Provoked, type Scenario, type Topology, until, waitFor } from "../run.js";
import { CONNECTION } from "../types.js";
import { both } from "./single.js";

export class Leaf implements Topology {
  private constructor(
    readonly hub: NatsServer,
    readonly leaf: NatsServer,
    readonly link: TcpProxy,
    /** A connection to the leaf, to see when the hub's JetStream answers through it. */
    readonly probe: NatsConnection,
    private readonly dir: string,
  ) {}

  static async start(): Promise<Leaf> {
    const dir = mkdtempSync(join(tmpdir(), "jsiter-faults-leaf-"));
    const servers: NatsServer[] = [];
    let link: TcpProxy | undefined;
    try {
      const leafPort = await freePort();
      // The proxy first (it dials the hub only when the leaf connects), so that the hub can
      // advertise it: else the leaf learns the hub's own leafnode URL from its INFO and, after
      // the first cut, reconnects there directly, around the proxy (no_advertise does not stop
      // that on 2.9.10)
      link = await TcpProxy.start(leafPort);
      // jetstream: false here only stops the harness writing its own jetstream block: the
      // domain has to go in it.
      const hub = await NatsServer.start({
        name: "hub",
        jetstream: false,
        config: [
          `jetstream { store_dir: "${join(dir, "hub")}", domain: hub }`,
          `leafnodes { listen: "127.0.0.1:${leafPort}", advertise: "127.0.0.1:${link.port}" }`,
        ].join("\n"),
      });
      servers.push(hub);
      const leaf = await NatsServer.start({
        name: "leaf",
        jetstream: false,
        config: [
          `jetstream { store_dir: "${join(dir, "leaf")}", domain: leaf }`,
          `leafnodes { remotes: [ { url: "nats-leaf://127.0.0.1:${link.port}" } ] }`,
        ].join("\n"),
      });
      servers.push(leaf);
      const probe = await connect({ servers: leaf.url, ...CONNECTION });
      const topo = new Leaf(hub, leaf, link, probe, dir);
      await waitFor(() => topo.hubAnswers(), 20_000, "the hub's JetStream through the leaf");
      return topo;
    } catch (err) {
      await link?.close();
      for (const s of servers) await s.dispose();
      rmSync(dir, { recursive: true, force: true });
      throw err;
    }
  }

  /** True when `$JS.hub.API.INFO` asked on the leaf is answered (the link is up). */
  async hubAnswers(): Promise<boolean> {
    try {
      await this.probe.request("$JS.hub.API.INFO", "", { timeout: 250 });
      return true;
    } catch {
      return false;
    }
  }

  async dispose(): Promise<void> {
    await this.probe.close().catch(() => {});
    await this.link.close();
    await this.leaf.dispose();
    await this.hub.dispose();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

export const leafCut: Scenario<Leaf> = {
  id: "leaf-cut",
  label: "leaf link cut (clients on the leaf, stream on the hub)",
  from: "the cut (the leaf reconnects by itself)",
  back: "the hub's JetStream answered through the leaf again",
  topology: "leaf",
  runs: 3,
  start: () => Leaf.start(),
  fixture: (l, run) =>
    makeFixture({
      adminServers: [l.hub.url],
      stream: `F_leaf_${run}`,
      clientServers: [l.leaf.url],
      domain: "hub",
      publisherServers: [l.hub.url],
    }),
  async provoke(l): Promise<Provoked> {
    if (l.link.connections !== 1) {
      throw new Error(
        `the leaf link should be one connection through the proxy: ${l.link.connections}`,
      );
    }
    const t = Date.now();
    l.link.cut();
    let back: number | undefined;
    await until(
      async () => {
        if (!(await l.hubAnswers())) return false;
        back = Date.now();
        return true;
      },
      30_000,
      20,
    );
    return { fault: both(t), ref: both(t), ...(back ? { back } : {}) };
  },
};
