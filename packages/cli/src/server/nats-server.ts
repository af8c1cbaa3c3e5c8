/**
 * One real nats-server process on a free 127.0.0.1 port with a fresh temp store: the test
 * harness's servers and the CLI's embedded one.
 *
 * Lifecycle: start() → running ⇄ paused (SIGSTOP/SIGCONT) → stopped (stop/kill) →
 * restart() → running … → dispose() (kill if needed, remove the store). The process is
 * always addressed by its own pid, never by name.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { connect as tcpConnect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { findNatsServer } from "./binary.js";
import { freePort, freePorts } from "./ports.js";

export interface ServerOptions {
  /** Enable JetStream (`-js`). Default true. */
  jetstream?: boolean;
  /** Fixed client port; default: a free one. */
  port?: number;
  /** Extra configuration file text (nats-server config syntax), appended to the generated one. */
  config?: string;
  /** Milliseconds to wait for the server to accept clients. Default 10 000. */
  readyTimeoutMs?: number;
  /**
   * Also accept WebSocket clients, without TLS, on 127.0.0.1 (`websocket { listen, no_tls }`),
   * on a free port: see {@link NatsServer.wsUrl}. Default false.
   */
  websocket?: boolean;
  /** Server name (`server_name`). */
  name?: string;
  /** JetStream domain (`jetstream { domain }`), for leaf-node topologies. Default: none. */
  domain?: string;
  /**
   * Run the server in its own process group, so a Ctrl-C in the terminal (SIGINT to the
   * foreground group) reaches only the parent, which then stops the server itself. Default false.
   */
  detached?: boolean;
}

/** Told about every process spawned and every process stopped (the test harness's pid registry). */
export interface ProcessTracker {
  /** A server process started; `dirs` are the temp dirs to remove if it is reaped. */
  spawned(pid: number, dirs: string[]): void;
  /** A server process was stopped and waited for. */
  stopped(pid: number): void;
}

let tracker: ProcessTracker | undefined;

/**
 * Sets (or with undefined, removes) the tracker told about every server process; returns the
 * one it replaces, so a caller can chain to it.
 */
export function setProcessTracker(t: ProcessTracker | undefined): ProcessTracker | undefined {
  const previous = tracker;
  tracker = t;
  return previous;
}

const LOG_LINES = 200;

export class NatsServer {
  readonly port: number;
  readonly url: string;
  readonly storeDir: string;
  readonly name: string | undefined;
  /** The WebSocket listener's port, when started with `websocket: true`. */
  readonly wsPort: number | undefined;
  /** `ws://127.0.0.1:<wsPort>`, when started with `websocket: true`. */
  readonly wsUrl: string | undefined;
  private readonly workDir: string;
  private readonly configPath: string;
  private readonly jetstream: boolean;
  private readonly readyTimeoutMs: number;
  private readonly detached: boolean;
  private child: ChildProcess | undefined;
  private exited: Promise<void> = Promise.resolve();
  private paused = false;
  private disposed = false;
  /** The last lines the server logged, for failure messages. */
  readonly log: string[] = [];

  private constructor(port: number, opts: ServerOptions, wsPort: number | undefined) {
    this.port = port;
    this.url = `nats://127.0.0.1:${port}`;
    this.wsPort = wsPort;
    this.wsUrl = wsPort === undefined ? undefined : `ws://127.0.0.1:${wsPort}`;
    this.jetstream = opts.jetstream ?? true;
    this.readyTimeoutMs = opts.readyTimeoutMs ?? 10_000;
    this.detached = opts.detached ?? false;
    this.name = opts.name;
    this.workDir = mkdtempSync(join(tmpdir(), "jsiter-nats-"));
    this.storeDir = join(this.workDir, "store");
    this.configPath = join(this.workDir, "server.conf");
    const lines = [`listen: "127.0.0.1:${port}"`];
    if (opts.name) lines.push(`server_name: "${opts.name}"`);
    if (this.jetstream) {
      const domain = opts.domain ? `, domain: "${opts.domain}"` : "";
      lines.push(`jetstream { store_dir: "${this.storeDir}"${domain} }`);
    }
    if (wsPort !== undefined) {
      lines.push(`websocket { listen: "127.0.0.1:${wsPort}", no_tls: true }`);
    }
    if (opts.config) lines.push(opts.config);
    writeFileSync(this.configPath, `${lines.join("\n")}\n`);
  }

