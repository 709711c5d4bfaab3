"""The package tree mirrors the process tree (STYLE.md 1): no strays at the top of `chatd/`."""

from __future__ import annotations

from pathlib import Path

import chatd

PACKAGE = Path(chatd.__file__).parent

# What belongs at the top: the process tree, the components it runs (built and wired once), the
# settings, the error tree, logging, and how settings become each component's config. Commands live in chatd/cli/, the rest in its area.
TOP_LEVEL = {
    "__init__.py",
    "__main__.py",
    "component_config.py",
    "errors.py",
    "logs.py",
    "process.py",
    "wiring.py",
}


def test_top_level_holds_only_the_process_tree_and_its_shared_parts() -> None:
    assert {p.name for p in PACKAGE.glob("*.py")} == TOP_LEVEL
    assert (PACKAGE / "settings" / "__init__.py").exists()  # a package: one module per concern


def test_module_names_say_which_app_is_which() -> None:
    # One `app.py` was the process tree, another the ASGI app: neither name said which.
    assert not list(PACKAGE.rglob("app.py"))
    assert (PACKAGE / "http" / "asgi.py").exists()
    assert (PACKAGE / "ops" / "gc_policy.py").exists()
    assert {p.name for p in (PACKAGE / "cli").glob("*.py")} >= {
        "__init__.py",
        "main.py",
        "ops.py",
        "queue.py",
    }
