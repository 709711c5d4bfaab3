"""The n8n workflow chatd prints: its shape, its determinism, no secrets, and the signing recipes.

The workflows were also imported into real n8n (2.7.5 and 1.123.81) and driven with chatd-signed
requests; here tests/fixtures/n8n_harness.js stands in for n8n (skipped without Node.js) so the
JavaScript the workflow carries, and the expressions it evaluates, still meet chatd's own code.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import inspect
import json
import shutil
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from chatd.core.replies import parse_callback, parse_reply_body
from chatd.core.signing import hex_signature, sign_headers, standard_signature, verify_callback
from chatd.n8n import workflow as wf

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
CHATD = "https://chat.shop.example"
SECRET = "plain-shared-secret-for-tests-0123"
MODES = ("sync", "callback")


def build(mode: str, **kwargs: Any) -> dict[str, Any]:
    return wf.build_workflow(mode=mode, chatd_url=kwargs.pop("chatd_url", CHATD), **kwargs)  # type: ignore[arg-type]


def nodes_by_name(workflow: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {node["name"]: node for node in workflow["nodes"]}


def targets(workflow: dict[str, Any], source: str, output: int = 0) -> list[str]:
    outputs = workflow["connections"].get(source, {"main": []})["main"]
    return [link["node"] for link in outputs[output]] if output < len(outputs) else []


def main_path(workflow: dict[str, Any]) -> list[str]:
    """Node names from the webhook along output 0 (the "true" branch of an If)."""
    path = [wf.WEBHOOK]
    while nxt := targets(workflow, path[-1]):
        assert len(nxt) == 1
        path.append(nxt[0])
    return path


def chatd_request(
    content: str = "Where is my order?", *, secret: str = SECRET, ts: int | None = None
):
    """What chatd's dispatcher sends: compact JSON (ASCII-escaped), secret and signature headers."""
    payload = {
        "sessionId": "8c1e7f0a-4d3b-4a53-9b1e-2f6d0c9a1b77",
        "messageId": "90041c3e-5b7a-4e0f-8d2c-6a9b3e1f0d42",
        "seq": 3,
        "userId": None,
        "guestEmail": "ann@shop.example",
        "message": {"content": content, "type": "text", "timestamp": "2026-11-24T22:48:59Z"},
        "userContext": {"isAuthenticated": False},
        "sessionMetadata": {"page": "/cart", "ratio": 1.0},
        "callbackUrl": f"{CHATD}/api/chat/webhook",
        "deliveryId": "job-42",
    }
    body = json.dumps(payload, separators=(",", ":")).encode()
    headers = {"content-type": "application/json", "x-webhook-secret": secret}
    headers.update(sign_headers([secret], "job-42", ts or int(time.time()), body))
    return payload, body, headers


# --- shape ------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_json_serialisable_and_stable(mode: str) -> None:
    first = json.dumps(build(mode), sort_keys=True)
    assert json.loads(first) == build(mode)
    assert json.dumps(build(mode), sort_keys=True) == first
    workflow = build(mode)
    assert workflow["active"] is False
    assert workflow["settings"] == {"executionOrder": "v1"}
    assert set(workflow) >= {"name", "nodes", "connections", "settings", "active"}


@pytest.mark.parametrize("mode", MODES)
def test_connections_refer_to_existing_nodes(mode: str) -> None:
    workflow = build(mode)
    names = [node["name"] for node in workflow["nodes"]]
    assert len(names) == len(set(names))
    for source, kinds in workflow["connections"].items():
        assert source in names
        assert list(kinds) == ["main"]
        for output in kinds["main"]:
            for link in output:
                assert link["node"] in names
                assert link["type"] == "main"
                assert link["index"] == 0
    # Every node but the note is wired in.
    linked = set(workflow["connections"]) | {
        link["node"]
        for kinds in workflow["connections"].values()
        for out in kinds["main"]
        for link in out
    }
    assert linked == set(names) - {wf.SETUP_NOTE}


