/**
 * A leaf-node topology on loopback: a **hub** server with JetStream in domain `hub` and a
 * **leaf** server with its own JetStream in domain `leaf`, joined by a leafnode connection that
 * runs through a {@link TcpProxy} in front of the hub's leafnode port. So the link alone can be
 * cut (`cutLink()`: the leaf redials within about a second) or held down (`pauseLink()` …
 * `resumeLink()`) while both servers keep running, and either server can be killed or restarted
 * on its own ports and store.
 *
 * A client connected to the leaf reaches the hub's JetStream API at `$JS.hub.API` (nats.js
 * `jetstream(nc, { domain: "hub" })`).
 */
import { connect } from "@nats-io/transport-node";
import { freePort } from "./ports.js";
import { TcpProxy } from "./proxy.js";
import { NatsServer } from "./server.js";

export interface LeafTopologyOptions {
  /** The hub's JetStream domain. Default "hub". */
  hubDomain?: string;
  /** The leaf's JetStream domain. Default "leaf". */
  leafDomain?: string;
  /** Extra hub configuration (nats-server syntax). */
  hubConfig?: string;
  /** Extra leaf configuration. */
  leafConfig?: string;
}

export class LeafTopology {
  private constructor(
    readonly hub: NatsServer,
    readonly leaf: NatsServer,
    /** In front of the hub's leafnode port; the leaf dials the hub through it. */
    readonly proxy: TcpProxy,
    readonly hubDomain: string,
    readonly leafDomain: string,
  ) {}

  /** Starts hub, proxy and leaf; resolves once the hub's JetStream answers through the leaf. */
  static async start(opts: LeafTopologyOptions = {}): Promise<LeafTopology> {
    const hubDomain = opts.hubDomain ?? "hub";
    const leafDomain = opts.leafDomain ?? "leaf";
    const leafPort = await freePort();
    let hub: NatsServer | undefined;
    let proxy: TcpProxy | undefined;
    let leaf: NatsServer | undefined;
    try {
      hub = await NatsServer.start({
        name: "hub",
        domain: hubDomain,
        config: [`leafnodes { listen: "127.0.0.1:${leafPort}" }`, opts.hubConfig ?? ""].join("\n"),
      });
      proxy = await TcpProxy.start(leafPort);
      leaf = await NatsServer.start({
        name: "leaf",
        domain: leafDomain,
        // `reconnect`: seconds between the leaf's dials to the hub (1 is nats-server's default)
        config: [
          `leafnodes { reconnect: 1, remotes: [ { url: "nats-leaf://127.0.0.1:${proxy.port}" } ] }`,
          opts.leafConfig ?? "",
        ].join("\n"),
      });
      const topology = new LeafTopology(hub, leaf, proxy, hubDomain, leafDomain);
      await topology.waitLinked();
      return topology;
    } catch (err) {
      await leaf?.dispose();
      await proxy?.close();
      await hub?.dispose();
      throw err;
    }
  }

  /** The API prefix of the hub's JetStream seen from the leaf: `$JS.<hubDomain>.API`. */
  get hubApi(): string {
    return `$JS.${this.hubDomain}.API`;
  }

  /**
   * Resolves once a client on the leaf gets an answer from the hub's JetStream (the link is up
   * and the hub serves JetStream); returns the milliseconds it took. Throws after `timeoutMs`.
   */
  async waitLinked(timeoutMs = 20_000): Promise<number> {
    const t0 = Date.now();
    const deadline = t0 + timeoutMs;
    const nc = await connect({
      servers: this.leaf.url,
      timeout: 2000,
      maxReconnectAttempts: -1,
      reconnectTimeWait: 50,
    });
    try {
      for (;;) {
        try {
          const m = await nc.request(`${this.hubApi}.INFO`, undefined, { timeout: 500 });
          const r = JSON.parse(m.string()) as { error?: unknown };
          if (!r.error) return Date.now() - t0;
        } catch {
          // 503 while the link is down, a timeout while the hub starts
        }
        if (Date.now() > deadline) {
          throw new Error(`hub JetStream not reachable from the leaf after ${timeoutMs} ms`);
        }
        await new Promise((r) => setTimeout(r, 25));
      }
    } finally {
      await nc.close();
    }
  }

  /** Cuts the leaf–hub connection now (both servers stay up); the leaf redials within ~1 s. */
  cutLink(): void {
    this.proxy.cut();
  }

  /** Cuts the leaf–hub connection and refuses the leaf's redials until {@link resumeLink}. */
  pauseLink(): void {
    this.proxy.pause();
  }

  resumeLink(): void {
    this.proxy.resume();
  }

  /**
   * Stops the hub (SIGKILL by default, or SIGTERM), waits `downMs`, starts it again on the same
   * ports and store. Resolves once it accepts clients (not yet once the leaf has redialled:
   * {@link waitLinked}).
   */
  async restartHub(opts: { signal?: "SIGKILL" | "SIGTERM"; downMs?: number } = {}): Promise<void> {
    await restart(this.hub, opts);
  }

  /** As {@link restartHub}, for the leaf. */
  async restartLeaf(opts: { signal?: "SIGKILL" | "SIGTERM"; downMs?: number } = {}): Promise<void> {
    await restart(this.leaf, opts);
  }

  /** Stops both servers (by pid), the proxy, and removes the stores. Idempotent. */
  async dispose(): Promise<void> {
    for (const s of [this.leaf, this.hub]) if (s.running) s.resume();
    await this.leaf.dispose();
    await this.proxy.close();
    await this.hub.dispose();
  }
}

async function restart(
  server: NatsServer,
  { signal = "SIGKILL", downMs = 0 }: { signal?: "SIGKILL" | "SIGTERM"; downMs?: number },
): Promise<void> {
  if (signal === "SIGKILL") await server.kill();
  else await server.stop();
  if (downMs > 0) await new Promise((r) => setTimeout(r, downMs));
  await server.restart();
}
