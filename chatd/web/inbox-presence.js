// The staff inbox's "who is online" line (GET /api/inbox/presence): the agents with an inbox
// open anywhere, and whether it is within business hours (else when the shop is back). Read
// every few seconds while signed in; presence lives in the database, so every chatd agrees.
"use strict";

(() => {
  const EVERY_MS = 10000;
  const line = document.getElementById("presence");
  const desk = document.getElementById("desk");
  const fmt = new Intl.DateTimeFormat(undefined, { weekday: "short", hour: "2-digit", minute: "2-digit" });

  async function refresh() {
    if (desk.hidden) { line.textContent = ""; return; }
    const response = await fetch("/api/inbox/presence", { cache: "no-store" }).catch(() => null);
    if (!response || !response.ok) return;
    const p = await response.json();
    const who = p.agents.length ? `Online: ${p.agents.map((a) => a.name).join(", ")}` : "Nobody online";
    const hours = p.open ? "open now" : p.backAt ? `closed, back ${fmt.format(new Date(p.backAt))}` : "closed";
    line.textContent = `${who} · ${hours}`;
    line.dataset.online = String(p.agents.length);
  }

  new MutationObserver(refresh).observe(desk, { attributes: true, attributeFilter: ["hidden"] });
  // The live socket (re)connected: this agent counts as online a moment later.
  new MutationObserver(() => setTimeout(refresh, 1000))
    .observe(document.getElementById("live"), { childList: true, characterData: true, subtree: true });
  setInterval(refresh, EVERY_MS);
  refresh();
})();
