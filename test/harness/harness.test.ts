import { randomBytes } from "node:crypto";
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { request } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { jetstream } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  consumerInfo,
  createConsumer,
  createStream,
  jsmOn,
  locateNatsServer,
  NatsCluster,
  NatsServer,
  NatsServerNotFoundError,
  portIsOpen,
  publishN,
  readInfo,
} from "./index.js";
import { isNatsServerPid } from "./registry.js";

describe("nats-server discovery", () => {
  it("prefers NATS_SERVER_BIN, then PATH, then /usr/sbin", () => {
    const dir = mkdtempSync(join(tmpdir(), "jsiter-bin-"));
    try {
      const fake = join(dir, "nats-server");
      writeFileSync(fake, "#!/bin/sh\n");
      chmodSync(fake, 0o755);
      expect(locateNatsServer({ NATS_SERVER_BIN: fake, PATH: "" })).toBe(fake);
      expect(locateNatsServer({ PATH: dir })).toBe(fake);
      expect(locateNatsServer({ NATS_SERVER_BIN: join(dir, "missing") })).toBeUndefined();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("says how to install nats-server when none is found", () => {
    const err = new NatsServerNotFoundError({ PATH: "" });
    expect(err.message).toContain("apt-get install nats-server");
    expect(err.message).toContain("NATS_SERVER_BIN");
  });
});

describe("single server", () => {
  let server: NatsServer;
  beforeAll(async () => {
    server = await NatsServer.start();
  });
  afterAll(async () => {
    await server?.dispose();
  });

  it("listens on a loopback port other than 4222 and serves JetStream", async () => {
    expect(server.port).not.toBe(4222);
    expect(server.url).toMatch(/^nats:\/\/127\.0\.0\.1:\d+$/);
    const info = await readInfo(server.port);
    expect(info.jetstream).toBe(true);
    const account = await jsmOn(server.url, (jsm) => jsm.getAccountInfo());
    expect(account.streams).toBe(0);
  });

  it("creates a stream and a durable pull consumer, publishes N, reads consumer info", async () => {
    await createStream(server.url, "H1");
    await createConsumer(server.url, "H1", "c1");
    const seqs = await publishN(server.url, "H1.x", 500);
    expect(seqs).toHaveLength(500);
    expect(seqs[0]).toBe(1);
    expect(seqs[499]).toBe(500);
    const ci = await consumerInfo(server.url, "H1", "c1");
    expect(ci.num_pending).toBe(500);
    expect(ci.config.durable_name).toBe("c1");
  });

  it("keeps data across restart() on the same port and store", async () => {
    await createStream(server.url, "H2");
    await publishN(server.url, "H2.x", 10);
    const pidBefore = server.pid;
    await server.restart();
    expect(server.pid).not.toBe(pidBefore);
    const info = await jsmOn(server.url, (jsm) => jsm.streams.info("H2"));
    expect(info.state.messages).toBe(10);
  });

  it("closes the port after kill() and stops the process by pid", async () => {
    const other = await NatsServer.start();
    const pid = other.pid!;
    expect(isNatsServerPid(pid)).toBe(true);
    await other.kill();
    expect(other.running).toBe(false);
    expect(isNatsServerPid(pid)).toBe(false);
    expect(await portIsOpen(other.port)).toBe(false);
    await other.dispose();
  });

  it("pause() makes the server unresponsive and resume() brings it back", async () => {
    const nc = await connect({ servers: server.url, timeout: 2000 });
    try {
      server.pause();
      const raced = await Promise.race([
        nc.flush().then(() => "answered"),
        new Promise((r) => setTimeout(() => r("silent"), 300)),
      ]);
      expect(raced).toBe("silent");
      server.resume();
      await nc.flush();
    } finally {
      if (server.running) server.resume();
      await nc.close();
    }
  });
});

describe("websocket listener", () => {
  /** Upgrades an HTTP request on `port` to a WebSocket; resolves what the server sends first. */
  function firstWsBytes(port: number): Promise<string> {
    return new Promise((resolve, reject) => {
      const req = request({
        host: "127.0.0.1",
        port,
        path: "/",
        headers: {
          Connection: "Upgrade",
          Upgrade: "websocket",
          "Sec-WebSocket-Version": "13",
          "Sec-WebSocket-Key": randomBytes(16).toString("base64"),
        },
      });
      const timer = setTimeout(() => {
        req.destroy();
        reject(new Error("no WebSocket greeting within 5 s"));
      }, 5000);
      req.once("error", (err) => {
        clearTimeout(timer);
        reject(err);
      });
      req.once("response", (res) => {
        clearTimeout(timer);
        res.resume();
        req.destroy();
        reject(new Error(`no upgrade: HTTP ${res.statusCode}`));
      });
      req.once("upgrade", (_res, socket, head: Buffer) => {
        const done = (chunk: Buffer) => {
          clearTimeout(timer);
          socket.destroy();
          resolve(chunk.toString("latin1"));
        };
        // The first frame may come in the same packet as the 101 response.
        if (head.length > 0) done(head);
        else socket.once("data", done);
      });
      req.end();
    });
  }

  it("websocket: true adds a plain (no TLS) WebSocket listener on another loopback port, greeting with INFO", async () => {
    const server = await NatsServer.start({ jetstream: false, websocket: true });
    try {
      expect(server.wsPort).toBeDefined();
      expect(server.wsPort).not.toBe(server.port);
      expect(server.wsUrl).toBe(`ws://127.0.0.1:${server.wsPort}`);
      expect(await firstWsBytes(server.wsPort!)).toContain("INFO {");
    } finally {
      await server.dispose();
    }
  });

  it("is off by default", async () => {
    const server = await NatsServer.start({ jetstream: false });
    try {
      expect(server.wsPort).toBeUndefined();
      expect(server.wsUrl).toBeUndefined();
    } finally {
      await server.dispose();
    }
  });
});

describe("3-node cluster", () => {
  let cluster: NatsCluster;
  beforeAll(async () => {
    cluster = await NatsCluster.start(3);
  });
  afterAll(async () => {
    await cluster?.dispose();
  });

  it("elects a meta leader and keeps an R3 stream through losing one node", async () => {
    expect(cluster.nodes.map((n) => n.name)).toEqual(["n1", "n2", "n3"]);
    await createStream(cluster.servers, "R3", { num_replicas: 3 });
    await publishN(cluster.servers, "R3.x", 100);
    const before = await jsmOn(cluster.servers, (jsm) => jsm.streams.info("R3"));
    const leader = before.cluster?.leader;
    expect(leader).toMatch(/^n[123]$/);
    await cluster.node(leader!).kill();

    const deadline = Date.now() + 20_000;
    let messages = -1;
    let newLeader: string | undefined;
    while (Date.now() < deadline) {
      try {
        const info = await jsmOn(cluster.servers, (jsm) => jsm.streams.info("R3"));
        messages = info.state.messages;
        newLeader = info.cluster?.leader;
        if (newLeader && newLeader !== leader) break;
      } catch {
        // no leader yet
      }
      await new Promise((r) => setTimeout(r, 200));
    }
    expect(newLeader).toBeDefined();
    expect(newLeader).not.toBe(leader);
    expect(messages).toBe(100);

    // the stream still takes writes with one node down
    const nc = await connect({ servers: cluster.servers, timeout: 2000 });
    try {
      const ack = await jetstream(nc).publish("R3.x", "after");
      expect(ack.seq).toBe(101);
    } finally {
      await nc.close();
    }
    await cluster.node(leader!).restart();
    expect(cluster.node(leader!).running).toBe(true);
  });
});

describe("global teardown", () => {
  it("reaps a recorded server that a test left running, by pid", async () => {
    const { mkdtempSync: mk, writeFileSync: wr } = await import("node:fs");
    const { reapRecorded } = await import("./registry.js");
    const leaked = await NatsServer.start({ jetstream: false });
    const pid = leaked.pid!;
    const dir = mk(join(tmpdir(), "jsiter-reap-"));
    try {
      wr(join(dir, String(pid)), JSON.stringify([]));
      expect(reapRecorded(dir)).toEqual([pid]);
      const deadline = Date.now() + 5000;
      while (isNatsServerPid(pid) && Date.now() < deadline)
        await new Promise((r) => setTimeout(r, 20));
      expect(isNatsServerPid(pid)).toBe(false);
    } finally {
      rmSync(dir, { recursive: true, force: true });
      await leaked.dispose();
    }
  });
});
