// The packed sotto-wasm package in headless Chromium, against the relay scripts/test-npm.sh
// started. The relay serves the tarball's extracted contents under /sotto-wasm/ and page/ under
// /npm-test/; the page imports the package by its bare name through an import map made from the
// package's "exports". Every party has its own browser context (its own IndexedDB).

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { chromium } from 'playwright-core';

const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set: run scripts/test-npm.sh`);
  return value;
};
const RELAY = env('SOTTO_NPM_RELAY');
const WIDGET = env('SOTTO_NPM_WIDGET');
const CODE = env('SOTTO_NPM_CODE');
const PAGE = `${RELAY}/npm-test/index.html`;
// The same page from another origin, which the relay allows by --cors-origins.
const OTHER_PAGE = `${env('SOTTO_NPM_OTHER_ORIGIN')}/npm-test/index.html`;
const STEP = { timeout: 90_000 };
const WAIT = 30_000;

let browser;
/** The team the agent of the exchange test created (`team:seq` reference). */
let sharedTeamRef;
/** The exchange test's agent and visitor, left open for the offline test. */
let exchange;

/** A fresh context (its own storage) with the test page loaded; counts the wasm it fetched. */
async function party(name, url = PAGE) {
  const context = await browser.newContext();
  const page = await context.newPage();
  page.setDefaultTimeout(WAIT);
  const wasm = [];
  page.on('request', (r) => {
    if (new URL(r.url()).pathname.endsWith('.wasm')) wasm.push(new URL(r.url()).pathname);
  });
  page.on('pageerror', (e) => console.log(`[${name}] page error: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error') console.log(`[${name}] console: ${m.text()}`);
  });
  await load(page, url);
  return { name, context, page, wasm };
}

async function load(page, url = PAGE) {
  await page.goto(url);
  // Not waitForFunction: the page's policy forbids the eval it needs.
  await page.locator('body[data-ready="true"]').waitFor({ state: 'attached' });
}

const text = (label) => `${label} ${randomBytes(4).toString('hex')}`;

before(async () => {
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    timeout: 30_000,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
});

after(async () => {
  await exchange?.agent.context.close();
  await exchange?.visitor.context.close();
  await browser?.close();
});

test('importing the package fetches no wasm; the first call loads it once for concurrent callers', STEP, async () => {
  const p = await party('lazy');
  // Give a prefetching loader every chance to show itself.
  await p.page.waitForTimeout(500);
  assert.deepEqual(p.wasm, [], 'no wasm before the first use');
  assert.equal(await p.page.evaluate(() => sotto.main.isInitialized()), false);

  const results = await p.page.evaluate(async () => {
    const { init, SottoClient } = sotto.main;
    const calls = [
      init(),
      init(),
      harness.failure(SottoClient.open('npm-test-never-registered')),
      harness.failure(SottoClient.open('npm-test-never-registered-2')),
    ];
    const [, , first, second] = await Promise.all(calls);
    return { first, second, initialized: sotto.main.isInitialized() };
  });
  assert.equal(results.initialized, true);
  assert.equal(results.first?.code, 'not_registered');
  assert.equal(results.second?.code, 'not_registered');
  assert.deepEqual(p.wasm, ['/sotto-wasm/wasm/sotto_wasm_bg.wasm'], 'one fetch of the main module');
  // The team entry point is a module of its own, still not loaded.
  assert.equal(await p.page.evaluate(() => sotto.team.isInitialized()), false);
  await p.context.close();
});

test('the wasm URL can be overridden; a failed load rejects with a code and the next call retries', STEP, async () => {
  const p = await party('override');
  const outcome = await p.page.evaluate(async () => {
    const { init, configure } = sotto.main;
    const missing = await harness.failure(init({ wasmUrl: '/npm-test/missing.wasm' }));
    configure({ wasmUrl: new URL('/elsewhere/sotto.wasm', location.href) });
    await init();
    const late = (() => {
      try {
        configure({ wasmUrl: '/npm-test/other.wasm' });
        return null;
      } catch (e) {
        return { isError: e instanceof Error, name: e.name, code: e.code };
      }
    })();
    return { missing, late, initialized: sotto.main.isInitialized() };
  });
  assert.equal(outcome.missing?.isError, true);
  assert.equal(outcome.missing?.name, 'SottoError');
  assert.equal(outcome.missing?.code, 'wasm_load_failed');
  assert.deepEqual(outcome.late, { isError: true, name: 'SottoError', code: 'already_initialized' });
  assert.equal(outcome.initialized, true);
  assert.deepEqual(p.wasm, ['/npm-test/missing.wasm', '/elsewhere/sotto.wasm']);
  await p.context.close();
});

