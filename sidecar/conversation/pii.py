"""`scrubPII` as daprd does it: the default scrubber of aavaz-ai/pii-scrubber (the version daprd pins), its
regular expressions and its merging of overlapping matches, so a scrubbed text reads as daprd's would."""

from __future__ import annotations

import re

__all__ = ["scrub"]

# The library's patterns, matched over UTF-8 bytes as Go's regexp does (ASCII \d, \w, \b; byte offsets).
# Go's \s is [\t\n\f\r ] (no \v), written out so Python's wider \s does not match more.
_S = rb"\t\n\f\r "
_IPV4 = rb"(?:(?:25[0-5]|2[0-4][0-9]|[01]?[0-9][0-9]?)\.){3}(?:25[0-5]|2[0-4][0-9]|[01]?[0-9][0-9]?)"
_V4 = rb"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(?:\.(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}"
_H = rb"[0-9A-Fa-f]{1,4}"
_IPV6 = (
    rb"(?:(?:(?:H:){7}(?:H|:))|(?:(?:H:){6}(?::H|(?:V4)|:))|(?:(?:H:){5}(?:(?:(?::H){1,2})|:(?:V4)|:))"
    rb"|(?:(?:H:){4}(?:(?:(?::H){1,3})|(?:(?::H)?:(?:V4))|:))|(?:(?:H:){3}(?:(?:(?::H){1,4})|(?:(?::H){0,2}:(?:V4))|:))"
    rb"|(?:(?:H:){2}(?:(?:(?::H){1,5})|(?:(?::H){0,3}:(?:V4))|:))|(?:(?:H:){1}(?:(?:(?::H){1,6})|(?:(?::H){0,4}:(?:V4))|:))"
    rb"|(?::(?:(?:(?::H){1,7})|(?:(?::H){0,5}:(?:V4))|:)))(?:%.+)?[S]*"
)
_IPV6 = _IPV6.replace(b"H", _H).replace(b"V4", _V4).replace(b"[S]", b"[" + _S + b"]")
_LINK_TAIL = (
    rb"(?:[a-z0-9.\-]+|www|[a-z0-9.\-])[.](?:[^S()<>]+|\((?:[^S()<>]+|(?:\([^S()<>]+\)))*\))+"
    rb"(?:\((?:[^S()<>]+|(?:\([^S()<>]+\)))*\)|[^S!()\[\]{};:'\".,<>?]))"
).replace(b"S", _S)


def _go(pattern: bytes, *, ignore_case: bool = False) -> re.Pattern[bytes]:
    return re.compile(pattern, re.IGNORECASE if ignore_case else 0)


