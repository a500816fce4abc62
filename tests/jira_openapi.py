"""Checks the Jira test server's exchanges against Atlassian's published OpenAPI description.

The spec describes Jira Cloud REST v3; the library talks v2, which shares paths
and shapes (v3 carries rich text as ADF, but the spec leaves `description` and
comment `body` untyped, so plain v2 strings need no exception). Every known
difference between the spec and real Jira is tolerated here, each narrowly and
in one place (see /work/shared/specs/README.md):

- the spec is loaded without validating the spec itself;
- `date-time` also accepts Jira's offset without a colon (`+0000`);
- `POST issueLink` (201) and `POST .../transitions` (204) may come with the empty
  body Jira sends, although a JSON body is declared;
- the library's `"comment": null` on issue links is dropped before the request is
  checked; its transition id sent as a number and `validateQuery=True` (Python's
  spelling) are read as the string and boolean Jira accepts;
- the multipart attachment upload is checked by hand (one part named `file` with a
  filename, `X-Atlassian-Token: no-check`);
- error statuses an operation does not declare (429, 5xx, 410, a 401 where the
  spec omits it) must carry Jira's ErrorCollection shape;
- the Server/DC download address `/secure/attachment/...` is not REST and not in
  the spec: it must answer 200 with a body and a content type.
"""

from __future__ import annotations

import json
import os
import re
import warnings
from collections.abc import Callable
from functools import cached_property
from pathlib import Path
from typing import Any

from openapi_core import Config, OpenAPI
from openapi_core.testing import MockRequest, MockResponse
from openapi_schema_validator import OAS30Validator

from certrenew.lab.jira_optional import Operations
from certrenew.lab.jira_server import Exchange, parse_multipart

SPEC_ENV = "CERTRENEW_JIRA_OPENAPI"
DEFAULT_SPEC = (
    Path(__file__).resolve().parents[1].parent / "shared/specs/jira-cloud-platform-v3.openapi.json"
)
HOST = "https://your-domain.atlassian.net"
JIRA_DATE_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:?\d\d)$")
EMPTY_BODY_ALLOWED = {
    ("POST", r"/rest/api/3/issueLink", 201),
    ("POST", r"/rest/api/3/issue/[^/]+/transitions", 204),
}
MULTIPART_UPLOAD = ("POST", r"/rest/api/3/issue/[^/]+/attachments")
NOT_REST = ("GET", r"/secure/attachment/\d+/[^/]+")


def spec_path() -> Path:
    return Path(os.environ.get(SPEC_ENV) or DEFAULT_SPEC)


def jira_date_time(value: str) -> bool:
    return bool(JIRA_DATE_TIME.match(value))


