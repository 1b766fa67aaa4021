"""Registry credentials, read and written exactly where and how docker keeps them.

Users already logged in with ``docker login`` (or a credential helper such as
``docker-credential-desktop``) must not have to log in again, and a ``yardarm login`` must be
usable by docker and skopeo afterwards. So the lookup follows docker's order:

1. ``credHelpers[<host>]`` in ``config.json`` -> the ``docker-credential-<name>`` executable;
2. else ``credsStore`` -> that helper for every registry;
3. else the ``auths`` entry (``auth`` = base64 ``user:pass``, ``identitytoken``, ``registrytoken``,
   or plain ``username``/``password`` fields).

``config.json`` lives in ``$DOCKER_CONFIG`` or ``~/.docker``. docker.io credentials sit under the
historic key ``https://index.docker.io/v1/``; other keys are ``host[:port]``, but older tools wrote
URLs (``https://host:5000``, ``http://host/v1/``), so lookups compare normalised keys.

Secrets never leave this module in text form: ``Credentials`` hides them in ``repr``, and helper
failures are reported in one line with every known secret removed.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from yardarm.errors import CredentialError

__all__ = [
    "DOCKER_HUB_KEY",
    "Credentials",
    "config_key",
    "credential_helper_name",
    "docker_config_dir",
    "erase_credentials",
    "lookup_credentials",
    "store_credentials",
]

#: The key docker keeps Docker Hub credentials under, for historic reasons.
DOCKER_HUB_KEY: Final = "https://index.docker.io/v1/"
_DOCKER_HUB_HOSTS: Final = frozenset({"docker.io", "index.docker.io", "registry-1.docker.io"})
#: What helpers print (docker-credential-helpers' ErrCredentialsNotFound) when they have nothing.
_NOT_FOUND: Final = "credentials not found in native keychain"
#: Username a helper returns when the secret is an identity (refresh) token.
_TOKEN_USERNAME: Final = "<token>"
#: Helpers may prompt (desktop keychains) but must not hang a push for ever.
HELPER_TIMEOUT: Final = 60.0
_MAX_ECHO: Final = 160


@dataclass(frozen=True)
class Credentials:
    """What one registry login consists of; every field may be empty (anonymous).

    ``auth`` is the base64 ``user:pass`` form as written in ``config.json``; when only ``auth``
    is given, ``username`` and ``password`` are filled from it so callers need one code path.
    """

    username: str = ""
    password: str = ""
    auth: str = ""
    identity_token: str = ""
    registry_token: str = ""

    def __post_init__(self) -> None:
        if self.auth and not (self.username or self.password):
            user, password = _decode_auth(self.auth)
            object.__setattr__(self, "username", user)
            object.__setattr__(self, "password", password)

    @property
    def anonymous(self) -> bool:
        return not (self.username or self.password or self.identity_token or self.registry_token)

    def hmac_fields(self) -> dict[str, str]:
        """Fields for the v2 metadata HMAC key, so metadata is only trusted by the same login."""
        fields = {
            "username": self.username,
            "password": self.password,
            "auth": self.auth,
            "identitytoken": self.identity_token,
            "registrytoken": self.registry_token,
        }
        return {k: v for k, v in fields.items() if v}

    def secrets(self) -> tuple[str, ...]:
        """Every non-empty secret, so messages and logs can be scrubbed of them."""
        values = (self.password, self.auth, self.identity_token, self.registry_token)
        return tuple(v for v in values if v)

    def __repr__(self) -> str:
        kinds = [
            name
            for name, value in (
                ("password", self.password),
                ("identity_token", self.identity_token),
                ("registry_token", self.registry_token),
            )
            if value
        ]
        if self.auth and not self.password:
            kinds.append("auth")
        hidden = "".join(f", {k}=<hidden>" for k in kinds)
        return f"Credentials(username={self.username!r}{hidden})"

    __str__ = __repr__


def docker_config_dir(env: Mapping[str, str] = os.environ) -> Path:
    """The folder holding ``config.json``: ``$DOCKER_CONFIG`` or ``~/.docker``."""
    configured = env.get("DOCKER_CONFIG", "")
    if configured:
        return Path(configured).expanduser()
    home = env.get("HOME", "")
    return (Path(home) if home else Path.home()) / ".docker"


def _hostname(server: str) -> str:
    """``https://Host:5000/v1/`` -> ``host:5000`` (docker's ConvertToHostname, lower-cased)."""
    s = server.strip()
    for prefix in ("http://", "https://"):
        if s.lower().startswith(prefix):
            s = s[len(prefix) :]
            break
    return s.split("/", 1)[0].lower()


