"""Token acquisition, caching and renewal, with a scripted transport and a fake clock."""

from __future__ import annotations

import base64
import io
import json
import threading
import time
import urllib.parse

import pytest

from fakes.scripted_transport import Answer, ScriptedTransport, Sent
from yardarm.digest import Digest
from yardarm.errors import AuthenticationError, DeniedError, TransportError
from yardarm.registry import Credentials, Registry, RegistryOptions
from yardarm.registry.auth import Authenticator, Token
from yardarm.registry.client import BlobUpload
from yardarm.registry.transport import Response

HOST = "registry.example:5000"
REALM = "https://auth.example/token"
CHALLENGE = f'Bearer realm="{REALM}",service="svc"'


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class TokenRegistry:
    """A registry that wants bearer tokens, and its token server, in one handler."""

    def __init__(self, expires_in: int | None = 300, reject_tokens: set[str] | None = None):
        self.expires_in = expires_in
        self.issued = 0
        self.reject = reject_tokens if reject_tokens is not None else set()
        self.lock = threading.Lock()

    def __call__(self, req: Sent) -> Answer:
        url = urllib.parse.urlsplit(req.url)
        if url.netloc == "auth.example":
            if req.method == "POST":
                form = urllib.parse.parse_qs(req.body.decode())
                if form.get("refresh_token") != ["refresh-secret"]:
                    return Answer(401, body=b'{"error":"invalid_grant"}')
            with self.lock:
                self.issued += 1
                token = f"tok{self.issued}"
            doc: dict[str, object] = {"token": token}
            if self.expires_in is not None:
                doc["expires_in"] = self.expires_in
            return Answer(200, {"Content-Type": "application/json"}, json.dumps(doc).encode())
        auth = req.header("Authorization") or ""
        if not auth.startswith("Bearer ") or auth[7:] in self.reject:
            return Answer(
                401,
                {"WWW-Authenticate": CHALLENGE, "Content-Type": "application/json"},
                b'{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}',
            )
        if req.method == "HEAD":
            return Answer(404)
        if req.method == "PATCH":
            return Answer(202, {"Location": url.path + "?n=2", "Range": f"0-{len(req.body) - 1}"})
        return Answer(200, body=b"{}")


def make(
    handler: TokenRegistry, creds: Credentials | None = None, clock: Clock | None = None
) -> tuple[Registry, ScriptedTransport]:
    transport = ScriptedTransport(handler)
    opts = RegistryOptions(
        transport=transport,
        clock=clock or Clock(),
        sleep=lambda _s: None,
        insecure_loopback=False,
    )
    creds = creds if creds is not None else Credentials(username="u", password="pw-secret")
    return Registry(HOST, opts, creds), transport


def token_requests(t: ScriptedTransport) -> list[Sent]:
    return [s for s in t.sent if "auth.example" in s.url]


def test_token_request_carries_service_scope_account_and_basic_auth() -> None:
    reg, t = make(TokenRegistry())
    reg.repository("a/b").stat_blob(_digest())
    [req] = token_requests(t)
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(req.url).query)
    assert query == {"service": ["svc"], "scope": ["repository:a/b:push,pull"], "account": ["u"]}
    assert req.header("Authorization") == "Basic " + base64.b64encode(b"u:pw-secret").decode()
    head = t.of("HEAD")[-1]
    assert head.header("Authorization") == "Bearer tok1"


def test_mount_scopes_list_push_first_then_source_pull() -> None:
    handler = TokenRegistry()
    reg, t = make(handler)
    original = handler.__call__

    def with_mount(req: Sent) -> Answer:
        mount = req.method == "POST" and "mount=" in req.url and "auth.example" not in req.url
        if mount and req.header("Authorization"):
            return Answer(202, {"Location": "/v2/a/b/blobs/uploads/x"})
        return original(req)

    t.handler = with_mount
    reg.repository("a/b").mount_blob(_digest(), "c/d")
    [req] = token_requests(t)
    scopes = urllib.parse.parse_qs(urllib.parse.urlsplit(req.url).query)["scope"]
    assert scopes == ["repository:a/b:push,pull", "repository:c/d:pull"]


