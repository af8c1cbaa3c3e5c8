/**
 * The link: what one engine learns from its connection. `disconnect` and `reconnect` statuses,
 * and the connection's end with its verdict: lost (a failure) or closed by the application.
 *
 * nats.js resolves `closed()` without an error when a connection with reconnects off loses its
 * server; only the `disconnect` status before it tells that from `nc.close()`. Statuses reach us
 * through microtask chains (v2 relays them twice), so at the moment `closed()` settles the
 * `disconnect` may not have arrived yet. The link reports the end at once, with the verdict
 * when it is certain (an Error from nats.js, or a `disconnect` already seen) and otherwise as a
 * promise that settles once those chains have run (a `setTimeout(0)`: the next task, after every
 * microtask; in a hidden browser tab the timer may be throttled, which only delays the verdict):
 * the iterator ends at once, so nothing gentler can slip in before the verdict.
 */
import {
  type ConnectionStatusLike,
  type NatsConnectionLike,
  onConnectionClosed,
  onConnectionStatus,
} from "./connection.js";
import { ConnectionClosedError } from "./errors.js";

export interface LinkEvents {
  disconnected(): void;
  reconnected(): void;
  /**
   * The connection closed. `verdict` is a `ConnectionClosedError` when it was lost, undefined
   * when the application closed it; a promise (which always settles) while not yet certain.
   */
  ended(
    verdict: ConnectionClosedError | undefined | Promise<ConnectionClosedError | undefined>,
  ): void;
}

export class Link {
  private up = true;
  private unwatchStatus: (() => void) | undefined;
  private unwatchClosed: (() => void) | undefined;

  constructor(
    private readonly nc: NatsConnectionLike,
    private readonly events: LinkEvents,
  ) {}

  /** The connection is up, as far as its statuses told us. */
  get connected(): boolean {
    return this.up;
  }

  /** Starts listening to the connection's statuses and its end. */
  start(): void {
    this.unwatchClosed = onConnectionClosed(this.nc, (err) => this.closed(err));
    try {
      // One status() iterator per connection serves every link on it (connection.ts).
      this.unwatchStatus = onConnectionStatus(this.nc, (s) => this.status(s));
    } catch {
      return;
    }
  }

  private status(s: ConnectionStatusLike): void {
    if (s.type === "disconnect") {
      this.up = false;
      this.events.disconnected();
    } else if (s.type === "reconnect") {
      this.up = true;
      this.events.reconnected();
    }
  }

  /** Stops listening: the status iterator and the closed() listener are removed. Idempotent. */
  stop(): void {
    this.unwatchStatus?.();
    this.unwatchStatus = undefined;
    this.unwatchClosed?.();
    this.unwatchClosed = undefined;
  }

  private closed(err: Error | undefined): void {
    if (err || !this.up) {
      this.events.ended(new ConnectionClosedError(err ?? lostCause()));
      return;
    }
    this.events.ended(
      new Promise((resolve) =>
        setTimeout(() => resolve(this.up ? undefined : new ConnectionClosedError(lostCause())), 0),
      ),
    );
  }
}

function lostCause(): Error {
  return new Error("disconnected and not reconnected");
}
