/*
 * Sotto widget launcher: the one <script> a site embeds. It draws the chat button, and on the
 * first "open" creates the chat in an iframe served from the relay's origin, so the host page can
 * never read the chat's storage or keys. Everything else (the wasm, the keys, the messages) lives
 * in that iframe. Commands queued before this script loaded are run in order:
 *
 *   window.Sotto('open') / ('close') / ('identify', assertion) / ('on', 'unread', fn)
 */
(function () {
  'use strict';
  var script = document.currentScript;
  if (!script || window.__sottoLoaded) return;
  window.__sottoLoaded = true;

  var relay = new URL(script.getAttribute('data-relay') || script.src, script.src);
  var origin = relay.origin;
  var widgetId = script.getAttribute('data-widget-id') || '';
  var team = script.getAttribute('data-team') || '';
  var label = script.getAttribute('data-label') || 'Chat with us';
  // Remembered on the host only as "this browser has opened the chat before", so a returning
  // visitor's chat starts in the background and can show unread replies.
  var seenKey = 'sotto-opened:' + widgetId;

  var frame = null;
  var frameReady = false;
  var pending = [];
  var unreadHandlers = [];
  var isOpen = false;

  var host = document.createElement('div');
  host.setAttribute('data-sotto', '');
  var root = host.attachShadow ? host.attachShadow({ mode: 'closed' }) : host;
  var style = document.createElement('style');
  style.textContent =
    '.b{position:fixed;right:20px;bottom:20px;z-index:2147483000;border:0;border-radius:28px;' +
    'padding:14px 20px;background:#1f4bd8;color:#fff;font:600 15px system-ui,sans-serif;' +
    'box-shadow:0 4px 14px rgba(0,0,0,.25);cursor:pointer}' +
    '.b:focus-visible{outline:3px solid #f5b400;outline-offset:2px}' +
    '.n{display:none;margin-left:8px;min-width:20px;padding:1px 6px;border-radius:10px;' +
    'background:#d8262f;font-size:12px}' +
    '.f{position:fixed;right:20px;bottom:84px;z-index:2147483000;width:370px;height:560px;' +
    'max-width:calc(100vw - 24px);max-height:calc(100vh - 104px);border:0;border-radius:12px;' +
    'box-shadow:0 8px 30px rgba(0,0,0,.3);background:#fff;display:none}' +
    '@media (max-width:480px){.f{right:0;bottom:0;width:100vw;height:100vh;max-width:none;' +
    'max-height:none;border-radius:0}}';
  var button = document.createElement('button');
  button.className = 'b';
  button.type = 'button';
  button.setAttribute('aria-haspopup', 'dialog');
  button.setAttribute('aria-expanded', 'false');
  button.textContent = label;
  var badge = document.createElement('span');
  badge.className = 'n';
  badge.setAttribute('aria-live', 'polite');
  button.appendChild(badge);
  root.appendChild(style);
  root.appendChild(button);

  function post(message) {
    if (frameReady) frame.contentWindow.postMessage(message, origin);
    else pending.push(message);
  }

  function ensureFrame() {
    if (frame) return;
    frame = document.createElement('iframe');
    frame.className = 'f';
    frame.title = 'Support chat';
    frame.setAttribute('allow', 'clipboard-write');
    // The widget id also goes in the query, where the relay reads it to allow this tenant's
    // sites (and only them) to frame the page.
    frame.src =
      origin + '/widget/frame.html?w=' + encodeURIComponent(widgetId) + '#' +
      new URLSearchParams({ w: widgetId, t: team });
    root.appendChild(frame);
  }

  function setUnread(count) {
    badge.textContent = String(count);
    badge.style.display = count > 0 ? 'inline-block' : 'none';
    button.setAttribute('aria-label', label + (count > 0 ? ', ' + count + ' unread' : ''));
    for (var i = 0; i < unreadHandlers.length; i++) {
      try { unreadHandlers[i](count); } catch (e) { /* a host handler's error is its own */ }
    }
  }

  var commands = {
    open: function () {
      ensureFrame();
      isOpen = true;
      try { localStorage.setItem(seenKey, '1'); } catch (e) { /* storage may be blocked */ }
      frame.style.display = 'block';
      button.setAttribute('aria-expanded', 'true');
      post({ sotto: 'open' });
    },
    close: function () {
      isOpen = false;
      if (frame) frame.style.display = 'none';
      button.setAttribute('aria-expanded', 'false');
      post({ sotto: 'close' });
      button.focus();
    },
    identify: function (assertion) {
      if (typeof assertion === 'string') post({ sotto: 'identify', assertion: assertion });
    },
    on: function (name, fn) {
      if (name === 'unread' && typeof fn === 'function') unreadHandlers.push(fn);
    }
  };

  function run(args) {
    var command = commands[args[0]];
    if (command) command.apply(null, Array.prototype.slice.call(args, 1));
  }

  window.addEventListener('message', function (event) {
    if (!frame || event.origin !== origin || event.source !== frame.contentWindow) return;
    var data = event.data || {};
    if (data.sotto === 'ready') {
      frameReady = true;
      var queued = pending;
      pending = [];
      for (var i = 0; i < queued.length; i++) frame.contentWindow.postMessage(queued[i], origin);
    } else if (data.sotto === 'unread' && typeof data.count === 'number') {
      setUnread(data.count);
    } else if (data.sotto === 'close') {
      commands.close();
    }
  });

  button.addEventListener('click', function () { run([isOpen ? 'close' : 'open']); });

  var queue = (window.Sotto && window.Sotto.q) || [];
  window.Sotto = function () { run(arguments); };
  document.body.appendChild(host);
  try { if (localStorage.getItem(seenKey)) { ensureFrame(); post({ sotto: 'background' }); } }
  catch (e) { /* storage may be blocked: the chat then starts on open */ }
  for (var i = 0; i < queue.length; i++) run(queue[i]);
})();
