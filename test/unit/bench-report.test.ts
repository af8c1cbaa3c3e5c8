/**
 * The benchmark report's arithmetic (test/bench/report*.ts, targets.ts): the latency join, our
 * layer's CPU above the ceiling, the target verdicts, and that every chart compiles. Pure
 * functions on synthetic runs; no server, no timing.
 */

import { compile } from "vega-lite";
import { describe, expect, it } from "vitest";
import { median, percentile } from "../bench/format.js";
import { charts, type Meta, markdown, type Run } from "../bench/report.js";
import { joinLatency, latencyRows } from "../bench/report-latency.js";
import { heapHolds, manyRows } from "../bench/report-many.js";
import { orderedHolds, replayRows } from "../bench/report-replay.js";
import {
  cellTargets,
  layerRatio,
  type ThroughputRow,
  throughputRows,
} from "../bench/report-throughput.js";
import { targetChecks } from "../bench/targets.js";
import type {
  Contender,
  LatencyJob,
  LatencyRawResult,
  ManyResult,
  PublishResult,
  ReplayResult,
  ThroughputResult,
} from "../bench/types.js";

const meta: Meta = {
  date: "2026-01-01T00:00:00.000Z",
  mode: "short",
  node: "v20",
  natsServer: "v2.9.10",
  natsServerBin: "/usr/sbin/nats-server",
  cpus: 2,
  cpuModel: "test",
  memoryGiB: 1,
  kernel: "6",
  loadavgStart: [0, 0, 0],
  loadavgEnd: [0, 0, 0],
  libraries: {},
  commit: "abc",
  options: {},
  durationSeconds: 1,
};

function tpRun(
  contender: Contender,
  ack: boolean,
  payload: number,
  maxMessages: number,
  fig: { msgPerSec: number; cpu: number; server: number; rssMiB: number },
): Run {
  const messages = 1000;
  const result: ThroughputResult = {
    kind: "throughput",
    messages,
    seconds: messages / fig.msgPerSec,
    msgPerSec: fig.msgPerSec,
    cpuUs: fig.cpu * messages,
    cpuUsPerMsg: fig.cpu,
    serverCpuUs: fig.server * messages,
    maxRssKb: fig.rssMiB * 1024,
  };
  return {
    rep: 0,
    job: {
      kind: "throughput",
      contender,
      stream: "P",
      consumer: "c",
      messages,
      ack,
      payload,
      maxMessages,
    },
    wallMs: 1000,
    result,
  };
}

function latencyRun(contender: Contender, rate: number, p99: number): Run {
  const pct = { count: 100, p50: p99 / 4, p90: p99 / 2, p99, max: p99 * 2 };
  return {
    rep: 0,
    job: {
      kind: "latency",
      contender,
      stream: "LAT",
      consumer: "c",
      rate,
      messages: 100,
      warmup: 0,
      payload: 1024,
      ack: contender !== "core",
      maxMessages: 100,
      deadlineMs: 1000,
    },
    wallMs: 1000,
    result: {
      kind: "latency",
      rate,
      messages: 100,
      received: 100,
      fromPublish: pct,
      fromPubAck: pct,
      pubAck: pct,
      behindMaxMs: 0.5,
      cpuUs: 100,
      cpuUsPerMsg: 1,
      maxRssKb: 1024,
    },
  };
}

function manyRun(contender: Contender, n: number, idleHeap: number, loadHeap: number): Run {
  const phase = { rssPerIterKb: 1, drainAllMs: 2, drainAllLate: 0, handedOutAfter: 0 };
  const result: ManyResult = {
    kind: "many",
    n,
    lookupMs: 1,
    idle: { ...phase, heapPerIterKb: idleHeap, windowMs: 5000, cpuMsPerIterPerMin: 1 },
    load: { ...phase, heapPerIterKb: loadHeap, messages: 10, msgPerSec: 100, cpuUsPerMsg: 3 },
    maxRssKb: 1024,
  };
  return {
    rep: 0,
    job: {
      kind: "many",
      contender,
      stream: "M",
      consumer: "b",
      n,
      idlePrefix: "bi",
      loadPrefix: "bl",
      messages: 10,
      payload: 128,
      maxMessages: 10,
      expires: 5000,
      idleWindowMs: 5000,
      loadFraction: 0.8,
    },
    wallMs: 1000,
    result,
  };
}

function replayRun(
  contender: Contender,
  mode: "ordered" | "fetch",
  msgPerSec: number,
  maxMessages = 100,
): Run {
  const result: ReplayResult = {
    kind: "replay",
    messages: 1000,
    seconds: 1000 / msgPerSec,
    msgPerSec,
    cpuUs: 1000,
    cpuUsPerMsg: 1,
    serverCpuUs: 2000,
    batches: mode === "fetch" ? 10 : 0,
    maxRssKb: 1024,
  };
  return {
    rep: 0,
    job: {
      kind: "replay",
      mode,
      contender,
      stream: "P128",
      consumer: "",
      messages: 1000,
      payload: 128,
      maxMessages,
      expires: 5000,
    },
    wallMs: 1000,
    result,
  };
}