  /** Starts a server and resolves once it accepts clients (and serves JetStream, if enabled). */
  static async start(opts: ServerOptions = {}): Promise<NatsServer> {
    // Before anything is created: no binary, no temp dir.
    findNatsServer();
    const attempts = opts.port === undefined ? 3 : 1;
    let lastError: unknown;
    for (let i = 0; i < attempts; i++) {
      const port = opts.port ?? (await freePort());
      const wsPort = opts.websocket ? await freeWsPort(port) : undefined;
      const server = new NatsServer(port, opts, wsPort);
      try {
        await server.spawnAndWait();
        return server;
      } catch (err) {
        lastError = err;
        await server.dispose();
      }
    }
    throw lastError;
  }

  /** The running process's pid, or undefined when stopped. */
  get pid(): number | undefined {
    return this.child?.exitCode === null && this.child.signalCode === null
      ? this.child.pid
      : undefined;
  }

  get running(): boolean {
    return this.pid !== undefined;
  }

  private async spawnAndWait(): Promise<void> {
    if (this.disposed) throw new Error("server disposed");
    if (this.running) throw new Error(`server on port ${this.port} is already running`);
    const bin = findNatsServer();
    const child = spawn(bin, ["-c", this.configPath], {
      stdio: ["ignore", "pipe", "pipe"],
      detached: this.detached,
    });
    this.child = child;
    this.paused = false;
    this.exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
    const onData = (chunk: Buffer) => {
      for (const line of chunk.toString("utf8").split("\n")) {
        if (!line) continue;
        this.log.push(line);
        if (this.log.length > LOG_LINES) this.log.shift();
      }
    };
    child.stdout?.on("data", onData);
    child.stderr?.on("data", onData);
    const spawnError = new Promise<never>((_, reject) => {
      child.once("error", reject);
      this.exited.then(() =>
        reject(
          new Error(
            `nats-server on port ${this.port} exited during start:\n${this.log.slice(-20).join("\n")}`,
          ),
        ),
      );
    });
    spawnError.catch(() => {});
    if (child.pid === undefined) await spawnError;
    tracker?.spawned(child.pid!, [this.workDir]);
    await Promise.race([this.waitReady(), spawnError]);
  }

  /** Polls the port until the server greets with INFO (showing JetStream when enabled). */
  private async waitReady(): Promise<void> {
    const deadline = Date.now() + this.readyTimeoutMs;
    for (;;) {
      const info = await readInfo(this.port).catch(() => undefined);
      if (
        info &&
        (!this.jetstream || info.jetstream === true) &&
        (this.wsPort === undefined || (await portIsOpen(this.wsPort)))
      ) {
        return;
      }
      if (!this.running) throw new Error(`nats-server on port ${this.port} is not running`);
      if (Date.now() > deadline) {
        throw new Error(
          `nats-server on port ${this.port} not ready after ${this.readyTimeoutMs} ms:\n${this.log.slice(-20).join("\n")}`,
        );
      }
      await new Promise((r) => setTimeout(r, 25));
    }
  }

  private async signalAndWait(signal: NodeJS.Signals, graceMs: number): Promise<void> {
    const child = this.child;
    const pid = this.pid;
    if (!child || pid === undefined) return;
    if (this.paused && signal !== "SIGKILL") {
      process.kill(pid, "SIGCONT");
      this.paused = false;
    }
    process.kill(pid, signal);
    const timer = new Promise<"timeout">((r) => setTimeout(() => r("timeout"), graceMs).unref());
    if ((await Promise.race([this.exited, timer])) === "timeout" && this.pid !== undefined) {
      process.kill(pid, "SIGKILL");
      await this.exited;
    }
    this.paused = false;
    tracker?.stopped(pid);
  }

