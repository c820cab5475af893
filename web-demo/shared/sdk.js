// Loads the browser package on first use (the wasm is fetched only then) and gives the UI the
// few helpers both pages share.

let loading = null;
let packageUrl = '../pkg/sotto_wasm.js';

/**
 * Chooses the package build before its first use: the widget loads the default one, the agent
 * console the build with the console's calls (teams, audit log, recovery key).
 */
export function usePackage(url) {
  packageUrl = url;
}

/** The package module, initialised once. */
export function sdk() {
  if (!loading) {
    loading = import(packageUrl).then(async (module) => {
      await module.default();
      return module;
    });
  }
  return loading;
}

/**
 * Opens the device kept in `database`, or registers a new one with `options` when this browser
 * has none yet.
 */
export async function openOrRegister(database, options) {
  const { SottoClient } = await sdk();
  try {
    return await SottoClient.open(database);
  } catch (e) {
    if (e && e.code === 'not_registered') {
      return SottoClient.register({ ...options, database });
    }
    throw e;
  }
}

/** Runs `handle` for every event of `client` until the page goes away. */
export async function pumpEvents(client, handle) {
  for (;;) {
    const event = await client.nextEvent();
    try {
      handle(event);
    } catch (e) {
      console.error('event handler failed', e);
    }
  }
}

/** A short, human description of an error from the package. */
export function describe(e) {
  // The full error stays in the developer console; the user gets a sentence.
  console.error(e);
  const code = e && e.code ? e.code : 'error';
  const words = {
    transport: 'The connection to the server failed; retrying.',
    store_read_only: 'This chat is open in another tab.',
    url_insecure_scheme: 'The server address must use https.',
  };
  return words[code] || `Something went wrong (${code}).`;
}

/** Text for a warning event; every one of them is worth telling the user. */
export function warningText(w) {
  switch (w.kind) {
    case 'fork':
    case 'rollback':
      return 'The team’s key history looks different from before. Messages are not sent until it is verified.';
    case 'gap':
      return `${w.missing} message(s) could not be delivered.`;
    case 'badKeyWrap':
      return 'A team member sent this device a key that does not match the team’s records. Ask an admin to check that member.';
    case 'undecryptable':
      return 'A message could not be decrypted.';
    case 'unverifiedIdentity':
      return 'A participant’s identity could not be verified.';
    case 'sendFailed':
      return 'A message could not be sent; it will be retried.';
    case 'epochRefused':
      return 'The server delivered part of this conversation that does not check out (possibly from someone no longer on the team). It is not shown.';
    case 'unverifiedDeletion':
      return 'The server says this conversation was deleted, but nobody allowed to delete it signed that. Its history is kept.';
    default:
      return 'Something unexpected happened with this conversation.';
  }
}

/** A list item for one message; attachments are fetched and decrypted on demand. */
export function renderMessage(message, { fetchAttachment, senderName }) {
  const li = document.createElement('li');
  li.className = 'msg' + (message.mine ? ' mine' : '') + (message.cursor === null ? ' pending' : '');
  if (message.cursor !== null) li.dataset.cursor = String(message.cursor);
  li.dataset.key = `${message.sender}:${message.epoch}:${message.counter}`;
  if (message.kind === 'text') {
    li.append(document.createTextNode(message.text ?? ''));
  } else if (message.kind === 'attachment' && message.attachment) {
    const a = message.attachment;
    const link = document.createElement('a');
    link.href = '#';
    link.textContent = `${a.name} (${formatSize(a.size)})`;
    li.append(link);
    const show = async () => {
      const bytes = await fetchAttachment(message);
      const blob = new Blob([bytes], { type: safeType(a.mimeType) });
      const url = URL.createObjectURL(blob);
      if (blob.type.startsWith('image/')) {
        const img = document.createElement('img');
        img.src = url;
        img.alt = a.name;
        li.append(img);
      }
      link.href = url;
      link.download = a.name;
    };
    link.addEventListener('click', (ev) => {
      if (link.href.endsWith('#')) {
        ev.preventDefault();
        show().catch(() => { link.textContent += ' (could not be decrypted)'; });
      }
    }, { once: false });
    if (safeType(a.mimeType).startsWith('image/') && message.cursor !== null) {
      show().catch(() => { link.textContent += ' (could not be decrypted)'; });
    }
  } else if (message.kind === 'identity') {
    // The visitor's identity assertion: the verified customer id arrives as its own event.
    li.className = 'msg system';
    li.textContent = 'Identity presented';
  } else {
    // A team note (only member devices may write one; the core refuses a visitor's): always
    // shown with the device that wrote it, never as an anonymous team voice.
    li.className = 'msg system';
    const by = message.mine ? 'you' : senderName(message.sender);
    li.textContent = `${message.text ?? message.kind} (note by ${by})`;
  }
  const meta = document.createElement('span');
  meta.className = 'meta';
  const when = new Date(message.at * 1000);
  meta.textContent = `${message.mine ? 'You' : senderName(message.sender)} · ${when.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' })}`;
  li.append(meta);
  return li;
}

// Only image types the browser renders safely inline; anything else is a download.
function safeType(type) {
  return /^image\/(png|jpeg|gif|webp)$/.test(type) ? type : 'application/octet-stream';
}

function formatSize(n) {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KB`;
  return `${(n / 1024 / 1024).toFixed(1)} MB`;
}
