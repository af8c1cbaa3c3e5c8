import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    exclude: ["test/bench/**", "node_modules/**"],
    globalSetup: ["test/harness/global-setup.ts"],
    // Integration tests start real nats-server processes; give them room on a 2-core machine.
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: "forks",
    // An unhandled rejection anywhere fails the run (vitest's default, stated so nobody turns it off).
    dangerouslyIgnoreUnhandledErrors: false,
    typecheck: { enabled: true, include: ["test/**/*.test-d.ts"] },
  },
});
