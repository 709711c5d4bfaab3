// The admin page's insights (loaded after admin.js): full-text search over messages with
// filters, a conversation with its matching message highlighted and its tags (add, remove), the
// tag list with counts (a tag lists its conversations), and a shopper's data on request (export,
// delete after a confirmation). It builds its cards inside #insights when the dashboard shows,
// and calls the admin API through admin-session.js (the token it keeps for this tab). Data goes
// in as text or DOM nodes only, never as HTML: messages, tags and emails are untrusted.
"use strict";

(() => {
  const session = window.chatdAdminSession;
  const PAGE_SIZE = 20;
  const $ = (id) => document.getElementById(id);

  let page = 1;
  let lastQuery = null;  // the URLSearchParams of the search shown
  let openSession = null;
  let pendingDelete = null;  // the shopper a deletion waits to be confirmed for

  // --- the API -----------------------------------------------------------------------------

  // admin-session.js's (loaded before admin.js): a wrong or blocked token signs the page out.
  const { api, getJSON } = session;
  const postJSON = (path, body) =>
    api(path, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });

  // --- DOM helpers -------------------------------------------------------------------------

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

  const field = (label, input, wide = false) =>
    el("div", { className: wide ? "field wide" : "field" }, el("label", { for: input.id, text: label }), input);

  function select(id, options) {
    return el("select", { id }, ...options.map(([value, text]) => el("option", { value, text })));
  }

  const when = (iso) => new Date(iso).toLocaleString();
  const who = (s) => (s.userId ? `user ${s.userId}` : s.guestEmail || "a guest");
  const speaker = (type) => ({ user: "Shopper", bot: "Bot", system: "System", agent: "Agent" })[type] || type;

  function say(id, text, isError = false) {
    const node = $(id);
    node.textContent = text;
    node.classList.toggle("error", isError);
  }

  // Text with each of `terms` (the words the search matched) inside <mark>, as nodes.
  function marked(text, terms) {
    const words = terms.filter(Boolean).map((t) => t.toLowerCase());
    if (!words.length) return [document.createTextNode(text)];
    const nodes = [];
    let rest = text;
    while (rest) {
      const lower = rest.toLowerCase();
      let at = -1;
      let word = "";
      for (const w of words) {
        const i = lower.indexOf(w);
        if (i !== -1 && (at === -1 || i < at)) [at, word] = [i, w];
      }
      if (at === -1) {
        nodes.push(document.createTextNode(rest));
        break;
      }
      if (at) nodes.push(document.createTextNode(rest.slice(0, at)));
      nodes.push(el("mark", { text: rest.slice(at, at + word.length) }));
      rest = rest.slice(at + word.length);
    }
    return nodes;
  }

  // --- the cards ---------------------------------------------------------------------------

  function build() {
    const searchForm = el("form", { id: "insight-search", className: "filters", role: "search" },
      field("Words", el("input", { id: "insight-q", type: "search", required: true, autocomplete: "off", maxlength: 255 }), true),
      field("From", el("input", { id: "insight-since", type: "date" })),
      field("Until", el("input", { id: "insight-until", type: "date" })),
      field("Tag", select("insight-tag", [["", "Any tag"]])),
      field("Status", select("insight-status", [["any", "Any"], ["failed", "Failed deliveries"]])),
      field("Handoff", select("insight-handoff", [["", "Any"], ["yes", "Handed to a person"], ["no", "Bot only"]])),
      field("State now", select("insight-state", [["", "Any state"], ["bot", "Bot answers"], ["waiting", "Waiting for a person"],
        ["human", "With an agent"], ["closed", "Closed"]])),
      field("Agent", el("input", { id: "insight-agent", type: "text", autocomplete: "off", placeholder: "agent email or id" })),
      field("Sender", select("insight-sender", [["any", "Anyone"], ["user", "Shopper"], ["bot", "Bot"], ["agent", "Agent"]])),
      field("Rating", select("insight-rating", [["", "Any rating"], ["rated", "Rated"], ["unrated", "Not rated"],
        ["5", "5 stars"], ["4", "4 stars"], ["3", "3 stars"], ["2", "2 stars"], ["1", "1 star"]])),
      field("Shopper", el("input", { id: "insight-shopper", type: "text", autocomplete: "off", placeholder: "user id or email" })),
      field("Order", select("insight-sort", [["newest", "Newest first"], ["relevance", "Most relevant"]])),
      el("div", { className: "field submit" }, el("button", { type: "submit", text: "Search" })));
    const searchCard = el("section", { className: "card wide", "aria-labelledby": "insight-search-title" },
      el("h2", { id: "insight-search-title", text: "Search messages" }),
      el("p", { className: "hint", text: 'Words in any form ("shoe" finds "shoes"); "a phrase", -without, or.' }),
      searchForm,
      el("p", { id: "insight-search-status", className: "hint", role: "status" }),
      el("ol", { id: "insight-results", className: "hits", dataset: { testid: "search-results" } }),
      el("nav", { className: "pager", "aria-label": "Result pages", hidden: true, id: "insight-pager" },
        el("button", { type: "button", className: "secondary", id: "insight-prev", text: "Previous" }),
        el("span", { id: "insight-page" }),
        el("button", { type: "button", className: "secondary", id: "insight-next", text: "Next" })));

    const conversation = el("section", { className: "card wide", id: "insight-conversation", hidden: true, "aria-labelledby": "insight-conversation-title" },
      el("div", { className: "section-head" },
        el("h2", { id: "insight-conversation-title", tabindex: "-1", text: "Conversation" }),
        el("button", { type: "button", className: "secondary", id: "insight-conversation-close", text: "Close" })),
      el("p", { className: "hint", id: "insight-conversation-meta" }),
      el("ul", { className: "chips", id: "insight-chips", "aria-label": "Tags", dataset: { testid: "conversation-tags" } }),
      el("form", { id: "insight-tag-form", className: "inline" },
        field("Add a tag", el("input", { id: "insight-new-tag", type: "text", autocomplete: "off", maxlength: 50 })),
        el("button", { type: "submit", text: "Add tag" })),
      el("p", { id: "insight-tag-status", className: "hint", role: "status" }),
      el("ol", { className: "transcript", id: "insight-transcript", dataset: { testid: "conversation" } }));

    const tags = el("section", { className: "card", "aria-labelledby": "insight-tags-title" },
      el("h2", { id: "insight-tags-title", text: "Tags" }),
      el("p", { className: "empty", id: "insight-tags-empty", text: "No tags yet." }),
      el("ul", { className: "tag-list", id: "insight-tags", dataset: { testid: "tag-list" } }),
      el("h3", { id: "insight-tagged-title", hidden: true }),
      el("ul", { className: "tagged", id: "insight-tagged", dataset: { testid: "tagged" } }));

    const shopper = el("section", { className: "card", "aria-labelledby": "insight-shopper-title" },
      el("h2", { id: "insight-shopper-title", text: "A shopper's data" }),
      el("p", { className: "hint", text: "Everything stored about one shopper: export it, or delete it on their request (an audit record keeps what was deleted, not the content)." }),
      el("form", { id: "insight-shopper-form", className: "inline" },
        field("Find by", select("insight-shopper-kind", [["email", "Email"], ["userId", "User id"]])),
        field("Email or user id", el("input", { id: "insight-shopper-id", type: "text", autocomplete: "off", required: true }), true)),
      el("div", { className: "actions" },
        el("button", { type: "button", className: "secondary", id: "insight-export-json", text: "Export JSON" }),
        el("button", { type: "button", className: "secondary", id: "insight-export-text", text: "Export text" }),
        el("button", { type: "button", className: "danger", id: "insight-delete", text: "Delete…" })),
      el("div", { id: "insight-confirm", className: "confirm", role: "alertdialog", "aria-labelledby": "insight-confirm-text", hidden: true },
        el("p", { id: "insight-confirm-text" }),
        el("div", { className: "actions" },
          el("button", { type: "button", className: "danger", id: "insight-confirm-yes", text: "Delete for good" }),
          el("button", { type: "button", className: "secondary", id: "insight-confirm-no", text: "Cancel" }))),
      el("p", { id: "insight-shopper-status", className: "hint", role: "status", dataset: { testid: "shopper-status" } }));

    $("insights").replaceChildren(searchCard, conversation, tags, shopper);
    searchForm.addEventListener("submit", (event) => {
      event.preventDefault();
      page = 1;
      search();
    });
    $("insight-prev").addEventListener("click", () => { page -= 1; search(); });
    $("insight-next").addEventListener("click", () => { page += 1; search(); });
    $("insight-conversation-close").addEventListener("click", () => {
      openSession = null;
      conversation.hidden = true;
      $("insight-search-title").focus();
    });
    $("insight-tag-form").addEventListener("submit", addTag);
    $("insight-export-json").addEventListener("click", () => exportShopper("json"));
    $("insight-export-text").addEventListener("click", () => exportShopper("text"));
    $("insight-delete").addEventListener("click", askDelete);
    $("insight-confirm-yes").addEventListener("click", confirmDelete);
    $("insight-confirm-no").addEventListener("click", () => {
      pendingDelete = null;
      $("insight-confirm").hidden = true;
      say("insight-shopper-status", "Nothing deleted.");
    });
    $("insight-shopper-form").addEventListener("submit", (event) => event.preventDefault());
  }

  // --- search ------------------------------------------------------------------------------

  function searchParams() {
    const params = new URLSearchParams({ q: $("insight-q").value, sort: $("insight-sort").value, page: String(page), limit: String(PAGE_SIZE) });
    const optional = { since: $("insight-since").value, until: $("insight-until").value, tag: $("insight-tag").value, rating: $("insight-rating").value, shopper: $("insight-shopper").value.trim(),
      handoff: $("insight-handoff").value, state: $("insight-state").value, agent: $("insight-agent").value.trim() };
    for (const [name, value] of Object.entries(optional)) if (value) params.set(name, value);
    if ($("insight-until").value) {  // the day chosen is included
      const next = new Date(`${$("insight-until").value}T00:00:00Z`);
      next.setUTCDate(next.getUTCDate() + 1);
      params.set("until", next.toISOString().slice(0, 10));
    }
    if ($("insight-status").value !== "any") params.set("status", $("insight-status").value);
    if ($("insight-sender").value !== "any") params.set("sender", $("insight-sender").value);
    return params;
  }

  async function search() {
    const params = searchParams();
    let data;
    say("insight-search-status", "Searching…");
    try {
      data = await getJSON(`/search?${params}`);
    } catch (error) {
      say("insight-search-status", `Search failed: ${error.message}`, true);
      return;
    }
    lastQuery = params;
    const count = data.results.length;
    const first = (data.page - 1) * data.limit + 1;
    say("insight-search-status", count
      ? `Matches ${first}–${first + count - 1}${data.hasMore ? " (more on the next page)" : ""}, ${data.sort === "relevance" ? "most relevant" : "newest"} first.`
      : "No message matches.");
    $("insight-results").replaceChildren(...data.results.map(hitItem));
    $("insight-pager").hidden = data.page === 1 && !data.hasMore;
    $("insight-prev").disabled = data.page === 1;
    $("insight-next").disabled = !data.hasMore;
    $("insight-page").textContent = `Page ${data.page}`;
  }

  function hitItem(hit) {
    const snippet = el("p", { className: "snippet" },
      ...hit.snippet.map((s) => (s.match ? el("mark", { text: s.text }) : document.createTextNode(s.text))));
    const open = el("button", { type: "button", className: "link", text: "Open conversation" });
    open.addEventListener("click", () => showConversation(hit.sessionId, hit.messageId, hit.terms));
    return el("li", { className: "hit", dataset: { testid: "search-hit", sessionId: hit.sessionId } },
      el("p", { className: "meta" },
        el("span", { className: "who", text: speaker(hit.senderType) }),
        el("span", { text: ` · ${when(hit.createdAt)} · ${who(hit)}` }),
        ...hit.tags.map((t) => el("span", { className: "chip small", text: t }))),
      snippet, open);
  }

  // --- a conversation and its tags ---------------------------------------------------------

  async function showConversation(sessionId, messageId = null, terms = []) {
    let data;
    try {
      data = await getJSON(`/sessions/${encodeURIComponent(sessionId)}/transcript`);
    } catch (error) {
      say("insight-search-status", `Could not load the conversation: ${error.message}`, true);
      return;
    }
    openSession = sessionId;
    const s = data.session;
    $("insight-conversation-meta").textContent =
      `Session ${s.id} with ${who(s)}, ${s.status}, started ${when(s.createdAt)}; ${data.messages.length} message(s).`;
    renderChips(s.tags || []);
    let hitNode = null;
    const items = data.messages.map((m) => {
      const isHit = m.id === messageId;
      const content = isHit || m.senderType !== "bot" || !window.chatdMarkdown
        ? el("p", { className: "content" }, ...(isHit ? marked(m.content, terms) : [document.createTextNode(m.content)]))
        : el("div", { className: "content md" }, window.chatdMarkdown.render(m.content));
      const item = el("li", { className: `msg ${m.senderType}${isHit ? " hit-msg" : ""}`, dataset: { messageId: m.id } },
        el("p", { className: "meta" },
          el("span", { className: "who", text: speaker(m.senderType) }),
          el("span", { text: ` · ${when(m.createdAt)} · #${m.seq}${isHit ? " · the match" : ""}` })),
        content);
      if (isHit) {
        item.setAttribute("aria-current", "true");
        hitNode = item;
      }
      return item;
    });
    $("insight-transcript").replaceChildren(...items);
    say("insight-tag-status", "");
    $("insight-conversation").hidden = false;
    $("insight-conversation-title").focus();
    if (hitNode) hitNode.scrollIntoView({ block: "center" });
  }

  function renderChips(tags) {
    $("insight-chips").replaceChildren(...tags.map((tag) =>
      el("li", { className: "chip", dataset: { testid: "conversation-tag" } },
        el("span", { text: tag }),
        el("button", { type: "button", className: "chip-remove", "aria-label": `Remove tag ${tag}`, text: "×",
          onclick: () => changeTag("DELETE", tag) }))));
  }

  async function addTag(event) {
    event.preventDefault();
    const tag = $("insight-new-tag").value.trim();
    if (tag) await changeTag("PUT", tag);
  }

  async function changeTag(method, tag) {
    if (!openSession) return;
    try {
      const response = await api(`/sessions/${encodeURIComponent(openSession)}/tags/${encodeURIComponent(tag)}`, { method });
      const data = await response.json();
      renderChips(data.tags);
      if (method === "PUT") $("insight-new-tag").value = "";
      say("insight-tag-status", method === "PUT" ? `Tagged ${tag}.` : `Removed ${tag}.`);
      loadTags();
    } catch (error) {
      say("insight-tag-status", error.message, true);
    }
  }

  // --- the tag list ------------------------------------------------------------------------

  async function loadTags() {
    let data;
    try {
      data = await getJSON("/tags?limit=100");
    } catch {
      return;  // the next change tries again
    }
    $("insight-tags-empty").hidden = data.tags.length > 0;
    $("insight-tags").replaceChildren(...data.tags.map((t) =>
      el("li", {}, el("button", { type: "button", className: "secondary tag-button", dataset: { testid: "tag-count" },
        "aria-label": `${t.tag}: ${t.sessions} conversation(s); list them`, onclick: () => showTagged(t.tag) },
      el("span", { text: t.tag }), el("span", { className: "count", text: String(t.sessions) })))));
    const chosen = $("insight-tag").value;
    $("insight-tag").replaceChildren(el("option", { value: "", text: "Any tag" }),
      ...data.tags.map((t) => el("option", { value: t.tag, text: `${t.tag} (${t.sessions})` })));
    $("insight-tag").value = data.tags.some((t) => t.tag === chosen) ? chosen : "";
  }

  async function showTagged(tag) {
    let data;
    try {
      data = await getJSON(`/sessions?${new URLSearchParams({ tag, status: "all", limit: "50" })}`);
    } catch (error) {
      say("insight-tag-status", error.message, true);
      return;
    }
    $("insight-tagged-title").hidden = false;
    $("insight-tagged-title").textContent = `Tagged ${tag}: ${data.sessions.length} conversation(s)`;
    $("insight-tagged").replaceChildren(...data.sessions.map((s) =>
      el("li", { dataset: { testid: "tagged-session" } },
        el("button", { type: "button", className: "link", text: `${who(s)} · ${when(s.updatedAt)}`,
          "aria-label": `Open the conversation with ${who(s)}`, onclick: () => showConversation(s.id) }))));
    $("insight-tag").value = tag;  // and a search narrows to it
  }

  // --- a shopper's data --------------------------------------------------------------------

  function shopper() {
    const value = $("insight-shopper-id").value.trim();
    if (!value) {
      say("insight-shopper-status", "Enter the shopper's email or user id.", true);
      $("insight-shopper-id").focus();
      return null;
    }
    return { [$("insight-shopper-kind").value]: value };
  }

  async function exportShopper(format) {
    const who = shopper();
    if (!who) return;
    try {
      const response = await postJSON("/shoppers/export", { ...who, format });
      await session.download(response, `shopper-data.${format === "text" ? "txt" : "json"}`);
      say("insight-shopper-status", "Exported.");
    } catch (error) {
      say("insight-shopper-status", `Export failed: ${error.message}`, true);
    }
  }

  async function askDelete() {
    const who = shopper();
    if (!who) return;
    let data;
    try {
      data = await (await postJSON("/shoppers/export", { ...who, format: "json" })).json();
    } catch (error) {
      say("insight-shopper-status", error.message, true);
      return;
    }
    const messages = data.sessions.reduce((n, s) => n + s.messages.length, 0);
    const name = Object.values(who)[0];
    pendingDelete = who;
    $("insight-confirm-text").textContent = data.sessions.length
      ? `Delete everything stored about ${name}: ${data.sessions.length} conversation(s) with ${messages} message(s), their queued deliveries and tags? This cannot be undone.`
      : `Nothing is stored about ${name}. Record the request as answered?`;
    $("insight-confirm").hidden = false;
    $("insight-confirm-no").focus();
  }

  async function confirmDelete() {
    if (!pendingDelete) return;
    const who = pendingDelete;
    pendingDelete = null;
    $("insight-confirm").hidden = true;
    try {
      const data = await (await postJSON("/shoppers/delete", { ...who, confirm: true })).json();
      const deleted = Object.entries(data.erasure.deleted).filter(([, n]) => n).map(([t, n]) => `${t} ${n}`);
      say("insight-shopper-status", `Deleted ${deleted.join(", ") || "nothing"}; audit record ${data.erasure.id}.`);
      loadTags();
      if (lastQuery) search();
    } catch (error) {
      say("insight-shopper-status", `Delete failed: ${error.message}`, true);
    }
  }

  // --- shown with the dashboard ------------------------------------------------------------

  function init() {
    const dashboard = $("dashboard");
    const root = $("insights");
    if (!dashboard || !root) return;
    const sync = () => {
      if (dashboard.hidden) {
        root.replaceChildren();  // signed out: nothing of the data stays in the page
        [page, lastQuery, openSession, pendingDelete] = [1, null, null, null];
      } else if (!root.firstChild) {
        build();
        loadTags();
      }
    };
    new MutationObserver(sync).observe(dashboard, { attributes: true, attributeFilter: ["hidden"] });
    sync();
  }

  init();
})();