def config_key(server: str) -> str:
    """The key docker uses for ``server`` in ``auths`` and with credential helpers."""
    host = _hostname(server)
    if host in _DOCKER_HUB_HOSTS:
        return DOCKER_HUB_KEY
    return host


def _same_server(key: str, server_key: str) -> bool:
    return config_key(key) == server_key


def _decode_auth(auth: str) -> tuple[str, str]:
    try:
        raw = base64.b64decode(auth.strip(), validate=True).decode("utf-8")
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise CredentialError("malformed 'auth' value: not base64 of user:password") from None
    user, sep, password = raw.partition(":")
    if not sep:
        raise CredentialError("malformed 'auth' value: no ':' between user and password")
    return user, password


def _scrub(text: str, secrets: tuple[str, ...]) -> str:
    """One short line of helper output with every known secret removed."""
    for secret in sorted(secrets, key=len, reverse=True):
        if secret:
            text = text.replace(secret, "<hidden>")
    line = " ".join(text.split())
    if len(line) > _MAX_ECHO:
        line = line[:_MAX_ECHO] + "..."
    return line


# -- config.json --------------------------------------------------------------------------------


def _config_path(config_dir: Path | None) -> Path:
    return (config_dir if config_dir is not None else docker_config_dir()) / "config.json"