@pytest.mark.parametrize("mode", MODES)
def test_node_ids_unique_uuid_shaped_and_stable(mode: str) -> None:
    workflow = build(mode)
    ids = [node["id"] for node in workflow["nodes"]]
    assert len(ids) == len(set(ids))
    for node_id in ids:
        assert str(uuid.UUID(node_id)) == node_id
    assert ids == [node["id"] for node in build(mode)["nodes"]]
    webhook = nodes_by_name(workflow)[wf.WEBHOOK]
    assert str(uuid.UUID(webhook["webhookId"])) == webhook["webhookId"]
    # Two workflows imported into one n8n never share ids.
    other = {n["id"] for n in build(mode, webhook_path="shop-2")["nodes"]}
    assert not other & set(ids)
    twin = build("callback" if mode == "sync" else "sync")
    assert not {n["id"] for n in twin["nodes"]} & set(ids)


@pytest.mark.parametrize("mode", MODES)
def test_nodes_use_the_targeted_types_and_positions(mode: str) -> None:
    workflow = build(mode)
    for node in workflow["nodes"]:
        assert node["typeVersion"] == wf.TYPE_VERSIONS[node["type"]]
        x, y = node["position"]
        assert isinstance(x, int)
        assert isinstance(y, int)
    xs = [nodes_by_name(workflow)[name]["position"][0] for name in main_path(workflow)]
    assert xs == sorted(xs)
    assert len(set(xs)) == len(xs)  # left to right


def test_sync_webhook_logic_respond() -> None:
    workflow = build("sync", webhook_path="/shop/chat/")
    nodes = nodes_by_name(workflow)
    webhook = nodes[wf.WEBHOOK]
    assert webhook["type"] == "n8n-nodes-base.webhook"
    assert webhook["parameters"]["responseMode"] == "responseNode"
    assert webhook["parameters"]["httpMethod"] == "POST"
    assert webhook["parameters"]["path"] == "shop/chat"
    assert webhook["parameters"]["authentication"] == "headerAuth"
    assert webhook["parameters"]["options"]["rawBody"] is True
    assert webhook["credentials"] == {
        "httpHeaderAuth": {"id": None, "name": wf.HEADER_AUTH_CREDENTIAL}
    }
    assert main_path(workflow) == [
        wf.WEBHOOK,
        wf.SIGNED_CONTENT,
        wf.EXPECTED_SIGNATURE,
        wf.SIGNATURE_OK,
        wf.BOT_LOGIC,
        wf.REPLY,
    ]
    assert nodes[wf.BOT_LOGIC]["type"] == "n8n-nodes-base.code"
    logic = nodes[wf.BOT_LOGIC]["parameters"]["jsCode"]
    assert "Replace this with your bot (AI Agent, etc.)" in logic
    assert "$json.body" in logic
    reply = nodes[wf.REPLY]
    assert reply["type"] == "n8n-nodes-base.respondToWebhook"
    assert reply["parameters"]["respondWith"] == "json"
    # A failing bot is answered 500 (chatd retries, then shows its fallback reply), not n8n's
    # 200 with an empty body, which chatd would take for "the reply comes by callback".
    assert nodes[wf.BOT_LOGIC]["onError"] == "continueErrorOutput"
    assert targets(workflow, wf.BOT_LOGIC, 1) == [wf.BOT_FAILED]
    failed = nodes[wf.BOT_FAILED]
    assert failed["type"] == "n8n-nodes-base.respondToWebhook"
    assert failed["parameters"]["options"]["responseCode"] == 500
    # A bad signature is answered 401, which chatd dead-letters.
    assert targets(workflow, wf.SIGNATURE_OK, 1) == [wf.REJECT]
    reject = nodes[wf.REJECT]
    assert reject["type"] == "n8n-nodes-base.respondToWebhook"
    assert reject["parameters"]["options"]["responseCode"] == 401
    assert json.loads(reject["parameters"]["responseBody"]) == {
        "error": "invalid webhook signature"
    }


