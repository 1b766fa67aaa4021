"""The distribution reference grammar, with docker's normalisation.

``parse("ubuntu")`` gives ``docker.io/library/ubuntu``; ``parse("localhost:5000/a/b:1@sha256:…")``
keeps every part. The grammar follows distribution's ``reference`` package::

    reference       := name [ ":" tag ] [ "@" digest ]
    name            := [domain "/"] path-component ["/" path-component]*
    domain          := host [":" port]            host: DNS labels joined by "." or "[IPv6]"
    path-component  := [a-z0-9]+ ((\\.|_|__|-+) [a-z0-9]+)*
    tag             := [\\w][\\w.-]{0,127}
    digest          := algorithm ":" hex

The first component is a domain only when it holds a ``.`` or ``:``, is ``localhost``, is an
IPv6 literal, or has uppercase letters (as docker decides); otherwise the name is on docker.io.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from yardarm.digest import Digest
from yardarm.errors import InvalidDigest, InvalidReference

__all__ = ["DEFAULT_DOMAIN", "Reference", "parse", "parse_name"]

DEFAULT_DOMAIN: Final = "docker.io"
LEGACY_DOMAIN: Final = "index.docker.io"
OFFICIAL_PREFIX: Final = "library/"
NAME_TOTAL_LENGTH_MAX: Final = 255

_PATH_COMPONENT: Final = r"[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*"
_DOMAIN_LABEL: Final = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_HOST: Final = rf"(?:{_DOMAIN_LABEL}(?:\.{_DOMAIN_LABEL})*|\[[a-fA-F0-9:]+\])"
_DOMAIN_RE: Final = re.compile(rf"^{_HOST}(?::[0-9]+)?$")
_PATH_RE: Final = re.compile(rf"^{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*$")
_COMPONENT_RE: Final = re.compile(rf"^{_PATH_COMPONENT}$")
_TAG_RE: Final = re.compile(r"^[\w][\w.-]{0,127}$", re.ASCII)
_IMAGE_ID_RE: Final = re.compile(r"^[a-f0-9]{64}$")
_DIGEST_SHAPE_RE: Final = re.compile(
    r"^[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}$"
)


@dataclass(frozen=True, slots=True)
class Reference:
    """A parsed, normalised reference; ``str()`` gives the canonical form and round-trips."""

    domain: str
    path: str
    tag: str | None = None
    digest: str | None = None

    @property
    def name(self) -> str:
        """``domain/path``: the repository's full name."""
        return f"{self.domain}/{self.path}"

    @property
    def digest_value(self) -> Digest | None:
        return Digest.parse(self.digest) if self.digest else None

    def with_tag(self, tag: str) -> Reference:
        if not _TAG_RE.match(tag):
            raise InvalidReference(f"invalid tag format: {tag!r}")
        return Reference(self.domain, self.path, tag, None)

    def with_digest(self, digest: Digest | str) -> Reference:
        return Reference(self.domain, self.path, None, str(Digest.parse(str(digest))))

    def name_only(self) -> Reference:
        return Reference(self.domain, self.path)

    def familiar_name(self) -> str:
        """docker's short form of the name: ``ubuntu`` for ``docker.io/library/ubuntu``."""
        if self.domain != DEFAULT_DOMAIN:
            return self.name
        path = self.path
        if path.startswith(OFFICIAL_PREFIX) and "/" not in path[len(OFFICIAL_PREFIX) :]:
            return path[len(OFFICIAL_PREFIX) :]
        if _split_domain(path)[0] != DEFAULT_DOMAIN:
            # "docker.io/0.0/x" shortened to "0.0/x" would name host 0.0: keep the domain.
            return self.name
        return path

    def familiar(self) -> str:
        return self.familiar_name() + self._suffix()

    def _suffix(self) -> str:
        out = ""
        if self.tag is not None:
            out += ":" + self.tag
        if self.digest is not None:
            out += "@" + self.digest
        return out

    def __str__(self) -> str:
        return self.name + self._suffix()


def _split_domain(name: str) -> tuple[str, str]:
    """docker's splitDockerDomain: decide whether the first component is a registry host."""
    i = name.find("/")
    first = name[:i] if i >= 0 else ""
    if i < 0 or (
        "." not in first
        and ":" not in first
        and first != "localhost"
        and not first.startswith("[")
        and first.lower() == first
    ):
        domain, rest = DEFAULT_DOMAIN, name
    else:
        domain, rest = first, name[i + 1 :]
    if domain == LEGACY_DOMAIN:
        domain = DEFAULT_DOMAIN
    if domain == DEFAULT_DOMAIN and "/" not in rest:
        rest = OFFICIAL_PREFIX + rest
    return domain, rest


