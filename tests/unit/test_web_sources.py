"""The browser code builds DOM nodes from data, never HTML: no API that parses a string as
markup or code appears in chatd/web/*.js (bot replies, shoppers' text and errors are untrusted).
"""

from __future__ import annotations

from pathlib import Path

import pytest

import chatd

WEB = Path(chatd.__file__).parent / "web"
PARSERS = (
    "innerHTML",
    "outerHTML",
    "insertAdjacentHTML",
    "document.write",
    "createContextualFragment",
    "DOMParser",
    "eval(",
    "new Function",
    "srcdoc",
)


@pytest.mark.parametrize("name", sorted(p.name for p in WEB.glob("*.js")))
def test_no_html_or_code_is_parsed_from_strings(name: str) -> None:
    source = (WEB / name).read_text()
    assert [api for api in PARSERS if api in source] == []


def test_the_markdown_renderer_and_its_users_are_all_checked() -> None:
    assert {"markdown.js", "widget.js", "admin.js"} <= {p.name for p in WEB.glob("*.js")}