def _load_config(path: Path) -> dict[str, Any]:
    """The parsed file, ``{}`` when absent; CredentialError naming the file when unusable."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else "unreadable"
        raise CredentialError(f"{path}: cannot read docker config: {reason}") from None
    if not text.strip():  # docker accepts an empty file
        return {}
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        # The position only: the message of a decode error may quote the (secret) text.
        raise CredentialError(
            f"{path}: malformed docker config: invalid JSON at line {exc.lineno} column {exc.colno}"
        ) from None
    if not isinstance(data, dict):
        raise CredentialError(f"{path}: malformed docker config: top level is not an object")
    for name in ("auths", "credHelpers"):
        section = data.get(name)
        if section is not None and not isinstance(section, dict):
            raise CredentialError(f"{path}: malformed docker config: '{name}' is not an object")
    store = data.get("credsStore")
    if store is not None and not isinstance(store, str):
        raise CredentialError(f"{path}: malformed docker config: 'credsStore' is not a string")
    return data


def _write_config(path: Path, data: Mapping[str, Any]) -> None:
    """Replace ``path`` atomically (temp file, fsync, rename) readable by its owner only."""
    try:
        _replace_file(Path(os.path.realpath(path)), data)  # realpath: a symlink stays one
    except OSError as exc:
        raise CredentialError(
            f"{path}: cannot write docker config: {exc.strerror or exc}"
        ) from None


def _replace_file(target: Path, data: Mapping[str, Any]) -> None:
    target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    payload = (json.dumps(data, indent="\t") + "\n").encode("utf-8")
    fd, tmp_name = tempfile.mkstemp(prefix=".config.json.", dir=target.parent)
    tmp = Path(tmp_name)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(payload)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    with contextlib.suppress(OSError):  # the rename itself durable; not all filesystems allow it
        dir_fd = os.open(target.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def _auth_entries(data: Mapping[str, Any], server_key: str) -> Iterator[tuple[str, Any]]:
    """``auths`` entries for the server: the exact key first, then URL-shaped spellings."""
    auths: Mapping[str, Any] = data.get("auths") or {}
    if server_key in auths:
        yield server_key, auths[server_key]
    for key, entry in auths.items():
        if key != server_key and _same_server(key, server_key):
            yield key, entry


def _entry_credentials(path: Path, key: str, entry: Any) -> Credentials:
    if not isinstance(entry, dict):
        raise CredentialError(f"{path}: malformed docker config: auths[{key!r}] is not an object")
    values: dict[str, str] = {}
    for name in ("auth", "username", "password", "identitytoken", "registrytoken"):
        value = entry.get(name, "")
        if value is None:
            value = ""
        if not isinstance(value, str):
            raise CredentialError(
                f"{path}: malformed docker config: auths[{key!r}].{name} is not a string"
            )
        values[name] = value
    username, password = values["username"], values["password"]
    if values["auth"]:
        try:
            username, password = _decode_auth(values["auth"])
        except CredentialError as exc:
            raise CredentialError(f"{path}: auths[{key!r}]: {exc}") from None
    # Like docker, keep the decoded pair rather than ``auth`` itself, so the metadata HMAC key
    # does not depend on which of the two spellings the file used.
    return Credentials(
        username=username,
        password=password,
        identity_token=values["identitytoken"],
        registry_token=values["registrytoken"],
    )


# -- credential helpers -------------------------------------------------------------------------


@dataclass(frozen=True)
class _Helper:
    """One ``docker-credential-<name>`` executable, spoken to over stdin/stdout."""

    name: str
    configured_in: Path

    def _run(self, action: str, stdin: str, secrets: tuple[str, ...] = ()) -> tuple[int, str]:
        program = f"docker-credential-{self.name}"
        exe = shutil.which(program)
        if exe is None:
            raise CredentialError(
                f"credential helper {program} not found on PATH "
                f"(configured in {self.configured_in})"
            )
        try:
            proc = subprocess.run(
                [exe, action],
                input=stdin.encode("utf-8"),
                capture_output=True,
                timeout=HELPER_TIMEOUT,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise CredentialError(
                f"credential helper {program} {action}: no answer within {HELPER_TIMEOUT:g} s"
            ) from None
        except OSError as exc:
            raise CredentialError(
                f"credential helper {program} {action}: cannot run: {exc.strerror or exc}"
            ) from None
        out = proc.stdout.decode("utf-8", "replace")
        if proc.returncode != 0:
            err = proc.stderr.decode("utf-8", "replace")
            message = (out.strip() or err.strip()).splitlines()
            first = message[0] if message else ""
            if _NOT_FOUND in first.lower() or _NOT_FOUND in err.lower():
                return proc.returncode, _NOT_FOUND
            why = _scrub(first, secrets) or f"exit status {proc.returncode}"
            raise CredentialError(f"credential helper {program} {action} failed: {why}")
        return 0, out

    def get(self, server_key: str) -> Credentials:
        status, out = self._run("get", server_key)
        if status != 0:
            return Credentials()
        program = f"docker-credential-{self.name}"
        try:
            answer = json.loads(out)
        except json.JSONDecodeError:
            # Never echo the output: it is the secret, only mangled.
            raise CredentialError(
                f"credential helper {program} get: malformed answer ({len(out)} bytes, not JSON)"
            ) from None
        if not isinstance(answer, dict):
            raise CredentialError(f"credential helper {program} get: answer is not a JSON object")
        user = answer.get("Username", "")
        secret = answer.get("Secret", "")
        if not isinstance(user, str) or not isinstance(secret, str):
            raise CredentialError(
                f"credential helper {program} get: Username and Secret must be strings"
            )
        if user == _TOKEN_USERNAME:
            return Credentials(identity_token=secret)
        return Credentials(username=user, password=secret)

    def store(self, server_key: str, creds: Credentials) -> None:
        if creds.identity_token:
            user, secret = _TOKEN_USERNAME, creds.identity_token
        else:
            user, secret = creds.username, creds.password
        body = json.dumps({"ServerURL": server_key, "Username": user, "Secret": secret})
        status, _ = self._run("store", body, creds.secrets())
        if status != 0:  # "not found" makes no sense for store; report it as a failure
            raise CredentialError(f"credential helper docker-credential-{self.name} store failed")

    def erase(self, server_key: str) -> bool:
        status, _ = self._run("erase", server_key)
        return status == 0


def _helper_for(data: Mapping[str, Any], server_key: str, path: Path) -> _Helper | None:
    helpers: Mapping[str, Any] = data.get("credHelpers") or {}
    name = helpers.get(server_key)
    if name is None:
        for key, value in helpers.items():
            if _same_server(key, server_key):
                name = value
                break
    if name is None:
        name = data.get("credsStore")
    if name is None or name == "":
        return None
    if not isinstance(name, str) or not _valid_helper_name(name):
        raise CredentialError(f"{path}: malformed docker config: bad credential helper name")
    return _Helper(name, path)


def _valid_helper_name(name: str) -> bool:
    return bool(name) and "/" not in name and "\\" not in name and name not in (".", "..")


# -- public operations --------------------------------------------------------------------------


def lookup_credentials(server: str, config_dir: Path | None = None) -> Credentials:
    """Credentials for ``server`` in docker's order; anonymous ``Credentials()`` when none."""
    path = _config_path(config_dir)
    data = _load_config(path)
    key = config_key(server)
    helper = _helper_for(data, key, path)
    if helper is not None:
        return helper.get(key)
    for entry_key, entry in _auth_entries(data, key):
        creds = _entry_credentials(path, entry_key, entry)
        if not creds.anonymous:
            return creds
    return Credentials()


