// The agent console: one member device in this browser profile. Every team fact it shows comes
// from the chain this device verified from the team's fingerprint; the relay only carries it.

import { sdk, usePackage, openOrRegister, pumpEvents, renderMessage, describe, warningText } from '../shared/sdk.js';

usePackage('../pkg-console/sotto_wasm.js');

const DATABASE = 'sotto-agent';
const query = new URLSearchParams(location.search);
const $ = (id) => document.getElementById(id);

let client = null;
let teamRef = null;
let current = null;
const unread = new Map();
const shown = new Map();
let typingTimer = null;
let typingSent = false;

function showNotice(message, kind = 'warning') {
  const notice = $('notice');
  notice.textContent = message;
  notice.className = kind === 'error' ? 'notice error' : 'notice';
  notice.hidden = !message;
}

const teamId = () => teamRef.split(':')[0];
const short = (hex) => `${hex.slice(0, 8)}…`;

async function hasDevice() {
  const { SottoClient } = await sdk();
  try {
    client = await SottoClient.open(DATABASE);
    return true;
  } catch (e) {
    if (e && e.code === 'not_registered') return false;
    throw e;
  }
}

async function boot() {
  for (const form of ['create-form', 'join-form']) {
    const widget = $(form).elements.widget;
    widget.value = query.get('w') || '';
  }
  $('create-form').elements.code.value = query.get('code') || '';
  $('join-form').elements.team.value = query.get('t') || '';
  if (await hasDevice()) {
    const teams = await client.teams();
    if (teams.length > 0) return enter(teams[0]);
    const pending = localStorage.getItem('sotto-console-joining');
    if (pending) return waitForApproval(pending);
  }
  $('setup').hidden = false;
}

$('create-form').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const form = ev.target;
  try {
    client = client || await openOrRegister(DATABASE, {
      relay: location.origin,
      widgetId: form.elements.widget.value.trim(),
      kind: 'member',
      bootstrapCode: form.elements.code.value.trim(),
    });
    await enter(await client.createTeam());
  } catch (e) {
    showNotice(describe(e), 'error');
  }
});

$('join-form').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const form = ev.target;
  try {
    client = client || await openOrRegister(DATABASE, {
      relay: location.origin,
      widgetId: form.elements.widget.value.trim(),
      kind: 'member',
    });
    const ref = form.elements.team.value.trim();
    localStorage.setItem('sotto-console-joining', ref);
    await waitForApproval(ref);
  } catch (e) {
    showNotice(describe(e), 'error');
  }
});

async function waitForApproval(ref) {
  $('setup').hidden = false;
  $('join-wait').hidden = false;
  $('join-device').textContent = client.deviceId;
  for (;;) {
    try {
      // Following the team verifies its chain; this device reads only once an admin added it.
      await client.joinTeam(ref);
      if (await client.membership(ref.split(':')[0])) {
        localStorage.removeItem('sotto-console-joining');
        return enter(ref);
      }
      $('join-status').textContent = 'Waiting for approval…';
    } catch (e) {
      // Until the admin adds this device, the relay does not show it the team.
      console.info('not a member yet', e);
      $('join-status').textContent = 'Waiting for approval…';
    }
    await new Promise((resolve) => setTimeout(resolve, 2000));
  }
}

async function enter(ref) {
  teamRef = ref;
  $('setup').hidden = true;
  $('app').hidden = false;
  $('who').textContent = `Device ${short(client.deviceId)}`;
  client.start();
  pumpEvents(client, onEvent);
  window.addEventListener('hashchange', route);
  await route();
}

