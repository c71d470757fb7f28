"""Stable GUIDs for REFI-QDA files.

REFI-QDA identifies every code, user, source and selection by a GUID. Ours are name-based
(UUID version 5) on our own ids, so the same codebook or project gives the same GUIDs on every
run, a re-import recognises our codes by GUID, and two exports can be compared line by line.
"""

from __future__ import annotations

import uuid

# the namespace of every GUID this pipeline writes (itself a v5 UUID of the project's name)
NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "survey-coding-pipeline/refi-qda")


def guid(kind: str, *parts: str) -> str:
    """The GUID of one thing: `kind` ('framework', 'dimension', 'code', 'user', 'source',
    'selection', 'coding', 'variable', 'project') and the ids that make it unique, upper-case
    as most QDA tools write them."""
    name = "\x1f".join((kind, *map(str, parts)))
    return str(uuid.uuid5(NAMESPACE, name)).upper()


def framework_guid(framework: str) -> str:
    return guid("framework", framework)


def dimension_guid(framework: str, dimension: str) -> str:
    return guid("dimension", framework, dimension)


def code_guid(framework: str, code_id: str) -> str:
    return guid("code", framework, code_id)
