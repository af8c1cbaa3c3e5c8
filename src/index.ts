/**
 * jetstream-iter: a JetStream pull-consumer iterator whose shutdown always ends, loses nothing
 * and never hangs. Drop-in for nats.js `consumer.consume()`.
 */
export type {
  ConnectionStatusLike,
  HeadersLike,
  MsgLike,
  NatsConnectionLike,
  StatusIteratorLike,
  SubscribeOptionsLike,
  SubscriptionLike,
} from "./connection.js";
export {
  consume,
  fetchMessages,
  type MessagesOf,
  type MsgOf,
  nextMessage,
  type PullConsumerLike,
  type PullMessagesOptions,
  pullMessages,
  type StatusOf,
  wrapConsumer,
} from "./consume.js";
export {
  AbortError,
  type ApiError,
  CallbackModeError,
  ConnectionClosedError,
  ConsumerDeletedError,
  ConsumerNotFoundError,
  ErrorCode,
  HeartbeatsMissedError,
  InvalidConsumerError,
  InvalidOptionError,
  isAbortError,
  JetStreamStatusError,
  MsgIteratorClosedError,
  NextTimeoutError,
  OrderedConsumerError,
  StreamNotFoundError,
} from "./errors.js";
export { type DeliveryInfo, JsMsg, type JsMsgFlavor, type NextPullOptions } from "./jsmsg.js";
export {
  CLOSE_FENCE_TIMEOUT,
  type Counters,
  DEFAULT_DRAIN_TIMEOUT,
  Messages,
  type NextOptions,
  type Phase,
} from "./messages.js";
export type { Notification, PullRequest, V2Status } from "./notifications.js";
export type {
  ConsumeOptions,
  ConsumerCallback,
  FetchOptions,
  NextMessageOptions,
} from "./options.js";
