"""Credentials are read and written where and how docker keeps them, and never leak."""

from __future__ import annotations

import base64
import json
import os
import stat
from pathlib import Path

import pytest

from yardarm.errors import CredentialError
from yardarm.registry.credentials import (
    DOCKER_HUB_KEY,
    Credentials,
    config_key,
    docker_config_dir,
    erase_credentials,
    lookup_credentials,
    store_credentials,
)

HELPERS = Path(__file__).resolve().parents[1] / "helpers"
SECRET = "s3cr3t-Pa55w0rd-xyzzy"


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def write_config(folder: Path, data: object) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "config.json"
    path.write_text(json.dumps(data))
    return path


@pytest.fixture
def helper_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The test credential helper on PATH, keeping its secrets in a JSON file."""
    store = tmp_path / "helper-store.json"
    monkeypatch.setenv("PATH", f"{HELPERS}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("YARDARM_TEST_CREDS", str(store))
    monkeypatch.delenv("YARDARM_TEST_CREDS_FAIL", raising=False)
    return store


def helper_log(store: Path) -> list[str]:
    log = Path(str(store) + ".log")
    return log.read_text().splitlines() if log.exists() else []


# -- keys and folders ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("server", "key"),
    [
        ("docker.io", DOCKER_HUB_KEY),
        ("index.docker.io", DOCKER_HUB_KEY),
        ("registry-1.docker.io", DOCKER_HUB_KEY),
        ("https://index.docker.io/v1/", DOCKER_HUB_KEY),
        ("localhost:5000", "localhost:5000"),
        ("https://LocalHost:5000", "localhost:5000"),
        ("http://registry.example.com/v1/", "registry.example.com"),
        ("127.0.0.1:41234/some/path", "127.0.0.1:41234"),
    ],
)
def test_config_key_normalises_urls_and_docker_hub_aliases(server: str, key: str) -> None:
    assert config_key(server) == key


def test_docker_config_env_overrides_home_folder(tmp_path: Path) -> None:
    assert docker_config_dir({"DOCKER_CONFIG": str(tmp_path)}) == tmp_path
    assert docker_config_dir({"HOME": str(tmp_path)}) == tmp_path / ".docker"


# -- the Credentials value ----------------------------------------------------------------------


def test_repr_and_str_hide_every_secret() -> None:
    creds = Credentials(
        username="alice",
        password=SECRET,
        identity_token=SECRET + "-id",
        registry_token=SECRET + "-reg",
    )
    for text in (repr(creds), str(creds), f"{creds}", repr([creds]), repr({"c": creds})):
        assert SECRET not in text
        assert "alice" in text
    only_auth = Credentials(auth=b64(f"bob:{SECRET}"))
    assert SECRET not in repr(only_auth)
    assert b64(f"bob:{SECRET}") not in repr(only_auth)


def test_auth_alone_fills_username_and_password() -> None:
    creds = Credentials(auth=b64("bob:pa:ss"))
    assert (creds.username, creds.password) == ("bob", "pa:ss")


def test_hmac_fields_omit_empty_values_and_use_docker_names() -> None:
    assert Credentials().hmac_fields() == {}
    assert Credentials().anonymous
    creds = Credentials(username="u", password="p", identity_token="i")
    assert creds.hmac_fields() == {"username": "u", "password": "p", "identitytoken": "i"}
    assert not creds.anonymous
    assert Credentials(registry_token="r").hmac_fields() == {"registrytoken": "r"}


# -- reading config.json ------------------------------------------------------------------------


def test_missing_config_means_anonymous(tmp_path: Path) -> None:
    assert lookup_credentials("localhost:5000", tmp_path / "nowhere").anonymous


def test_auths_entry_with_base64_auth(tmp_path: Path) -> None:
    write_config(tmp_path, {"auths": {"localhost:5000": {"auth": b64(f"alice:{SECRET}")}}})
    creds = lookup_credentials("localhost:5000", tmp_path)
    assert (creds.username, creds.password) == ("alice", SECRET)


@pytest.mark.parametrize(
    "key", ["https://localhost:5000", "http://localhost:5000/v1/", "https://LOCALHOST:5000/v2/"]
)
def test_auths_keys_written_as_urls_are_found(tmp_path: Path, key: str) -> None:
    write_config(tmp_path, {"auths": {key: {"auth": b64("alice:pw")}}})
    assert lookup_credentials("localhost:5000", tmp_path).username == "alice"


def test_exact_key_wins_over_url_spelling(tmp_path: Path) -> None:
    write_config(
        tmp_path,
        {
            "auths": {
                "https://localhost:5000": {"auth": b64("old:pw")},
                "localhost:5000": {"auth": b64("new:pw")},
            }
        },
    )
    assert lookup_credentials("localhost:5000", tmp_path).username == "new"


def test_docker_hub_credentials_found_under_historic_key(tmp_path: Path) -> None:
    write_config(tmp_path, {"auths": {DOCKER_HUB_KEY: {"auth": b64("hubuser:pw")}}})
    for server in ("docker.io", "index.docker.io", "registry-1.docker.io"):
        assert lookup_credentials(server, tmp_path).username == "hubuser"


def test_identity_and_registry_tokens_and_plain_fields(tmp_path: Path) -> None:
    write_config(
        tmp_path,
        {
            "auths": {
                "a.example": {"identitytoken": "refresh-1"},
                "b.example": {"registrytoken": "bearer-2"},
                "c.example": {"username": "carol", "password": "pw3"},
            }
        },
    )
    assert lookup_credentials("a.example", tmp_path).identity_token == "refresh-1"
    assert lookup_credentials("b.example", tmp_path).registry_token == "bearer-2"
    c = lookup_credentials("c.example", tmp_path)
    assert (c.username, c.password) == ("carol", "pw3")


def test_other_servers_credentials_are_not_used(tmp_path: Path) -> None:
    write_config(tmp_path, {"auths": {"localhost:5001": {"auth": b64("alice:pw")}}})
    assert lookup_credentials("localhost:5000", tmp_path).anonymous


def test_empty_config_file_is_accepted_like_docker(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text("  \n")
    assert lookup_credentials("localhost:5000", tmp_path).anonymous


@pytest.mark.parametrize(
    "text",
    [
        '{"auths": {"localhost:5000": {"auth": "' + SECRET,  # truncated JSON
        "[1, 2]",
        '{"auths": []}',
        '{"credHelpers": "x"}',
        '{"credsStore": 5}',
        '{"auths": {"localhost:5000": "' + SECRET + '"}}',
        '{"auths": {"localhost:5000": {"auth": 7}}}',
        '{"auths": {"localhost:5000": {"auth": "' + SECRET + '!!"}}}',  # not base64
        '{"auths": {"localhost:5000": {"auth": "' + b64(SECRET) + '"}}}',  # no colon
        '{"credsStore": "../../bin/sh"}',
    ],
)
def test_malformed_config_is_one_line_error_naming_the_file(tmp_path: Path, text: str) -> None:
    (tmp_path / "config.json").write_text(text)
    with pytest.raises(CredentialError) as info:
        lookup_credentials("localhost:5000", tmp_path)
    message = str(info.value)
    assert str(tmp_path / "config.json") in message
    assert "\n" not in message
    assert SECRET not in message
    assert b64(SECRET) not in message


# -- writing config.json ------------------------------------------------------------------------


def test_store_writes_docker_compatible_file_with_mode_0600(tmp_path: Path) -> None:
    folder = tmp_path / "fresh"
    store_credentials("localhost:5000", Credentials("alice", SECRET), folder)
    path = folder / "config.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    data = json.loads(path.read_text())
    assert data == {"auths": {"localhost:5000": {"auth": b64(f"alice:{SECRET}")}}}
    assert lookup_credentials("localhost:5000", folder) == Credentials("alice", SECRET)
    assert [p.name for p in folder.iterdir()] == ["config.json"]  # no temp file left behind


def test_store_preserves_unknown_keys_and_other_servers(tmp_path: Path) -> None:
    write_config(
        tmp_path,
        {
            "auths": {"other:1": {"auth": b64("x:y"), "email": "x@example.com"}},
            "proxies": {"default": {"httpProxy": "http://proxy:3128"}},
            "psFormat": "table {{.ID}}",
        },
    )
    (tmp_path / "config.json").chmod(0o644)
    store_credentials("localhost:5000", Credentials("alice", "pw"), tmp_path)
    data = json.loads((tmp_path / "config.json").read_text())
    assert data["proxies"] == {"default": {"httpProxy": "http://proxy:3128"}}
    assert data["psFormat"] == "table {{.ID}}"
    assert data["auths"]["other:1"] == {"auth": b64("x:y"), "email": "x@example.com"}
    assert stat.S_IMODE((tmp_path / "config.json").stat().st_mode) == 0o600


def test_store_replaces_url_spelled_duplicates(tmp_path: Path) -> None:
    write_config(tmp_path, {"auths": {"https://localhost:5000": {"auth": b64("old:pw")}}})
    store_credentials("localhost:5000", Credentials("new", "pw"), tmp_path)
    data = json.loads((tmp_path / "config.json").read_text())
    assert list(data["auths"]) == ["localhost:5000"]


def test_store_identity_token(tmp_path: Path) -> None:
    store_credentials("a.example", Credentials(identity_token="refresh"), tmp_path)
    data = json.loads((tmp_path / "config.json").read_text())
    assert data["auths"]["a.example"] == {"identitytoken": "refresh"}
    assert lookup_credentials("a.example", tmp_path).identity_token == "refresh"


def test_store_keeps_a_symlinked_config_a_symlink(tmp_path: Path) -> None:
    real = write_config(tmp_path / "real", {"auths": {}})
    (tmp_path / "cfg").mkdir()
    (tmp_path / "cfg" / "config.json").symlink_to(real)
    store_credentials("localhost:5000", Credentials("alice", "pw"), tmp_path / "cfg")
    assert (tmp_path / "cfg" / "config.json").is_symlink()
    assert "localhost:5000" in json.loads(real.read_text())["auths"]


def test_store_into_malformed_config_refuses_and_leaves_it_alone(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text("{broken")
    with pytest.raises(CredentialError):
        store_credentials("localhost:5000", Credentials("alice", "pw"), tmp_path)
    assert path.read_text() == "{broken"


def test_erase_removes_every_spelling_and_reports_it(tmp_path: Path) -> None:
    write_config(
        tmp_path,
        {
            "auths": {
                "localhost:5000": {"auth": b64("a:b")},
                "https://localhost:5000/v1/": {"auth": b64("c:d")},
                "keep:1": {"auth": b64("e:f")},
            },
            "other": 1,
        },
    )
    assert erase_credentials("localhost:5000", tmp_path) is True
    data = json.loads((tmp_path / "config.json").read_text())
    assert data == {"auths": {"keep:1": {"auth": b64("e:f")}}, "other": 1}
    assert erase_credentials("localhost:5000", tmp_path) is False
    assert erase_credentials("localhost:5000", tmp_path / "none") is False


# -- credential helpers -------------------------------------------------------------------------


def test_creds_store_helper_round_trip(tmp_path: Path, helper_store: Path) -> None:
    write_config(tmp_path, {"credsStore": "yardarmtest", "auths": {}})
    assert lookup_credentials("localhost:5000", tmp_path).anonymous
    store_credentials("localhost:5000", Credentials("alice", SECRET), tmp_path)
    stored = json.loads(helper_store.read_text())
    assert stored["localhost:5000"] == {
        "ServerURL": "localhost:5000",
        "Username": "alice",
        "Secret": SECRET,
    }
    config_text = (tmp_path / "config.json").read_text()
    assert SECRET not in config_text  # the helper holds the secret, not the file
    assert json.loads(config_text)["auths"] == {"localhost:5000": {}}
    assert lookup_credentials("localhost:5000", tmp_path) == Credentials("alice", SECRET)
    assert erase_credentials("localhost:5000", tmp_path) is True
    assert lookup_credentials("localhost:5000", tmp_path).anonymous
    assert erase_credentials("localhost:5000", tmp_path) is False
    assert helper_log(helper_store) == [
        "get localhost:5000",
        "store localhost:5000",
        "get localhost:5000",
        "erase localhost:5000",
        "get localhost:5000",
        "erase localhost:5000",
    ]


def test_cred_helpers_entry_wins_over_creds_store_and_auths(
    tmp_path: Path, helper_store: Path
) -> None:
    helper_store.write_text(
        json.dumps({"localhost:5000": {"Username": "fromhelper", "Secret": "pw"}})
    )
    write_config(
        tmp_path,
        {
            "credsStore": "missing-helper",
            "credHelpers": {"localhost:5000": "yardarmtest"},
            "auths": {"localhost:5000": {"auth": b64("fromfile:pw")}},
        },
    )
    assert lookup_credentials("https://localhost:5000", tmp_path).username == "fromhelper"


def test_helper_token_username_means_identity_token(tmp_path: Path, helper_store: Path) -> None:
    write_config(tmp_path, {"credsStore": "yardarmtest"})
    store_credentials("a.example", Credentials(identity_token="refresh-xyz"), tmp_path)
    assert json.loads(helper_store.read_text())["a.example"]["Username"] == "<token>"
    assert lookup_credentials("a.example", tmp_path) == Credentials(identity_token="refresh-xyz")


def test_missing_helper_is_a_clear_error(tmp_path: Path) -> None:
    write_config(tmp_path, {"credsStore": "does-not-exist-anywhere"})
    with pytest.raises(CredentialError, match="docker-credential-does-not-exist-anywhere"):
        lookup_credentials("localhost:5000", tmp_path)


@pytest.mark.parametrize("action", ["store", "get", "erase"])
def test_helper_failure_is_one_line_without_the_secret(
    tmp_path: Path, helper_store: Path, monkeypatch: pytest.MonkeyPatch, action: str
) -> None:
    write_config(tmp_path, {"credsStore": "yardarmtest"})
    helper_store.write_text(json.dumps({"localhost:5000": {"Username": "alice", "Secret": SECRET}}))
    monkeypatch.setenv("YARDARM_TEST_CREDS_FAIL", action)
    with pytest.raises(CredentialError) as info:
        if action == "store":
            store_credentials("localhost:5000", Credentials("alice", SECRET), tmp_path)
        elif action == "get":
            lookup_credentials("localhost:5000", tmp_path)
        else:
            erase_credentials("localhost:5000", tmp_path)
    message = str(info.value)
    assert "docker-credential-yardarmtest" in message
    assert "helper exploded" in message  # the helper's own words are kept...
    assert SECRET not in message  # ...but never the secret
    assert "\n" not in message


def test_helper_garbage_answer_is_not_echoed(
    tmp_path: Path, helper_store: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_config(tmp_path, {"credsStore": "yardarmtest"})
    helper_store.write_text(json.dumps({"localhost:5000": {"Username": "alice", "Secret": SECRET}}))
    monkeypatch.setenv("YARDARM_TEST_CREDS_FAIL", "garbage")
    with pytest.raises(CredentialError, match="malformed answer") as info:
        lookup_credentials("localhost:5000", tmp_path)
    assert SECRET not in str(info.value)


def test_unwritable_config_folder_is_a_one_line_error_naming_the_file(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    with pytest.raises(CredentialError) as info:
        store_credentials("localhost:5000", Credentials("alice", SECRET), blocker / "sub")
    assert str(blocker / "sub" / "config.json") in str(info.value)
    assert SECRET not in str(info.value)