def _check_path(path: str, original: str) -> None:
    if not path:
        raise InvalidReference(f"repository name must have at least one component: {original!r}")
    if path.lower() != path:
        raise InvalidReference(f"repository name must be lowercase: {original!r}")
    for component in path.split("/"):
        if not component:
            raise InvalidReference(f"repository name has an empty path component: {original!r}")
        if not _COMPONENT_RE.match(component):
            raise InvalidReference(
                f"invalid repository name component {component!r} in {original!r}: use lowercase "
                "letters, digits and single separators (., _, __, -)"
            )


def _split_name_tag(text: str) -> tuple[str, str | None]:
    """Split ``name[:tag]``: a ':' after the last '/' starts the tag (the host keeps its port)."""
    slash = text.rfind("/")
    colon = text.rfind(":")
    if colon > slash:
        return text[:colon], text[colon + 1 :]
    return text, None


def parse(text: str) -> Reference:
    """Parse and normalise a reference, raising :class:`InvalidReference` with the reason."""
    if not isinstance(text, str):
        raise InvalidReference("reference must be a string")
    if not text:
        raise InvalidReference("invalid reference format: empty reference")
    if text != text.strip() or any(c.isspace() for c in text):
        raise InvalidReference(f"invalid reference format: whitespace in {text!r}")
    if len(text) > 4096:
        raise InvalidReference("invalid reference format: reference is too long")
    if _IMAGE_ID_RE.match(text):
        raise InvalidReference(
            f"invalid repository name ({text}), cannot specify 64-byte hexadecimal strings"
        )

    remainder, _, digest_text = text.partition("@")
    digest: str | None = None
    if "@" in text:
        if "@" in digest_text:
            raise InvalidReference(f"invalid reference format: more than one '@' in {text!r}")
        digest = _parse_digest(digest_text, text)

    name, tag = _split_name_tag(remainder)
    if tag is not None and not _TAG_RE.match(tag):
        if digest is None and _looks_like_digest_then_tag(remainder):
            raise InvalidReference(
                f"invalid reference format: the tag must come before the digest in {text!r}"
            )
        if not tag:
            raise InvalidReference(f"invalid reference format: empty tag in {text!r}")
        raise InvalidReference(
            f"invalid tag format {tag!r}: up to 128 letters, digits, '_', '.' and '-', "
            "not starting with '.' or '-'"
        )
    return _build(name, tag, digest, text)


def _looks_like_digest_then_tag(remainder: str) -> bool:
    return bool(re.search(r":[A-Za-z0-9]+:[0-9a-fA-F]{32,}$", remainder))


def _parse_digest(digest_text: str, original: str) -> str:
    if not digest_text:
        raise InvalidReference(f"invalid reference format: empty digest in {original!r}")
    if ":" in digest_text and not _DIGEST_SHAPE_RE.match(digest_text):
        tail = digest_text.rsplit(":", 1)[-1]
        if _DIGEST_SHAPE_RE.match(digest_text.rsplit(":", 1)[0]) and _TAG_RE.match(tail):
            raise InvalidReference(
                f"invalid reference format: the tag must come before the digest in {original!r}"
            )
    if not _DIGEST_SHAPE_RE.match(digest_text):
        raise InvalidReference(f"invalid digest format in {original!r}")
    try:
        return str(Digest.parse(digest_text))
    except InvalidDigest as exc:
        raise InvalidReference(f"{exc} in {original!r}") from None


def _build(name: str, tag: str | None, digest: str | None, original: str) -> Reference:
    if not name:
        raise InvalidReference(f"invalid reference format: empty repository name in {original!r}")
    domain, path = _split_domain(name)
    explicit = domain != DEFAULT_DOMAIN or name.startswith(
        (DEFAULT_DOMAIN + "/", LEGACY_DOMAIN + "/")
    )
    if explicit and not _DOMAIN_RE.match(domain):
        raise InvalidReference(f"invalid registry host {domain!r} in {original!r}")
    _check_path(path, original)
    full = f"{domain}/{path}"
    if len(full) > NAME_TOTAL_LENGTH_MAX:
        raise InvalidReference(
            f"repository name must not be more than {NAME_TOTAL_LENGTH_MAX} characters: "
            f"{full[:40]}... has {len(full)}"
        )
    return Reference(domain, path, tag, digest)


def parse_name(text: str) -> Reference:
    """Parse a reference that must be a bare repository name (no tag, no digest)."""
    ref = parse(text)
    if ref.tag is not None or ref.digest is not None:
        raise InvalidReference(f"expected a repository name without tag or digest: {text!r}")
    return ref