def test_short_lifetime_is_treated_as_60_seconds_and_renewed_before_expiry() -> None:
    clock = Clock()
    reg, t = make(TokenRegistry(expires_in=5), clock=clock)
    repo = reg.repository("a/b")
    repo.stat_blob(_digest())
    clock.now += 50  # 5 s announced, 60 s floor, renewed 6 s early: still valid
    repo.stat_blob(_digest())
    assert len(token_requests(t)) == 1
    clock.now += 5  # 55 s: inside the renewal margin
    repo.stat_blob(_digest())
    assert len(token_requests(t)) == 2
    assert [s.header("Authorization") for s in t.of("HEAD")][-1] == "Bearer tok2"


def test_issued_at_in_the_past_shortens_the_lifetime() -> None:
    now = time.time()
    auth = Authenticator(
        HOST,
        Credentials(),
        ScriptedTransport(lambda r: Answer(500)),
        basic_allowed=lambda _u: True,
        clock=lambda: 0.0,
        wall_clock=lambda: now,
    )
    issued = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now - 200)) + ".123456789Z"
    body = json.dumps({"token": "t", "expires_in": 300, "issued_at": issued}).encode()
    token = auth._token_from(Response(200, {}, body), "GET", REALM)
    assert 60 <= token.expires_at <= 101  # 300 - 200 remaining, minus the renewal margin


def test_a_401_in_the_middle_of_an_upload_renews_once_and_resends_the_chunk() -> None:
    handler = TokenRegistry()
    reg, t = make(handler)
    repo = reg.repository("a/b")
    repo.stat_blob(_digest())
    handler.reject.add("tok1")  # the registry now considers the cached token expired
    upload = BlobUpload(repo, f"https://{HOST}/v2/a/b/blobs/uploads/x?n=1")
    seen: list[int] = []
    assert upload.write(io.BytesIO(b"0123456789"), length=10, progress=seen.append) == 10
    patches = t.of("PATCH")
    assert [p.header("Authorization") for p in patches] == ["Bearer tok1", "Bearer tok2"]
    assert [p.body for p in patches] == [b"0123456789", b"0123456789"]
    assert sum(seen) == 10  # the resend is not counted twice
    assert upload.offset == 10


def test_a_second_401_after_renewal_is_an_authentication_error() -> None:
    handler = TokenRegistry(reject_tokens={"tok1", "tok2", "tok3"})
    reg, _t = make(handler)
    with pytest.raises(AuthenticationError) as info:
        reg.repository("a/b").start_upload()
    assert "pw-secret" not in str(info.value) + repr(info.value)


def test_insufficient_scope_is_denied_naming_the_repository() -> None:
    def handler(req: Sent) -> Answer:
        if "auth.example" in req.url:
            return Answer(200, body=b'{"token":"t"}')
        challenge = CHALLENGE + ',scope="repository:team/app:push,pull",error="insufficient_scope"'
        return Answer(401, {"WWW-Authenticate": challenge}, b"")

    t = ScriptedTransport(handler)
    reg = Registry(HOST, RegistryOptions(transport=t), Credentials(username="r", password="p"))
    with pytest.raises(DeniedError) as info:
        reg.repository("team/app").start_upload()
    assert str(info.value).count("\n") == 0
    assert "team/app" in str(info.value)


def test_identity_token_uses_the_oauth2_refresh_grant() -> None:
    reg, t = make(TokenRegistry(), Credentials(username="<token>", identity_token="refresh-secret"))
    reg.repository("a/b").stat_blob(_digest())
    [req] = token_requests(t)
    assert req.method == "POST"
    form = urllib.parse.parse_qs(req.body.decode())
    assert form["grant_type"] == ["refresh_token"]
    assert form["scope"] == ["repository:a/b:push,pull"]
    assert form["service"] == ["svc"]
    assert "refresh-secret" not in repr(reg) + repr(reg._session.auth)


def test_identity_token_falls_back_to_get_when_the_server_has_no_oauth2() -> None:
    handler = TokenRegistry()

    def no_post(req: Sent) -> Answer:
        if req.method == "POST" and "auth.example" in req.url:
            return Answer(404)
        return handler(req)

    t = ScriptedTransport(no_post)
    creds = Credentials(username="u", password="p", identity_token="refresh-secret")
    reg = Registry(HOST, RegistryOptions(transport=t), creds)
    reg.repository("a/b").stat_blob(_digest())
    assert [s.method for s in token_requests(t)] == ["POST", "GET"]


