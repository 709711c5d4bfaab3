"""The AI-agent workflow chatd prints (`chatd n8n-workflow --mode agent`): a streamed reply.

An AI Agent node with an OpenAI-compatible chat model and a conversation memory keyed by chatd's
sessionId answers the shopper; n8n streams the model's tokens back in the HTTP response as
newline-delimited JSON chunks ({"type": "begin" | "item" | "end" | "error", "content",
"metadata"}; n8n 2.x also sends {"type": "keepalive"} every 30 s). Two triggers, after chatd's
n8n.mode:

- "webhook": Webhook (Respond: "Streaming", Header Auth X-Webhook-Secret, Raw Body) -> chatd's
  Standard Webhooks signature check (as in the sync and callback workflows) -> AI Agent. The
  streaming Webhook answers 200 and its headers before any node runs, so a bad signature
  cannot be a 401 here: its Stop and Error node ends the stream with an "error" chunk instead.
  A wrong X-Webhook-Secret is still refused with 403 before anything is streamed.
- "chat_trigger": Chat Trigger (public, Embedded Chat, Basic Auth, Response Mode "Streaming")
  -> AI Agent. chatd sends {action: "sendMessage", sessionId, chatInput, metadata}; the trigger
  keeps no raw body, so the signature cannot be checked; Basic Auth (user "chatd", password =
  chatd's webhook secret, given in the URL chatd posts to) keeps strangers out.

Node types and versions, loaded by n8n 1.123 and 2.x alike (from n8n-io/n8n: the Agent's V3
streams each token as it comes (utils/agent-execution/processEventStream.ts); in 2.x its V2
holds a model call's tokens until the call ends, so V2 would not stream token by token):

    n8n-nodes-base.webhook                         2.1  responseMode "streaming"
    @n8n/n8n-nodes-langchain.chatTrigger           1.3  public, mode "webhook", basicAuth,
                                                        options.responseMode "streaming"
    @n8n/n8n-nodes-langchain.agent                 3    promptType, text,
                                                        options.systemMessage, enableStreaming
    @n8n/n8n-nodes-langchain.lmChatOpenAi          1.2  model (resource locator): Chat
                                                        Completions (1.3 defaults to OpenAI's
                                                        Responses API, which few other servers
                                                        speak)
    @n8n/n8n-nodes-langchain.memoryBufferWindow    1.3  sessionIdType, sessionKey,
                                                        contextWindowLength

Secrets: none embedded. Credentials are referenced by name (id null; n8n links them by name on
import): the Header Auth one of the other workflows, or a Basic Auth one for the Chat Trigger,
and an "OpenAI" one whose Base URL may point at any OpenAI-compatible server.
"""

from __future__ import annotations

from typing import Any, Literal

from chatd.n8n.nodes import (
    CODE_TYPE,
    CRYPTO_TYPE,
    DX,
    HEADER_AUTH_CREDENTIAL,
    IF_TYPE,
    SECRET_HEADER,
    SECRET_PLACEHOLDER,
    SETUP_NOTE,
    SIGNATURE_OK,
    STICKY_NOTE_TYPE,
    STOP_AND_ERROR_TYPE,
    WEBHOOK,
    WEBHOOK_TYPE,
    X0,
    Y_ALT,
    Builder,
    Y,
    add_signature_check,
    add_webhook,
    check_path,
    check_url,
)

Trigger = Literal["webhook", "chat_trigger"]

CHAT_TRIGGER_TYPE = "@n8n/n8n-nodes-langchain.chatTrigger"
AGENT_TYPE = "@n8n/n8n-nodes-langchain.agent"
OPENAI_MODEL_TYPE = "@n8n/n8n-nodes-langchain.lmChatOpenAi"
MEMORY_TYPE = "@n8n/n8n-nodes-langchain.memoryBufferWindow"

TYPE_VERSIONS: dict[str, float] = {
    WEBHOOK_TYPE: 2.1,
    CODE_TYPE: 2,
    CRYPTO_TYPE: 1,
    IF_TYPE: 2,
    STOP_AND_ERROR_TYPE: 1,
    STICKY_NOTE_TYPE: 1,
    CHAT_TRIGGER_TYPE: 1.3,
    AGENT_TYPE: 3,
    OPENAI_MODEL_TYPE: 1.2,
    MEMORY_TYPE: 1.3,
}