def credential_helper_name(server: str, config_dir: Path | None = None) -> str | None:
    """The helper that keeps ``server``'s secrets (``desktop``, ...), None for config.json."""
    path = _config_path(config_dir)
    helper = _helper_for(_load_config(path), config_key(server), path)
    return helper.name if helper is not None else None


def store_credentials(server: str, creds: Credentials, config_dir: Path | None = None) -> None:
    """Save ``creds`` for ``server``: in the configured helper, else in ``config.json`` (0600)."""
    path = _config_path(config_dir)
    data = _load_config(path)
    key = config_key(server)
    helper = _helper_for(data, key, path)
    auths = dict(data.get("auths") or {})
    for other, _ in list(_auth_entries(data, key)):
        if other != key:  # one spelling per server, so a later lookup cannot find stale ones
            del auths[other]
    if helper is not None:
        helper.store(key, creds)
        # docker leaves an empty entry so that tools can list where the user is logged in.
        auths[key] = {}
    else:
        entry: dict[str, str] = {}
        if creds.username or creds.password:
            raw = f"{creds.username}:{creds.password}".encode()
            entry["auth"] = base64.b64encode(raw).decode("ascii")
        if creds.identity_token:
            entry["identitytoken"] = creds.identity_token
        if creds.registry_token:
            entry["registrytoken"] = creds.registry_token
        auths[key] = entry
    data = dict(data)
    data["auths"] = auths
    _write_config(path, data)


def erase_credentials(server: str, config_dir: Path | None = None) -> bool:
    """Forget ``server``'s credentials; True when something was removed."""
    path = _config_path(config_dir)
    data = _load_config(path)
    key = config_key(server)
    helper = _helper_for(data, key, path)
    removed = helper.erase(key) if helper is not None else False
    keys = [k for k, _ in _auth_entries(data, key)]
    if keys:
        auths = dict(data.get("auths") or {})
        for k in keys:
            del auths[k]
        removed = removed or helper is None
        data = dict(data)
        data["auths"] = auths
        _write_config(path, data)
    return removed
