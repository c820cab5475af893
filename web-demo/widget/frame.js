// The visitor's chat, inside the iframe the launcher made on the relay's origin. Its device,
// keys and history live in this origin's IndexedDB, out of the host page's reach.

import { openOrRegister, pumpEvents, renderMessage, describe, warningText } from '../shared/sdk.js';

const params = new URLSearchParams(location.hash.slice(1));
const widgetId = params.get('w') || '';
const teamRef = params.get('t') || '';
// The page that framed this one, as the browser reports it (ancestorOrigins in Chromium and
// WebKit, else the referrer). It is trusted, and messages go to it, only once it is on the
// tenant's allow-list (GET /v1/widgets/{id}) or is the relay's own origin: the relay's
// frame-ancestors already keeps other sites from framing this page, and this check also holds
// where that header is not enforced. Never '*': a message may carry the unread count.
const claimedParent =
  location.ancestorOrigins && location.ancestorOrigins.length > 0
    ? location.ancestorOrigins[0]
    : document.referrer
      ? new URL(document.referrer).origin
      : null;
let parentOrigin = null;
const parentAllowed = (async () => {
  if (!claimedParent || parent === window || !/^[0-9a-f]{32}$/i.test(widgetId)) return false;
  if (claimedParent === location.origin) return true;
  const response = await fetch(`/v1/widgets/${widgetId}`, { credentials: 'omit' });
  if (!response.ok) return false;
  const { embed_origins: allowed } = await response.json();
  return Array.isArray(allowed) && allowed.includes(claimedParent);
})().then(
  (ok) => {
    if (ok) parentOrigin = claimedParent;
    return ok;
  },
  () => false,
);

const $ = (id) => document.getElementById(id);
const list = $('messages');
const text = $('text');
const file = $('file');
const send = $('send');
const notice = $('notice');
const typingLine = $('typing');

let client = null;
let conversation = null;
let starting = null;
let visible = false;
let unread = 0;
let typingTimer = null;
let typingSent = false;
let lastReadSent = 0;
const shown = new Map();

function tellHost(message) {
  if (parentOrigin) parent.postMessage({ sotto: message.type, ...message.data }, parentOrigin);
}

function showNotice(message, kind = 'warning') {
  notice.textContent = message;
  notice.className = kind === 'error' ? 'notice error' : 'notice';
  notice.hidden = !message;
}

function setUnread(count) {
  unread = count;
  tellHost({ type: 'unread', data: { count } });
}

function place(message) {
  const key = `${message.sender}:${message.epoch}:${message.counter}`;
  const li = renderMessage(message, {
    fetchAttachment: (m) => client.fetchAttachment(conversation, m.cursor),
    senderName: () => 'Agent',
  });
  const old = shown.get(key);
  if (old) old.replaceWith(li);
  else list.append(li);
  shown.set(key, li);
  list.scrollTop = list.scrollHeight;
}

function markRead() {
  const cursors = [...list.querySelectorAll('.msg:not(.mine)[data-cursor]')].map((li) => Number(li.dataset.cursor));
  const newest = Math.max(0, ...cursors);
  if (visible && newest > lastReadSent) {
    lastReadSent = newest;
    client.sendReadReceipt(conversation, newest).catch(() => {});
  }
}

async function start() {
  if (!widgetId || !teamRef) throw Object.assign(new Error('widget id and team are required'), { code: 'invalid_input' });
  if (!(await parentAllowed)) {
    throw Object.assign(new Error('this chat is not enabled on this site'), { code: 'not_permitted' });
  }
  client = await openOrRegister(`sotto-visitor-${widgetId}`, {
    relay: location.origin,
    widgetId,
    kind: 'visitor',
  });
  const existing = await client.conversations();
  conversation = existing.length > 0 ? existing[0] : await client.openConversation(teamRef);
  const history = await client.history(conversation, 200, null);
  history.forEach(place);
  client.start();
  pumpEvents(client, onEvent);
  for (const el of [text, file, send]) el.disabled = false;
  $('chat-status').textContent = 'End-to-end encrypted · connecting…';
}

