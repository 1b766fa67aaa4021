"""The reference grammar: distribution's own cases plus docker's normalisation rules."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from yardarm.errors import InvalidReference
from yardarm.reference import Reference, parse, parse_name

H64 = "f" * 64
D256 = "sha256:" + H64
D512 = "sha512:" + "a" * 128

# (input, domain, path, tag, digest, familiar)
VALID = [
    ("test_com", "docker.io", "library/test_com", None, None, "test_com"),
    ("test.com:tag", "docker.io", "library/test.com", "tag", None, "test.com:tag"),
    ("test.com:5000", "docker.io", "library/test.com", "5000", None, "test.com:5000"),
    ("test.com/repo:tag", "test.com", "repo", "tag", None, "test.com/repo:tag"),
    ("test:5000/repo", "test:5000", "repo", None, None, "test:5000/repo"),
    ("test:5000/repo:tag", "test:5000", "repo", "tag", None, "test:5000/repo:tag"),
    (f"test:5000/repo@{D256}", "test:5000", "repo", None, D256, f"test:5000/repo@{D256}"),
    (f"test:5000/repo:tag@{D256}", "test:5000", "repo", "tag", D256, None),
    (f"repo@{D256}", "docker.io", "library/repo", None, D256, f"repo@{D256}"),
    ("lowercase:Uppercase", "docker.io", "library/lowercase", "Uppercase", None, None),
    ("sub-dom1.foo.com/bar/baz/quux", "sub-dom1.foo.com", "bar/baz/quux", None, None, None),
    (
        "sub-dom1.foo.com/bar/baz/quux:some-long-tag",
        "sub-dom1.foo.com",
        "bar/baz/quux",
        "some-long-tag",
        None,
        None,
    ),
    (
        "b.gcr.io/test.example.com/my-app:test.example.com",
        "b.gcr.io",
        "test.example.com/my-app",
        "test.example.com",
        None,
        None,
    ),
    ("xn--n3h.com/myimage:xn--n3h.com", "xn--n3h.com", "myimage", "xn--n3h.com", None, None),
    (
        f"xn--7o8h.com/myimage:xn--7o8h.com@{D512}",
        "xn--7o8h.com",
        "myimage",
        "xn--7o8h.com",
        D512,
        None,
    ),
    ("foo_bar.com:8080", "docker.io", "library/foo_bar.com", "8080", None, "foo_bar.com:8080"),
    ("foo/foo_bar.com:8080", "docker.io", "foo/foo_bar.com", "8080", None, "foo/foo_bar.com:8080"),
    ("192.168.1.1", "docker.io", "library/192.168.1.1", None, None, "192.168.1.1"),
    ("192.168.1.1:tag", "docker.io", "library/192.168.1.1", "tag", None, None),
    ("192.168.1.1:5000", "docker.io", "library/192.168.1.1", "5000", None, None),
    ("192.168.1.1/repo", "192.168.1.1", "repo", None, None, "192.168.1.1/repo"),
    ("192.168.1.1:5000/repo", "192.168.1.1:5000", "repo", None, None, None),
    ("192.168.1.1:5000/repo:5050", "192.168.1.1:5000", "repo", "5050", None, None),
    ("[2001:db8::1]/repo", "[2001:db8::1]", "repo", None, None, None),
    ("[2001:db8::1]:5000/repo", "[2001:db8::1]:5000", "repo", None, None, None),
    ("[2001:db8::1]:5000/repo:tag", "[2001:db8::1]:5000", "repo", "tag", None, None),
    (f"[2001:db8::1]:5000/repo@{D256}", "[2001:db8::1]:5000", "repo", None, D256, None),
    (f"[2001:db8::1]:5000/repo:tag@{D256}", "[2001:db8::1]:5000", "repo", "tag", D256, None),
    ("[2001:db8::]:5000/repo", "[2001:db8::]:5000", "repo", None, None, None),
    ("[::1]:5000/repo", "[::1]:5000", "repo", None, None, None),
    ("[2001:db8:1:2:3:4:5:6]/repo:tag", "[2001:db8:1:2:3:4:5:6]", "repo", "tag", None, None),
    ("localhost/repo", "localhost", "repo", None, None, "localhost/repo"),
    ("localhost:5000/repo:v1", "localhost:5000", "repo", "v1", None, "localhost:5000/repo:v1"),
    ("localhost", "docker.io", "library/localhost", None, None, "localhost"),
    ("localhost:5000", "docker.io", "library/localhost", "5000", None, "localhost:5000"),
    ("127.0.0.1:5000/a/b/c", "127.0.0.1:5000", "a/b/c", None, None, None),
    ("docker.io/nginx", "docker.io", "library/nginx", None, None, "nginx"),
    ("docker.io/library/nginx:1.25", "docker.io", "library/nginx", "1.25", None, "nginx:1.25"),
    ("index.docker.io/library/nginx", "docker.io", "library/nginx", None, None, "nginx"),
    ("index.docker.io/nginx", "docker.io", "library/nginx", None, None, "nginx"),
    ("library/foo/bar", "docker.io", "library/foo/bar", None, None, "library/foo/bar"),
    ("docker.io/foo/bar", "docker.io", "foo/bar", None, None, "foo/bar"),
    ("foo/bar", "docker.io", "foo/bar", None, None, "foo/bar"),
    ("foo/bar:latest", "docker.io", "foo/bar", "latest", None, "foo/bar:latest"),
    ("ubuntu:22.04", "docker.io", "library/ubuntu", "22.04", None, "ubuntu:22.04"),
    ("Foo/bar", "Foo", "bar", None, None, "Foo/bar"),
    ("a-b/c_d/e.f/g__h/i--j/k---l", "docker.io", "a-b/c_d/e.f/g__h/i--j/k---l", None, None, None),
    ("a:" + "x" * 128, "docker.io", "library/a", "x" * 128, None, None),
    ("a:_tag", "docker.io", "library/a", "_tag", None, None),
    ("a:T.A-G_1", "docker.io", "library/a", "T.A-G_1", None, None),
    (
        "registry.example.com:443/team/app:1.0.0-rc.1",
        "registry.example.com:443",
        "team/app",
        "1.0.0-rc.1",
        None,
        None,
    ),
    ("gcr.io/distroless/static", "gcr.io", "distroless/static", None, None, None),
    ("0/repo", "docker.io", "0/repo", None, None, "0/repo"),
    ("a" * 64 + "a", "docker.io", "library/" + "a" * 65, None, None, None),
    ("f" * 63, "docker.io", "library/" + "f" * 63, None, None, None),
    ("localhost:5000/" + "a/" * 119 + "a", "localhost:5000", "a/" * 119 + "a", None, None, None),
]

# (input, fragment the message must contain)
INVALID = [
    ("", "empty"),
    (":justtag", "empty repository name"),
    (f"@{D256}", "empty repository name"),
    ("validname@invaliddigest:" + "f" * 64, "unsupported digest algorithm"),
    ("validname@sha256:" + "f" * 63, "invalid sha256 digest"),
    ("validname@sha256:" + "F" * 64, "lowercase hex"),
    ("validname@sha256:", "invalid digest format"),
    ("validname@", "empty digest"),
    ("validname@md5:" + "a" * 32, "unsupported digest algorithm"),
    ("Uppercase:tag", "must be lowercase"),
    ("test:5000/Uppercase/lowercase:tag", "must be lowercase"),
    ("docker.io/Library/foo", "must be lowercase"),
    ("a/" * 128 + "a:tag", "not be more than 255"),
    ("localhost:5000/" + "a/" * 120 + "a", "not be more than 255"),
    ("aa/asdf$$^/aa", "invalid repository name component"),
    ("a" * 64, "cannot specify 64-byte hexadecimal strings"),
    ("f" * 64, "cannot specify 64-byte hexadecimal strings"),
    ("[2001:db8::1]", "invalid tag format"),
    ("[2001:db8::1]:5000", "invalid"),
    ("[2001:db8::1]:tag", "invalid"),
    ("[fe80::1%eth0]:5000/repo", "invalid registry host"),
    ("2001:db8::1/repo", "invalid registry host"),
    ("-foo.com/bar", "invalid registry host"),
    ("foo-.com/bar", "invalid registry host"),
    ("foo.com:port/bar", "invalid registry host"),
    ("a//b", "empty path component"),
    ("a/", "empty path component"),
    ("/a", "empty"),
    ("a..b", "invalid repository name component"),
    ("a___b", "invalid repository name component"),
    ("-a", "invalid repository name component"),
    ("a-", "invalid repository name component"),
    ("a_", "invalid repository name component"),
    ("a.", "invalid repository name component"),
    ("a:", "empty tag"),
    ("a:.tag", "invalid tag format"),
    ("a:-tag", "invalid tag format"),
    ("a:" + "x" * 129, "invalid tag format"),
    ("a:t@g", "invalid digest format"),
    ("a:tag:tag2", "invalid"),
    (f"repo@{D256}:tag", "tag must come before the digest"),
    (f"repo@{D256}@{D256}", "more than one '@'"),
    ("re po", "whitespace"),
    (" repo", "whitespace"),
    ("repo\n", "whitespace"),
    ("repo:ta\tg", "whitespace"),
    ("ubuntu:22.04:", "invalid"),
    ("foo/bar baz", "whitespace"),
    ("a/b/c:tag/d", "invalid"),
    ("ünïcode", "invalid repository name component"),
]


@pytest.mark.parametrize(("text", "domain", "path", "tag", "digest", "familiar"), VALID)
def test_valid_references_parse_and_normalise(
    text: str, domain: str, path: str, tag: str | None, digest: str | None, familiar: str | None
) -> None:
    ref = parse(text)
    assert (ref.domain, ref.path, ref.tag, ref.digest) == (domain, path, tag, digest)
    assert parse(str(ref)) == ref
    if familiar is not None:
        assert ref.familiar() == familiar
    assert parse(ref.familiar()) == ref


@pytest.mark.parametrize(("text", "fragment"), INVALID)
def test_invalid_references_say_what_is_wrong(text: str, fragment: str) -> None:
    with pytest.raises(InvalidReference) as info:
        parse(text)
    message = str(info.value)
    assert fragment in message
    assert "\n" not in message
    assert isinstance(info.value, ValueError)


def test_table_is_large_enough() -> None:
    assert len(VALID) + len(INVALID) >= 80


def test_canonical_and_familiar_forms() -> None:
    ref = parse("ubuntu:22.04")
    assert str(ref) == "docker.io/library/ubuntu:22.04"
    assert ref.familiar() == "ubuntu:22.04"
    assert ref.name == "docker.io/library/ubuntu"
    assert ref.familiar_name() == "ubuntu"


def test_reference_is_frozen() -> None:
    ref = parse("a")
    with pytest.raises(AttributeError):
        ref.tag = "x"  # type: ignore[misc]


def test_parse_name_refuses_tags_and_digests() -> None:
    assert parse_name("localhost:5000/a") == Reference("localhost:5000", "a")
    with pytest.raises(InvalidReference):
        parse_name("a:tag")
    with pytest.raises(InvalidReference):
        parse_name(f"a@{D256}")


def test_with_tag_and_digest() -> None:
    ref = parse("localhost:5000/a:1")
    assert str(ref.with_tag("2")) == "localhost:5000/a:2"
    assert str(ref.with_digest(D256)) == f"localhost:5000/a@{D256}"
    assert ref.name_only() == Reference("localhost:5000", "a")
    with pytest.raises(InvalidReference):
        ref.with_tag("-bad")


# Property tests: any reference we can build from the grammar's parts round-trips.
_alnum = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789", min_size=1, max_size=8)
_sep = st.sampled_from([".", "_", "__", "-", "--"])


@st.composite
def _components(draw: st.DrawFn) -> str:
    parts = [draw(_alnum)]
    for _ in range(draw(st.integers(0, 2))):
        parts += [draw(_sep), draw(_alnum)]
    return "".join(parts)


_label = st.from_regex(r"\A[a-z0-9]([a-z0-9-]{0,6}[a-z0-9])?\Z")
_domains = st.one_of(
    st.just("docker.io"),
    st.just("localhost"),
    st.builds(lambda a, b: f"{a}.{b}", _label, _label),
    st.builds(lambda a, p: f"{a}:{p}", _label, st.integers(1, 65535)),
    st.just("[::1]:5000"),
)
_tags = st.from_regex(r"\A[A-Za-z0-9_][A-Za-z0-9_.-]{0,20}\Z")
_digests = st.builds(
    lambda h: f"sha256:{h}", st.text(alphabet="0123456789abcdef", min_size=64, max_size=64)
)


@given(
    _domains,
    st.lists(_components(), min_size=1, max_size=4),
    st.none() | _tags,
    st.none() | _digests,
)
def test_str_round_trips(
    domain: str, components: list[str], tag: str | None, digest: str | None
) -> None:
    text = domain + "/" + "/".join(components)
    if tag:
        text += ":" + tag
    if digest:
        text += "@" + digest
    ref = parse(text)
    assert parse(str(ref)) == ref
    assert parse(ref.familiar()) == ref
    assert ref.tag == tag
    assert ref.digest == digest


@given(st.text(max_size=300))
def test_parser_never_raises_anything_but_invalid_reference(text: str) -> None:
    try:
        ref = parse(text)
    except InvalidReference as exc:
        assert "\n" not in str(exc)
    else:
        assert parse(str(ref)) == ref
