"""A bearer-token issuer for the registry's `auth: token` mode, run inside the test process.

It implements the two token endpoints clients use (distribution's token spec): GET with Basic
auth and repeated `scope=`, and the OAuth2 POST form (password and refresh_token grants). Users:
`pusher` may do anything, `reader` may pull, anonymous callers may pull `public/...`. Like real
issuers it grants the intersection of what was asked and what is allowed, never an error for
asking too much; the registry then answers 401 insufficient_scope.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import json
import secrets
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

SERVICE = "yardarm-test-registry"
ISSUER = "yardarm-test-issuer"
# The registry allows 60 s of clock skew on exp: a token meant to die after N seconds carries
# exp = now + N - 60.
REGISTRY_LEEWAY = 60
DEFAULT_LIFETIME = 300

ALL_ACTIONS = ("pull", "push", "delete", "*")


@dataclass(frozen=True)
class Scope:
    type: str
    name: str
    actions: tuple[str, ...]

    @classmethod
    def parse(cls, text: str) -> Scope | None:
        kind, sep, rest = text.partition(":")
        name, sep2, actions = rest.rpartition(":")
        if not (sep and sep2 and kind and name):
            return None
        return cls(kind, name, tuple(a for a in actions.split(",") if a))

    def __str__(self) -> str:
        return f"{self.type}:{self.name}:{','.join(self.actions)}"


@dataclass(frozen=True)
class TokenRequest:
    """What one call to the issuer asked for and got (for assertions and failure reports)."""

    method: str
    user: str | None  # None: anonymous
    grant_type: str  # "get", "password" or "refresh_token"
    requested: tuple[Scope, ...]
    granted: tuple[Scope, ...]
    status: int


def _default_policy(user: str | None, scope: Scope) -> tuple[str, ...]:
    if scope.type != "repository":
        return ("*",) if user == "pusher" else ()
    if user == "pusher":
        return ALL_ACTIONS
    if user == "reader" or scope.name.startswith("public/"):
        return ("pull",)
    return ()


@dataclass
class _State:
    lifetime: int = DEFAULT_LIFETIME
    requests: int = 0
    log: list[TokenRequest] = field(default_factory=list)
    refresh_tokens: dict[str, str] = field(default_factory=dict)
    failures: list[int] = field(default_factory=list)


class TokenServer:
    """Issues JWTs the registry trusts through `cert_path` (its `rootcertbundle`)."""

    def __init__(
        self,
        directory: Path,
        *,
        users: dict[str, str] | None = None,
        service: str = SERVICE,
        issuer: str = ISSUER,
        policy: Callable[[str | None, Scope], Iterable[str]] = _default_policy,
    ) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.service = service
        self.issuer = issuer
        self.users = users or {
            "pusher": secrets.token_urlsafe(12),
            "reader": secrets.token_urlsafe(12),
        }
        self.policy = policy
        self._lock = threading.Lock()
        self._state = _State()
        self._key = ec.generate_private_key(ec.SECP256R1())
        self._cert = _self_signed(self._key)
        self.cert_path = directory / "token-signer.crt"
        self.cert_path.write_bytes(self._cert.public_bytes(serialization.Encoding.PEM))
        self._x5c = base64.b64encode(self._cert.public_bytes(serialization.Encoding.DER)).decode()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._httpd.daemon_threads = True
        self._thread: threading.Thread | None = None

    @classmethod
    def start(cls, directory: Path, **kwargs: object) -> TokenServer:
        server = cls(directory, **kwargs)  # type: ignore[arg-type]
        server._thread = threading.Thread(
            target=server._httpd.serve_forever, name="token-server", daemon=True
        )
        server._thread.start()
        return server

    def stop(self) -> None:
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self._httpd.server_close()

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def realm(self) -> str:
        return f"{self.url}/token"

    # --- knobs and observations for tests ---

    def set_lifetime(self, seconds: int) -> None:
        """Tokens issued from now on expire after `seconds` (expires_in says so too)."""
        with self._lock:
            self._state.lifetime = int(seconds)

    @property
    def lifetime(self) -> int:
        return self._state.lifetime

    @property
    def requests(self) -> int:
        """How many token requests arrived (failed ones included)."""
        with self._lock:
            return self._state.requests

    @property
    def log(self) -> list[TokenRequest]:
        with self._lock:
            return list(self._state.log)

    def fail_next(self, count: int = 1, status: int = 503) -> None:
        """Answer the next `count` token requests with `status` (to test client retries)."""
        with self._lock:
            self._state.failures.extend([status] * count)

    def reset(self) -> None:
        """Back to defaults: lifetime, counters, pending failures (refresh tokens stay valid)."""
        with self._lock:
            refresh = self._state.refresh_tokens
            self._state = _State(refresh_tokens=refresh)

    def describe(self) -> str:
        lines = [f"lifetime={self.lifetime}s requests={self.requests}"]
        for r in self.log[-50:]:
            lines.append(
                f"{r.method} {r.grant_type} user={r.user or '-'} status={r.status} "
                f"asked={[str(s) for s in r.requested]} got={[str(s) for s in r.granted]}"
            )
        return "\n".join(lines)

    def issue(
        self,
        user: str | None,
        scopes: Iterable[Scope | str],
        *,
        lifetime: int | None = None,
        audience: str | None = None,
        issuer: str | None = None,
    ) -> str:
        """A token granting exactly `scopes` (no policy check): for tests that forge tokens."""
        parsed = [s if isinstance(s, Scope) else Scope.parse(s) for s in scopes]
        return self._sign(user, [s for s in parsed if s is not None], lifetime, audience, issuer)

    def get_token(self, user: str | None, scopes: Iterable[str], *, offline: bool = False) -> str:
        """A token fetched over HTTP like a client would (counted in `requests`)."""
        query = [("service", self.service), *[("scope", s) for s in scopes]]
        if offline:
            query.append(("offline_token", "true"))
        req = urllib.request.Request(f"{self.realm}?{urllib.parse.urlencode(query)}")
        if user is not None:
            basic = base64.b64encode(f"{user}:{self.users[user]}".encode()).decode()
            req.add_header("Authorization", f"Basic {basic}")
        with urllib.request.urlopen(req, timeout=10) as resp:
            return str(json.load(resp)["token"])

    # --- internals ---

    def _sign(
        self,
        user: str | None,
        scopes: list[Scope],
        lifetime: int | None,
        audience: str | None = None,
        issuer: str | None = None,
    ) -> str:
        now = int(time.time())
        life = self.lifetime if lifetime is None else lifetime
        claims = {
            "iss": issuer or self.issuer,
            "sub": user or "",
            "aud": audience or self.service,  # a string: the registry rejects a list
            "exp": now + life - REGISTRY_LEEWAY,
            "nbf": now - 1,
            "iat": now,
            "jti": secrets.token_hex(8),
            "access": [
                {"type": s.type, "name": s.name, "actions": list(s.actions)} for s in scopes
            ],
        }
        return jwt.encode(claims, self._key, algorithm="ES256", headers={"x5c": [self._x5c]})

    def _grant(self, user: str | None, requested: list[Scope]) -> list[Scope]:
        granted = []
        for scope in requested:
            allowed = set(self.policy(user, scope))
            if "*" in allowed:
                actions = scope.actions
            else:
                actions = tuple(a for a in scope.actions if a in allowed)
            if actions:
                granted.append(Scope(scope.type, scope.name, actions))
        return granted

    def _respond(
        self,
        method: str,
        grant_type: str,
        user: str | None,
        requested: list[Scope],
        service: str | None,
        offline: bool,
    ) -> tuple[int, dict[str, object]]:
        with self._lock:
            self._state.requests += 1
            failure = self._state.failures.pop(0) if self._state.failures else None
        status: int = 200
        body: dict[str, object] = {}
        granted: list[Scope] = []
        if failure is not None:
            status, body = failure, {"error": "injected failure"}
        elif service is not None and service != self.service:
            status, body = 400, {"error": "invalid_request", "error_description": "bad service"}
        else:
            granted = self._grant(user, requested)
            life = self.lifetime
            token = self._sign(user, granted, life)
            body = {
                "token": token,
                "access_token": token,
                "expires_in": life,
                "issued_at": datetime.datetime.now(datetime.UTC).isoformat(),
            }
            if offline and user is not None:
                refresh = secrets.token_urlsafe(24)
                with self._lock:
                    self._state.refresh_tokens[refresh] = user
                body["refresh_token"] = refresh
        self._record(
            TokenRequest(method, user, grant_type, tuple(requested), tuple(granted), status)
        )
        return status, body

    def _record(self, req: TokenRequest) -> None:
        with self._lock:
            self._state.log.append(req)

    def _deny(self, method: str, grant_type: str, requested: list[Scope], status: int) -> None:
        with self._lock:
            self._state.requests += 1
        self._record(TokenRequest(method, None, grant_type, tuple(requested), (), status))

    def _check_password(self, user: str, password: str) -> bool:
        expected = self.users.get(user)
        return expected is not None and secrets.compare_digest(expected, password)

    def _refresh_user(self, token: str) -> str | None:
        with self._lock:
            return self._state.refresh_tokens.get(token)


def _self_signed(key: ec.EllipticCurvePrivateKey) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "yardarm test token signer")])
    now = datetime.datetime.now(datetime.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )


def _scopes(values: Iterable[str]) -> list[Scope]:
    out = []
    for value in values:
        # OAuth2 POST packs several scopes in one space-separated field.
        for part in value.split():
            scope = Scope.parse(part)
            if scope is not None:
                out.append(scope)
    return out


def _handler_for(server: TokenServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            pass  # requests are kept in server.log instead of cluttering test output

        def _send(self, status: int, body: dict[str, object]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            if status == 401:
                self.send_header("WWW-Authenticate", 'Basic realm="yardarm-test-tokens"')
            self.end_headers()
            self.wfile.write(data)

        def _basic_user(self) -> tuple[bool, str | None]:
            """(ok, user): no header is anonymous; a wrong password is not ok."""
            header = self.headers.get("Authorization")
            if not header:
                return True, None
            kind, _, value = header.partition(" ")
            if kind.lower() != "basic":
                return False, None
            try:
                user, _, password = base64.b64decode(value).decode().partition(":")
            except (binascii.Error, UnicodeDecodeError):
                return False, None
            return (True, user) if server._check_password(user, password) else (False, None)

        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            if parts.path != "/token":
                self._send(404, {"error": "not found"})
                return
            query = parse_qs(parts.query)
            requested = _scopes(query.get("scope", []))
            ok, user = self._basic_user()
            if not ok:
                server._deny("GET", "get", requested, 401)
                self._send(401, {"error": "invalid credentials"})
                return
            offline = query.get("offline_token", ["false"])[0].lower() == "true"
            service = query.get("service", [None])[0]
            status, body = server._respond("GET", "get", user, requested, service, offline)
            self._send(status, body)

        def do_POST(self) -> None:
            if urlsplit(self.path).path != "/token":
                self._send(404, {"error": "not found"})
                return
            length = int(self.headers.get("Content-Length") or 0)
            form = parse_qs(self.rfile.read(length).decode("utf-8", "replace"))
            requested = _scopes(form.get("scope", []))
            grant = form.get("grant_type", [""])[0]
            service = form.get("service", [None])[0]
            user: str | None
            if grant == "password":
                user = form.get("username", [""])[0]
                if not server._check_password(user, form.get("password", [""])[0]):
                    server._deny("POST", grant, requested, 401)
                    self._send(401, {"error": "invalid_grant"})
                    return
            elif grant == "refresh_token":
                user = server._refresh_user(form.get("refresh_token", [""])[0])
                if user is None:
                    server._deny("POST", grant, requested, 401)
                    self._send(401, {"error": "invalid_grant"})
                    return
            else:
                server._deny("POST", grant or "none", requested, 400)
                self._send(400, {"error": "unsupported_grant_type"})
                return
            offline = form.get("access_type", [""])[0] == "offline"
            status, body = server._respond("POST", grant, user, requested, service, offline)
            if status == 200 and grant == "refresh_token":
                body["refresh_token"] = form["refresh_token"][0]
            self._send(status, body)

    return Handler