test('wrong calls reject with an Error named SottoError carrying a stable code', STEP, async () => {
  const p = await party('errors');
  const failures = await p.page.evaluate(async ({ relay, widget }) => {
    const { SottoClient } = sotto.main;
    const options = { relay, widgetId: widget, database: 'npm-test-errors', kind: 'visitor' };
    const insecure = await harness.failure(SottoClient.register({ ...options, database: 'npm-test-insecure', relay: 'http://relay.example.com' }));
    const badKind = await harness.failure(SottoClient.register({ ...options, database: 'npm-test-kind', kind: 'robot' }));
    const missing = await harness.failure(SottoClient.register({ relay, database: 'x', kind: 'visitor' }));
    const client = await SottoClient.register(options);
    const badId = await harness.failure(client.sendText('not a conversation id', 'hello'));
    const unknown = await harness.failure(client.sendText('00'.repeat(16), 'hello'));
    return { insecure, badKind, missing, badId, unknown };
  }, { relay: RELAY, widget: WIDGET });
  const expected = {
    insecure: 'url_insecure_scheme',
    badKind: 'invalid_input',
    missing: 'invalid_input',
    badId: 'invalid_input',
    unknown: 'unknown_conversation',
  };
  for (const [call, code] of Object.entries(expected)) {
    assert.equal(failures[call]?.isError, true, `${call} rejects with an Error`);
    assert.equal(failures[call]?.name, 'SottoError', call);
    assert.equal(failures[call]?.code, code, call);
  }
  await p.context.close();
});

test('a visitor and an agent exchange messages both ways and keep their history across reloads', STEP, async () => {
  const agent = await party('agent');
  const visitor = await party('visitor');
  const hello = text('Hello, my order is late');
  const reply = text('Sorry! Looking into it');
  const afterReload = text('Thanks, still there?');

  // The agent: the tenant's first member device (bootstrap code), owner of a new team, through
  // the team-management entry point.
  const teamRef = await agent.page.evaluate(async ({ relay, widget, code }) => {
    const { SottoClient } = sotto.team;
    const client = await SottoClient.register({
      relay, widgetId: widget, database: 'npm-agent', kind: 'member', bootstrapCode: code,
    });
    window.client = client;
    client.start();
    return client.createTeam();
  }, { relay: RELAY, widget: WIDGET, code: CODE });
  assert.match(teamRef, /^[0-9a-f]{32}:[0-9a-f]+$/);
  sharedTeamRef = teamRef;
  assert.deepEqual(agent.wasm, ['/sotto-wasm/wasm-team/sotto_wasm_bg.wasm']);

  // The visitor, through the main entry point.
  const conversation = await visitor.page.evaluate(async ({ relay, widget, teamRef, hello }) => {
    const { SottoClient } = sotto.main;
    const client = await SottoClient.register({ relay, widgetId: widget, database: 'npm-visitor', kind: 'visitor' });
    window.client = client;
    client.start();
    const conversation = await client.openConversation(teamRef);
    const sent = await client.sendText(conversation, hello);
    if (typeof sent.cursor !== 'number') throw new Error('the relay did not take the message');
    return conversation;
  }, { relay: RELAY, widget: WIDGET, teamRef, hello });
  assert.deepEqual(visitor.wasm, ['/sotto-wasm/wasm/sotto_wasm_bg.wasm']);

  const received = await agent.page.evaluate(async ({ hello, wait }) => {
    const event = await harness.nextMessage(window.client, hello, wait);
    return { conversation: event.conversation, mine: event.message.mine };
  }, { hello, wait: WAIT });
  assert.deepEqual(received, { conversation, mine: false });

  await agent.page.evaluate(({ conversation, reply }) => window.client.sendText(conversation, reply), { conversation, reply });
  await visitor.page.evaluate(({ reply, wait }) => harness.nextMessage(window.client, reply, wait), { reply, wait: WAIT });

  // Both reload: the devices reopen from IndexedDB and show the same history.
  for (const [p, database, entry] of [[agent, 'npm-agent', 'team'], [visitor, 'npm-visitor', 'main']]) {
    await load(p.page);
    const shown = await p.page.evaluate(async ({ database, entry }) => {
      const client = await sotto[entry].SottoClient.open(database);
      window.client = client;
      const conversations = await client.conversations();
      return { conversations, messages: await harness.transcript(client, conversations[0]) };
    }, { database, entry });
    assert.deepEqual(shown.conversations, [conversation], `${p.name} keeps its conversation`);
    assert.deepEqual(shown.messages, [
      { text: hello, mine: p === visitor },
      { text: reply, mine: p === agent },
    ], `${p.name} keeps the history`);
  }

  // The reopened clients still talk.
  await agent.page.evaluate(() => window.client.start());
  await visitor.page.evaluate(async ({ conversation, afterReload }) => {
    window.client.start();
    await window.client.sendText(conversation, afterReload);
  }, { conversation, afterReload });
  await agent.page.evaluate(({ afterReload, wait }) => harness.nextMessage(window.client, afterReload, wait), { afterReload, wait: WAIT });

  exchange = { agent, visitor, conversation };
});

