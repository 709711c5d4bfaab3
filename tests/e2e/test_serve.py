"""`chatd serve` as a real subprocess, started exactly as the README says."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import trio

LISTENING = re.compile(r"chatd is listening on (http://\S+)")


def serve_env(state_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CHATD_", "CHAT_"))}
    env.pop("DATABASE_URL", None)
    return {**env, "CHATD_STATE_DIR": str(state_dir), "CHATD_SERVER__PORT": "0", **extra}


async def start_serve(argv: list[str], state_dir: Path, repo_root: Path) -> trio.Process:
    """`chatd serve` as a subprocess on a free port; its log (stderr) is piped to the test."""
    return await trio.lowlevel.open_process(
        argv,
        cwd=repo_root,
        env=serve_env(state_dir),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


async def wait_listening(process: trio.Process, log: list[str]) -> str:
    """Read stderr until chatd prints its URL; return it."""
    assert process.stderr is not None
    buffer = b""
    with trio.fail_after(90):
        async for chunk in process.stderr:
            buffer += chunk
            *lines, rest = buffer.split(b"\n")
            buffer = rest
            for line in lines:
                text = line.decode(errors="replace")
                log.append(text)
                if match := LISTENING.search(text):
                    return match.group(1)
    raise AssertionError("chatd exited before listening:\n" + "\n".join(log))


async def drain(process: trio.Process, log: list[str]) -> None:
    assert process.stderr is not None
    async for chunk in process.stderr:
        log.append(chunk.decode(errors="replace"))


async def test_uv_run_chatd_serve_works_end_to_end(state_dir: Path, repo_root: Path) -> None:
    log: list[str] = []
    process = await start_serve(["uv", "run", "chatd", "serve"], state_dir, repo_root)
    try:
        url = await wait_listening(process, log)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(drain, process, log)
            async with httpx.AsyncClient(base_url=url, timeout=10) as client:
                created = (await client.post("/api/chat/session", json={})).json()
                auth = {"Authorization": f"Bearer {created['sessionToken']}"}
                sent = await client.post(
                    "/api/chat/send",
                    headers=auth,
                    json={"sessionId": created["sessionId"], "content": "hello"},
                )
                assert sent.status_code == 200
                assert sent.json()["seq"] == 1
                # Out of the box the demo bot answers over real HTTP, through the durable queue.
                with trio.fail_after(15):
                    while True:
                        history = (
                            await client.get(
                                f"/api/chat/messages/{created['sessionId']}", headers=auth
                            )
                        ).json()
                        if len(history["messages"]) >= 2:
                            break
                        await trio.sleep(0.05)
                user, bot = history["messages"]
                assert (user["content"], user["status"], user["seq"]) == ("hello", "delivered", 1)
                assert bot["senderType"] == "bot"
                assert bot["seq"] == 2
                assert bot["content"].startswith("Hello! I'm the demo shop assistant")
                assert bot["messageType"] == "quick_reply"
                assert bot["metadata"]["quickReplies"]
                assert (await client.get("/api/chat/health")).json()["status"] == "healthy"

            # A second chatd on the same state directory refuses clearly instead of corrupting it.
            second = await trio.run_process(
                [sys.executable, "-m", "chatd", "serve"],
                cwd=repo_root,
                env=serve_env(state_dir),
                capture_stderr=True,
                check=False,
            )
            assert second.returncode == 2  # starting again would fail the same way
            assert b"in use by another chatd" in second.stderr

            process.send_signal(signal.SIGTERM)
            with trio.fail_after(30):
                assert await process.wait() == 0
        assert not (state_dir / "pg" / "postmaster.pid").exists()  # embedded PostgreSQL stopped
        assert any("chatd_stopped" in line for line in log)
    finally:
        if process.returncode is None:
            process.kill()


async def test_serve_keeps_data_across_restarts(state_dir: Path, repo_root: Path) -> None:
    token_and_id: tuple[str, str] | None = None
    for run in range(2):
        log: list[str] = []
        process = await start_serve([sys.executable, "-m", "chatd", "serve"], state_dir, repo_root)
        try:
            url = await wait_listening(process, log)
            async with trio.open_nursery() as nursery:
                nursery.start_soon(drain, process, log)
                async with httpx.AsyncClient(base_url=url, timeout=10) as client:
                    if run == 0:
                        created = (await client.post("/api/chat/session", json={})).json()
                        token_and_id = (created["sessionToken"], created["sessionId"])
                    assert token_and_id is not None
                    token, sid = token_and_id
                    sent = await client.post(
                        "/api/chat/send",
                        json={"sessionId": sid, "content": f"run{run}"},
                        headers={"Authorization": f"Bearer {token}"},
                    )
                    seq = sent.json()["seq"]
                    if run == 0:
                        assert seq == 1
                    else:  # the first run's message (and the demo bot's reply) survived
                        assert seq > 1
                        history = (
                            await client.get(
                                f"/api/chat/messages/{sid}",
                                headers={"Authorization": f"Bearer {token}"},
                            )
                        ).json()
                        assert "run0" in [m["content"] for m in history["messages"]]
                process.send_signal(signal.SIGINT)
                with trio.fail_after(30):
                    assert await process.wait() == 0
        finally:
            if process.returncode is None:
                process.kill()


async def test_bad_configuration_exits_2_naming_key_and_file(
    tmp_path: Path, repo_root: Path
) -> None:
    config = tmp_path / "chatd.toml"
    config.write_text("[chat]\nmax_message_lenght = 5\n")
    result = await trio.run_process(
        [sys.executable, "-m", "chatd", "--config", str(config), "serve"],
        cwd=repo_root,
        env=serve_env(tmp_path),
        capture_stderr=True,
        check=False,
    )
    assert result.returncode == 2
    assert f"{config}: chat.max_message_lenght: unknown key" in result.stderr.decode()

    bad_env = await trio.run_process(
        [sys.executable, "-m", "chatd", "serve"],
        cwd=repo_root,
        env=serve_env(tmp_path, CHATD_SERVER__PORT="eighty"),
        capture_stderr=True,
        check=False,
    )
    assert bad_env.returncode == 2
    assert "CHATD_SERVER__PORT" in bad_env.stderr.decode()


async def test_help_describes_every_command(repo_root: Path) -> None:
    result = await trio.run_process(
        [sys.executable, "-m", "chatd", "--help"], cwd=repo_root, capture_stdout=True
    )
    text = result.stdout.decode()
    for word in (
        "serve",
        "migrate",
        "--config",
        "--state-dir",
        "CHATD_<SECTION>__<KEY>",
        "DATABASE_URL",
    ):
        assert word in text


async def test_n8n_workflow_command_prints_an_importable_workflow(
    repo_root: Path, tmp_path: Path
) -> None:
    env = {**serve_env(tmp_path), "CHATD_SERVER__PUBLIC_URL": "https://chat.shop.example"}
    for mode in ("sync", "callback"):
        result = await trio.run_process(
            [sys.executable, "-m", "chatd", "n8n-workflow", "--mode", mode],
            cwd=repo_root,
            env=env,
            capture_stdout=True,
        )
        flow = json.loads(result.stdout)
        types = {node["type"] for node in flow["nodes"]}
        assert "n8n-nodes-base.webhook" in types
        assert ("n8n-nodes-base.respondToWebhook" in types) == (mode == "sync")
        assert ("n8n-nodes-base.httpRequest" in types) == (mode == "callback")
        assert "https://chat.shop.example" in result.stdout.decode()


async def test_n8n_workflow_command_prints_the_agent_for_chatds_n8n_mode(
    repo_root: Path, tmp_path: Path
) -> None:
    for n8n_mode, trigger in (
        ("webhook", "n8n-nodes-base.webhook"),
        ("chat_trigger", "@n8n/n8n-nodes-langchain.chatTrigger"),
    ):
        env = {**serve_env(tmp_path), "CHATD_N8N__MODE": n8n_mode}
        result = await trio.run_process(
            [sys.executable, "-m", "chatd", "n8n-workflow", "--mode", "agent"],
            cwd=repo_root,
            env=env,
            capture_stdout=True,
        )
        types = {node["type"] for node in json.loads(result.stdout)["nodes"]}
        assert {trigger, "@n8n/n8n-nodes-langchain.agent"} <= types
    refused = await trio.run_process(
        [sys.executable, "-m", "chatd", "n8n-workflow", "--mode", "sync"],
        cwd=repo_root,
        env={**serve_env(tmp_path), "CHATD_N8N__MODE": "chat_trigger"},
        capture_stderr=True,
        check=False,
    )
    assert refused.returncode == 2
    assert b"use the agent workflow" in refused.stderr
