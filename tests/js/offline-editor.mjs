#!/usr/bin/env node
// A second phone on the JavaScript automerge-repo 2.x client that a test
// drives step by step: it fetches a document the server holds, goes offline,
// edits it there, comes back, and reads its own copy.
//
// Usage:
//   node offline-editor.mjs --url ws://127.0.0.1:PORT/sync --doc-id ID
//        --token T --peer-id ID [--timeout-ms 30000]
//   --peer-id: the server binds each credential to one peer id
//   (`device-<deviceId>` for a device credential).
//
// On start it connects, fetches the document, waits until the server
// reports our heads (automerge sync state `theirHeads`) and prints
//   {"documentId": ID, "online": true, "heads": [hex…]}
// Then it reads one command per line on stdin (JSON) and answers each with
// one line on stdout:
//   {"do": "offline"}  removes the WebSocket adapter (the socket is closed,
//                      the repo has no network at all) →
//                      {"online": false, "peers": [connected peer ids], "heads": […]}
//   {"do": "edit", "path": [...], "value": v}
//                      one local change setting the value at path →
//                      {"edited": true, "online": bool, "heads": […]}
//   {"do": "online"}   a new WebSocket adapter to --url; waits until the
//                      server reports our heads → {"online": true, "heads": […]}
//   {"do": "read", "path": [...], "value"?: v, "conflicts"?: [v…] | null}
//                      waits until this copy's value at path equals "value"
//                      and the values in conflict there (automerge
//                      getConflicts, in any order; null when there is no
//                      conflict) are "conflicts" (each checked only when
//                      given) → {"value": v, "conflicts": [...] | null, "heads": […]}
//                      with the conflicting values sorted by their JSON text.
//   {"do": "exit"}     disconnects and exits 0.
// Strings become collaborative Text and integral numbers automerge `int`.
// Exits 1 with a message on stderr on timeout (--timeout-ms per step) or error.

import { createInterface } from "node:readline";
import { Repo, decodeHeads, getConflicts } from "@automerge/automerge-repo";
import { BrowserWebSocketClientAdapter } from "@automerge/automerge-repo-network-websocket";
import { failOnUncaught, failer, parseFlags } from "./cli.mjs";

const PROG = "offline-editor";

const fail = failer(PROG);

failOnUncaught(fail);

function parseArgs(argv) {
  const names = {
    "--url": "url",
    "--doc-id": "docId",
    "--token": "token",
    "--peer-id": "peerId",
    "--timeout-ms": "timeoutMs",
  };
  const opts = parseFlags(argv, names, { timeoutMs: "30000" }, fail);
  for (const required of ["url", "docId", "token", "peerId"]) {
    if (opts[required] === undefined) fail(`--${required.replace(/[A-Z]/g, c => "-" + c.toLowerCase())} is required`);
  }
  opts.timeoutMs = Number(opts.timeoutMs);
  if (!Number.isFinite(opts.timeoutMs) || opts.timeoutMs <= 0) fail("--timeout-ms must be a positive number");
  return opts;
}

const opts = parseArgs(process.argv.slice(2));
const url = new URL(opts.url);
url.searchParams.set("token", opts.token);

const emit = obj => process.stdout.write(JSON.stringify(obj) + "\n");
// Text objects and dates read as what JSON would show.
const show = value => (value === undefined ? "undefined" : JSON.stringify(value));
const sameSet = (a, b) => a.length === b.length && a.every(h => b.includes(h));

const repo = new Repo({ peerId: opts.peerId, network: [], sharePolicy: async () => true });
let adapter;
function goOnline() {
  adapter = new BrowserWebSocketClientAdapter(url.toString(), 1000);
  repo.networkSubsystem.addNetworkAdapter(adapter);
}

// Latest automerge SyncState.theirHeads (hex change hashes) reported by each
// peer for our document while connected: when it equals our heads the peer
// has every change we have, and we have every change it told us about.
const theirHeads = new Map();
repo.synchronizer.on("sync-state", ({ peerId: remote, documentId, syncState }) => {
  if (documentId === opts.docId && syncState.theirHeads) {
    theirHeads.set(remote, [...syncState.theirHeads]);
  }
});

