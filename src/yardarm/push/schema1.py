"""Docker image manifest v2 schema 1: build and sign one, for registries that refuse schema 2.

Schema 1 has been deprecated since 2015. yardarm writes it only when asked (``--allow-schema1``)
and the registry has refused schema 2, as docker did. The bytes follow distribution's
``schema1.NewConfigManifestBuilder`` + ``Sign`` and libtrust's "pretty JWS" closely enough that a
registry verifies them and old clients rebuild the same v1 image IDs docker would have.

Two details decide interoperability and are easy to get wrong:

* the signature covers the document *without* its ``signatures`` member; the protected header
  says where to cut (``formatLength``) and what to put back (``formatTail``), and the registry
  names the manifest by the digest of those canonical bytes, not of the bytes we send;
* a registry stores only the canonical bytes and signs them again with its own key when it
  serves them, so reading a schema1 manifest back never returns our signature.

``cryptography`` is imported inside functions: the CLI must start fast and most pushes never
come here.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as _dt
import hashlib
import json
import os
import re
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Final

from yardarm import mediatypes
from yardarm.digest import Digest
from yardarm.errors import CredentialError, InvalidReference, ManifestError

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ec import EllipticCurvePrivateKey

__all__ = [
    "EMPTY_GZIP_TAR",
    "EMPTY_GZIP_TAR_DIGEST",
    "SCHEMA1_SIGNED_MEDIA_TYPE",
    "Schema1Key",
    "SigningKeyError",
    "build_schema1_manifest",
    "load_or_create_key",
    "schema1_blob_sums",
    "schema1_canonical",
    "schema1_digest",
]

#: The Content-Type to PUT a signed schema1 manifest with.
SCHEMA1_SIGNED_MEDIA_TYPE: Final = mediatypes.DOCKER_SCHEMA1_SIGNED

#: The gzip'd empty tar (1024 zero bytes) that stands in for history entries without a layer.
#: Registries check that every blobSum exists, so it must be uploaded when referenced.
EMPTY_GZIP_TAR: Final = bytes.fromhex(
    "1f8b080000096e8800ff621805a360148c5800080000ffff2eafb5ef00040000"
)
EMPTY_GZIP_TAR_DIGEST: Final = Digest(
    "sha256", "a3ed95caeb02ffe68cdd9fd84406680ae93d633cb16422d00e8a7c22955b46d4"
)

_INDENT: Final = "   "  # libtrust and distribution both indent with three spaces
_ZERO_TIME: Final = "0001-01-01T00:00:00Z"  # Go's zero time.Time, what a missing date becomes
_TIME_RE: Final = re.compile(
    r"^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d+))?(Z|[+-]\d{2}:\d{2})$"
)
_COMPONENT_RE: Final = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$")
_TAG_RE: Final = re.compile(r"^[\w][\w.-]{0,127}$", re.ASCII)
# Schema1 consumers predate zstd and cannot follow foreign-layer URLs (schema1 has none).
_SCHEMA1_LAYER_COMPRESSION: Final = frozenset({"gzip", "none"})


class SigningKeyError(CredentialError):
    """The schema1 signing key file cannot be read, created or used; the message names the file."""


@dataclass(frozen=True, slots=True)
class Schema1Key:
    """An EC P-256 signing key with its libtrust key ID and public JWK (what the JWS header shows).

    The private key never appears in repr or comparisons.
    """

    kid: str
    jwk: Mapping[str, str] = field(hash=False)
    private_key: EllipticCurvePrivateKey = field(repr=False, compare=False)

    @classmethod
    def from_private_key(cls, private_key: EllipticCurvePrivateKey) -> Schema1Key:
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

        if not isinstance(private_key.curve, ec.SECP256R1):
            raise SigningKeyError(
                f"schema1 signing key must be EC P-256, not {private_key.curve.name}"
            )
        public = private_key.public_key()
        spki = public.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
        kid = _libtrust_key_id(spki)
        numbers = public.public_numbers()
        # Go marshals the JWK from a map, so its members come out in sorted order.
        jwk = {
            "crv": "P-256",
            "kid": kid,
            "kty": "EC",
            "x": _b64url(numbers.x.to_bytes(32, "big")),
            "y": _b64url(numbers.y.to_bytes(32, "big")),
        }
        return cls(kid=kid, jwk=MappingProxyType(jwk), private_key=private_key)

    def sign(self, data: bytes) -> bytes:
        """ES256 over ``data``: JWS wants the raw 64-byte r||s, not the DER that OpenSSL gives."""
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

        r, s = decode_dss_signature(self.private_key.sign(data, ec.ECDSA(hashes.SHA256())))
        return r.to_bytes(32, "big") + s.to_bytes(32, "big")


def _libtrust_key_id(spki_der: bytes) -> str:
    """libtrust's fingerprint: sha256 of the DER public key, 240 bits, base32 in 12 groups of 4."""
    encoded = base64.b32encode(hashlib.sha256(spki_der).digest()[:30]).decode().rstrip("=")
    return ":".join(encoded[i : i + 4] for i in range(0, len(encoded), 4))


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64url_decode(text: str) -> bytes:
    # As libtrust: padding is optional, but if present the length must come out right.
    if not re.fullmatch(r"[A-Za-z0-9_-]*={0,2}", text) or len(text) % 4 == 1:
        raise ValueError("invalid base64url")
    if "=" in text and len(text) % 4:
        raise ValueError("invalid base64url padding")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


