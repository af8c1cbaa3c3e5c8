export {
  DEBIAN_NATS_SERVER,
  findNatsServer,
  locateNatsServer,
  NatsServerNotFoundError,
} from "./binary.js";
export { NatsCluster } from "./cluster.js";
export { consumerInfo, createConsumer, createStream, jsmOn, publishN } from "./jetstream.js";
export { LeafTopology, type LeafTopologyOptions } from "./leaf.js";
export { freePort, freePorts } from "./ports.js";
export { TcpProxy } from "./proxy.js";
export { NatsServer, portIsOpen, readInfo, type ServerOptions } from "./server.js";
