/** The TCP proxy cuts connections without touching the server, and refuses while paused. */
import { connect } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { NatsServer } from "./index.js";
import { TcpProxy } from "./proxy.js";

let server: NatsServer;
let proxy: TcpProxy;
beforeAll(async () => {
  server = await NatsServer.start();
  proxy = await TcpProxy.start(Number(new URL(server.url).port));
});
afterAll(async () => {
  await proxy?.close();
  await server?.dispose();
});

describe("TcpProxy", () => {
  it("forwards; cut() drops the connection, which reconnects through it; the server stays up", async () => {
    const nc = await connect({
      servers: proxy.url(),
      reconnectTimeWait: 50,
      maxReconnectAttempts: -1,
    });
    try {
      await nc.flush();
      expect(proxy.connections).toBe(1);
      const events: string[] = [];
      const watching = (async () => {
        for await (const s of nc.status()) {
          events.push(s.type);
          if (s.type === "reconnect") break;
        }
      })();
      proxy.cut();
      await watching;
      expect(events).toContain("disconnect");
      await nc.flush();
      expect(server.running).toBe(true);
    } finally {
      await nc.close();
    }
  });
});
