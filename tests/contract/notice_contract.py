"""What every notice channel must do for the runbook's reminders and notices."""

from __future__ import annotations

from certrenew.adapters.notice import Notice, NoticeChannel

NOTICE = Notice(
    id="certrenew-seu.example.cat-0a1b-revoked",
    subject="Certificat revocat: seu",
    body="El certificat de seu, tipus SSL, es va revocar.\nNúmero de sèrie 0A1B.\n",
    recipients=("certificats@example.cat", "owner@example.cat"),
)


class NoticeChannelContract:
    """Subclasses provide a `channel` fixture and `delivered(channel)`: what arrived."""

    def delivered(self, channel: NoticeChannel) -> list[tuple[str, str, tuple[str, ...]]]:
        """(subject, body, recipients) of every notice that reached its destination."""
        raise NotImplementedError

    def test_a_notice_arrives_with_its_subject_body_and_recipients(
        self, channel: NoticeChannel
    ) -> None:
        channel.deliver(NOTICE)
        [(subject, body, recipients)] = self.delivered(channel)
        assert subject == NOTICE.subject
        assert body.strip() == NOTICE.body.strip()
        assert recipients == NOTICE.recipients

    def test_delivering_the_same_notice_twice_sends_it_once(self, channel: NoticeChannel) -> None:
        channel.deliver(NOTICE)
        channel.deliver(NOTICE)
        assert len(self.delivered(channel)) == 1

    def test_different_notices_all_arrive(self, channel: NoticeChannel) -> None:
        channel.deliver(NOTICE)
        later = Notice("expiry-seu-0a1b-warning", "Caducitat", "Caduca aviat.", ("a@example.cat",))
        channel.deliver(later)
        assert len(self.delivered(channel)) == 2
