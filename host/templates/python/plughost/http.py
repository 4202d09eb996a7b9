"""Outgoing HTTP to the origins the operator granted (`--grant http:https://api.example.com`).

    data = http.get(url, headers={"Accept": "application/json"}).json()
    http.post(url, json={"a": 1}, headers={"Authorization": http.secret("api_token", prefix="Bearer ")})

A refused origin raises `Denied`, a timeout or a connection failure `Unavailable`; a response is returned
whatever its status (`raise_for_status()` turns a 4xx/5xx into `Upstream`)."""

from __future__ import annotations

import json as _json
from typing import Any, NamedTuple

from componentize_py_types import Err
from wit_world.imports import http as _raw

from .errors import Denied, Failed, ToolError, Unavailable, Upstream


class Secret(NamedTuple):
    """A header value the host fills in from a configured secret: `prefix` + the secret."""

    key: str
    prefix: str = ""


def secret(key: str, prefix: str = "") -> Secret:
    """A header value taken from the configured secret `key` by the host, so the plugin never sees it."""
    return Secret(key, prefix)


class Response:
    """A response (after any redirects)."""

    def __init__(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    def header(self, name: str) -> str | None:
        """The first header called `name` (case-insensitive)."""
        name = name.lower()
        return next((v for k, v in self.headers if k.lower() == name), None)

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")

    def json(self) -> Any:
        """The body as JSON; a body that is not JSON raises `Upstream`."""
        try:
            return _json.loads(self.body)
        except ValueError as e:
            raise Upstream(f"the response is not JSON: {e}", status=self.status) from None

    def raise_for_status(self) -> Response:
        """Raises `Upstream` for a 4xx or 5xx status; returns the response otherwise."""
        if self.status >= 400:
            raise Upstream(f"HTTP {self.status}: {self.text[:200]}", status=self.status)
        return self


_METHODS = {
    "GET": _raw.Method.GET,
    "HEAD": _raw.Method.HEAD,
    "POST": _raw.Method.POST,
    "PUT": _raw.Method.PUT,
    "PATCH": _raw.Method.PATCH,
    "DELETE": _raw.Method.DELETE,
    "OPTIONS": _raw.Method.OPTIONS,
}


def _header(name: str, value: str | Secret) -> _raw.Header:
    if isinstance(value, Secret):
        return _raw.Header(name, _raw.HeaderValue_Secret(_raw.SecretRef(key=value.key, prefix=value.prefix)))
    return _raw.Header(name, _raw.HeaderValue_Text(str(value)))


def _typed(e: Err) -> ToolError:
    v = e.value
    if isinstance(v, _raw.HttpError_Denied):
        return Denied(f"http: {v.value} is not granted")
    if isinstance(v, _raw.HttpError_RedirectDenied):
        return Denied(f"http: a redirect to {v.value} is not granted")
    if isinstance(v, _raw.HttpError_TooManyRedirects):
        return Unavailable(f"http: more than {v.value} redirects")
    if isinstance(v, _raw.HttpError_Timeout):
        return Unavailable("http: no response in time")
    if isinstance(v, _raw.HttpError_Connection):
        return Unavailable(f"http: {v.value}")
    if isinstance(v, _raw.HttpError_TooLarge):
        return Failed(f"http: body over the {v.value}-byte limit")
    if isinstance(v, _raw.HttpError_RequestLimit):
        return Failed(f"http: the {v.value}-request budget of this call is spent")
    return Failed(f"http: invalid request: {getattr(v, 'value', v)}")


def request(
    method: str,
    url: str,
    *,
    headers: dict[str, str | Secret] | None = None,
    body: bytes | str | None = None,
    json: Any = None,
    timeout_ms: int | None = None,
) -> Response:
    """Sends one request. `json=` sends a JSON body (and its content type)."""
    hs = dict(headers or {})
    if json is not None:
        body = _json.dumps(json)
        if not any(k.lower() == "content-type" for k in hs):
            hs["Content-Type"] = "application/json"
    data = body.encode() if isinstance(body, str) else body
    m = _METHODS.get(method.upper())
    if m is None:
        raise Failed(f"http: unsupported method {method}")
    req = _raw.Request(
        method=m,
        url=url,
        headers=[_header(k, v) for k, v in hs.items()],
        body=data,
        timeout_ms=timeout_ms,
    )
    try:
        r = _raw.send(req)
    except Err as e:
        raise _typed(e) from None
    return Response(r.status, list(r.headers), bytes(r.body))


def get(url: str, *, headers: dict[str, str | Secret] | None = None, timeout_ms: int | None = None) -> Response:
    return request("GET", url, headers=headers, timeout_ms=timeout_ms)


def post(url: str, *, headers: dict[str, str | Secret] | None = None, body: bytes | str | None = None,
         json: Any = None, timeout_ms: int | None = None) -> Response:
    return request("POST", url, headers=headers, body=body, json=json, timeout_ms=timeout_ms)


def put(url: str, *, headers: dict[str, str | Secret] | None = None, body: bytes | str | None = None,
        json: Any = None, timeout_ms: int | None = None) -> Response:
    return request("PUT", url, headers=headers, body=body, json=json, timeout_ms=timeout_ms)


def delete(url: str, *, headers: dict[str, str | Secret] | None = None, timeout_ms: int | None = None) -> Response:
    return request("DELETE", url, headers=headers, timeout_ms=timeout_ms)
