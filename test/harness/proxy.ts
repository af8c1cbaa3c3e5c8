/**
 * A TCP proxy on a free 127.0.0.1 port in front of another loopback port, for faults that only
 * cut a connection: `cut()` destroys every connection through it (both ends see a reset, the
 * servers stay up), `pause()` refuses new ones until `resume()`. Everything it opens is closed
 * by `close()`.
 */
import { createServer, type Server, type Socket, connect as tcpConnect } from "node:net";
import { freePort } from "./ports.js";

export class TcpProxy {
  private readonly sockets = new Set<Socket>();
  private refusing = false;

  private constructor(
    private readonly server: Server,
    /** The port the proxy listens on. */
    readonly port: number,
    /** The port it forwards to. */
    readonly target: number,
  ) {}

  /** Starts a proxy to `127.0.0.1:<target>`. */
  static async start(target: number): Promise<TcpProxy> {
    const port = await freePort();
    let proxy!: TcpProxy;
    const server = createServer((client) => proxy.accept(client));
    proxy = new TcpProxy(server, port, target);
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(port, "127.0.0.1", () => resolve());
    });
    return proxy;
  }

  /** `nats://127.0.0.1:<port>` (or another scheme). */
  url(scheme = "nats"): string {
    return `${scheme}://127.0.0.1:${this.port}`;
  }

  /** Connections currently open through the proxy (each counted once, client side). */
  get connections(): number {
    return [...this.sockets].filter((s) => (s as Socket & { client?: boolean }).client).length;
  }

  private accept(client: Socket): void {
    if (this.refusing) {
      client.destroy();
      return;
    }
    const upstream = tcpConnect(this.target, "127.0.0.1");
    (client as Socket & { client?: boolean }).client = true;
    for (const s of [client, upstream]) {
      this.sockets.add(s);
      s.on("close", () => this.sockets.delete(s));
      s.on("error", () => {
        client.destroy();
        upstream.destroy();
      });
    }
    client.pipe(upstream);
    upstream.pipe(client);
    client.on("close", () => upstream.destroy());
    upstream.on("close", () => client.destroy());
  }

  /** Destroys every connection through the proxy now; new ones are accepted again. */
  cut(): void {
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
  }

  /** Cuts every connection and refuses new ones until {@link resume}. */
  pause(): void {
    this.refusing = true;
    this.cut();
  }

  resume(): void {
    this.refusing = false;
  }

  /** Cuts everything and stops listening. Idempotent. */
  async close(): Promise<void> {
    this.refusing = true;
    this.cut();
    if (!this.server.listening) return;
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