OPENAI_CREDENTIAL = "chatd OpenAI"
BASIC_AUTH_CREDENTIAL = "chatd chat trigger"
BASIC_AUTH_USER = "chatd"
DEFAULT_MODEL = "gpt-4o-mini"
MEMORY_WINDOW = 10  # past exchanges the model is given

# Node names: connections refer to nodes by name, so these are part of the format.
CHAT_TRIGGER = "chatd chat trigger"
AGENT = "Shop assistant"
MODEL = "OpenAI chat model"
MEMORY = "Conversation memory"
REJECT = "Reject: bad signature"

SYSTEM_PROMPT = """\
You are the assistant of an online shop, answering shoppers in the shop's chat widget.
Be brief, friendly and accurate, and answer in the shopper's language.
Use Markdown sparingly: **bold** for key facts, short lists, links to the shop's pages.
You cannot see orders, stock or prices: never invent them. When a shopper needs something you
cannot answer, say so and offer to hand the conversation to a person."""

_MESSAGE = "={{ $('" + WEBHOOK + "').item.json.body.message.content }}"
_SESSION = "={{ $('" + WEBHOOK + "').item.json.body.sessionId }}"


def build_agent_workflow(
    *, chatd_url: str, webhook_path: str = "chatd", trigger: Trigger = "webhook"
) -> dict[str, Any]:
    """The agent workflow for chatd's n8n.mode `trigger`, ready for `json.dumps` and import.

    `chatd_url` is chatd's public base URL (for the setup note); `webhook_path` the Webhook
    node's path (the Chat Trigger's URL is <n8n>/webhook/<its webhookId>/chat instead; the path
    still seeds the ids). ValueError on a bad argument.
    """
    if trigger not in ("webhook", "chat_trigger"):
        raise ValueError(f"trigger must be 'webhook' or 'chat_trigger', not {trigger!r}")
    base = check_url(chatd_url)
    path = check_path(webhook_path)
    builder = Builder(f"agent\n{trigger}\n{base}\n{path}", TYPE_VERSIONS)

    if trigger == "webhook":
        add_webhook(builder, path, response_mode="streaming", options={"rawBody": True})
        add_signature_check(builder)
        agent_column = 4
        prompt = {"promptType": "define", "text": _MESSAGE}
        memory_key = {"sessionIdType": "customKey", "sessionKey": _SESSION}
        source = SIGNATURE_OK
    else:
        chat = builder.node(
            CHAT_TRIGGER,
            CHAT_TRIGGER_TYPE,
            {
                "public": True,
                "mode": "webhook",
                "authentication": "basicAuth",
                "options": {"responseMode": "streaming"},
            },
            credentials={"httpBasicAuth": {"id": None, "name": BASIC_AUTH_CREDENTIAL}},
        )
        chat["webhookId"] = builder.uuid("webhookId")
        agent_column = 1
        # The trigger's item is chatd's body: chatInput is the message, sessionId its session.
        prompt = {"promptType": "auto", "text": "={{ $json.chatInput }}"}
        memory_key = {"sessionIdType": "fromInput"}
        source = CHAT_TRIGGER

    builder.node(
        AGENT,
        AGENT_TYPE,
        {**prompt, "options": {"systemMessage": SYSTEM_PROMPT, "enableStreaming": True}},
    )
    builder.connect(source, AGENT)  # from the If: output 0, signature valid
    below = X0 + agent_column * DX
    builder.node(
        MODEL,
        OPENAI_MODEL_TYPE,
        {"model": {"__rl": True, "mode": "id", "value": DEFAULT_MODEL}, "options": {}},
        credentials={"openAiApi": {"id": None, "name": OPENAI_CREDENTIAL}},
        position=[below - DX // 2, Y_ALT],
    )
    builder.node(
        MEMORY,
        MEMORY_TYPE,
        {**memory_key, "contextWindowLength": MEMORY_WINDOW},
        position=[below + DX // 2, Y_ALT],
    )
    builder.connect(MODEL, AGENT, kind="ai_languageModel")
    builder.connect(MEMORY, AGENT, kind="ai_memory")
    if trigger == "webhook":
        builder.node(
            REJECT,
            STOP_AND_ERROR_TYPE,
            {"errorMessage": "chatd webhook signature is invalid or stale"},
            position=[below, Y_ALT + 220],
        )
        builder.connect(SIGNATURE_OK, REJECT, output=1)

    note = _webhook_note(base, path) if trigger == "webhook" else _chat_trigger_note(builder)
    builder.node(
        SETUP_NOTE,
        STICKY_NOTE_TYPE,
        {"content": note, "width": 760, "height": 520, "color": 5},
        position=[X0 - 40, Y - 600],
    )
    return builder.workflow(f"chatd AI agent ({trigger.replace('_', ' ')})")


def _model_steps(first: int) -> str:
    return (
        f'{first}. Credentials > New > **OpenAI**, named "{OPENAI_CREDENTIAL}": your API key; '
        "Base URL https://api.openai.com/v1, or any OpenAI-compatible server's /v1 URL.\n"
        f'{first + 1}. In "{MODEL}", set the model (now `{DEFAULT_MODEL}`); in "{AGENT}", '
        "the system message.\n"
    )


def _webhook_note(base: str, path: str) -> str:
    return (
        "## chatd AI agent (streamed replies)\n"
        f'chatd: {base} with n8n.mode = "webhook"\n\n'
        f'1. Credentials > New > **Header Auth**, named "{HEADER_AUTH_CREDENTIAL}": '
        f"Name `{SECRET_HEADER}`, Value = chatd's CHAT_WEBHOOK_SECRET.\n"
        f'2. In "HMAC of signed content", replace `{SECRET_PLACEHOLDER}` with the same secret.\n'
        + _model_steps(3)
        + f"5. CHAT_N8N_WEBHOOK_URL=<your n8n>/webhook/{path}\n"
        "6. Publish (activate) the workflow.\n\n"
        f'"{MEMORY}" keeps the last {MEMORY_WINDOW} exchanges per chatd session in n8n\'s '
        "memory: lost when n8n restarts, not shared between n8n workers (use a Postgres or "
        "Redis chat memory with the same Session ID for that). A bad or stale signature ends "
        "the stream with an error chunk; a wrong secret is answered 403.\n\n"
        "Files the shopper attached: `{{ $json.body.message.attachments }}` (name, type, size, "
        "sha256, a signed `url` valid for an hour). An HTTP Request node GETs one "
        '(Response Format "File") for any node that takes a file.'
    )


def _chat_trigger_note(builder: Builder) -> str:
    webhook_id = builder.uuid("webhookId")
    return (
        "## chatd AI agent (streamed replies, Chat Trigger)\n"
        'chatd with n8n.mode = "chat_trigger"\n\n'
        f'1. Credentials > New > **Basic Auth**, named "{BASIC_AUTH_CREDENTIAL}": user '
        f"`{BASIC_AUTH_USER}`, password = chatd's CHAT_WEBHOOK_SECRET.\n"
        + _model_steps(2)
        + f"4. CHAT_N8N_WEBHOOK_URL=https://{BASIC_AUTH_USER}:<secret>@<your n8n>/webhook/"
        f"{webhook_id}/chat (URL-encode the secret)\n"
        "5. Publish (activate) the workflow.\n\n"
        f'"{MEMORY}" keeps the last {MEMORY_WINDOW} exchanges per chatd session in n8n\'s '
        "memory: lost when n8n restarts, not shared between n8n workers.\n\n"
        "Files the shopper attached arrive as n8n's chat widget uploads them (binary data "
        f'data0, data1, ...; `{{{{ $json.files }}}}` lists them): "{AGENT}" passes images to '
        "a model that reads them (option Automatically Passthrough Binary Images). "
        "`{{ $json.metadata }}` (JSON text) has each file's signed `url` too."
    )
