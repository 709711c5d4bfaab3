"""What chatd sends n8n (chatd/core/n8n_request.py): the body in both modes, and its headers."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from werkzeug.sansio.multipart import Data, Epilogue, Field, File, MultipartDecoder

from chatd.core.file_urls import FileLinks
from chatd.core.n8n_request import (
    DeliveryFiles,
    FilePart,
    N8nMode,
    N8nRequest,
    N8nTarget,
    n8n_request,
    n8n_target,
)
from chatd.core.signing import standard_signature, verify_callback

CALLBACK = "https://chat.example.com/api/chat/webhook"
NOW = 1_700_000_000
PAYLOAD: dict[str, Any] = {
    "sessionId": "s-1",
    "messageId": "m-1",
    "seq": 3,
    "userId": None,
    "guestEmail": "ann@example.com",
    "message": {"content": "Wo ist meine Bestellung?", "type": "text", "timestamp": "t"},
    "userContext": {"isAuthenticated": False},
    "sessionMetadata": {},
}


def request(
    mode: N8nMode = "webhook", secrets: tuple[str, ...] = ("s3cret",), attempt: int = 1
) -> N8nRequest:
    return n8n_request(
        PAYLOAD,
        session_id="s-1",
        delivery_id="job-9",
        attempt=attempt,
        callback_url=CALLBACK,
        mode=mode,
        secrets=secrets,
        now=NOW,
    )


def test_the_guides_payload_gains_the_callback_url_and_the_delivery_id() -> None:
    body = json.loads(request().body)
    assert body == {**PAYLOAD, "callbackUrl": CALLBACK, "deliveryId": "job-9"}
    assert b" " not in request().body.replace(b"Wo ist meine Bestellung?", b"")  # compact


def test_chat_trigger_mode_carries_the_text_and_the_whole_payload_as_metadata() -> None:
    body = json.loads(request("chat_trigger").body)
    assert body == {
        "action": "sendMessage",
        "sessionId": "s-1",
        "chatInput": "Wo ist meine Bestellung?",
        "metadata": {**PAYLOAD, "callbackUrl": CALLBACK, "deliveryId": "job-9"},
    }


def test_headers_carry_the_attempt_the_secret_and_a_signature_per_secret() -> None:
    sent = request(secrets=("new-secret", "old-secret"), attempt=4)
    headers = sent.headers
    assert headers["Content-Type"] == "application/json"
    assert headers["X-Chatd-Attempt"] == "4"
    assert headers["X-Webhook-Secret"] == "new-secret"  # the first: n8n's Header Auth checks it
    assert headers["webhook-id"] == "job-9"
    assert headers["webhook-timestamp"] == str(NOW)
    assert headers["webhook-signature"].split(" ") == [
        standard_signature(secret, "job-9", NOW, sent.body)
        for secret in ("new-secret", "old-secret")
    ]
    lower = {k.lower(): v for k, v in headers.items()}
    assert verify_callback(lower, sent.body, ["old-secret"], now=NOW) == "standard"


def test_without_secrets_nothing_is_signed() -> None:
    headers = request(secrets=()).headers
    assert set(headers) == {"Content-Type", "User-Agent", "X-Chatd-Attempt", "Accept-Encoding"}


def test_a_streamed_reply_is_asked_for_uncompressed() -> None:
    assert request().headers["Accept-Encoding"] == "identity"


def test_basic_auth_in_the_url_becomes_a_header_and_leaves_the_url() -> None:
    target = n8n_target("https://chatd:p%40ss%3Aw0rd@n8n.example:5678/webhook/x/chat?a=1")
    assert target.url == "https://n8n.example:5678/webhook/x/chat?a=1"
    assert target.auth_headers == {
        "Authorization": "Basic " + base64.b64encode(b"chatd:p@ss:w0rd").decode()
    }


def test_basic_auth_and_a_header_from_the_settings() -> None:
    target = n8n_target(
        "https://n8n.example/webhook/x",
        basic_auth_user="chatd",
        basic_auth_password="sécret",
        auth_header_name="X-Shop-Key",
        auth_header_value="k-123",
    )
    assert target.url == "https://n8n.example/webhook/x"
    assert target.auth_headers == {
        "Authorization": "Basic " + base64.b64encode("chatd:sécret".encode()).decode(),
        "X-Shop-Key": "k-123",
    }
    sent = n8n_request(
        PAYLOAD,
        session_id="s-1",
        delivery_id="job-9",
        attempt=1,
        callback_url=CALLBACK,
        mode="chat_trigger",
        secrets=("s3cret",),
        now=NOW,
        auth_headers=target.auth_headers,
    )
    assert sent.headers["Authorization"] == target.auth_headers["Authorization"]
    assert sent.headers["X-Shop-Key"] == "k-123"
    assert sent.headers["X-Webhook-Secret"] == "s3cret"


def test_no_auth_means_no_auth_header() -> None:
    assert n8n_target("http://127.0.0.1:5678/webhook/chatd") == N8nTarget(
        "http://127.0.0.1:5678/webhook/chatd", {}
    )


# --- files ----------------------------------------------------------------------------------------

FILE_ID = "8c1e7f0a-4d3b-4a53-9b1e-2f6d0c9a1b77"
WITH_FILE: dict[str, Any] = {
    **PAYLOAD,
    "message": {
        **PAYLOAD["message"],
        "attachments": [
            {
                "id": FILE_ID,
                "name": "parcel.jpg",
                "type": "image/jpeg",
                "size": 3,
                "kind": "image",
                "sha256": "ab" * 32,
            },
        ],
    },
}


def file_request(mode: N8nMode, now: int = NOW, parts: tuple[FilePart, ...] = ()) -> N8nRequest:
    links = FileLinks(3600, b"k" * 32, "https://chat.example")
    return n8n_request(
        WITH_FILE,
        session_id="s-1",
        delivery_id="job-9",
        attempt=1,
        callback_url=CALLBACK,
        mode=mode,
        secrets=("s3cret",),
        now=now,
        files=DeliveryFiles(links, parts, "b0undary"),
    )


def test_each_attachment_gets_a_url_signed_at_this_attempt() -> None:
    first = json.loads(file_request("webhook").body)["message"]["attachments"][0]
    later = json.loads(file_request("webhook", now=NOW + 7200).body)["message"]["attachments"][0]
    assert first["url"].startswith(f"https://chat.example/api/chat/files/{FILE_ID}?v=original&")
    assert {k: v for k, v in first.items() if k != "url"} == WITH_FILE["message"]["attachments"][0]
    exp = int(first["url"].split("exp=")[1].split("&")[0])
    exp_later = int(later["url"].split("exp=")[1].split("&")[0])
    assert exp >= NOW + 3600
    assert exp_later >= NOW + 7200 + 3600  # a retry two hours later still carries a live link
    assert "url" not in WITH_FILE["message"]["attachments"][0]  # the stored payload is untouched


def test_chat_trigger_sends_files_as_n8ns_chat_widget_does() -> None:
    parts = (FilePart('par"cel.jpg', "image/jpeg", b"\xff\xd8\xffJPEG"),)
    sent = file_request("chat_trigger", parts=parts)
    assert sent.headers["Content-Type"] == "multipart/form-data; boundary=b0undary"
    decoder = MultipartDecoder(b"b0undary")
    decoder.receive_data(sent.body)
    decoder.receive_data(None)
    fields: dict[str, bytes] = {}
    files: list[tuple[str, str, str | None, bytes]] = []
    current: Any = None
    while not isinstance(event := decoder.next_event(), Epilogue):
        if isinstance(event, (Field, File)):
            current = event
            if isinstance(event, File):
                files.append((event.name, event.filename, event.headers.get("content-type"), b""))
            else:
                fields[event.name] = b""
        elif isinstance(event, Data):
            if isinstance(current, File):
                name, filename, kind, data = files[-1]
                files[-1] = (name, filename, kind, data + event.data)
            else:
                fields[current.name] += event.data
    assert set(fields) == {"action", "sessionId", "chatInput", "metadata"}
    assert fields["action"] == b"sendMessage"
    assert fields["chatInput"] == b"Wo ist meine Bestellung?"
    metadata = json.loads(fields["metadata"])
    assert metadata["message"]["attachments"][0]["url"].startswith("https://chat.example/")
    # A quote travels as %22, as browsers send it; multipart parsers decode it.
    assert files == [("files", 'par"cel.jpg', "image/jpeg", b"\xff\xd8\xffJPEG")]
    # The signature covers the multipart bytes as sent.
    assert verify_callback(
        {k.lower(): v for k, v in sent.headers.items()}, sent.body, ("s3cret",), now=NOW
    )


def test_chat_trigger_without_file_bytes_stays_json() -> None:
    sent = file_request("chat_trigger")
    assert sent.headers["Content-Type"] == "application/json"
    assert json.loads(sent.body)["metadata"]["message"]["attachments"][0]["url"]


def test_a_boundary_inside_a_file_is_refused() -> None:
    with pytest.raises(ValueError, match="boundary"):
        file_request("chat_trigger", parts=(FilePart("a.txt", "text/plain", b"x b0undary x"),))
