"""Stable GUIDs for REFI-QDA files.

REFI-QDA identifies every code, user, source and selection by a GUID. Ours are name-based
(UUID version 5) on our own ids, so the same codebook or project gives the same GUIDs on every
run, a re-import recognises our codes by GUID, and two exports can be compared line by line.

A project has a GUID per source, selection and coding (about a million at 100,000 answers), so
`guid` computes the UUID 5 itself (SHA-1 of the namespace and the name, version and variant
bits set) instead of building a `uuid.UUID` per call: the same string as
`str(uuid.uuid5(NAMESPACE, name)).upper()` (tests/test_refi_qda.py checks it), in a third of
the time. `guids` gives many of one kind at once: the SHA-1 of the shared prefix is computed
once and copied, and the bits and hex digits are set by numpy for all of them together (a
million source GUIDs in about a second instead of five).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from functools import lru_cache
from hashlib import sha1

import numpy as np

# the namespace of every GUID this pipeline writes (itself a v5 UUID of the project's name)
NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "survey-coding-pipeline/refi-qda")
_NAMESPACE_BYTES = NAMESPACE.bytes


def name_guid(name: str) -> str:
    """`str(uuid.uuid5(NAMESPACE, name)).upper()`."""
    digest = bytearray(sha1(_NAMESPACE_BYTES + name.encode("utf-8")).digest()[:16])
    digest[6] = (digest[6] & 0x0F) | 0x50     # version 5
    digest[8] = (digest[8] & 0x3F) | 0x80     # RFC 4122 variant
    h = digest.hex().upper()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def guid(kind: str, *parts: str) -> str:
    """The GUID of one thing: `kind` ('framework', 'dimension', 'code', 'user', 'source',
    'selection', 'coding', 'variable', 'project') and the ids that make it unique, upper-case
    as most QDA tools write them."""
    return name_guid("\x1f".join((kind, *map(str, parts))))


_HEX = np.frombuffer(b"0123456789ABCDEF", dtype=np.uint8)
# where each of the 32 hex digits goes in the 36 characters of a GUID (dashes between)
_DIGIT_AT = np.array([*range(0, 8), *range(9, 13), *range(14, 18), *range(19, 23),
                      *range(24, 36)])


def guids(kind: str, *columns: Iterable[object]) -> list[str]:
    """`[guid(kind, *parts) for parts in zip(*columns)]`, many at once."""
    if not columns:
        return []
    names = map(str, columns[0]) if len(columns) == 1 else (
        "\x1f".join(map(str, parts)) for parts in zip(*columns, strict=True))
    prefix = sha1(_NAMESPACE_BYTES + f"{kind}\x1f".encode())
    digests = bytearray()
    for name in names:
        h = prefix.copy()
        h.update(name.encode())
        digests += h.digest()[:16]
    raw = np.frombuffer(bytes(digests), dtype=np.uint8).reshape(-1, 16).copy()
    raw[:, 6] = (raw[:, 6] & 0x0F) | 0x50     # version 5
    raw[:, 8] = (raw[:, 8] & 0x3F) | 0x80     # RFC 4122 variant
    digits = np.empty((len(raw), 32), dtype=np.uint8)
    digits[:, 0::2], digits[:, 1::2] = _HEX[raw >> 4], _HEX[raw & 0x0F]
    text = np.full((len(raw), 36), ord("-"), dtype=np.uint8)
    text[:, _DIGIT_AT] = digits
    return text.view("S36").ravel().astype("U36").tolist()


def framework_guid(framework: str) -> str:
    return guid("framework", framework)


def dimension_guid(framework: str, dimension: str) -> str:
    return guid("dimension", framework, dimension)


@lru_cache(maxsize=4096)
def code_guid(framework: str, code_id: str) -> str:
    return guid("code", framework, code_id)
