/**
 * The demo's embedded nats-server: found like the tests find it (`NATS_SERVER_BIN`, `PATH`,
 * `/usr/sbin/nats-server`), on a free 127.0.0.1 port (never 4222) with JetStream and a temp
 * store, in its own process group (a Ctrl-C in the terminal reaches only the CLI, which then
 * shuts down in order). It is stopped by its pid — SIGTERM, SIGKILL after a grace period — and
 * its temp dir removed, on every way out: the normal end, Ctrl-C, SIGTERM, an error. A forced
 * exit (Ctrl-C twice) or any other `process.exit` kills every process it spawned, by pid,
 * synchronously — also one still starting or restarting.
 */
import { rmSync } from "node:fs";
import { CliError } from "./errors.js";
import { NatsServerNotFoundError } from "./server/binary.js";
import { NatsServer, readInfo, setProcessTracker } from "./server/nats-server.js";
import type { Interrupts } from "./signals.js";

/** How long a SIGTERM'd server gets before SIGKILL. */
export const STOP_GRACE_MS = 5_000;

export class EmbeddedServer {
  private shutDown: Promise<void> | undefined;

  private constructor(
    readonly server: NatsServer,
    readonly version: string | undefined,
    private readonly release: () => void,
  ) {}

  /** Starts it, or throws a {@link CliError} (with the install hint when there is no binary). */
  static async start(interrupts: Interrupts): Promise<EmbeddedServer> {
    // Every process spawned (also by a restart) and every temp dir, until shut down in order.
    const live = new Set<number>();
    const dirs = new Set<string>();
    const emergency = () => {
      for (const pid of live) {
        try {
          process.kill(pid, "SIGKILL");
        } catch {
          // exited meanwhile
        }
      }
      live.clear();
      for (const dir of dirs) rmSync(dir, { recursive: true, force: true, maxRetries: 3 });
      dirs.clear();
    };
    const previous = setProcessTracker({
      spawned: (pid, d) => {
        live.add(pid);
        for (const dir of d) dirs.add(dir);
        previous?.spawned(pid, d);
      },
      stopped: (pid) => {
        live.delete(pid);
        previous?.stopped(pid);
      },
    });
    process.once("exit", emergency);
    const removeForce = interrupts.onForce(emergency);
    const release = () => {
      setProcessTracker(previous);
      process.off("exit", emergency);
      removeForce();
    };
    let server: NatsServer;
    try {
      server = await NatsServer.start({ detached: true });
    } catch (err) {
      release();
      if (err instanceof NatsServerNotFoundError) {
        throw new CliError(`${err.message} Or use a running server: --server URL.`);
      }
      throw new CliError(`could not start the embedded nats-server: ${(err as Error).message}`);
    }
    const version = await readInfo(server.port)
      .then((i) => i.version)
      .catch(() => undefined);
    return new EmbeddedServer(server, version, release);
  }

  get url(): string {
    return this.server.url;
  }

  get pid(): number | undefined {
    return this.server.pid;
  }

  /** Restarts the process on the same port and store (SIGTERM, then a new process). */
  restart(): Promise<void> {
    return this.server.restart(STOP_GRACE_MS);
  }

  /** SIGTERM (SIGKILL after {@link STOP_GRACE_MS}), wait for the exit, remove the temp dir. Idempotent. */
  shutdown(): Promise<void> {
    this.shutDown ??= (async () => {
      try {
        await this.server.stop(STOP_GRACE_MS);
      } finally {
        await this.server.dispose();
        this.release();
      }
    })();
    return this.shutDown;
  }
}
