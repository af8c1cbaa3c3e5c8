/**
 * Free loopback ports. The code lives in packages/cli/src/server/ (the CLI's embedded server
 * uses it).
 */
export { freePort, freePorts } from "../../packages/cli/src/server/ports.js";