test('a page on another origin that the relay allows uses it across origins', STEP, async () => {
  assert.ok(sharedTeamRef, 'the exchange test created a team');
  const elsewhere = await party('elsewhere', OTHER_PAGE);
  const hello = text('Hello from another site');
  const shown = await elsewhere.page.evaluate(async ({ relay, widget, teamRef, hello }) => {
    if (location.origin === new URL(relay).origin) throw new Error('the page is not cross-origin');
    const { SottoClient } = sotto.main;
    const client = await SottoClient.register({ relay, widgetId: widget, database: 'npm-elsewhere', kind: 'visitor' });
    const conversation = await client.openConversation(teamRef);
    const sent = await client.sendText(conversation, hello);
    return { cursor: sent.cursor, messages: await harness.transcript(client, conversation) };
  }, { relay: RELAY, widget: WIDGET, teamRef: sharedTeamRef, hello });
  assert.equal(typeof shown.cursor, 'number', 'the relay took the message');
  assert.deepEqual(shown.messages, [{ text: hello, mine: true }]);
  await elsewhere.context.close();
});

test('offline, a visitor queues its message and sends it once back online; what it missed arrives once', STEP, async () => {
  assert.ok(exchange, 'the exchange test left its parties open');
  const { agent, visitor, conversation } = exchange;
  const queued = text('Written on the train');
  const missed = text('Answered while you were away');

  await visitor.context.setOffline(true);
  const sent = await visitor.page.evaluate(
    ({ conversation, queued }) => window.client.sendText(conversation, queued),
    { conversation, queued },
  );
  assert.equal(sent.cursor, null, 'offline, the message waits in the outbox');
  await agent.page.evaluate(({ conversation, missed }) => window.client.sendText(conversation, missed), { conversation, missed });
  await visitor.context.setOffline(false);

  await agent.page.evaluate(({ queued, wait }) => harness.nextMessage(window.client, queued, wait), { queued, wait: WAIT });
  await visitor.page.evaluate(({ missed, wait }) => harness.nextMessage(window.client, missed, wait), { missed, wait: WAIT });
  for (const p of [agent, visitor]) {
    const texts = (await p.page.evaluate(
      ({ conversation }) => harness.transcript(window.client, conversation),
      { conversation },
    )).map((m) => m.text);
    assert.equal(texts.filter((t) => t === queued).length, 1, `${p.name} has the queued message once`);
    assert.equal(texts.filter((t) => t === missed).length, 1, `${p.name} has the missed message once`);
  }
});
