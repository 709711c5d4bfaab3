/* chatd chat widget: <chatd-widget>, a Web Component in Shadow DOM. No build step, no framework.
 *
 * One tag embeds it (data-* attributes become the element's options):
 *   <script src="https://chat.example.com/widget.js" data-position="bottom-right" async></script>
 * Options (attributes on <chatd-widget>, or data-* on the script tag): position (bottom-right |
 * bottom-left), theme (light | dark | auto), open, guest-email, user-id + user-hash or
 * identity-token, title, greeting, strings (JSON of UI strings), server (chatd's URL; default:
 * where this script came from), transports (websocket,sse,longpoll).
 * JS: element.configure({strings: {...}, userId, identityToken, ...}), element.open(), .close().
 *
 * Bot replies are Markdown rendered by building DOM nodes (markdown.js, which chatd serves in the
 * same script), never HTML; links are made for http(s) and mailto alone, images load over https
 * (or from chatd itself), and styles are a constructed stylesheet, so a strict
 * Content-Security-Policy without 'unsafe-inline' works. A streamed reply grows in one bubble
 * outside the live region (aria-busy, a caret) and is announced once, when its stored message
 * takes its place. The protocol: chatd/PROTOCOL.md.
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
  };
  const OPTIONS = ["position", "theme", "open", "guest-email", "user-id", "user-hash",
    "identity-token", "title", "greeting", "strings", "server", "transports"];
  const TRANSPORTS = ["websocket", "sse", "longpoll"];
  const md = chatdMarkdown; // markdown.js, joined to this file by chatd (routes_web.py)
  const safeUrl = md.safeUrl;
  const STALE_MS = 10000; // after a reconnect, a streamed reply chatd sent no snapshot of is gone

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
        clientMessageId: message.clientMessageId }));
      return true;
    }
  }

  /** SSE and long-poll: GETs with the token (sends go by POST); 401 or 404: the session is gone. */
  class HttpTransport {
    constructor(chat) { this.chat = chat; this.abort = null; this.opened = false; }
    async start() {
      const chat = this.chat;
      const abort = this.abort = new AbortController();
      let fatal = false;
      const get = async (path) => {
        const response = await fetch(`${chat.server}${path}`,
          { headers: chat.auth(), signal: abort.signal, cache: "no-store" });
        fatal = response.status === 401 || response.status === 404;
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
      this.outbox = []; // {clientMessageId, content, messageType, metadata, status, error}
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

    load() {
      try {
        const saved = JSON.parse(localStorage.getItem(this.storageKey) || "null");
        if (saved && saved.userId === (this.option("user-id") || null)) {
          this.session = saved.session;
          this.outbox = (saved.outbox || []).map((m) => ({ ...m, status: m.status === "failed" ? "failed" : "pending" }));
        }
      } catch { /* storage unavailable: the session lasts this page */ }
    }

    save() {
      try {
        localStorage.setItem(this.storageKey, JSON.stringify({
          session: this.session, userId: this.option("user-id") || null,
          outbox: this.outbox.map(({ clientMessageId, content, messageType, metadata, status }) =>
            ({ clientMessageId, content, messageType, metadata, status })),
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
      sheet.replaceSync(CSS);
      this.root.adoptedStyleSheets = [sheet];
      const ui = this.ui = {};
      ui.bubble = el("button", { class: "bubble", part: "bubble", "data-testid": "chat-bubble",
        "aria-expanded": "false", "aria-controls": "window", onclick: () => this.open() });
      ui.bubble.append(icon("chat"));
      ui.title = el("h2", { id: "title" });
      ui.close = el("button", { class: "icon", "data-testid": "close-button", onclick: () => this.close() }, icon("close"));
      // Staff inbox: ask for a person (POST /api/chat/handoff; README "Staff inbox").
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
        onkeydown: (e) => { if (e.key === "Enter" && !e.shiftKey && !e.isComposing) { e.preventDefault(); this.submit(); } } });
      ui.send = el("button", { class: "icon send", type: "submit", "data-testid": "send-button" }, icon("send"));
      ui.form = el("form", { class: "compose", onsubmit: (e) => { e.preventDefault(); this.submit(); } }, ui.input, ui.send);
      ui.window = el("section", { id: "window", class: "window", role: "dialog", "aria-labelledby": "title",
        "data-testid": "chat-window", hidden: true,
        onkeydown: (e) => { if (e.key === "Escape") { e.stopPropagation(); this.close(); } } },
      el("header", {}, ui.title, ui.person, ui.close), ui.error, ui.log, ui.typing, ui.form);
      this.root.append(ui.bubble, ui.window);
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
      this.render();
      this.flush();
    }

    down(transport, { fatal, neverOpened }) {
      if (transport !== this.transport) return;
      this.transport = null;
      this.connected = false;
      if (fatal) { // the session is gone (expired, or the server forgot it): start a new one
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
      } else if (event.type === "bot_typing") { this.botTyping = !!event.isTyping; this.render(); }
      else if (event.type === "message_delta") this.piece(event, false);
      else if (event.type === "message_stream") this.piece(event, true);
      else if (event.type === "message_stream_end") { if (this.streams.delete(event.messageId)) this.render(); }
      else if (event.type === "message_ack") this.acked(event);
      else if (event.type === "error" && event.clientMessageId) this.refused(event.clientMessageId, event);
    }

    /** A piece of a streamed reply (a delta), or all of it so far (a snapshot: a join, or a
     * poll). Deltas come in order within one connection; one at or below the last is a repeat. */
    piece({ messageId: id, index, text }, snapshot) {
      if (typeof id !== "string" || !Number.isInteger(index) || typeof text !== "string" || this.messages.has(id)) return;
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
      const known = this.messages.get(message.id); // a status event may have overtaken a replay
      this.messages.set(message.id, known ? { ...message, status: later(known.status, message.status) } : message);
      if (message.seq > this.lastSeq) this.lastSeq = message.seq;
      this.streams.delete(message.id); // a streamed reply, stored: it takes the bubble's place
      if (message.senderType !== "user") this.botTyping = false;
      if (message.senderType === "user") { // ours, maybe before its ack: the oldest in flight like it
        const mine = this.outbox.find((m) => m.messageId === message.id) || this.outbox.find((m) =>
          m.inFlight && !m.messageId && m.content === message.content && m.messageType === message.messageType);
        this.outbox = this.outbox.filter((m) => m !== mine);
      }
      this.save();
      this.render();
    }

    // -- sending: every message gets a clientMessageId and is sent until acknowledged, once

    submit() {
      const content = this.ui.input.value.trim();
      if (!content) return;
      this.ui.input.value = "";
      this.enqueue(content, "text");
    }

    enqueue(content, messageType, metadata) {
      this.outbox.push({ clientMessageId: newId(), content, messageType, metadata, status: "pending" });
      this.save();
      this.render();
      this.scrollDown(true);
      if (!this.session) this.createSession();
      else this.flush();
    }

    flush() {
      if (!this.connected) return;
      for (const message of this.outbox) {
        if (message.status !== "pending" || message.inFlight) continue;
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
            clientMessageId: message.clientMessageId }) });
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
          status: ack.status || "pending", seq: ack.seq });
      }
      this.outbox = this.outbox.filter((m) => m !== message);
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

    retry(item) {
      if (item.clientMessageId && !item.id) { // never reached chatd: send it again as it was
        item.status = "pending";
        item.error = null;
        this.flush();
        this.render();
        return;
      }
      this.enqueue(item.content, item.messageType || "text", { retryOf: item.id });
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
      ui.typing.hidden = !this.botTyping;
      ui.typing.lastChild.textContent = this.botTyping ? t.typing : "";
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
      const list = ui.list;
      nodes.forEach((node, i) => { if (list.children[i] !== node) list.insertBefore(node, list.children[i] || null); });
      while (list.children.length > nodes.length) list.lastChild.remove();
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
      nodes.forEach((node, i) => { if (list.children[i] !== node) list.insertBefore(node, list.children[i] || null); });
      for (const node of [...list.children].slice(nodes.length)) node.remove();
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
      const bubble = user ? el("div", { class: "text" }, md.linkify(String(m.content || "")))
        : el("div", { class: "text md" }, md.render(String(m.content || "")));
      const node = el("li", { class: `msg ${user ? "user" : "bot"}`,
        "data-testid": user ? "message-user" : agent ? "message-agent" : "message-bot",
        "data-seq": m.seq }, el("span", { class: "sr", text: `${user ? t.you : agent || t.bot}: ` }), bubble);
      if (agent) node.prepend(el("span", { class: "who", "data-testid": "agent-name", "aria-hidden": "true", text: agent }));
      if (!user) this.attachments(node, m.metadata || {});
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
          state.append(" ", el("button", { type: "button", class: "retry", "data-testid": "retry-button",
            text: t.retry, onclick: () => this.retry(m) }));
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
.dots { display: inline-flex; gap: 4px; padding: 10px 12px; background: var(--bot); border-radius: 14px; }
.dots i { width: 7px; height: 7px; border-radius: 50%; background: var(--muted); animation: blink 1.2s infinite; }
.dots i:nth-child(2) { animation-delay: .2s; } .dots i:nth-child(3) { animation-delay: .4s; }
@keyframes blink { 50% { opacity: .25; } }
.compose { display: flex; gap: 8px; padding: 10px; border-top: 1px solid var(--line); }
textarea { flex: 1; resize: none; min-height: 44px; max-height: 120px; padding: 10px 12px; font: inherit;
  color: var(--fg); background: var(--bg); border: 1px solid var(--line); border-radius: 10px; }
.send { background: var(--accent); color: var(--accent-fg); }
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