describe("bench report: latency", () => {
  it("joins the two sides by index, leaving out the warm-up and what one side did not see", () => {
    const job = { warmup: 2, messages: 6, rate: 1000 } as LatencyJob;
    const raw: LatencyRawResult = {
      kind: "latency-raw",
      // index 3 never reached the loop body
      bodyAt: [10, 20, 31, -1, 55, 66],
      received: 5,
      cpuUs: 500,
      serverCpuUs: 1000,
      maxRssKb: 1,
    };
    const pub: PublishResult = {
      kind: "publish",
      sentAt: [9, 19, 30, 40, 50, 60],
      ackedAt: [9.5, 19.5, 32, 41, 51, 70],
      behindMaxMs: 0.1,
    };
    const r = joinLatency(job, raw, pub);
    // indexes 2, 4, 5: 31-30, 55-50, 66-60
    expect(r.fromPublish.count).toBe(3);
    expect(r.fromPublish.p50).toBe(5);
    expect(r.fromPublish.max).toBe(6);
    // from the PubAck: 31-32 = -1 (the body was first), 55-51 = 4, 66-70 = -4
    expect(r.fromPubAck.p50).toBe(-1);
    expect(r.fromPubAck.max).toBe(4);
    // publish → PubAck for every published index after the warm-up, 3 included
    expect(r.pubAck.count).toBe(4);
    expect(r.cpuUsPerMsg).toBe(100);
    expect(r.serverCpuUsPerMsg).toBe(200);
  });

  it("percentiles and medians skip what JSON turned into null", () => {
    expect(median([3, null, 1, Number.NaN, 2])).toBe(2);
    expect(percentile([null, 5], 99)).toBe(5);
    expect(Number.isNaN(median([null]))).toBe(true);
  });
});

describe("bench report: our layer above the ceiling, and the per-cell targets", () => {
  const runs = [
    tpRun("core", false, 1024, 0, { msgPerSec: 150_000, cpu: 6, server: 5, rssMiB: 60 }),
    tpRun("ours", true, 1024, 100, { msgPerSec: 65_000, cpu: 10, server: 12, rssMiB: 63 }),
    tpRun("v3", true, 1024, 100, { msgPerSec: 50_000, cpu: 18, server: 15, rssMiB: 61 }),
    tpRun("ours", false, 1024, 1000, { msgPerSec: 110_000, cpu: 7, server: 7, rssMiB: 60 }),
    tpRun("v3", false, 1024, 1000, { msgPerSec: 115_000, cpu: 7.5, server: 7, rssMiB: 60 }),
  ];
  const rows = throughputRows(runs);
  const ours = (ack: boolean) => rows.find((r) => r.contender === "ours" && r.ack === ack)!;

  it("(ours − ceiling) / (v3 − ceiling)", () => {
    expect(layerRatio(rows, ours(true))).toBeCloseTo((10 - 6) / (18 - 6));
    expect(layerRatio(rows, ours(false))).toBeCloseTo((7 - 6) / (7.5 - 6));
    // v3 not above the ceiling: no ratio
    const flat: ThroughputRow[] = rows.map((r) =>
      r.contender === "v3" ? { ...r, cpuUsPerMsg: 5 } : r,
    );
    expect(Number.isNaN(layerRatio(flat, ours(true)))).toBe(true);
  });

  it("judges each of our cells against issue 14's targets", () => {
    const ack = Object.fromEntries(cellTargets(rows, ours(true)));
    expect(ack["≥ 1.3× v3"]).toBe(true); // 1.30×
    expect(ack["server ≤ 0.8× v3"]).toBe(true); // 0.80×
    expect(ack["layer ≤ 0.5× v3"]).toBe(true); // 0.33
    expect(ack["RSS ≤ v3 + 2 MiB"]).toBe(true); // +2 MiB exactly
    const none = Object.fromEntries(cellTargets(rows, ours(false)));
    expect(none["≥ 1.0× v3"]).toBe(false); // 0.96×
    expect(none["≥ 0.8× ceiling"]).toBe(false); // 0.73×
    expect(none["layer ≤ 0.5× v3"]).toBe(false); // 0.67
    expect(none["server ≤ 0.8× v3"]).toBeUndefined(); // only with acks
  });
});

