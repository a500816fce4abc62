"""Ticket, form and notice texts as Jinja templates.

Texts change for reasons of their own (wording, language, a new field in the
CA's form), so they live here rather than in the flow. Ticket texts are in
Catalan and use Jira wiki markup, which reads fine as plain text elsewhere.
"""

from __future__ import annotations

from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined

_env = Environment(
    loader=PackageLoader("certrenew.templates", ""),
    undefined=StrictUndefined,  # a missing value is a bug, not an empty line in a ticket
    keep_trailing_newline=False,
    trim_blocks=True,
    lstrip_blocks=True,
    autoescape=False,
)


def render(template: str, **context: Any) -> str:
    """Render `<template>.j2`; the first line of a ticket template is its summary."""
    return _env.get_template(f"{template}.j2").render(**context).strip() + "\n"


def render_ticket(template: str, **context: Any) -> tuple[str, str]:
    """(summary, description) of a ticket template."""
    summary, _, description = render(template, **context).partition("\n")
    return summary.strip(), description.strip() + "\n"


# Step comments, one macro each (`comments.csr_received(...)`). Macros are made
# at run time from comments.j2, so a type checker cannot see them: typed Any.
comments: Any = _env.get_template("comments.j2").module
