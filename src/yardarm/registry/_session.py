"""One registry conversation: scheme discovery, auth, redirects and retries of small requests.

Every request of the API client goes through :meth:`Session.call`, so the rules that keep
credentials safe (no Authorization to another host, no password over plain HTTP to a registry
nobody called insecure) live in exactly one place.
"""

from __future__ import annotations

import logging
import threading
import time
import urllib.parse
from collections.abc import Callable, Collection, Iterable, Mapping
from typing import Final

from yardarm.errors import (
    AuthenticationError,
    DeniedError,
    RedirectError,
    RegistryError,
    TransportError,
    redact_url,
)
from yardarm.registry._errors import error_from_response
from yardarm.registry.auth import Authenticator, parse_challenges
from yardarm.registry.credentials import Credentials
from yardarm.registry.transport import (
    Body,
    Response,
    Transport,
    body_position,
    is_loopback,
    rewind_body,
    split_host,
)

__all__ = ["Session"]

log = logging.getLogger("yardarm.registry")

_REDIRECTS: Final = frozenset({301, 302, 303, 307, 308})
MAX_REDIRECTS: Final = 10
#: Attempts for idempotent small requests (HEAD/GET) on temporary errors.
SMALL_ATTEMPTS: Final = 3
_BACKOFF_CAP: Final = 10.0
_RETRY_AFTER_CAP: Final = 60.0


