"""The outbox and the portal route against their contract suites."""

from __future__ import annotations

import email
import email.policy
from pathlib import Path

import pytest

from certrenew.adapters.ca import CertificateOrder
from certrenew.adapters.ca.portal import PortalRoute
from certrenew.adapters.notice import NoticeChannel
from certrenew.adapters.notice.outbox import Outbox
from certrenew.config import PortalRouteSettings, load_settings
from tests.contract.ca_route_contract import PersonRouteContract
from tests.contract.notice_contract import NoticeChannelContract

EXAMPLE = Path(__file__).parent.parent / "examples" / "certrenew.toml"


class TestOutbox(NoticeChannelContract):
    @pytest.fixture
    def channel(self, tmp_path: Path) -> Outbox:
        return Outbox(tmp_path / "outbox")

    def delivered(self, channel: NoticeChannel) -> list[tuple[str, str, tuple[str, ...]]]:
        assert isinstance(channel, Outbox)
        arrived = []
        for path in sorted(channel.folder.glob("*.eml")):
            message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
            recipients = tuple(r.strip() for r in str(message["To"]).split(","))
            body = message.get_content()
            arrived.append((str(message["Subject"]), body, recipients))
        return arrived

    def test_no_half_written_notice_is_left(self, channel: Outbox) -> None:
        from tests.contract.notice_contract import NOTICE

        channel.deliver(NOTICE)
        assert not list(channel.folder.glob("*.tmp"))


class TestPortalRoute(PersonRouteContract):
    @pytest.fixture
    def route(self) -> PortalRoute:
        form = load_settings(EXAMPLE).ca_routes["CESICAT"]
        assert isinstance(form, PortalRouteSettings)
        return PortalRoute(form)

    def test_every_configured_field_is_shown_with_the_domain_filled_in(
        self, route: PortalRoute
    ) -> None:
        text = route.request_instructions(
            CertificateOrder("seu.example.cat", ("seu.example.cat",), "CSR", "SIS-1")
        )
        for name in route.form.fields:
            assert f"**{name}:**" in text
        assert "{domain}" not in text
        assert "Sol·licitud d'un certificat SSL amb domini: seu.example.cat" in text
