/**
 * The two implementations every compatibility test runs against: nats.js's own pull consumer,
 * and the same consumer with `consume`, `fetch` and `next` replaced by jetstream-iter's
 * (`wrapConsumer()`). Everything else on the consumer (info, delete, …) passes through.
 */
import type { Consumer } from "@nats-io/jetstream";
import * as lib from "../../src/index.js";

export type ImplName = "nats.js" | "jetstream-iter";

export interface Impl {
  name: ImplName;
  /** Whether this implementation can run at all (ours needs `wrapConsumer` on main). */
  available: boolean;
  wrap<C extends Consumer>(consumer: C): C;
}

type Wrap = <C>(consumer: C) => C;

/** `wrapConsumer` from src/index.ts, once it exists. */
const wrapConsumer = (lib as Record<string, unknown>).wrapConsumer as Wrap | undefined;

export const NATS_JS: Impl = {
  name: "nats.js",
  available: true,
  wrap: (c) => c,
};

export const JETSTREAM_ITER: Impl = {
  name: "jetstream-iter",
  available: typeof wrapConsumer === "function",
  wrap: (c) => {
    if (!wrapConsumer) throw new Error("wrapConsumer is not exported from src/index.ts yet");
    return wrapConsumer(c);
  },
};

export const impls: Impl[] = [NATS_JS, JETSTREAM_ITER];

/** Whether `impl` is ours (for the documented differences, each cited where it is used). */
export const isOurs = (impl: Impl): boolean => impl.name === "jetstream-iter";