function onEvent(event) {
  switch (event.type) {
    case 'message':
      if (event.conversation !== conversation) return;
      place(event.message);
      typingLine.hidden = true;
      if (!event.message.mine) {
        if (visible) markRead();
        else setUnread(unread + 1);
      }
      break;
    case 'sent':
      client.history(conversation, 20, null).then((recent) => recent.forEach(place));
      break;
    case 'typing':
      if (event.conversation === conversation) typingLine.hidden = !event.typing;
      break;
    case 'connected':
      $('chat-status').textContent = 'End-to-end encrypted';
      if (notice.dataset.kind === 'offline') showNotice('');
      break;
    case 'disconnected':
      $('chat-status').textContent = 'End-to-end encrypted · offline, retrying';
      notice.dataset.kind = 'offline';
      showNotice('You are offline. Messages will be sent when the connection is back.');
      break;
    case 'teamChanged':
      showNotice('The team’s members or keys changed. Your messages stay encrypted to the current team.');
      notice.dataset.kind = 'team';
      break;
    case 'warning':
      console.warn('sotto warning', JSON.stringify(event.warning));
      showNotice(warningText(event.warning), 'error');
      break;
    default:
      break;
  }
}

function ensureStarted() {
  if (!starting) {
    starting = start().catch((e) => {
      starting = null;
      showNotice(describe(e), 'error');
      throw e;
    });
  }
  return starting;
}

async function sendText() {
  const value = text.value.trim();
  if (!value) return;
  text.value = '';
  await ensureStarted();
  const sent = await client.sendText(conversation, value);
  const now = Math.floor(Date.now() / 1000);
  place({ cursor: sent.cursor, sender: client.deviceId, mine: true, kind: 'text', text: value, epoch: sent.epoch, counter: sent.counter, at: now });
  stopTyping();
}

function stopTyping() {
  clearTimeout(typingTimer);
  if (typingSent) {
    typingSent = false;
    client.sendTyping(conversation, false).catch(() => {});
  }
}

$('composer').addEventListener('submit', (ev) => {
  ev.preventDefault();
  sendText().catch((e) => showNotice(describe(e), 'error'));
});

text.addEventListener('keydown', (ev) => {
  if (ev.key === 'Enter' && !ev.shiftKey) {
    ev.preventDefault();
    sendText().catch((e) => showNotice(describe(e), 'error'));
  } else if (ev.key === 'Escape') {
    tellHost({ type: 'close', data: {} });
  }
});

text.addEventListener('input', () => {
  if (!client || !conversation) return;
  if (!typingSent) {
    typingSent = true;
    client.sendTyping(conversation, true).catch(() => {});
  }
  clearTimeout(typingTimer);
  typingTimer = setTimeout(stopTyping, 3000);
});

file.addEventListener('change', async () => {
  const chosen = file.files && file.files[0];
  file.value = '';
  if (!chosen) return;
  try {
    await ensureStarted();
    const bytes = new Uint8Array(await chosen.arrayBuffer());
    const sent = await client.sendAttachment(conversation, bytes, chosen.name, chosen.type || 'application/octet-stream');
    place({ cursor: sent.cursor, sender: client.deviceId, mine: true, kind: 'attachment', attachment: { name: chosen.name, mimeType: chosen.type, size: chosen.size }, epoch: sent.epoch, counter: sent.counter, at: Math.floor(Date.now() / 1000) });
  } catch (e) {
    showNotice(describe(e), 'error');
  }
});

$('close').addEventListener('click', () => tellHost({ type: 'close', data: {} }));

window.addEventListener('message', (event) => {
  if (!parentOrigin || event.source !== parent || event.origin !== parentOrigin) return;
  const data = event.data || {};
  if (data.sotto === 'open') {
    visible = true;
    setUnread(0);
    ensureStarted().then(markRead, () => {});
    text.focus();
  } else if (data.sotto === 'close') {
    visible = false;
  } else if (data.sotto === 'background') {
    ensureStarted().catch(() => {});
  } else if (data.sotto === 'identify' && typeof data.assertion === 'string') {
    ensureStarted()
      .then(() => client.presentIdentity(conversation, Uint8Array.from(atob(data.assertion), (c) => c.charCodeAt(0))))
      .catch((e) => showNotice(describe(e), 'error'));
  }
});

parentAllowed.then((ok) => {
  if (ok) tellHost({ type: 'ready', data: {} });
  else showNotice('This chat is not enabled on this site.', 'error');
});
