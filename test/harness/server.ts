/**
 * One real nats-server process on a free 127.0.0.1 port with a fresh temp store.
 *
 * The class lives in packages/cli/src/server/ (the CLI's embedded server is the same code); here
 * it is wired to the harness's pid registry, so the global teardown reaps any server a test leaves
 * running. Every module that starts servers imports them from here (or from index.ts).
 */
import { setProcessTracker } from "../../packages/cli/src/server/nats-server.js";
import { forgetProcess, recordProcess } from "./registry.js";

setProcessTracker({ spawned: recordProcess, stopped: forgetProcess });

export {
  NatsServer,
  portIsOpen,
  readInfo,
  type ServerOptions,
} from "../../packages/cli/src/server/nats-server.js";
