"""HTTP conventions shared by the Microsoft clients (Exchange admin API, Graph). Pulumi-free.

Both honour ``Retry-After`` and follow ``@odata.nextLink`` only on the host they were pointed at (a
paging link elsewhere would carry the bearer token to a stranger).
"""

from __future__ import annotations

import time
from email.utils import parsedate_to_datetime
from urllib.parse import urlsplit

MAX_BACKOFF_SECONDS = 30.0


def retry_delay(retry_after: str | None, attempt: int) -> float:
    """Seconds to wait after failed attempt number ``attempt`` (1-based).

    The server's ``Retry-After`` when it sent a usable one (seconds, or an HTTP date), otherwise
    exponential backoff: 1, 2, 4, ... seconds, at most ``MAX_BACKOFF_SECONDS``.
    """
    if retry_after:
        try:
            return max(float(retry_after), 0.0)
        except ValueError:
            pass
        try:
            return max(parsedate_to_datetime(retry_after).timestamp() - time.time(), 0.0)
        except (TypeError, ValueError):
            pass
    return min(2.0 ** (attempt - 1), MAX_BACKOFF_SECONDS)


def same_origin_link(base_url: str, link: object) -> str | None:
    """``link`` if it is on ``base_url``'s scheme and host; None when there is no link.

    Raises ValueError naming the foreign host otherwise.
    """
    if not isinstance(link, str) or not link:
        return None
    ours, theirs = urlsplit(base_url), urlsplit(link)
    if (theirs.scheme, theirs.netloc) != (ours.scheme, ours.netloc):
        raise ValueError(f"refusing a paging link to another host ({theirs.netloc})")
    return link