def test_registry_token_is_sent_as_is_without_a_token_request() -> None:
    reg, t = make(TokenRegistry(), Credentials(registry_token="tok1"))
    reg.repository("a/b").stat_blob(_digest())
    assert token_requests(t) == []
    assert t.of("HEAD")[-1].header("Authorization") == "Bearer tok1"


def test_one_token_fetch_however_many_threads_need_it() -> None:
    handler = TokenRegistry()
    reg, t = make(handler)
    repo = reg.repository("a/b")
    threads = [threading.Thread(target=repo.stat_blob, args=(_digest(),)) for _ in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert len(token_requests(t)) == 1


def test_password_goes_over_plain_http_only_to_a_registry_named_insecure() -> None:
    def handler(req: Sent) -> Answer:
        if req.url.startswith("https://"):
            raise TransportError("no TLS here")
        if req.header("Authorization"):
            return Answer(200)
        return Answer(401, {"WWW-Authenticate": 'Basic realm="r"'})

    t = ScriptedTransport(handler)
    opts = RegistryOptions(transport=t, insecure_registries=(HOST,), insecure_loopback=False)
    reg = Registry(HOST, opts, Credentials(username="u", password="pw-secret"))
    reg.ping()
    assert reg.base_url == f"http://{HOST}"
    assert (t.sent[-1].header("Authorization") or "").startswith("Basic ")


def test_a_secure_registry_is_never_tried_over_plain_http() -> None:
    def handler(req: Sent) -> Answer:
        raise TransportError("no TLS here")

    t = ScriptedTransport(handler)
    opts = RegistryOptions(transport=t, insecure_loopback=False, sleep=lambda _s: None)
    reg = Registry(HOST, opts, Credentials(username="u", password="pw-secret"))
    with pytest.raises(TransportError):
        reg.ping()
    assert {urllib.parse.urlsplit(s.url).scheme for s in t.sent} == {"https"}


def test_basic_refused_over_http_realm_for_a_secure_host() -> None:
    auth = Authenticator(
        HOST,
        Credentials(username="u", password="pw-secret"),
        ScriptedTransport(lambda r: Answer(500)),
        basic_allowed=lambda url: url.startswith("https://"),
    )
    auth.set_challenge(['Basic realm="r"'])
    with pytest.raises(AuthenticationError) as info:
        auth.header((), f"http://{HOST}/v2/")
    assert "pw-secret" not in str(info.value)
    assert auth.header((), f"https://{HOST}/v2/") is not None


def test_token_and_authenticator_reprs_hide_secrets() -> None:
    token = Token("very-secret-token", 12.0)
    assert "very-secret-token" not in repr(token) + str(token)
    auth = Authenticator(
        HOST,
        Credentials(username="u", password="pw-secret"),
        ScriptedTransport(lambda r: Answer(500)),
        basic_allowed=lambda _u: True,
    )
    assert "pw-secret" not in repr(auth)


def test_token_server_error_message_is_scrubbed_of_the_password() -> None:
    def handler(req: Sent) -> Answer:
        if "auth.example" in req.url:
            return Answer(401, body=b'{"details":"bad password pw-secret for u"}')
        return Answer(401, {"WWW-Authenticate": CHALLENGE})

    t = ScriptedTransport(handler)
    reg = Registry(
        HOST, RegistryOptions(transport=t), Credentials(username="u", password="pw-secret")
    )
    with pytest.raises(AuthenticationError) as info:
        reg.repository("a/b").start_upload()
    assert "pw-secret" not in str(info.value)
    assert "token server refused" in str(info.value)


# -- helpers ------------------------------------------------------------------------------


def _digest() -> Digest:
    return Digest.from_bytes(b"x")


def test_password_is_not_sent_to_a_plain_http_realm_on_another_host() -> None:
    def handler(req: Sent) -> Answer:
        if req.url.startswith(f"https://{HOST}"):
            raise TransportError("no TLS here")
        if "auth.example" in req.url:
            return Answer(200, body=b'{"token":"anon"}')
        if req.header("Authorization"):
            return Answer(404)
        return Answer(401, {"WWW-Authenticate": 'Bearer realm="http://auth.example/token"'})

    t = ScriptedTransport(handler)
    opts = RegistryOptions(transport=t, insecure_registries=(HOST,), insecure_loopback=False)
    reg = Registry(HOST, opts, Credentials(username="u", password="pw-secret"))
    reg.repository("a/b").stat_blob(_digest())
    [token_request] = token_requests(t)
    assert token_request.header("Authorization") is None
