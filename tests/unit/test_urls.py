import pytest

from chatd.core.urls import without_secrets


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://n8n.shop.example/webhook/chat", "https://n8n.shop.example/webhook/chat"),
        (
            "https://bot:hunter2@n8n.shop.example:5678/webhook/chat?token=s3cret#frag",
            "https://n8n.shop.example:5678/webhook/chat",
        ),
        ("http://user@[::1]:5678/hook?a=1", "http://[::1]:5678/hook"),
        ("http://a:b@c@n8n.example/x", "http://n8n.example/x"),  # the last @ ends the userinfo
        (" https://n8n.example/x;p?q ", "https://n8n.example/x;p"),
    ],
)
def test_without_secrets(url: str, shown: str) -> None:
    assert without_secrets(url) == shown
