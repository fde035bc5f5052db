// The imbridge sandbox page: one pane per emulated messenger (and the
// Botsplash customers' phone), fed by GET /api/state and the Server-Sent
// Events of GET /events; people act through POST /api/<messenger>/<action>.
// No framework, no build step.
'use strict';

const MESSENGERS = {
  teamspirit: { app: 'TeamSpirit', logo: 'TS' },
  slack: { app: 'Slack', logo: '#' },
  telegram: { app: 'Telegram', logo: '✈' },
  bitrix24: { app: 'Bitrix24', logo: 'B24' },
  botsplash: { app: 'Botsplash', logo: '☎' },
};

// Line icons as inline SVG (emoji fonts are often missing).
const SVG = (paths) => '<svg viewBox="0 0 24 24" width="16" height="16" ' +
  'fill="none" stroke="currentColor" stroke-width="2" stroke-linecap="round" ' +
  `stroke-linejoin="round" aria-hidden="true">${paths}</svg>`;
const ICONS = {
  reply: SVG('<path d="M9 14L4 9l5-5"/><path d="M4 9h10a6 6 0 0 1 6 6v4"/>'),
  edit: SVG('<path d="M12 20h9"/><path d="M16.5 3.5a2.1 2.1 0 0 1 3 3L7 19l-4 1 1-4z"/>'),
  delete: SVG('<path d="M3 6h18"/><path d="M19 6l-1 14a2 2 0 0 1-2 2H8a2 2 0 0 1-2-2L5 6"/>' +
    '<path d="M10 11v6M14 11v6"/><path d="M9 6V4h6v2"/>'),
  file: SVG('<path d="M14 2H6a2 2 0 0 0-2 2v16a2 2 0 0 0 2 2h12a2 2 0 0 0 2-2V8z"/>' +
    '<path d="M14 2v6h6"/>'),
};

const PRESENCE_WORDS = {
  online: 'online', active: 'active', away: 'away', dnd: 'do not disturb',
  offline: 'offline', '': 'unknown',
};

// name -> { state, el, messages: Map(id -> message), order: [ids], compose }
const panes = {};

// ---- small helpers ---------------------------------------------------------

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function escapeHtml(s) {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;');
}

function initials(name) {
  const words = (name || '?').replace(/\(.*?\)/g, '').trim().split(/\s+/);
  const letters = words.filter(Boolean).slice(0, 2).map((w) => w[0]);
  return (letters.join('') || '?').toUpperCase();
}

function colorOf(name) {
  let h = 0;
  for (const c of name || '') h = (h * 31 + c.charCodeAt(0)) >>> 0;
  return `hsl(${h % 360}, 55%, 45%)`;
}

function clock(ms) {
  if (!ms) return '';
  const d = new Date(ms);
  return d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
}

function size(bytes) {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
}

function safeUrl(url) {
  return /^(https?:|mailto:)/i.test(url) ? url : '#';
}

// ---- the markups -----------------------------------------------------

