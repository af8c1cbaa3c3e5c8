import { defineConfig } from "vitest/config";

/** The soak run: `npm run soak` (SOAK_MESSAGES, SOAK_RESTARTS tune it). */
export default defineConfig({
  test: {
    include: ["test/soak/**/*.soak.ts"],
    globalSetup: ["test/harness/global-setup.ts"],
    testTimeout: 600_000,
    hookTimeout: 60_000,
    pool: "forks",
  },
});
