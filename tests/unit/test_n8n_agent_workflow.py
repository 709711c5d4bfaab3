"""The AI-agent workflow chatd prints (--mode agent): its shape, for both of chatd's n8n modes.

Real n8n runs it in tests/integration/test_n8n_real.py (streamed tokens, memory, signatures).
"""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

import pytest

from chatd.n8n import agent_workflow as aw
from chatd.n8n import nodes
from chatd.n8n import workflow as wf

CHATD = "https://chat.shop.example"
TRIGGERS = ("webhook", "chat_trigger")

# What chatd sends in "webhook" mode (the guide's payload plus callbackUrl and deliveryId).
PAYLOAD = {
    "sessionId": "8c1e7f0a-4d3b-4a53-9b1e-2f6d0c9a1b77",
    "messageId": "90041c3e-5b7a-4e0f-8d2c-6a9b3e1f0d42",
    "seq": 3,
    "userId": None,
    "guestEmail": None,
    "message": {"content": "Where is my order?", "type": "text", "timestamp": "2026-11-24T22:48Z"},
    "userContext": {"isAuthenticated": False},
    "sessionMetadata": {},
    "callbackUrl": f"{CHATD}/api/chat/webhook",
    "deliveryId": "job-42",
}


def build(trigger: str, **kwargs: Any) -> dict[str, Any]:
    return aw.build_agent_workflow(chatd_url=CHATD, trigger=trigger, **kwargs)  # type: ignore[arg-type]


