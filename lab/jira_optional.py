"""Leave out of the Jira test server's answers the fields Atlassian's description calls optional.

Atlassian's OpenAPI description marks almost no field of an answer required: an
issue's `statusCategory`, a search's `total`, an attachment's `filename` may all
be absent from what a Jira (a version, a proxy, a permission scheme) sends. The
product must read every such field as optional; this is how the tests prove it.

`OptionalFields` walks each answer along the response schema of its operation
and drops the optional fields that `omit` selects, by name: `Schema.field`
(e.g. `StatusDetails.statusCategory`) or, for an issue's fields, which the
description leaves untyped, `fields.<id>` (e.g. `fields.status`). Names of the
optional fields it met are kept in `seen`, those it dropped in `dropped`, so a
test can go through all of them and show that it dropped something.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from typing import Any

SCHEMAS = "#/components/schemas/"
# The shapes of the system fields inside IssueBean.fields, as Jira sends them.
ISSUE_FIELDS: dict[str, str | tuple[str, str]] = {
    "status": "StatusDetails",
    "issuetype": "IssueTypeDetails",
    "project": "ProjectDetails",
    "assignee": "UserDetails",
    "attachment": ("array", "Attachment"),
    "issuelinks": ("array", "IssueLink"),
    "comment": "PageOfComments",
}


class Operations:
    """The description's operations, found by method and v2 or v3 request path."""

    def __init__(self, document: dict[str, Any]) -> None:
        self.document = document
        templates = []
        for template in document["paths"]:
            pattern = re.sub(r"\\{[^}]+\\}", "[^/]+", re.escape(template))
            templates.append((re.compile(pattern + "$"), template))
        # Literal segments win over parameters: /issue/createmeta before /issue/{key}.
        self._templates = sorted(templates, key=lambda item: item[1].count("{"))

    def find(self, method: str, path: str) -> dict[str, Any] | None:
        path = path.replace("/rest/api/2/", "/rest/api/3/", 1)
        for pattern, template in self._templates:
            if pattern.match(path):
                found: dict[str, Any] | None = self.document["paths"][template].get(method.lower())
                return found
        return None


class OptionalFields:
    """Drops the optional fields `omit(name)` selects from answers; see the module's docstring."""

    def __init__(self, document: dict[str, Any], omit: Callable[[str], bool]) -> None:
        self.document = document
        self.operations = Operations(document)
        self.omit = omit
        self.seen: set[str] = set()
        self.dropped: set[str] = set()

    def __call__(self, method: str, path: str, status: int, payload: Any) -> Any:
        found = self.operations.find(method, path)
        content = ((found or {}).get("responses", {}).get(str(status)) or {}).get("content", {})
        schema = (content.get("application/json") or {}).get("schema")
        if schema is None and status >= 400:
            schema = {"$ref": f"{SCHEMAS}ErrorCollection"}
        if schema is None:
            return payload
        # The handlers answer with the server's own records: leave those whole.
        answer = copy.deepcopy(payload)
        self._walk(schema, answer)
        return answer

    def _resolve(self, schema: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        """(name, merged schema) through `$ref` and `allOf`, the forms the description uses."""
        name = ""
        if "$ref" in schema:
            name = schema["$ref"].removeprefix(SCHEMAS)
            return name, self._resolve(self.document["components"]["schemas"][name])[1]
        parts = [self._resolve(part) for part in schema.get("allOf", [])]
        if not parts:
            return name, schema
        merged: dict[str, Any] = {"properties": {}, "required": []}
        for part_name, part in parts:
            name = name or part_name
            merged["properties"].update(part.get("properties", {}))
            merged["required"] += part.get("required", [])
            for key in ("items", "additionalProperties", "type"):
                if key in part:
                    merged[key] = part[key]
        merged["properties"].update(schema.get("properties", {}))
        merged["required"] += schema.get("required", [])
        return name, merged

    def _walk(self, schema: dict[str, Any], value: Any) -> None:
        name, shape = self._resolve(schema)
        if isinstance(value, list) and isinstance(shape.get("items"), dict):
            for item in value:
                self._walk(shape["items"], item)
        if not isinstance(value, dict):
            return
        properties = shape.get("properties", {})
        extra = shape.get("additionalProperties")
        for key in list(value):
            if name == "IssueBean" and key == "fields" and isinstance(value[key], dict):
                self._issue_fields(value[key])
                continue
            if key not in shape.get("required", []):
                full = f"{name or 'object'}.{key}"
                self.seen.add(full)
                if self.omit(full):
                    del value[key]
                    self.dropped.add(full)
                    continue
            inner = properties.get(key, extra if isinstance(extra, dict) else None)
            if inner:
                self._walk(inner, value[key])

    def _issue_fields(self, fields: dict[str, Any]) -> None:
        for key in list(fields):
            full = f"fields.{key}"
            self.seen.add(full)
            if self.omit(full):
                del fields[key]
                self.dropped.add(full)
                continue
            shape = ISSUE_FIELDS.get(key)
            if isinstance(shape, tuple):
                self._walk({"type": "array", "items": {"$ref": SCHEMAS + shape[1]}}, fields[key])
            elif shape is not None:
                self._walk({"$ref": SCHEMAS + shape}, fields[key])
