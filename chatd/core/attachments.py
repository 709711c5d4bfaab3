"""Attachments between layers: a file as a message carries it, and the same with fresh links.

A message stores its files' descriptions (chat_messages.attachments, JSON); every read turns
them into `MessageFile`s with URLs signed at that moment, so a history reloaded tomorrow has
working links, and an event is signed once however many clients receive it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from chatd.core.file_urls import FileLinks
from chatd.core.responses import AttachmentOut
from chatd.core.sniff import Kind


@dataclass(frozen=True, slots=True)
class MessageFile:
    id: str
    name: str
    type: str
    size: int
    kind: Kind
    width: int | None
    height: int | None
    url: str
    thumbnail_url: str | None

    def to_out(self) -> AttachmentOut:
        fields: dict[str, Any] = {}
        if self.width is not None and self.height is not None:
            fields.update(width=self.width, height=self.height)
        if self.thumbnail_url is not None:
            fields["thumbnailUrl"] = self.thumbnail_url
        return AttachmentOut(
            id=self.id,
            name=self.name,
            type=self.type,
            size=self.size,
            kind=self.kind,
            url=self.url,
            **fields,
        )


def describe(
    attachment_id: str,
    *,
    name: str,
    mime: str,
    size: int,
    kind: Kind,
    width: int | None,
    height: int | None,
    thumbnail: bool,
) -> dict[str, Any]:
    """One file's entry in chat_messages.attachments (what `link_files` reads back)."""
    return {
        "id": attachment_id,
        "name": name,
        "type": mime,
        "size": size,
        "kind": kind,
        "width": width,
        "height": height,
        "thumbnail": thumbnail,
    }


def link_files(
    described: Sequence[Mapping[str, Any]] | None, links: FileLinks | None, now: float
) -> tuple[MessageFile, ...]:
    """A message's stored descriptions with URLs signed now; () for none (or no links yet)."""
    if not described or links is None or not links.ready:
        return ()
    return tuple(
        MessageFile(
            entry["id"],
            entry["name"],
            entry["type"],
            entry["size"],
            entry["kind"],
            entry.get("width"),
            entry.get("height"),
            links.sign(entry["id"], "original", now).url,
            links.sign(entry["id"], "thumb", now).url if entry.get("thumbnail") else None,
        )
        for entry in described
    )
