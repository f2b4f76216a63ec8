"""``message_date``: when a message arrived, from its headers alone."""

from __future__ import annotations

from datetime import UTC, datetime

from popctl.pop3 import message_date


def test_the_earliest_received_header_wins_whatever_its_position() -> None:
    headers = (
        b"Received: from a by b; Tue, 9 Mar 2027 10:00:00 +0100\r\n"
        b"Received: from c\r\n by d (folded); Mon, 8 Mar 2027 23:30:00 -0200\r\n"
        b"Received: from e by f; Tue, 9 Mar 2027 08:00:00 +0000\r\n"
        b"Date: Sun, 1 Jan 2017 00:00:00 +0000\r\n"
    )
    assert message_date(headers) == datetime(2027, 3, 9, 1, 30, tzinfo=UTC)


def test_date_is_the_fallback_and_garbage_is_no_date() -> None:
    assert message_date(b"Date: Sun, 1 Jan 2017 00:00:00 +0000\r\n") == datetime(2017, 1, 1, tzinfo=UTC)
    assert message_date(b"Received: from a by b; not a date\r\nSubject: x\r\n") is None
    assert message_date(b"") is None