def test_sync_respond_body_is_the_shape_chatd_reads() -> None:
    body = nodes_by_name(build("sync"))[wf.REPLY]["parameters"]["responseBody"]
    assert body == (
        "={{ JSON.stringify({ sessionId: $json.sessionId, response: $json.response,"
        " ...($json.actions ? { actions: $json.actions } : {}) }) }}"
    )
    # What that expression yields for the bot logic's output, as chatd parses it.
    logic_output = {
        "sessionId": "s-1",
        "replyTo": "m-1",
        "response": {"content": "Hi!", "type": "quick_reply", "quickReplies": ["Track my order"]},
    }
    sent = json.dumps({"sessionId": "s-1", "response": logic_output["response"]}).encode()
    reply = parse_reply_body(sent, mode="webhook")
    assert reply is not None
    assert reply.content == "Hi!"
    assert reply.message_type == "quick_reply"
    assert reply.metadata == {"quickReplies": ["Track my order"]}


def test_callback_webhook_logic_signing_http_request() -> None:
    workflow = build("callback", chatd_url="https://chat.shop.example/")
    nodes = nodes_by_name(workflow)
    webhook = nodes[wf.WEBHOOK]["parameters"]
    assert webhook["responseMode"] == "onReceived"
    assert webhook["options"]["responseCode"] == {
        "values": {"responseCode": "customCode", "customCode": 202}
    }
    assert main_path(workflow) == [
        wf.WEBHOOK,
        wf.SIGNED_CONTENT,
        wf.EXPECTED_SIGNATURE,
        wf.SIGNATURE_OK,
        wf.BOT_LOGIC,
        wf.CALLBACK_BODY,
        wf.SIGN_CALLBACK,
        wf.POST_CALLBACK,
    ]
    assert not any(n["type"] == "n8n-nodes-base.respondToWebhook" for n in workflow["nodes"])
    code = nodes[wf.CALLBACK_BODY]["parameters"]["jsCode"]
    assert "JSON.stringify(" in code
    assert 'const fallbackUrl = "https://chat.shop.example/api/chat/webhook";' in code
    sign = nodes[wf.SIGN_CALLBACK]
    assert sign["type"] == "n8n-nodes-base.crypto"
    assert sign["parameters"] == {
        "action": "hmac",
        "type": "SHA256",
        "value": "={{ $json.callbackBody }}",
        "dataPropertyName": "signature",
        "secret": wf.SECRET_PLACEHOLDER,
        "encoding": "hex",
    }
    post = nodes[wf.POST_CALLBACK]
    assert post["type"] == "n8n-nodes-base.httpRequest"
    params = post["parameters"]
    assert params["method"] == "POST"
    assert params["url"] == "={{ $json.callbackUrl }}"
    assert params["sendHeaders"] is True
    assert params["headerParameters"] == {
        "parameters": [{"name": "X-Webhook-Signature", "value": "={{ $json.signature }}"}]
    }
    # The signed string itself goes out, byte for byte.
    assert params["sendBody"] is True
    assert params["contentType"] == "raw"
    assert params["rawContentType"] == "application/json"
    assert params["body"] == "={{ $json.callbackBody }}"
    assert post["retryOnFail"] is True
    assert targets(workflow, wf.SIGNATURE_OK, 1) == [wf.REJECT]
    assert nodes[wf.REJECT]["type"] == "n8n-nodes-base.stopAndError"


@pytest.mark.parametrize("mode", MODES)
def test_setup_note_names_chatd_and_the_steps(mode: str) -> None:
    note = nodes_by_name(build(mode, webhook_path="shop"))[wf.SETUP_NOTE]
    assert note["type"] == "n8n-nodes-base.stickyNote"
    content = note["parameters"]["content"]
    for text in (CHATD, "Header Auth", "X-Webhook-Secret", "/webhook/shop", wf.SECRET_PLACEHOLDER):
        assert text in content


