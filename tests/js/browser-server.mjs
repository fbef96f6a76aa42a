// One headless Chromium for every browser test of a test binary: launched
// here (Debian's chromium, driven by playwright-core), its WebSocket endpoint
// printed as one JSON line; the test drivers (browser-driver.mjs) connect to
// it. Stops when its standard input closes, i.e. when the test binary ends.
import { chromium } from 'playwright-core';

const executablePath = process.env.CHROMIUM || '/usr/bin/chromium';
const server = await chromium.launchServer({
  executablePath,
  headless: true,
  // No sandbox when the tests run as root (CI containers); no GPU in CI.
  args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
});
process.stdout.write(JSON.stringify({ wsEndpoint: server.wsEndpoint() }) + '\n');

const stop = async () => {
  await server.close().catch(() => {});
  process.exit(0);
};
process.stdin.on('end', stop);
process.stdin.on('close', stop);
process.stdin.resume();
process.on('SIGTERM', stop);
