/** Free loopback ports. The code lives in src/cli/server/ (the CLI's embedded server uses it). */
export { freePort, freePorts } from "../../src/cli/server/ports.js";
