// The inbox's tools, beside inbox.js (whose API and CSRF token it uses, window.chatdInbox):
// - canned responses: "/" at the start of a word in the composer opens a filtered list
//   (arrows move, Enter or Tab inserts, Esc closes); the text replaces "/shortcut", editable;
// - files: the paperclip uploads each file at once to /api/inbox/upload (the conversation's
//   session, while the agent holds it), shown in a tray until the reply takes them;
// - for admins, the canned responses' editor (add, change, delete).
// Every piece of data goes in with textContent or DOM attributes.
"use strict";

(() => {
  const inbox = window.chatdInbox;
  const $ = (id) => document.getElementById(id);
  const { el } = inbox;
  let canned = []; // as GET /api/inbox/canned-responses lists them, by shortcut
  let matches = [];
  let active = 0;
  let slash = null; // {start, end}: where "/word" is in the composer while the list is open

  // --- canned responses in the composer -----------------------------------------------------

  async function loadCanned() {
    try {
      canned = (await inbox.api("/api/inbox/canned-responses")).cannedResponses;
    } catch {
      canned = [];
    }
  }

  /** "/word" ending at the caret, at the start of the text or after a space: its span. */
  function slashAtCaret(input) {
    const caret = input.selectionStart;
    const before = input.value.slice(0, caret);
    const found = /(^|\s)\/([a-z0-9_-]{0,32})$/.exec(before);
    return found ? { start: caret - found[2].length - 1, end: caret, word: found[2] } : null;
  }

  function update() {
    const input = $("reply");
    slash = input.disabled ? null : slashAtCaret(input);
    matches = slash ? canned.filter((c) => c.shortcut.startsWith(slash.word)
      || c.title.toLowerCase().includes(slash.word)) : [];
    if (!matches.length) { close(); return; }
    active = Math.min(active, matches.length - 1);
    $("canned-menu").replaceChildren(...matches.map((c, i) => el("li", {
      role: "option", id: `canned-${i}`, "aria-selected": String(i === active), "data-testid": "canned-option",
      onmousedown: (e) => { e.preventDefault(); active = i; insert(); },
    }, el("strong", { text: `/${c.shortcut}` }), el("span", { text: ` ${c.title}` }))));
    $("canned-menu").hidden = false;
    input.setAttribute("aria-expanded", "true");
    input.setAttribute("aria-activedescendant", `canned-${active}`);
  }

  function close() {
    $("canned-menu").hidden = true;
    $("canned-menu").replaceChildren();
    matches = [];
    active = 0;
    $("reply").setAttribute("aria-expanded", "false");
    $("reply").removeAttribute("aria-activedescendant");
  }

  function insert() {
    const choice = matches[active];
    if (!choice || !slash) return;
    const input = $("reply");
    input.value = input.value.slice(0, slash.start) + choice.content + input.value.slice(slash.end);
    const caret = slash.start + choice.content.length;
    input.setSelectionRange(caret, caret);
    close();
    input.focus();
  }

  $("reply").addEventListener("input", update);
  $("reply").addEventListener("focus", loadCanned); // an admin may have changed them meanwhile
  $("reply").addEventListener("blur", () => setTimeout(close, 150));
  // Captured on the form, so it runs before inbox.js's Enter-sends on the textarea.
  $("composer").addEventListener("keydown", (e) => {
    if (e.target !== $("reply") || $("canned-menu").hidden) return;
    const keys = { ArrowDown: 1, ArrowUp: -1 };
    if (e.key in keys) {
      active = (active + keys[e.key] + matches.length) % matches.length;
      update();
    } else if (e.key === "Enter" || e.key === "Tab") {
      insert();
    } else if (e.key === "Escape") {
      close();
    } else {
      return;
    }
    e.preventDefault();
    e.stopPropagation();
  }, true);

  // --- files --------------------------------------------------------------------------------

  let tray = []; // {name, state: "uploading"|"done"|"error", id, thumb, error, node}

  function renderTray() {
    $("tray").replaceChildren(...tray.map((f) => el("li", { class: `file ${f.state}`, "data-testid": "pending-attachment", "data-state": f.state },
      f.thumb ? el("img", { src: f.thumb, alt: "" }) : null,
      el("span", { text: f.state === "error" ? `${f.name}: ${f.error}` : f.state === "uploading" ? `${f.name} (uploading…)` : f.name }),
      el("button", { type: "button", class: "secondary", "aria-label": `Remove ${f.name}`, "data-testid": "remove-attachment",
        onclick: () => { tray = tray.filter((x) => x !== f); renderTray(); } }, "×"))));
    $("tray").hidden = !tray.length;
  }

  async function upload(file) {
    const entry = { name: file.name, state: "uploading" };
    tray.push(entry);
    renderTray();
    const form = new FormData();
    form.append("sessionId", inbox.openId());
    form.append("file", file, file.name);
    try {
      const data = await inbox.api("/api/inbox/upload", { method: "POST", form });
      Object.assign(entry, { state: "done", id: data.attachmentId, thumb: data.thumbnailUrl || null });
    } catch (e) {
      Object.assign(entry, { state: "error", error: e.message });
    }
    renderTray();
  }

  $("attach").addEventListener("click", () => $("file").click());
  $("file").addEventListener("change", (e) => {
    for (const file of e.target.files) upload(file);
    e.target.value = "";
  });

  window.chatdInboxTools = {
    uploading: () => tray.some((f) => f.state === "uploading"),
    uploaded: () => tray.filter((f) => f.state === "done").map((f) => f.id),
    clear: () => { tray = []; renderTray(); },
  };

  // --- the admins' editor -------------------------------------------------------------------

  function editorRow(c) {
    return el("li", { "data-testid": "canned-row" },
      el("strong", { text: `/${c.shortcut}` }), el("span", { text: ` ${c.title}` }),
      el("button", { type: "button", class: "secondary", "data-testid": "canned-edit", onclick: () => edit(c) }, "Edit"),
      el("button", { type: "button", class: "secondary", "data-testid": "canned-delete", onclick: () => remove(c) }, "Delete"));
  }

  function renderEditor() {
    $("canned-rows").replaceChildren(...canned.map(editorRow));
  }

  function edit(c) {
    $("canned-id").value = c ? c.id : "";
    $("canned-shortcut").value = c ? c.shortcut : "";
    $("canned-title").value = c ? c.title : "";
    $("canned-content").value = c ? c.content : "";
    $("canned-save").textContent = c ? "Save" : "Add";
    $("canned-error").hidden = true;
    if (c) $("canned-shortcut").focus();
  }

  async function remove(c) {
    if (!window.confirm(`Delete /${c.shortcut}?`)) return;
    try {
      await inbox.api(`/api/admin/canned-responses/${c.id}`, { method: "DELETE" });
      await loadCanned();
      renderEditor();
    } catch (e) {
      inbox.notice(e.message);
    }
  }

  $("canned-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const id = $("canned-id").value;
    const body = { shortcut: $("canned-shortcut").value.trim(), title: $("canned-title").value.trim(),
      content: $("canned-content").value };
    try {
      await inbox.api(id ? `/api/admin/canned-responses/${id}` : "/api/admin/canned-responses",
        { method: id ? "PUT" : "POST", body });
      edit(null);
      await loadCanned();
      renderEditor();
    } catch (e) {
      $("canned-error").textContent = e.message;
      $("canned-error").hidden = false;
    }
  });
  $("canned-cancel").addEventListener("click", () => edit(null));

  function showEditor(show) {
    $("canned-admin").hidden = !show;
    $("canned-manage").setAttribute("aria-expanded", String(show));
    if (show) { renderEditor(); $("canned-admin-title").focus(); }
  }

  $("canned-manage").addEventListener("click", () => showEditor($("canned-admin").hidden));
  $("canned-done").addEventListener("click", () => { showEditor(false); $("canned-manage").focus(); });

  document.addEventListener("chatd:signed-in", (e) => {
    $("canned-manage").hidden = e.detail.role !== "admin";
    loadCanned();
  });
  document.addEventListener("chatd:signed-out", () => {
    canned = [];
    $("canned-manage").hidden = true;
    showEditor(false);
  });
})();
