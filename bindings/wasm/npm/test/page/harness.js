// Imports both entry points of the packed package and gives the tests a few helpers. Importing
// fetches no wasm; the tests check that. The relay serves this page under its strict content
// security policy (scripts from its origin only: no inline import map), so the test script
// writes the entry points' paths below from the packed package.json's "exports", as a bundler
// would resolve `sotto-wasm` and `sotto-wasm/team`.

import * as main from '{{ENTRY:.}}';
import * as team from '{{ENTRY:./team}}';

/** Waits for the next message event whose text is `text`, for at most `ms` milliseconds. */
async function nextMessage(client, text, ms) {
  const deadline = Date.now() + ms;
  for (;;) {
    const left = deadline - Date.now();
    if (left <= 0) throw new Error(`no message "${text}" within ${ms} ms`);
    let timer;
    const timeout = new Promise((resolve) => { timer = setTimeout(() => resolve(null), left); });
    // A pending nextEvent() left behind by a timeout is harmless: the page is done waiting.
    const event = await Promise.race([client.nextEvent(), timeout]);
    clearTimeout(timer);
    if (event && event.type === 'message' && event.message.text === text) return event;
  }
}

/** A rejection as plain data the test can inspect. */
async function failure(promise) {
  try {
    await promise;
    return null;
  } catch (e) {
    return { isError: e instanceof Error, name: e.name, code: e.code, message: e.message };
  }
}

/** The texts of a conversation's stored messages, with whose they are. */
async function transcript(client, conversation) {
  const messages = await client.history(conversation, 50);
  return messages.filter((m) => m.kind === 'text').map((m) => ({ text: m.text, mine: m.mine }));
}

window.sotto = { main, team };
window.harness = { nextMessage, failure, transcript };
document.body.dataset.ready = 'true';

/**
 * One run of the init benchmark, in a fresh context: from the first call into the package
 * (`init`) to a new visitor's first message acknowledged by the relay, with the time of each step.
 */
async function firstMessage({ relay, widget, teamRef, database }) {
  const { init, SottoClient } = main;
  const t0 = performance.now();
  await init();
  const t1 = performance.now();
  const client = await SottoClient.register({ relay, widgetId: widget, database, kind: 'visitor' });
  const t2 = performance.now();
  const conversation = await client.openConversation(teamRef);
  const t3 = performance.now();
  const sent = await client.sendText(conversation, 'Hello, my order is late');
  const t4 = performance.now();
  // A number once the relay stored it; null would mean queued, not acknowledged.
  if (typeof sent.cursor !== 'number') throw new Error('the relay did not acknowledge the message');
  const wasm = performance.getEntriesByType('resource').find((e) => e.name.endsWith('.wasm'));
  client.free();
  // The same steps again for a second visitor in this page: the module loaded and its code
  // already run once, so the difference is the first use's cost.
  const w0 = performance.now();
  const again = await SottoClient.register({ relay, widgetId: widget, database: `${database}-again`, kind: 'visitor' });
  const againConversation = await again.openConversation(teamRef);
  const againSent = await again.sendText(againConversation, 'Hello again');
  const w1 = performance.now();
  if (typeof againSent.cursor !== 'number') throw new Error('the relay did not acknowledge the message');
  again.free();
  return {
    load: t1 - t0,
    fetch: wasm ? wasm.responseEnd - wasm.startTime : null,
    register: t2 - t1,
    open: t3 - t2,
    send: t4 - t3,
    total: t4 - t0,
    warm: w1 - w0,
  };
}

window.harness.firstMessage = firstMessage;
