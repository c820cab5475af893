// The init benchmark of the packed package (scripts/wasm-bench-init.sh): in headless Chromium,
// the time from the first call into the lazy package (`init`) to a new visitor's first message
// acknowledged by the relay, each run in a fresh browser context (no HTTP or code cache, empty
// IndexedDB). Prints the median and the spread of every step; not a test.

import { chromium } from 'playwright-core';

const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set: run scripts/wasm-bench-init.sh`);
  return value;
};
const RELAY = env('SOTTO_NPM_RELAY');
const WIDGET = env('SOTTO_NPM_WIDGET');
const CODE = env('SOTTO_NPM_CODE');
const RUNS = Number(process.env.SOTTO_BENCH_RUNS || 10);
const PAGE = `${RELAY}/npm-test/index.html`;

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  timeout: 30_000,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
    '--disable-component-update', '--disable-sync', '--no-first-run'],
});

async function freshPage() {
  const context = await browser.newContext();
  const page = await context.newPage();
  page.setDefaultTimeout(60_000);
  await page.goto(PAGE);
  await page.locator('body[data-ready="true"]').waitFor({ state: 'attached' });
  return { context, page };
}

try {
  // The team the visitors write to: its owner registered with the bootstrap code.
  const setup = await freshPage();
  const teamRef = await setup.page.evaluate(async ({ relay, widget, code }) => {
    const owner = await sotto.team.SottoClient.register({
      relay, widgetId: widget, database: 'bench-owner', kind: 'member', bootstrapCode: code,
    });
    return owner.createTeam();
  }, { relay: RELAY, widget: WIDGET, code: CODE });
  await setup.context.close();

  const runs = [];
  for (let i = 0; i < RUNS; i++) {
    const { context, page } = await freshPage();
    const run = await page.evaluate((args) => harness.firstMessage(args),
      { relay: RELAY, widget: WIDGET, teamRef, database: `bench-visitor-${i}` });
    await context.close();
    runs.push(run);
    console.log(`run ${String(i + 1).padStart(2)}: ${run.total.toFixed(1)} ms`);
  }

  const sorted = (key) => runs.map((r) => r[key]).filter((v) => v !== null).sort((a, b) => a - b);
  const quantile = (values, q) => {
    const at = (values.length - 1) * q;
    const low = Math.floor(at);
    return values[low] + (values[Math.ceil(at)] - values[low]) * (at - low);
  };
  const steps = [
    ['load', 'wasm fetch + compile + instantiate (init)'],
    ['fetch', '  of which the fetch (Resource Timing)'],
    ['register', 'register the visitor device'],
    ['open', 'open a conversation with the team'],
    ['send', 'send one text, acknowledged'],
    ['total', 'init to first message acknowledged'],
    ['warm', 'a second visitor in the same page (no init)'],
  ];
  console.log(`\n${RUNS} runs, each in a fresh browser context; milliseconds`);
  console.log(`${'step'.padEnd(44)} ${'median'.padStart(8)} ${'p25'.padStart(8)} ${'p75'.padStart(8)} ${'min'.padStart(8)} ${'max'.padStart(8)}`);
  for (const [key, label] of steps) {
    const values = sorted(key);
    if (values.length === 0) continue;
    const cells = [quantile(values, 0.5), quantile(values, 0.25), quantile(values, 0.75), values[0], values[values.length - 1]];
    console.log(`${label.padEnd(44)} ${cells.map((v) => v.toFixed(1).padStart(8)).join(' ')}`);
  }
  const ratios = runs.map((r) => r.total / r.load).sort((a, b) => a - b);
  console.log(`\ntotal / module load: median ${quantile(ratios, 0.5).toFixed(2)} (min ${ratios[0].toFixed(2)}, max ${ratios[ratios.length - 1].toFixed(2)})`);
} finally {
  await browser.close();
}
