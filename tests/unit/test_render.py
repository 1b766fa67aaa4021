"""How push progress looks: plain lines for logs, docker's JSON stream, rich bars on a TTY."""

from __future__ import annotations

import io
import json

from yardarm.cli._render import JsonRenderer, PlainRenderer, QuietRenderer, make_renderer
from yardarm.progress import ProgressEvent


def script() -> list[ProgressEvent]:
    return [
        ProgressEvent("", "The push refers to repository [reg/app]", "message"),
        ProgressEvent("aaa", "Preparing", "Preparing"),
        ProgressEvent("aaa", "Pushing", "Pushing", current=10, total=100, rate=5.0),
        ProgressEvent("aaa", "Pushing", "Pushing", current=30, total=100, rate=5.0),
        ProgressEvent("aaa", "Pushing", "Pushing", current=100, total=100, rate=5.0),
        ProgressEvent("aaa", "Pushed", "Pushed"),
        ProgressEvent("bbb", "Mounted from team/base", "Mounted from"),
        ProgressEvent("bbb", "Mounted from team/base", "Mounted from"),
        ProgressEvent(
            "", "1.0: digest: sha256:x size: 5", "message", aux={"Tag": "1.0", "Size": 5}
        ),
    ]


def test_plain_lines_show_each_change_once_and_progress_in_quarters() -> None:
    out = io.StringIO()
    r = PlainRenderer(out)
    for e in script():
        r(e)
    assert out.getvalue().splitlines() == [
        "The push refers to repository [reg/app]",
        "aaa: Preparing",
        "aaa: Pushing 25%",
        "aaa: Pushing 100%",
        "aaa: Pushed",
        "bbb: Mounted from team/base",
        "1.0: digest: sha256:x size: 5",
    ]


def test_json_is_dockers_message_stream() -> None:
    out = io.StringIO()
    r = JsonRenderer(out)
    for e in script():
        r(e)
    msgs = [json.loads(line) for line in out.getvalue().splitlines()]
    assert msgs[0] == {"status": "The push refers to repository [reg/app]"}
    assert msgs[1] == {"status": "Preparing", "id": "aaa", "progressDetail": {}}
    assert msgs[2]["progressDetail"] == {"current": 10, "total": 100}
    assert msgs[2]["progress"].startswith("[=====")
    assert msgs[-2] == {"status": "1.0: digest: sha256:x size: 5"}
    assert msgs[-1] == {"progressDetail": {}, "aux": {"Tag": "1.0", "Size": 5}}
    r.error("boom")
    last = json.loads(out.getvalue().splitlines()[-1])
    assert last == {"errorDetail": {"message": "boom"}, "error": "boom"}


def test_quiet_prints_nothing() -> None:
    out = io.StringIO()
    r = QuietRenderer(out)
    for e in script():
        r(e)
    assert out.getvalue() == ""


class FakeTTY(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_auto_draws_rich_bars_on_a_terminal_and_plain_lines_elsewhere() -> None:
    assert isinstance(make_renderer("auto", False, io.StringIO()), PlainRenderer)
    tty = FakeTTY()
    r = make_renderer("auto", False, tty)
    assert type(r).__name__ == "RichRenderer"
    for e in script():
        r(e)
    r.close()
    text = tty.getvalue()
    assert "The push refers to repository [reg/app]" in text
    assert "Mounted from team/base" in text
    assert "aaa" in text
