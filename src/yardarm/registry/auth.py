"""WWW-Authenticate challenges and bearer tokens, renewed before they can kill a long push.

The most-reported push failure in docker (moby#33558) is a token that expires in the middle of a
long upload. Tokens here are cached per scope set, renewed shortly before their lifetime ends, and
the client renews once more when a request in the middle of an operation gets a 401 anyway.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.parse
from base64 import b64encode
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Final

from yardarm.errors import AuthenticationError, ProtocolError, RegistryError
from yardarm.registry.credentials import Credentials
from yardarm.registry.transport import Response, Transport

__all__ = [
    "Authenticator",
    "Challenge",
    "Token",
    "parse_challenges",
    "repository_scope",
]

#: docker's floor: a registry announcing a shorter lifetime is treated as granting this.
MIN_TOKEN_LIFETIME: Final = 60.0
_CLIENT_ID: Final = "yardarm"
_TCHAR: Final = frozenset(
    "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
)
_TOKEN68: Final = _TCHAR | frozenset("/=")


@dataclass(frozen=True)
class Challenge:
    """One challenge: scheme lowercased, parameter names lowercased, values as sent."""

    scheme: str
    params: Mapping[str, str] = field(default_factory=dict)
    token68: str | None = None

    @property
    def realm(self) -> str:
        return self.params.get("realm", "")

    @property
    def service(self) -> str:
        return self.params.get("service", "")

    @property
    def scopes(self) -> tuple[str, ...]:
        return tuple(self.params.get("scope", "").split())

    @property
    def error(self) -> str:
        return self.params.get("error", "")


def parse_challenges(values: str | Iterable[str]) -> list[Challenge]:
    """Parse RFC 7235 challenges, several per header and several headers; garbage is skipped."""
    if isinstance(values, str):
        values = [values]
    out: list[Challenge] = []
    for value in values:
        out.extend(_Parser(value).challenges())
    return out


class _Parser:
    def __init__(self, text: str) -> None:
        self.s = text
        self.i = 0

    def _ws(self) -> None:
        while self.i < len(self.s) and self.s[self.i] in " \t":
            self.i += 1

    def _token(self, chars: frozenset[str] = _TCHAR) -> str:
        start = self.i
        while self.i < len(self.s) and self.s[self.i] in chars:
            self.i += 1
        return self.s[start : self.i]

    def _peek(self) -> str:
        return self.s[self.i] if self.i < len(self.s) else ""

    def _quoted(self) -> str:
        assert self._peek() == '"'
        self.i += 1
        out: list[str] = []
        while self.i < len(self.s):
            c = self.s[self.i]
            if c == "\\" and self.i + 1 < len(self.s):
                out.append(self.s[self.i + 1])
                self.i += 2
            elif c == '"':
                self.i += 1
                return "".join(out)
            else:
                out.append(c)
                self.i += 1
        return "".join(out)  # unterminated: take what there is

    def _skip_separators(self) -> None:
        while self.i < len(self.s) and self.s[self.i] in " \t,":
            self.i += 1

    def _param_ahead(self) -> bool:
        """Is the next thing ``name =`` (a parameter) rather than a new scheme?"""
        save = self.i
        name = self._token()
        self._ws()
        is_param = bool(name) and self._peek() == "="
        if is_param:
            # "scheme token68=" at the end or before a comma is a token68, not a parameter.
            self.i += 1
            while self._peek() == "=":
                self.i += 1
            self._ws()
            is_param = self._peek() not in ("", ",")
        self.i = save
        return is_param

    def challenges(self) -> list[Challenge]:
        out: list[Challenge] = []
        while True:
            self._skip_separators()
            if self.i >= len(self.s):
                return out
            scheme = self._token()
            if not scheme:
                self.i += 1  # not a token character: skip it and resynchronise
                continue
            self._ws()
            params: dict[str, str] = {}
            token68 = None
            if self._peek() not in ("", ",") and not self._param_ahead():
                save = self.i
                t68 = self._token(_TOKEN68)
                self._ws()
                if t68 and self._peek() in ("", ","):
                    token68 = t68
                else:
                    self.i = save
            while token68 is None:
                self._skip_separators()
                if not self._param_ahead():
                    break
                name = self._token().lower()
                self._ws()
                self.i += 1  # "="
                self._ws()
                value = self._quoted() if self._peek() == '"' else self._token()
                params.setdefault(name, value)
            out.append(Challenge(scheme.lower(), params, token68))


def repository_scope(name: str, actions: str) -> str:
    return f"repository:{name}:{actions}"


class Token:
    """A bearer token; never shown by repr or str."""

    __slots__ = ("expires_at", "value")

    def __init__(self, value: str, expires_at: float) -> None:
        self.value = value
        self.expires_at = expires_at

    def __repr__(self) -> str:
        return f"Token(<hidden>, expires_at={self.expires_at:.0f})"

    __str__ = __repr__


class Authenticator:
    """Turns the registry's challenge and our credentials into Authorization headers."""

    def __init__(
        self,
        host: str,
        credentials: Credentials,
        transport: Transport,
        *,
        basic_allowed: Callable[[str], bool],
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.host = host
        self._credentials = credentials
        self._transport = transport
        self._basic_allowed = basic_allowed
        self._clock = clock
        self._wall = wall_clock
        self._lock = threading.Lock()
        self._challenge: Challenge | None = None
        self._tokens: dict[frozenset[str], Token] = {}
        self._fetching: dict[frozenset[str], threading.Lock] = {}
        #: How many tokens were fetched (tests and benchmarks read it).
        self.fetches = 0

    def __repr__(self) -> str:
        return f"Authenticator({self.host!r}, {self._credentials!r})"

    @property
    def challenge(self) -> Challenge | None:
        return self._challenge

    def set_challenge(self, header_values: Iterable[str]) -> Challenge | None:
        """Remember the best challenge (Bearer before Basic); None when nothing usable."""
        found = parse_challenges(header_values)
        best = next((c for c in found if c.scheme == "bearer" and c.realm), None)
        best = best or next((c for c in found if c.scheme == "basic"), None)
        if best is not None:
            with self._lock:
                self._challenge = best
        return best

    def header(self, scopes: Iterable[str], url: str) -> str | None:
        """The Authorization value for a request to ``url`` needing ``scopes``; None if none."""
        challenge = self._challenge
        if challenge is None:
            return None
        if challenge.scheme == "basic":
            return self._basic(url)
        if challenge.scheme != "bearer":
            return None
        if self._credentials.registry_token:
            return "Bearer " + self._credentials.registry_token
        key = frozenset(scopes)
        token = self._tokens.get(key)
        if token is not None and self._clock() < token.expires_at:
            return "Bearer " + token.value
        with self._lock:
            gate = self._fetching.setdefault(key, threading.Lock())
        with gate:  # one fetch per scope set, however many threads want it
            token = self._tokens.get(key)
            if token is None or self._clock() >= token.expires_at:
                token = self._fetch(challenge, sorted(key, key=_push_first))
                with self._lock:
                    self._tokens[key] = token
        return "Bearer " + token.value

    def invalidate(self, scopes: Iterable[str]) -> None:
        """Forget the token for this scope set: the registry rejected it (expired early)."""
        with self._lock:
            self._tokens.pop(frozenset(scopes), None)

    def _basic(self, url: str) -> str | None:
        c = self._credentials
        if not (c.username or c.password):
            return None
        if not self._basic_allowed(url):
            raise AuthenticationError(
                401,
                "UNAUTHORIZED",
                f"refusing to send a password to {self.host} over plain HTTP "
                "(not an insecure registry)",
            )
        raw = f"{c.username}:{c.password}".encode()
        return "Basic " + b64encode(raw).decode()

    def _fetch(self, challenge: Challenge, scopes: list[str]) -> Token:
        realm = challenge.realm
        parts = urllib.parse.urlsplit(realm)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ProtocolError(f"{self.host}: token realm is not an http(s) URL")
        c = self._credentials
        self.fetches += 1
        if c.identity_token:
            token = self._fetch_oauth(realm, challenge.service, scopes)
            if token is not None:
                return token
        query: list[tuple[str, str]] = []
        if challenge.service:
            query.append(("service", challenge.service))
        query += [("scope", s) for s in scopes]
        headers = {"Accept": "application/json"}
        if c.username or c.password:
            query.append(("account", c.username))
            if self._basic_allowed(realm):
                raw = f"{c.username}:{c.password}".encode()
                headers["Authorization"] = "Basic " + b64encode(raw).decode()
        sep = "&" if parts.query else "?"
        url = realm + (sep + urllib.parse.urlencode(query) if query else "")
        return self._token_from(self._transport.request("GET", url, headers), "GET", url)

    def _fetch_oauth(self, realm: str, service: str, scopes: list[str]) -> Token | None:
        form = {
            "grant_type": "refresh_token",
            "refresh_token": self._credentials.identity_token,
            "service": service,
            "client_id": _CLIENT_ID,
            "access_type": "offline",
            "scope": " ".join(scopes),
        }
        body = urllib.parse.urlencode(form).encode()
        headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            "Accept": "application/json",
        }
        resp = self._transport.request("POST", realm, headers, body)
        if resp.status in (404, 405):  # no OAuth2 endpoint: docker falls back to GET
            resp.close()
            return None
        return self._token_from(resp, "POST", realm)

    def _token_from(self, resp: Response, method: str, url: str) -> Token:
        raw = resp.read_capped(1024 * 1024)
        if resp.status != 200:
            message = _error_text(raw) or resp.reason or "token request failed"
            for secret in self._credentials.secrets():
                message = message.replace(secret, "<hidden>")
            cls = AuthenticationError if resp.status in (400, 401, 403) else RegistryError
            raise cls(
                resp.status,
                "UNAUTHORIZED",
                f"token server refused us for {self.host}: {message}",
                method=method,
                url=url,
            )
        try:
            doc = json.loads(raw)
        except ValueError:
            raise ProtocolError(f"{self.host}: token server answered invalid JSON") from None
        if not isinstance(doc, dict):
            raise ProtocolError(f"{self.host}: token server answered a non-object")
        value = doc.get("token") or doc.get("access_token")
        if not isinstance(value, str) or not value:
            raise ProtocolError(f"{self.host}: token server answered no token")
        lifetime = doc.get("expires_in")
        seconds = float(lifetime) if isinstance(lifetime, int | float) else MIN_TOKEN_LIFETIME
        seconds = max(seconds, MIN_TOKEN_LIFETIME)
        age = _age(doc.get("issued_at"), self._wall())
        remaining = seconds - min(max(age, 0.0), seconds)
        # Renew a little early: a request must not start with a token about to lapse.
        margin = min(30.0, seconds / 10)
        return Token(value, self._clock() + remaining - margin)


def _push_first(scope: str) -> tuple[int, str]:
    return (0 if scope.endswith(":push,pull") or ":push" in scope else 1, scope)


def _age(issued_at: object, now: float) -> float:
    if not isinstance(issued_at, str) or not issued_at:
        return 0.0
    text = issued_at.replace("Z", "+00:00")
    # Python < 3.12 rejects more than 6 fraction digits (Go writes 9).
    if "." in text:
        head, _, rest = text.partition(".")
        digits = "".join(ch for ch in rest if ch.isdigit())
        tz = rest[len(digits) :]
        text = f"{head}.{digits[:6]}{tz}"
    try:
        return now - datetime.fromisoformat(text).timestamp()
    except ValueError:
        return 0.0


def _error_text(raw: bytes) -> str:
    try:
        doc = json.loads(raw)
    except ValueError:
        return ""
    if isinstance(doc, dict):
        for key in ("details", "error_description", "error", "message"):
            v = doc.get(key)
            if isinstance(v, str) and v:
                return v[:200]
        errors = doc.get("errors")
        if isinstance(errors, list) and errors and isinstance(errors[0], dict):
            return str(errors[0].get("message", ""))[:200]
    return ""