// Slack mrkdwn: &amp; &lt; &gt; escapes, <url|label>, *bold*, _italic_,
// ~strike~, `code`, ```blocks```.
function renderSlack(text) {
  const decode = (s) => s.replace(/&lt;/g, '<').replace(/&gt;/g, '>')
    .replace(/&amp;/g, '&');
  const style = (s) => escapeHtml(decode(s))
    .replace(/```([\s\S]+?)```/g, '<pre>$1</pre>')
    .replace(/`([^`\n]+)`/g, '<code>$1</code>')
    .replace(/(^|[^\w*])\*([^*\n]+)\*(?!\w)/g, '$1<b>$2</b>')
    .replace(/(^|[^\w])_([^_\n]+)_(?!\w)/g, '$1<i>$2</i>')
    .replace(/(^|[^\w~])~([^~\n]+)~(?!\w)/g, '$1<s>$2</s>')
    .replace(/^&gt; ?(.*)$/gm, '<blockquote>$1</blockquote>');
  let out = '';
  let last = 0;
  const link = /<([^<>|]+)(?:\|([^<>]+))?>/g;
  let m;
  while ((m = link.exec(text)) !== null) {
    out += style(text.slice(last, m.index));
    const target = decode(m[1]);
    const label = m[2] !== undefined ? decode(m[2]) : target;
    if (target.startsWith('@') || target.startsWith('#')) {
      out += `<span class="mention">${escapeHtml(label)}</span>`;
    } else {
      out += `<a href="${escapeHtml(safeUrl(target))}" target="_blank" ` +
        `rel="noopener">${escapeHtml(label)}</a>`;
    }
    last = link.lastIndex;
  }
  return out + style(text.slice(last));
}

// TeamSpirit markdown: **bold**, *italic* / _italic_, ~~strike~~, `code`,
// ```blocks```, [label](url), @[Name](user:id), "> " quotes, \-escapes.
function renderTeamSpirit(text) {
  const escapes = [];
  let s = text.replace(/\\([\\`*_{}[\]()#+\-.!~>|@])/g, (_, c) => {
    escapes.push(c);
    return `\u0000${escapes.length - 1}\u0000`;
  });
  s = escapeHtml(s)
    .replace(/```(?:[\w+-]*\n)?([\s\S]+?)```/g, '<pre>$1</pre>')
    .replace(/`([^`\n]+)`/g, '<code>$1</code>')
    .replace(/@\[([^\]]+)\]\(user:[^)]+\)/g, '<span class="mention">@$1</span>')
    .replace(/\[([^\]]+)\]\(([^)\s]+)\)/g, (_, label, url) =>
      `<a href="${safeUrl(url)}" target="_blank" rel="noopener">${label}</a>`)
    .replace(/\*\*([^*\n]+)\*\*/g, '<b>$1</b>')
    .replace(/~~([^~\n]+)~~/g, '<s>$1</s>')
    .replace(/(^|[^\w*])\*([^*\n]+)\*(?!\w)/g, '$1<i>$2</i>')
    .replace(/(^|[^\w])_([^_\n]+)_(?!\w)/g, '$1<i>$2</i>')
    .replace(/^&gt; ?(.*)$/gm, '<blockquote>$1</blockquote>');
  return s.replace(/\u0000(\d+)\u0000/g, (_, i) => escapeHtml(escapes[+i]));
}

// Telegram: plain text plus entities with UTF-16 offsets (as JS strings).
function renderTelegram(text, entities) {
  const tags = {
    bold: ['<b>', '</b>'], italic: ['<i>', '</i>'], underline: ['<u>', '</u>'],
    strikethrough: ['<s>', '</s>'], code: ['<code>', '</code>'],
    pre: ['<pre>', '</pre>'], spoiler: ['<span class="spoiler">', '</span>'],
    blockquote: ['<blockquote>', '</blockquote>'],
    mention: ['<span class="mention">', '</span>'],
  };
  const opens = new Map();
  const closes = new Map();
  const list = (entities || []).slice()
    .sort((a, b) => a.offset - b.offset || b.length - a.length);
  for (const e of list) {
    let pair = tags[e.type];
    if (e.type === 'text_link') {
      pair = [`<a href="${escapeHtml(safeUrl(e.url || ''))}" target="_blank" ` +
        'rel="noopener">', '</a>'];
    } else if (e.type === 'url') {
      const url = text.substr(e.offset, e.length);
      pair = [`<a href="${escapeHtml(safeUrl(url))}" target="_blank" ` +
        'rel="noopener">', '</a>'];
    }
    if (!pair) continue;
    if (!opens.has(e.offset)) opens.set(e.offset, []);
    opens.get(e.offset).push(pair[0]);
    const end = e.offset + e.length;
    if (!closes.has(end)) closes.set(end, []);
    closes.get(end).unshift(pair[1]);
  }
  let out = '';
  for (let i = 0; i <= text.length; i++) {
    if (closes.has(i)) out += closes.get(i).join('');
    if (opens.has(i)) out += opens.get(i).join('');
    if (i < text.length) out += escapeHtml(text[i]);
  }
  return out;
}

// Bitrix24 BB-code: [b] [i] [u] [s], [url]x[/url], [url=x]label[/url],
// [code]…[/code], [quote]…[/quote] and ">>" lines, [USER=id]Name[/USER],
// [CHAT=id]Title[/CHAT], [br]. Tags are case-insensitive; the bridge's
// zero-width spaces (which keep literal brackets from reading as tags) are
// invisible anyway.
function renderBbCode(text) {
  const codes = [];
  let s = text.replace(/\[code\]([\s\S]*?)\[\/code\]/gi, (_, code) => {
    codes.push(code);
    return `\u0000${codes.length - 1}\u0000`;
  });
  s = escapeHtml(s)
    .replace(/\[br\]/gi, '\n')
    .replace(/\[url\]([^[]+?)\[\/url\]/gi, (_, url) =>
      `<a href="${safeUrl(url)}" target="_blank" rel="noopener">${url}</a>`)
    .replace(/\[url=([^\]]+)\]([\s\S]*?)\[\/url\]/gi, (_, url, label) =>
      `<a href="${safeUrl(url)}" target="_blank" rel="noopener">${label}</a>`)
    .replace(/\[user=[^\]]+\]([\s\S]*?)\[\/user\]/gi,
      '<span class="mention">@$1</span>')
    .replace(/\[chat=[^\]]+\]([\s\S]*?)\[\/chat\]/gi,
      '<span class="mention">#$1</span>')
    .replace(/\[quote\]([\s\S]*?)\[\/quote\]/gi, '<blockquote>$1</blockquote>')
    .replace(/^&gt;&gt;(.*)$/gm, '<blockquote>$1</blockquote>');
  for (const tag of ['b', 'i', 'u', 's']) {
    const re = new RegExp(`\\[${tag}\\]([\\s\\S]*?)\\[\\/${tag}\\]`, 'gi');
    let before;
    do { before = s; s = s.replace(re, `<${tag}>$1</${tag}>`); } while (s !== before);
  }
  return s.replace(/\u0000(\d+)\u0000/g,
    (_, i) => `<code>${escapeHtml(codes[+i])}</code>`);
}

function renderText(message) {
  if (message.format === 'plain') return escapeHtml(message.text || '');
  if (message.format === 'slack') return renderSlack(message.text || '');
  if (message.format === 'bbcode') return renderBbCode(message.text || '');
  if (message.format === 'telegram') {
    return renderTelegram(message.text || '', message.entities);
  }
  return renderTeamSpirit(message.text || '');
}

function plainPreview(message) {
  if (!message) return 'a message';
  if (message.deleted) return 'a deleted message';
  let text = message.text || '';
  if (message.format === 'bbcode') text = text.replace(/\[\/?[a-z]+(=[^\]]*)?\]/gi, '');
  text = text.replace(/[*_~`]/g, '').replace(/\s+/g, ' ');
  const files = (message.files || []).map((f) => f.name).join(', ');
  const body = text || (files ? `file: ${files}` : '');
  return body.length > 70 ? `${body.slice(0, 70)}…` : body;
}

