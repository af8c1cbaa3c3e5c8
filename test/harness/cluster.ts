/**
 * A 3-node JetStream cluster on loopback: server names n1..n3, one cluster name, full
 * routes. Each node is a {@link NatsServer}, so any one can be stopped, killed, paused or
 * restarted on its own ports and store.
 */

import { jsmOn } from "./jetstream.js";
import { freePorts } from "./ports.js";
import { NatsServer } from "./server.js";

export class NatsCluster {
  private constructor(readonly nodes: NatsServer[]) {}

  /** Starts `size` nodes (default 3) and resolves once JetStream has a meta leader. */
  static async start(size = 3, opts: { readyTimeoutMs?: number } = {}): Promise<NatsCluster> {
    const ports = await freePorts(size * 2);
    const clientPorts = ports.slice(0, size);
    const routePorts = ports.slice(size);
    const routes = routePorts.map((p) => `"nats-route://127.0.0.1:${p}"`).join(", ");
    const nodes: NatsServer[] = [];
    try {
      const started = await Promise.allSettled(
        clientPorts.map((port, i) =>
          NatsServer.start({
            port,
            name: `n${i + 1}`,
            // Cluster nodes answer INFO before JetStream has a meta leader; wait for that below.
            jetstream: true,
            readyTimeoutMs: 20_000,
            config: [
              "cluster {",
              '  name: "jsiter"',
              `  listen: "127.0.0.1:${routePorts[i]}"`,
              `  routes: [${routes}]`,
              "}",
            ].join("\n"),
          }),
        ),
      );
      for (const r of started) if (r.status === "fulfilled") nodes.push(r.value);
      const failed = started.find((r) => r.status === "rejected");
      if (failed) throw (failed as PromiseRejectedResult).reason;
      const cluster = new NatsCluster(nodes);
      await cluster.waitForMetaLeader(opts.readyTimeoutMs ?? 30_000);
      return cluster;
    } catch (err) {
      await Promise.all(nodes.map((n) => n.dispose()));
      throw err;
    }
  }

  /** Client URLs of every node, for a connection that fails over. */
  get servers(): string[] {
    return this.nodes.map((n) => n.url);
  }

  /** The node with the given server name. */
  node(name: string): NatsServer {
    const n = this.nodes.find((x) => x.name === name);
    if (!n) throw new Error(`no node named ${name}`);
    return n;
  }

  /**
   * Resolves once the JetStream API answers through a running node. In a cluster only the
   * meta leader answers `$JS.API.INFO`, so an answer means a meta leader exists.
   */
  async waitForMetaLeader(timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let lastError: unknown;
    while (Date.now() < deadline) {
      const node = this.nodes.find((n) => n.running);
      if (node) {
        try {
          await jsmOn(node.url, (jsm) => jsm.getAccountInfo());
          return;
        } catch (err) {
          lastError = err;
        }
      }
      await new Promise((r) => setTimeout(r, 200));
    }
    throw new Error(`no JetStream meta leader within ${timeoutMs} ms: ${String(lastError)}`);
  }

  /** Kills every node and removes their stores. Idempotent. */
  async dispose(): Promise<void> {
    await Promise.all(this.nodes.map((n) => n.dispose()));
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.dispose();
  }
}
