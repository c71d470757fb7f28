"""What a loaded codebook is: frozen, versioned objects (Codebook > Code > Pattern).

Built by core.coding.codebook_parse from a YAML file; read by the keyword matcher, the coder
sheets, the suggester, the queue and the exchange formats. The format is in docs/codebooks.md.
"""

from __future__ import annotations

from dataclasses import dataclass, field

KINDS = ("phrase", "stem", "regex")
BOUNDARIES = ("word", "start", "none")
SCOPES = ("hit", "answer")
# Redaction placeholders such as "[External Coach name]" or "[Name]" never count as evidence.
DEFAULT_PLACEHOLDERS = r"\[[^\[\]\n]{1,80}\]"


class CodebookError(ValueError):
    """An invalid codebook. The message is '<file>:<line>: <problem>'."""


MEANING_FIELDS = ("definition", "use_when", "not_when")
MIN_EXAMPLES = 4


@dataclass(frozen=True)
class Pattern:
    kind: str  # 'phrase' | 'stem' | 'regex'
    text: str  # as written in the codebook
    boundary: str = "word"  # 'word' | 'start' | 'none'
    scope: str = (
        "hit"  # exclusions only: veto overlapping hits ('hit') or the whole code ('answer')
    )
    line: int = 0  # line in the codebook file (0 = unknown)

    def to_dict(self) -> dict:
        out = {"kind": self.kind, "text": self.text, "boundary": self.boundary}
        if self.scope != "hit":
            out["scope"] = self.scope
        return out


@dataclass(frozen=True)
class Code:
    framework: str
    dimension: str
    code_id: str
    label: str
    description: str
    patterns: tuple[Pattern, ...]
    exclusions: tuple[Pattern, ...] = ()
    aliases: tuple[str, ...] = ()  # other words the study reports this code under
    line: int = 0
    # Meaning (MacQueen et al.'s codebook structure), read by the suggester and coder sheets.
    definition: str = ""
    use_when: str = ""
    not_when: str = ""
    examples: tuple[str, ...] = ()


@dataclass(frozen=True)
class Codebook:
    framework: str
    label: str
    path: str
    version: str  # first 12 hex digits of sha256(file bytes)
    dimensions: dict[str, str]  # dimension id -> definition
    codes: tuple[Code, ...]
    dimension_labels: dict[str, str] = field(default_factory=dict)
    placeholders: str | None = DEFAULT_PLACEHOLDERS  # regex of redaction placeholders, or None