// ---- the API -----------------------------------------------------------------

async function act(messenger, action, body) {
  const response = await fetch(`/api/${messenger}/${action}`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify(body),
  });
  let answer = {};
  try { answer = await response.json(); } catch (e) { /* not JSON */ }
  if (!response.ok || !answer.ok) {
    throw new Error(answer.error || `HTTP ${response.status}`);
  }
  return answer;
}

function showError(pane, error) {
  const box = pane.el.querySelector('.composer-error');
  box.textContent = error ? String(error.message || error) : '';
  box.hidden = !error;
}

// ---- panes -------------------------------------------------------------------

function buildPane(name, state) {
  const template = document.getElementById('pane-template');
  const root = template.content.firstElementChild.cloneNode(true);
  root.id = `pane-${name}`;
  root.dataset.messenger = name;
  root.classList.add(`pane-${name}`);
  root.querySelector('.pane-logo').textContent = MESSENGERS[name].logo;
  root.querySelector('.pane-app').textContent = MESSENGERS[name].app;
  root.querySelector('.pane-chat').textContent = state.title;
  const pane = {
    name, state, el: root, messages: new Map(), order: [],
    compose: { mode: 'post', target: null },
  };
  panes[name] = pane;

  const form = root.querySelector('.composer');
  const textarea = root.querySelector('.composer-text');
  textarea.placeholder = name === 'slack' ? `Message ${state.title}`
    : name === 'telegram' ? 'Write a message…'
      : name === 'botsplash' ? 'Text the team as the customer…'
        : `Message ${state.title}`;
  form.addEventListener('submit', (e) => { e.preventDefault(); send(pane); });
  textarea.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && !e.shiftKey) { e.preventDefault(); send(pane); }
    if (e.key === 'Escape') setMode(pane, 'post', null);
  });
  textarea.addEventListener('input', () => autosize(textarea));
  root.querySelector('.composer-cancel')
    .addEventListener('click', () => setMode(pane, 'post', null));
  root.querySelector('.file-input')
    .addEventListener('change', (e) => upload(pane, e.target));
  root.querySelector('.messages').addEventListener('click', (e) => {
    const button = e.target.closest('button[data-act]');
    if (!button) return;
    const id = button.closest('.msg').dataset.id;
    onAction(pane, button.dataset.act, pane.messages.get(id));
  });
  renderRoster(pane, state);
  for (const m of state.messages) upsertMessage(pane, m);
  return root;
}