def by_name(workflow: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {node["name"]: node for node in workflow["nodes"]}


def links(workflow: dict[str, Any], source: str, kind: str = "main") -> list[list[str]]:
    outputs = workflow["connections"].get(source, {}).get(kind, [])
    return [[link["node"] for link in output] for output in outputs]


def trigger_name(trigger: str) -> str:
    return nodes.WEBHOOK if trigger == "webhook" else aw.CHAT_TRIGGER


@pytest.mark.parametrize("trigger", TRIGGERS)
def test_json_serialisable_stable_and_inactive(trigger: str) -> None:
    first = json.dumps(build(trigger), sort_keys=True)
    assert json.dumps(build(trigger), sort_keys=True) == first
    assert json.loads(first) == build(trigger)
    workflow = build(trigger)
    assert workflow["active"] is False
    assert workflow["settings"] == {"executionOrder": "v1"}
    assert workflow["name"] == f"chatd AI agent ({trigger.replace('_', ' ')})"


@pytest.mark.parametrize("trigger", TRIGGERS)
def test_the_cli_entry_point_builds_the_same(trigger: str) -> None:
    built = wf.build_workflow(mode="agent", chatd_url=CHATD, n8n_mode=trigger)  # type: ignore[arg-type]
    assert built == build(trigger)


@pytest.mark.parametrize("trigger", TRIGGERS)
def test_connections_model_and_memory_feed_the_agent(trigger: str) -> None:
    workflow = build(trigger)
    names = [node["name"] for node in workflow["nodes"]]
    assert len(names) == len(set(names))
    for source, kinds in workflow["connections"].items():
        assert source in names
        for kind, outputs in kinds.items():
            for output in outputs:
                for link in output:
                    assert link["node"] in names
                    assert link["type"] == kind
                    assert link["index"] == 0
    assert links(workflow, aw.MODEL, "ai_languageModel") == [[aw.AGENT]]
    assert links(workflow, aw.MEMORY, "ai_memory") == [[aw.AGENT]]
    assert set(workflow["connections"][aw.MODEL]) == {"ai_languageModel"}
    assert set(workflow["connections"][aw.MEMORY]) == {"ai_memory"}
    linked = set(workflow["connections"]) | {
        link["node"]
        for kinds in workflow["connections"].values()
        for outputs in kinds.values()
        for output in outputs
        for link in output
    }
    assert linked == set(names) - {nodes.SETUP_NOTE}
    # The agent's reply is the end of the line: n8n streams it, no node after it.
    assert aw.AGENT not in workflow["connections"]


@pytest.mark.parametrize("trigger", TRIGGERS)
def test_ids_unique_stable_and_not_shared_with_other_workflows(trigger: str) -> None:
    workflow = build(trigger)
    ids = [node["id"] for node in workflow["nodes"]]
    assert len(ids) == len(set(ids))
    assert all(str(uuid.UUID(node_id)) == node_id for node_id in ids)
    hook = by_name(workflow)[trigger_name(trigger)]["webhookId"]
    assert str(uuid.UUID(hook)) == hook
    others = [
        build("chat_trigger" if trigger == "webhook" else "webhook"),
        build(trigger, webhook_path="shop-2"),
        wf.build_workflow(mode="sync", chatd_url=CHATD),
        wf.build_workflow(mode="callback", chatd_url=CHATD),
    ]
    for other in others:
        assert not {node["id"] for node in other["nodes"]} & set(ids)


@pytest.mark.parametrize("trigger", TRIGGERS)
def test_nodes_use_the_targeted_types(trigger: str) -> None:
    workflow = build(trigger)
    for node in workflow["nodes"]:
        assert node["typeVersion"] == aw.TYPE_VERSIONS[node["type"]]
        assert all(isinstance(xy, int) for xy in node["position"])
    # Agent V3 streams every token as it comes; 2.x's V2 holds them until a model call ends.
    assert by_name(workflow)[aw.AGENT]["typeVersion"] == 3
    # lmChatOpenAi 1.3 defaults to OpenAI's Responses API, which compatible servers lack.
    assert by_name(workflow)[aw.MODEL]["typeVersion"] == 1.2


@pytest.mark.parametrize("trigger", TRIGGERS)
def test_agent_streams_with_a_shop_prompt_and_a_clearly_named_model(trigger: str) -> None:
    found = by_name(build(trigger))
    agent = found[aw.AGENT]
    assert agent["type"] == "@n8n/n8n-nodes-langchain.agent"
    assert agent["parameters"]["options"] == {
        "systemMessage": aw.SYSTEM_PROMPT,
        "enableStreaming": True,
    }
    assert "shop" in aw.SYSTEM_PROMPT
    model = found[aw.MODEL]
    assert model["type"] == "@n8n/n8n-nodes-langchain.lmChatOpenAi"
    assert model["parameters"]["model"] == {"__rl": True, "mode": "id", "value": aw.DEFAULT_MODEL}
    assert model["credentials"] == {"openAiApi": {"id": None, "name": aw.OPENAI_CREDENTIAL}}
    memory = found[aw.MEMORY]
    assert memory["type"] == "@n8n/n8n-nodes-langchain.memoryBufferWindow"
    assert memory["parameters"]["contextWindowLength"] == aw.MEMORY_WINDOW


def _walk(expression: str, document: dict[str, Any]) -> Any:
    """Follow `$('chatd webhook').item.json.body.a.b` through the body chatd sends."""
    match = re.fullmatch(r"=\{\{ \$\('(.+)'\)\.item\.json\.body\.([\w.]+) \}\}", expression)
    assert match is not None, expression
    assert match[1] == nodes.WEBHOOK
    value: Any = document
    for key in match[2].split("."):
        value = value[key]
    return value


def test_webhook_variant_checks_chatd_then_streams() -> None:
    workflow = build("webhook", webhook_path="/shop/bot/")
    found = by_name(workflow)
    webhook = found[nodes.WEBHOOK]["parameters"]
    assert webhook["responseMode"] == "streaming"
    assert webhook["path"] == "shop/bot"
    assert webhook["authentication"] == "headerAuth"
    assert webhook["options"] == {"rawBody": True}  # the signature is over the raw bytes
    assert found[nodes.WEBHOOK]["credentials"] == {
        "httpHeaderAuth": {"id": None, "name": nodes.HEADER_AUTH_CREDENTIAL}
    }
    path = [nodes.WEBHOOK]
    while outputs := links(workflow, path[-1]):
        path.append(outputs[0][0])
    assert path == [
        nodes.WEBHOOK,
        nodes.SIGNED_CONTENT,
        nodes.EXPECTED_SIGNATURE,
        nodes.SIGNATURE_OK,
        aw.AGENT,
    ]
    # n8n has answered 200 before any node runs: a bad signature ends the stream with an
    # "error" chunk (Stop and Error) rather than a 401.
    assert links(workflow, nodes.SIGNATURE_OK) == [[aw.AGENT], [aw.REJECT]]
    assert found[aw.REJECT]["type"] == "n8n-nodes-base.stopAndError"
    agent = found[aw.AGENT]["parameters"]
    assert agent["promptType"] == "define"
    assert _walk(agent["text"], PAYLOAD) == "Where is my order?"
    memory = found[aw.MEMORY]["parameters"]
    assert memory["sessionIdType"] == "customKey"
    assert _walk(memory["sessionKey"], PAYLOAD) == PAYLOAD["sessionId"]


def test_chat_trigger_variant_reads_chatds_chat_body() -> None:
    workflow = build("chat_trigger")
    found = by_name(workflow)
    trigger = found[aw.CHAT_TRIGGER]
    assert trigger["type"] == "@n8n/n8n-nodes-langchain.chatTrigger"
    assert trigger["parameters"] == {
        "public": True,
        "mode": "webhook",
        "authentication": "basicAuth",
        "options": {"responseMode": "streaming"},
    }
    assert trigger["credentials"] == {
        "httpBasicAuth": {"id": None, "name": aw.BASIC_AUTH_CREDENTIAL}
    }
    assert links(workflow, aw.CHAT_TRIGGER) == [[aw.AGENT]]
    # chatd sends {action: "sendMessage", sessionId, chatInput, metadata}: the trigger's item.
    assert found[aw.AGENT]["parameters"]["promptType"] == "auto"
    assert found[aw.AGENT]["parameters"]["text"] == "={{ $json.chatInput }}"
    assert found[aw.MEMORY]["parameters"]["sessionIdType"] == "fromInput"
    kinds = {node["type"] for node in workflow["nodes"]}
    assert not kinds & {"n8n-nodes-base.webhook", "n8n-nodes-base.crypto", "n8n-nodes-base.code"}


@pytest.mark.parametrize("trigger", TRIGGERS)
def test_setup_note_says_how_to_plug_in_a_model(trigger: str) -> None:
    workflow = build(trigger, webhook_path="shop")
    note = by_name(workflow)[nodes.SETUP_NOTE]["parameters"]["content"]
    for text in (aw.OPENAI_CREDENTIAL, "Base URL", aw.DEFAULT_MODEL, "Publish", "restarts"):
        assert text in note
    if trigger == "webhook":
        for text in (
            CHATD,
            nodes.HEADER_AUTH_CREDENTIAL,
            "/webhook/shop",
            nodes.SECRET_PLACEHOLDER,
        ):
            assert text in note
    else:
        hook = by_name(workflow)[aw.CHAT_TRIGGER]["webhookId"]
        assert f"/webhook/{hook}/chat" in note
        assert aw.BASIC_AUTH_CREDENTIAL in note


@pytest.mark.parametrize("trigger", TRIGGERS)
def test_no_secret_in_the_workflow(trigger: str) -> None:
    workflow = build(trigger)
    for node in workflow["nodes"]:
        if node["type"] == "n8n-nodes-base.crypto":
            assert node["parameters"]["secret"] == nodes.SECRET_PLACEHOLDER
        for credential in node.get("credentials", {}).values():
            assert credential["id"] is None
    assert "sk-" not in json.dumps(workflow)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"trigger": "chat"},
        {"chatd_url": "chat.shop.example"},
        {"webhook_path": "a?b"},
    ],
)
def test_bad_arguments_are_refused(kwargs: dict[str, Any]) -> None:
    args: dict[str, Any] = {"chatd_url": CHATD, **kwargs}
    with pytest.raises(ValueError):  # noqa: PT011 - each message names its argument
        aw.build_agent_workflow(**args)
