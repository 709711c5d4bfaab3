// chatd's staff inbox: sign in (a cookie the page never sees, and a CSRF token kept in memory),
// list conversations, open one, take it over from the bot, reply, hand back, transfer, close.
// Live over /api/inbox/ws: a new chat or a handoff appears without a reload. Every piece of
// data goes in with textContent or DOM attributes; replies are Markdown (markdown.js).
// The composer writes a reply (to the shopper) or an internal note (staff only, shown yellow);
// canned responses, files and the admins' canned-response editor are in inbox-tools.js.
// Unread counts are the server's (per agent: the same on every device); the agent's typing goes
// to the shopper over the socket; alerts (a beep and a notification) are the agent's choice.
"use strict";

(() => {
  const $ = (id) => document.getElementById(id);
  const LABELS = { bot: "Bot answers", waiting: "Waiting for a person", human: "With", closed: "Closed" };
  let me = null;
  let csrf = "";
  let view = "waiting";
  let openId = null;
  let socket = null;
  let retry = 0;
  let mode = "reply"; // the composer writes a "reply" (to the shopper) or a "note" (staff only)
  const conversations = new Map(); // sessionId -> conversation (as the API lists it)
  const unread = new Map(); // sessionId -> the shopper's messages since the agent last looked
  const shown = new Set(); // seqs shown in the open conversation

  // --- the API ---------------------------------------------------------------------------

  async function api(path, { method = "GET", body, form } = {}) {
    const headers = {};
    if (method !== "GET") headers["X-CSRF-Token"] = csrf;
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const response = await fetch(path, { method, headers, cache: "no-store",
      body: form !== undefined ? form : body === undefined ? undefined : JSON.stringify(body) });
    const data = await response.json().catch(() => ({}));
    if (response.status === 401 && path !== "/api/staff/sign-in") { signedOut(); throw new Error("signed out"); }
    if (!response.ok) throw new Error((data.error && data.error.message) || `HTTP ${response.status}`);
    return data;
  }

  function notice(text) { $("notice").textContent = text; }

  function el(tag, props = {}, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(props)) {
      if (k === "text") node.textContent = v;
      else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
      else node.setAttribute(k, v);
    }
    node.append(...children.filter((c) => c !== null));
    return node;
  }

  // --- signing in and out ----------------------------------------------------------------

  async function start() {
    try {
      const session = await api("/api/staff/me");
      signedIn(session);
    } catch {
      signedOut();
    }
  }

  function signedIn(session) {
    me = session.agent;
    csrf = session.csrfToken;
    $("sign-in").hidden = true;
    $("desk").hidden = false;
    $("sign-out").hidden = false;
    $("me").textContent = `${me.name} (${me.role})`;
    document.dispatchEvent(new CustomEvent("chatd:signed-in", { detail: me }));
    loadAgents();
    connect(); // then the lists (on open): subscribed first, so nothing falls in between
  }

  function signedOut() {
    me = null;
    csrf = "";
    if (socket) { const s = socket; socket = null; s.close(1000); }
    $("desk").hidden = true;
    $("sign-out").hidden = true;
    $("me").textContent = "";
    $("sign-in").hidden = false;
    document.dispatchEvent(new CustomEvent("chatd:signed-out"));
  }

  $("sign-in-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const error = $("sign-in-error");
    error.hidden = true;
    try {
      const session = await api("/api/staff/sign-in", { method: "POST",
        body: { email: $("email").value.trim(), password: $("password").value } });
      $("password").value = "";
      signedIn(session);
    } catch (e) {
      error.textContent = e.message;
      error.hidden = false;
    }
  });

  $("sign-out").addEventListener("click", async () => {
    await api("/api/staff/sign-out", { method: "POST" }).catch(() => null);
    signedOut();
  });

  // --- lists -----------------------------------------------------------------------------

  async function load() {
    const open = await api("/api/inbox/conversations?view=open&limit=200");
    for (const c of open.conversations) keep(c);
    if (view === "closed") await loadClosed();
    renderList();
  }

  async function loadClosed() {
    const closed = await api("/api/inbox/conversations?view=closed&limit=200");
    for (const c of closed.conversations) keep(c);
  }

  /** A conversation as the server has it, with this agent's unread count. */
  function keep(c) {
    const before = conversations.get(c.sessionId);
    conversations.set(c.sessionId, c);
    if (c.sessionId === openId && !document.hidden) markRead(c.sessionId);
    else unread.set(c.sessionId, c.unread || 0);
    if (c.state === "waiting" && (!before || before.state !== "waiting") && loaded) {
      ring(c.sessionId, "A shopper asks for a person", c.handoffReason || c.lastContent || who(c));
    }
  }

  function inView(c, name) {
    if (name === "waiting") return c.state === "waiting";
    if (name === "mine") return c.state === "human" && c.agentId === me.id;
    if (name === "open") return c.state !== "closed";
    return c.state === "closed";
  }

  function renderList() {
    const all = [...conversations.values()].sort((a, b) => (b.updatedAt > a.updatedAt ? 1 : -1));
    for (const name of ["waiting", "mine", "open"]) {
      const n = all.filter((c) => inView(c, name)).length;
      document.querySelector(`[data-count="${name}"]`).textContent = n ? String(n) : "";
    }
    for (const tab of document.querySelectorAll("[data-view]")) {
      tab.setAttribute("aria-selected", String(tab.dataset.view === view));
    }
    const items = all.filter((c) => inView(c, view)).map((c) => {
      const count = unread.get(c.sessionId) || 0;
      return el("li", {},
        el("button", { type: "button", class: `item${c.sessionId === openId ? " current" : ""}`,
          "data-testid": "conversation", "data-session": c.sessionId, onclick: () => open(c.sessionId) },
        el("span", { class: "who", text: who(c) }),
        count ? el("span", { class: "unread", "data-testid": "unread" }, count > 99 ? "99+" : String(count),
          el("span", { class: "visually-hidden", text: " unread" })) : null,
        el("span", { class: `badge ${c.state}`, text: c.state === "human" ? `${c.agentName}` : c.state }),
        el("span", { class: "last", text: c.lastContent || "" })));
    });
    $("list").replaceChildren(...items);
    $("list-empty").hidden = items.length > 0;
    const total = [...unread.values()].reduce((a, b) => a + b, 0);
    document.title = total ? `(${total}) chatd inbox` : "chatd inbox";
  }

  function who(c) { return c.guestEmail || c.userId || `Guest ${c.sessionId.slice(0, 8)}`; }

  for (const tab of document.querySelectorAll("[data-view]")) {
    tab.addEventListener("click", async () => {
      view = tab.dataset.view;
      if (view === "closed") await loadClosed();
      renderList();
    });
  }

  async function loadAgents() {
    const { agents } = await api("/api/staff/agents");
    const select = $("transfer-to");
    select.replaceChildren(el("option", { value: "", text: "Transfer to…" }),
      ...agents.filter((a) => a.id !== me.id).map((a) => el("option", { value: a.id, text: a.name })));
  }

  // --- one conversation ------------------------------------------------------------------

  async function open(sessionId) {
    if (openId !== sessionId) stopTyping();
    openId = sessionId;
    const detail = await api(`/api/inbox/conversations/${sessionId}`);
    conversations.set(sessionId, detail.conversation);
    shown.clear();
    $("messages").replaceChildren();
    if (window.chatdInboxTools) window.chatdInboxTools.clear(); // files go with this conversation only
    for (const m of detail.messages) addMessage(m);
    renderAudit(detail.audit);
    loadNotes(sessionId);
    markRead(sessionId);
    document.body.classList.add("reading");
    $("conversation").hidden = false;
    renderConversation();
    renderList();
    $("conversation-title").focus();
  }

  function renderConversation() {
    const c = conversations.get(openId);
    if (!c) return;
    $("conversation-title").textContent = who(c);
    const state = $("state");
    state.textContent = c.state === "human" ? `${LABELS.human} ${c.agentName}` : LABELS[c.state];
    state.dataset.state = c.state;
    const mine = c.state === "human" && c.agentId === me.id;
    $("take").hidden = c.state === "human" || c.state === "closed";
    $("hand-back").hidden = !(mine || (c.state === "human" && me.role === "admin"));
    $("transfer-to").parentElement.hidden = $("hand-back").hidden;
    $("close").hidden = c.state === "closed" || (c.state === "human" && !mine && me.role !== "admin");
    renderComposer(c, mine);
    const context = [["Email", c.guestEmail], ["User id", c.userId], ["Handoff reason", c.handoffReason]];
    for (const [k, v] of Object.entries(c.userContext || {})) context.push([k, JSON.stringify(v)]);
    for (const [k, v] of Object.entries(c.metadata || {})) context.push([k, typeof v === "string" ? v : JSON.stringify(v)]);
    $("context").replaceChildren(...context.filter(([, v]) => v).flatMap(([k, v]) =>
      [el("dt", { text: k }), el("dd", { text: String(v) })]));
  }

  function addMessage(m) {
    if (shown.has(m.seq)) return;
    shown.add(m.seq);
    const user = m.senderType === "user";
    const name = m.senderType === "agent" ? (m.metadata && m.metadata.agentName) || "Agent"
      : user ? "Shopper" : m.senderType === "system" ? "" : "Bot";
    const body = !m.content && m.attachments && m.attachments.length ? null // files alone: no empty bubble
      : user ? el("div", { class: "text", text: m.content })
      : el("div", { class: "text md" }, chatdMarkdown.render(String(m.content)));
    const item = el("li", { class: `message ${m.senderType}`, "data-testid": `message-${m.senderType}`, "data-seq": String(m.seq),
      "data-at": m.createdAt }, name ? el("span", { class: "from", text: name }) : null, body, ...files(m));
    const list = $("messages");
    const after = [...list.children].find((n) => Number(n.dataset.seq) > m.seq);
    list.insertBefore(item, after || null);
    list.scrollTop = list.scrollHeight;
  }

  /** A message's files: images as thumbnails (signed URLs from chatd), others as links. */
  function files(m) {
    return (Array.isArray(m.attachments) ? m.attachments : []).map((a) => {
      const image = a.kind === "image" && (a.thumbnailUrl || a.url);
      return el("a", { class: "file", href: a.url, target: "_blank", rel: "noopener noreferrer",
        "data-testid": image ? "attachment-image" : "attachment-file" },
      image ? el("img", { src: image, alt: a.name || "Attachment" }) : el("span", { text: a.name || "Attachment" }));
    });
  }

  // --- internal notes and the audit trail --------------------------------------------------

  async function loadNotes(sessionId) {
    try {
      const { notes } = await api(`/api/inbox/conversations/${sessionId}/notes`);
      if (sessionId === openId) for (const n of notes) addNote(n);
    } catch (e) {
      notice(e.message);
    }
  }

  /** A note among the messages, by time; yellow and labelled, so no one mistakes it for a reply. */
  function addNote(n) {
    const list = $("messages");
    if (list.querySelector(`[data-note="${CSS.escape(n.id)}"]`)) return;
    const item = el("li", { class: "message note", "data-testid": "message-note", "data-note": n.id, "data-at": n.createdAt },
      el("span", { class: "from", text: `Internal note · ${n.agentName}` }), el("div", { class: "text", text: n.content }));
    const after = [...list.children].find((node) => node.dataset.at > n.createdAt);
    list.insertBefore(item, after || null);
    if (!after) list.scrollTop = list.scrollHeight;
  }

  const DID = { handoff_requested: "asked for a person", taken: "took it over", replied: "replied",
    transferred: "transferred it", handed_back: "handed it back to the bot", closed: "closed it" };

  function renderAudit(entries) {
    $("audit").replaceChildren(...(entries || []).map((a) => {
      const by = a.agentName || (a.detail && a.detail.by === "shopper" ? "The shopper" : a.detail && a.detail.by === "bot" ? "The bot" : "Someone");
      const when = new Date(a.at);
      return el("li", { "data-testid": "audit-entry" }, el("time", { datetime: a.at, text: when.toLocaleString() }),
        ` ${by} ${DID[a.action] || a.action.replace(/_/g, " ")}`);
    }));
  }

  function renderComposer(c, mine) {
    const noting = mode === "note";
    const can = noting ? c.state !== "closed" : mine;
    $("reply").disabled = !can;
    $("send").disabled = !can;
    $("attach").disabled = noting || !mine;
    $("composer").classList.toggle("noting", noting);
    $("reply").placeholder = noting ? (can ? "Internal note: only staff see it" : "The conversation has ended")
      : mine ? "Reply to the shopper" : "Take over to reply";
    $("send").textContent = noting ? "Add note" : "Send";
    for (const b of document.querySelectorAll("[data-mode]")) b.setAttribute("aria-pressed", String(b.dataset.mode === mode));
  }

  $("audit").parentElement.addEventListener("toggle", (e) => { if (e.target.open && openId) refresh(openId); });

  for (const b of document.querySelectorAll("[data-mode]")) {
    b.addEventListener("click", () => { mode = b.dataset.mode; renderConversation(); $("reply").focus(); });
  }

  async function act(path, body) {
    try {
      const changed = await api(`/api/inbox/conversations/${openId}/${path}`, { method: "POST", body });
      keep(changed.conversation);
      if (changed.message) addMessage(changed.message);
      renderConversation();
      renderList();
    } catch (e) {
      notice(e.message);
      refresh(openId);
    }
  }

  $("take").addEventListener("click", () => act("take"));
  $("hand-back").addEventListener("click", () => act("hand-back"));
  $("close").addEventListener("click", () => act("close"));
  $("transfer-to").addEventListener("change", (e) => { if (e.target.value) act("transfer", { agentId: e.target.value }); e.target.value = ""; });
  $("back").addEventListener("click", () => { stopTyping(); document.body.classList.remove("reading"); openId = null; $("conversation").hidden = true; renderList(); });

  $("composer").addEventListener("submit", async (event) => {
    event.preventDefault();
    const input = $("reply");
    const content = input.value.trim();
    const tools = window.chatdInboxTools;
    try {
      if (mode === "note") {
        if (!content) return;
        const { note } = await api(`/api/inbox/conversations/${openId}/notes`, { method: "POST", body: { content } });
        input.value = "";
        addNote(note);
        return;
      }
      if (tools && tools.uploading()) { notice("Wait until the files are uploaded."); return; }
      const attachments = tools ? tools.uploaded() : [];
      if (!content && !attachments.length) return;
      const body = attachments.length ? { content, attachments } : { content };
      const { message } = await api(`/api/inbox/conversations/${openId}/messages`, { method: "POST", body });
      input.value = "";
      if (tools) tools.clear();
      stopTyping();
      addMessage(message);
    } catch (e) {
      notice(e.message);
    }
  });
  $("reply").addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) { e.preventDefault(); $("composer").requestSubmit(); }
  });

  // --- live ------------------------------------------------------------------------------

  async function refresh(sessionId) {
    try {
      const detail = await api(`/api/inbox/conversations/${sessionId}`);
      keep(detail.conversation);
      if (sessionId === openId) { renderConversation(); renderAudit(detail.audit); }
      renderList();
    } catch {
      // gone (expired): leave the list as it is
    }
  }

  function onEvent(event) {
    const id = event.sessionId;
    if (event.type === "typing" && id === openId) { $("typing").hidden = !event.isTyping; return; }
    if (event.type === "note") { if (id === openId) addNote(event.note); return; }
    if (event.type === "conversation_read") { readElsewhere(event); return; }
    if (event.type !== "new_message") return;
    const m = event.message;
    const known = conversations.get(id);
    if (known && m.seq > (known.lastSeq || 0)) known.lastSeq = m.seq;
    const looking = id === openId && !document.hidden;
    if (id === openId) { addMessage(m); if (m.senderType === "user") $("typing").hidden = true; }
    if (m.senderType === "user") {
      if (looking) markRead(id);
      else unread.set(id, (unread.get(id) || 0) + 1);
      if (!looking && known && known.state === "human" && known.agentId === me.id) ring(id, `${who(known)} wrote`, m.content);
    }
    // A change of who answers, or the end of the chat (also the shopper's, or the admin page's).
    const changed = m.metadata && (m.metadata.conversation || m.metadata.event === "session_closed");
    const audited = id === openId && m.senderType === "agent"; // a reply is in the audit trail
    if (!known || changed || audited || m.senderType === "bot") { refresh(id); return; }
    known.lastContent = m.content;
    known.lastSender = m.senderType;
    known.updatedAt = m.createdAt;
    renderList();
  }

  function connect() {
    const ws = new WebSocket(`${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/api/inbox/ws`);
    socket = ws;
    ws.onopen = () => { retry = 0; $("live").textContent = "Live"; load().then(() => { loaded = true; }); };
    ws.onmessage = (e) => { try { onEvent(JSON.parse(e.data)); } catch { /* not ours */ } };
    ws.onclose = (e) => {
      if (socket !== ws) return;
      $("live").textContent = "Reconnecting…";
      if (e.code === 4001) { signedOut(); return; }
      setTimeout(() => { if (socket === ws && me) connect(); }, Math.min(10000, 500 * 2 ** retry++));
    };
  }

  // --- read marks: unread counts kept on the server -------------------------------------

  let readTimer = 0;
  /** Seen up to the newest message shown (a moment later, once for a burst). */
  function markRead(sessionId) {
    unread.set(sessionId, 0);
    clearTimeout(readTimer);
    readTimer = setTimeout(async () => {
      if (sessionId !== openId || !shown.size) return;
      const lastSeq = Math.max(...shown);
      await api(`/api/inbox/conversations/${sessionId}/read`, { method: "POST", body: { lastSeq } }).catch(() => null);
    }, 300);
    renderList();
  }

  /** Read on another of this agent's devices. */
  function readElsewhere(event) {
    const c = conversations.get(event.sessionId);
    if (!c) return;
    if (event.lastReadSeq >= (c.lastSeq || 0)) { unread.set(c.sessionId, 0); renderList(); }
    else refresh(c.sessionId);
  }

  document.addEventListener("visibilitychange", () => { if (!document.hidden && openId) markRead(openId); });

  // --- the agent's typing, shown to the shopper -------------------------------------------

  let typingAt = 0; // when "typing" last went out (again at most every 3 s while it goes on)
  let typingIn = null; // the conversation it went out for
  let typingTimer = 0;

  function typingFrame(sessionId, isTyping) {
    if (socket && socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify({ type: "typing", sessionId, isTyping }));
  }

  $("reply").addEventListener("input", () => {
    if (!openId || $("reply").disabled) return;
    const now = Date.now();
    if (typingIn !== openId || now - typingAt > 3000) { typingFrame(openId, true); typingAt = now; typingIn = openId; }
    clearTimeout(typingTimer);
    typingTimer = setTimeout(stopTyping, 4000); // paused: stopped
  });
  $("reply").addEventListener("blur", () => { if (!$("reply").value.trim()) stopTyping(); });

  function stopTyping() {
    clearTimeout(typingTimer);
    if (typingIn) typingFrame(typingIn, false);
    typingIn = null;
    typingAt = 0;
  }

  // --- alerts: a beep and a browser notification, when the agent is not looking -----------

  const ALERTS = "chatd.inbox.alerts";
  let loaded = false; // the lists are in: conversations found from now on are new
  let audio = null;

  function alertsOn() { return localStorage.getItem(ALERTS) === "on"; }

  function showAlerts() {
    const box = $("alerts");
    box.checked = alertsOn();
    $("alerts-note").textContent = box.checked && "Notification" in window && Notification.permission === "denied"
      ? "Notifications are blocked by the browser; the sound still plays." : "";
  }

  $("alerts").addEventListener("change", async (e) => {
    localStorage.setItem(ALERTS, e.target.checked ? "on" : "off");
    if (e.target.checked) {
      audio = audio || (window.AudioContext ? new AudioContext() : null); // made in a click: allowed to play
      if ("Notification" in window && Notification.permission === "default") await Notification.requestPermission();
    }
    showAlerts();
  });

  /** A short beep (WebAudio, no file) and a notification that opens the conversation. */
  function ring(sessionId, title, body) {
    if (!alertsOn() || (!document.hidden && sessionId === openId)) return;
    try {
      audio = audio || new AudioContext();
      const tone = audio.createOscillator();
      const gain = audio.createGain();
      tone.frequency.value = 880;
      gain.gain.setValueAtTime(0.15, audio.currentTime);
      gain.gain.exponentialRampToValueAtTime(0.001, audio.currentTime + 0.25);
      tone.connect(gain).connect(audio.destination);
      tone.start();
      tone.stop(audio.currentTime + 0.25);
    } catch { /* no audio here */ }
    if ("Notification" in window && Notification.permission === "granted") {
      try { // some phones' browsers allow notifications only from a service worker: then none
        const note = new Notification(title, { body: String(body || "").slice(0, 140), tag: sessionId });
        note.onclick = () => { window.focus(); open(sessionId); note.close(); };
      } catch { /* the beep was the alert */ }
    }
  }

  showAlerts();

  // What inbox-tools.js builds on: the API (with the CSRF token), and the open conversation.
  window.chatdInbox = { api, el, notice, me: () => me, openId: () => openId,
    conversation: () => (openId ? conversations.get(openId) : null) };

  start();
})();
