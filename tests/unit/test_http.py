"""The retry policy's waits and the paging-link rule the Exchange and Graph clients share."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from mscloud.http import same_origin_link
from mscloud.retry import MAX_BACKOFF_SECONDS, retry_delay


def test_retry_after_in_seconds_is_honoured_even_when_zero() -> None:
    assert retry_delay("7", attempt=1) == 7.0
    assert retry_delay("0", attempt=5) == 0.0


def test_retry_after_as_an_http_date_is_honoured() -> None:
    later = format_datetime(datetime.now(UTC) + timedelta(seconds=90), usegmt=True)
    assert 80 < retry_delay(later, attempt=1) <= 90


@pytest.mark.parametrize("header", [None, "", "soon", "-"])
def test_without_a_usable_retry_after_the_backoff_doubles_up_to_a_cap(header: str | None) -> None:
    assert [retry_delay(header, attempt) for attempt in (1, 2, 3, 4)] == [1.0, 2.0, 4.0, 8.0]
    assert retry_delay(header, attempt=12) == MAX_BACKOFF_SECONDS


def test_paging_links_stay_on_the_host_the_client_was_pointed_at() -> None:
    base = "https://127.0.0.1:8443/adminapi/beta/t/InvokeCommand"
    assert same_origin_link(base, None) is None
    assert same_origin_link(base, "") is None
    assert (
        same_origin_link(base, "https://127.0.0.1:8443/next?page=2") == "https://127.0.0.1:8443/next?page=2"
    )
    with pytest.raises(ValueError, match=r"another host \(evil\.example\)"):
        same_origin_link(base, "https://evil.example/next")
    with pytest.raises(ValueError, match="another host"):
        same_origin_link(base, "http://127.0.0.1:8443/next")