# (entity, replacement, patterns) in the default scrubber's order; phone and ISBN try two patterns each.
_BLACKLISTED: tuple[tuple[bytes, tuple[re.Pattern[bytes], ...]], ...] = (
    (
        b"<STREET_ADDRESS>",
        (
            _go(
                rb"\d{1,4} [\w" + _S + rb"]{1,20}(?:street|st|avenue|ave|road|rd|highway|hwy|square|sq|trail|"
                rb"trl|drive|dr|court|ct|park|parkway|pkwy|circle|cir|boulevard|blvd)\W?",
                ignore_case=True,
            ),
        ),
    ),
    (b"<CREDIT_CARD>", (_go(rb"(?:(?:(?:\d{4}[- ]?){3}\d{4}|\d{15,16}))"),)),
    (
        b"<PHONE_NUMBER>",
        (
            _go(
                rb"(?:(?:\+?1[S]*(?:[.-][S]*)?)?(?:\([S]*(?:[2-9]1[02-9]|[2-9][02-8]1|[2-9][02-8][02-9])[S]*\)"
                rb"|(?:[2-9]1[02-9]|[2-9][02-8]1|[2-9][02-8][02-9]))[S]*(?:[.-][S]*)?)?(?:[2-9]1[02-9]|"
                rb"[2-9][02-9]1|[2-9][02-9]{2})[S]*(?:[.-][S]*)?(?:[0-9]{4})(?:[S]*(?:#|x\.?|ext\.?|extension)"
                rb"[S]*(?:\d+)?)".replace(b"[S]", b"[" + _S + b"]"),
                ignore_case=True,
            ),
            # The library's phone pattern keeps JavaScript's slashes and flags, which Go reads literally.
            _go(
                rb"/(?:(?:\+?\d{1,3}[-.S*]?)?(?:\d[S]?){8,11})|(?:(?:\+?\d{1,3}[-.S*]?)?(?:\(?\d{2,3}\)?[-.S*]?)?"
                rb"\d{2,3}[-.S*]?\d{2,6})|(?:(?:(?:\(\+?\d{1,2}\))|(?:\+?\d{1,2}))[S]*\d{2}[S]*\d{3}[S]*\d{4})/gm".replace(
                    b"[S]", b"[" + _S + b"]"
                ).replace(b"S*]", _S + b"*]")
            ),
        ),
    ),
    (
        b"<EMAIL_ADDRESS>",
        (
            _go(
                rb"([A-Za-z0-9!#$%&'*+/=?^_{|.}~-]+@(?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?\.)+"
                rb"[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)",
                ignore_case=True,
            ),
        ),
    ),
    (b"<IP>", (_go(_IPV4 + b"|" + _IPV6),)),
    (b"<ZIP_CODE>", (_go(rb"\b\d{5}(?:[-" + _S + rb"]\d{4})?\b"),)),
    (b"<PO_BOX>", (_go(rb"P\.? ?O\.? Box \d+", ignore_case=True),)),
    (b"<US_SSN>", (_go(rb"(?:\d{3}-\d{2}-\d{4})"),)),
    (b"<ISBN>", (_go(rb"(?:[\d]-?){9}[\dxX]"), _go(rb"(?:[\d]-?){12}[\dxX]"))),
    (b"<MAC_ADDRESS>", (_go(rb"(([a-fA-F0-9]{2}[:-]){5}([a-fA-F0-9]{2}))"),)),
    (b"<IBAN>", (_go(rb"[A-Z]{2}\d{2}[A-Z0-9]{4}\d{7}([A-Z\d]?){0,16}"),)),
)
# Matches inside these (links with a scheme, git remotes) are left as they are.
_IGNORED = (
    _go(rb"(?:(?:https?:\/\/)" + _LINK_TAIL),
    _go(rb"((git|ssh|http(s)?)|(git@[\w\.]+))(:(\/\/)?)([\w\.@\:/\-~]+)(\.git)(\/)?"),
)


def _intervals(found: list[tuple[list[int], bytes]]) -> list[tuple[list[int], bytes]]:
    """The library's sort.Slice: by start, longer first. Its less-than also holds between equal spans, so
    Go's insertion sort (up to 12 matches) moves each over the equal ones before it: ties come out last
    first, so of two entities matching the same text the later one (e.g. SSN over phone) wins."""
    order = sorted(range(len(found)), key=lambda i: (found[i][0][0], -found[i][0][1], -i))
    return [found[i] for i in order]


def scrub(text: str) -> str:
    """`text` with every PII match replaced by its placeholder (`<EMAIL_ADDRESS>`, `<PHONE_NUMBER>`, ...)."""
    data = text.encode()
    found = [
        ([m.start(), m.end()], label)
        for label, patterns in _BLACKLISTED
        for pattern in patterns
        for m in pattern.finditer(data)
    ]
    for span, _ in found:  # Go matches whole runes: a trailing \W or [^...] takes all of a UTF-8 character
        while span[1] < len(data) and data[span[1]] & 0xC0 == 0x80:
            span[1] += 1
    intervals = _intervals(found)
    # Overlaps are resolved against the previous interval in sorted order, as the library does.
    kept = intervals[:1]
    for i in range(1, len(intervals)):
        span, previous = intervals[i][0], intervals[i - 1][0]
        if span[0] <= previous[1]:
            if previous[1] >= span[1]:
                continue
            span[0] = previous[1] + 1
        kept.append(intervals[i])
    ignored = _intervals([([m.start(), m.end()], b"") for p in _IGNORED for m in p.finditer(data)])
    scrubbable: list[tuple[list[int], bytes]] = []
    i = j = 0
    while i < len(kept) and j < len(ignored):
        while i < len(kept) and kept[i][0][1] < ignored[j][0][0]:
            scrubbable.append(kept[i])
            i += 1
        while i < len(kept) and kept[i][0][0] <= ignored[j][0][1]:
            i += 1
        j += 1
    scrubbable += kept[i:]
    out = bytearray()
    at = k = 0
    while at < len(data):
        if k < len(scrubbable) and at == scrubbable[k][0][0]:
            out += scrubbable[k][1]
            at = scrubbable[k][0][1]
            k += 1
            continue
        out.append(data[at])
        at += 1
    return out.decode(errors="replace")