# -- the key file ---------------------------------------------------------------------------


def load_or_create_key(path: Path) -> Schema1Key:
    """The signing key kept in ``path`` (PEM), created on first use like docker's key.json.

    Creation is atomic and first-writer-wins: the key is written to a private temporary file,
    synced, then linked into place without replacing an existing file, so concurrent pushes end
    up signing with the same key and a crash never leaves a half-written key behind.
    """
    try:
        return _load_key(path)
    except FileNotFoundError:
        pass
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    private_key = ec.generate_private_key(ec.SECP256R1())
    pem = private_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,  # "EC PRIVATE KEY", as libtrust writes
        serialization.NoEncryption(),
    )
    try:
        created = _write_new_file(path, pem)
    except OSError as exc:
        raise SigningKeyError(
            f"cannot create schema1 signing key {path}: {exc.strerror or exc}"
        ) from None
    if not created:  # another process got there first: use its key
        return _load_key(path)
    return Schema1Key.from_private_key(private_key)


def _load_key(path: Path) -> Schema1Key:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise SigningKeyError(
            f"cannot read schema1 signing key {path}: {exc.strerror or exc}"
        ) from None
    try:
        private_key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError):
        # The message must not quote the file: it holds a private key.
        raise SigningKeyError(
            f"schema1 signing key {path} is not an unencrypted PEM private key"
        ) from None
    if not isinstance(private_key, ec.EllipticCurvePrivateKey):
        raise SigningKeyError(f"schema1 signing key {path} is not an EC key")
    return Schema1Key.from_private_key(private_key)