async function route() {
  const view = (location.hash || '#inbox').slice(1);
  for (const name of ['inbox', 'team', 'audit', 'recovery']) {
    $(`view-${name}`).hidden = name !== view;
    const link = document.querySelector(`nav a[data-view="${name}"]`);
    if (name === view) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
  try {
    if (view === 'inbox') await renderInbox();
    if (view === 'team') await renderTeam();
    if (view === 'audit') await renderAudit();
  } catch (e) {
    showNotice(describe(e), 'error');
  }
}

// ---- inbox and conversation

async function renderInbox() {
  const conversations = await client.conversations();
  const items = [];
  $('inbox-empty').hidden = conversations.length > 0;
  for (const id of conversations) {
    const li = document.createElement('li');
    const button = document.createElement('button');
    button.type = 'button';
    button.dataset.conversation = id;
    const label = document.createElement('span');
    label.textContent = `Visitor ${short(id)}`;
    button.append(label);
    const count = unread.get(id) || 0;
    if (count > 0) {
      const badge = document.createElement('span');
      badge.className = 'badge';
      badge.textContent = String(count);
      badge.setAttribute('aria-label', `${count} unread`);
      button.append(badge);
    }
    if (id === current) button.setAttribute('aria-current', 'true');
    button.addEventListener('click', () => openConversation(id));
    li.append(button);
    items.push(li);
  }
  $('conversations').replaceChildren(...items);
}

function place(message) {
  const key = `${message.sender}:${message.epoch}:${message.counter}`;
  const li = renderMessage(message, {
    fetchAttachment: (m) => client.fetchAttachment(current, m.cursor),
    senderName: (sender) => (sender === client.deviceId ? 'You' : `Device ${short(sender)}`),
  });
  const old = shown.get(key);
  if (old) old.replaceWith(li);
  else $('messages').append(li);
  shown.set(key, li);
  $('messages').scrollTop = $('messages').scrollHeight;
}

async function openConversation(id) {
  current = id;
  unread.delete(id);
  shown.clear();
  $('messages').replaceChildren();
  $('conversation').hidden = false;
  $('conv-title').textContent = `Visitor ${short(id)}`;
  const history = await client.history(id, 200, null);
  history.forEach(place);
  const incoming = history.filter((m) => !m.mine && m.cursor !== null);
  if (incoming.length > 0) {
    client.sendReadReceipt(id, Math.max(...incoming.map((m) => m.cursor))).catch(() => {});
  }
  await fillHandover();
  await renderInbox();
  $('text').focus();
}

async function fillHandover() {
  const select = $('handover');
  select.replaceChildren(new Option('choose a colleague', ''));
  for (const m of await client.members(teamId())) {
    if (m.role === 'billing' || m.me) continue;
    select.append(new Option(`${m.role} ${short(m.member)}`, m.member));
  }
}

$('assign').addEventListener('click', () => {
  if (!current) return;
  client.sendSystem(current, `Assigned to ${short(client.deviceId)}`)
    .then(() => client.history(current, 5, null))
    .then((recent) => recent.forEach(place))
    .catch((e) => showNotice(describe(e), 'error'));
});

$('handover').addEventListener('change', (ev) => {
  const member = ev.target.value;
  if (!current || !member) return;
  client.sendSystem(current, `Handed over to member ${short(member)}`)
    .then(() => client.history(current, 5, null))
    .then((recent) => recent.forEach(place))
    .catch((e) => showNotice(describe(e), 'error'));
  ev.target.value = '';
});

async function reply() {
  const text = $('text');
  const value = text.value.trim();
  if (!value || !current) return;
  text.value = '';
  const sent = await client.sendText(current, value);
  place({ cursor: sent.cursor, sender: client.deviceId, mine: true, kind: 'text', text: value, epoch: sent.epoch, counter: sent.counter, at: Math.floor(Date.now() / 1000) });
  stopTyping();
}

function stopTyping() {
  clearTimeout(typingTimer);
  if (typingSent && current) {
    typingSent = false;
    client.sendTyping(current, false).catch(() => {});
  }
}

$('composer').addEventListener('submit', (ev) => {
  ev.preventDefault();
  reply().catch((e) => showNotice(describe(e), 'error'));
});

$('text').addEventListener('keydown', (ev) => {
  if (ev.key === 'Enter' && !ev.shiftKey) {
    ev.preventDefault();
    reply().catch((e) => showNotice(describe(e), 'error'));
  }
});

$('text').addEventListener('input', () => {
  if (!current) return;
  if (!typingSent) {
    typingSent = true;
    client.sendTyping(current, true).catch(() => {});
  }
  clearTimeout(typingTimer);
  typingTimer = setTimeout(stopTyping, 3000);
});

$('file').addEventListener('change', async (ev) => {
  const chosen = ev.target.files && ev.target.files[0];
  ev.target.value = '';
  if (!chosen || !current) return;
  try {
    const bytes = new Uint8Array(await chosen.arrayBuffer());
    await client.sendAttachment(current, bytes, chosen.name, chosen.type || 'application/octet-stream');
    (await client.history(current, 5, null)).forEach(place);
  } catch (e) {
    showNotice(describe(e), 'error');
  }
});

function onEvent(event) {
  switch (event.type) {
    case 'message':
      if (event.conversation === current) {
        place(event.message);
        $('typing').hidden = true;
        if (!event.message.mine && event.message.cursor !== null) {
          client.sendReadReceipt(current, event.message.cursor).catch(() => {});
        }
      } else if (!event.message.mine) {
        unread.set(event.conversation, (unread.get(event.conversation) || 0) + 1);
        if (!$('view-inbox').hidden) renderInbox();
      }
      break;
    case 'conversationStarted':
      if (!$('view-inbox').hidden) renderInbox();
      break;
    case 'typing':
      if (event.conversation === current) $('typing').hidden = !event.typing;
      break;
    case 'teamChanged':
      if (!$('view-team').hidden) renderTeam();
      if (!$('view-audit').hidden) renderAudit();
      break;
    case 'removedFromTeam':
      showNotice('This device was removed from the team. Its keys are erased.', 'error');
      $('app').hidden = true;
      break;
    case 'disconnected':
      showNotice('Offline: replies are queued and sent when the connection is back.');
      break;
    case 'connected':
      showNotice('');
      break;
    case 'warning':
      console.warn('sotto warning', JSON.stringify(event.warning));
      showNotice(warningText(event.warning), 'error');
      break;
    default:
      break;
  }
}

// ---- team

// The `host` parameter becomes a link: only an http(s) URL, never `javascript:` or `data:`.
function httpUrl(value) {
  if (!value) return null;
  try {
    const url = new URL(value);
    return url.protocol === 'http:' || url.protocol === 'https:' ? url.href : null;
  } catch {
    return null;
  }
}

async function renderTeam() {
  $('team-ref').textContent = teamRef;
  const widgetId = query.get('w') || '<your widget id>';
  // The widget's origin: the relay's main listener, which differs from this page's when the
  // console has its own (`relay` parameter, as demo.sh passes it).
  const widgetOrigin = httpUrl(query.get('relay')) ? new URL(query.get('relay')).origin : location.origin;
  $('snippet').textContent =
    `<script async src="${widgetOrigin}/widget/sotto.js"\n` +
    `  data-relay="${widgetOrigin}"\n  data-widget-id="${widgetId}"\n  data-team="${teamRef}"></script>`;
  const host = httpUrl(query.get('host'));
  const tryIt = $('try-it');
  tryIt.hidden = !host;
  if (host) tryIt.href = `${host}?team=${encodeURIComponent(teamRef)}`;
  const members = await client.members(teamId());
  // Built aside and swapped in at once: renders triggered by events may overlap.
  const rows = [];
  const mine = members.find((m) => m.me);
  const manages = mine && (mine.role === 'owner' || mine.role === 'admin');
  for (const m of members) {
    const tr = document.createElement('tr');
    const cells = [`${short(m.member)}${m.me ? ' (you)' : ''}`, null, m.devices.map(short).join(', '), null];
    for (const text of cells) {
      const td = document.createElement('td');
      if (text !== null) td.textContent = text;
      tr.append(td);
    }
    const roleCell = tr.children[1];
    if (manages && !m.me) {
      const select = document.createElement('select');
      select.setAttribute('aria-label', `Role of ${short(m.member)}`);
      for (const role of ['owner', 'admin', 'agent', 'viewer', 'billing', 'bot']) {
        select.append(new Option(role, role, false, role === m.role));
      }
      select.addEventListener('change', () => act(() => client.changeRole(teamId(), m.member, select.value)));
      roleCell.append(select);
    } else {
      roleCell.textContent = m.role;
    }
    const actions = tr.children[3];
    if (manages && !m.me) {
      const remove = document.createElement('button');
      remove.type = 'button';
      remove.className = 'danger';
      remove.textContent = 'Remove';
      remove.setAttribute('aria-label', `Remove member ${short(m.member)}`);
      remove.addEventListener('click', () => act(() => client.removeMember(teamId(), m.member)));
      actions.append(remove);
      for (const device of m.devices) {
        const revoke = document.createElement('button');
        revoke.type = 'button';
        revoke.className = 'secondary';
        revoke.textContent = `Revoke ${short(device)}`;
        revoke.addEventListener('click', () => act(() => client.revokeDevice(teamId(), m.member, device)));
        actions.append(revoke);
      }
    }
    rows.push(tr);
  }
  $('members').replaceChildren(...rows);
  $('invite-form').hidden = !manages;
}

async function act(work) {
  try {
    await work();
    showNotice('');
  } catch (e) {
    showNotice(describe(e), 'error');
  }
  await renderTeam();
}

$('invite-form').addEventListener('submit', (ev) => {
  ev.preventDefault();
  const form = ev.target;
  act(async () => {
    await client.inviteMember(teamId(), form.elements.device.value.trim().toLowerCase(), form.elements.role.value);
    form.reset();
  });
});

// ---- audit

async function renderAudit() {
  const items = [];
  for (const entry of await client.teamLog(teamId())) {
    const li = document.createElement('li');
    const when = new Date(entry.at * 1000).toLocaleString();
    li.textContent = `#${entry.seq} · ${when} · ${entry.description}`;
    items.push(li);
  }
  $('audit').replaceChildren(...items);
}

// ---- recovery

$('recovery-create').addEventListener('click', async () => {
  try {
    const kit = await client.exportRecoveryKey();
    const words = $('recovery-words');
    words.textContent = kit.words;
    words.hidden = false;
  } catch (e) {
    showNotice(describe(e), 'error');
  }
});

boot().catch((e) => showNotice(describe(e), 'error'));