// Polls `check` (returning undefined until done) for at most --timeout-ms.
function waitFor(what, check, describe) {
  return new Promise(resolve => {
    const started = Date.now();
    const poll = () => {
      const done = check();
      if (done !== undefined) {
        resolve(done);
      } else if (Date.now() - started > opts.timeoutMs) {
        fail(`timed out after ${opts.timeoutMs} ms waiting for ${what}: ${describe()}`);
      } else {
        setTimeout(poll, 20);
      }
    };
    poll();
  });
}

goOnline();
// The adapter calls itself ready after one second without the server's
// answer, and a find made then, with no peer yet, says "unavailable": on a
// loaded machine, wait for the server's peer first.
await waitFor("the server's peer", () => (repo.peers.length > 0 ? true : undefined), () =>
  `no peer at ${opts.url}`,
);
let handle;
try {
  handle = await repo.find(`automerge:${opts.docId}`);
} catch (e) {
  fail(`the server did not give document ${opts.docId}: ${e.message}`);
}
const localHeads = () => decodeHeads(handle.heads());

function waitSynced(what) {
  return waitFor(
    what,
    () => ([...theirHeads.values()].some(heads => sameSet(heads, localHeads())) ? localHeads() : undefined),
    () =>
      `local heads ${show(localHeads())}, connected peers ${show(repo.peers)}, ` +
      `heads reported by peers ${show(Object.fromEntries(theirHeads))}`,
  );
}

const sortedByJson = values => [...values].sort((a, b) => (show(a) < show(b) ? -1 : show(a) > show(b) ? 1 : 0));

/** The value at `path` and the values in conflict there (null: no conflict). */
function readAt(path) {
  let parent = handle.doc();
  for (const key of path.slice(0, -1)) parent = parent == null ? undefined : parent[key];
  const last = path[path.length - 1];
  if (parent == null) return { value: undefined, conflicts: null };
  const all = getConflicts(parent, last);
  const values = all ? Object.values(all).map(v => JSON.parse(show(v))) : [];
  const conflicts = values.length > 1 ? sortedByJson(values) : null;
  return { value: parent[last], conflicts };
}

emit({ documentId: opts.docId, online: true, heads: await waitSynced("the document from the server") });

const commands = {
  async offline() {
    repo.networkSubsystem.removeNetworkAdapter(adapter);
    adapter = undefined;
    theirHeads.clear();
    return { online: false, peers: repo.peers, heads: localHeads() };
  },
  async edit({ path, value }) {
    if (!Array.isArray(path) || path.length === 0 || value === undefined) {
      fail(`edit needs a non-empty "path" and a "value"`);
    }
    handle.change(doc => {
      let target = doc;
      for (const key of path.slice(0, -1)) {
        if (target[key] === undefined || target[key] === null) target[key] = {};
        target = target[key];
      }
      target[path[path.length - 1]] = value;
    });
    return { edited: true, online: adapter !== undefined, heads: localHeads() };
  },
  async online() {
    if (adapter === undefined) goOnline();
    return { online: true, heads: await waitSynced("the server after reconnecting") };
  },
  async read(command) {
    const { path } = command;
    if (!Array.isArray(path) || path.length === 0) fail(`read needs a non-empty "path"`);
    if (Array.isArray(command.conflicts)) command.conflicts = sortedByJson(command.conflicts);
    const wanted = ["value", "conflicts"].filter(k => k in command);
    const read = await waitFor(
      `${show(path)} to be ${show(Object.fromEntries(wanted.map(k => [k, command[k]])))}`,
      () => {
        const now = readAt(path);
        return wanted.every(k => show(now[k]) === show(command[k])) ? now : undefined;
      },
      () => `it is ${show(readAt(path))}, heads ${show(localHeads())}`,
    );
    return { ...read, heads: localHeads() };
  },
  async exit() {
    if (adapter !== undefined) repo.networkSubsystem.removeNetworkAdapter(adapter);
    process.exit(0);
  },
};

for await (const line of createInterface({ input: process.stdin })) {
  if (line.trim() === "") continue;
  let command;
  try {
    command = JSON.parse(line);
  } catch (e) {
    fail(`a command must be JSON: ${e.message}: ${line}`);
  }
  const run = commands[command?.do];
  if (!run) fail(`unknown command ${line}`);
  emit(await run(command));
}
// stdin closed: the test is gone.
process.exit(0);