def _write_new_file(path: Path, data: bytes) -> bool:
    """Write ``data`` to ``path`` mode 0600 unless it exists; False when someone else won."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        try:
            os.fchmod(fd, 0o600)  # the umask may only remove bits, but be explicit
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.link(tmp, path)  # fails if the path exists: never replace a key in use
        except FileExistsError:
            return False
        except OSError:
            # Some filesystems have no hard links; a rename is still atomic, only not exclusive.
            if path.exists():
                return False
            os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
    _fsync_dir(path.parent)
    return True


def _fsync_dir(directory: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


# -- Go-compatible JSON ---------------------------------------------------------------------
# The v1Compatibility strings and the signed payload are compared byte for byte by nobody, but
# docker derives v1 image IDs from them; writing them as Go's encoding/json does (HTML-safe
# escapes, sorted top-level config keys, raw values kept verbatim) keeps yardarm's output equal
# to what docker pushes for the same image.

_GO_ESCAPE_RE: Final = re.compile('[\x00-\x1f"\\\\<>&\u2028\u2029\ud800-\udfff]')
_GO_SHORT_ESCAPES: Final = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _go_escape(m: re.Match[str]) -> str:
    c = m.group()
    short = _GO_SHORT_ESCAPES.get(c)
    if short is not None:
        return short
    if "\ud800" <= c <= "\udfff":
        return "\ufffd"  # Go decodes a lone surrogate escape to U+FFFD and writes that rune
    return f"\\u{ord(c):04x}"


def _go_string(text: str) -> str:
    return '"' + _GO_ESCAPE_RE.sub(_go_escape, text) + '"'


@dataclass(frozen=True, slots=True)
class _RawJSON:
    """A JSON value already compacted, written out verbatim (Go's json.RawMessage)."""

    text: str


def _go_json(value: object, *, indent: str | None = None, prefix: str = "") -> str:
    """Go's json.Marshal (indent None) or json.MarshalIndent(value, prefix, indent)."""
    out: list[str] = []
    _emit(value, out, indent, "\n" + prefix, 0)
    return "".join(out)


def _emit(value: object, out: list[str], indent: str | None, newline: str, depth: int) -> None:
    if isinstance(value, _RawJSON):
        out.append(value.text)
    elif value is None:
        out.append("null")
    elif isinstance(value, bool):
        out.append("true" if value else "false")
    elif isinstance(value, int):
        out.append(str(value))
    elif isinstance(value, str):
        out.append(_go_string(value))
    elif isinstance(value, Mapping):
        _emit_container(list(value.items()), "{}", out, indent, newline, depth)
    elif isinstance(value, Sequence):
        _emit_container([(None, v) for v in value], "[]", out, indent, newline, depth)
    else:
        raise TypeError(f"cannot encode {type(value).__name__} as JSON")


def _emit_container(
    items: list[tuple[object, object]],
    brackets: str,
    out: list[str],
    indent: str | None,
    newline: str,
    depth: int,
) -> None:
    out.append(brackets[0])
    if not items:
        out.append(brackets[1])
        return
    for i, (key, item) in enumerate(items):
        if i:
            out.append(",")
        if indent is not None:
            out.append(newline + indent * (depth + 1))
        if key is not None:
            out.append(_go_string(str(key)))
            out.append(": " if indent is not None else ":")
        _emit(item, out, indent, newline, depth + 1)
    if indent is not None:
        out.append(newline + indent * depth)
    out.append(brackets[1])


_RAW_TOKEN_RE: Final = re.compile(r'"(?:[^"\\]|\\.)*"|[ \t\n\r]+', re.DOTALL)
_HTML_UNSAFE_RE: Final = re.compile("[<>&\u2028\u2029]")


def _compact(raw: str) -> str:
    """Go's json.Compact with HTML escaping: whitespace outside strings goes, text stays as is."""

    def token(m: re.Match[str]) -> str:
        text = m.group()
        if text[0] != '"':
            return ""
        return _HTML_UNSAFE_RE.sub(lambda c: f"\\u{ord(c.group()):04x}", text)

    return _RAW_TOKEN_RE.sub(token, raw)


def _top_level_members(text: str) -> dict[str, str]:
    """The raw text of each member of a JSON object (the last one wins, as in a Go map)."""
    decoder = json.JSONDecoder()
    ws = re.compile(r"[ \t\n\r]*")

    def skip(i: int) -> int:
        m = ws.match(text, i)
        assert m is not None  # the pattern matches the empty string
        return m.end()

    members: dict[str, str] = {}
    try:
        i = skip(0)
        if text[i] != "{":
            raise ValueError("not an object")
        i = skip(i + 1)
        if text[i] == "}":
            return members
        while True:
            key, i = decoder.raw_decode(text, i)
            if not isinstance(key, str):
                raise ValueError("object key is not a string")
            i = skip(i)
            if text[i] != ":":
                raise ValueError("missing ':'")
            start = skip(i + 1)
            _, end = decoder.raw_decode(text, start)
            members[key] = text[start:end]
            i = skip(end)
            if text[i] == ",":
                i = skip(i + 1)
                continue
            if text[i] == "}":
                break
            raise ValueError("missing ',' or '}'")
    except (ValueError, IndexError) as exc:
        raise ManifestError(f"image config is not a JSON object: {exc}") from None
    return members


def _go_time(value: object, what: str) -> str:
    """A JSON time as Go re-marshals it (RFC 3339, trailing fraction zeros dropped, UTC as Z)."""
    if value is None:
        return _ZERO_TIME
    m = _TIME_RE.match(value) if isinstance(value, str) else None
    if m is None:
        raise ManifestError(f"image config: {what} is not an RFC 3339 time: {value!r:.80}")
    base, fraction, zone = m.groups()
    fraction = (fraction or "")[:9].rstrip("0")
    if zone in ("+00:00", "-00:00"):
        zone = "Z"
    return f"{base}.{fraction}{zone}" if fraction else f"{base}{zone}"


# -- the manifest ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _HistoryEntry:
    created: str
    author: str
    created_by: str
    comment: str
    empty_layer: bool


def _parse_config(config_raw: bytes) -> tuple[str, dict[str, object], list[_HistoryEntry]]:
    try:
        text = config_raw.decode("utf-8")
        config = json.loads(text)
    except (UnicodeDecodeError, ValueError) as exc:
        raise ManifestError(f"image config is not valid JSON: {exc}") from None
    if not isinstance(config, dict):
        raise ManifestError("image config is not a JSON object")
    history_raw = config.get("history")
    if not isinstance(history_raw, list) or not history_raw:
        raise ManifestError(
            "cannot build a schema1 manifest: the image config has no history "
            "(schema1 needs one history entry per layer)"
        )
    history = []
    for n, item in enumerate(history_raw):
        if not isinstance(item, dict):
            raise ManifestError(f"image config: history[{n}] is not an object")
        strings = {}
        for key in ("author", "created_by", "comment"):
            value = item.get(key)
            if value is not None and not isinstance(value, str):
                raise ManifestError(f"image config: history[{n}].{key} is not a string")
            strings[key] = value or ""
        empty = item.get("empty_layer")
        if empty is not None and not isinstance(empty, bool):
            raise ManifestError(f"image config: history[{n}].empty_layer is not a boolean")
        history.append(
            _HistoryEntry(
                created=_go_time(item.get("created"), f"history[{n}].created"),
                author=strings["author"],
                created_by=strings["created_by"],
                comment=strings["comment"],
                empty_layer=bool(empty),
            )
        )
    return text, config, history


def _check_name_and_tag(name: str, tag: str) -> None:
    if not name or any(not _COMPONENT_RE.match(c) for c in name.split("/")):
        raise InvalidReference(f"invalid repository path for a schema1 manifest: {name!r:.100}")
    if not _TAG_RE.match(tag):
        raise InvalidReference(f"schema1 manifests need a tag, not {tag!r:.100}")


def build_schema1_manifest(
    name: str,
    tag: str,
    config_raw: bytes,
    layers: Sequence[tuple[Digest, str]],
    key: Schema1Key,
    architecture: str | None = None,
    *,
    now: _dt.datetime | None = None,
) -> bytes:
    """The signed schema1 manifest for an image, as docker's schema1 fallback writes it.

    ``name`` is the repository path on the registry (no host), ``layers`` the pushed layer
    blobs bottom to top as (digest, media type), matched in order to the config's non-empty
    history entries. Empty history entries reference :data:`EMPTY_GZIP_TAR_DIGEST`, which the
    caller must make sure exists in the repository (see :func:`schema1_blob_sums`).
    ``architecture`` overrides the config's. ``now`` fixes the signature time (tests).

    Unlike distribution, a config whose history accounts for fewer layers than given is
    refused: a schema1 manifest silently dropping layers would be a broken image.
    """
    _check_name_and_tag(name, tag)
    text, config, history = _parse_config(config_raw)
    rootfs = config.get("rootfs")
    diff_ids = rootfs.get("diff_ids") if isinstance(rootfs, dict) else None
    if not isinstance(diff_ids, list):
        raise ManifestError("image config has no rootfs.diff_ids")
    if len(diff_ids) != len(layers):
        raise ManifestError(
            f"image config lists {len(diff_ids)} layers but {len(layers)} layer blobs were given"
        )
    for digest, media_type in layers:
        if (
            not mediatypes.is_layer(media_type)
            or mediatypes.is_foreign_layer(media_type)
            or mediatypes.compression_of(media_type) not in _SCHEMA1_LAYER_COMPRESSION
        ):
            raise ManifestError(
                f"layer {digest} ({media_type}) cannot be described by a schema1 manifest "
                "(only gzip or uncompressed distributable layers can)"
            )
    if architecture is None:
        arch = config.get("architecture", "")
        if not isinstance(arch, str):
            raise ManifestError("image config: architecture is not a string")
        architecture = arch
    base_layer = rootfs.get("base_layer") if isinstance(rootfs, dict) else None

    pending = iter(layers)

    def blob_sum(entry: _HistoryEntry) -> Digest:
        if entry.empty_layer:
            return EMPTY_GZIP_TAR_DIGEST
        nxt = next(pending, None)
        if nxt is None:
            raise ManifestError(
                "image config's history has more non-empty entries than the image has layers"
            )
        return nxt[0]

    # Lower entries get synthetic v1 images whose IDs chain over their blobs, as docker's do.
    rows: list[tuple[Digest, str]] = []  # bottom first: (blobSum, v1Compatibility)
    parent = ""
    for i, entry in enumerate(history[:-1]):
        blob = blob_sum(entry)
        v1_id = hashlib.sha256(f"{blob.hex} {parent}".encode()).hexdigest()
        if i == 0 and isinstance(base_layer, str) and base_layer:
            parent = hashlib.sha384(base_layer.encode()).digest()[:32].hex()  # Windows images
        compat: dict[str, object] = {"id": v1_id}
        if parent:
            compat["parent"] = parent
        if entry.comment:
            compat["comment"] = entry.comment
        compat["created"] = entry.created
        compat["container_config"] = {"Cmd": [entry.created_by]}
        if entry.author:
            compat["author"] = entry.author
        if entry.empty_layer:
            compat["throwaway"] = True
        rows.append((blob, _go_json(compat)))
        parent = v1_id

    top = history[-1]
    top_blob = blob_sum(top)
    if next(pending, None) is not None:
        raise ManifestError(
            "image config's history accounts for fewer layers than the image has; "
            "a schema1 manifest would drop layers"
        )
    top_id = hashlib.sha256(
        f"{top_blob.hex} {parent} ".encode() + config_raw  # the config's exact bytes
    ).hexdigest()
    members = {k: _RawJSON(_compact(v)) for k, v in _top_level_members(text).items()}
    members.pop("rootfs", None)
    members.pop("history", None)
    members["id"] = _RawJSON(_go_string(top_id))
    if parent:
        members["parent"] = _RawJSON(_go_string(parent))
    if top.empty_layer:
        members["throwaway"] = _RawJSON("true")
    rows.append((top_blob, _go_json(dict(sorted(members.items())))))

    manifest = {
        "schemaVersion": 1,
        "name": name,
        "tag": tag,
        "architecture": architecture,
        "fsLayers": [{"blobSum": str(blob)} for blob, _ in reversed(rows)],
        "history": [{"v1Compatibility": compat} for _, compat in reversed(rows)],
    }
    payload = _go_json(manifest, indent=_INDENT).encode("utf-8")
    return _sign(payload, key, now or _dt.datetime.now(_dt.UTC))


def _sign(payload: bytes, key: Schema1Key, now: _dt.datetime) -> bytes:
    """libtrust's JSONSignature.Sign + PrettySignature("signatures") for one key."""
    close = len(payload.rstrip()) - 1
    if close < 0 or payload[close : close + 1] != b"}":
        raise ManifestError("schema1 payload does not end with '}'")
    format_length = len(payload[:close].rstrip())
    tail = payload[format_length:]
    stamp = now.astimezone(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    protected = _b64url(
        _go_json(
            {"formatLength": format_length, "formatTail": _b64url(tail), "time": stamp}
        ).encode()
    )
    signature = key.sign(f"{protected}.{_b64url(payload)}".encode("ascii"))
    signatures = [
        {
            "header": {"jwk": dict(key.jwk), "alg": "ES256"},
            "signature": _b64url(signature),
            "protected": protected,
        }
    ]
    block = _go_json(signatures, indent=_INDENT, prefix=_INDENT)
    return payload[:format_length] + f',\n{_INDENT}"signatures": {block}\n'.encode("ascii") + b"}"


# -- reading signed manifests ---------------------------------------------------------------


def schema1_canonical(raw: bytes) -> bytes:
    """The signed payload without its signatures: what the signatures cover and the digest names.

    Every signature's protected header must agree on where to cut, as libtrust insists.
    """
    try:
        document = json.loads(raw)
    except (UnicodeDecodeError, ValueError) as exc:
        raise ManifestError(f"schema1 manifest is not valid JSON: {exc}") from None
    signatures = document.get("signatures") if isinstance(document, dict) else None
    if not isinstance(signatures, list) or not signatures:
        raise ManifestError("schema1 manifest has no signatures")
    cut: tuple[int, bytes] | None = None
    for n, sig in enumerate(signatures):
        try:
            header = json.loads(_b64url_decode(sig["protected"]))
            length = header["formatLength"]
            tail = _b64url_decode(header["formatTail"])
        except (TypeError, KeyError, ValueError):
            raise ManifestError(
                f"schema1 manifest: signature {n} has no usable protected header"
            ) from None
        if not isinstance(length, int) or isinstance(length, bool) or not 0 < length <= len(raw):
            raise ManifestError(f"schema1 manifest: signature {n} has an invalid formatLength")
        if cut is not None and cut != (length, tail):
            raise ManifestError("schema1 manifest: signatures disagree on the signed payload")
        cut = (length, tail)
    assert cut is not None
    return raw[: cut[0]] + cut[1]


def schema1_digest(raw: bytes) -> Digest:
    """The digest a registry gives a signed schema1 manifest (of the canonical bytes)."""
    return Digest.from_bytes(schema1_canonical(raw))


def schema1_blob_sums(raw: bytes) -> tuple[Digest, ...]:
    """The distinct blobs a signed schema1 manifest references, bottom layer first.

    The registry refuses the manifest unless each exists in the repository; this includes
    :data:`EMPTY_GZIP_TAR_DIGEST` when the image has history entries without a layer.
    """
    canonical = schema1_canonical(raw)
    try:
        document = json.loads(canonical)
        sums = [Digest.parse(layer["blobSum"]) for layer in document["fsLayers"]]
    except (TypeError, KeyError, ValueError) as exc:
        raise ManifestError(f"schema1 manifest has no usable fsLayers: {exc}") from None
    return tuple(dict.fromkeys(reversed(sums)))
