"""`scan --json` written one result at a time is the document json.dumps would write."""

from __future__ import annotations

import io
import json

import pytest

from certrenew.probe import ProbeResult
from certrenew.scan_report import write_results_json


def result(name: str, sans: list[str] | None, error: str | None = None) -> ProbeResult:
    return ProbeResult(
        name=name,
        domain="seu.example.cat",
        target="[fd00::1]:443",
        kind="endpoint",
        not_after=None if error else "2027-01-01T00:00:00+00:00",
        days_left=None if error else 29,
        status="error" if error else "warning",
        subject_cn="seu\u202e.example.cat",
        sans=sans,
        issuer='CN=Ünïcode CA,O="quoted"',
        serial=None if error else "0A",
        sha256=None,
        covers_domain=None if error else True,
        error=error,
        note="line\nbreak",
    )


@pytest.mark.parametrize(
    "results",
    [
        [],
        [result("one", ["a.example.cat", "b.example.cat"])],
        [result("one", None), result("two", [], "refused"), result("three", ["x"])],
        [result("four", ['q"uote', "tab\there", "ü\u202e", "back\\slash"])],
    ],
)
def test_streamed_json_is_the_whole_document_byte_for_byte(results: list[ProbeResult]) -> None:
    out = io.StringIO()
    write_results_json(results, out)
    whole = json.dumps([r.as_dict() for r in results], indent=2, ensure_ascii=False)
    # The terminal-safe spelling of the override character, as before.
    assert out.getvalue() == whole.replace("\u202e", "\\u202e") + "\n"
    assert json.loads(out.getvalue()) == [r.as_dict() for r in results]
