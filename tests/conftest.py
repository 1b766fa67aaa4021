"""Fixtures for the real registry (`docker-registry`), one lazily started per auth mode.

A test that asks for a registry that cannot start errors: nothing here ever skips. A failing
test's report carries what the registries logged while it ran.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from support import registry as support_registry
from support.registry import RegistryPool, RunningRegistry

pytest_plugins = ["pytester"]  # the fixtures' own tests run inner pytest sessions

_POOL = pytest.StashKey[RegistryPool]()
_SESSION_REGS = pytest.StashKey[list[RunningRegistry]]()
_MARKS = pytest.StashKey[dict[int, int]]()
_REPO_COUNTER = pytest.StashKey["itertools.count[int]"]()
_LOG_SECTION_LIMIT = 64 * 1024


def _pool(config: pytest.Config) -> RegistryPool:
    return config.stash.setdefault(_POOL, RegistryPool())


def _launch(config: pytest.Config, base: Path, mode: str) -> RunningRegistry:
    pool = _pool(config)
    token_server = None
    if mode == "token":
        from support.tokenserver import TokenServer

        token_server = pool.add_token_server(TokenServer.start(base / "token"))
    return pool.add(
        support_registry.start_registry(mode, base / "registry", token_server=token_server)
    )


def _session_registry(
    request: pytest.FixtureRequest, factory: pytest.TempPathFactory, mode: str
) -> Iterator[RunningRegistry]:
    reg = _launch(request.config, factory.mktemp(f"registry-{mode}"), mode)
    request.config.stash.setdefault(_SESSION_REGS, []).append(reg)
    yield reg
    reg.stop()
    if reg.token_server is not None:
        reg.token_server.stop()


@pytest.fixture(scope="session")
def registry_plain(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningRegistry]:
    """Plain HTTP, no auth."""
    yield from _session_registry(request, tmp_path_factory, "plain")


@pytest.fixture(scope="session")
def registry_tls(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningRegistry]:
    """HTTPS with a throwaway CA (`ca_path`), no auth."""
    yield from _session_registry(request, tmp_path_factory, "tls")


@pytest.fixture(scope="session")
def registry_basic(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningRegistry]:
    """HTTPS + htpasswd basic auth; users `pusher` and `reader` (both may push)."""
    yield from _session_registry(request, tmp_path_factory, "basic")


@pytest.fixture(scope="session")
def registry_token(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningRegistry]:
    """Plain HTTP + bearer tokens from `token_server`: pusher push+pull, reader pull,
    anonymous pull on `public/...` only. The issuer's state is reset before every test."""
    yield from _session_registry(request, tmp_path_factory, "token")


@pytest.fixture(scope="session")
def registry_schema1(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningRegistry]:
    """Plain HTTP that also accepts signed schema1 manifests."""
    yield from _session_registry(request, tmp_path_factory, "schema1")


@pytest.fixture
def start_registry(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Callable[[str], RunningRegistry]]:
    """A private registry a test may kill, restart or fill; stopped at the test's teardown."""
    started: list[RunningRegistry] = []

    def start(mode: str = "plain") -> RunningRegistry:
        reg = _launch(request.config, tmp_path_factory.mktemp(f"private-{mode}"), mode)
        started.append(reg)
        return reg

    yield start
    for reg in started:
        reg.stop()
        if reg.token_server is not None:
            reg.token_server.stop()


@pytest.fixture
def repo_name(request: pytest.FixtureRequest) -> str:
    """A repository path no other test uses: `t/<test-name>-<n>`."""
    counter = request.config.stash.setdefault(_REPO_COUNTER, itertools.count(1))
    base = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-")[:80].strip("-")
    return f"t/{base or 'test'}-{next(counter)}"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Iterator[None]:
    # A previous test may have killed a shared registry; bring it back rather than cascade.
    for reg in item.config.stash.get(_SESSION_REGS, []):
        if reg.stopped or not reg.alive():
            reg.restart()
        if reg.token_server is not None:
            reg.token_server.reset()  # lifetime, counters and injected failures are per test
    pool = item.config.stash.get(_POOL, None)
    item.stash[_MARKS] = {id(r): r.log_mark() for r in pool.registries} if pool else {}
    yield


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report: pytest.TestReport = outcome.get_result()  # type: ignore[attr-defined]
    if not report.failed or report.when == "teardown":
        return
    pool = item.config.stash.get(_POOL, None)
    if pool is None:
        return
    marks = item.stash.get(_MARKS, {})
    for reg in pool.registries:
        text = reg.log_text(marks.get(id(reg), 0))
        if not text:
            continue
        if len(text) > _LOG_SECTION_LIMIT:
            text = "[...]\n" + text[-_LOG_SECTION_LIMIT:]
        report.sections.append((f"registry {reg.mode} log {reg.log_path}", text))
        if reg.token_server is not None:
            report.sections.append(
                (f"token server {reg.token_server.url}", reg.token_server.describe())
            )
