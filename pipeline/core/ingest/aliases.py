"""School and coach names as respondents type them, reconciled through a per-year alias table.

One school is written many ways ("Lincoln Elementary", "lincoln elem.", "Lincon Elementary");
hashing each spelling would make several schools of one. The year folder holds an alias table
a person keeps, `<landing>/<year>/aliases.csv` (another name: `aliases:` in mapping.yaml):

    field,variant,canonical
    school,Lincoln Elementary,Lincoln Elementary
    school,lincoln elem.,Lincoln Elementary
    coach,Ms. Q,Marisol Quintero

- Names are compared by `name_key`: Unicode NFKC, invisible format characters dropped, case,
  punctuation and spacing ignored ("Lincoln  Elementary." = "lincoln elementary").
- Schools: with school rows in the table, a spelling is known when it is a variant or a
  canonical name; any other spelling is *unknown*: flagged (cell quarantine) with a "did you
  mean", its school_id left empty. Never a new school by accident. Without school rows (no
  table yet), names are taken as written.
- Coaches: the roster's coaches are known (full, first or last name); the table adds variants
  (its canonical names should be roster names). With coaches on the roster, an unknown coach
  is flagged and coach_id left empty.
- When the year has an alias table (even a header-only one), every refresh writes
  `aliases.suggested.csv` next to it: every spelling seen this year with its rows, what it
  resolves to, and a suggested canonical name from fuzzy matching (rapidfuzz) for the unknown
  ones. It has the table's three columns first, so a person can
  review it and copy rows into aliases.csv. Suggestions are never applied automatically:
  "Eastgate" and "Westgate" are one letter apart and two schools.
"""

from __future__ import annotations

import csv
import io
import re
import unicodedata
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from rapidfuzz import fuzz, process

from pipeline.core.ingest.mapping import MappingError

ALIAS_COLUMNS = ("field", "variant", "canonical")
SUGGESTION_COLUMNS = (*ALIAS_COLUMNS, "status", "rows", "score", "note")
ALIAS_FIELDS = ("school", "coach")
SUGGEST_SCORE = 85.0          # rapidfuzz ratio (0-100) for a suggested canonical name
_GENERIC = {"school", "the"}  # dropped when comparing ("Lincoln Elementary School")
_PUNCT = re.compile(r"[^\w\s]+")
_ABBREVIATIONS = {"elem": "elementary", "el": "elementary", "es": "elementary school",
                  "ms": "middle school", "hs": "high school", "sch": "school",
                  "acad": "academy", "ctr": "center", "st": "street", "ave": "avenue"}


class AliasError(MappingError):
    """An alias table that cannot be used. `str(err)` is one line naming the file and row. A
    MappingError: the alias table is part of the year's configuration."""


def name_key(text: str) -> str:
    """The form names are compared in: NFKC, format characters (zero-width space, soft
    hyphen...) dropped, punctuation as space, spacing collapsed, case-folded."""
    text = unicodedata.normalize("NFKC", text or "")
    text = "".join(ch for ch in text if unicodedata.category(ch) != "Cf")
    return " ".join(_PUNCT.sub(" ", text).split()).casefold()


def _match_key(text: str) -> str:
    """name_key with common abbreviations spelled out and generic words dropped (for
    suggestions only)."""
    words = " ".join(_ABBREVIATIONS.get(w, w) for w in name_key(text).split()).split()
    return " ".join(w for w in words if w not in _GENERIC) or name_key(text)


@dataclass
class Aliases:
    """The alias table of one year: per field, name_key(variant) -> canonical name."""

    path: Path | None = None
    variants: dict[str, dict[str, str]] = field(
        default_factory=lambda: {f: {} for f in ALIAS_FIELDS})

    def canonical_names(self, field_: str) -> set[str]:
        return set(self.variants[field_].values())

    def has(self, field_: str) -> bool:
        return bool(self.variants[field_])


def load_aliases(path: str | Path) -> Aliases:
    """The alias table at `path`; an empty one when there is no file."""
    path = Path(path)
    out = Aliases(path=path)
    if not path.is_file():
        return out
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise AliasError(f"{path}: not UTF-8 text (byte offset {exc.start}); save it as "
                         "CSV UTF-8") from None
    reader = csv.DictReader(io.StringIO(text, newline=""))
    missing = [c for c in ALIAS_COLUMNS if c not in (reader.fieldnames or [])]
    if missing:
        raise AliasError(f"{path}: missing column(s) {', '.join(missing)} (expected "
                         f"{','.join(ALIAS_COLUMNS)})")
    for line, row in enumerate(reader, start=2):
        kind = (row["field"] or "").strip().casefold()
        variant, canonical = (row["variant"] or "").strip(), (row["canonical"] or "").strip()
        if not (kind or variant or canonical):
            continue
        if kind not in ALIAS_FIELDS:
            raise AliasError(f"{path}: row {line}: field {row['field']!r} is not one of "
                             f"{', '.join(ALIAS_FIELDS)}")
        if not variant or not canonical:
            raise AliasError(f"{path}: row {line}: variant and canonical are both required")
        table = out.variants[kind]
        for key in (name_key(variant), name_key(canonical)):
            if table.get(key, canonical) != canonical:
                raise AliasError(f"{path}: row {line}: {variant!r} is already an alias of "
                                 f"{table[key]!r}, not {canonical!r}")
            table[key] = canonical
    return out


@dataclass
class Resolved:
    name: str | None          # the canonical name to hash (None: unknown, left empty)
    problem: str | None       # why it is flagged