# --- secrets ------------------------------------------------------------------------------------


def test_builder_takes_no_secret() -> None:
    assert set(inspect.signature(wf.build_workflow).parameters) == {
        "mode",
        "chatd_url",
        "webhook_path",
        "n8n_mode",
    }


@pytest.mark.parametrize("mode", MODES)
def test_no_secret_values_in_the_workflow(mode: str) -> None:
    workflow = build(mode)
    crypto = [n for n in workflow["nodes"] if n["type"] == "n8n-nodes-base.crypto"]
    assert len(crypto) == (1 if mode == "sync" else 2)
    assert {n["parameters"]["secret"] for n in crypto} == {wf.SECRET_PLACEHOLDER}
    for node in workflow["nodes"]:
        for credential in node.get("credentials", {}).values():
            assert credential == {"id": None, "name": wf.HEADER_AUTH_CREDENTIAL}
    text = json.dumps(workflow)
    assert "whsec_" not in text
    assert SECRET not in text


# --- arguments ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs",
    [
        {"mode": "async"},
        {"chatd_url": "chat.shop.example"},
        {"chatd_url": "ftp://chat.shop.example"},
        {"chatd_url": "https://chat.shop.example/?x=1"},
        {"webhook_path": "/"},
        {"webhook_path": "a b"},
        {"n8n_mode": "chat"},
        # The sync and callback workflows read chatd's webhook payload, not the Chat Trigger's.
        {"n8n_mode": "chat_trigger"},
        {"mode": "callback", "n8n_mode": "chat_trigger"},
    ],
)
def test_bad_arguments_are_refused(kwargs: dict[str, Any]) -> None:
    args: dict[str, Any] = {"mode": "sync", "chatd_url": CHATD, **kwargs}
    with pytest.raises(ValueError):  # noqa: PT011 - each message names its argument
        wf.build_workflow(**args)


# --- signing recipes, in Python -----------------------------------------------------------------


def test_callback_recipe_matches_chatds_verifier() -> None:
    """JSON.stringify output, signed as the Crypto node does, is what chatd accepts."""
    vector = json.loads((FIXTURES / "n8n_callback_vector.json").read_text(encoding="utf-8"))
    # JSON.stringify of an object of strings, lists and dicts is json.dumps with these options.
    body = json.dumps(vector["object"], separators=(",", ":"), ensure_ascii=False)
    assert body == vector["callbackBody"]
    raw = body.encode("utf-8")  # what HTTP Request sends for a raw string body
    digest = hmac.new(vector["secret"].encode(), raw, hashlib.sha256).hexdigest()
    assert digest == vector["signature"] == hex_signature(vector["secret"], raw)
    headers = {"x-webhook-signature": digest, "content-type": "application/json"}
    assert verify_callback(headers, raw, [vector["secret"]], now=time.time()) == "hex"
    callback = parse_callback(json.loads(raw))
    assert callback.reply_to == vector["object"]["replyTo"]
    assert callback.reply.content == vector["object"]["response"]["content"]


def test_inbound_recipe_matches_chatds_signature() -> None:
    """`{webhook-id}.{webhook-timestamp}.{raw body}`, base64 HMAC: chatd's v1 signature."""
    _, body, headers = chatd_request("Grüße")
    signed = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.{body.decode()}"
    expected = base64.b64encode(
        hmac.new(SECRET.encode(), signed.encode(), hashlib.sha256).digest()
    ).decode()
    assert headers["webhook-signature"].split(" ") == [f"v1,{expected}"]
    assert standard_signature(SECRET, "job-42", int(headers["webhook-timestamp"]), body) == (
        "v1," + expected
    )


