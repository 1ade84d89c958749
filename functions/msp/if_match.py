"""The If-Match header of an edit: the version the client read, as its ETag gave it ("3") or bare (3), weak or
not, as caches may send it back.

Apart from msp.http, so that the OpenAPI document states the pattern without loading the resolver and its logger.
"""

from __future__ import annotations

import re

from msp.errors import InvalidRequest, VersionRequired

PATTERN = r'^(?:W/)?"*[0-9]{1,9}"*$'
_VERSION = re.compile(PATTERN)


def version_in(raw: str | None) -> int:
    """The version an If-Match value names: 428 when it names none, 400 when it is not a version number."""
    value = (raw or "").strip()
    if not value.removeprefix("W/").strip('"'):
        raise VersionRequired("Send 'If-Match: <version>' with the version you read.")
    if not _VERSION.fullmatch(value):
        raise InvalidRequest("If-Match must be the candidature's version number, e.g. If-Match: 3.")
    return int(value.removeprefix("W/").strip('"'))
