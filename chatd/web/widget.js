/* chatd chat widget: <chatd-widget>, a Web Component in Shadow DOM. No build step, no framework.
 *
 * One tag embeds it (data-* attributes become the element's options):
 *   <script src="https://chat.example.com/widget.js" data-position="bottom-right" async></script>
 * Options (attributes on <chatd-widget>, or data-* on the script tag): position (bottom-right |
 * bottom-left), theme (light | dark | auto), open, guest-email, user-id + user-hash or
 * identity-token, title, greeting, strings (JSON of UI strings), server (chatd's URL; default:
 * where this script came from), transports (websocket,sse,longpoll), attachments (false: no
 * paperclip), accept (file types offered, as <input accept>), max-file-mb (10).
 * JS: element.configure({strings: {...}, userId, identityToken, ...}), element.open(), .close().
 *
 * Bot replies are Markdown rendered by building DOM nodes (markdown.js, which chatd serves in the
 * same script), never HTML; links are made for http(s) and mailto alone, images load over https
 * (or from chatd itself), and styles are a constructed stylesheet, so a strict
 * Content-Security-Policy without 'unsafe-inline' works. A streamed reply grows in one bubble
 * outside the live region (aria-busy, a caret) and is announced once, when its stored message
 * takes its place. Files (paperclip, drop, paste) upload at once to /api/chat/upload with
 * progress, and a message waits in the outbox until its files are up; a file not yet uploaded
 * lives in memory only, so a reload asks for it again. The protocol: chatd/PROTOCOL.md.
 */
