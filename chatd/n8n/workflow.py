"""An importable n8n workflow that speaks chatd's webhook contract (`chatd n8n-workflow`).

`build_workflow(mode=..., chatd_url=...)` returns the workflow as a dict in n8n's export format
({name, nodes, connections, settings, active, ...}); `json.dumps` it and import the file in n8n
(Workflows > Import from File, or `n8n import:workflow --input=FILE`). Pure: no I/O.

Three shapes, one per way chatd takes a reply ("agent", a streamed AI-agent reply, is built in
chatd/n8n/agent_workflow.py; the nodes all three share are in chatd/n8n/nodes.py):

- "sync": Webhook (Respond: "Using 'Respond to Webhook' node") -> signature check -> your bot
  logic -> Respond to Webhook with {"sessionId", "response": {"content", "type", ...}}, which
  chatd reads from the HTTP response body. The bot node's error output (On Error: "Continue
  (using error output)") answers 500: n8n answers an execution that fails before any Respond
  to Webhook node with 200 and an empty body, which chatd would take for "accepted, the reply
  comes by callback" (the shopper would get nothing); a 500 is retried, then turned into
  chatd's fallback reply.
- "callback": Webhook (Respond: "Immediately", 202 {"message": "Workflow was started"}, which
  chatd takes as "accepted, the reply follows") -> signature check -> your bot logic -> a Code
  node builds the callback body *as a string* (JSON.stringify) -> a Crypto node signs exactly
  that string (HMAC-SHA256, hex) -> HTTP Request POSTs exactly that string (Body Content Type
  "Raw", application/json) to `callbackUrl` with header X-Webhook-Signature. chatd verifies the
  hex HMAC over the raw bytes it receives, so the body must not be re-serialised in between.
  n8n never re-runs a failed execution itself; the POST node retries (5 tries, 5 s apart), which
  is safe because chatd stores the same reply to the same message once.

Both check chatd's Standard Webhooks signature before the bot runs: the Webhook node's "Raw Body"
option keeps the request bytes in the binary field "data" (re-serialising the parsed `body`
would not reproduce them: key order, number formats and escapes may differ), a Code node builds
`{webhook-id}.{webhook-timestamp}.{raw body}` with `this.helpers.getBinaryDataBuffer`, a Crypto
node computes its base64 HMAC-SHA256 and an If node compares it with the `v1,` entries of the
webhook-signature header and checks the timestamp is within 5 minutes. A mismatch answers 401 in
sync mode (chatd dead-letters it) and stops the execution with an error in callback mode. The
Crypto node keys the HMAC with the secret's UTF-8 bytes, so this check needs a plain secret: a
Standard Webhooks "whsec_<base64>" secret is keyed with its decoded bytes, which a Crypto node
cannot express (delete the three check nodes if you use one; header auth still applies).

Node types and typeVersions targeted, older versions that n8n 1.x and 2.x both still load (from
n8n-io/n8n packages/nodes-base: Webhook/Webhook.node.ts + description.ts + utils.ts,
RespondToWebhook/RespondToWebhook.node.ts, HttpRequest/V3/Description.ts +
HttpRequestV3.node.ts, Crypto/v1/CryptoV1.node.ts, If/V2/IfV2.node.ts, Code; the shape of an
export from its test workflows, e.g. Crypto/test/CryptoTest.workflow.json):

    n8n-nodes-base.webhook           2    httpMethod, path, authentication "headerAuth",
                                          responseMode "responseNode" | "onReceived",
                                          options.rawBody, options.responseCode
    n8n-nodes-base.code              2    mode, jsCode (JavaScript)
    n8n-nodes-base.crypto            1    action "hmac", type "SHA256", value, secret,
                                          encoding "base64" | "hex", dataPropertyName
    n8n-nodes-base.if                2    conditions (filter: boolean "true")
    n8n-nodes-base.respondToWebhook  1.1  respondWith "json", responseBody, options.responseCode
    n8n-nodes-base.httpRequest       4.2  method, url, sendHeaders + headerParameters,
                                          sendBody, contentType "raw", rawContentType, body
    n8n-nodes-base.stopAndError      1    errorMessage
    n8n-nodes-base.stickyNote        1    content, width, height

Both workflows were imported into n8n 2.7.5 and 1.123.81 (with and without task runners) with
`n8n import:workflow`, their credential linked by name, activated, and driven with chatd-signed
requests: replies, 403/401/500 answers and callbacks were checked with chatd's own
parse_reply_body, verify_callback and parse_callback. tests/integration/test_n8n_real.py does so
on every test run, in the n8n version tests/n8n.py pins, beside the agent workflow.

Secrets: none is embedded. The Webhook node references an n8n "Header Auth" credential by name
(HEADER_AUTH_CREDENTIAL, id null: n8n resolves a null id by name and type when the workflow is
saved, else the user picks the credential); the user creates it with header name
X-Webhook-Secret and chatd's CHAT_WEBHOOK_SECRET as value. The Crypto nodes' "secret" parameter
is the placeholder string SECRET_PLACEHOLDER ("REPLACE_WITH_CHAT_WEBHOOK_SECRET"), to be replaced
by the same secret after import. (Crypto v1 keeps its secret as a node parameter; n8n variables
($vars) need a paid plan, $env is blocked by default since n8n 2.0 (N8N_BLOCK_ENV_ACCESS_IN_NODE)
and Crypto v2, which reads the secret from a "Crypto" credential, only exists in 2.x releases
from early 2026 on.)

Node ids and the webhook id are uuid5 values derived from the mode, chatd_url, webhook_path and
node name, so the same arguments always give the same JSON.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from chatd.n8n import agent_workflow
from chatd.n8n.nodes import (
    CODE_TYPE,
    CRYPTO_TYPE,
    DX,
    EXPECTED_SIGNATURE,
    HEADER_AUTH_CREDENTIAL,
    HTTP_REQUEST_TYPE,
    IF_TYPE,
    RESPOND_TYPE,
    SECRET_HEADER,
    SECRET_PLACEHOLDER,
    SETUP_NOTE,
    SIGNATURE_OK,
    SIGNED_CONTENT,
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
    hmac_params,
)
from chatd.n8n.scripts import BOT_LOGIC_JS, CALLBACK_BODY_JS, SYNC_REPLY_BODY

Mode = Literal["sync", "callback", "agent"]
N8nMode = Literal["webhook", "chat_trigger"]  # chatd's n8n.mode: what it sends n8n

TYPE_VERSIONS: dict[str, float] = {
    WEBHOOK_TYPE: 2,
    CODE_TYPE: 2,
    CRYPTO_TYPE: 1,
    IF_TYPE: 2,
    RESPOND_TYPE: 1.1,
    HTTP_REQUEST_TYPE: 4.2,
    STOP_AND_ERROR_TYPE: 1,
    STICKY_NOTE_TYPE: 1,
}

CALLBACK_PATH = "/api/chat/webhook"
FILES_STEP = (
    "6. Files the shopper attached are in `{{ $json.body.message.attachments }}`: id, name, "
    "type, size, sha256 and a signed `url` (valid for an hour, no credentials needed). To "
    "fetch one, add an **HTTP Request** node: GET `{{ $json.body.message.attachments[0].url }}`, "
    'Options > Response > Response Format "File"; its binary output feeds any node that '
    "takes a file (an AI model that reads images, Google Drive, email)."
)
CALLBACK_RETRY: dict[str, Any] = {"retryOnFail": True, "maxTries": 5, "waitBetweenTries": 5000}

# Node names: connections refer to nodes by name, so these are part of the format.
BOT_LOGIC = "Your bot logic"
REPLY = "Reply to chatd"
REJECT = "Reject: bad signature"
BOT_FAILED = "Bot failed"
CALLBACK_BODY = "Build callback body"
SIGN_CALLBACK = "Sign callback body"
POST_CALLBACK = "POST reply to chatd"

__all__ = [
    "BOT_FAILED",
    "BOT_LOGIC",
    "CALLBACK_BODY",
    "EXPECTED_SIGNATURE",
    "HEADER_AUTH_CREDENTIAL",
    "POST_CALLBACK",
    "REJECT",
    "REPLY",
    "SECRET_HEADER",
    "SECRET_PLACEHOLDER",
    "SETUP_NOTE",
    "SIGNATURE_OK",
    "SIGNED_CONTENT",
    "SIGN_CALLBACK",
    "TYPE_VERSIONS",
    "WEBHOOK",
    "build_workflow",
]


def build_workflow(
    *,
    mode: Mode,
    chatd_url: str,
    webhook_path: str = "chatd",
    n8n_mode: N8nMode = "webhook",
) -> dict[str, Any]:
    """The n8n workflow for `mode`, ready for `json.dumps` and n8n's import.

    `chatd_url` is chatd's public base URL (http or https); it fills the callback URL used when a
    request carries no callbackUrl, and the setup note. `webhook_path` is the Webhook node's
    path: the production URL is <n8n>/webhook/<webhook_path>. `n8n_mode` is chatd's n8n.mode:
    "chat_trigger" gets the agent behind a Chat Trigger (chatd/n8n/agent_workflow.py); the sync and
    callback workflows start with a Webhook node, for "webhook". ValueError on a bad argument.
    """
    if mode not in ("sync", "callback", "agent"):
        raise ValueError(f"mode must be 'sync', 'callback' or 'agent', not {mode!r}")
    if n8n_mode not in ("webhook", "chat_trigger"):
        raise ValueError(f"n8n_mode must be 'webhook' or 'chat_trigger', not {n8n_mode!r}")
    if mode == "agent":
        return agent_workflow.build_agent_workflow(
            chatd_url=chatd_url, webhook_path=webhook_path, trigger=n8n_mode
        )
    if n8n_mode == "chat_trigger":
        raise ValueError(
            f"the {mode} workflow starts with a Webhook node, which reads chatd's webhook payload;"
            " with n8n.mode = 'chat_trigger' use the agent workflow"
        )
    base = check_url(chatd_url)
    path = check_path(webhook_path)
    builder = Builder(f"{mode}\n{base}\n{path}", TYPE_VERSIONS)

    webhook_options: dict[str, Any] = {"rawBody": True}
    if mode == "callback":
        # 202 Accepted with n8n's {"message": "Workflow was started"}: chatd stores no reply
        # and waits for the callback. (Webhook v2 reads options.responseCode.values.)
        webhook_options["responseCode"] = {
            "values": {"responseCode": "customCode", "customCode": 202}
        }
    add_webhook(
        builder,
        path,
        response_mode="responseNode" if mode == "sync" else "onReceived",
        options=webhook_options,
    )
    add_signature_check(builder)
    bot = builder.node(BOT_LOGIC, CODE_TYPE, {"mode": "runOnceForEachItem", "jsCode": BOT_LOGIC_JS})
    builder.connect(SIGNATURE_OK, BOT_LOGIC)  # output 0: true

    if mode == "sync":
        builder.node(
            REPLY,
            RESPOND_TYPE,
            {"respondWith": "json", "responseBody": SYNC_REPLY_BODY, "options": {}},
        )
        builder.connect(BOT_LOGIC, REPLY)
        # A workflow that fails before any Respond to Webhook node is answered 200 with an
        # empty body, which chatd takes for "accepted, the reply comes by callback": the
        # shopper would wait forever. The bot's error output answers 500 instead, which chatd
        # retries and, at its attempt limit, turns into its fallback reply.
        bot["onError"] = "continueErrorOutput"
        builder.node(
            BOT_FAILED,
            RESPOND_TYPE,
            {
                "respondWith": "json",
                "responseBody": json.dumps({"error": "bot failed"}),
                "options": {"responseCode": 500},
            },
            position=[X0 + 5 * DX, Y_ALT],
        )
        builder.connect(BOT_LOGIC, BOT_FAILED, output=1)
        builder.node(
            REJECT,
            RESPOND_TYPE,
            {
                "respondWith": "json",
                "responseBody": json.dumps({"error": "invalid webhook signature"}),
                "options": {"responseCode": 401},
            },
            position=[X0 + 4 * DX, Y_ALT],
        )
    else:
        fallback = json.dumps(base + CALLBACK_PATH)
        builder.node(
            CALLBACK_BODY,
            CODE_TYPE,
            {
                "mode": "runOnceForEachItem",
                "jsCode": CALLBACK_BODY_JS.replace("__FALLBACK_URL__", fallback),
            },
        )
        builder.node(
            SIGN_CALLBACK,
            CRYPTO_TYPE,
            hmac_params("={{ $json.callbackBody }}", "signature", "hex"),
        )
        post = builder.node(
            POST_CALLBACK,
            HTTP_REQUEST_TYPE,
            {
                "method": "POST",
                "url": "={{ $json.callbackUrl }}",
                "sendHeaders": True,
                "headerParameters": {
                    "parameters": [
                        {"name": "X-Webhook-Signature", "value": "={{ $json.signature }}"}
                    ]
                },
                "sendBody": True,
                "contentType": "raw",
                "rawContentType": "application/json",
                "body": "={{ $json.callbackBody }}",
                "options": {},
            },
        )
        # Node-level "Retry On Fail" (n8n caps it at 5 tries, 5 s apart) rides out a chatd
        # restart; chatd stores a given reply to a given message once, however often it comes.
        post.update(CALLBACK_RETRY)
        builder.connect(BOT_LOGIC, CALLBACK_BODY)
        builder.connect(CALLBACK_BODY, SIGN_CALLBACK)
        builder.connect(SIGN_CALLBACK, POST_CALLBACK)
        builder.node(
            REJECT,
            STOP_AND_ERROR_TYPE,
            {"errorMessage": "chatd webhook signature is invalid or stale"},
            position=[X0 + 4 * DX, Y_ALT],
        )
    builder.connect(SIGNATURE_OK, REJECT, output=1)  # output 1: false

    builder.node(
        SETUP_NOTE,
        STICKY_NOTE_TYPE,
        {"content": _setup_note(mode, base, path), "width": 700, "height": 420, "color": 5},
        position=[X0 - 40, Y - 480],
    )
    return builder.workflow(f"chatd bot ({mode})")


def _setup_note(mode: Literal["sync", "callback"], base: str, path: str) -> str:
    crypto_nodes = (
        f'"{EXPECTED_SIGNATURE}"'
        if mode == "sync"
        else f'"{EXPECTED_SIGNATURE}" and "{SIGN_CALLBACK}"'
    )
    reply = (
        f'"{REPLY}" answers chatd\'s request with {{sessionId, response}}.'
        if mode == "sync"
        else f'n8n answers 202 at once; "{POST_CALLBACK}" then POSTs the signed reply to '
        f"callbackUrl (fallback {base}{CALLBACK_PATH}), retrying 5 times 5 s apart; after "
        "that the reply is lost."
    )
    return (
        f"## chatd ({mode} mode)\n"
        f"chatd: {base}\n\n"
        f'1. Credentials > New > **Header Auth**, named "{HEADER_AUTH_CREDENTIAL}": '
        f"Name `{SECRET_HEADER}`, Value = chatd's CHAT_WEBHOOK_SECRET. Created before the "
        f'import, it is linked by name; else select it in "{WEBHOOK}".\n'
        f"2. In {crypto_nodes}, replace `{SECRET_PLACEHOLDER}` with the same secret.\n"
        f"3. Point chatd at the Production URL: CHAT_N8N_WEBHOOK_URL="
        f"<your n8n>/webhook/{path}\n"
        "4. Activate the workflow (n8n 2.x: Publish, again after every edit). Inactive, "
        "n8n answers 404 and chatd retries.\n"
        f'5. Replace "{BOT_LOGIC}" with your bot. {reply}\n'
        f"{FILES_STEP}\n\n"
        "Wrong X-Webhook-Secret: n8n answers 403, chatd dead-letters the message and shows "
        "its fallback reply. A bad or stale signature: "
        + ("401, dead-lettered the same way." if mode == "sync" else "the execution fails.")
    )
