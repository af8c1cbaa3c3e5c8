import { createServer, type Server } from "node:net";

/** NATS's well-known client port: never handed out, so a system server there is left alone. */
const NATS_DEFAULT_PORT = 4222;

/**
 * Reserves `n` distinct free TCP ports on 127.0.0.1 (never 4222) by binding them all at once,
 * then releases them. The usual small race applies (another process may take one before the
 * caller binds it); the server start retries on "address already in use".
 */
export async function freePorts(n: number): Promise<number[]> {
  const servers: Server[] = [];
  try {
    const ports: number[] = [];
    while (ports.length < n) {
      const s = createServer();
      servers.push(s);
      await new Promise<void>((resolve, reject) => {
        s.once("error", reject);
        s.listen(0, "127.0.0.1", () => resolve());
      });
      const addr = s.address();
      if (addr === null || typeof addr === "string") throw new Error("no port bound");
      // Kept bound (so it is not handed out again) but not used.
      if (addr.port !== NATS_DEFAULT_PORT) ports.push(addr.port);
    }
    return ports;
  } finally {
    await Promise.all(servers.map((s) => new Promise<void>((r) => s.close(() => r()))));
  }
}

export async function freePort(): Promise<number> {
  const [port] = await freePorts(1);
  return port!;
}
