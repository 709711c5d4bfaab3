"""The OpenAI-compatible stand-in (tests/llm_standin.py) speaks the wire format n8n's model node
reads: a chat.completion, SSE chat.completion.chunk events ending with [DONE], /v1/models."""

from __future__ import annotations

import json

import httpx
import trio

from tests.llm_standin import MODEL, LlmStandin, answer_for, tokens_of

QUESTION = "Where is my order?"
CHAT = {
    "model": "gpt-4o-mini",
    "messages": [
        {"role": "system", "content": "You are a shop assistant."},
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello!"},
        {"role": "user", "content": [{"type": "text", "text": QUESTION}]},
    ],
}


def test_answer_is_markdown_quoting_the_question() -> None:
    answer = answer_for("  Where is\nmy order? ")
    assert '"Where is my order?"' in answer
    for markdown in (
        "**Thanks for asking!**",
        "\n- ",
        "`RETURN`",
        "[your orders](https://shop.example/orders)",
    ):
        assert markdown in answer
    assert "".join(tokens_of(answer)) == answer
    assert len(tokens_of(answer)) > 10


async def test_models_and_a_whole_completion(nursery: trio.Nursery) -> None:
    standin = await LlmStandin.start(nursery)
    async with httpx.AsyncClient(base_url=standin.base_url, timeout=10) as client:
        models = (await client.get("/models")).json()
        completion = (await client.post("/chat/completions", json=CHAT)).json()
        missing = await client.post("/embeddings", json={})
        broken = await client.post("/chat/completions", content=b"{")
    assert models["data"][0]["id"] == MODEL
    assert completion["object"] == "chat.completion"
    assert completion["model"] == "gpt-4o-mini"
    assert completion["choices"][0]["message"] == {
        "role": "assistant",
        "content": answer_for(QUESTION),
    }
    assert completion["choices"][0]["finish_reason"] == "stop"
    assert (missing.status_code, broken.status_code) == (404, 400)
    assert standin.other_requests == [("POST", "/v1/embeddings")]
    (request,) = standin.requests  # the broken body is refused before it is recorded
    assert request.last_user_message == QUESTION
    assert request.conversation()[1:] == [
        ("user", "Hi"),
        ("assistant", "Hello!"),
        ("user", QUESTION),
    ]
    assert standin.finished == [True]


async def test_streamed_completion_token_by_token_held_until_released(
    nursery: trio.Nursery,
) -> None:
    standin = await LlmStandin.start(nursery)
    standin.hold_after(2)
    body = {**CHAT, "stream": True, "stream_options": {"include_usage": True}}
    events: list[str] = []
    async with (
        httpx.AsyncClient(base_url=standin.base_url, timeout=10) as client,
        client.stream("POST", "/chat/completions", json=body) as response,
    ):
        assert response.headers["content-type"] == "text/event-stream"
        async for line in response.aiter_lines():
            if line:
                events.append(line)
            if len(events) == 3:  # the role event and two tokens: then the stand-in waits
                await trio.sleep(0.2)
                assert standin.finished == [False]
                assert len(events) == 3
                standin.release()
    assert all(event.startswith("data: ") for event in events)
    assert events[-1] == "data: [DONE]"
    chunks = [json.loads(event[6:]) for event in events[:-1]]
    assert {chunk["object"] for chunk in chunks} == {"chat.completion.chunk"}
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    deltas = [c["choices"][0]["delta"].get("content") for c in chunks[1:] if c["choices"]]
    assert "".join(d for d in deltas if d) == answer_for(QUESTION)
    assert [d for d in deltas if d] == tokens_of(answer_for(QUESTION))
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"
    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"]["completion_tokens"] == len(tokens_of(answer_for(QUESTION)))
    assert standin.finished == [True]
