/* chatd widget (joined to widget.js): End chat, and the rating asked for once a chat ended, if
 * chatd says so (ratingRequested). The widget forgets an ended chat: a reload asks no more. */
const chatdCsat = (w, el) => {
  const S = { endChat: "End chat", ended: "This chat has ended.", rateAsk: "How was this chat?",
    rateLabels: ["Very poor", "Poor", "OK", "Good", "Very good"], rateComment: "Comment (optional)",
    rateSend: "Send rating", rateSkip: "No thanks", rateThanks: "Thanks for your rating!", ratePick: "Choose 1 to 5." };
  const t = () => ({ ...S, ...w.strings });
  const done = new Set(); // ids of the chats seen ending
  let asking = null; // the ended session asked about
  let shown = null; // the id of the chat the panel is about
  const call = async (s, path, body) => {
    const r = await fetch(`${w.server}/api/chat/${path}`, { method: body ? "POST" : "GET",
      headers: { Authorization: `Bearer ${s.token}`, "Content-Type": "application/json" }, body: body && JSON.stringify(body) });
    const data = await r.json().catch(() => ({}));
    if (r.ok) return data;
    throw data.error || {};
  };
  const end = el("button", { type: "button", class: "icon end", onclick: () => close() });
  const note = el("p", { role: "status" });
  const legend = el("legend", { id: "csat-q" });
  const radios = [1, 2, 3, 4, 5].map((n) => el("input", { type: "radio", name: "rating", value: n, class: "sr" }));
  const comment = el("textarea", { rows: "2", maxlength: "1000" });
  const send = el("button", { type: "submit", class: "send" });
  const skip = el("button", { type: "button", class: "icon", onclick: () => finish("") });
  const error = el("p", { class: "status failed", role: "alert" });
  const ask = el("fieldset", { onchange: () => { error.textContent = ""; } }, legend, el("div", {}, ...radios.map((r) => el("label", {}, r,
    el("span", { "aria-hidden": "true", text: r.value })))), comment, el("div", {}, send, skip), error);
  const panel = el("form", { class: "csat", "data-testid": "csat", "aria-labelledby": "csat-q", hidden: true,
    onsubmit: (e) => { e.preventDefault(); rate(); } }, note, ask);

  /** Session `s` ended: let it go; ask for a rating if chatd says so, once. */
  async function over(s, requested) {
    if (!s || done.has(s.id)) return;
    done.add(s.id);
    const focused = w.isOpen && w.root.activeElement; // now: End chat goes
    if (w.session && w.session.id === s.id) { w.stopTransport(); w.session = null; w.save(); }
    if (requested === undefined) requested = await call(s, `session/${s.id}`).then((v) => v.ratingRequested, () => false);
    asking = requested ? s : null;
    shown = s.id;
    radios.forEach((r) => { r.checked = false; });
    comment.value = error.textContent = "";
    ask.hidden = !asking;
    panel.hidden = false;
    note.textContent = t().ended;
    w.render();
    if (focused) (asking ? radios[0] : w.ui.input).focus();
  }

  async function close() {
    const s = w.session;
    if (!s || end.busy) return;
    end.busy = true; // not disabled: that would drop the focus the prompt takes
    try { await over(s, (await call(s, `session/${s.id}/close`, {})).ratingRequested); } catch { finish(t().error); }
    end.busy = false;
  }

  async function rate() {
    const picked = radios.find((r) => r.checked);
    if (!picked) { error.textContent = t().ratePick; radios[0].focus(); return; }
    try {
      await call(asking, "rating", { sessionId: asking.id, rating: +picked.value, comment: comment.value.trim() || null });
      finish(t().rateThanks);
    } catch (e) { if (e.code === "already_rated") finish(t().rateThanks); else error.textContent = t().error; }
  }

  /** Rated (thanks), failed or dismissed (""): the message box takes the focus. */
  function finish(text) {
    asking = null;
    ask.hidden = true;
    note.textContent = text;
    panel.hidden = !text;
    w.ui.input.focus();
  }

  return {
    end,
    panel,
    render() {
      const s = t();
      [end.textContent, legend.textContent, send.textContent, skip.textContent, comment.placeholder, comment.ariaLabel] =
        [s.endChat, s.rateAsk, s.rateSend, s.rateSkip, s.rateComment, s.rateComment];
      end.hidden = !(w.session && w.messages.size);
      radios.forEach((r, i) => { r.ariaLabel = `${i + 1}: ${s.rateLabels[i]}`; });
      if (shown && w.session && w.session.id !== shown && w.messages.size) { // a new chat began
        asking = shown = null;
        panel.hidden = true;
      }
    },
    seen(m) { if (m.metadata && m.metadata.event === "session_closed") over(w.session); },
    lost(s) { over(s); },
  };
};
chatdCsat.css = `
.end { min-width: 0; padding: 0 10px; margin-left: auto; border: 1px solid; }
.csat { padding: 10px 14px 0; border-top: 1px solid var(--line); }
.csat p { margin: 0 0 8px; }
.csat fieldset { border: 0; margin: 0; padding: 0; display: grid; gap: 8px; }
.csat legend { font-weight: 600; padding: 0 0 8px; }
.csat div { display: flex; gap: 6px; }
.csat label { flex: 1; }
.csat span { display: grid; place-items: center; min-height: 44px; border: 1px solid var(--accent); border-radius: 10px; color: var(--accent); }
.csat :checked + span { background: var(--accent); color: var(--accent-fg); }
.csat :focus-visible + span { outline: 3px solid var(--accent); outline-offset: 2px; }
.csat button { padding: 0 14px; border: 0; border-radius: 10px; }
`;
