"""WWW-Authenticate parsing: every shape registries send, and garbage that must not crash us."""

from __future__ import annotations

import string

from hypothesis import given
from hypothesis import strategies as st

from yardarm.registry.auth import Challenge, parse_challenges


def test_docker_hub_bearer_challenge() -> None:
    header = (
        'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",'
        'scope="repository:library/ubuntu:pull,push"'
    )
    [c] = parse_challenges(header)
    assert c.scheme == "bearer"
    assert c.realm == "https://auth.docker.io/token"
    assert c.service == "registry.docker.io"
    assert c.scopes == ("repository:library/ubuntu:pull,push",)


def test_several_challenges_in_one_header_and_several_headers() -> None:
    found = parse_challenges(
        ['Basic realm="basic realm", Bearer realm="https://a/t",service=reg', "Digest nonce=1"]
    )
    assert [c.scheme for c in found] == ["basic", "bearer", "digest"]
    assert found[0].realm == "basic realm"
    assert found[1].params == {"realm": "https://a/t", "service": "reg"}
    assert found[2].params == {"nonce": "1"}


def test_quoted_strings_with_escapes_and_commas() -> None:
    [c] = parse_challenges(r'Bearer realm="a \"quoted\", with \\ backslash",error="x"')
    assert c.realm == 'a "quoted", with \\ backslash'
    assert c.error == "x"


def test_names_are_case_insensitive_and_whitespace_is_tolerated() -> None:
    [c] = parse_challenges('  BEARER   Realm = "r" ,  SERVICE=s  ,, Scope="a b"')
    assert (c.scheme, c.realm, c.service, c.scopes) == ("bearer", "r", "s", ("a", "b"))


def test_token68_challenge_then_another_scheme() -> None:
    found = parse_challenges("Negotiate abc+/def==, Basic realm=x")
    assert found[0] == Challenge("negotiate", {}, "abc+/def==")
    assert found[1].scheme == "basic" and found[1].realm == "x"


def test_scheme_without_parameters() -> None:
    found = parse_challenges("Basic, Bearer realm=r")
    assert [(c.scheme, dict(c.params)) for c in found] == [
        ("basic", {}),
        ("bearer", {"realm": "r"}),
    ]


def test_insufficient_scope_error_is_visible() -> None:
    [c] = parse_challenges(
        'Bearer realm="http://t/token",service="s",scope="repository:a:pull",'
        'error="insufficient_scope"'
    )
    assert c.error == "insufficient_scope"


def test_unterminated_quote_takes_the_rest() -> None:
    [c] = parse_challenges('Bearer realm="http://t/token')
    assert c.realm == "http://t/token"


@given(st.text(max_size=200))
def test_garbage_never_raises(text: str) -> None:
    for c in parse_challenges(text):
        assert c.scheme == c.scheme.lower()


_TOKEN = st.text(alphabet=string.ascii_letters + string.digits + "-_.!#$%&'*+^`|~", min_size=1)
_VALUE = st.text(
    alphabet=st.characters(min_codepoint=32, max_codepoint=0x2FF, exclude_characters="\x7f"),
    max_size=40,
)


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


@given(
    st.lists(
        st.tuples(
            _TOKEN,
            st.dictionaries(_TOKEN.map(str.lower), _VALUE, min_size=1, max_size=4),
        ),
        min_size=1,
        max_size=4,
    ),
    st.sampled_from([", ", ",", " , "]),
)
def test_serialised_challenges_parse_back(
    challenges: list[tuple[str, dict[str, str]]], sep: str
) -> None:
    header = sep.join(
        scheme + " " + sep.join(f"{k}={_quote(v)}" for k, v in params.items())
        for scheme, params in challenges
    )
    parsed = parse_challenges(header)
    assert [(c.scheme, dict(c.params)) for c in parsed] == [
        (scheme.lower(), params) for scheme, params in challenges
    ]
