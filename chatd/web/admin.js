// chatd's admin page: asks for the admin token (kept for this tab by admin-session.js, loaded
// before this file and shared with the analytics page), then polls the admin API (/api/admin/*)
// and renders it. Every piece of data goes in with
// textContent or DOM attributes, never as HTML: message contents and errors are untrusted.
// Bot replies in a transcript are Markdown, rendered as the widget does (markdown.js, loaded
// before this file), which builds DOM nodes too.
"use strict";

(() => {
  const session = window.chatdAdminSession;
  const { api, getJSON, AuthError } = session;
  const POLL_MS = 2000;
  const SESSIONS_POLL_MS = 5000;
  const SVG = "http://www.w3.org/2000/svg";
  const $ = (id) => document.getElementById(id);

  let pollTimer = 0;
  let sessionsTimer = 0;
  let searchTimer = 0;
  let openSession = null;
  let generation = 0;  // of the polling chains: a newer chain ends the older one
  let sessionsGeneration = 0;

  // --- small DOM helpers -------------------------------------------------------------------

  function el(tag, props = {}, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(props)) {
      if (value === undefined || value === null || value === false) continue;
      if (name === "text") node.textContent = String(value);
      else if (name === "className") node.className = value;
      else if (name === "dataset") Object.assign(node.dataset, value);
      else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
      else node.setAttribute(name, value === true ? "" : String(value));
    }
    node.append(...children.filter((c) => c !== null && c !== undefined));
    return node;
  }

  function svg(tag, attributes = {}) {
    const node = document.createElementNS(SVG, tag);
    for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, String(value));
    return node;
  }

  // Updates rows in place, keyed: an unchanged row is kept (and keeps keyboard focus).
  function syncRows(tbody, items, keyOf, build) {
    const existing = new Map([...tbody.children].map((row) => [row.dataset.key, row]));
    const columns = [...tbody.parentElement.tHead.rows[0].cells].map((th) => th.textContent.trim());
    items.forEach((item, index) => {
      const key = keyOf(item);
      const sig = JSON.stringify(item);
      let row = existing.get(key);
      existing.delete(key);
      if (!row || row.dataset.sig !== sig) {
        const fresh = build(item);
        // A phone shows each row as a card, each cell under its column's name (admin.css).
        [...fresh.cells].forEach((cell, i) => { cell.dataset.label = columns[i]; });
        fresh.dataset.key = key;
        fresh.dataset.sig = sig;
        if (row) row.replaceWith(fresh);
        row = fresh;
      }
      if (tbody.children[index] !== row) tbody.insertBefore(row, tbody.children[index] || null);
    });
    for (const stale of existing.values()) stale.remove();
  }

  const when = (iso) => {
    if (!iso) return "–";
    const date = new Date(iso);
    const today = date.toDateString() === new Date().toDateString();
    return today ? date.toLocaleTimeString() : date.toLocaleString();
  };

  function duration(seconds) {
    const s = Math.round(seconds);
    const two = (big, bigUnit, small, smallUnit) => (small ? `${big} ${bigUnit} ${small} ${smallUnit}` : `${big} ${bigUnit}`);
    if (s < 60) return `${s} s`;
    if (s < 3600) return two(Math.floor(s / 60), "min", s % 60, "s");
    if (s < 86400) return two(Math.floor(s / 3600), "h", Math.floor((s % 3600) / 60), "min");
    return two(Math.floor(s / 86400), "d", Math.floor((s % 86400) / 3600), "h");
  }

  const percent = (rate) => (rate === null || rate === undefined ? "–" : `${(rate * 100).toFixed(1)} %`);
  const shortId = (id) => (id.length > 8 ? `${id.slice(0, 8)}…` : id);
  const preview = (text, n = 80) => (text.length > n ? `${text.slice(0, n)}…` : text);

  function announce(text) {
    const notice = $("notice");
    notice.textContent = "";
    notice.textContent = text;
  }

  // --- overview ----------------------------------------------------------------------------

  function renderOverview(data) {
    const q = data.queue;
    $("queue-pending").textContent = q.pending;
    $("queue-processing").textContent = q.processing;
    $("queue-dead").textContent = q.dead;
    $("queue-completed").textContent = q.completedLastHour;
    $("queue-oldest").textContent = q.pending ? duration(q.oldestPendingSeconds) : "–";
    $("sessions-live").textContent = data.sessions.live;
    $("process-connections").textContent = data.process.connections;
    $("process-actors").textContent = data.process.actors;
    renderChart(data.throughput);
    renderWebhook(data.webhook);
    renderErrors(data.recentErrors);
  }

  function renderChart(throughput) {
    const buckets = throughput.buckets;
    const width = 600;
    const height = 150;
    const top = 16;
    const bottom = 18;
    const slot = width / buckets.length;
    const max = Math.max(1, ...buckets.map((b) => Math.max(b.received, b.completed)));
    const scale = (n) => ((height - top - bottom) * n) / max;
    const received = buckets.reduce((sum, b) => sum + b.received, 0);
    const completed = buckets.reduce((sum, b) => sum + b.completed, 0);
    const chart = svg("svg", {
      viewBox: `0 0 ${width} ${height}`,
      role: "img",
      "aria-labelledby": "chart-title chart-desc",
      class: "chart-svg",
    });
    const desc = svg("desc", { id: "chart-desc" });
    desc.textContent =
      `${received} messages received and ${completed} jobs completed in the last ` +
      `${duration(buckets.length * throughput.bucketSeconds)}, in ${throughput.bucketSeconds}-second steps; ` +
      `at most ${max} in one step.`;
    chart.append(desc);
    for (const fraction of [0, 0.5, 1]) {
      const y = height - bottom - (height - top - bottom) * fraction;
      chart.append(svg("line", { x1: 0, x2: width, y1: y, y2: y, class: "grid" }));
    }
    buckets.forEach((b, i) => {
      const x = i * slot;
      const bar = slot / 2 - 1;
      for (const [series, n, offset] of [["received", b.received, 1], ["completed", b.completed, slot / 2]]) {
        if (!n) continue;
        const h = Math.max(1, scale(n));
        chart.append(svg("rect", { x: x + offset, y: height - bottom - h, width: bar, height: h, class: series }));
      }
    });
    const label = (x, y, text, anchor) => {
      const node = svg("text", { x, y, "text-anchor": anchor, class: "axis" });
      node.textContent = text;
      chart.append(node);
    };
    label(2, top - 4, `${max} per ${throughput.bucketSeconds} s`, "start");
    label(2, height - 4, `−${duration(buckets.length * throughput.bucketSeconds)}`, "start");
    label(width - 2, height - 4, "now", "end");
    $("chart").replaceChildren(chart);
  }

  function renderWebhook(webhook) {
    const cluster = webhook.cluster;
    const target = webhook.target;
    const rows = [
      ["Answered by", target.kind === "n8n"
        ? el("span", {}, "n8n at ", breakable(target.url))
        : "the built-in demo bot (no n8n.webhook_url set)"],
      ["This process", webhook.dispatching ? "delivers messages" : "does not deliver (queue.dispatch = false)"],
      ["Success rate (last 100 attempts here)", percent(webhook.successRate)],
    ];
    if (webhook.process) {
      const p = webhook.process;
      rows.push(["Delivered / retried / dead here", `${p.delivered} / ${p.retried} / ${p.dead}`]);
      rows.push(["In flight here", String(p.inFlight)]);
    }
    rows.push([
      `Cluster, last ${duration(cluster.windowSeconds)}`,
      `${cluster.attempts} settled, ${cluster.failures} failed (${percent(cluster.failureRate)})`,
    ]);
    rows.push(["Last error here", webhook.lastError || "none"]);
    const badge = el("span", { className: `badge ${webhook.status}`, text: webhook.status });
    const list = el("dl", { className: "pairs" });
    for (const [term, value] of rows) list.append(el("div", {}, el("dt", { text: term }), el("dd", {}, value)));
    $("webhook").replaceChildren(el("p", { className: "badge-line" }, "Status: ", badge), list);
  }

  // A URL in a narrow column: it may break after a slash rather than inside a word.
  const breakable = (url) => el("span", { className: "mono" }, ...url.split(/(?<=[^/]\/)(?=[^/])/).flatMap((part) => [part, el("wbr")]));

  function renderErrors(errors) {
    $("errors-empty").hidden = errors.length > 0;
    $("errors-table").hidden = errors.length === 0;
    syncRows($("errors"), errors, (e) => `${e.jobId}@${e.at}`, (e) =>
      el("tr", { dataset: { testid: "error-row" } },
        el("td", { text: when(e.at) }),
        el("td", { text: e.status }),
        el("td", { text: e.httpStatus ?? "–" }),
        el("td", { className: "wrap", text: e.error }),
        el("td", { className: "wrap", text: preview(e.content) }),
        el("td", { className: "mono", title: e.sessionId, text: shortId(e.sessionId) })));
  }

  // --- dead letters ------------------------------------------------------------------------

  function renderDead(letters) {
    $("dead-empty").hidden = letters.length > 0;
    $("dead-table").hidden = letters.length === 0;
    $("retry-all").disabled = letters.length === 0;
    syncRows($("dead"), letters, (d) => d.jobId, deadRow);
  }

  function deadRow(d) {
    const row = el("tr", { dataset: { testid: "dead-letter", jobId: d.jobId } });
    const what = preview(d.content, 40);
    const retry = el("button", {
      type: "button", text: "Retry", "aria-label": `Retry: ${what}`, dataset: { testid: "dead-retry" },
    });
    const purge = el("button", {
      type: "button", className: "danger", text: "Purge", "aria-label": `Purge: ${what}`,
      dataset: { testid: "dead-purge" },
    });
    retry.addEventListener("click", () => act(row, `/dead/${encodeURIComponent(d.jobId)}/retry`, "POST", "Queued again for delivery."));
    let armed = 0;
    purge.addEventListener("click", () => {
      if (!armed) {  // a second click within 4 seconds confirms
        purge.textContent = "Confirm purge";
        purge.setAttribute("aria-label", `Confirm purge: ${what}`);
        armed = setTimeout(() => {
          armed = 0;
          purge.textContent = "Purge";
          purge.setAttribute("aria-label", `Purge: ${what}`);
        }, 4000);
        return;
      }
      clearTimeout(armed);
      act(row, `/dead/${encodeURIComponent(d.jobId)}`, "DELETE", "Dead letter purged.");
    });
    row.append(
      el("td", { text: when(d.deadAt) }),
      el("td", { className: "wrap" }, el("span", { text: d.content }),
        el("span", { className: "sub mono", title: d.sessionId, text: `session ${shortId(d.sessionId)}` })),
      el("td", { className: "wrap", text: deadReason(d) }),
      el("td", { text: `${d.attempts}/${d.maxAttempts}` }),
      el("td", { className: "row-actions" }, retry, " ", purge),
    );
    return row;
  }

  function deadReason(d) {
    const error = d.lastError || "–";
    const status = d.httpStatus ? `HTTP ${d.httpStatus}` : "";
    return status && !error.includes(status) ? `${status}: ${error}` : error;
  }

  async function act(row, path, method, done) {
    const buttons = [...row.querySelectorAll("button")];
    buttons.forEach((b) => { b.disabled = true; });
    const next = row.nextElementSibling || row.previousElementSibling;
    try {
      await api(path, { method });
      row.remove();
      const focus = next && next.querySelector("button");
      (focus || $("dead-title")).focus();
      announce(done);
    } catch (error) {
      buttons.forEach((b) => { b.disabled = false; });
      if (!(error instanceof AuthError)) announce(`Failed: ${error.message}`);
      return;
    }
    refresh();
  }

  async function retryAll() {
    const button = $("retry-all");
    button.disabled = true;
    try {
      const result = await (await api("/dead/retry-all", { method: "POST" })).json();
      announce(`${result.retried} dead letter(s) queued again.`);
    } catch (error) {
      if (!(error instanceof AuthError)) announce(`Failed: ${error.message}`);
    }
    refresh();
  }

  // --- sessions and transcripts ------------------------------------------------------------

  async function loadSessions() {
    const params = new URLSearchParams({ status: $("session-status").value, limit: "50" });
    const q = $("session-q").value.trim();
    if (q) params.set("q", q);
    const data = await getJSON(`/sessions?${params}`);
    $("sessions-empty").hidden = data.sessions.length > 0;
    $("sessions-table").hidden = data.sessions.length === 0;
    syncRows($("sessions"), data.sessions, (s) => s.id, sessionRow);
  }

  function sessionRow(s) {
    const who = s.userId ? `user ${s.userId}` : s.guestEmail || "guest";
    const last = s.lastMessage ? `${s.lastMessage.senderType}: ${preview(s.lastMessage.content, 60)}` : "–";
    const open = el("button", {
      type: "button", className: "link mono", text: shortId(s.id),
      "aria-label": `Show transcript of session ${s.id}`, title: s.id,
    });
    open.addEventListener("click", () => showTranscript(s.id));
    const row = el("tr", { dataset: { testid: "session-row", sessionId: s.id }, className: "clickable" },
      el("td", {}, open, s.live ? null : el("span", { className: "sub", text: s.status })),
      el("td", { className: "wrap", text: who }),
      el("td", { text: s.messageCount }),
      el("td", { className: "wrap", text: last }),
      el("td", { text: when(s.updatedAt) }),
      el("td", { text: s.connectedHere ? "connected" : "–" }));
    row.addEventListener("click", (event) => {
      if (event.target.closest("button") === null) showTranscript(s.id);
    });
    return row;
  }

  function speaker(m) {
    if (m.senderType === "agent") return (m.metadata && m.metadata.agentName) || "Agent";
    return m.senderType === "user" ? "Shopper" : m.senderType === "bot" ? "Bot" : "System";
  }

  const DID = { handoff_requested: "asked for a person", taken: "took the conversation over", replied: "replied",
    transferred: "passed the conversation on", handed_back: "handed it back to the bot", closed: "closed the conversation" };

  function auditText(a) {
    const by = a.agentName || { shopper: "The shopper", bot: "The bot", staff: "Staff" }[a.detail && a.detail.by] || "Someone";
    const reason = a.detail && typeof a.detail.reason === "string" && a.detail.reason ? ` (${a.detail.reason})` : "";
    return `${by} ${DID[a.action] || a.action.replace(/_/g, " ")}${reason}`;
  }

  async function showTranscript(sessionId) {
    let data;
    try {
      data = await getJSON(`/sessions/${encodeURIComponent(sessionId)}/transcript`);
    } catch (error) {
      if (!(error instanceof AuthError)) announce(`Could not load the transcript: ${error.message}`);
      return;
    }
    openSession = sessionId;
    const s = data.session;
    const who = s.userId ? `user ${s.userId}` : s.guestEmail || "a guest";
    $("transcript-title").textContent = `Transcript of ${shortId(s.id)}`;
    $("transcript-meta").textContent =
      `Session ${s.id} with ${who}, ${s.status}, started ${when(s.createdAt)}; ${data.messages.length} message(s).`;
    const items = data.messages.map((m) =>
      el("li", { className: `msg ${m.senderType}`, dataset: { seq: m.seq, at: m.createdAt } },
        el("p", { className: "meta" },
          el("span", { className: "who", text: speaker(m) }),
          el("span", { text: ` · ${when(m.createdAt)} · #${m.seq}` }),
          m.senderType === "user" ? el("span", { className: `st ${m.status}`, text: ` · ${m.status}` }) : null),
        m.senderType === "user"
          ? el("p", { className: "content", text: m.content })
          : el("div", { className: "content md" }, chatdMarkdown.render(m.content))));
    // The audit trail (who asked for a person, took, replied, transferred, closed) in time order.
    for (const a of data.audit || []) {
      const line = el("li", { className: "msg audit", dataset: { at: a.at, testid: "audit-line" } },
        el("p", { className: "meta" }, el("span", { text: `${when(a.at)} · ${auditText(a)}` })));
      const at = items.findIndex((item) => item.dataset.at > a.at);
      items.splice(at < 0 ? items.length : at, 0, line);
    }
    $("transcript").replaceChildren(...items);
    $("end-chat").hidden = !(s.status === "active" && new Date(s.expiresAt) > new Date());
    $("transcript-panel").hidden = false;
    $("transcript-title").focus();
  }

  // Staff end the chat: the shopper's widget then asks for a rating (chatd's csat.ask_on).
  async function endChat() {
    if (!openSession) return;
    try {
      await api(`/sessions/${encodeURIComponent(openSession)}/close`, { method: "POST" });
    } catch (error) {
      if (!(error instanceof AuthError)) announce(`Could not end the chat: ${error.message}`);
      return;
    }
    announce("Chat ended.");
    await showTranscript(openSession);
  }

  async function download(kind) {
    if (!openSession) return;
    try {
      const response = await api(`/sessions/${encodeURIComponent(openSession)}/transcript?format=${kind}&download=1`);
      await session.download(response, `chat.${kind === "text" ? "txt" : "json"}`);
    } catch (error) {
      if (!(error instanceof AuthError)) announce(`Download failed: ${error.message}`);
    }
  }

  // --- polling, signing in and out ---------------------------------------------------------

  async function refresh() {
    clearTimeout(pollTimer);
    const mine = ++generation;
    try {
      const [overview, dead] = await Promise.all([getJSON("/overview"), getJSON("/dead?limit=100")]);
      if (!session.token) return;
      renderOverview(overview);
      renderDead(dead.deadLetters);
      $("refresh-status").textContent = `Updated ${new Date().toLocaleTimeString()}`;
    } catch (error) {
      if (error instanceof AuthError) return;
      $("refresh-status").textContent = `Could not refresh: ${error.message}`;
    }
    if (session.token && mine === generation) pollTimer = setTimeout(refresh, POLL_MS);
  }

  async function refreshSessions() {
    clearTimeout(sessionsTimer);
    const mine = ++sessionsGeneration;
    try {
      await loadSessions();
    } catch (error) {
      if (error instanceof AuthError) return;
      $("refresh-status").textContent = `Could not load sessions: ${error.message}`;
    }
    if (session.token && mine === sessionsGeneration) sessionsTimer = setTimeout(refreshSessions, SESSIONS_POLL_MS);
  }

  async function signIn(event) {
    event.preventDefault();
    const value = $("token").value.trim();
    if (!value) {
      showAuthError("Enter the admin token.");
      return;
    }
    try {
      await session.signIn(value, "/overview");  // proves the token before the dashboard shows
    } catch (error) {
      if (!(error instanceof AuthError)) showAuthError(`chatd did not answer: ${error.message}`);
      return;
    }
    $("token").value = "";
    start();
  }

  function start() {
    $("auth-error").hidden = true;
    $("sign-in").hidden = true;
    $("dashboard").hidden = false;
    $("sign-out").hidden = false;
    refresh();
    refreshSessions();
  }

  function showAuthError(message) {
    $("auth-error").textContent = message;
    $("auth-error").hidden = false;
    $("token").focus();
  }

  // After admin-session.js has dropped the token (the button, or a wrong or blocked token).
  function signedOut(message) {
    openSession = null;
    clearTimeout(pollTimer);
    clearTimeout(sessionsTimer);
    $("dashboard").hidden = true;
    $("sign-out").hidden = true;
    $("sign-in").hidden = false;
    $("refresh-status").textContent = "";
    for (const id of ["dead", "errors", "sessions", "transcript"]) $(id).replaceChildren();
    $("transcript-panel").hidden = true;
    if (message) showAuthError(message);
    else {
      $("auth-error").hidden = true;
      $("token").focus();
    }
  }

  function init() {
    $("token-form").addEventListener("submit", signIn);
    session.onSignOut(signedOut);
    $("sign-out").addEventListener("click", () => session.signOut(""));
    $("retry-all").addEventListener("click", retryAll);
    $("session-search").addEventListener("submit", (event) => {
      event.preventDefault();
      refreshSessions();
    });
    $("session-q").addEventListener("input", () => {
      clearTimeout(searchTimer);
      searchTimer = setTimeout(refreshSessions, 250);
    });
    $("session-status").addEventListener("change", refreshSessions);
    $("end-chat").addEventListener("click", endChat);
    $("download-json").addEventListener("click", () => download("json"));
    $("download-text").addEventListener("click", () => download("text"));
    $("transcript-close").addEventListener("click", () => {
      openSession = null;
      $("transcript-panel").hidden = true;
      $("sessions-title").focus();
    });
    if (session.token) start();
    else $("token").focus();
  }

  init();
})();
