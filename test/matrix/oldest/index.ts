/**
 * The oldest nats.js releases of the declared peer ranges, as a user of them imports them. This
 * module lives in this folder so that the imports below resolve from its own node_modules (where
 * the root's `npm ci` installs the versions this folder's package.json pins, each with its own
 * matching dependencies), not from the root's, which holds the newest.
 */
export type {
  ConsumeOptions as V3ConsumeOptions,
  Consumer as V3Consumer,
  ConsumerMessages as V3ConsumerMessages,
  ConsumerNotification as V3ConsumerNotification,
  JsMsg as V3JsMsg,
} from "@nats-io/jetstream";
export { jetstream } from "@nats-io/jetstream";
export type { NatsConnection as V3NatsConnection } from "@nats-io/nats-core";
export { connect as connectV3 } from "@nats-io/transport-node";
export type {
  ConsumeOptions as V2ConsumeOptions,
  Consumer as V2Consumer,
  ConsumerMessages as V2ConsumerMessages,
  ConsumerStatus as V2ConsumerStatus,
  JsMsg as V2JsMsg,
  NatsConnection as V2NatsConnection,
} from "nats";
export { connect as connectV2 } from "nats";

/** Where this module is: package versions are read as resolved from here. */
export const here: string = import.meta.url;