class JiraSpec:
    """The spec, loaded once; `problems(exchange)` lists what does not match it."""

    def __init__(self, path: Path) -> None:
        if not path.is_file():
            raise FileNotFoundError(
                f"the Jira OpenAPI description is missing at {path}: set {SPEC_ENV}"
            )
        self.document = json.loads(path.read_text(encoding="utf-8"))
        config = Config(
            spec_validator_cls=None, extra_format_validators={"date-time": jira_date_time}
        )
        self.openapi = OpenAPI.from_dict(self.document, config=config)

    @cached_property
    def _operations(self) -> Operations:
        return Operations(self.document)

    @cached_property
    def _error_validator(self) -> OAS30Validator:
        schema = {"$ref": "#/components/schemas/ErrorCollection", **self.document}
        return OAS30Validator(schema)

    def operation(self, method: str, path: str) -> dict[str, Any] | None:
        return self._operations.find(method, path)

    def problems(self, exchange: Exchange) -> list[str]:
        where = f"{exchange.method} {exchange.path} -> {exchange.status}"
        if exchange.status is None:
            return []  # dropped before an answer: nothing was said
        if _matches(NOT_REST, exchange.method, exchange.path):
            ok = (
                exchange.status == 200
                and exchange.response_body
                and (exchange.response_headers.get("Content-Type"))
            )
            return [] if ok else [f"{where}: attachment download without content"]
        path = exchange.path.replace("/rest/api/2/", "/rest/api/3/", 1)
        operation = self.operation(exchange.method, path)
        if operation is None:
            return [f"{where}: no such operation in the spec"]
        found = self._request_problems(exchange, path)
        found += self._response_problems(exchange, path, operation)
        return [f"{where}: {problem}" for problem in found]

    def _request_problems(self, exchange: Exchange, path: str) -> list[str]:
        if _matches(MULTIPART_UPLOAD, exchange.method, path):
            return _multipart_problems(exchange)
        body = exchange.request_body
        if body and exchange.json() is not None:
            data = exchange.json()
            if path == "/rest/api/3/issueLink" and data.get("comment", ...) is None:
                del data["comment"]
            transition = data.get("transition") if isinstance(data, dict) else None
            if isinstance(transition, dict) and isinstance(transition.get("id"), int):
                transition["id"] = str(transition["id"])
            body = json.dumps(data).encode()
        query = [
            (name, value.lower() if name == "validateQuery" else value)
            for name, value in exchange.query
        ]
        request = MockRequest(
            HOST,
            exchange.method,
            path,
            args=query,  # type: ignore[arg-type]  # a multi-dict from pairs
            headers={k: v for k, v in exchange.request_headers.items() if k != "authorization"},
            data=body,
            content_type=exchange.request_headers.get("content-type", "application/json"),
        )
        return _errors(lambda: self.openapi.validate_request(request))

    def _response_problems(
        self, exchange: Exchange, path: str, operation: dict[str, Any]
    ) -> list[str]:
        status = exchange.status
        assert status is not None
        declared = operation.get("responses", {})
        if str(status) not in declared:
            if status < 400:
                return [f"status {status} is not declared (declared: {sorted(declared)})"]
            return [
                f"error body: {e.message}"
                for e in self._error_validator.iter_errors(_json_or_none(exchange.response_body))
            ]
        if not exchange.response_body and any(
            _matches((m, p), exchange.method, path) and s == status
            for m, p, s in EMPTY_BODY_ALLOWED
        ):
            return []
        content_type = exchange.response_headers.get("Content-Type", "application/json")
        response = MockResponse(
            exchange.response_body,
            status_code=status,
            headers=exchange.response_headers,
            content_type=content_type.split(";")[0],
        )
        # MockRequest's hint says dict, but it builds a multi-dict and takes the query's pairs.
        request = MockRequest(HOST, exchange.method, path, args=exchange.query)  # type: ignore[arg-type]
        return _errors(lambda: self.openapi.validate_response(request, response))


def _matches(rule: tuple[str, str], method: str, path: str) -> bool:
    return rule[0] == method and re.fullmatch(rule[1], path) is not None


def _json_or_none(body: bytes) -> Any:
    try:
        return json.loads(body)
    except ValueError:
        return None


def _multipart_problems(exchange: Exchange) -> list[str]:
    found = []
    if exchange.request_headers.get("x-atlassian-token") != "no-check":
        found.append("attachment upload without X-Atlassian-Token: no-check")
    parts = parse_multipart(exchange.request_headers.get("content-type", ""), exchange.request_body)
    if [(name, bool(filename)) for name, filename, _ in parts] != [("file", True)]:
        found.append(f"attachment upload parts {[(n, f) for n, f, _ in parts]}, want one 'file'")
    return found


def _errors(check: Callable[[], object]) -> list[str]:
    with warnings.catch_warnings():
        # The spec's OAuth2 scheme is unsupported by the validator; basic auth and
        # anonymous access are declared alternatives, so security is not in question.
        warnings.simplefilter("ignore", UserWarning)
        try:
            check()
        except Exception as exc:  # the validator's errors share no useful base class
            cause = exc.__cause__
            detail = getattr(cause, "schema_errors", None) or cause or ""
            return [f"{type(exc).__name__}: {detail}"]
    return []
