"""daprd's PII scrubbing (pii-scrubber's default scrubber) on texts whose scrubbed form daprd's and the
library's own tests state, and the library's rules for overlapping and ignored matches."""

from __future__ import annotations

import pytest

from sidecar.conversation.pii import scrub


@pytest.mark.parametrize(
    ("text", "scrubbed"),
    [
        # daprd's integration tests (conversation/alpha1/grpc/scrubpii.go)
        (
            "well hello there, my phone number is +2222222222",
            "well hello there, my phone number is <PHONE_NUMBER>",
        ),
        (
            "well hello there, my phone number is +4422222222",
            "well hello there, my phone number is <PHONE_NUMBER>",
        ),
        ("well hello there, my email is test@test.com", "well hello there, my email is <EMAIL_ADDRESS>"),
        ("well hello there from 10.8.9.1", "well hello there from <IP>"),
        ("well hello there", "well hello there"),
        # the library's default scrubber test
        ("Hi this is Anshal with, +919140520809", "Hi this is Anshal with, <PHONE_NUMBER>"),
        ("Hi ping mein at anshaldwivedi@gmail.com", "Hi ping mein at <EMAIL_ADDRESS>"),
        ("here, 6011553157232994", "here, <CREDIT_CARD>"),
        # SSN and phone match the same text: the later entity wins; links with a scheme are left alone
        (
            "My SSN is488-23-3729. Details can be found at https://aavaz.ai/emp/488-23-3729",
            "My SSN is<US_SSN>. Details can be found at https://aavaz.ai/emp/488-23-3729",
        ),
        ("My email is 9144520109@gmail.com", "My email is <EMAIL_ADDRESS>"),
    ],
)
def test_scrubs_as_daprd(text: str, scrubbed: str) -> None:
    assert scrub(text) == scrubbed


def test_each_entity_has_its_placeholder() -> None:
    assert scrub("mac 00:1A:2B:3C:4D:5E at 12 Main street.") == "mac <MAC_ADDRESS> at <STREET_ADDRESS>"
    assert scrub("write to PO Box 1234") == "write to <PO_BOX>"
    assert scrub("iban GB82WEST12345698765432") == "iban <IBAN>"
    assert scrub("ip fe80::1 here") == "ip <IP>here"  # the IPv6 pattern takes the spaces after it


def test_a_match_inside_one_already_taken_stops_later_replacements() -> None:
    """The library's merge compares each match with the one sorted before it, not the last kept: here the
    second half of the card, also a phone number, is kept but never reached, and nothing after it is
    replaced (the zip code) — as daprd answers."""
    assert scrub("card 4111 1111 1111 1111 zip 94105") == "card <CREDIT_CARD> zip 94105"
    assert scrub("zip 94105") == "zip <ZIP_CODE>"


def test_non_ascii_text_survives() -> None:
    assert scrub("héllo wörld, mail jane@example.com") == "héllo wörld, mail <EMAIL_ADDRESS>"
    # Go's \W takes a whole character, not one byte of it
    assert scrub("at 12 Main street— ok") == "at <STREET_ADDRESS> ok"


def test_of_two_entities_matching_the_same_text_the_later_wins() -> None:
    # ten digits with dashes are a phone number and an ISBN-10; ISBN comes later in the default list
    assert scrub("call 555-123-4567") == "call <ISBN>"
