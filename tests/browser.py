"""A real headless Chromium (Debian's `chromium` package) driven by Playwright, for Trio tests.

Playwright's sync API belongs to the thread that started it, and chatd and the n8n sink run in
the test's Trio loop: so the browser lives on one thread of its own and each browser step is a
plain function awaited from the test (`await browser.run(step, page)`), while Trio keeps serving.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tarfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import trio
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, sync_playwright

T = TypeVar("T")
CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "chatd-tests"
AXE_VERSION = "4.10.3"
N8N_CHAT_VERSION = "1.37.0"  # n8n's own chat widget, @n8n/chat (tests/e2e/test_n8n_chat_widget.py)


def chromium_path() -> str:
    """Debian's chromium; installed with apt-get when missing and we are root (as .ci/run)."""
    found = shutil.which("chromium")
    if found is None and os.geteuid() == 0 and shutil.which("apt-get"):
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
        subprocess.run(
            ["apt-get", "install", "-y", "-qq", "--no-install-recommends", "chromium"],
            check=True,
            env=env,
        )
        found = shutil.which("chromium")
    if found is None:
        raise RuntimeError("the browser tests need Debian's chromium: apt-get install chromium")
    return found


def axe_source() -> str:
    """axe-core's axe.min.js, fetched once from the npm registry (npm pack) and cached."""
    script = CACHE / f"axe-core-{AXE_VERSION}" / "axe.min.js"
    if not script.exists():
        script.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            ["npm", "pack", f"axe-core@{AXE_VERSION}", "--silent", "--pack-destination", "."],
            cwd=script.parent,
            check=True,
            capture_output=True,
        )
        with tarfile.open(script.parent / f"axe-core-{AXE_VERSION}.tgz") as archive:
            member = archive.extractfile("package/axe.min.js")
            assert member is not None
            script.write_bytes(member.read())
    return script.read_text()


def n8n_chat_dist() -> Path:
    """@n8n/chat's dist/ (chat.bundle.es.js and the chunks it imports, style.css), fetched once
    from the npm registry (npm pack: the package alone, not its dependency tree) and cached."""
    root = CACHE / f"n8n-chat-{N8N_CHAT_VERSION}"
    dist = root / "package" / "dist"
    if not (dist / "chat.bundle.es.js").exists():
        root.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            ["npm", "pack", f"@n8n/chat@{N8N_CHAT_VERSION}", "--silent", "--pack-destination", "."],
            cwd=root,
            check=True,
            capture_output=True,
        )
        with tarfile.open(root / f"n8n-chat-{N8N_CHAT_VERSION}.tgz") as archive:
            archive.extractall(root, filter="data")
    return dist


class BrowserThread:
    def __init__(self) -> None:
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="playwright")
        self._playwright: Playwright | None = None
        self.browser: Browser | None = None

    def call(self, fn: Callable[..., T], *args: Any) -> T:
        """Run `fn(*args)` on the browser's thread and wait (outside Trio)."""
        return self._thread.submit(fn, *args).result()

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """Run `fn(*args)` on the browser's thread; Trio keeps running meanwhile."""
        future = self._thread.submit(fn, *args)
        return await trio.to_thread.run_sync(future.result, abandon_on_cancel=True)

    def start(self) -> None:
        def launch() -> None:
            self._playwright = sync_playwright().start()
            self.browser = self._playwright.chromium.launch(executable_path=chromium_path())

        self.call(launch)

    def stop(self) -> None:
        def close() -> None:
            if self.browser is not None:
                self.browser.close()
            if self._playwright is not None:
                self._playwright.stop()

        self.call(close)
        self._thread.shutdown()

    async def new_page(self, **context_options: Any) -> tuple[BrowserContext, Page]:
        def open_page() -> tuple[BrowserContext, Page]:
            assert self.browser is not None
            # chatd listens on loopback: pages may reach it only with this permission granted.
            context_options.setdefault("permissions", ["local-network-access"])
            context = self.browser.new_context(**context_options)
            context.set_default_timeout(10_000)
            page = context.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.on(
                "console",
                lambda m: errors.append(m.text) if m.type == "error" else None,
            )
            page.errors = errors  # type: ignore[attr-defined]
            return context, page

        return await self.run(open_page)
