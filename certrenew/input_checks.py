"""What every file a person writes gets checked for, before its content is read.

The configuration and the inventory are edited by hand and named on the
command line, so any path may turn out to be a folder, a broken link, a file
saved in Latin-1 or something that never ends (/dev/zero): each of these is one
line that says what to do. Their numbers are numbers: YAML and TOML read `true`
as a boolean, which pydantic would otherwise take as 1 (port 1).
"""

from __future__ import annotations

import errno
from pathlib import Path
from typing import Any, get_args

from pydantic import BaseModel, model_validator

from certrenew.errors import CertRenewError

# Far above any real inventory (10,000 certificates take about 2 MB).
MAX_TEXT_BYTES = 64 * 1024 * 1024


def read_text(path: Path, what: str, error: type[CertRenewError], missing: str) -> str:
    """The UTF-8 text of `what` (e.g. "inventory") at `path`, or `error` saying what to fix.

    `missing` says what to do when there is no such file.
    """
    try:
        with path.open("rb") as file:
            data = file.read(MAX_TEXT_BYTES + 1)
    except FileNotFoundError:
        raise error(f"{what} {path} does not exist: {missing}") from None
    except IsADirectoryError:
        raise error(f"{what} {path} is a folder: name the file itself") from None
    except PermissionError:
        raise error(
            f"{what} {path} cannot be read (permission denied): make it readable for the "
            "user running certrenew"
        ) from None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise error(
                f"{what} {path} is a symbolic link that leads back to itself: point it at the file"
            ) from None
        raise error(f"{what} {path} cannot be read ({exc.strerror or exc}): check it") from None
    if len(data) > MAX_TEXT_BYTES:
        raise error(
            f"{what} {path} is larger than {MAX_TEXT_BYTES // (1024 * 1024)} MiB: "
            "is it the right file?"
        )
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise error(
            f"{path}:{line}: {what} is not UTF-8 text (byte 0x{data[exc.start]:02x}): save it "
            "as UTF-8"
        ) from None


class PersonWritten(BaseModel):
    """A model read from a file a person wrote: `true` is never a number."""

    # On the model, not on each field: pydantic allows no field validator on the field
    # that tells a union's members apart (a CA route's `kind`).
    @model_validator(mode="before")
    @classmethod
    def _numbers_are_not_booleans(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        for name, value in data.items():
            if not isinstance(value, bool):  # first: looking the field up costs more
                continue
            field = cls.model_fields.get(name) if isinstance(name, str) else None
            if field is None:
                continue
            accepted = {field.annotation, *get_args(field.annotation)}
            if bool not in accepted and accepted & {int, float}:
                raise ValueError(f"{name}: {str(value).lower()} is not a number: write a number")
        return data