class Session:
    """Shared by a Registry and its Repositories; thread-safe."""

    def __init__(
        self,
        host: str,
        credentials: Credentials,
        transport: Transport,
        *,
        insecure: bool,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.host = host
        self.transport = transport
        self.insecure = insecure
        self.sleep = sleep
        self.clock = clock
        self._lock = threading.Lock()
        self._base: str | None = None
        self.auth = Authenticator(
            host, credentials, transport, basic_allowed=self._basic_allowed, clock=clock
        )

    def __repr__(self) -> str:
        return f"Session({self.host!r})"

    def _basic_allowed(self, url: str) -> bool:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme == "https":
            return True
        # Plain HTTP only to loopback, or to the very host the user named insecure (not to a
        # token realm elsewhere that happens to be plain HTTP).
        hostname = (parts.hostname or "").lower()
        if is_loopback(hostname):
            return True
        return self.insecure and hostname == split_host(self.host)[0].lower()

    # -- scheme and challenge -----------------------------------------------------------

    @property
    def base(self) -> str:
        """``scheme://host``, found by the first ping (HTTPS, then HTTP if insecure)."""
        if self._base is None:
            with self._lock:
                if self._base is None:
                    self._base = self._discover()
        return self._base

    def _discover(self) -> str:
        schemes = ("https", "http") if self.insecure else ("https",)
        last: TransportError | None = None
        for scheme in schemes:
            url = f"{scheme}://{self.host}/v2/"
            try:
                # An insecure host may not speak TLS at all: one HTTPS try, then plain HTTP.
                fallback = self.insecure and scheme == "https"
                resp = self._small_get(url, attempts=1 if fallback else SMALL_ATTEMPTS)
            except TransportError as exc:
                last = exc
                log.debug("ping %s failed: %s", url, exc)
                continue
            with resp:
                if resp.status == 401:
                    self.auth.set_challenge(resp.headers.get_all("www-authenticate"))
                elif resp.status >= 400:
                    raise error_from_response(resp, "GET", url)
            if self.insecure and not is_loopback(split_host(self.host)[0]):
                # Loudly: with no logging set up, Python prints warnings on stderr anyway.
                how = "plain HTTP" if scheme == "http" else "TLS without certificate checks"
                log.warning("registry %s is insecure: using %s", self.host, how)
            return f"{scheme}://{self.host}"
        assert last is not None
        raise last

    def _small_get(self, url: str, attempts: int = SMALL_ATTEMPTS) -> Response:
        for attempt in range(attempts):
            try:
                resp = self.transport.request("GET", url, {})
            except TransportError as exc:
                if not exc.temporary or attempt + 1 == attempts or _is_tls_mismatch(exc):
                    raise
                self.sleep(_backoff(attempt, None))
                continue
            if resp.status in (429, 500, 502, 503, 504) and attempt + 1 < attempts:
                err = error_from_response(resp, "GET", url)
                self.sleep(_backoff(attempt, getattr(err, "retry_after", None)))
                continue
            return resp
        raise AssertionError("unreachable")

    def url(self, path: str, query: Iterable[tuple[str, str]] = ()) -> str:
        q = urllib.parse.urlencode(list(query), safe=":/,")
        return f"{self.base}{path}" + (f"?{q}" if q else "")

    # -- the request loop ---------------------------------------------------------------

    def call(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        body: Body = None,
        length: int | None = None,
        progress: Callable[[int], None] | None = None,
        scopes: Collection[str] = (),
        ok: Collection[int] = (200,),
        follow_redirects: bool = True,
        retry: bool = False,
        repository: str = "",
    ) -> Response:
        """Send, authenticate (renewing once on 401), follow redirects; raise typed errors.

        ``retry`` is for idempotent small requests: temporary failures are retried a couple of
        times, honouring Retry-After. Responses with a status in ``ok`` are returned open.
        """
        attempts = SMALL_ATTEMPTS if retry else 1
        start = body_position(body)
        for attempt in range(attempts):
            if attempt and not rewind_body(body, start, progress):
                break
            try:
                resp = self._authenticated(
                    method, url, headers or {}, body, length, progress, scopes, follow_redirects,
                    start,
                )  # fmt: skip
            except TransportError as exc:
                if exc.temporary and attempt + 1 < attempts and exc.bytes_sent in (None, 0):
                    log.debug("%s %s: %s; retrying", method, exc.url, exc)
                    self.sleep(_backoff(attempt, None))
                    continue
                raise
            if resp.status in ok:
                return resp
            err = error_from_response(resp, method, resp.url or url, repository=repository)
            if resp.status == 401 and err.__class__ is AuthenticationError:
                err = self._auth_error(resp, err, method, url, repository)
                if start is None and err.__class__ is AuthenticationError and self._bearer():
                    # A token died while a streamed body was on its way: it is dropped, and
                    # the caller's next attempt (which resumes the upload) fetches a new one.
                    err.temporary = True
            if err.temporary and attempt + 1 < attempts:
                log.debug("%s %s: %s; retrying", method, err.url, err)
                self.sleep(_backoff(attempt, getattr(err, "retry_after", None)))
                continue
            raise err
        raise TransportError("request body cannot be replayed for a retry", method=method, url=url)

    def _auth_error(
        self, resp: Response, err: RegistryError, method: str, url: str, repository: str
    ) -> RegistryError:
        for c in parse_challenges(resp.headers.get_all("www-authenticate")):
            if c.error == "insufficient_scope":
                return DeniedError(
                    401,
                    "DENIED",
                    err.message or "insufficient scope",
                    detail=err.detail,
                    method=method,
                    url=url,
                    repository=repository,
                )
        return err

    def _authenticated(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str],
        body: Body,
        length: int | None,
        progress: Callable[[int], None] | None,
        scopes: Collection[str],
        follow_redirects: bool,
        start: int | None,
    ) -> Response:
        renewed = False
        while True:
            sent_auth = self.auth.header(scopes, url) if self._same_host(url) else None
            hdrs = dict(headers)
            if sent_auth:
                hdrs["Authorization"] = sent_auth
            resp = self._follow(method, url, hdrs, body, length, progress, follow_redirects)
            if resp.status != 401 or renewed:
                return resp
            challenges = resp.headers.get_all("www-authenticate")
            had_challenge = self.auth.challenge is not None
            found = self.auth.set_challenge(challenges)
            if found is None or (had_challenge and found.scheme == "basic"):
                return resp  # the same password again would fail the same way
            # The token may have expired early (or never existed): renew once, then resend.
            self.auth.invalidate(scopes)
            if not rewind_body(body, start, progress):
                return resp
            resp.close()
            renewed = True
            log.debug("%s %s: 401, renewing credentials once", method, redact_url(resp.url))

    def _bearer(self) -> bool:
        challenge = self.auth.challenge
        return challenge is not None and challenge.scheme == "bearer"

    def _same_host(self, url: str) -> bool:
        return urllib.parse.urlsplit(url).netloc.lower() == self.host.lower()

    def _follow(
        self,
        method: str,
        url: str,
        headers: dict[str, str],
        body: Body,
        length: int | None,
        progress: Callable[[int], None] | None,
        follow: bool,
    ) -> Response:
        origin = urllib.parse.urlsplit(url).netloc.lower()
        seen = {url}
        start = body_position(body)
        for _ in range(MAX_REDIRECTS + 1):
            resp = self.transport.request(
                method, url, headers, body, length=length, progress=progress
            )
            if log.isEnabledFor(logging.DEBUG):
                log.debug("%s %s -> %d", method, redact_url(url), resp.status)
            if not follow or resp.status not in _REDIRECTS:
                return resp
            location = resp.headers.get("location")
            if not location:
                return resp
            resp.close()
            target = urllib.parse.urljoin(url, location)
            parts = urllib.parse.urlsplit(target)
            if parts.scheme not in ("http", "https"):
                raise RedirectError(
                    f"refusing redirect to a {parts.scheme or 'relative'}: URL", method=method,
                    url=url,
                )  # fmt: skip
            if target in seen:
                raise RedirectError("redirect loop", method=method, url=target)
            seen.add(target)
            if parts.netloc.lower() != origin:
                # Credentials belong to the registry; a storage back end gets none of them.
                headers = {k: v for k, v in headers.items() if k.lower() != "authorization"}
            if resp.status == 303 or (resp.status in (301, 302) and method not in ("GET", "HEAD")):
                method, body, length = "GET", None, None
                headers = {k: v for k, v in headers.items() if k.lower() != "content-type"}
            elif body is not None and not rewind_body(body, start, progress):
                raise RedirectError(
                    f"cannot resend a streamed body after a {resp.status} redirect",
                    method=method,
                    url=url,
                )
            log.debug("%s redirected to %s", method, _short(target))
            url = target
        raise RedirectError(f"more than {MAX_REDIRECTS} redirects", method=method, url=url)


def _short(url: str) -> str:
    return redact_url(url)


def _is_tls_mismatch(exc: TransportError) -> bool:
    return "TLS" in str(exc) or "SSL" in str(exc)


def _backoff(attempt: int, retry_after: float | None) -> float:
    # A registry asking for hours must not park one small request that long: the upload
    # manager above retries again with its own capped budget.
    if retry_after is not None:
        return min(retry_after, _RETRY_AFTER_CAP)
    return float(min(0.5 * (2**attempt), _BACKOFF_CAP))
