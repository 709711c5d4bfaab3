/* chatd widget (joined to widget.js): under the notice that nobody can answer a handoff
 * (metadata.conversation.event "nobody_available"), a form to leave an email for the staff
 * (POST /api/chat/contact-email); gone once one was left. */
const chatdContact = (w, el) => {
  const ev = (m) => ((m.metadata || {}).conversation || {}).event;
  return (node, m) => {
    if (ev(m) === "email_left") w.root.querySelectorAll(".contact").forEach((f) => f.remove()); // built before it came
    if (ev(m) !== "nobody_available" || !w.session || [...w.messages.values()].some((x) => x.seq > m.seq && ev(x) === "email_left")) return;
    const s = { emailAsk: "Your email", emailSend: "Send", emailBad: "Please enter a valid email address.", ...w.strings };
    const input = el("input", { type: "email", required: true, maxlength: "254", autocomplete: "email",
      "data-testid": "contact-email", "aria-label": s.emailAsk, placeholder: s.emailAsk });
    const error = el("p", { class: "status failed", role: "alert", "data-testid": "contact-error" });
    const form = el("form", { class: "contact", "data-testid": "contact-form", novalidate: true, onsubmit: async (e) => {
      e.preventDefault();
      const r = input.checkValidity() && await fetch(`${w.server}/api/chat/contact-email`, { method: "POST",
        headers: { ...w.auth(), "Content-Type": "application/json" },
        body: JSON.stringify({ sessionId: w.session.id, email: input.value.trim() }) }).catch(() => null);
      if (r && r.ok) form.remove(); // the confirmation arrives as a message
      else error.textContent = !r || r.status === 400 ? s.emailBad : s.disconnected;
    } }, el("div", {}, input, el("button", { type: "submit", "data-testid": "contact-send", text: s.emailSend })), error);
    node.append(form);
  };
};
chatdContact.css = `
.contact div { display: flex; gap: 6px; margin-top: 8px; }
.contact input { flex: 1; min-width: 0; min-height: 40px; padding: 0 10px; border: 1px solid var(--line); border-radius: 10px; font: inherit; }
.contact button { padding: 0 14px; border: 0; border-radius: 10px; }
`;