  /** Graceful stop (SIGTERM); escalates to SIGKILL after `graceMs` (default 10 s). Idempotent. */
  async stop(graceMs = 10_000): Promise<void> {
    await this.signalAndWait("SIGTERM", graceMs);
  }

  /** Hard kill (SIGKILL); resolves once the process has exited. Idempotent. */
  async kill(): Promise<void> {
    await this.signalAndWait("SIGKILL", 10_000);
  }

  /** Freezes the process (SIGSTOP): its sockets stay open but it answers nothing. */
  pause(): void {
    const pid = this.pid;
    if (pid === undefined) throw new Error("server is not running");
    process.kill(pid, "SIGSTOP");
    this.paused = true;
    // SIGSTOP takes effect asynchronously; return only once the process is stopped (state T),
    // so that whatever the caller sends next is certain to meet a frozen server.
    const deadline = Date.now() + 2000;
    while (processState(pid) !== "T" && Date.now() < deadline) {
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 1);
    }
  }

  /** Thaws a paused process (SIGCONT). */
  resume(): void {
    const pid = this.pid;
    if (pid === undefined) throw new Error("server is not running");
    process.kill(pid, "SIGCONT");
    this.paused = false;
  }

  /**
   * Stops the server if it runs (SIGTERM, SIGKILL after `graceMs`), then starts it again on the
   * same port and store.
   */
  async restart(graceMs = 10_000): Promise<void> {
    await this.stop(graceMs);
    await this.spawnAndWait();
  }

  /** Kills the process if it runs and removes the temp dir. Idempotent. */
  async dispose(): Promise<void> {
    if (this.disposed) return;
    await this.kill();
    this.disposed = true;
    rmSync(this.workDir, { recursive: true, force: true });
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.dispose();
  }
}

export interface ServerInfo {
  jetstream?: boolean;
  server_name?: string;
  server_id?: string;
  version?: string;
}

/** A free port for the WebSocket listener, other than the client port `clientPort`. */
async function freeWsPort(clientPort: number): Promise<number> {
  const ports = await freePorts(2);
  return ports[0] === clientPort ? ports[1]! : ports[0]!;
}

/** Connects, reads the INFO line the server sends first, and disconnects. */
export function readInfo(port: number, timeoutMs = 1000): Promise<ServerInfo> {
  return new Promise((resolve, reject) => {
    const socket = tcpConnect({ host: "127.0.0.1", port });
    let buf = "";
    const done = (err?: Error, info?: ServerInfo) => {
      clearTimeout(timer);
      socket.destroy();
      if (err) reject(err);
      else resolve(info!);
    };
    const timer = setTimeout(() => done(new Error("INFO timeout")), timeoutMs);
    socket.on("error", (err) => done(err));
    socket.on("data", (chunk) => {
      buf += chunk.toString("utf8");
      const end = buf.indexOf("\r\n");
      if (end < 0) return;
      const line = buf.slice(0, end);
      if (!line.startsWith("INFO ")) return done(new Error(`unexpected greeting: ${line}`));
      try {
        done(undefined, JSON.parse(line.slice(5)) as ServerInfo);
      } catch (err) {
        done(err as Error);
      }
    });
  });
}

/** True when something accepts TCP connections on 127.0.0.1:`port`. */
export function portIsOpen(port: number, timeoutMs = 500): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = tcpConnect({ host: "127.0.0.1", port });
    const timer = setTimeout(() => finish(false), timeoutMs);
    const finish = (open: boolean) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(open);
    };
    socket.once("connect", () => finish(true));
    socket.once("error", () => finish(false));
  });
}

/** The state letter of /proc/<pid>/stat (R, S, T = stopped, Z…), or undefined. */
function processState(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3);
  } catch {
    return undefined;
  }
}
