#!/usr/bin/env node
// A reader with the JavaScript automerge-repo 2.x client: fetches a document
// the server holds and waits until one of its values is what the test expects.
//
// Usage:
//   node read-document.mjs --url ws://127.0.0.1:PORT/sync --doc-id ID
//        --token T --peer-id ID --path-json '["sightings","<id>","individualCount"]'
//        --expect-json 4 [--timeout-ms 30000]
//
// Prints {"documentId": ID, "value": <the value at the path>} once the value
// at the path equals --expect-json (compared as JSON), and exits 0; exits 1
// with a message on stderr on timeout, when the server says the document is
// unavailable, or on error — printing the last value seen.

import { Repo } from "@automerge/automerge-repo";
import { BrowserWebSocketClientAdapter } from "@automerge/automerge-repo-network-websocket";
import { failOnUncaught, failer, parseFlags } from "./cli.mjs";

const PROG = "read-document";

const fail = failer(PROG);

failOnUncaught(fail, err => err?.message ?? err);

function parseArgs(argv) {
  const names = {
    "--url": "url",
    "--doc-id": "docId",
    "--token": "token",
    "--peer-id": "peerId",
    "--path-json": "pathJson",
    "--expect-json": "expectJson",
    "--timeout-ms": "timeoutMs",
  };
  const opts = parseFlags(argv, names, { timeoutMs: "30000" }, fail);
  for (const required of ["url", "docId", "token", "peerId", "pathJson", "expectJson"]) {
    if (opts[required] === undefined) fail(`--${required.replace(/[A-Z]/g, c => "-" + c.toLowerCase())} is required`);
  }
  opts.timeoutMs = Number(opts.timeoutMs);
  if (!Number.isFinite(opts.timeoutMs) || opts.timeoutMs <= 0) fail("--timeout-ms must be a positive number");
  try {
    opts.path = JSON.parse(opts.pathJson);
    opts.expected = JSON.stringify(JSON.parse(opts.expectJson));
  } catch (e) {
    fail(`--path-json and --expect-json must be JSON: ${e.message}`);
  }
  if (!Array.isArray(opts.path) || opts.path.length === 0) fail("--path-json must be a non-empty list");
  return opts;
}

const opts = parseArgs(process.argv.slice(2));
const url = new URL(opts.url);
url.searchParams.set("token", opts.token);

const repo = new Repo({ peerId: opts.peerId, network: [], sharePolicy: async () => true });
const adapter = new BrowserWebSocketClientAdapter(url.toString(), 1000);
repo.networkSubsystem.addNetworkAdapter(adapter);

const at = doc => opts.path.reduce((value, key) => (value == null ? undefined : value[key]), doc);
// Text objects and dates read as what JSON would show.
const show = value => (value === undefined ? "undefined" : JSON.stringify(value));

// The adapter calls itself ready after one second without the server's
// answer, and a find made then, with no peer yet, says "unavailable": on a
// loaded machine, wait for the server's peer first.
const connectStarted = Date.now();
while (repo.peers.length === 0) {
  if (Date.now() - connectStarted > opts.timeoutMs) {
    fail(`timed out after ${opts.timeoutMs} ms waiting for the server's peer at ${opts.url}`);
  }
  await new Promise(resolve => setTimeout(resolve, 20));
}

let handle;
try {
  handle = await repo.find(`automerge:${opts.docId}`);
} catch (e) {
  fail(`the server did not give document ${opts.docId}: ${e.message}`);
}
const started = Date.now();
for (;;) {
  const value = at(handle.doc());
  if (show(value) === opts.expected) {
    process.stdout.write(JSON.stringify({ documentId: opts.docId, value }) + "\n");
    adapter.disconnect();
    process.exit(0);
  }
  if (Date.now() - started > opts.timeoutMs) {
    fail(`timed out after ${opts.timeoutMs} ms: ${JSON.stringify(opts.path)} is ${show(value)}, expected ${opts.expected}`);
  }
  await new Promise(resolve => setTimeout(resolve, 50));
}