function autosize(textarea) {
  textarea.style.height = 'auto';
  textarea.style.height = `${Math.min(textarea.scrollHeight, 140)}px`;
}

function presenceClass(p) {
  return `presence presence-${p || 'unknown'}`;
}

function renderRoster(pane, roster) {
  pane.state.people = roster.people;
  pane.state.guests = roster.guests;
  pane.state.bot = roster.bot;
  const root = pane.el;
  const features = pane.state.features;

  // "Post as" choices keep the current selection.
  const select = root.querySelector('.as-user');
  const chosen = select.value;
  select.replaceChildren(...roster.people.map((p) => {
    const option = el('option', '', p.name);
    option.value = p.id;
    return option;
  }));
  if (chosen && roster.people.some((p) => p.id === chosen)) select.value = chosen;

  const people = root.querySelector('.people');
  people.replaceChildren(...roster.people.map((p) => {
    const chip = el('div', 'person');
    chip.dataset.user = p.id;
    const avatar = el('span', 'avatar small', initials(p.name));
    avatar.style.background = colorOf(p.name);
    const dot = el('span', presenceClass(p.presence));
    dot.title = PRESENCE_WORDS[p.presence] || p.presence;
    avatar.append(dot);
    chip.append(avatar, el('span', 'person-name', p.name));
    if (features.presence) {
      const choose = el('select', 'presence-select');
      choose.title = `${p.name}'s presence`;
      for (const choice of pane.state.presence_choices) {
        const option = el('option', '', PRESENCE_WORDS[choice] || choice);
        option.value = choice;
        choose.append(option);
      }
      choose.value = p.presence;
      choose.addEventListener('change', () => {
        act(pane.name, 'presence', { user: p.id, status: choose.value })
          .then(() => showError(pane, null))
          .catch((err) => showError(pane, err));
      });
      chip.append(choose);
    }
    return chip;
  }));
  if (!features.presence) {
    const note = el('span', 'people-note', pane.name === 'botsplash'
      ? 'Customers by text message: no edits, no deletions; start one with '
        + '!bridge botsplash start <phone> <name>'
      : `${MESSENGERS[pane.name].app} shows bots no presence` +
        (features.delete ? '' : ' and no deletions'));
    people.append(note);
  }

  const guests = root.querySelector('.guests');
  guests.hidden = roster.guests.length === 0;
  guests.replaceChildren(el('span', 'guests-label', 'Guests via bridge'),
    ...roster.guests.map((g) => {
      const chip = el('span', 'guest');
      chip.append(el('span', presenceClass(g.presence)), el('span', '', g.name));
      chip.title = `${g.name}: ${PRESENCE_WORDS[g.presence] || g.presence}`;
      return chip;
    }));

  const bot = root.querySelector('.pane-bot');
  if (roster.bot && roster.bot.presence) {
    bot.replaceChildren(el('span', presenceClass(roster.bot.presence)),
      el('span', '', `${roster.bot.name} bot · ${roster.bot.text ||
        PRESENCE_WORDS[roster.bot.presence]}`));
  }
}

