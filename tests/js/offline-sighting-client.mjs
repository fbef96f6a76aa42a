#!/usr/bin/env node
// A phone simulated with the JavaScript automerge-repo 2.x client.
//
// Usage:
//   node offline-sighting-client.mjs --url ws://127.0.0.1:PORT/sync --doc-json FILE
//        [--token T] [--peer-id ID] [--edit-json FILE] [--timeout-ms 30000]
//   --peer-id: the server binds each credential to one peer id
//   (`device-<deviceId>` for a device credential); random when not given.
//
// 1. Creates a Repo with no network (offline) and a document whose initial
//    content is the JSON object in --doc-json (strings become collaborative
//    Text, integral numbers stay integers), then prints
//      {"documentId": "<id>", "url": "automerge:<id>"}
// 2. Connects to --url with the WebSocket client adapter and waits until the
//    server acknowledges our heads, then prints
//      {"synced": true, "heads": ["<hex change hash>", ...]}
// 3. With --edit-json FILE (a list of {"path": [...], "value": v}), makes one
//    change setting every path, waits for the server again and prints
//      {"synced": true, "heads": [...], "edited": <number of edits>}
// Exits 0 on success, 1 with a message on stderr on timeout or error.

import { readFileSync } from "node:fs";
import { randomBytes } from "node:crypto";
import { Repo, decodeHeads } from "@automerge/automerge-repo";
import { BrowserWebSocketClientAdapter } from "@automerge/automerge-repo-network-websocket";
import { failOnUncaught, failer, parseFlags } from "./cli.mjs";

const PROG = "offline-sighting-client";

const fail = failer(PROG);

failOnUncaught(fail, err => err?.message ?? err);

function parseArgs(argv) {
  const names = {
    "--url": "url",
    "--doc-json": "docJson",
    "--token": "token",
    "--peer-id": "peerId",
    "--edit-json": "editJson",
    "--timeout-ms": "timeoutMs",
  };
  const opts = parseFlags(argv, names, { timeoutMs: 30000 }, fail);
  if (!opts.url) fail("--url is required");
  if (!opts.docJson) fail("--doc-json is required");
  opts.timeoutMs = Number(opts.timeoutMs);
  if (!Number.isFinite(opts.timeoutMs) || opts.timeoutMs <= 0) fail("--timeout-ms must be a positive number");
  return opts;
}

function readJson(path) {
  try {
    return JSON.parse(readFileSync(path, "utf8"));
  } catch (e) {
    fail(`cannot read JSON from ${path}: ${e.message}`);
  }
}

function emit(obj) {
  process.stdout.write(JSON.stringify(obj) + "\n");
}

const opts = parseArgs(process.argv.slice(2));

const initial = readJson(opts.docJson);
if (initial === null || typeof initial !== "object" || Array.isArray(initial)) {
  fail(`${opts.docJson} must contain a JSON object`);
}

let edits;
if (opts.editJson) {
  edits = readJson(opts.editJson);
  if (!Array.isArray(edits) || !edits.every(e => e && Array.isArray(e.path) && e.path.length > 0 && "value" in e)) {
    fail(`${opts.editJson} must contain a list of {"path": [non-empty], "value": ...}`);
  }
}

let url;
try {
  const u = new URL(opts.url);
  if (opts.token !== undefined) u.searchParams.set("token", opts.token);
  url = u.toString();
} catch (e) {
  fail(`invalid --url ${opts.url}: ${e.message}`);
}

// --- offline: create the document before any network exists -------------
const peerId = opts.peerId ?? `phone-js-${randomBytes(6).toString("hex")}`;
const repo = new Repo({ peerId, network: [], sharePolicy: async () => true });
const handle = repo.create(initial);
await handle.whenReady();
emit({ documentId: handle.documentId, url: handle.url });

// Latest automerge SyncState.theirHeads (hex change hashes) reported by each
// peer for our document. The DocSynchronizer emits "sync-state" every time it
// generates or receives a sync message; theirHeads is what the peer last told
// us its heads are, so when it equals our heads the peer has every change.
const theirHeads = new Map();
repo.synchronizer.on("sync-state", ({ peerId: remote, documentId, syncState }) => {
  if (documentId === handle.documentId && syncState.theirHeads) {
    theirHeads.set(remote, [...syncState.theirHeads]);
  }
});

const localHeads = () => decodeHeads(handle.heads());
const sameSet = (a, b) => a.length === b.length && a.every(h => b.includes(h));

function waitSynced(what) {
  return new Promise(resolve => {
    const started = Date.now();
    const timer = setInterval(() => {
      const mine = localHeads();
      for (const heads of theirHeads.values()) {
        if (sameSet(heads, mine)) {
          clearInterval(timer);
          resolve(mine);
          return;
        }
      }
      if (Date.now() - started > opts.timeoutMs) {
        clearInterval(timer);
        const seen = JSON.stringify(Object.fromEntries(theirHeads));
        fail(
          `timed out after ${opts.timeoutMs} ms waiting for ${what}: ` +
            `local heads ${JSON.stringify(mine)}, connected peers ${JSON.stringify(repo.peers)}, ` +
            `heads reported by peers ${seen}`,
        );
      }
    }, 20);
  });
}

// --- online: connect and wait until the server has our heads -------------
const adapter = new BrowserWebSocketClientAdapter(url, 1000);
repo.networkSubsystem.addNetworkAdapter(adapter);

let heads = await waitSynced("the server to acknowledge the new document");
emit({ synced: true, heads });

if (edits) {
  handle.change(doc => {
    for (const { path, value } of edits) {
      let target = doc;
      for (const key of path.slice(0, -1)) {
        if (target[key] === undefined || target[key] === null) target[key] = {};
        target = target[key];
      }
      target[path[path.length - 1]] = value;
    }
  });
  heads = await waitSynced("the server to acknowledge the edits");
  emit({ synced: true, heads, edited: edits.length });
}

adapter.disconnect();
process.exit(0);
