"""A Transport that answers from a Python function: for parsing and edge cases of the client.

It consumes request bodies exactly as the real transport does (so progress, rewinds and byte
counts are real) and records every request. Never a substitute for the real registry: it only
plays answers a registry cannot be made to give.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from yardarm.errors import TransportError
from yardarm.registry.transport import Body, Headers, Response


@dataclass
class Sent:
    method: str
    url: str
    headers: dict[str, str]
    body: bytes

    def header(self, name: str) -> str | None:
        for k, v in self.headers.items():
            if k.lower() == name.lower():
                return v
        return None


@dataclass
class Answer:
    status: int
    headers: Mapping[str, str] | list[tuple[str, str]] = field(default_factory=dict)
    body: bytes = b""
    #: Raise TransportError after consuming this many body bytes (a cut connection).
    cut_after: int | None = None


Handler = Callable[[Sent], Answer]


def read_body(body: Body, length: int | None, limit: int | None = None) -> bytes:
    if body is None:
        return b""
    if isinstance(body, bytes | bytearray | memoryview):
        data = bytes(body)
    elif hasattr(body, "read"):
        f = body
        data = f.read() if length is None else f.read(length)  # type: ignore[union-attr]
    else:
        data = b"".join(bytes(c) for c in body)  # type: ignore[union-attr]
    return data if limit is None else data[:limit]


class ScriptedTransport:
    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.sent: list[Sent] = []
        self.closed = False

    def request(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str],
        body: Body = None,
        *,
        length: int | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> Response:
        data = read_body(body, length)
        rec = Sent(method, url, dict(headers), data)
        self.sent.append(rec)
        answer = self.handler(rec)
        if answer.cut_after is not None:
            rec.body = data[: answer.cut_after]
            if progress is not None and answer.cut_after:
                progress(answer.cut_after)
            raise TransportError(
                "connection reset", method=method, url=url, bytes_sent=answer.cut_after
            )
        if progress is not None and data:
            progress(len(data))
        hdrs = answer.headers
        items: Iterable[tuple[str, str]] = hdrs.items() if isinstance(hdrs, Mapping) else hdrs
        items = list(items)
        if not any(k.lower() == "content-length" for k, _ in items):
            items.append(("Content-Length", str(len(answer.body))))
        stream = None if method == "HEAD" else io.BytesIO(answer.body)
        return Response(answer.status, Headers(items), stream, url=url)

    def close(self) -> None:
        self.closed = True

    def of(self, method: str) -> list[Sent]:
        return [s for s in self.sent if s.method == method]
