"""chatd's exception tree; each client-facing error carries its HTTP status and a stable code.

    ChatdError
    ├── ConfigError                  bad config file, key or value (exit code 2)
    ├── MigrationError               schema cannot be applied or has drifted
    ├── EmbeddedPostgresError        the embedded PostgreSQL cannot start or is in use
    ├── DatabaseUnavailable          PostgreSQL unreachable (503 at the edge)
    │   └── DatabaseMisconfigured    it answers but refuses us: password, role, database (exit 2)
    └── ClientError                  the caller's fault or a refusal; rendered as JSON
        ├── BadRequest               400  (malformed JSON, wrong shape, bad values)
        ├── Unauthorized             401  (missing/wrong token, unproven identity)
        ├── NotFound                 404
        ├── MethodNotAllowed         405
        ├── Forbidden                403  (origin not allowed; a file link not valid or expired)
        ├── Conflict                 409  (clientMessageId reused with other content)
        ├── Gone                     410  (expired or closed session)
        ├── RequestTimeout           408  (an upload that stopped sending)
        ├── PayloadTooLarge          413
        ├── UnsupportedMediaType     415
        ├── RangeNotSatisfiable      416  (a Range past a file's end; with Content-Range)
        ├── RateLimited              429  (with Retry-After)
        └── Overloaded               503  (full mailbox, actor restarting, storage full; with Retry-After)

Outside errors (psycopg, pydantic, json) are translated where they enter: chatd/db/ and
chatd/http/body.py. The JSON body is always {"error": {"code", "message", "field"?}}.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar


class ChatdError(Exception):
    """Root of every error chatd raises on purpose."""


class ConfigError(ChatdError):
    """The configuration cannot be used; the message names the key and the file."""


class MigrationError(ChatdError):
    """Migrations cannot be applied, or an applied migration was edited."""


class EmbeddedPostgresError(ChatdError):
    """The embedded PostgreSQL could not be started or its state directory is in use."""


class DatabaseUnavailable(ChatdError):
    """PostgreSQL could not be reached or dropped the connection."""


class DatabaseMisconfigured(DatabaseUnavailable):
    """PostgreSQL answers but refuses chatd (wrong password, no such role or database): waiting
    will not help, so a starting chatd stops. `hint` says what to fix."""

    def __init__(self, message: str, hint: str) -> None:
        super().__init__(message)
        self.hint = hint


class ClientError(ChatdError):
    """An error the client caused or must act on; rendered as a JSON error body."""

    status: ClassVar[int] = 400
    default_code: ClassVar[str] = "bad_request"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        field: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code or self.default_code
        self.field = field
        self.retry_after = retry_after

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.field is not None:
            error["field"] = self.field
        return {"error": error}

    def headers(self) -> dict[str, str]:
        if self.retry_after is None:
            return {}
        return {"Retry-After": str(max(1, math.ceil(self.retry_after)))}


class BadRequest(ClientError):
    status = 400
    default_code = "bad_request"


class Unauthorized(ClientError):
    status = 401
    default_code = "unauthorized"


class Forbidden(ClientError):
    status = 403
    default_code = "forbidden"


class NotFound(ClientError):
    status = 404
    default_code = "not_found"


class MethodNotAllowed(ClientError):
    status = 405
    default_code = "method_not_allowed"


class RequestTimeout(ClientError):
    status = 408
    default_code = "request_timeout"


class Conflict(ClientError):
    status = 409
    default_code = "conflict"


class Gone(ClientError):
    status = 410
    default_code = "gone"


class PayloadTooLarge(ClientError):
    status = 413
    default_code = "payload_too_large"


class UnsupportedMediaType(ClientError):
    status = 415
    default_code = "unsupported_media_type"


class RangeNotSatisfiable(ClientError):
    status = 416
    default_code = "range_not_satisfiable"

    def __init__(self, size: int) -> None:
        super().__init__(f"the file has {size} bytes; the range asked for lies past its end")
        self.size = size

    def headers(self) -> dict[str, str]:
        return {"Content-Range": f"bytes */{self.size}"}


class RateLimited(ClientError):
    status = 429
    default_code = "rate_limited"


class Overloaded(ClientError):
    status = 503
    default_code = "overloaded"
