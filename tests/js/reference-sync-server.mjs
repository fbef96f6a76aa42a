#!/usr/bin/env node
// The plain JavaScript automerge-repo 2.x sync server, used as the benchmark
// baseline (configured like the official automerge-repo-sync-server).
//
// Usage:
//   node reference-sync-server.mjs --data-dir DIR [--port 0] [--host 127.0.0.1]
//
// Once listening, prints one JSON line on stdout:
//   {"port": N, "pid": P}
// WebSocket upgrades are accepted on any path (so clients can use /sync);
// a plain GET answers 200. Exits 0 on SIGTERM/SIGINT after flushing storage.

import http from "node:http";
import os from "node:os";
import { mkdirSync } from "node:fs";
import { WebSocketServer } from "ws";
import { Repo } from "@automerge/automerge-repo";
import { NodeWSServerAdapter } from "@automerge/automerge-repo-network-websocket";
import { NodeFSStorageAdapter } from "@automerge/automerge-repo-storage-nodefs";
import { failer, parseFlags } from "./cli.mjs";

const PROG = "reference-sync-server";

const fail = failer(PROG);

function parseArgs(argv) {
  const names = { "--port": "port", "--data-dir": "dataDir", "--host": "host" };
  const opts = parseFlags(argv, names, { port: 0, host: "127.0.0.1" }, fail);
  if (!opts.dataDir) fail("--data-dir is required");
  opts.port = Number(opts.port);
  if (!Number.isInteger(opts.port) || opts.port < 0 || opts.port > 65535) fail("--port must be 0..65535");
  return opts;
}

const opts = parseArgs(process.argv.slice(2));
mkdirSync(opts.dataDir, { recursive: true });

const wss = new WebSocketServer({ noServer: true });
const server = http.createServer((req, res) => {
  res.writeHead(200, { "content-type": "text/plain" });
  res.end("automerge-repo reference sync server\n");
});
// Accept the upgrade whatever the path (and ignore any ?token=).
server.on("upgrade", (request, socket, head) => {
  wss.handleUpgrade(request, socket, head, ws => wss.emit("connection", ws, request));
});

const repo = new Repo({
  network: [new NodeWSServerAdapter(wss)],
  storage: new NodeFSStorageAdapter(opts.dataDir),
  peerId: `reference-sync-server-${os.hostname()}-${process.pid}`,
  // Only sync documents a peer explicitly asks for / sends, never announce.
  sharePolicy: async () => false,
});

server.on("error", err => fail(`cannot listen on ${opts.host}:${opts.port}: ${err.message}`));
server.listen(opts.port, opts.host, () => {
  process.stdout.write(JSON.stringify({ port: server.address().port, pid: process.pid }) + "\n");
});

let stopping = false;
async function stop(signal) {
  if (stopping) return;
  stopping = true;
  // Never hang the caller: force the exit if shutdown stalls.
  setTimeout(() => {
    process.stderr.write(`${PROG}: shutdown after ${signal} timed out\n`);
    process.exit(1);
  }, 5000).unref();
  try {
    server.close();
    // Like Repo.shutdown(): terminate client sockets, then write every
    // loaded document to storage (only ready ones: flushing a handle that a
    // client requested but nobody had would throw).
    repo.networkSubsystem.disconnect();
    const ready = Object.values(repo.handles).filter(h => h.isReady());
    await repo.flush(ready.map(h => h.documentId));
    wss.close();
  } catch (e) {
    process.stderr.write(`${PROG}: error during shutdown: ${e?.message ?? e}\n`);
    process.exit(1);
  }
  process.exit(0);
}
process.on("SIGTERM", () => void stop("SIGTERM"));
process.on("SIGINT", () => void stop("SIGINT"));
