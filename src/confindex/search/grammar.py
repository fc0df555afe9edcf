"""The query language: our own tokenizer and parser, from text to a `Parsed` tree.

Whoosh's QueryParser is lenient (it silently drops what it cannot read), so we parse ourselves
and fail with one precise line instead. Grammar:

    query   := or ( "OR" or )*            ·  AND binds tighter than OR
    or      := unary ( ["AND"] unary )*
    unary   := ("NOT" | "-") unary | "(" query ")" | field ":" value | "phrase" | ="phrase"
             | word[~N] | word*

Fields: speaker: title: channel: lang: recording: date: at: after: before: flag: verified:
chapter:.

Words and "phrases" match inflected forms (stems, accents, elision), phrases in order and
adjacent; ="…" keeps the exact written form. What a word matches is decided in compile.py
(numbers as digits or words, spellings); ranking weights in ranking.py.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from confindex.errors import ConfindexError, QueryError
from confindex.timefmt import parse_time

MAX_QUERY_CHARS = 1000
MAX_TERMS = 64
MAX_NESTING = 32  # parentheses; 400 levels overflowed Python's recursion limit
MAX_FUZZY = 2
FIELDS = (
    "speaker",
    "title",
    "channel",
    "lang",
    "recording",
    "date",
    "at",
    "after",
    "before",
    "flag",
    "verified",
    "chapter",
)
TIME_FIELDS = ("at", "after", "before")

HINT = 'try: diplomatie spatiale   "exact phrase"   speaker:Dupont date:2023   (see search --help)'


# ---------------------------------------------------------------------------------------------
# AST


@dataclass(frozen=True)
class Word:
    text: str
    fuzzy: int = 0  # max edit distance, 0 = none
    prefix: bool = False


@dataclass(frozen=True)
class Phrase:
    text: str
    exact: bool = False  # ="…": the written form only (no stems)


@dataclass(frozen=True)
class Field:
    name: str
    value: str
    quoted: bool = False


@dataclass(frozen=True)
class Not:
    node: Node


@dataclass(frozen=True)
class And:
    nodes: tuple[Node, ...]


@dataclass(frozen=True)
class Or:
    nodes: tuple[Node, ...]


Node = Word | Phrase | Field | Not | And | Or


@dataclass
class Parsed:
    text: str
    node: Node
    time_ranges: list[tuple[float, float | None]]  # exact (start, end) windows, ANDed


# ---------------------------------------------------------------------------------------------
# Tokenizer


@dataclass(frozen=True)
class _Tok:
    kind: str  # WORD PHRASE FIELD LP RP AND OR NOT NEG
    value: str = ""
    extra: str = ""  # FIELD: the value; WORD: the ~/* suffix
    quoted: bool = False
    pos: int = 0


def _fail(msg: str) -> QueryError:
    return QueryError(f"bad query: {msg}; {HINT}")


def _validate(text: str) -> str:
    if len(text) > MAX_QUERY_CHARS:
        raise _fail(f"too long ({len(text)} characters, at most {MAX_QUERY_CHARS})")
    for ch in text:
        if ch in "\t\n\r":
            continue
        cat = unicodedata.category(ch)
        if cat in ("Cc", "Cs", "Co") or (cat == "Cf" and ch not in "\u200d\u200c"):
            raise _fail(f"control character U+{ord(ch):04X} is not allowed")
    text = " ".join(text.split())
    if not text:
        raise _fail("the query is empty")
    return text


_FIELD_RE = re.compile(r"([A-Za-z]+):(.*)", re.S)


def _tokenize(text: str) -> list[_Tok]:
    toks: list[_Tok] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c.isspace():
            i += 1
            continue
        if c in "()":
            toks.append(_Tok("LP" if c == "(" else "RP", pos=i))
            i += 1
            continue
        exact = c == "=" and i + 1 < n and text[i + 1] == '"'
        if c == '"' or exact:
            q = i + 1 if exact else i
            j = text.find('"', q + 1)
            if j < 0:
                raise _fail(f'unbalanced quote at character {q + 1} (close it with ")')
            toks.append(_Tok("PHRASE", text[q + 1 : j], quoted=exact, pos=i))
            i = j + 1
            continue
        if c == "-" and i + 1 < n and not text[i + 1].isspace() and text[i + 1] != ")":
            toks.append(_Tok("NEG", pos=i))
            i += 1
            continue
        j = i
        while j < n and not text[j].isspace() and text[j] not in '()"':
            j += 1
        word = text[i:j]
        m = _FIELD_RE.fullmatch(word)
        if m and m.group(1).lower() in FIELDS:
            name, value = m.group(1).lower(), m.group(2)
            quoted = False
            if not value and j < n and text[j] == '"':
                k = text.find('"', j + 1)
                if k < 0:
                    raise _fail(f'unbalanced quote after {name}: (close it with ")')
                value, quoted, j = text[j + 1 : k], True, k + 1
            if not value.strip():
                raise _fail(f"{name}: needs a value, e.g. {_FIELD_EXAMPLES[name]}")
            toks.append(_Tok("FIELD", name, value.strip(), quoted=quoted, pos=i))
        elif m and m.group(1).isalpha() and not m.group(2)[:1].isdigit():
            raise _fail(f"unknown field {m.group(1)}: (fields: {', '.join(FIELDS)})")
        elif word in ("AND", "OR", "NOT"):
            toks.append(_Tok(word, pos=i))
        elif word == "-":
            raise _fail("a lone - must be followed by a word, e.g. -budget")
        else:
            toks.append(_Tok("WORD", word, pos=i))
        i = j
    return toks


_FIELD_EXAMPLES = {
    "speaker": "speaker:Dupont or speaker:SPEAKER_01",
    "title": 'title:"space diplomacy"',
    "channel": "channel:ESA",
    "lang": "lang:fr",
    "recording": "recording:3f2a",
    "date": "date:2023-10..2023-12",
    "at": "at:10m..20m",
    "after": "after:1h",
    "before": "before:30m",
    "chapter": 'chapter:smartphones or chapter:"space station"',
    "flag": "flag:loop, flag:lowconf, flag:nonspeech, flag:missed or -flag:any",
    "verified": "verified:yes (turns with words a user corrected) or verified:no",
}


# ---------------------------------------------------------------------------------------------
# Parser


class _Parser:
    def __init__(self, toks: list[_Tok]) -> None:
        self.toks = toks
        self.i = 0

    def peek(self) -> _Tok | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def take(self) -> _Tok:
        t = self.toks[self.i]
        self.i += 1
        return t

    def parse(self) -> Node:
        node = self.or_expr()
        t = self.peek()
        if t is not None:
            raise _fail("unbalanced ) " if t.kind == "RP" else f"unexpected {t.kind}")
        return node

    def or_expr(self) -> Node:
        nodes = [self.and_expr()]
        while (t := self.peek()) is not None and t.kind == "OR":
            self.take()
            if self.peek() is None or self.peek().kind in ("RP", "OR", "AND"):  # type: ignore[union-attr]
                raise _fail("OR needs a word on both sides")
            nodes.append(self.and_expr())
        return nodes[0] if len(nodes) == 1 else Or(tuple(nodes))

    def and_expr(self) -> Node:
        nodes = [self.unary()]
        while (t := self.peek()) is not None and t.kind not in ("OR", "RP"):
            if t.kind == "AND":
                self.take()
                if self.peek() is None or self.peek().kind in ("RP", "OR", "AND"):  # type: ignore[union-attr]
                    raise _fail("AND needs a word on both sides")
            nodes.append(self.unary())
        return nodes[0] if len(nodes) == 1 else And(tuple(nodes))

    def unary(self) -> Node:
        t = self.peek()
        if t is None:
            raise _fail("the query ends too early")
        if t.kind in ("NOT", "NEG"):
            self.take()
            nxt = self.peek()
            if nxt is None or nxt.kind in ("RP", "OR", "AND", "NOT", "NEG"):
                raise _fail("NOT must be followed by a word, e.g. budget NOT mars")
            return Not(self.unary())
        if t.kind == "LP":
            self.take()
            if self.peek() is not None and self.peek().kind == "RP":  # type: ignore[union-attr]
                raise _fail("empty parentheses")
            node = self.or_expr()
            if self.peek() is None or self.take().kind != "RP":
                raise _fail("unbalanced ( (close it with ))")
            return node
        if t.kind == "RP":
            raise _fail("unbalanced )")
        if t.kind in ("AND", "OR"):
            raise _fail(f"{t.kind} needs a word on both sides")
        self.take()
        if t.kind == "PHRASE":
            if not t.value.strip():
                raise _fail('empty phrase ""')
            return Phrase(t.value, exact=t.quoted)
        if t.kind == "FIELD":
            return Field(t.value, t.extra, t.quoted)
        return _word(t.value)


# An elided article typed with a space (l humanite, d accord, qu il): the index strips "l'"
# (index.strip_elision), so a lone "l" would match nothing; it is read as l'humanite.
_ELIDED_SPACE = re.compile(
    r"(?<![\w'’])((?i:l|d|j|n|qu)) (?!(?:AND|OR|NOT)\b)(?=(?i:[aeiouyhàâäéèêëîïôöûü]))"
)
_FUZZY_RE = re.compile(r"(.+?)~(\d?)")


def _word(raw: str) -> Word:
    m = _FUZZY_RE.fullmatch(raw)
    if m:
        dist = int(m.group(2) or 1)
        if not 1 <= dist <= MAX_FUZZY:
            raise _fail(f"fuzzy distance must be 1 or 2 ({raw})")
        if len(m.group(1)) < 3:
            raise _fail(f"a fuzzy word needs at least 3 letters ({raw})")
        return Word(m.group(1), fuzzy=dist)
    if raw.endswith("*"):
        stem = raw.rstrip("*")
        if "*" in stem or "?" in stem:
            raise _fail(f"only a trailing * is supported ({raw})")
        if len(stem) < 2:
            raise _fail(f"a prefix needs at least 2 letters before * ({raw})")
        return Word(stem, prefix=True)
    if "*" in raw:
        raise _fail(f"only a trailing * is supported ({raw})")
    if "~" in raw:
        raise _fail(f"write fuzzy words as word~ or word~2 ({raw})")
    return Word(raw)


# ---------------------------------------------------------------------------------------------
# Public API


def parse(text: str) -> Parsed:
    """Parse a query string; QueryError (exit 2) with a one-line hint when it is malformed."""
    if not isinstance(text, str):
        raise _fail("the query must be text")
    text = _validate(text)
    toks = _tokenize(_ELIDED_SPACE.sub(r"\1'", text))
    if sum(1 for t in toks if t.kind in ("WORD", "PHRASE", "FIELD")) > MAX_TERMS:
        raise _fail(f"too many words (at most {MAX_TERMS})")
    depth = deepest = 0
    for t in toks:
        depth += 1 if t.kind == "LP" else -1 if t.kind == "RP" else 0
        deepest = max(deepest, depth)
    if deepest > MAX_NESTING:  # the parser and the query tree recurse once per level
        raise _fail(f"nested too deeply ({deepest} levels of parentheses, at most {MAX_NESTING})")
    node = _Parser(toks).parse()
    if not _has_positive(node):
        raise _fail("the query only excludes things; add a word or a field to search for")
    return Parsed(text, node, _time_ranges(node))


def _has_positive(node: Node) -> bool:
    if isinstance(node, Not):
        return False
    if isinstance(node, And):
        return any(_has_positive(n) for n in node.nodes)
    if isinstance(node, Or):
        return all(_has_positive(n) for n in node.nodes)
    return True


def _time_ranges(node: Node) -> list[tuple[float, float | None]]:
    """Exact time windows of top-level at:/after:/before: (only allowed ANDed at top level)."""
    top = node.nodes if isinstance(node, And) else (node,)
    ranges = []
    for n in top:
        if isinstance(n, Field) and n.name in TIME_FIELDS:
            ranges.append(parse_time_range(n.name, n.value))
        elif _contains_time(n):
            raise _fail("at:/after:/before: cannot be used inside OR, NOT or parentheses")
    return ranges


def _contains_time(node: Node) -> bool:
    if isinstance(node, Field):
        return node.name in TIME_FIELDS
    if isinstance(node, Not):
        return _contains_time(node.node)
    if isinstance(node, And | Or):
        return any(_contains_time(n) for n in node.nodes)
    return False


def _time(value: str, name: str) -> float:
    try:
        return parse_time(value)
    except ConfindexError:
        raise _fail(
            f"cannot read {value!r} as a time in {name}: (try 754, 12:34, 10m, 1h2m)"
        ) from None


def parse_time_range(name: str, value: str) -> tuple[float, float | None]:
    """`at:10m..20m` → (600, 1200); `at:12:34` → (754, 754); after:X → (X, None)."""
    if name == "after":
        return (_time(value, name), None)
    if name == "before":
        return (0.0, _time(value, name))
    if ".." in value:
        lo_s, _, hi_s = value.partition("..")
        lo = _time(lo_s, name) if lo_s else 0.0
        hi = _time(hi_s, name) if hi_s else None
        if hi is not None and hi < lo:
            raise _fail(f"at:{value} ends before it starts")
        return (lo, hi)
    t = _time(value, name)
    return (t, t)


_DATE_RE = re.compile(r"\d{4}(-(0[1-9]|1[0-2])(-(0[1-9]|[12]\d|3[01]))?)?")


def parse_date_range(value: str) -> tuple[str | None, str | None]:
    """`2023-10..2023-12` → ('2023-10', '2023-12-99'): inclusive bounds over ISO date terms."""
    if ".." in value:
        lo, _, hi = value.partition("..")
    else:
        lo = hi = value
    for part in (lo, hi):
        if part and not _DATE_RE.fullmatch(part):
            raise _fail(f"cannot read date {part!r} (use 2023, 2023-10, 2023-10-05 or a..b)")
    if not lo and not hi:
        raise _fail("date: needs a year, month, day or range, e.g. date:2023-10..2023-12")
    if lo and hi and lo[: len(hi)] > hi:
        raise _fail(f"date:{value} ends before it starts")
    hi_bound = None
    if hi:
        hi_bound = {4: hi + "-99", 7: hi + "-99"}.get(len(hi), hi)
    return (lo or None, hi_bound)
