"""Typed tool errors: raise one of these from a tool and the caller gets that error kind, with your message."""

from __future__ import annotations


class ToolError(Exception):
    """Base of the typed errors. Raise a subclass; a bare `ToolError` is reported as `failed`."""

    kind = "failed"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidArguments(ToolError):
    """The arguments are not what the tool needs; the message says why."""

    kind = "invalid-arguments"


class UnknownTool(ToolError):
    """No tool by that name (the SDK raises it for you)."""

    kind = "unknown-tool"


class Denied(ToolError):
    """A capability refused the operation (not granted, or outside the grant)."""

    kind = "denied"


class NotFound(ToolError):
    """The thing the tool was asked about does not exist."""

    kind = "not-found"


class Unavailable(ToolError):
    """A dependency (an API, the state store) cannot be reached now."""

    kind = "unavailable"


class Failed(ToolError):
    """Anything else."""

    kind = "failed"


class Upstream(ToolError):
    """An upstream API answered with an error."""

    kind = "upstream"

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: int | None = None,
        retry_after_seconds: int | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.retry_after_seconds = retry_after_seconds
