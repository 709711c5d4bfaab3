"""[attachments]: files shoppers and staff send, where they are kept and what is allowed."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator

from chatd.settings.base import Section

ATTACHMENT_TYPES = (
    "image/jpeg",
    "image/png",
    "image/webp",
    "image/gif",
    "application/pdf",
    "text/plain",
)


class AttachmentSettings(Section):
    enabled: bool = True
    storage: Literal["postgres", "disk"] = "postgres"
    directory: str = ""  # storage = "disk": an absolute path, created if missing
    max_file_bytes: int = Field(10 * 1024 * 1024, ge=1, le=1 << 40)
    max_files_per_message: int = Field(5, ge=1, le=20)
    session_bytes_per_day: int = Field(50 * 1024 * 1024, ge=1)
    max_total_bytes: int = Field(0, ge=0)  # 0: unlimited
    allowed_types: str = ",".join(ATTACHMENT_TYPES)  # comma-separated, a subset of those
    url_ttl_seconds: float = Field(3600.0, ge=60, le=7 * 86400)
    url_secret: str = Field("", pattern=r"^(|.{32,})$")  # empty: generated once, in the database
    thumbnail_pixels: int = Field(320, ge=16, le=2048)
    max_image_pixels: int = Field(50_000_000, ge=1)
    image_threads: int = Field(2, ge=1, le=64)

    @field_validator("allowed_types")
    @classmethod
    def _known_types(cls, value: str) -> str:
        unknown = [t for t in _split(value) if t not in ATTACHMENT_TYPES]
        if unknown:
            raise ValueError(
                f"unknown type(s) {', '.join(unknown)}; choose among {', '.join(ATTACHMENT_TYPES)}"
            )
        return value

    @model_validator(mode="after")
    def _directory(self) -> AttachmentSettings:
        if self.storage == "disk" and not Path(self.directory).is_absolute():
            raise ValueError('storage = "disk" needs attachments.directory, an absolute path')
        return self

    @property
    def types(self) -> frozenset[str]:
        return frozenset(_split(self.allowed_types))


def _split(value: str) -> list[str]:
    return [item.strip().lower() for item in value.split(",") if item.strip()]
