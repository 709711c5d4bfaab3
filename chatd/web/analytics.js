// chatd's analytics page: signs in with the admin token (admin-session.js, shared with /admin),
// reads GET /api/admin/analytics for the chosen period in the browser's time zone and draws
// each chart as SVG, with its numbers in a table beside it (the chart's text alternative) and a
// CSV download. Data goes into the page with textContent and attributes only, never as HTML.
"use strict";

(() => {
  const session = window.chatdAdminSession;
  const SVG = "http://www.w3.org/2000/svg";
  const REFRESH_MS = 60000;
  const $ = (id) => document.getElementById(id);
  const zone = (() => {
    try { return Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC"; } catch { return "UTC"; }
  })();

  // Each chart: which numbers of the answer it draws, and how.
  const CHARTS = [
    { id: "activity", title: "Conversations and messages", kind: "lines", series: [
      ["conversations", "Conversations", "s1"], ["userMessages", "Shopper messages", "s2"],
      ["botMessages", "Bot messages", "s3"]] },
    { id: "answer_time", title: "Bot answer time", kind: "lines", unit: "s", series: [
      ["answerP50Seconds", "Median (p50)", "s1"], ["answerP95Seconds", "p95", "s4"]] },
    { id: "delivery", title: "Delivery failures", kind: "lines", series: [
      ["deadLetters", "Dead letters", "s5"], ["retries", "Retries", "s4"]] },
    // Counts of ratings would not fit the 1-5 scale: they are in the table only.
    { id: "csat", title: "Rating trend", kind: "lines", max: 5, ticks: [1, 2, 3, 4, 5], series: [
      ["ratingAverage", "Average rating (1–5)", "s1"], ["ratings", "Ratings given", "s3", "table only"]] },
    { id: "ratings", title: "Rating distribution", kind: "bars",
      rows: (data) => Object.entries(data.csat.distribution).reverse()
        .map(([value, n]) => [`${value} ${value === "1" ? "star" : "stars"}`, n]) },
    { id: "intents", title: "Top intents", kind: "bars", empty: "No intents in n8n's replies in this period.",
      rows: (data) => data.topIntents.map((i) => [i.name, i.count]) },
  ];

  let query = { range: "7d" };
  let timer = 0;
  let generation = 0;
  let shown = null; // the answer on the page, drawn again at a new width
  let resizing = 0;

  // --- small DOM helpers -------------------------------------------------------------------

  function el(tag, props = {}, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(props)) {
      if (value === undefined || value === null || value === false) continue;
      if (name === "text") node.textContent = String(value);
      else if (name === "className") node.className = value;
      else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
      else node.setAttribute(name, value === true ? "" : String(value));
    }
    node.append(...children.filter((c) => c !== null && c !== undefined));
    return node;
  }

  function svg(tag, attributes = {}, text = null) {
    const node = document.createElementNS(SVG, tag);
    for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, String(value));
    if (text !== null) node.textContent = text;
    return node;
  }

  const fmt = (n, unit) => {
    if (n === null || n === undefined) return "–";
    if (unit === "s" && n === 0) return "0 s";
    if (unit === "s") return n >= 60 ? `${(n / 60).toFixed(1)} min` : `${n < 10 ? n.toFixed(2) : n.toFixed(1)} s`;
    return Number.isInteger(n) ? n.toLocaleString() : n.toFixed(2);
  };

  function label(iso, bucket, long) {
    const date = new Date(iso);
    if (bucket === "day") {
      return date.toLocaleDateString(undefined, long
        ? { weekday: "short", day: "numeric", month: "short", timeZone: zone }
        : { day: "numeric", month: "short", timeZone: zone });
    }
    const time = date.toLocaleTimeString(undefined, { hour: "2-digit", minute: "2-digit", timeZone: zone });
    return long ? `${date.toLocaleDateString(undefined, { day: "numeric", month: "short", timeZone: zone })} ${time}` : time;
  }

  // --- charts ------------------------------------------------------------------------------
  // Drawn at the width of their box in CSS pixels (measured, and again on a resize), so the
  // axis labels keep their 11px on a phone instead of shrinking with a scaled viewBox.

  const lines = (chart) => chart.series.filter((s) => !s[3]);

  // Up to `room` evenly spaced indexes of `n` points, the first and the last among them.
  function spread(n, room) {
    const count = Math.max(1, Math.min(n, room));
    if (count === 1) return [0];
    return [...new Set(Array.from({ length: count }, (_, k) => Math.round((k * (n - 1)) / (count - 1))))];
  }

  // A top for the y axis that halves into whole numbers (counts), or the chart's own.
  const top = (chart, values) => {
    if (chart.max) return chart.max;
    const peak = Math.max(0, ...values);
    if (chart.unit) return peak > 0 ? peak * 1.05 : 1;
    return Math.max(2, Math.ceil(peak / 2) * 2);
  };

  function lineChart(chart, data, titleId, width) {
    const points = data.series;
    const height = 200, left = 48, right = 12, topPad = 12, bottom = 24;
    const values = lines(chart).flatMap(([key]) => points.map((p) => p[key]).filter((v) => v !== null));
    const max = top(chart, values);
    const x = (i) => left + (points.length > 1 ? (i * (width - left - right)) / (points.length - 1) : (width - left - right) / 2);
    const y = (v) => height - bottom - ((height - topPad - bottom) * v) / max;
    const descId = `${chart.id}-desc`;
    const root = svg("svg", { viewBox: `0 0 ${width} ${height}`, width, height, role: "img",
      "aria-labelledby": `${titleId} ${descId}`, class: "chart-svg", "data-testid": `chart-${chart.id}` });
    root.append(svg("desc", { id: descId }, describe(chart, data)));
    for (const value of chart.ticks || [0, max / 2, max]) {
      const at = y(value);
      root.append(svg("line", { x1: left, x2: width - right, y1: at, y2: at, class: "grid" }));
      root.append(svg("text", { x: left - 6, y: at + 4, "text-anchor": "end", class: "axis" }, fmt(value, chart.unit)));
    }
    const dots = points.length <= Math.floor(width / 12);
    lines(chart).forEach(([key, , cls]) => {
      let run = [];
      const flush = () => {
        if (run.length > 1) root.append(svg("polyline", { points: run.join(" "), class: `line ${cls}` }));
        run = [];
      };
      points.forEach((p, i) => {
        if (p[key] === null) { flush(); return; }
        run.push(`${x(i).toFixed(1)},${y(p[key]).toFixed(1)}`);
        if (dots) root.append(svg("circle", { cx: x(i), cy: y(p[key]), r: 2.5, class: `dot ${cls}` }));
      });
      flush();
    });
    const ticks = spread(points.length, Math.floor((width - left - right) / 70) + 1);
    ticks.forEach((i, n) => {
      const anchor = ticks.length === 1 ? "middle" : n === 0 ? "start" : n === ticks.length - 1 ? "end" : "middle";
      root.append(svg("line", { x1: x(i), x2: x(i), y1: height - bottom, y2: height - bottom + 4, class: "grid" }));
      root.append(svg("text", { x: x(i), y: height - 6, "text-anchor": anchor, class: "axis" }, label(points[i].start, data.bucket, false)));
    });
    const legend = el("ul", { className: "legend", "aria-hidden": "true" },
      ...lines(chart).map(([, name, cls]) => el("li", {}, el("span", { className: `swatch ${cls}` }), name)));
    return [root, legend];
  }

  function lineTable(chart, data) {
    return el("table", {},
      el("thead", {}, el("tr", {}, el("th", { scope: "col", text: data.bucket === "day" ? "Day" : "Hour" }),
        ...chart.series.map(([, name]) => el("th", { scope: "col", text: name })))),
      el("tbody", {}, ...data.series.map((p) => el("tr", {},
        el("th", { scope: "row", text: label(p.start, data.bucket, true) }),
        ...chart.series.map(([key]) => el("td", { text: fmt(p[key], chart.unit) }))))));
  }

  function barChart(chart, data, titleId, width) {
    const rows = chart.rows(data);
    if (!rows.length) return [el("p", { className: "empty", text: chart.empty })];
    const row = 26, labelWidth = Math.min(170, Math.round(width * 0.34)), height = rows.length * row + 4;
    const fits = Math.max(6, Math.floor((labelWidth - 8) / 7)); // about 7px a character at 12px
    const max = Math.max(1, ...rows.map(([, n]) => n));
    const descId = `${chart.id}-desc`;
    const root = svg("svg", { viewBox: `0 0 ${width} ${height}`, width, height, role: "img",
      "aria-labelledby": `${titleId} ${descId}`, class: "chart-svg", "data-testid": `chart-${chart.id}` });
    root.append(svg("desc", { id: descId }, rows.map(([name, n]) => `${name}: ${n}`).join("; ")));
    rows.forEach(([name, n], i) => {
      const y = i * row + 4;
      const short = name.length > fits ? `${name.slice(0, fits - 1)}…` : name;
      root.append(svg("text", { x: labelWidth - 8, y: y + 15, "text-anchor": "end", class: "axis name" }, short));
      const w = ((width - labelWidth - 50) * n) / max;
      root.append(svg("rect", { x: labelWidth, y: y + 3, width: Math.max(n ? 2 : 0, w), height: row - 10, class: "bar s1" }));
      root.append(svg("text", { x: labelWidth + w + 6, y: y + 15, class: "axis" }, n.toLocaleString()));
    });
    return [root];
  }

  function barTable(chart, data) {
    const rows = chart.rows(data);
    if (!rows.length) return null;
    return el("table", {},
      el("thead", {}, el("tr", {}, el("th", { scope: "col", text: chart.id === "intents" ? "Intent" : "Rating" }),
        el("th", { scope: "col", text: "Count" }))),
      el("tbody", {}, ...rows.map(([name, n]) => el("tr", {}, el("th", { scope: "row", text: name }), el("td", { text: n.toLocaleString() })))));
  }

  function describe(chart, data) {
    const per = data.bucket === "day" ? "day" : "hour";
    return lines(chart).map(([key, name]) => {
      const values = data.series.map((p) => p[key]).filter((v) => v !== null);
      if (!values.length) return `${name}: no data.`;
      const peak = Math.max(...values);
      const sum = values.reduce((a, b) => a + b, 0);
      return chart.unit || chart.max
        ? `${name}: from ${fmt(Math.min(...values), chart.unit)} to ${fmt(peak, chart.unit)} per ${per}.`
        : `${name}: ${fmt(sum)} in all, at most ${fmt(peak)} in one ${per}.`;
    }).join(" ");
  }

  function card(chart, data) {
    const titleId = `${chart.id}-title`;
    const table = chart.kind === "lines" ? lineTable(chart, data) : barTable(chart, data);
    const csv = el("button", { type: "button", className: "secondary", text: "Download CSV",
      "aria-label": `Download CSV: ${chart.title}`, "data-testid": `csv-${chart.id}`,
      onclick: () => downloadCsv(chart.id) });
    return el("section", { className: "card chart-card", "aria-labelledby": titleId, "data-chart": chart.id },
      el("div", { className: "section-head" }, el("h2", { id: titleId, text: chart.title }), csv),
      el("div", { className: "chart" }),
      table ? el("details", { className: "numbers" }, el("summary", { text: "Show the numbers" }),
        // Focusable: it scrolls, and keyboard users must be able to scroll it.
        el("div", { className: "table-wrap", tabindex: "0", role: "region", "aria-label": `${chart.title}: the numbers` },
          table)) : null);
  }

  // The drawings, in boxes already on the page (their width is known only there).
  function draw(data) {
    for (const chart of CHARTS) {
      const box = document.querySelector(`[data-chart="${chart.id}"] .chart`);
      if (!box) continue;
      const width = Math.max(260, Math.floor(box.clientWidth));
      const titleId = `${chart.id}-title`;
      box.replaceChildren(...(chart.kind === "lines"
        ? lineChart(chart, data, titleId, width) : barChart(chart, data, titleId, width)));
    }
  }

  // --- loading -----------------------------------------------------------------------------

  function params(extra = {}) {
    return new URLSearchParams({ ...query, tz: zone, ...extra });
  }

  async function load() {
    clearTimeout(timer);
    const mine = ++generation;
    let data;
    try {
      data = await session.getJSON(`/analytics?${params()}`);
    } catch (error) {
      if (error instanceof session.AuthError) return;
      $("load-error").textContent = `Could not load the analytics: ${error.message}`;
      $("load-error").hidden = false;
      return;
    }
    if (mine !== generation || !session.token) return;
    $("load-error").hidden = true;
    render(data);
    $("refresh-status").textContent = `Updated ${new Date().toLocaleTimeString()}`;
    timer = setTimeout(load, REFRESH_MS);
  }

  function render(data) {
    const t = data.totals;
    $("sum-conversations").textContent = fmt(t.conversations);
    $("sum-user").textContent = fmt(t.userMessages);
    $("sum-answers").textContent = fmt(t.answers);
    $("sum-p50").textContent = fmt(t.answerP50Seconds, "s");
    $("sum-p95").textContent = fmt(t.answerP95Seconds, "s");
    $("sum-dead").textContent = fmt(t.deadLetters);
    $("sum-ratings").textContent = fmt(data.csat.count);
    $("sum-csat").textContent = data.csat.average === null ? "–" : `${data.csat.average.toFixed(2)} / 5`;
    const last = new Date(new Date(data.end).getTime() - 1);
    $("period").textContent = `${label(data.start, "hour", true)} to ${label(last.toISOString(), "hour", true)}` +
      ` (${zone}), per ${data.bucket}.`;
    // Open tables stay open across a refresh.
    const open = new Set([...document.querySelectorAll("details.numbers[open]")].map((d) => d.closest("[data-chart]").dataset.chart));
    const cards = CHARTS.map((chart) => card(chart, data));
    cards.forEach((c) => { if (open.has(c.dataset.chart)) c.querySelector("details")?.setAttribute("open", ""); });
    $("charts").replaceChildren(...cards);
    shown = data;
    draw(data);
  }

  async function downloadCsv(chart) {
    try {
      const response = await session.api(`/analytics?${params({ format: "csv", chart })}`);
      await session.download(response, `chatd-${chart}.csv`);
    } catch (error) {
      if (!(error instanceof session.AuthError)) {
        $("load-error").textContent = `Download failed: ${error.message}`;
        $("load-error").hidden = false;
      }
    }
  }

  function choose(next) {
    query = next;
    for (const button of document.querySelectorAll("[data-range]")) {
      button.setAttribute("aria-pressed", String(button.dataset.range === next.range));
    }
    load();
  }

  // --- signing in and out ------------------------------------------------------------------

  async function signIn(event) {
    event.preventDefault();
    const value = $("token").value.trim();
    if (!value) {
      showAuthError("Enter the admin token.");
      return;
    }
    try {
      await session.signIn(value, `/analytics?${params()}`);
    } catch (error) {
      if (!(error instanceof session.AuthError)) showAuthError(`chatd did not answer: ${error.message}`);
      return;
    }
    $("token").value = "";
    start();
  }

  function start() {
    $("auth-error").hidden = true;
    $("sign-in").hidden = true;
    $("insights").hidden = false;
    $("sign-out").hidden = false;
    load();
  }

  function showAuthError(message) {
    $("auth-error").textContent = message;
    $("auth-error").hidden = false;
    $("token").focus();
  }

  function signedOut(message) {
    clearTimeout(timer);
    generation++;
    $("insights").hidden = true;
    $("sign-out").hidden = true;
    $("sign-in").hidden = false;
    $("refresh-status").textContent = "";
    $("charts").replaceChildren();
    shown = null;
    if (message) showAuthError(message);
    else {
      $("auth-error").hidden = true;
      $("token").focus();
    }
  }

  function init() {
    session.onSignOut(signedOut);
    window.addEventListener("resize", () => {
      clearTimeout(resizing);
      resizing = setTimeout(() => { if (shown && !$("insights").hidden) draw(shown); }, 150);
    });
    $("token-form").addEventListener("submit", signIn);
    $("sign-out").addEventListener("click", () => session.signOut(""));
    for (const button of document.querySelectorAll("[data-range]")) {
      button.addEventListener("click", () => choose({ range: button.dataset.range }));
    }
    const today = new Date();
    const iso = (d) => `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, "0")}-${String(d.getDate()).padStart(2, "0")}`;
    $("end").value = iso(today);
    $("start").value = iso(new Date(today.getTime() - 13 * 86400000));
    $("custom").addEventListener("submit", (event) => {
      event.preventDefault();
      if (!$("start").value || !$("end").value) return;
      choose({ start: $("start").value, end: $("end").value });
    });
    if (session.token) start();
    else $("token").focus();
  }

  init();
})();
