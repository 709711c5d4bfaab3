/* chatd's Markdown subset, rendered by building DOM nodes: text is never parsed as HTML.
 *
 * Paragraphs, line breaks, **bold** __bold__, *italic* _italic_, `code`, ``` code blocks,
 * bullet and numbered lists (nested by indentation), [links](url), <url> and bare URLs (http,
 * https, mailto; any other link stays text). Headings become bold paragraphs, a rule (---) ends
 * a paragraph, the rest is text: the output holds only p br strong em code pre ul ol li a.
 * Linear time: one pass over the lines, one over each block's characters, then CommonMark's
 * emphasis matching with its bounds. {streaming: true}: the last block's unclosed `code`,
 * **bold** and *italic* show as if closed (a reply still arriving).
 * Shared without a build step: the admin page loads /markdown.js, and chatd serves /widget.js
 * as this file and widget.js in one function scope (chatd/http/routes_web.py).
 */
const chatdMarkdown = (() => {
  "use strict";

  const MAX_DEPTH = 6; // of nested lists: a deeper marker is text
  const MAX_URL = 2048; // a link's (destination "title") is looked for this far, no further
  const MAX_SPANS = 200; // bold and italic in one block, hence their depth (slow to lay out)
  const TOKEN = /[\\`*_[\]\n<]|(?<![\p{L}\p{N}])(?:https?:\/\/|mailto:)/giu;
  const LINK_START = /(?<![\p{L}\p{N}])(?:https?:\/\/|mailto:)/giu;
  const SCHEME = /(?:https?:\/\/|mailto:)/iy;
  const SPECIAL = new Set("\\`*_[]\n<");
  const URL_STOP = /[\s<>"'`]/;
  const SPACE = /\s/;
  const PUNCT = /[\p{P}\p{S}]/u;
  const ESCAPABLE = /[!-/:-@[-`{-~]/;
  const ITEM = /^(?:[-*+]|(\d{1,9})[.)])[ \t]+/;
  const HEADING = /^#{1,6}(?:[ \t]|$)/;
  const FENCE = /^(`{3,}|~{3,})(.*)$/;
  const BREAK = /^([-*_])(?:[ \t]*\1){2,}[ \t]*$/;
  // A character's kind for emphasis: 1 whitespace, 2 punctuation, 0 other (ASCII by table: hot)
  const KIND = (c) => (SPACE.test(c) ? 1 : PUNCT.test(c) ? 2 : 0);
  const ASCII = Array.from({ length: 128 }, (_, i) => KIND(String.fromCharCode(i)));
  const kind = (c) => (c === undefined ? 1 : c.charCodeAt(0) < 128 ? ASCII[c.charCodeAt(0)] : KIND(c));

  /** An absolute URL whose scheme is one of `schemes` (by default http, https, mailto), or null. */
  function safeUrl(value, schemes = ["http:", "https:", "mailto:"]) {
    if (typeof value !== "string" || /[\u0000-\u001f\s]/.test(value.trim())) return null;
    let url;
    try { url = new URL(value.trim()); } catch { return null; }
    return schemes.includes(url.protocol) ? url.href : null;
  }

  function h(tag, ...children) {
    const node = document.createElement(tag);
    node.append(...children);
    return node;
  }

  function anchor(href) {
    const a = h("a");
    a.setAttribute("href", href);
    a.setAttribute("target", "_blank");
    a.setAttribute("rel", "noopener noreferrer");
    return a;
  }

  // ---- blocks: one pass over the lines ---------------------------------------------------

  /** The tree {blocks} of {type: para | heading | code | list}; a list's items are {blocks}. */
  function parse(source) {
    const root = { blocks: [] };
    const open = [{ box: root, content: 0 }]; // the root, then each open list item
    let para = null; // the paragraph a next line continues, "lazily"
    let fence = null; // the open code block
    let blank = false;
    const top = () => open[open.length - 1];
    const add = (block) => { top().box.blocks.push(block); return block; };
    const closeTo = (indent) => { while (open.length > 1 && indent < top().content) open.pop(); };

    for (const raw of source.split(/\r\n?|\n/)) {
      const line = raw.replace(/^[ \t]+/, (w) => w.replace(/\t/g, "    "));
      let body = line.trim();
      let indent = line.length - line.trimStart().length;
      if (fence) {
        if (body.length >= fence.size && !body.replaceAll(fence.char, "")) fence = null;
        else fence.lines.push(line.slice(Math.min(indent, fence.indent)));
        continue;
      }
      if (!body) { blank = true; para = null; continue; }
      for (let m; (m = !BREAK.test(body) && ITEM.exec(body));) {
        const number = m[1] === undefined ? null : Number(m[1]);
        // Only a list from 1 may interrupt a paragraph ("in\n2024. we" stays text).
        if (para && !blank && number !== null && number !== 1 && indent >= top().content) break;
        closeTo(indent);
        if (open.length > MAX_DEPTH) break;
        const blocks = top().box.blocks;
        let list = blocks[blocks.length - 1];
        if (!list || list.type !== "list" || list.ordered !== (number !== null)) {
          list = add({ type: "list", ordered: number !== null, start: number ?? 1, items: [] });
        }
        const item = { blocks: [] };
        list.items.push(item);
        indent += m[0].length;
        open.push({ box: item, content: indent });
        body = body.slice(m[0].length);
        para = null;
      }
      const f = FENCE.exec(body);
      if (f && !(f[1][0] === "`" && f[2].includes("`"))) {
        closeTo(indent);
        fence = add({ type: "code", lines: [], char: f[1][0], size: f[1].length, indent });
      } else if (HEADING.test(body)) {
        const text = body.replace(/^#+/, "").replace(/(?:^|[ \t])#+$/, "").trim();
        closeTo(indent);
        if (text) add({ type: "heading", text });
      } else if (!BREAK.test(body)) {
        if (para && !blank) para.lines.push(body);
        else { closeTo(indent); para = add({ type: "para", lines: [body] }); }
        blank = false;
        continue;
      }
      para = null;
      blank = false;
    }
    return root;
  }

  function lastLeaf(root) {
    let block = root.blocks[root.blocks.length - 1];
    while (block && block.type === "list") {
      const item = block.items[block.items.length - 1];
      block = item.blocks[item.blocks.length - 1];
    }
    return block;
  }

  function renderBlock(block, last) {
    if (block.type === "para") return inline(block.lines.join("\n"), h("p"), block === last);
    if (block.type === "heading") return h("p", inline(block.text, h("strong"), block === last));
    if (block.type === "code") return h("pre", h("code", block.lines.join("\n")));
    const list = h(block.ordered ? "ol" : "ul");
    if (block.ordered && block.start !== 1) list.setAttribute("start", String(block.start));
    for (const item of block.items) {
      const li = list.appendChild(h("li"));
      const [first, ...rest] = item.blocks;
      const tight = first && first.type === "para" && rest.every((b) => b.type === "list");
      if (tight) inline(first.lines.join("\n"), li, first === last); // no <p> in a tight item
      for (const b of tight ? rest : item.blocks) li.append(renderBlock(b, last));
    }
    return list;
  }

  // ---- inlines: one pass over a block's text, then emphasis -------------------------------
  // Built as light nodes first (tag null: text), in linked lists, so enclosing a run of them is
  // O(1); DOM nodes are made once, at the end. A delimiter run's node is also its stack entry.

  const light = (tag, text = "") => ({
    tag, text, href: "", first: null, last: null, prev: null, next: null,
    c: "", n: 0, orig: 0, canOpen: false, canClose: false, under: null, over: null,
  });

  function append(box, node) {
    node.prev = box.last;
    if (box.last) box.last.next = node; else box.first = node;
    return (box.last = node);
  }

  function detach(box, node) {
    if (node.prev) node.prev.next = node.next; else box.first = node.next;
    if (node.next) node.next.prev = node.prev; else box.last = node.prev;
  }

  /** Moves the nodes of `line` after `from` and before `to` (null: the end) into `box`. */
  function enclose(line, from, to, box) {
    if (from.next !== to) {
      box.first = from.next;
      box.last = to ? to.prev : line.last;
      box.first.prev = box.last.next = null;
    }
    box.prev = from;
    box.next = to;
    from.next = box;
    if (to) to.prev = box; else line.last = box;
    return box;
  }

  /** Light nodes into DOM nodes under `into`; an anchor within an anchor gives its text only. */
  function materialize(line, into) {
    const stack = [{ node: line.first, into, inLink: false }];
    while (stack.length) {
      const top = stack[stack.length - 1];
      let text = "";
      for (; top.node && top.node.tag === null; top.node = top.node.next) text += top.node.text;
      if (text) top.into.append(text);
      const node = top.node;
      if (!node) { stack.pop(); continue; }
      top.node = node.next;
      const link = node.tag === "a";
      const parent = link && top.inLink ? top.into : top.into.appendChild(link ? anchor(node.href) : h(node.tag));
      stack.push({ node: node.first, into: parent, inLink: top.inLink || link });
    }
    return into;
  }

  /** Where a bare URL from `from` ends: before trailing punctuation and an unpaired ")". */
  function trimUrl(text, from, end) {
    let unpaired = 0;
    for (let k = from; k < end; k++) unpaired += text[k] === ")" ? 1 : text[k] === "(" ? -1 : 0;
    for (let c; end > from && (c = text[end - 1]); end--) {
      if (c === ")" && unpaired > 0) unpaired--;
      else if (!".,;:!?*_~".includes(c)) break;
    }
    return end;
  }

  /** `(url "title")` at j, the title dropped: {url, end}; {url: null, end: where it stopped}
   * when there is none. Reads up to `limit`. */
  function destination(text, j, limit) {
    if (text[j] !== "(") return { url: null, end: j };
    let k = j + 1;
    let url = "";
    while (k < limit && SPACE.test(text[k])) k++;
    if (text[k] === "<") {
      for (k++; k < limit && !"<>\n".includes(text[k]); k++) url += text[k];
      if (text[k++] !== ">") return { url: null, end: k };
    } else {
      for (let depth = 0; k < limit; k++) {
        const c = text[k];
        if (c === "\\" && ESCAPABLE.test(text[k + 1] || "")) { url += text[++k]; continue; }
        if ((c === ")" && depth-- === 0) || SPACE.test(c) || c < " ") break;
        if (c === "(") depth++;
        url += c;
      }
    }
    while (k < limit && SPACE.test(text[k])) k++;
    const quote = text[k];
    if (quote === '"' || quote === "'" || quote === "(") {
      const end = quote === "(" ? ")" : quote;
      for (k++; k < limit && text[k] !== end; k++) if (text[k] === "\\") k++;
      for (k++; k < limit && SPACE.test(text[k]); k++);
    }
    return k < limit && text[k] === ")" ? { url, end: k + 1 } : { url: null, end: k };
  }

  /**
   * Fills `parent` with `text`'s inlines. A delimiter run (* _) or "[" is a node of its own,
   * also on a stack; a match encloses the nodes between (CommonMark's "process emphasis", with
   * its lower bounds per kind), at most MAX_SPANS times. Reading link destinations is charged to
   * a budget of twice the text's length, so no run of brackets makes it quadratic.
   * `linksOnly`: text and bare URLs alone (a shopper's message).
   */
  function inline(text, parent, streaming, linksOnly) {
    const n = text.length;
    const token = linksOnly ? LINK_START : TOKEN;
    const line = light("line");
    let buf = "";
    let tail = null; // the delimiter stack: runs linked by under/over
    let brackets = null;
    let bracketCount = 0;
    let linkedBelow = 0; // brackets numbered below this opened before a link: no links in links
    let budget = 2 * n + MAX_URL;
    let spans = 0;
    const ticks = { all: false, last: new Map() }; // backtick runs seen (code spans)

    const flush = () => { if (buf) append(line, light(null, buf)); buf = ""; };
    const unlink = (d) => {
      if (d.under) d.under.over = d.over;
      if (d.over) d.over.under = d.under; else tail = d.under;
    };

    const closingTicks = (from, size) => { // the next run of exactly `size` backticks, or -1
      if (ticks.all && !((ticks.last.get(size) ?? -1) >= from)) return -1;
      for (let j = from; ;) {
        j = text.indexOf("`", j);
        if (j < 0) { ticks.all = true; return -1; }
        let k = j;
        while (text[k] === "`") k++;
        if (!ticks.all) ticks.last.set(k - j, j);
        if (k - j === size) return j;
        j = k;
      }
    };

    const codeSpan = (i) => {
      let k = i;
      while (text[k] === "`") k++;
      const end = closingTicks(k, k - i);
      if (end < 0 && !(streaming && k < n)) { buf += text.slice(i, k); return k; }
      let code = text.slice(k, end < 0 ? n : end).replace(/\n/g, " ");
      if (/^ .*[^ ].* $/s.test(code)) code = code.slice(1, -1);
      flush();
      append(append(line, light("code")), light(null, code));
      return end < 0 ? n : end + k - i;
    };

    const autolink = (i, scheme, angle) => {
      let j = i + scheme;
      while (j < n && !URL_STOP.test(text[j]) && !(brackets && text[j] === "]")) j++;
      if (angle ? text[j] !== ">" : (j = trimUrl(text, i + scheme, j)) <= i + scheme) return -1;
      const href = safeUrl(text.slice(i, j));
      if (!href) return -1;
      flush();
      const a = append(line, light("a"));
      a.href = href;
      append(a, light(null, text.slice(i, j)));
      return angle ? j + 1 : j;
    };

    const delimiterRun = (i) => {
      const c = text[i];
      let k = i;
      while (text[k] === c) k++;
      const before = i > 0 ? kind(text[i - 1]) : 1;
      const after = kind(text[k]);
      const left = after !== 1 && (after !== 2 || before > 0);
      const right = before !== 1 && (before !== 2 || after > 0);
      const canOpen = c === "*" ? left : left && (!right || before === 2);
      const canClose = c === "*" ? right : right && (!left || after === 2);
      if (!canOpen && !canClose) { buf += text.slice(i, k); return k; }
      flush();
      const d = append(line, light(null, text.slice(i, k)));
      d.c = c;
      d.n = d.orig = k - i;
      d.canOpen = canOpen;
      d.canClose = canClose;
      d.under = tail;
      if (tail) tail.over = d;
      tail = d;
      return k;
    };

    /** Matches the delimiters above `bottom`; what is left stays text, or (`closeOpen`: a
     * reply still streaming) encloses everything after it. */
    const emphasis = (bottom, closeOpen) => {
      const floor = new Map(); // per kind of closer: no opener for it at or below this
      let closer = tail === bottom ? null : tail;
      while (closer && closer.under !== bottom) closer = closer.under;
      for (; closer && spans < MAX_SPANS;) {
        if (!closer.canClose) { closer = closer.over; continue; }
        const key = closer.c + closer.canOpen + (closer.orig % 3);
        const stop = floor.has(key) ? floor.get(key) : bottom;
        let opener = closer.under;
        for (; opener && opener !== bottom && opener !== stop; opener = opener.under) {
          const odd = (closer.canOpen || opener.canClose) && closer.orig % 3 !== 0 && (opener.orig + closer.orig) % 3 === 0;
          if (opener.c === closer.c && opener.canOpen && !odd) break;
        }
        if (!opener || opener === bottom || opener === stop) {
          floor.set(key, closer.under);
          if (!closer.canOpen) unlink(closer);
          closer = closer.over;
          continue;
        }
        const use = closer.n >= 2 && opener.n >= 2 ? 2 : 1;
        spans++;
        opener.n -= use;
        closer.n -= use;
        opener.text = opener.text.slice(use);
        closer.text = closer.text.slice(use);
        enclose(line, opener, closer, light(use === 2 ? "strong" : "em"));
        opener.over = closer; // the delimiters in between are text now
        closer.under = opener;
        if (!opener.n) { detach(line, opener); unlink(opener); }
        if (!closer.n) { detach(line, closer); unlink(closer); closer = closer.over; }
      }
      for (let d = tail; closeOpen && d && d !== bottom; d = d.under) {
        if (!d.canOpen || !d.n || spans++ >= MAX_SPANS) continue;
        const use = Math.min(d.n, 3);
        enclose(line, d, null, light(use === 1 ? "em" : "strong"));
        if (use === 3) enclose(line, d, null, light("em"));
        d.text = d.text.slice(use);
      }
      tail = bottom;
      if (bottom) bottom.over = null;
    };

    const closeBracket = (i) => {
      const b = brackets;
      if (!b) return -1;
      brackets = b.prev;
      if (b.seq < linkedBelow) return -1;
      const dest = destination(text, i + 1, Math.min(n, i + 1 + MAX_URL, i + 1 + budget));
      budget -= dest.end - i;
      if (dest.url === null) return -1;
      flush();
      emphasis(b.below, false);
      const href = safeUrl(dest.url);
      if (href) { // else not a link we make: its text stays, as text
        const a = enclose(line, b.node, null, light("a"));
        a.href = href;
        if (!a.first) append(a, light(null, dest.url));
        linkedBelow = bracketCount;
      }
      detach(line, b.node);
      return dest.end;
    };

    for (let i = 0, end; i < n;) {
      let c = text[i];
      if (linksOnly || !SPECIAL.has(c)) { // on to the next character that means something
        token.lastIndex = i;
        const m = token.exec(text);
        if (!m) { buf += text.slice(i); break; }
        buf += text.slice(i, m.index);
        i = m.index;
        c = m[0];
      }
      if (c.length > 1) end = autolink(i, c.length, false); // a URL's scheme
      else if (c === "\\") end = text[i + 1] === "\n" ? i + 1 : ESCAPABLE.test(text[i + 1] || "") ? (buf += text[i + 1], i + 2) : -1;
      else if (c === "`") end = codeSpan(i);
      else if (c === "*" || c === "_") end = delimiterRun(i);
      else if (c === "]") end = closeBracket(i);
      else if (c === "[" || c === "\n") {
        flush();
        const node = append(line, c === "[" ? light(null, "[") : light("br"));
        if (c === "[") brackets = { node, below: tail, prev: brackets, seq: bracketCount++ };
        end = i + 1;
      } else { // "<": <https://…> is a link, anything else is text
        SCHEME.lastIndex = i + 1;
        end = SCHEME.test(text) ? autolink(i + 1, SCHEME.lastIndex - i - 1, true) : -1;
      }
      if (end < 0) buf += text[i++]; else i = end;
    }
    flush();
    emphasis(null, streaming);
    return materialize(line, parent);
  }

  /** `text` as Markdown: a DocumentFragment of new nodes. */
  function render(text, { streaming = false } = {}) {
    const root = parse(String(text ?? ""));
    const last = streaming ? lastLeaf(root) : null;
    const fragment = document.createDocumentFragment();
    for (const block of root.blocks) fragment.append(renderBlock(block, last));
    fragment.normalize();
    return fragment;
  }

  /** Plain `text` with its http(s) and mailto URLs as links: a DocumentFragment. */
  function linkify(text) {
    return inline(String(text ?? ""), document.createDocumentFragment(), false, true);
  }

  return Object.freeze({ render, linkify, safeUrl });
})();