class NameResolver:
    """Turns a school or coach cell into its canonical name, or says why it cannot."""

    def __init__(self, aliases: Aliases, coaches: list[str]):
        self.aliases = aliases
        self._coach_keys: dict[str, set[str]] = {}
        for full in coaches:
            words = full.split()
            for key in {full, words[0], words[-1]}:
                self._coach_keys.setdefault(name_key(key), set()).add(full)
        self._coaches = sorted(coaches)
        self.seen: dict[str, Counter] = {f: Counter() for f in ALIAS_FIELDS}
        self.outcome: dict[tuple[str, str], Resolved] = {}

    def known(self, field_: str) -> list[str]:
        names = set(self.aliases.canonical_names(field_))
        if field_ == "coach":
            names |= set(self._coaches)
        return sorted(names)

    def suggest(self, field_: str, value: str) -> tuple[str | None, float]:
        """The closest known name (or, for schools without a table, the closest more frequent
        spelling seen this year) and its score; (None, 0) when nothing is close."""
        options = self.known(field_)
        if not options and field_ == "school":
            # no table: a more frequent spelling seen this year, most frequent first
            counts = self.seen[field_]
            cluster = Counter()
            for n, k in counts.items():
                cluster[name_key(n)] += k
            ranked = sorted(counts, key=lambda n: (-counts[n], -cluster[name_key(n)],
                                                   not n.istitle(), n.casefold()))
            options = ranked[:ranked.index(value)] if value in ranked else ranked
        if not options:
            return None, 0.0
        keyed: dict[str, str] = {}
        for o in options:
            keyed.setdefault(_match_key(o), o)
            if field_ == "coach" and len(o.split()) > 1:     # "Marisl" -> "Marisol Quintero"
                for word in (o.split()[0], o.split()[-1]):
                    keyed.setdefault(_match_key(word), o)
        best = process.extractOne(_match_key(value), list(keyed), scorer=fuzz.ratio,
                                  score_cutoff=SUGGEST_SCORE)
        return (keyed[best[0]], float(best[1])) if best else (None, 0.0)

    def resolve(self, field_: str, value: str) -> Resolved:
        """The value's canonical name or problem; the spelling is counted (`seen`)."""
        value = value.strip()
        self.seen[field_][value] += 1
        return self.outcome_of(field_, value)

    def outcome_of(self, field_: str, value: str) -> Resolved:
        """What `value` (stripped) resolves to, without counting it: a pure function of the
        value, the alias table and the roster's coaches, made once."""
        cached = self.outcome.get((field_, value))
        if cached is not None:
            return cached
        key = name_key(value)
        table = self.aliases.variants[field_]
        where = self.aliases.path.name if self.aliases.path else "the alias table"
        if key in table:
            out = Resolved(table[key], None)
        elif field_ == "coach" and len(self._coach_keys.get(key, ())) == 1:
            out = Resolved(next(iter(self._coach_keys[key])), None)
        elif field_ == "coach" and self._coach_keys.get(key):
            names = sorted(self._coach_keys[key])
            out = Resolved(None, f"coach {value!r} could be {' or '.join(map(repr, names))}; "
                           f"add it to {where}; coach_id left empty")
        elif field_ == "coach" and self._coaches:
            guess, _ = self.suggest(field_, value)
            hint = f" (did you mean {guess!r}?)" if guess else ""
            out = Resolved(None, f"coach {value!r} is neither a roster coach nor an alias in "
                           f"{where}{hint}; coach_id left empty")
        elif field_ == "school" and self.aliases.has("school"):
            guess, _ = self.suggest(field_, value)
            hint = f" (did you mean {guess!r}?)" if guess else ""
            out = Resolved(None, f"school {value!r} is not in {where}{hint}; add it as a "
                           "variant or a new school; school_id left empty")
        else:
            out = Resolved(value, None)        # no table to check against: as written
        self.outcome[(field_, value)] = out
        return out

    def suggestions(self) -> list[dict]:
        """Every spelling seen, what it resolved to, and a suggestion for the unknown ones."""
        rows = []
        for field_ in ALIAS_FIELDS:
            for value, n in sorted(self.seen[field_].items(),
                                   key=lambda kv: (-kv[1], kv[0].casefold())):
                out = self.outcome_of(field_, value)
                checked = self.aliases.has(field_) or (field_ == "coach" and self._coaches)
                if out.name is not None and checked:
                    rows.append({"field": field_, "variant": value, "canonical": out.name,
                                 "status": "known", "rows": n, "score": None, "note": ""})
                    continue
                guess, score = self.suggest(field_, value)
                if out.name is not None:          # taken as written: no table yet
                    if guess and name_key(guess) != name_key(value):
                        rows.append({"field": field_, "variant": value, "canonical": guess,
                                     "status": "variant?", "rows": n, "score": round(score),
                                     "note": "looks like a spelling of a more frequent name; "
                                     "check before copying"})
                    else:
                        rows.append({"field": field_, "variant": value, "canonical": value,
                                     "status": "as written", "rows": n, "score": None,
                                     "note": "no alias table yet"})
                    continue
                rows.append({"field": field_, "variant": value, "canonical": guess or "",
                             "status": "unknown", "rows": n,
                             "score": round(score) if guess else None,
                             "note": "fill in canonical (a known name, or the name itself "
                             "for a new one) and copy the row into the alias table"})
        return rows


def suggestions_csv(rows: list[dict]) -> str:
    buf = io.StringIO(newline="")
    writer = csv.DictWriter(buf, fieldnames=SUGGESTION_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: ("" if row.get(k) is None else _formula_safe(str(row[k])))
                         for k in SUGGESTION_COLUMNS})
    return buf.getvalue()


def _formula_safe(text: str) -> str:
    """A cell a spreadsheet would run as a formula gets a leading apostrophe."""
    return "'" + text if text[:1] in ("=", "+", "-", "@") else text