(() => {
  "use strict";
  if (!window.customElements || customElements.get("chatd-widget")) return;

  const script = document.currentScript;
  const SCRIPT_ORIGIN = script && script.src ? new URL(script.src, location.href).origin : location.origin;

  const STRINGS = {
    title: "Chat with us",
    greeting: "Hi! How can we help you today?",
    open: "Open chat",
    close: "Close chat",
    input: "Type a message",
    send: "Send",
    typing: "The assistant is typing",
    agentTyping: "{name} is typing…",
    offline: "You are offline. Messages will be sent when you are back.",
    disconnected: "Connection lost. Reconnecting…",
    pending: "Sending…",
    sent: "Sent",
    delivered: "Delivered",
    failed: "Not delivered",
    retry: "Retry",
    retried: "Sent again",
    you: "You",
    bot: "Assistant",
    person: "Talk to a person",
    attachment: "Attachment",
    error: "Something went wrong. Please try again.",
    attach: "Attach files",
    drop: "Drop files to attach them",
    remove: "Remove {name}",
    uploading: "Uploading {name}",
    uploaded: "{name} uploaded",
    waiting: "Waiting for the connection",
    notSent: "{name} was not sent: {reason}",
    tooBig: "files can be up to {limit}.",
    wrongType: "this type of file is not allowed.",
    tooMany: "up to {limit} files per message.",
    lost: "Not sent: attach {name} again.",
    attachAgain: "Attach again",
    download: "Download",
    closeImage: "Close image",
  };
  const OPTIONS = ["position", "theme", "open", "guest-email", "user-id", "user-hash",
    "identity-token", "title", "greeting", "strings", "server", "transports", "attachments",
    "accept", "max-file-mb"];
  const TRANSPORTS = ["websocket", "sse", "longpoll"];
  const md = chatdMarkdown; // markdown.js, joined to this file by chatd (routes_web.py)
  const safeUrl = md.safeUrl;
  const STALE_MS = 10000; // after a reconnect, a streamed reply chatd sent no snapshot of is gone
  // What the file chooser offers and the widget lets through: a hint; chatd decides by the bytes.
  const ACCEPT = "image/png,image/jpeg,image/gif,image/webp,application/pdf,text/plain,.png,.jpg,.jpeg,.gif,.webp,.pdf,.txt";
  const MAX_FILES = 5; // per message, as chatd's default

  // ---- pure helpers ----------------------------------------------------------------------------

  /** Images: https anywhere, or chatd's own origin (a local demo runs over http). */
  function safeImage(value, server) {
    const href = safeUrl(value, ["https:", "http:"]);
    if (!href) return null;
    const url = new URL(href);
    return url.protocol === "https:" || url.origin === server ? href : null;
  }

  const RANK = { pending: 0, sent: 1, delivered: 2, failed: 2 };
  /** Statuses only move forward: the later of two, whichever arrived last. */
  function later(a, b) { return (RANK[b] ?? 0) >= (RANK[a] ?? 0) ? b : a; }

  /** "Uploading {name}" with {name: ...}: strings stay whole sentences, for translators. */
  function fmt(text, values) { return String(text).replace(/\{(\w+)\}/g, (_, k) => values[k] ?? ""); }

  function humanSize(n) { // "0.2 kB", "11.9 kB", "3 MB" in the shopper's language
    const mb = n >= 1048576;
    return new Intl.NumberFormat(undefined, { style: "unit", unit: mb ? "megabyte" : "kilobyte",
      unitDisplay: "short", maximumFractionDigits: 1 }).format(n / (mb ? 1048576 : 1024));
  }

  /** Does the file match an accept list ("image/*", "image/png", ".pdf")? */
  function accepts(list, file) {
    const name = file.name.toLowerCase(), type = file.type.toLowerCase();
    return list.toLowerCase().split(",").map((p) => p.trim()).some((p) => (p[0] === "." ? name.endsWith(p)
      : p.endsWith("/*") ? type.startsWith(p.slice(0, -1)) : type === p));
  }

  /** The ids of a queued message's uploaded files, or nothing (an older chatd knows no such field). */
  function ids(m) { return m.files && m.files.length ? m.files.map((f) => f.att && f.att.id) : undefined; }

  /** The nodes of `list` become `nodes`, moving only what moved (focus and live regions stay calm). */
  function place(list, nodes) {
    nodes.forEach((node, i) => { if (list.children[i] !== node) list.insertBefore(node, list.children[i] || null); });
    while (list.children.length > nodes.length) list.lastChild.remove();
  }

  function newId() {
    if (crypto.randomUUID) return crypto.randomUUID();
    const b = crypto.getRandomValues(new Uint8Array(16));
    return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
  }

  function backoff(attempt) { // full jitter, 0.5 s doubling to 15 s
    return Math.random() * Math.min(15000, 500 * 2 ** Math.min(attempt, 5));
  }

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "text") node.textContent = v;
      else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
      else node.setAttribute(k, v === true ? "" : v);
    }
    for (const child of children) if (child) node.append(child);
    return node;
  }

  /** Where a streaming bubble's caret goes: after the text of its last block. */
  function caretHost(box) {
    let at = box;
    while (at.lastChild && at.lastChild === at.lastElementChild && /^(P|UL|OL|LI|PRE|CODE)$/.test(at.lastChild.tagName)) {
      at = at.lastChild;
    }
    return at;
  }

  // ---- transports: each delivers parsed events to onEvent and reports up/down ---------------

  class WebSocketTransport {
    constructor(chat) { this.chat = chat; this.ws = null; this.opened = false; }
    start() {
      const { server, session } = this.chat;
      const url = server.replace(/^http/, "ws") + "/api/chat/ws";
      const ws = this.ws = new WebSocket(url);
      let heard = Date.now();
      let ticker = null;
      ws.onopen = () => {
        ws.send(JSON.stringify({ type: "join_chat", sessionId: session.id,
          sessionToken: session.token, lastSeq: this.chat.lastSeq }));
      };
      ws.onmessage = (m) => {
        heard = Date.now();
        let event;
        try { event = JSON.parse(m.data); } catch { return; }
        if (event.type === "joined") {
          const interval = (event.heartbeatIntervalSeconds || 30) * 1000;
          clearInterval(ticker);
          ticker = setInterval(() => {
            if (Date.now() - heard > 2.5 * interval) { ws.close(4000, "silent"); return; }
            ws.send('{"type":"ping"}');
          }, interval * 0.8);
          this.opened = true; // through: a proxy that upgrades and then cuts does not count
          this.chat.up(this);
        } else this.chat.onEvent(event);
      };
      ws.onclose = (e) => {
        clearInterval(ticker);
        if (this.ws !== ws) return;
        this.ws = null;
        this.chat.down(this, { fatal: e.code === 4001, neverOpened: !this.opened });
      };
    }
    stop() { const ws = this.ws; this.ws = null; if (ws) ws.close(1000); }
    send(message) {
      if (!this.ws || this.ws.readyState !== 1) return false;
      this.ws.send(JSON.stringify({ type: "send_message", content: message.content,
        messageType: message.messageType, metadata: message.metadata,
        clientMessageId: message.clientMessageId, attachments: ids(message) }));
      return true;
    }
  }

  /** SSE and long-poll: GETs with the token (sends go by POST); 401, 404, 410: the session is gone. */
  class HttpTransport {
    constructor(chat) { this.chat = chat; this.abort = null; this.opened = false; }
    async start() {
      const chat = this.chat;
      const abort = this.abort = new AbortController();
      let fatal = false;
      const get = async (path) => {
        const response = await fetch(`${chat.server}${path}`,
          { headers: chat.auth(), signal: abort.signal, cache: "no-store" });
        fatal = [401, 404, 410].includes(response.status); // 410: it expired or ended
        if (!response.ok || !response.body) throw Object.assign(new Error(`HTTP ${response.status}`), { status: response.status });
        return response;
      };
      try { await this.run(get); } catch { /* aborted or the network went */ }
      if (this.abort === abort) {
        this.abort = null;
        chat.down(this, { fatal, neverOpened: !this.opened });
      }
    }
    through() { if (!this.opened) { this.opened = true; this.chat.up(this); } }
    stop() { const a = this.abort; this.abort = null; if (a) a.abort(); }
    send() { return false; }
  }

  class SseTransport extends HttpTransport { // fetch: EventSource cannot send Authorization
    async run(get) {
      const chat = this.chat;
      const response = await get(`/api/chat/events/${chat.session.id}?lastSeq=${chat.lastSeq}`);
      this.through();
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return;
        buffer += value;
        let end;
        while ((end = buffer.indexOf("\n\n")) >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const data = block.split("\n").filter((l) => l.startsWith("data:"))
            .map((l) => l.slice(5).trimStart()).join("\n");
          if (data) { try { chat.onEvent(JSON.parse(data)); } catch { /* not JSON */ } }
        }
      }
    }
  }

  class LongPollTransport extends HttpTransport {
    async run(get) {
      const chat = this.chat;
      let version = 0; // of the streamed replies' snapshots: chatd answers when it moves on
      let streams = true; // a chatd without streaming refuses the parameter: then poll without
      for (;;) { // the first poll answers at once: it is what says "connected"
        const path = `/api/chat/messages/${chat.session.id}?afterSeq=${chat.lastSeq}` +
          `&limit=100&wait=${this.opened ? 25 : 0}` + (streams ? `&streamVersion=${version}` : "");
        let response;
        try { response = await get(path); } catch (error) {
          if (!streams || error.status !== 400) throw error;
          streams = false;
          continue;
        }
        const body = await response.json();
        this.through();
        for (const message of body.messages) chat.onEvent({ type: "new_message", message });
        if (Array.isArray(body.streaming)) {
          if (Number.isInteger(body.streamVersion)) version = body.streamVersion;
          chat.snapshots(body.streaming);
        }
      }
    }
  }

  const TRANSPORT_CLASSES = { websocket: WebSocketTransport, sse: SseTransport, longpoll: LongPollTransport };

  // ---- the element ---------------------------------------------------------------------------

  class ChatdWidget extends HTMLElement {
    static get observedAttributes() { return ["theme", "position"]; }

    constructor() {
      super();
      this.options = {};
      this.messages = new Map(); // id -> wire message
      this.streams = new Map(); // messageId -> {text, index, stale, dirty, node}, in order begun
      this.stuck = true; // the list follows its bottom until the shopper scrolls up
      this.outbox = []; // {clientMessageId, content, messageType, metadata, files, status, error}
      this.tray = []; // files chosen for the next message: {file, name, size, kind, preview, xhr, att, error}
      this.fresh = new Map(); // attachment id -> its newest wire form (signed URLs expire)
      this.lastSeq = 0;
      this.session = null;
      this.transport = null;
      this.transportIndex = 0;
      this.failures = 0;
      this.connected = false;
      this.botTyping = false;
      this.isOpen = false;
      this.reconnectTimer = null;
      this.root = this.attachShadow({ mode: "open" });
    }

    // -- options and storage

    configure(options) {
      Object.assign(this.options, options);
      if (this.ui) this.render();
    }

    option(name) {
      const camel = name.replace(/-(\w)/g, (_, c) => c.toUpperCase());
      if (this.options[camel] !== undefined) return this.options[camel];
      return this.getAttribute(name);
    }

    get strings() {
      let custom = this.option("strings") || {};
      if (typeof custom === "string") { try { custom = JSON.parse(custom); } catch { custom = {}; } }
      const t = { ...STRINGS, ...custom };
      if (this.option("title")) t.title = this.option("title");
      if (this.option("greeting") !== null) t.greeting = this.option("greeting");
      return t;
    }

    get server() { return (this.option("server") || SCRIPT_ORIGIN).replace(/\/+$/, ""); }

    get storageKey() { return `chatd:${this.server}`; }

    get canAttach() { return String(this.option("attachments")) !== "false"; }

    get maxBytes() { return (Number(this.option("max-file-mb")) || 10) * 1048576; }

    load() {
      try {
        const saved = JSON.parse(localStorage.getItem(this.storageKey) || "null");
        if (saved && saved.userId === (this.option("user-id") || null)) {
          this.session = saved.session;
          this.outbox = (saved.outbox || []).map((m) => { // a file only in memory went with the page
            const lost = (m.files || []).find((f) => f.lost);
            return { ...m, status: m.status === "failed" || lost ? "failed" : "pending", error: lost && fmt(this.strings.lost, lost) };
          });
        }
      } catch { /* storage unavailable: the session lasts this page */ }
    }

    save() {
      try {
        localStorage.setItem(this.storageKey, JSON.stringify({
          session: this.session, userId: this.option("user-id") || null,
          outbox: this.outbox.map(({ clientMessageId, content, messageType, metadata, status, files }) =>
            ({ clientMessageId, content, messageType, metadata, status,
              files: files && files.map(({ name, size, kind, att }) => ({ name, size, kind, att, lost: !att })) })),
        }));
      } catch { /* full or unavailable */ }
    }

    auth() { return { Authorization: `Bearer ${this.session.token}` }; }

    // -- lifecycle

    connectedCallback() {
      if (this.ui) return;
      this.build();
      this.load();
      this.render();
      window.addEventListener("online", this.onOnline = () => { this.failures = 0; this.reconnect(0); });
      window.addEventListener("offline", this.onOffline = () => { this.stopTransport(); this.render(); });
      if (this.session) this.start();
      const open = this.option("open");
      if (open !== null && open !== "false" && open !== false) this.open();
    }

    disconnectedCallback() {
      window.removeEventListener("online", this.onOnline);
      window.removeEventListener("offline", this.onOffline);
      clearTimeout(this.reconnectTimer);
      clearTimeout(this.staleTimer);
      this.stopTransport();
    }

    attributeChangedCallback() { if (this.ui) this.applyLook(); }

    // -- building the DOM once

    build() {
      const sheet = new CSSStyleSheet();
      sheet.replaceSync(CSS + chatdCsat.css + chatdContact.css);
      this.root.adoptedStyleSheets = [sheet];
      const ui = this.ui = {};
      const csat = this.csat = chatdCsat(this, el); // csat.js: End chat, and the rating prompt
      this.contact = chatdContact(this, el); // contact.js: an email, when nobody can answer
      ui.bubble = el("button", { class: "bubble", part: "bubble", "data-testid": "chat-bubble",
        "aria-expanded": "false", "aria-controls": "window", onclick: () => this.open() });
      ui.bubble.append(icon("chat"));
      ui.title = el("h2", { id: "title" });
      ui.close = el("button", { class: "icon", "data-testid": "close-button", onclick: () => this.close() }, icon("close"));
      // Staff inbox: ask for a person (POST /api/chat/handoff; docs/inbox.md).
      ui.person = el("button", { type: "button", class: "person", "data-testid": "talk-to-person",
        onclick: () => this.askPerson() });
      ui.list = el("ol", { class: "list" });
      // Streaming bubbles sit outside the live region: a screen reader hears a reply once, when
      // its stored message joins the log, not a word at a time.
      ui.streams = el("ol", { class: "list streams" });
      ui.log = el("div", { class: "log", role: "group", "aria-labelledby": "title", tabindex: "0",
        onscroll: () => { const log = ui.log; this.stuck = log.scrollHeight - log.scrollTop - log.clientHeight < 24; } },
      el("div", { role: "log", "aria-live": "polite", "aria-labelledby": "title" }, ui.list), ui.streams);
      ui.greeting = el("li", { class: "msg bot greeting" }, el("div", { class: "text" }));
      ui.typing = el("div", { class: "typing", "data-testid": "bot-typing", role: "status", hidden: true },
        el("span", { class: "dots", "aria-hidden": "true" }, el("i"), el("i"), el("i")), el("span", { class: "sr" }));
      ui.error = el("div", { class: "conn", "data-testid": "connection-error", role: "alert", hidden: true });
      ui.input = el("textarea", { "data-testid": "message-input", rows: "1", maxlength: "1000",
        onkeydown: (e) => { if (e.key === "Enter" && !e.shiftKey && !e.isComposing) { e.preventDefault(); this.submit(); } },
        onpaste: (e) => { // an image copied to the clipboard (a screenshot) is a file too
          const files = e.clipboardData && e.clipboardData.files;
          if (this.canAttach && files && files.length) { e.preventDefault(); this.add(files); }
        } });
      ui.send = el("button", { class: "icon send", type: "submit", "data-testid": "send-button" }, icon("send"));
      ui.file = el("input", { type: "file", multiple: true, accept: ACCEPT, hidden: true, "data-testid": "file-input",
        onchange: () => { this.add(ui.file.files); ui.file.value = ""; } });
      ui.attach = el("button", { class: "icon clip", type: "button", "data-testid": "attach-button",
        onclick: () => ui.file.click() }, icon("clip"));
      ui.form = el("form", { class: "compose", onsubmit: (e) => { e.preventDefault(); this.submit(); } },
        ui.attach, ui.file, ui.input, ui.send);
      ui.tray = el("ul", { class: "tray", "data-testid": "attachment-tray", hidden: true });
      ui.note = el("div", { class: "sr", role: "status", "data-testid": "announcer" });
      ui.drop = el("div", { class: "dropzone", "data-testid": "drop-zone", hidden: true });
      // Files dragged over the window: a drop zone shows until they leave (counted: children fire too).
      const drag = (e) => {
        if (!this.canAttach || !e.dataTransfer || ![...e.dataTransfer.types].includes("Files")) return;
        e.preventDefault();
        this.drags = e.type === "drop" ? 0 : (this.drags || 0) + ({ dragenter: 1, dragleave: -1 }[e.type] || 0);
        ui.drop.hidden = this.drags < 1;
        if (e.type === "drop") this.add(e.dataTransfer.files);
      };
      ui.window = el("section", { id: "window", class: "window", role: "dialog", "aria-labelledby": "title",
        "data-testid": "chat-window", hidden: true, ondragenter: drag, ondragover: drag, ondragleave: drag, ondrop: drag,
        onkeydown: (e) => { if (e.key === "Escape") { e.stopPropagation(); this.close(); } } },
      el("header", {}, ui.title, ui.person, csat.end, ui.close), ui.error, ui.log, ui.typing, csat.panel, ui.tray, ui.form, ui.note, ui.drop);
      // An image enlarged: a modal dialog over the page; focus stays in it until it closes.
      ui.boxClose = el("button", { class: "icon", type: "button", "data-testid": "lightbox-close", onclick: () => this.shut() }, icon("close"));
      ui.boxBody = el("figure");
      ui.box = el("div", { class: "lightbox", role: "dialog", "aria-modal": "true", "data-testid": "lightbox", hidden: true,
        onclick: (e) => { if (e.target === ui.box) this.shut(); },
        onkeydown: (e) => {
          if (e.key === "Escape") { e.stopPropagation(); this.shut(); }
          if (e.key !== "Tab") return;
          e.preventDefault();
          const stops = [ui.boxClose, ...ui.boxBody.querySelectorAll("a")];
          const i = stops.indexOf(this.root.activeElement);
          stops[(i + (e.shiftKey ? stops.length - 1 : 1)) % stops.length].focus();
        } }, ui.boxClose, ui.boxBody);
      this.root.append(ui.bubble, ui.window, ui.box);
      this.applyLook();
    }

    applyLook() {
      const theme = this.option("theme") || "light";
      this.setAttribute("data-resolved-theme", theme === "auto"
        ? (matchMedia("(prefers-color-scheme: dark)").matches ? "dark" : "light") : theme);
      this.ui.bubble.classList.toggle("left", this.option("position") === "bottom-left");
      this.ui.window.classList.toggle("left", this.option("position") === "bottom-left");
    }

    // -- open / close

    async open() {
      if (this.isOpen) return;
      this.isOpen = true;
      this.ui.window.hidden = false;
      this.ui.bubble.hidden = true;
      this.ui.bubble.setAttribute("aria-expanded", "true");
      this.render();
      this.ui.input.focus();
      this.scrollDown(true);
      if (!this.session) await this.createSession();
    }

    close() {
      if (!this.isOpen) return;
      this.isOpen = false;
      this.ui.window.hidden = true;
      this.ui.bubble.hidden = false;
      this.ui.bubble.setAttribute("aria-expanded", "false");
      this.ui.bubble.focus();
    }

    // -- session and connection

    async createSession() {
      if (this.creating) return this.creating;
      this.creating = (async () => {
        const body = {};
        for (const [key, name] of [["guestEmail", "guest-email"], ["userId", "user-id"],
          ["userHash", "user-hash"], ["identityToken", "identity-token"]]) {
          const value = this.option(name);
          if (value) body[key] = value;
        }
        for (let attempt = 0; ; attempt++) {
          try {
            const response = await fetch(`${this.server}/api/chat/session`, {
              method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
            if (response.ok) {
              const data = await response.json();
              this.session = { id: data.sessionId, token: data.sessionToken };
              this.messages.clear();
              this.streams.clear();
              this.lastSeq = 0;
              this.save();
              this.start();
              return;
            }
            if (response.status >= 400 && response.status < 500 && response.status !== 429) {
              this.fatal = (await response.json().catch(() => ({}))).message || this.strings.error;
              this.render();
              return;
            }
          } catch { /* offline: try again */ }
          this.render();
          await new Promise((r) => setTimeout(r, backoff(attempt)));
        }
      })();
      try { await this.creating; } finally { this.creating = null; }
    }

    start() {
      if (this.transport || !this.session) return;
      if (!navigator.onLine) { this.render(); return; }
      const names = (this.option("transports") || TRANSPORTS.join(",")).split(",")
        .map((s) => s.trim()).filter((n) => TRANSPORT_CLASSES[n] && (n !== "websocket" || window.WebSocket));
      const name = names[Math.min(this.transportIndex, names.length - 1)] || "longpoll";
      this.transport = new TRANSPORT_CLASSES[name](this);
      this.transport.start();
    }

    stopTransport() {
      const t = this.transport;
      this.transport = null;
      this.connected = false;
      if (t) t.stop();
    }

    reconnect(delay) {
      clearTimeout(this.reconnectTimer);
      this.stopTransport();
      this.reconnectTimer = setTimeout(() => this.start(), delay);
      this.render();
    }

    up(transport) {
      if (transport !== this.transport) return;
      this.connected = true;
      this.failures = 0;
      // chatd sends a snapshot of each reply still streaming right after a (re)join: one it
      // does not was withdrawn or finished meanwhile (a finished one is in the replay).
      for (const s of this.streams.values()) s.stale = true;
      clearTimeout(this.staleTimer);
      this.staleTimer = setTimeout(() => {
        for (const [id, s] of this.streams) if (s.stale) this.streams.delete(id);
        this.render();
      }, STALE_MS);
      for (const a of [...this.tray, ...this.outbox.flatMap((m) => m.files || [])]) if (a.offline) a.until = 0;
      this.render();
      this.flush();
    }

    down(transport, { fatal, neverOpened }) {
      if (transport !== this.transport) return;
      this.transport = null;
      this.connected = false;
      if (fatal) { // the session is gone (expired, or the server forgot it): start a new one
        this.csat.lost(this.session);
        this.session = null;
        this.save();
        this.createSession();
        return;
      }
      this.failures += 1;
      if (neverOpened && this.failures >= 2) { this.transportIndex += 1; this.failures = 0; }
      this.reconnect(backoff(this.failures));
    }

    // -- events

    onEvent(event) {
      if (event.type === "new_message") this.addMessage(event.message);
      else if (event.type === "message_status") {
        const message = this.messages.get(event.messageId);
        if (message) { message.status = event.status; this.render(); }
      } else if (event.type === "bot_typing") { // from an agent: their name; gone if no news for 10 s
        this.botTyping = !!event.isTyping;
        this.typist = event.agentName;
        clearTimeout(this.typingTimer);
        if (this.typist) this.typingTimer = setTimeout(() => this.onEvent({ type: "bot_typing" }), 10000);
        this.render();
      }
      else if (event.type === "message_delta") this.piece(event, false);
      else if (event.type === "message_stream") this.piece(event, true);
      else if (event.type === "message_stream_end") { if (this.streams.delete(event.messageId)) this.render(); }
      else if (event.type === "message_ack") this.acked(event);
      else if (event.type === "error" && event.clientMessageId) this.refused(event.clientMessageId, event);
    }

    /** A piece of a streamed reply (a delta), or all of it so far (a snapshot: a join, or a
     * poll). Deltas come in order within one connection; one at or below the last is a repeat. */
    piece({ messageId: id, index, text, replyTo }, snapshot) {
      if (typeof id !== "string" || !Number.isInteger(index) || typeof text !== "string" || this.messages.has(id)) return;
      const asked = this.messages.get(replyTo); // n8n has it and answers: "Sent", not "Sending…"
      if (asked && asked.status === "pending") { asked.status = "sent"; this.render(); }
      let s = this.streams.get(id);
      if (!snapshot && index !== (s ? s.index + 1 : 0)) return;
      if (!s) this.streams.set(id, s = { text: "", index: -1 });
      s.text = snapshot ? text : s.text + text;
      s.index = index;
      s.stale = false;
      s.dirty = true;
      if (this.botTyping) { this.botTyping = false; this.render(); } // the bubble takes its place
      if (!this.frame) this.frame = requestAnimationFrame(() => this.paintStreams());
    }

    /** Long-poll's list of the replies streaming now: each is a snapshot; one missing is gone. */
    snapshots(list) {
      const now = new Set();
      for (const s of list) {
        if (!s || typeof s !== "object") continue;
        now.add(s.messageId);
        this.piece(s, true);
      }
      let gone = false;
      for (const id of this.streams.keys()) if (!now.has(id)) gone = this.streams.delete(id);
      if (gone) this.render();
    }

    addMessage(message) {
      if (!message || typeof message.seq !== "number") return;
      this.remember([message]);
      const known = this.messages.get(message.id); // a status event may have overtaken a replay
      this.messages.set(message.id, known ? { ...message, status: later(known.status, message.status) } : message);
      if (message.seq > this.lastSeq) this.lastSeq = message.seq;
      this.streams.delete(message.id); // a streamed reply, stored: it takes the bubble's place
      this.csat.seen(message);
      if (message.senderType !== "user") this.botTyping = false;
      if (message.senderType === "user") { // ours, maybe before its ack: the oldest in flight like it
        const same = String(Array.isArray(message.attachments) ? message.attachments.map((a) => a && a.id) : "");
        const mine = this.outbox.find((m) => m.messageId === message.id) || this.outbox.find((m) => m.inFlight &&
          !m.messageId && m.content === message.content && m.messageType === message.messageType && String(ids(m) || "") === same);
        if (mine) this.sent(mine);
      }
      this.save();
      this.render();
    }

    // -- sending: every message gets a clientMessageId and is sent until acknowledged, once

    /** The text and the files with it; a file refused stays in the tray, saying why, until removed. */
    submit() {
      const content = this.ui.input.value.trim();
      const files = this.tray.filter((a) => !a.error);
      if (!content && !files.length) return;
      this.ui.input.value = "";
      this.tray = this.tray.filter((a) => a.error);
      this.paintTray();
      this.enqueue(content, "text", undefined, files.length ? files : undefined);
    }

    /** A message waits in the outbox for its files' uploads, then goes like any other. */
    enqueue(content, messageType, metadata, files) {
      this.outbox.push({ clientMessageId: newId(), content, messageType, metadata, files, status: "pending" });
      this.save();
      this.render();
      this.scrollDown(true);
      if (!this.session) this.createSession();
      else this.flush();
    }

    flush() {
      if (!this.connected) return;
      for (const a of [...this.tray, ...this.outbox.flatMap((m) => (m.status === "pending" && m.files) || [])]) {
        if (!a.att && !a.xhr && !a.error && !a.lost && !(a.until > Date.now())) this.upload(a);
      }
      for (const message of this.outbox) {
        if (message.status !== "pending" || message.inFlight || (message.files || []).some((f) => !f.att)) continue;
        if (this.transport.send(message)) { message.inFlight = true; continue; }
        message.inFlight = true;
        this.post(message);
      }
    }

    async askPerson() {
      if (!this.session) await this.createSession();
      if (!this.session) return;
      await fetch(`${this.server}/api/chat/handoff`, {
        method: "POST", headers: { ...this.auth(), "Content-Type": "application/json" },
        body: JSON.stringify({ sessionId: this.session.id }) }).catch(() => null);
    }

    async post(message) {
      try {
        const response = await fetch(`${this.server}/api/chat/send`, {
          method: "POST", headers: { ...this.auth(), "Content-Type": "application/json" },
          body: JSON.stringify({ sessionId: this.session.id, content: message.content,
            messageType: message.messageType, metadata: message.metadata,
            clientMessageId: message.clientMessageId, attachments: ids(message) }) });
        const body = await response.json().catch(() => ({}));
        if (response.ok) this.acked({ ...body, clientMessageId: message.clientMessageId });
        else this.refused(message.clientMessageId, { ...body, retryAfter: Number(response.headers.get("Retry-After")) || body.retryAfter });
      } catch {
        message.inFlight = false; // the network went: sent again once it is back
        if (this.connected) this.reconnect(backoff(1));
      }
    }

    acked(ack) {
      const message = this.outbox.find((m) => m.clientMessageId === ack.clientMessageId);
      if (!message) return;
      message.messageId = ack.messageId;
      if (!this.messages.has(ack.messageId)) {
        this.messages.set(ack.messageId, { id: ack.messageId, senderType: "user", content: message.content,
          messageType: message.messageType, metadata: message.metadata || {},
          attachments: (message.files || []).map((f) => f.att), status: ack.status || "pending", seq: ack.seq });
      }
      this.sent(message);
      this.save();
      this.render();
    }

    refused(clientMessageId, error) {
      const message = this.outbox.find((m) => m.clientMessageId === clientMessageId);
      if (!message) return;
      message.inFlight = false;
      if (error.code === "rate_limited" || error.retryAfter) {
        setTimeout(() => this.flush(), Math.max(1, error.retryAfter || 1) * 1000);
        return;
      }
      message.status = "failed";
      message.error = error.message || this.strings.error;
      this.save();
      this.render();
    }

    /** Out of the outbox, stored: the previews of its files are no longer needed. */
    sent(message) {
      this.outbox = this.outbox.filter((m) => m !== message);
      for (const f of message.files || []) if (f.preview) URL.revokeObjectURL(f.preview);
    }

    retry(item) {
      if (item.clientMessageId && !item.id) { // never reached chatd: send it again as it was
        const queued = this.outbox.find((m) => m.clientMessageId === item.clientMessageId);
        if (queued) { queued.status = "pending"; queued.error = null; }
        this.flush();
        this.render();
        return;
      }
      this.enqueue(item.content, item.messageType || "text", { retryOf: item.id },
        item.attachments && item.attachments.length ? item.attachments.map((att) => ({ ...att, att })) : undefined);
    }

    /** A message whose file could not go (too big, or the page went before its upload): its
     * text and uploaded files back in the composer, and the file chooser open to pick it again. */
    restore(item) {
      this.outbox = this.outbox.filter((m) => m.clientMessageId !== item.clientMessageId);
      this.ui.input.value = item.content;
      for (const a of item.files || []) if (a.att) { a.node = null; this.tray.push(a); }
      this.save();
      this.render();
      this.paintTray();
      this.ui.input.focus();
      this.ui.file.click();
    }

    // -- attachments: checked here (a hint), uploaded at once with progress, sent by id

    add(files) {
      const t = this.strings;
      for (const file of files) {
        const a = { file, name: file.name || "file", size: file.size, kind: /^image\//.test(file.type) ? "image" : "file" };
        const reason = this.tray.filter((x) => !x.error).length >= MAX_FILES ? fmt(t.tooMany, { limit: MAX_FILES })
          : file.size > this.maxBytes ? fmt(t.tooBig, { limit: humanSize(this.maxBytes) })
            : accepts(this.option("accept") || ACCEPT, file) ? null : t.wrongType;
        if (reason) this.note(a.error = fmt(t.notSent, { name: a.name, reason }));
        else if (a.kind === "image") a.preview = URL.createObjectURL(file);
        this.tray.push(a);
      }
      this.paintTray();
      this.flush();
    }

    /** XMLHttpRequest, not fetch: it reports the upload's progress, and abort() cancels it. */
    upload(a) {
      const xhr = a.xhr = new XMLHttpRequest();
      const form = new FormData();
      form.append("sessionId", this.session.id);
      form.append("file", a.file, a.name);
      xhr.open("POST", `${this.server}/api/chat/upload`);
      xhr.setRequestHeader("Authorization", `Bearer ${this.session.token}`);
      xhr.responseType = "json";
      xhr.timeout = 300000;
      xhr.upload.onprogress = (e) => { a.progress = e.loaded / (e.total || 1); if (a.paint) a.paint(); };
      xhr.onloadend = () => this.uploaded(a, xhr); // after load, error, timeout (abort: a.xhr moved on)
      xhr.send(form);
      a.progress = 0;
      this.note(fmt(this.strings.uploading, a));
      if (a.paint) a.paint();
    }

    uploaded(a, xhr) {
      if (a.xhr !== xhr) return;
      a.xhr = null;
      const t = this.strings;
      const { status } = xhr;
      const body = xhr.response || {};
      if (status === 201 || status === 200) {
        a.att = { ...body, id: body.attachmentId }; // as messages carry it
        this.note(fmt(t.uploaded, a));
      } else if (!status || status === 429 || status >= 500) { // the network, or chatd busy: again later
        const wait = Number(xhr.getResponseHeader("Retry-After")) * 1000 || backoff(a.tries = (a.tries || 0) + 1);
        const due = a.until = Date.now() + wait;
        a.offline = !status; // the network: retried at once when the connection is back (up)
        // The timer clears its own wait: it may fire a moment before Date.now() reaches `due`.
        setTimeout(() => { if (a.until === due) a.until = 0; this.flush(); }, wait);
      } else {
        // chatd's own words name what it found (the type, the size against its limit); a proxy's
        // bare 413 (its own body limit, below chatd's) is still "too big"
        const reason = (body.error && body.error.message) || (status === 413 ? fmt(t.tooBig, { limit: humanSize(this.maxBytes) }) : t.error);
        this.note(a.error = fmt(t.notSent, { name: a.name, reason }));
        const message = this.outbox.find((m) => m.status === "pending" && (m.files || []).includes(a));
        if (message) { message.status = "failed"; message.error = a.error; this.save(); this.render(); }
      }
      if (a.paint) a.paint();
      this.flush();
    }

    /** Removed from the tray; an upload under way is cancelled. */
    discard(a) {
      const xhr = a.xhr;
      a.xhr = null;
      if (xhr) xhr.abort();
      if (a.preview) URL.revokeObjectURL(a.preview);
      this.tray = this.tray.filter((x) => x !== a);
      this.paintTray();
      this.ui.input.focus();
    }

    paintTray() {
      place(this.ui.tray, this.tray.map((a) => a.node || (a.node = this.fileBox(a, "li"))));
      this.ui.tray.hidden = !this.tray.length;
      this.scrollDown(); // the tray took room from the list
    }

    /** A file not yet sent: preview, name, and its state (size, progress, waiting, or why not). */
    fileBox(a, tag) {
      const t = this.strings;
      const src = a.preview || (a.kind === "image" && a.att && safeImage(a.att.thumbnailUrl || a.att.url, this.server));
      const state = el("span", { class: "state" });
      const bar = el("progress", { max: "1", "aria-label": fmt(t.uploading, a) });
      const node = el(tag, { class: "file", "data-testid": "pending-attachment" },
        src ? el("img", { src, alt: "", onerror: (e) => e.target.replaceWith(icon("file")) }) : icon("file"),
        el("span", { class: "info" }, el("span", { class: "name", text: a.name }), state, bar),
        tag === "li" && el("button", { class: "icon", type: "button", "data-testid": "remove-attachment",
          "aria-label": fmt(t.remove, a), onclick: () => this.discard(a) }, icon("close")));
      (a.paint = () => {
        const now = a.error || a.lost ? "error" : a.att ? "done" : a.xhr ? "uploading" : "waiting";
        node.dataset.state = now;
        state.textContent = now === "waiting" ? t.waiting : now === "error" ? a.error || "" : humanSize(a.size);
        bar.hidden = now !== "uploading";
        bar.value = a.progress || 0;
      })();
      return node;
    }

    /** Said to screen readers (a polite live region); the last few kept, each announced once. */
    note(text) {
      this.ui.note.append(el("p", { text }));
      while (this.ui.note.children.length > 3) this.ui.note.firstChild.remove();
    }

    /** A message's files: images as thumbnails that enlarge, other files as cards to download. */
    shown(node, m) {
      for (const a of Array.isArray(m.attachments) ? m.attachments : []) {
        if (!a || typeof a !== "object") continue;
        const name = String(a.name || this.strings.attachment);
        const src = a.kind === "image" && safeImage(a.thumbnailUrl || a.url, this.server);
        const href = safeUrl(a.url, ["http:", "https:"]);
        if (src) {
          const img = el("img", { src, alt: name, loading: "lazy", onload: () => this.scrollDown(),
            onerror: () => this.stale(a, img, "thumbnailUrl") });
          node.append(el("button", { type: "button", class: "thumb", "data-testid": "attachment-image",
            "aria-haspopup": "dialog", onclick: (e) => this.enlarge(a, e.currentTarget) }, img));
        } else if (href) {
          node.append(el("a", { class: "card file", href, download: name, target: "_blank", rel: "noopener noreferrer",
            "data-testid": "attachment-file" }, icon("file"), el("span", {}, el("strong", { text: name }),
            el("span", { text: `${Number.isFinite(a.size) ? `${humanSize(a.size)} · ` : ""}${this.strings.download}` }))));
        }
      }
    }

    /** The newest signed URLs of the files of these messages. */
    remember(messages) {
      for (const m of messages) for (const a of (m && m.attachments) || []) if (a && a.id) this.fresh.set(a.id, a);
    }

    /** An image failed (its signed URL expired): fresh URLs from the history, once per image
     * (one request for all the images failing meanwhile); then its name rather than a broken image. */
    async stale(a, img, key) {
      const src = () => { const now = this.fresh.get(a.id) || a; return safeImage(now[key] || now.url, this.server); };
      if (src() === img.src && !img.tried && this.session) {
        img.tried = true;
        const seqs = [...this.messages.values()].filter((m) => m.attachments && m.attachments.length).map((m) => m.seq);
        this.refreshing = this.refreshing || fetch(`${this.server}/api/chat/messages/${this.session.id}` +
          `?afterSeq=${Math.max(0, Math.min(...seqs) - 1)}&limit=100`, { headers: this.auth(), cache: "no-store" })
          .then((r) => r.json()).then((body) => this.remember(body.messages || [])).catch(() => {})
          .finally(() => { this.refreshing = null; });
        await this.refreshing;
      }
      if (src() === img.src) img.replaceWith(String(a.name));
      else img.src = src();
    }

    enlarge(a, from) {
      const ui = this.ui;
      const now = this.fresh.get(a.id) || a;
      const href = safeImage(now.url, this.server);
      if (!href) return;
      const name = String(a.name || this.strings.attachment);
      const img = el("img", { src: href, alt: name, onerror: () => this.stale(a, img, "url") });
      ui.boxBody.replaceChildren(img, el("figcaption", {}, el("span", { text: name }), " ",
        el("a", { href, target: "_blank", rel: "noopener noreferrer", download: name, text: this.strings.download })));
      ui.box.setAttribute("aria-label", name);
      ui.boxClose.setAttribute("aria-label", this.strings.closeImage);
      ui.box.hidden = false;
      ui.window.inert = true;
      this.boxFrom = from;
      ui.boxClose.focus();
    }

    shut() {
      this.ui.box.hidden = true;
      this.ui.window.inert = false;
      (this.boxFrom && this.boxFrom.isConnected ? this.boxFrom : this.ui.input).focus(); // its row may be new
    }

    // -- rendering: the whole list from state, keyed, so a re-render moves nothing needlessly

    render() {
      const ui = this.ui;
      const t = this.strings;
      ui.title.textContent = t.title;
      ui.bubble.setAttribute("aria-label", t.open);
      ui.close.setAttribute("aria-label", t.close);
      ui.person.textContent = t.person;
      ui.input.setAttribute("aria-label", t.input);
      ui.input.setAttribute("placeholder", t.input);
      ui.send.setAttribute("aria-label", t.send);
      ui.attach.setAttribute("aria-label", t.attach);
      ui.attach.hidden = !this.canAttach;
      ui.file.accept = this.option("accept") || ACCEPT;
      ui.drop.textContent = t.drop;
      ui.typing.hidden = !this.botTyping;
      ui.typing.lastChild.textContent = this.botTyping ? (this.typist ? fmt(t.agentTyping, { name: this.typist }) : t.typing) : "";
      ui.typing.lastChild.className = this.botTyping && this.typist ? "who" : "sr";
      this.csat.render();
      const offline = !navigator.onLine;
      const lost = this.session && !this.connected && (offline || this.failures > 0 || this.everConnected);
      if (this.connected) this.everConnected = true;
      ui.error.hidden = !(this.fatal || offline || lost);
      ui.error.textContent = this.fatal || (offline ? t.offline : t.disconnected);

      const items = [...this.messages.values()].sort((a, b) => a.seq - b.seq);
      const retried = new Set(items.map((m) => m.metadata && m.metadata.retryOf).filter(Boolean));
      const rows = [];
      if (t.greeting) { // set only when it changed: a live region hears every change
        if (ui.greeting.firstChild.textContent !== t.greeting) ui.greeting.firstChild.textContent = t.greeting;
        rows.push(ui.greeting);
      }
      const lastBot = items.filter((m) => m.senderType !== "user").pop();
      const answered = lastBot && items[items.length - 1] === lastBot;
      for (const m of items) rows.push(this.row(m, m === lastBot && answered, retried.has(m.id)));
      for (const m of this.outbox) rows.push(this.row({ ...m, senderType: "user", local: true }, false, false));
      this.rows = this.rows || new Map();
      const keep = new Map();
      const nodes = rows.map((r) => (r instanceof Node ? r : this.node(r, keep)));
      this.rows = keep;
      place(ui.list, nodes);
      this.syncStreams();
      this.scrollDown();
    }

    // -- streamed replies: one bubble each, after the stored messages, in the order they began

    /** The bubbles match this.streams (now: a stored reply replaces its bubble in one step). */
    syncStreams() {
      const list = this.ui.streams;
      const nodes = [...this.streams.values()].map((s) => {
        if (!s.node) {
          s.node = el("li", { class: "msg bot streaming", "data-testid": "message-bot", "aria-busy": "true" },
            el("span", { class: "sr", text: `${this.strings.bot}: ` }), el("div", { class: "text md" }));
        }
        return s.node;
      });
      place(list, nodes);
    }

    /** Once a frame at most: the Markdown of the replies that grew, with a caret at the end. */
    paintStreams() {
      this.frame = 0;
      this.syncStreams();
      for (const s of this.streams.values()) {
        if (!s.dirty) continue;
        s.dirty = false;
        const box = s.node.lastChild;
        box.replaceChildren(md.render(s.text, { streaming: true }));
        caretHost(box).append(el("span", { class: "caret", "aria-hidden": "true" }));
      }
      this.scrollDown();
    }

    row(m, showQuickReplies, retried) {
      const key = m.id || m.clientMessageId;
      const quick = showQuickReplies && m.metadata && Array.isArray(m.metadata.quickReplies) ? m.metadata.quickReplies : [];
      const sig = JSON.stringify([m.status, m.error, quick, retried, m.content]);
      return { key, sig, m, quick, retried };
    }

    node({ key, sig, m, quick, retried }, keep) {
      const old = this.rows.get(key);
      if (old && old.sig === sig) { keep.set(key, old); return old.node; }
      const t = this.strings;
      const user = m.senderType === "user";
      const agent = m.senderType === "agent" && m.metadata && typeof m.metadata.agentName === "string"
        ? m.metadata.agentName : "";
      // Shoppers type plain text (an asterisk is an asterisk); replies are Markdown.
      const text = String(m.content || "");
      const files = m.local ? m.files || [] : m.attachments || [];
      const bubble = !text && files.length ? null : user ? el("div", { class: "text" }, md.linkify(text))
        : el("div", { class: "text md" }, md.render(text));
      const node = el("li", { class: `msg ${user ? "user" : "bot"}`,
        "data-testid": user ? "message-user" : agent ? "message-agent" : "message-bot",
        "data-seq": m.seq }, el("span", { class: "sr", text: `${user ? t.you : agent || t.bot}: ` }), bubble);
      if (agent) node.prepend(el("span", { class: "who", "data-testid": "agent-name", "aria-hidden": "true", text: agent }));
      if (m.local) node.append(...files.map((a) => this.fileBox(a, "div")));
      else this.shown(node, m);
      if (!user) this.attachments(node, m.metadata || {});
      if (!user) this.contact(node, m);
      if (quick.length) {
        node.append(el("div", { class: "quick", role: "group" }, ...quick.filter((q) => typeof q === "string").map((label) =>
          el("button", { type: "button", "data-testid": "quick-reply", text: label,
            onclick: () => { this.enqueue(label, "quick_reply"); this.ui.input.focus(); } }))));
      }
      if (user) {
        const status = m.status === "failed" && retried ? "retried" : m.status;
        const state = el("div", { class: `status ${status}`, "data-testid": "message-status", "data-status": status,
          text: status === "retried" ? t.retried : (m.error || t[status] || "") });
        if (status === "failed") {
          const again = m.local && (m.files || []).some((f) => f.lost || f.error);
          state.append(" ", el("button", { type: "button", class: "retry", "data-testid": "retry-button",
            text: again ? t.attachAgain : t.retry, onclick: () => (again ? this.restore(m) : this.retry(m)) }));
        }
        node.append(state);
      }
      keep.set(key, { sig, node });
      return node;
    }

    attachments(node, metadata) {
      for (const a of Array.isArray(metadata.attachments) ? metadata.attachments : []) {
        if (!a || typeof a !== "object") continue;
        const title = typeof a.title === "string" && a.title ? a.title : "";
        if (a.type === "image") {
          const src = safeImage(a.url, this.server);
          if (src) {
            node.append(el("a", { class: "image", href: src, target: "_blank", rel: "noopener noreferrer" },
              el("img", { src, alt: title || this.strings.attachment, loading: "lazy", referrerpolicy: "no-referrer" })));
            continue;
          }
        }
        const href = safeUrl(a.url, ["http:", "https:"]);
        if (!href) continue;
        node.append(el("a", { class: "card", href, target: "_blank", rel: "noopener noreferrer", "data-testid": "attachment" },
          el("strong", { text: title || this.strings.attachment }), el("span", { text: new URL(href).hostname })));
      }
      for (const action of Array.isArray(metadata.actions) ? metadata.actions : []) {
        const href = action && action.type === "redirect" && action.payload && safeUrl(action.payload.url, ["http:", "https:"]);
        if (href) {
          node.append(el("a", { class: "card", href, target: "_blank", rel: "noopener noreferrer", "data-testid": "attachment" },
            el("strong", { text: String(action.payload.label || new URL(href).hostname) })));
        }
      }
    }

    /** Keeps the newest in view, unless the shopper scrolled up to read (`force`: they acted). */
    scrollDown(force) {
      if (force) this.stuck = true;
      if (!this.stuck) return;
      const log = this.ui.log;
      log.scrollTop = log.scrollHeight;
      requestAnimationFrame(() => { if (this.stuck) log.scrollTop = log.scrollHeight; });
    }
  }

  function icon(name) {
    const paths = {
      chat: "M4 4h16v12H7l-3 3z",
      close: "M6 6l12 12M18 6L6 18",
      send: "M3 20l18-8L3 4v6l12 2-12 2z",
      clip: "M20 11l-8.5 8.5a5 5 0 01-7-7L13 4a3.4 3.4 0 015 5l-8.5 8.5a1.7 1.7 0 01-2.5-2.5L15 7.5",
      file: "M14 3H6v18h12V7zM14 3v4h4",
    };
    const ns = "http://www.w3.org/2000/svg";
    const svg = document.createElementNS(ns, "svg");
    svg.setAttribute("viewBox", "0 0 24 24");
    svg.setAttribute("aria-hidden", "true");
    const path = document.createElementNS(ns, "path");
    path.setAttribute("d", paths[name]);
    svg.append(path);
    return svg;
  }

  const CSS = `
:host { all: initial; --bg:#fff; --fg:#1d2330; --muted:#5b6472; --line:#d9dde5; --accent:#2454d6;
  --accent-fg:#fff; --bot:#eef1f6; --user:#2454d6; --user-fg:#fff; --danger:#b3261e; --code:rgba(29,35,48,.08);
  font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--fg); }
:host([data-resolved-theme="dark"]) { --bg:#171b22; --fg:#e8ebf1; --muted:#a5adba; --line:#343b48;
  --accent:#7aa2ff; --accent-fg:#0d1320; --bot:#242a35; --user:#3b64d8; --user-fg:#fff; --danger:#ff8a80; --code:rgba(255,255,255,.09); }
* { box-sizing: border-box; }
[hidden] { display: none !important; }
button { font: inherit; cursor: pointer; min-width: 44px; min-height: 44px; }
:focus-visible { outline: 3px solid var(--accent); outline-offset: 2px; }
.sr { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); white-space: nowrap; }
svg { width: 24px; height: 24px; fill: none; stroke: currentColor; stroke-width: 2; stroke-linejoin: round; stroke-linecap: round; }
.bubble { position: fixed; right: 20px; bottom: 20px; z-index: 2147483000; width: 60px; height: 60px;
  border: 0; border-radius: 50%; background: var(--accent); color: var(--accent-fg);
  box-shadow: 0 6px 20px rgba(0,0,0,.25); display: grid; place-items: center; transition: transform .15s; }
.bubble:hover { transform: scale(1.06); }
.bubble svg { width: 28px; height: 28px; }
.window { position: fixed; right: 20px; bottom: 20px; z-index: 2147483000; width: 380px; height: min(600px, calc(100vh - 40px));
  display: flex; flex-direction: column; background: var(--bg); color: var(--fg); border: 1px solid var(--line);
  border-radius: 14px; box-shadow: 0 12px 40px rgba(0,0,0,.3); overflow: hidden; animation: rise .18s ease-out; }
.bubble.left, .window.left { right: auto; left: 20px; }
@keyframes rise { from { opacity: 0; transform: translateY(12px); } }
header { display: flex; align-items: center; justify-content: space-between; padding: 6px 8px 6px 16px;
  background: var(--accent); color: var(--accent-fg); }
h2 { margin: 0; font-size: 17px; font-weight: 600; }
.icon { background: transparent; border: 0; color: inherit; border-radius: 8px; display: grid; place-items: center; }
.conn { padding: 8px 16px; background: var(--danger); color: #fff; font-size: 14px; }
.log { flex: 1; overflow-y: auto; padding-bottom: 14px; }
.list { list-style: none; margin: 0; padding: 14px 14px 0; display: flex; flex-direction: column; gap: 10px; }
.streams { padding-top: 10px; } .streams:empty { display: none; }
.msg { max-width: 85%; display: flex; flex-direction: column; gap: 6px; }
.msg .text { padding: 9px 13px; border-radius: 14px; white-space: pre-wrap; overflow-wrap: anywhere; }
.bot { align-self: flex-start; }
.bot .text { background: var(--bot); border-bottom-left-radius: 4px; }
.user { align-self: flex-end; align-items: flex-end; }
.user .text { background: var(--user); color: var(--user-fg); border-bottom-right-radius: 4px; }
.user .text a { color: inherit; }
.msg .md { white-space: normal; }
.msg .who { font-size: 12px; opacity: .75; padding-left: 4px; }
header .person { margin-left: auto; background: transparent; color: inherit; border: 1px solid currentColor;
  border-radius: 12px; padding: 3px 10px; font: inherit; font-size: 13px; cursor: pointer; }
.person + .end { margin-left: 6px; }
.md p, .md ul, .md ol, .md pre { margin: 0 0 8px; }
.md > :last-child { margin-bottom: 0; }
.md ul, .md ol { padding-left: 22px; list-style: disc; } .md ol { list-style: decimal; } .md li ul { list-style: circle; }
.md li > ul, .md li > ol { margin: 2px 0 0; }
.md code { font: 0.9em/1.4 ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; background: var(--code); border-radius: 4px; padding: 1px 4px; }
.md pre { white-space: pre-wrap; background: var(--code); border-radius: 8px; padding: 8px 10px; }
.md pre code { background: none; padding: 0; }
.caret { display: inline-block; width: 0.5em; height: 1.1em; margin-left: 2px; vertical-align: text-bottom;
  background: currentColor; opacity: .7; animation: caret 1s steps(1) infinite; }
@keyframes caret { 50% { opacity: 0; } }
a { color: var(--accent); }
.status { font-size: 12px; color: var(--muted); }
.status.failed { color: var(--danger); }
.retry { min-height: 44px; padding: 0 12px; border: 1px solid var(--danger); color: var(--danger); background: transparent; border-radius: 8px; }
.quick { display: flex; flex-wrap: wrap; gap: 6px; }
.quick button { padding: 0 14px; border-radius: 22px; border: 1px solid var(--accent); background: var(--bg); color: var(--accent); }
.image img { display: block; max-width: 100%; max-height: 220px; border-radius: 10px; }
.card { display: flex; flex-direction: column; padding: 10px 12px; min-height: 44px; border: 1px solid var(--line);
  border-radius: 10px; text-decoration: none; color: var(--fg); background: var(--bg); }
.card span { font-size: 12px; color: var(--muted); }
.typing { padding: 0 14px 8px; }
.typing .who { margin-left: 8px; font-size: 13px; color: var(--muted); }
.dots { display: inline-flex; gap: 4px; padding: 10px 12px; background: var(--bot); border-radius: 14px; }
.dots i { width: 7px; height: 7px; border-radius: 50%; background: var(--muted); animation: blink 1.2s infinite; }
.dots i:nth-child(2) { animation-delay: .2s; } .dots i:nth-child(3) { animation-delay: .4s; }
@keyframes blink { 50% { opacity: .25; } }
.compose { display: flex; gap: 8px; padding: 10px; border-top: 1px solid var(--line); }
textarea { flex: 1; resize: none; min-height: 44px; max-height: 120px; padding: 10px 12px; font: inherit;
  color: var(--fg); background: var(--bg); border: 1px solid var(--line); border-radius: 10px; }
.send { background: var(--accent); color: var(--accent-fg); }
.clip { color: var(--muted); }
.tray { list-style: none; margin: 0; padding: 10px 10px 0; display: flex; flex-wrap: wrap; gap: 8px;
  max-height: 40%; overflow-y: auto; border-top: 1px solid var(--line); }
.file { display: flex; align-items: center; gap: 8px; max-width: 100%; padding: 4px 4px 4px 6px; border: 1px solid var(--line);
  border-radius: 10px; background: var(--bg); color: var(--fg); font-size: 13px; text-align: left; }
.tray .file { flex: 1 1 160px; } .tray [data-state=error] { flex-basis: 100%; }
.file > img, .file > svg { flex: none; width: 40px; height: 40px; border-radius: 6px; object-fit: cover; }
.file > svg, .card.file svg { stroke-width: 1.5; color: var(--muted); }
.info { flex: 1; min-width: 0; display: flex; flex-direction: column; }
.name { overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
.state { font-size: 12px; color: var(--muted); }
.file[data-state=error] { border-color: var(--danger); }
.file[data-state=error] .state { color: var(--danger); }
progress { width: 100%; height: 6px; accent-color: var(--accent); }
.thumb { padding: 0; border: 0; background: none; border-radius: 10px; }
.thumb img { display: block; max-width: 100%; max-height: 200px; border-radius: 10px; }
.card.file { flex-direction: row; align-items: center; gap: 8px; }
.card.file > span { display: flex; flex-direction: column; }
.dropzone { position: absolute; inset: 0; z-index: 1; display: grid; place-items: center; padding: 20px; text-align: center;
  border: 3px dashed var(--accent); border-radius: inherit; background: var(--bg); font-size: 18px; font-weight: 600; pointer-events: none; }
.lightbox { position: fixed; inset: 0; z-index: 2147483001; display: grid; place-items: center; padding: 56px 16px 16px;
  background: rgba(0,0,0,.88); color: #fff; }
.lightbox figure { margin: 0; max-height: 100%; display: flex; flex-direction: column; align-items: center; gap: 10px; }
.lightbox img { max-width: 100%; max-height: calc(100vh - 130px); object-fit: contain; }
.lightbox a { color: #fff; }
.lightbox > .icon { position: absolute; top: 6px; right: 6px; }
@media (max-width: 480px) {
  .window, .window.left { inset: 0; width: 100%; height: 100%; max-height: none; border-radius: 0; border: 0; }
}
@media (prefers-reduced-motion: reduce) { *, .window, .dots i { animation: none !important; transition: none !important; } }
`;

  customElements.define("chatd-widget", ChatdWidget);

  // The one-tag embed: <script src=".../widget.js" data-...> adds the element to the page.
  if (script && !script.hasAttribute("data-manual")) {
    const widget = document.createElement("chatd-widget");
    for (const name of OPTIONS) {
      const value = script.getAttribute(`data-${name}`);
      if (value !== null) widget.setAttribute(name, value);
    }
    const add = () => { document.body.append(widget); window.chatdWidget = widget; };
    if (document.body) add(); else document.addEventListener("DOMContentLoaded", add);
  }
})();
