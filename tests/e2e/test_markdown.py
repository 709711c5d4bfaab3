"""chatd/web/markdown.js in a real Chromium: what each construct renders to, that hostile text
gives no script and no element but the allowed ones, that pathological text stays fast, and
what a reply still streaming looks like. One page for the module, under a strict CSP.

Trees are [tag, {attributes}, ...children] with text as strings.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, Route

from tests.browser import BrowserThread

SOURCE = Path(__file__).resolve().parents[2] / "chatd" / "web" / "markdown.js"
ORIGIN = "http://localhost:8112"
ALLOWED = {
    "p": set(),
    "br": set(),
    "strong": set(),
    "em": set(),
    "code": set(),
    "pre": set(),
    "ul": set(),
    "ol": {"start"},
    "li": set(),
    "a": {"href", "target", "rel"},
}
TREE = """(node) => {
  const tree = (n) => n.nodeType === 3 ? n.data : [n.nodeName.toLowerCase(),
    Object.fromEntries([...n.attributes].map((a) => [a.name, a.value])), ...[...n.childNodes].map(tree)];
  return [...node.childNodes].map(tree);
}"""
RENDER = f"([text, streaming]) => ({TREE})(chatdMarkdown.render(text, {{streaming}}))"
# Every element, flat: a tree 200 deep is too deep to hand back whole.
ELEMENTS = """(text) => [...chatdMarkdown.render(text).querySelectorAll('*')].map((e) =>
  [e.nodeName.toLowerCase(), Object.fromEntries([...e.attributes].map((a) => [a.name, a.value]))])"""
# Into the page, so that an <img onerror> or <svg onload> would run if one had been made.
ATTACH = f"""async (text) => {{
  const box = document.body.appendChild(document.createElement('div'));
  box.append(chatdMarkdown.render(text));
  await new Promise((r) => setTimeout(r, 50));
  return ({TREE})(box);
}}"""
# Warm (the page has rendered before), then the best of five: the machine is shared.
TIMED = """(text) => {
  chatdMarkdown.render("Hello **world**, see [the shop](https://shop.example).\\n\\n- one\\n- two");
  const runs = [];
  for (let k = 0; k < 5; k++) {
    const t0 = performance.now();
    chatdMarkdown.render(text);
    runs.push(performance.now() - t0);
  }
  const box = document.body.appendChild(document.createElement('div'));
  const t0 = performance.now();
  box.append(chatdMarkdown.render(text));
  const height = box.getBoundingClientRect().height;
  const laidOut = performance.now() - t0;
  box.remove();
  return {best: Math.min(...runs), laidOut, height};
}"""
A = {"target": "_blank", "rel": "noopener noreferrer"}


class Renderer:
    def __init__(self, browser: BrowserThread, page: Page) -> None:
        self.browser = browser
        self.page = page

    def tree(self, text: str, *, streaming: bool = False) -> list[Any]:
        result: list[Any] = self.browser.call(self.page.evaluate, RENDER, [text, streaming])
        return result

    def attached(self, text: str) -> list[Any]:
        result: list[Any] = self.browser.call(self.page.evaluate, ATTACH, text)
        return result

    def elements(self, text: str) -> list[Any]:
        result: list[Any] = self.browser.call(self.page.evaluate, ELEMENTS, text)
        return result

    def timed(self, text: str) -> dict[str, float]:
        result: dict[str, float] = self.browser.call(self.page.evaluate, TIMED, text)
        return result

    def js(self, expression: str, arg: Any = None) -> Any:
        return self.browser.call(self.page.evaluate, expression, arg)


@pytest.fixture(scope="module")
def md(browser: BrowserThread) -> Iterator[Renderer]:
    assert browser.browser is not None
    context = browser.call(browser.browser.new_context)
    page = browser.call(context.new_page)
    dialogs: list[str] = []
    errors: list[str] = []

    def load() -> None:
        page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        html = f"<!doctype html><title>md</title><script src='{ORIGIN}/markdown.js'></script>"
        csp = f"default-src 'none'; script-src {ORIGIN}; img-src {ORIGIN}; base-uri 'none'"

        def serve(route: Route) -> None:
            if route.request.url.endswith("/markdown.js"):
                route.fulfill(body=SOURCE.read_text(), content_type="application/javascript")
            else:
                headers = {"Content-Security-Policy": csp}
                route.fulfill(body=html, content_type="text/html", headers=headers)

        context.route(f"{ORIGIN}/**", serve)
        page.goto(f"{ORIGIN}/")

    browser.call(load)
    yield Renderer(browser, page)
    assert dialogs == []
    assert errors == []  # nothing the CSP refused, no exception
    browser.call(context.close)


def elements(tree: list[Any]) -> Iterator[tuple[str, dict[str, str]]]:
    for node in tree:
        if isinstance(node, list):
            yield node[0], node[1]
            yield from elements(node[2:])


def assert_safe(tree: list[Any], flat: list[Any] | None = None) -> None:
    """Only the allowed elements and attributes; links: http(s) or mailto, new tab, no opener."""
    for tag, attributes in elements(tree) if flat is None else flat:
        assert tag in ALLOWED, tag
        assert set(attributes) <= ALLOWED[tag], (tag, attributes)
        if tag == "a":
            assert attributes["href"].startswith(("http://", "https://", "mailto:")), attributes
            assert (attributes["target"], attributes["rel"]) == ("_blank", "noopener noreferrer")


def text_of(tree: list[Any]) -> str:
    return "".join(n if isinstance(n, str) else text_of(n[2:]) for n in tree)


CONSTRUCTS = [
    ("Hello", [["p", {}, "Hello"]]),
    ("one\ntwo", [["p", {}, "one", ["br", {}], "two"]]),
    ("one\n\ntwo", [["p", {}, "one"], ["p", {}, "two"]]),
    ("**b** __b__", [["p", {}, ["strong", {}, "b"], " ", ["strong", {}, "b"]]]),
    ("*i* _i_", [["p", {}, ["em", {}, "i"], " ", ["em", {}, "i"]]]),
    ("***both***", [["p", {}, ["em", {}, ["strong", {}, "both"]]]]),
    ("**bold *in* it**", [["p", {}, ["strong", {}, "bold ", ["em", {}, "in"], " it"]]]),
    ("snake_case_name and 2 * 3 * 4", [["p", {}, "snake_case_name and 2 * 3 * 4"]]),
    ("\\*not\\* \\_em\\_", [["p", {}, "*not* _em_"]]),
    ("`a < b` and ``x ` y``", [["p", {}, ["code", {}, "a < b"], " and ", ["code", {}, "x ` y"]]]),
    ("```js\nif (a < b) **no**\n```", [["pre", {}, ["code", {}, "if (a < b) **no**"]]]),
    ("- one\n- two", [["ul", {}, ["li", {}, "one"], ["li", {}, "two"]]]),
    ("* one\n+ two", [["ul", {}, ["li", {}, "one"], ["li", {}, "two"]]]),
    ("1. one\n2. two", [["ol", {}, ["li", {}, "one"], ["li", {}, "two"]]]),
    ("3) three\n4) four", [["ol", {"start": "3"}, ["li", {}, "three"], ["li", {}, "four"]]]),
    (
        "- a\n  - a1\n- b",
        [["ul", {}, ["li", {}, "a", ["ul", {}, ["li", {}, "a1"]]], ["li", {}, "b"]]],
    ),
    (
        "Steps:\n1. Run\n   ```\n   npm i\n   ```\n2. Done",
        [
            ["p", {}, "Steps:"],
            [
                "ol",
                {},
                ["li", {}, ["p", {}, "Run"], ["pre", {}, ["code", {}, "npm i"]]],
                ["li", {}, "Done"],
            ],
        ],
    ),
    ("In\n2024. we grew", [["p", {}, "In", ["br", {}], "2024. we grew"]]),
    ("## Sizes ##", [["p", {}, ["strong", {}, "Sizes"]]]),
    ("above\n\n---\n\nbelow", [["p", {}, "above"], ["p", {}, "below"]]),
    (
        '[the shop](https://shop.example/a?b=1 "Title")',
        [["p", {}, ["a", {"href": "https://shop.example/a?b=1", **A}, "the shop"]]],
    ),
    (
        "[**bold** link](https://shop.example)",
        [["p", {}, ["a", {"href": "https://shop.example/", **A}, ["strong", {}, "bold"], " link"]]],
    ),
    (
        "See https://shop.example/track/1042. Thanks",
        [
            [
                "p",
                {},
                "See ",
                [
                    "a",
                    {"href": "https://shop.example/track/1042", **A},
                    "https://shop.example/track/1042",
                ],
                ". Thanks",
            ]
        ],
    ),
    (
        "(https://en.wikipedia.org/wiki/Boot_(footwear))",
        [
            [
                "p",
                {},
                "(",
                [
                    "a",
                    {"href": "https://en.wikipedia.org/wiki/Boot_(footwear)", **A},
                    "https://en.wikipedia.org/wiki/Boot_(footwear)",
                ],
                ")",
            ]
        ],
    ),
    (
        "Mail mailto:help@shop.example or <https://shop.example>",
        [
            [
                "p",
                {},
                "Mail ",
                ["a", {"href": "mailto:help@shop.example", **A}, "mailto:help@shop.example"],
                " or ",
                ["a", {"href": "https://shop.example/", **A}, "https://shop.example"],
            ]
        ],
    ),
    (
        "[see https://a.example](https://b.example)",  # no link inside a link
        [["p", {}, ["a", {"href": "https://b.example/", **A}, "see https://a.example"]]],
    ),
    ("[ref] and [x](/relative)", [["p", {}, "[ref] and x"]]),
]


@pytest.mark.parametrize(("text", "expected"), CONSTRUCTS, ids=[c[0][:30] for c in CONSTRUCTS])
def test_each_construct_renders_as_expected(md: Renderer, text: str, expected: list[Any]) -> None:
    tree = md.tree(text)
    assert tree == expected
    assert_safe(tree)


XSS = [  # (text, what must still be shown: the markup stays text, the link text stays)
    ("[x](javascript:window.__xss=1)", "x"),
    ("[x](JAVASCRIPT:window.__xss=1)", "x"),
    ("[x](JaVaScRiPt:window.__xss=1)", "x"),
    ("[x]( javascript:window.__xss=1)", "x"),
    ("[x](<javascript:window.__xss=1>)", "x"),
    ("[x](java\tscript:window.__xss=1)", "x"),
    ("[x](java\nscript:window.__xss=1)", "x"),
    ("[x](javascript&#58;window.__xss=1)", "x"),
    ("[x](&#106;avascript:window.__xss=1)", "x"),
    ("[x](data:text/html;base64,PHNjcmlwdD53aW5kb3cuX194c3M9MTwvc2NyaXB0Pg==)", "x"),
    ("[x](vbscript:msgbox(1))", "x"),
    ("[x](file:///etc/passwd)", "x"),
    ("[x](//evil.example/path)", "x"),
    ("<javascript:window.__xss=1> javascript:window.__xss=1", "<javascript:window.__xss=1>"),
    ("<script>window.__xss=1</script>", "<script>window.__xss=1</script>"),
    ('<img src=x onerror="window.__xss=1">', '<img src=x onerror="window.__xss=1">'),
    ("**<img src=x onerror=window.__xss=1>** *<svg onload=window.__xss=1>*", "<svg onload"),
    ("`<img src=x onerror=window.__xss=1>`", "<img src=x onerror=window.__xss=1>"),
    ("```html\n<script>window.__xss=1</script>\n```", "<script>window.__xss=1</script>"),
    ("<iframe src=javascript:window.__xss=1></iframe>", "<iframe src=javascript:"),
    ("- <b onclick=window.__xss=1>item</b>\n# <h1>title</h1>", "<h1>title</h1>"),
    (
        "&lt;script&gt;alert(1)&lt;/script&gt; &#x3C;img src=x onerror=alert(1)&#x3E;",
        "&lt;script&gt;",
    ),
    ('[x](https://a.example/"onmouseover="window.__xss=1)', "x"),
    ("[x](https://a.example/'onmouseover='window.__xss=1')", "x"),
    ('[x](https://a.example/ "t" onmouseover="window.__xss=1")', "onmouseover"),
    ('https://a.example/"><img src=x onerror=window.__xss=1>', "><img src=x"),
    ('["><img src=x onerror=window.__xss=1>](https://a.example)', '"><img src=x'),
    ("[x](https://a.example)<img src=x onerror=window.__xss=1>", "<img src=x"),
    ('<https://a.example"onmouseover="window.__xss=1>', 'onmouseover="window'),
]


@pytest.mark.parametrize(("text", "shown"), XSS, ids=range(len(XSS)))
def test_hostile_text_gives_no_script_and_no_other_element(
    md: Renderer, text: str, shown: str
) -> None:
    tree = md.attached(text)
    assert_safe(tree)  # only p br strong em code pre ul ol li a; links http(s) or mailto
    assert md.js("window.__xss") is None
    assert shown in text_of(tree)


@pytest.mark.parametrize("scheme", ["javascript", "JAVASCRIPT", "data", "vbscript", "file"])
def test_a_link_with_any_other_scheme_is_its_text_alone(md: Renderer, scheme: str) -> None:
    assert md.tree(f"Go [there]({scheme}:x) now") == [["p", {}, "Go there now"]]


PATHOLOGICAL = {
    "10,000 asterisks": "*" * 10_000,
    "10,000 asterisks in a sentence": "a " + "*" * 10_000 + " b",
    "5,000 nested *_": "*_" * 5_000 + "x" + "_*" * 5_000,
    "5,000 nested _*": "_*" * 5_000 + "x" + "*_" * 5_000,
    "2,500 nested * and _ pairs": "*a _b " * 2_500 + "x" + " b_ a*" * 2_500,
    "10,000 a*": "a*" * 10_000,
    "5,000 **a": "**a " * 5_000,
    "10,000 [": "[" * 10_000,
    "5,000 [](": "[](" * 5_000,
    "3,000 [a](b": "[a](b" * 3_000,
    "3,000 [a](<": "[a](<" * 3_000,
    "5,000 [ then ](": "[" * 5_000 + "](" * 5_000,
    "10,000 (": "[x](" + "(" * 10_000,
    "backtick runs": "`a``b```c" * 2_000,
    "10,000 backslashes": "\\" * 10_000,
    "2,000 schemes": "https://" * 2_000,
    "10,000 <": "<" * 10_000,
    "5,000 list markers": "- " * 5_000 + "x",
    "1,000 list lines, nested": "".join(f"{' ' * (n % 12)}- item\n" for n in range(1_000)),
    "heading of hashes": "# " + " #" * 5_000 + "x",
    "spaces in code": "` " + " " * 10_000 + "x",
}


@pytest.mark.parametrize("text", PATHOLOGICAL.values(), ids=PATHOLOGICAL.keys())
def test_pathological_text_renders_in_a_few_milliseconds(md: Renderer, text: str) -> None:
    timing = md.timed(text)
    assert timing["best"] < 50, timing
    assert timing["laidOut"] < 1_000, timing  # and laying it out does not hang the page
    assert_safe([], md.elements(text))


STREAMING = [
    ("Hello **wor", [["p", {}, "Hello ", ["strong", {}, "wor"]]]),
    ("Hello *wor", [["p", {}, "Hello ", ["em", {}, "wor"]]]),
    ("***x", [["p", {}, ["em", {}, ["strong", {}, "x"]]]]),
    ("**done** and _open", [["p", {}, ["strong", {}, "done"], " and ", ["em", {}, "open"]]]),
    ("use `npm i", [["p", {}, "use ", ["code", {}, "npm i"]]]),
    ("```py\nprint(1", [["pre", {}, ["code", {}, "print(1"]]]),
    ("- one\n- **tw", [["ul", {}, ["li", {}, "one"], ["li", {}, ["strong", {}, "tw"]]]]),
    ("2 * 3 *", [["p", {}, "2 * 3 *"]]),
    ("**earlier\n\nlater", [["p", {}, "**earlier"], ["p", {}, "later"]]),  # only the last block
]


@pytest.mark.parametrize(("text", "expected"), STREAMING, ids=[s[0] for s in STREAMING])
def test_a_reply_still_streaming_shows_its_unclosed_marks_as_closed(
    md: Renderer, text: str, expected: list[Any]
) -> None:
    assert md.tree(text, streaming=True) == expected


def test_a_complete_reply_shows_unclosed_marks_as_typed(md: Renderer) -> None:
    assert md.tree("Hello **wor and `code") == [["p", {}, "Hello **wor and `code"]]


def test_every_prefix_of_a_streamed_reply_is_safe_and_the_whole_renders_right(md: Renderer) -> None:
    reply = (
        "Returns are **free** within *30 days*:\n\n1. Open [orders](https://shop.example/o)\n"
        "2. Print the label `RET-1042`\n\n```\nRET-1042\n```\n\nMail mailto:help@shop.example."
    )
    prefixes = md.js(
        f"(t) => [...Array(t.length + 1).keys()].map((n) => ({TREE})(chatdMarkdown.render(t.slice(0, n), {{streaming: true}})))",
        reply,
    )
    for tree in prefixes:
        assert_safe(tree)
    assert prefixes[-1] == md.tree(reply)  # the last piece streamed looks like the stored reply
    assert md.tree(reply) == [
        ["p", {}, "Returns are ", ["strong", {}, "free"], " within ", ["em", {}, "30 days"], ":"],
        [
            "ol",
            {},
            ["li", {}, "Open ", ["a", {"href": "https://shop.example/o", **A}, "orders"]],
            ["li", {}, "Print the label ", ["code", {}, "RET-1042"]],
        ],
        ["pre", {}, ["code", {}, "RET-1042"]],
        [
            "p",
            {},
            "Mail ",
            ["a", {"href": "mailto:help@shop.example", **A}, "mailto:help@shop.example"],
            ".",
        ],
    ]


def test_a_shoppers_text_gets_links_and_nothing_else(md: Renderer) -> None:
    tree = md.js(
        f"(t) => ({TREE})(chatdMarkdown.linkify(t))",
        "I typed **stars**, <b>tags</b> and https://shop.example/x.\nNext line",
    )
    assert tree == [
        "I typed **stars**, <b>tags</b> and ",
        ["a", {"href": "https://shop.example/x", **A}, "https://shop.example/x"],
        ".\nNext line",
    ]