# --- the workflow's own JavaScript, run by a stand-in for n8n ----------------------------------

NODE = shutil.which("node")
needs_node = pytest.mark.skipif(NODE is None, reason="Node.js is not installed")


def run_in_stand_in(
    mode: str, headers: dict[str, str], body: bytes, *, bot_code: str | None = None
) -> dict[str, Any]:
    workflow = json.loads(json.dumps(build(mode)).replace(wf.SECRET_PLACEHOLDER, SECRET))
    if bot_code is not None:
        nodes_by_name(workflow)[wf.BOT_LOGIC]["parameters"]["jsCode"] = bot_code
    stdin = json.dumps(
        {"workflow": workflow, "request": {"headers": headers, "rawBody": body.decode()}}
    )
    assert NODE is not None
    done = subprocess.run(
        [NODE, str(FIXTURES / "n8n_harness.js")],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    return result


@needs_node
@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("Where is my order?", "I can help with your order. What is your order number?"),
        ('Grüße "Ann" \\ 🎉\nnew line', 'You said: Grüße "Ann" \\ 🎉\nnew line'),
    ],
)
def test_sync_workflow_answers_what_chatd_parses(content: str, expected: str) -> None:
    _, body, headers = chatd_request(content)
    result = run_in_stand_in("sync", headers, body)
    assert result["trace"][-1] == wf.REPLY
    assert result["status"] == 200
    reply = parse_reply_body(result["body"].encode(), mode="webhook")
    assert reply is not None
    assert reply.content == expected


@needs_node
def test_callback_workflow_posts_what_chatd_verifies() -> None:
    payload, body, headers = chatd_request('hello, "Ünïcødé" 🎉')
    result = run_in_stand_in("callback", headers, body)
    assert result["trace"][-1] == wf.POST_CALLBACK
    request = result["request"]
    assert request["method"] == "POST"
    assert request["url"] == payload["callbackUrl"]
    assert request["contentType"] == "application/json"
    raw = request["body"].encode("utf-8")
    assert verify_callback(request["headers"], raw, [SECRET], now=time.time()) == "hex"
    callback = parse_callback(json.loads(raw))
    assert callback.session_id == payload["sessionId"]
    assert callback.reply_to == payload["messageId"]
    assert callback.reply.message_type == "quick_reply"
    assert callback.reply.metadata["quickReplies"]


@needs_node
def test_callback_falls_back_to_chatd_url_without_callback_url() -> None:
    payload, _, _ = chatd_request()
    del payload["callbackUrl"]
    body = json.dumps(payload, separators=(",", ":")).encode()
    headers = {
        "x-webhook-secret": SECRET,
        **sign_headers([SECRET], "job-42", int(time.time()), body),
    }
    result = run_in_stand_in("callback", headers, body)
    assert result["request"]["url"] == f"{CHATD}/api/chat/webhook"


@needs_node
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("tamper", ["secret", "body", "stale"])
def test_bad_or_stale_signature_is_rejected(mode: str, tamper: str) -> None:
    now = int(time.time())
    _, body, headers = chatd_request(
        secret="another-secret" if tamper == "secret" else SECRET,
        ts=now - 3600 if tamper == "stale" else now,
    )
    if tamper == "body":
        body = body.replace(b"Where", b"There")
    result = run_in_stand_in(mode, headers, body)
    assert result["trace"][-1] == wf.REJECT
    assert wf.BOT_LOGIC not in result["trace"]
    if mode == "sync":
        assert result["status"] == 401
    else:
        assert "request" not in result
        assert result["error"]


@needs_node
def test_sync_bot_failure_is_answered_500() -> None:
    _, body, headers = chatd_request()
    result = run_in_stand_in("sync", headers, body, bot_code="throw new Error('model timeout');")
    assert result["trace"][-2:] == [wf.BOT_LOGIC, wf.BOT_FAILED]
    assert result["status"] == 500
