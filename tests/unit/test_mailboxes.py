"""Which mailbox an address names (mscloud.mailboxes): the id variants the reference notes allow."""

from __future__ import annotations

from typing import Any

import pytest

from mscloud.mailboxes import EMPTY_GUID, MailboxError, mailbox_of, resolve_all, smtp_addresses

GUID = "4C1B7A2E-0000-4000-8000-00000000AAAA"
DIRECTORY_ID = "7d2e1f00-0000-4000-8000-00000000bbbb"
RECORD = {
    "PrimarySmtpAddress": "EDI@contoso.de",
    "EmailAddresses": [
        "SMTP:EDI@contoso.de",
        "smtp:edi@contoso.com",
        "X500:/o=ExchangeLabs/cn=edi",
        "SIP:x@y",
    ],
    "ExchangeGuid": GUID,
    "ExternalDirectoryObjectId": DIRECTORY_ID,
    "RecipientTypeDetails": "SharedMailbox",
}


@pytest.mark.parametrize(
    ("changes", "expected_id"),
    [
        ({}, GUID.lower()),
        ({"ExchangeGuid": EMPTY_GUID}, DIRECTORY_ID),
        ({"ExchangeGuid": None}, DIRECTORY_ID),
        ({"ExchangeGuid": None, "ExternalDirectoryObjectId": "", "Guid": "ABC"}, "abc"),
        ({"ExchangeGuid": None, "ExternalDirectoryObjectId": None}, "edi@contoso.de"),
    ],
    ids=["exchange guid", "empty guid", "no guid", "object guid", "no id at all"],
)
def test_the_first_id_present_names_the_mailbox(changes: dict[str, Any], expected_id: str) -> None:
    assert mailbox_of(RECORD | changes, "edi@contoso.com").id == expected_id


def test_every_smtp_address_belongs_to_the_mailbox() -> None:
    mailbox = mailbox_of(RECORD, "Edi@Contoso.com")
    assert mailbox.primary_address == "EDI@contoso.de"
    assert mailbox.addresses == {"edi@contoso.de", "edi@contoso.com"}
    assert mailbox.recipient_type == "SharedMailbox"
    assert smtp_addresses("SMTP:a@b.de, smtp:c@b.de,x500:/o=x") == ["a@b.de", "c@b.de"]
    assert smtp_addresses(None) == []


class Reader:
    def __init__(self, records: dict[str, dict[str, Any]]) -> None:
        self.records = records

    def get_mailbox(self, identity: str) -> dict[str, Any] | None:
        return self.records.get(identity.lower())


def test_resolve_all_names_both_addresses_of_one_mailbox_and_the_missing_one() -> None:
    reader = Reader({"edi@contoso.de": RECORD, "edi@contoso.com": RECORD})

    with pytest.raises(
        MailboxError, match=r"lists edi@contoso\.de and edi@contoso\.com, two addresses of one"
    ):
        resolve_all(reader, ["edi@contoso.de", "edi@contoso.com"], tenant_id="t")  # type: ignore[arg-type]
    with pytest.raises(MailboxError, match=r"Mailbox nobody@contoso\.de does not exist in tenant t"):
        resolve_all(reader, ["nobody@contoso.de"], tenant_id="t")  # type: ignore[arg-type]
    assert list(resolve_all(reader, ["edi@contoso.com"], tenant_id="t")) == ["edi@contoso.com"]  # type: ignore[arg-type]
