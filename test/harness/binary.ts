/**
 * Finds the nats-server executable: `NATS_SERVER_BIN`, then `PATH`, then Debian's
 * `/usr/sbin/nats-server`. The code lives in packages/cli/src/server/ (the CLI's embedded server
 * uses it).
 */
export {
  DEBIAN_NATS_SERVER,
  findNatsServer,
  locateNatsServer,
  NatsServerNotFoundError,
} from "../../packages/cli/src/server/binary.js";
