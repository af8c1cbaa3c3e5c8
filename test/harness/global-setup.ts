/**
 * Vitest global setup: creates the run directory where every spawned nats-server is
 * recorded, and on teardown kills (by pid) any that a test left running.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { RUN_DIR_ENV, reapRecorded } from "./registry.js";

export default function setup(): () => void {
  const dir = mkdtempSync(join(tmpdir(), "jsiter-run-"));
  process.env[RUN_DIR_ENV] = dir;
  return () => {
    const killed = reapRecorded(dir);
    if (killed.length > 0) {
      console.warn(`harness teardown killed ${killed.length} leftover nats-server(s): ${killed}`);
    }
    rmSync(dir, { recursive: true, force: true });
  };
}