function messageNode(pane, m) {
  const node = el('div', 'msg');
  node.dataset.id = m.id;
  if (m.bridged) node.classList.add('bridged');
  if (m.deleted) node.classList.add('deleted');
  if (m.reply_to) node.classList.add('is-reply');

  const avatar = el('div', 'avatar', initials(m.name));
  avatar.style.background = colorOf(m.name);
  const body = el('div', 'body');
  const meta = el('div', 'meta');
  const name = el('span', 'name', m.name);
  name.style.setProperty('--name-color', colorOf(m.name));
  meta.append(name);
  if (m.bridged) meta.append(el('span', 'badge', pane.name === 'slack' ? 'APP' : 'bot'));
  meta.append(el('time', 'time', clock(m.time)));
  body.append(meta);

  if (m.reply_to) {
    const parent = pane.messages.get(m.reply_to);
    const quote = el('div', 'reply-quote');
    const who = el('span', 'reply-name', parent ? parent.name : '');
    quote.append(el('span', 'reply-mark',
      pane.name === 'slack' ? 'in thread · ' : '↪ '), who,
    el('span', 'reply-text', ` ${plainPreview(parent)}`));
    body.append(quote);
  }
  const text = el('div', 'text');
  if (m.deleted) {
    text.textContent = 'This message was deleted.';
  } else {
    text.innerHTML = renderText(m);
    if (m.edited) text.append(el('span', 'edited', ' (edited)'));
  }
  body.append(text);
  if (!m.deleted && m.files && m.files.length) {
    const files = el('div', 'files');
    for (const f of m.files) {
      const link = el('a', 'file');
      link.href = `/files/${pane.name}/${encodeURIComponent(f.id)}`;
      link.setAttribute('download', f.name);
      const icon = el('span', 'file-icon');
      icon.innerHTML = ICONS.file;
      link.append(icon, el('span', 'file-name', f.name),
        el('span', 'file-size', size(f.size)));
      files.append(link);
    }
    body.append(files);
  }
  if (pane.name === 'telegram') body.append(el('time', 'bubble-time', clock(m.time)));

  const actions = el('div', 'actions');
  if (!m.deleted) {
    if (pane.state.features.reply !== false) {
      actions.append(actionButton('reply', 'Reply'));
    }
    if (!m.bridged && pane.state.features.edit !== false) {
      actions.append(actionButton('edit', 'Edit'));
    }
    if (!m.bridged && pane.state.features.delete) {
      actions.append(actionButton('delete', 'Delete'));
    }
  }
  node.append(avatar, body, actions);
  return node;
}

function actionButton(act, label) {
  const b = el('button', `act act-${act}`);
  b.innerHTML = ICONS[act];
  b.type = 'button';
  b.dataset.act = act;
  b.title = label;
  b.setAttribute('aria-label', label);
  return b;
}

function upsertMessage(pane, m) {
  const list = pane.el.querySelector('.messages');
  const nearBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 80;
  const known = pane.messages.has(m.id);
  pane.messages.set(m.id, m);
  const node = messageNode(pane, m);
  const old = list.querySelector(`.msg[data-id="${CSS.escape(m.id)}"]`);
  if (known && old) {
    old.replaceWith(node);
  } else {
    pane.order.push(m.id);
    list.append(node);
  }
  // Replies quoting this message show its new text.
  for (const other of pane.messages.values()) {
    if (other.reply_to === m.id && other.id !== m.id) {
      const n = list.querySelector(`.msg[data-id="${CSS.escape(other.id)}"]`);
      if (n) n.replaceWith(messageNode(pane, other));
    }
  }
  if (nearBottom || !known) list.scrollTop = list.scrollHeight;
}

// ---- people's actions --------------------------------------------------------

