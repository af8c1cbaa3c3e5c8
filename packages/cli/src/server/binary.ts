/**
 * Finds the nats-server executable: `NATS_SERVER_BIN`, then `PATH`, then Debian's
 * `/usr/sbin/nats-server`. Throws a message that says how to install one.
 */
import { accessSync, constants } from "node:fs";
import { delimiter, join } from "node:path";

export const DEBIAN_NATS_SERVER = "/usr/sbin/nats-server";

/** How to get a nats-server; part of every "not found" message. */
export const INSTALL_HINT =
  "Install it with: sudo apt-get install nats-server (Debian/Ubuntu), or download a release from https://github.com/nats-io/nats-server/releases";

function isExecutable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** Returns the path of a nats-server binary, or undefined when none is found. */
export function locateNatsServer(env: NodeJS.ProcessEnv = process.env): string | undefined {
  const fromEnv = env.NATS_SERVER_BIN;
  if (fromEnv) {
    return isExecutable(fromEnv) ? fromEnv : undefined;
  }
  for (const dir of (env.PATH ?? "").split(delimiter)) {
    if (!dir) continue;
    const candidate = join(dir, "nats-server");
    if (isExecutable(candidate)) return candidate;
  }
  return isExecutable(DEBIAN_NATS_SERVER) ? DEBIAN_NATS_SERVER : undefined;
}

export class NatsServerNotFoundError extends Error {
  override readonly name = "NatsServerNotFoundError";
  constructor(env: NodeJS.ProcessEnv = process.env) {
    super(
      env.NATS_SERVER_BIN
        ? `NATS_SERVER_BIN=${env.NATS_SERVER_BIN} is not an executable file. Point it at a nats-server binary, or unset it to search PATH and ${DEBIAN_NATS_SERVER}. ${INSTALL_HINT}.`
        : `nats-server was not found (looked at NATS_SERVER_BIN, PATH and ${DEBIAN_NATS_SERVER}). ${INSTALL_HINT}, or set NATS_SERVER_BIN to the binary's path.`,
    );
  }
}

/** Returns the path of a nats-server binary or throws {@link NatsServerNotFoundError}. */
export function findNatsServer(env: NodeJS.ProcessEnv = process.env): string {
  const found = locateNatsServer(env);
  if (!found) throw new NatsServerNotFoundError(env);
  return found;
}