describe("bench report: the targets table", () => {
  const runs = [
    tpRun("core", false, 1024, 0, { msgPerSec: 150_000, cpu: 6, server: 5, rssMiB: 60 }),
    tpRun("ours", true, 1024, 100, { msgPerSec: 70_000, cpu: 10, server: 10, rssMiB: 64 }),
    tpRun("v3", true, 1024, 100, { msgPerSec: 50_000, cpu: 18, server: 15, rssMiB: 61 }),
    latencyRun("ours", 1000, 2),
    latencyRun("v3", 1000, 3),
    latencyRun("ours", 10_000, 5),
    latencyRun("v3", 10_000, 4),
    manyRun("ours", 1, 50, 50),
    manyRun("v3", 1, 10, 10),
    manyRun("ours", 100, 8, 12),
    manyRun("v3", 100, 9, 12),
    replayRun("ours", "ordered", 130_000),
    replayRun("v3", "ordered", 100_000),
    replayRun("ours", "ordered", 220_000, 1000),
    replayRun("v3", "ordered", 200_000, 1000),
    replayRun("ours", "fetch", 60_000),
    replayRun("v3", "fetch", 40_000),
  ];
  const checks = targetChecks({
    tp: throughputRows(runs),
    dr: [],
    sl: [],
    lat: latencyRows(runs),
    many: manyRows(runs),
    replay: replayRows(runs),
  });
  const verdict = (prefix: string) => checks.find((c) => c.target.startsWith(prefix))?.holds;

  it("gives each target its verdict from the medians", () => {
    expect(verdict("throughput with acks ≥ 1.3×")).toBe(true); // 1.40×
    expect(verdict("peak RSS ≤ nats.js v3's + 2 MiB")).toBe(false); // +3 MiB
    expect(verdict("nats-server CPU per message with acks")).toBe(true); // 0.67×
    expect(verdict("throughput without acks ≥ 1.0×")).toBeUndefined(); // no such cell ran
  });

  it("latency per rate, ordered replay, heap per iterator only from 100 iterators", () => {
    expect(verdict("latency p99 (publish → loop body) no worse than nats.js v3's at 1,000")).toBe(
      true,
    );
    expect(verdict("latency p99 (publish → loop body) no worse than nats.js v3's at 10,000")).toBe(
      false,
    );
    // judged at each max_messages on its own: 1.30× at 100, 1.10× at 1000
    expect(verdict("ordered replay ≥ 1.2× nats.js v3's ordered consume(), max_messages 100")).toBe(
      true,
    );
    expect(orderedHolds(replayRows(runs), 100).ratio).toBeCloseTo(1.3);
    expect(verdict("ordered replay ≥ 1.2× nats.js v3's ordered consume(), max_messages 1000")).toBe(
      false,
    );
    expect(orderedHolds(replayRows(runs), 1000).ratio).toBeCloseTo(1.1);
    // 1 iterator: 5× v3's heap, but below the threshold: no verdict; 100: idle 8 ≤ 9, load 12 ≤ 12
    expect(heapHolds(manyRows(runs), 1)).toBeUndefined();
    expect(verdict("heap per iterator")).toBe(true);
    // missing families: no verdict rather than a pass
    expect(verdict("(earlier) drain latency")).toBeUndefined();
  });
});

describe("bench report: markdown and charts", () => {
  const runs = [
    tpRun("core", false, 1024, 0, { msgPerSec: 150_000, cpu: 6, server: 5, rssMiB: 60 }),
    tpRun("ours", true, 1024, 100, { msgPerSec: 70_000, cpu: 10, server: 10, rssMiB: 64 }),
    tpRun("v3", true, 1024, 100, { msgPerSec: 50_000, cpu: 18, server: 15, rssMiB: 61 }),
    latencyRun("ours", 1000, 2),
    latencyRun("v3", 1000, 3),
    manyRun("ours", 100, 8, 12),
    manyRun("v3", 100, 9, 12),
    replayRun("ours", "ordered", 130_000),
    replayRun("v3", "ordered", 100_000),
  ];

  it("has a section for every family that ran, and the server CPU and layer columns", () => {
    const md = markdown(meta, runs);
    for (const h of [
      "### Throughput",
      "### Latency",
      "### Many iterators",
      "### Ordered replay",
      "### Targets",
    ]) {
      expect(md).toContain(h);
    }
    expect(md).toContain("layer CPU ÷ v3's");
    expect(md).toContain("server CPU µs/msg");
    expect(md).not.toContain("### Drain latency"); // no drain runs
  });

  it("draws one chart per family that ran, each a spec vega-lite compiles", () => {
    const list = charts(meta, runs);
    expect(list.map((c) => c.suffix)).toEqual(["", "-cpu", "-latency", "-many", "-replay"]);
    for (const { spec } of list) {
      expect(() => compile(spec as never)).not.toThrow();
    }
  });
});