function setMode(pane, mode, target) {
  pane.compose = { mode, target };
  const bar = pane.el.querySelector('.composer-mode');
  const textarea = pane.el.querySelector('.composer-text');
  const select = pane.el.querySelector('.as-user');
  pane.el.classList.toggle('editing', mode === 'edit');
  select.disabled = mode === 'edit';
  if (mode === 'post') {
    bar.hidden = true;
    if (textarea.dataset.editing) { textarea.value = ''; delete textarea.dataset.editing; }
  } else {
    bar.hidden = false;
    bar.querySelector('.composer-mode-text').textContent = mode === 'reply'
      ? `Replying to ${target.name}: ${plainPreview(target)}`
      : `Editing ${target.name}'s message`;
    if (mode === 'edit') {
      select.value = target.user_id;
      textarea.value = target.text;
      textarea.dataset.editing = '1';
    }
  }
  autosize(textarea);
  textarea.focus();
}

function onAction(pane, action, m) {
  if (!m) return;
  if (action === 'reply') setMode(pane, 'reply', m);
  if (action === 'edit') setMode(pane, 'edit', m);
  if (action === 'delete') {
    act(pane.name, 'delete', { user: m.user_id, id: m.id })
      .then(() => showError(pane, null))
      .catch((err) => showError(pane, err));
  }
}

async function send(pane) {
  const textarea = pane.el.querySelector('.composer-text');
  const text = textarea.value.trim();
  if (!text) return;
  const user = pane.el.querySelector('.as-user').value;
  const { mode, target } = pane.compose;
  const button = pane.el.querySelector('.send-button');
  button.disabled = true;
  try {
    if (mode === 'edit') {
      await act(pane.name, 'edit', { user: target.user_id, id: target.id, text });
    } else {
      await act(pane.name, 'post', {
        user, text, reply_to: mode === 'reply' ? target.id : '',
      });
    }
    textarea.value = '';
    delete textarea.dataset.editing;
    setMode(pane, 'post', null);
    showError(pane, null);
  } catch (err) {
    showError(pane, err);
  } finally {
    button.disabled = false;
  }
}

function readBase64(file) {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(String(reader.result).replace(/^data:[^,]*,/, ''));
    reader.onerror = () => reject(reader.error);
    reader.readAsDataURL(file);
  });
}

async function upload(pane, input) {
  const file = input.files && input.files[0];
  if (!file) return;
  const textarea = pane.el.querySelector('.composer-text');
  const { mode, target } = pane.compose;
  try {
    await act(pane.name, 'upload', {
      user: pane.el.querySelector('.as-user').value,
      name: file.name,
      mime_type: file.type || 'application/octet-stream',
      content_base64: await readBase64(file),
      text: mode === 'edit' ? '' : textarea.value.trim(),
      reply_to: mode === 'reply' ? target.id : '',
    });
    if (mode !== 'edit') { textarea.value = ''; setMode(pane, 'post', null); }
    showError(pane, null);
  } catch (err) {
    showError(pane, err);
  } finally {
    input.value = '';
  }
}

// ---- live updates ------------------------------------------------------------

let source = null;

function setLive(ok, text) {
  const live = document.getElementById('live');
  live.classList.toggle('ok', ok);
  live.querySelector('.live-text').textContent = text;
}

async function load() {
  const response = await fetch('/api/state', { cache: 'no-store' });
  const state = await response.json();
  const container = document.getElementById('panes');
  container.replaceChildren();
  for (const key of Object.keys(panes)) delete panes[key];
  for (const name of state.order) {
    container.append(buildPane(name, state.messengers[name]));
  }
  if (source) source.close();
  source = new EventSource(`/events?after=${state.last_event_id}`);
  // Each response carries what is new and ends; the browser reconnects with
  // Last-Event-ID, so "error" between two responses is normal.
  source.onopen = () => setLive(true, 'live');
  source.onerror = () => {
    if (source.readyState === EventSource.CLOSED) {
      setLive(false, 'disconnected — reload the page');
    }
  };
  source.addEventListener('message', (e) => {
    const data = JSON.parse(e.data);
    const pane = panes[data.messenger];
    if (pane) upsertMessage(pane, data.message);
  });
  source.addEventListener('roster', (e) => {
    const data = JSON.parse(e.data);
    const pane = panes[data.messenger];
    if (pane) renderRoster(pane, data);
  });
  source.addEventListener('reset', () => { load(); });
  document.body.dataset.ready = '1';
}

load().catch((err) => setLive(false, `cannot load: ${err.message}`));
