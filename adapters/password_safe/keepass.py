"""The team's KeePass database (KDBX4) through pykeepass."""

from __future__ import annotations

from pathlib import Path

from pykeepass import PyKeePass, create_database
from pykeepass.exceptions import CredentialsError

from certrenew.errors import ConfigError


class KeePassSafe:
    """PasswordSafe on a KeePass file; created (KDBX4) when it does not exist yet."""

    def __init__(self, path: Path, master_password: str | None, key_file: Path | None) -> None:
        if master_password is None and key_file is None:
            raise ConfigError(
                "the password safe has neither a master password nor a key file: set "
                "CERTRENEW_PASSWORD_SAFE__MASTER_PASSWORD (or password_safe.master_password_file)"
                " or password_safe.key_file"
            )
        self.path = path
        self._password = master_password
        self._key_file = key_file

    def _open(self) -> PyKeePass:
        key_file = str(self._key_file) if self._key_file else None
        if not self.path.exists():
            self.path.parent.mkdir(parents=True, exist_ok=True)
            return create_database(str(self.path), password=self._password, keyfile=key_file)
        try:
            return PyKeePass(str(self.path), password=self._password, keyfile=key_file)
        except CredentialsError:
            raise ConfigError(
                f"the password safe {self.path} does not open with the configured master "
                "password or key file: fix password_safe.master_password(_file) or key_file"
            ) from None

    def store(self, group: str, title: str, password: str, notes: str) -> str:
        database = self._open()
        folder = database.find_groups(name=group, first=True) or database.add_group(
            database.root_group, group
        )
        entry = database.find_entries(title=title, group=folder, first=True)
        if entry is None:
            database.add_entry(folder, title, "", password, notes=notes)
        elif entry.password != password or entry.notes != notes:
            entry.save_history()
            entry.password = password
            entry.notes = notes
        database.save()
        return f"KeePass {self.path.name}, {group} / {title}"
