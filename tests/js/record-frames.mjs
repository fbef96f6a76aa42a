#!/usr/bin/env node
// Records real wire frames of the JavaScript automerge-repo 2.x WebSocket
// protocol, as fixtures for the Rust CBOR codec.
//
// Usage:
//   node tests/js/record-frames.mjs --out DIR [--timeout-ms 10000]
//
// In this one process it starts a `ws` WebSocketServer on 127.0.0.1 (port 0)
// carrying a JS automerge-repo server Repo (NodeWSServerAdapter, in-memory
// storage so it has a storage id, remote-heads gossiping on), connects a JS
// client Repo to it (BrowserWebSocketClientAdapter, the same in node) and taps
// the server side of every socket: each binary frame the server receives and
// each frame it sends is recorded byte for byte. It then drives both repos so
// that every message type of the protocol crosses the wire:
//   client->server: join, sync, ephemeral, request, doc-unavailable,
//                   remote-subscription-change (+ remote-heads-changed)
//   server->client: peer, sync, ephemeral, request, doc-unavailable,
//                   remote-subscription-change, remote-heads-changed, error
// (`error` comes from a raw `ws` socket sending a `join` with
// supportedProtocolVersions ["999"]). The 2.x client sends no `leave`: it
// just closes the socket. Frames sent while closing would be recorded too, and
// the summary line on stdout lists them as "sentOnClose" (2.5.6 sends none).
//
// Writes DIR/NN-<from>-<type>.cbor (NN = 01.. over the kept frames in wire order, from = client or
// server, at most 2 frames per (from, type)) and DIR/frames.json listing
// {file, from, type, keys} (keys = the top-level CBOR map keys in wire order).
// Stale NN-*.cbor files in DIR are removed first; other files are kept.
// Exits 0 on success, 1 with a message on stderr naming what did not happen.

import { mkdirSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { join as joinPath } from "node:path";
import WebSocket, { WebSocketServer } from "ws";
import { Repo, cbor, generateAutomergeUrl } from "@automerge/automerge-repo";
import { BrowserWebSocketClientAdapter, NodeWSServerAdapter } from "@automerge/automerge-repo-network-websocket";
import { failOnUncaught, failer, parseFlags } from "./cli.mjs";

const PROG = "record-frames";
const MAX_PER_KIND = 2;
// Fixed storage ids (UUIDs, as StorageSubsystem makes them) for stable fixtures.
const SERVER_STORAGE_ID = "5e7e7e75-0000-4000-8000-000000000001";
const CLIENT_STORAGE_ID = "c11e7715-0000-4000-8000-000000000002";

const fail = failer(PROG);

failOnUncaught(fail);

function parseArgs(argv) {
  const names = { "--out": "out", "--timeout-ms": "timeoutMs" };
  const opts = parseFlags(argv, names, { timeoutMs: 10000 }, fail);
  if (!opts.out) fail("--out is required");
  opts.timeoutMs = Number(opts.timeoutMs);
  if (!Number.isFinite(opts.timeoutMs) || opts.timeoutMs <= 0) fail("--timeout-ms must be a positive number");
  return opts;
}

const opts = parseArgs(process.argv.slice(2));

// Never hang: the whole run is bounded, whatever is pending.
const overallMs = 3 * opts.timeoutMs + 1000;
setTimeout(() => fail(`did not finish within ${overallMs} ms`), overallMs).unref();

// --- recording ------------------------------------------------------------
const frames = []; // { from, type, bytes, keys, conn }

function record(from, conn, data) {
  let bytes;
  if (data instanceof ArrayBuffer) bytes = Buffer.from(new Uint8Array(data));
  else if (ArrayBuffer.isView(data)) bytes = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  else if (Array.isArray(data)) bytes = Buffer.concat(data);
  else fail(`${from} frame on connection ${conn} is not binary: ${typeof data}`);
  bytes = Buffer.from(bytes); // own copy
  let decoded;
  try {
    // automerge-repo's own decoder (cbor-x): a map becomes a plain object whose
    // key order is the wire order (all top-level keys are non-numeric strings).
    decoded = cbor.decode(bytes);
  } catch (e) {
    fail(`${from} frame on connection ${conn} is not CBOR: ${e.message}`);
  }
  if (decoded === null || typeof decoded !== "object" || typeof decoded.type !== "string") {
    fail(`${from} frame on connection ${conn} is not a CBOR map with a string "type"`);
  }
  const keys = Object.keys(decoded);
  if (keys.some(k => /^\d+$/.test(k))) fail(`${from} ${decoded.type} frame has a numeric key: ${keys}`);
  frames.push({ from, type: decoded.type, bytes, keys, conn });
}

const seen = (from, type) => frames.some(f => f.from === from && f.type === type);

function waitFor(what, cond) {
  return new Promise(resolve => {
    const started = Date.now();
    const timer = setInterval(() => {
      let ok = false;
      try {
        ok = cond();
      } catch {
        ok = false;
      }
      if (ok) {
        clearInterval(timer);
        resolve();
      } else if (Date.now() - started > opts.timeoutMs) {
        clearInterval(timer);
        const got = frames.map(f => `${f.from}:${f.type}`).join(", ") || "none";
        fail(`timed out after ${opts.timeoutMs} ms waiting for ${what} (frames so far: ${got})`);
      }
    }, 10);
  });
}

const sleep = ms => new Promise(resolve => setTimeout(resolve, ms));

// Minimal in-memory storage adapter: gives each repo a storage id (peerMetadata
// storageId, needed for remote-heads gossip) without touching the disk. The id
// is preset so the fixtures are stable, and because StorageSubsystem.id()
// mints a fresh UUID on every call until one is saved: calling
// repo.storageId() right after `new Repo` can return an id other than the one
// the repo advertises in its peerMetadata.
class MemoryStorage {
  #data = new Map();
  #key = key => key.join("\u0000");
  constructor(storageId) {
    this.#data.set("storage-adapter-id", { key: ["storage-adapter-id"], data: new TextEncoder().encode(storageId) });
  }
  async load(key) {
    return this.#data.get(this.#key(key))?.data;
  }
  async save(key, data) {
    this.#data.set(this.#key(key), { key, data: new Uint8Array(data) });
  }
  async remove(key) {
    this.#data.delete(this.#key(key));
  }
  async loadRange(prefix) {
    const p = this.#key(prefix);
    return [...this.#data.values()].filter(({ key }) => this.#key(key).startsWith(p));
  }
  async removeRange(prefix) {
    for (const { key } of await this.loadRange(prefix)) this.#data.delete(this.#key(key));
  }
}

// --- server ---------------------------------------------------------------
const wss = new WebSocketServer({ host: "127.0.0.1", port: 0 });
let connCount = 0;
const closedConns = new Set();
// Registered before the adapter's own handler, so a received frame is
// recorded before anything the server sends in answer to it.
wss.on("connection", socket => {
  const conn = ++connCount;
  socket.on("message", (data, isBinary) => {
    if (!isBinary) fail(`text frame from the client on connection ${conn}`);
    record("client", conn, data);
  });
  socket.on("close", () => closedConns.add(conn));
  const send = socket.send.bind(socket);
  socket.send = (data, ...rest) => {
    record("server", conn, data);
    return send(data, ...rest);
  };
});
await new Promise((resolve, reject) => {
  wss.once("listening", resolve);
  wss.once("error", err => reject(new Error(`cannot listen on 127.0.0.1: ${err.message}`)));
});
const url = `ws://127.0.0.1:${wss.address().port}/sync`;

const serverRepo = new Repo({
  peerId: "recorder-server",
  network: [new NodeWSServerAdapter(wss)],
  storage: new MemoryStorage(SERVER_STORAGE_ID),
  sharePolicy: async () => true,
  enableRemoteHeadsGossiping: true,
});
const serverStorageId = await serverRepo.storageId();
if (serverStorageId !== SERVER_STORAGE_ID) fail(`the server repo has storage id ${serverStorageId}, not the preset one`);

// --- client ---------------------------------------------------------------
const adapter = new BrowserWebSocketClientAdapter(url, 60000);
const clientRepo = new Repo({
  peerId: "recorder-client",
  network: [adapter],
  storage: new MemoryStorage(CLIENT_STORAGE_ID),
  sharePolicy: async () => true,
  enableRemoteHeadsGossiping: true,
});

// 1. join -> peer
await waitFor("the client's join", () => seen("client", "join"));
await waitFor("the server's peer answer", () => seen("server", "peer"));
await waitFor("the client repo to see the server peer", () => clientRepo.peers.includes("recorder-server"));

const advertised = clientRepo.peerMetadataByPeerId["recorder-server"]?.storageId;
if (advertised !== SERVER_STORAGE_ID) fail(`the server advertised storage id ${advertised}, not ${SERVER_STORAGE_ID}`);

// 2. remote-subscription-change (client->server, and the server passes the
//    subscription on to its generous peers, i.e. back to the client)
clientRepo.subscribeToRemotes([serverStorageId]);
await waitFor("the client's remote-subscription-change", () => seen("client", "remote-subscription-change"));
await waitFor("the server's remote-subscription-change", () => seen("server", "remote-subscription-change"));

// 3. sync: a small map with a string, a number and a list, then one change
const handle = clientRepo.create({ title: "Heron at the weir", count: 2, tags: ["bird", "river"] });
handle.change(doc => {
  doc.count = 3;
  doc.tags.push("morning");
});
await waitFor("client sync frames", () => seen("client", "sync"));
await waitFor("server sync frames", () => seen("server", "sync"));
const serverHandle = await serverRepo.find(handle.url);
const sameHeads = (a, b) => a.length === b.length && a.every(h => b.includes(h));
await waitFor("the server to have the client's heads", () => sameHeads(serverHandle.heads(), handle.heads()));

// 4. remote-heads-changed: the client reports the server's heads for the
//    subscribed storage id, the server gossips them back to its subscriber
await waitFor("the server's remote-heads-changed", () => seen("server", "remote-heads-changed"));

// 5. ephemeral, both ways
handle.broadcast({ kind: "cursor", x: 12, label: "here" });
await waitFor("the client's ephemeral", () => seen("client", "ephemeral"));
serverHandle.broadcast({ kind: "notice", text: "hello from the server" });
await waitFor("the server's ephemeral", () => seen("server", "ephemeral"));

// 6. request -> doc-unavailable: the client asks for a document nobody has
const missingOnServer = generateAutomergeUrl();
const clientFind = clientRepo.find(missingOnServer).then(
  () => fail("the client found a document that does not exist"),
  () => {},
);
await waitFor("the client's request", () => seen("client", "request"));
await waitFor("the server's doc-unavailable", () => seen("server", "doc-unavailable"));
await clientFind;

// 7. and the other way round: the server asks the client
const missingOnClient = generateAutomergeUrl();
const serverFind = serverRepo.find(missingOnClient).then(
  () => fail("the server found a document that does not exist"),
  () => {},
);
await waitFor("the server's request", () => seen("server", "request"));
await waitFor("the client's doc-unavailable", () => seen("client", "doc-unavailable"));
await serverFind;

// 8. error: a raw socket joining with a protocol version nobody speaks
const badPeer = "recorder-bad-version";
const replies = [];
await new Promise((resolve, reject) => {
  const raw = new WebSocket(url);
  raw.binaryType = "nodebuffer";
  raw.on("error", err => reject(new Error(`raw socket: ${err.message}`)));
  raw.on("open", () => {
    raw.send(
      cbor.encode({
        type: "join",
        senderId: badPeer,
        peerMetadata: {},
        supportedProtocolVersions: ["999"],
      }),
    );
  });
  raw.on("message", data => replies.push(cbor.decode(data)));
  raw.on("close", resolve);
});
if (!replies.some(m => m.type === "error")) fail(`the server answered a bad join with ${JSON.stringify(replies)}, not an error`);
await waitFor("the server's error frame", () => seen("server", "error"));

// 9. leave: there is none in 2.x; the client adapter just closes its socket.
//    Whatever is sent while closing is recorded and reported as sentOnClose.
const clientConn = frames.find(f => f.type === "join" && f.from === "client").conn;
const before = frames.length;
adapter.disconnect();
await waitFor("the server to see the client's socket close", () => closedConns.has(clientConn));
await sleep(100);
const onClose = frames.slice(before).filter(f => f.from === "client");

// --- check and write -------------------------------------------------------
const expected = {
  client: ["join", "sync", "ephemeral", "request", "doc-unavailable", "remote-subscription-change"],
  server: ["peer", "sync", "ephemeral", "request", "doc-unavailable", "remote-subscription-change", "remote-heads-changed", "error"],
};
const missing = [];
for (const [from, types] of Object.entries(expected)) {
  for (const type of types) if (!seen(from, type)) missing.push(`${from}->${from === "client" ? "server" : "client"} ${type}`);
}
if (missing.length > 0) fail(`message types never seen: ${missing.join(", ")}`);

const kept = [];
const counts = new Map();
for (const f of frames) {
  const kind = `${f.from}/${f.type}`;
  const n = counts.get(kind) ?? 0;
  counts.set(kind, n + 1);
  if (n < MAX_PER_KIND) kept.push(f);
}
if (kept.length > 99) fail(`too many frames to number with two digits: ${kept.length}`);

mkdirSync(opts.out, { recursive: true });
for (const name of readdirSync(opts.out)) {
  if (/^\d\d-(client|server)-.+\.cbor$/.test(name)) rmSync(joinPath(opts.out, name));
}
const index = kept.map((f, i) => {
  const file = `${String(i + 1).padStart(2, "0")}-${f.from}-${f.type}.cbor`;
  writeFileSync(joinPath(opts.out, file), f.bytes);
  return { file, from: f.from, type: f.type, keys: f.keys };
});
writeFileSync(joinPath(opts.out, "frames.json"), JSON.stringify(index, null, 2) + "\n");

const summary = {
  out: opts.out,
  recorded: frames.length,
  written: index.length,
  kinds: Object.fromEntries(counts),
  sentOnClose: onClose.map(f => f.type),
};
process.stdout.write(JSON.stringify(summary) + "\n");

wss.close();
process.exit(0);
