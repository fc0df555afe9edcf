"""Untrusted text → inert text, one function per output target. Pure, no dependencies.

Titles, channels, speaker names, URLs, file names and transcribed words come from outside
(yt-dlp metadata, media tags, users). Each output target has its own active syntax, so each
gets its own neutraliser; call the one for where the string goes, as late as possible:

- `terminal`: a terminal (text output, messages, errors) — escape sequences (CSI, OSC
  `ESC ] … BEL`, DCS, …), C0/C1 controls and bidi overrides;
- `rich`: rich's `console.print` — the above, and `[style]` markup;
- `csv_cell`: CSV cells — the above, and formula prefixes `= + - @` (after blanks, full-width);
- `markdown`: Markdown — the above, raw HTML (`<`, `>`, `&`), inline and block syntax;
- `vtt_text` / `vtt_voice`: WebVTT cue text and `<v name>` — tags as entities, which parsers
  decode back to the name;
- `srt_text`: SRT cue text — `<i>`-style tags and `{\\an8}`-style overrides;
- `html`: HTML text and attributes — `& < > " '`;
- `url`: a URL shown or linked — blanks, controls, quotes, `< >` percent-encoded;
- `json_text`: JSON on stdout — C1 controls and bidi overrides that `ensure_ascii=False` keeps.

Escape sequences are removed whole (they are never legitimate in a title); any other control
character is shown as its Unicode control picture (ESC → ␛), so tampering stays visible.
"""

from __future__ import annotations

import html as _html
import re
from collections.abc import Callable

__all__ = [
    "csv_cell",
    "html",
    "json_text",
    "mark_spans",
    "markdown",
    "rich",
    "srt_text",
    "terminal",
    "url",
    "vtt_text",
    "vtt_voice",
    "with_spans",
    "xml_text",
]

# ECMA-48 sequences, in 7-bit (ESC x) and 8-bit (C1) forms. String commands (OSC, DCS, SOS,
# PM, APC) run to BEL or ST; an unterminated one runs to the end, as a terminal would read it.
_ST = r"(?:\x07|\x1b\\|\x9c|$)"
_SEQUENCE = re.compile(
    r"(?:\x1b\[|\x9b)[0-?]*[ -/]*[@-~]?"  # CSI … final byte
    rf"|(?:\x1b[\]PX^_]|[\x9d\x90\x98\x9e\x9f])[\s\S]*?{_ST}"  # OSC DCS SOS PM APC … ST/BEL
    r"|\x1b[ -/]*[0-~]?"  # other ESC sequences (charset, keypad, …) and a lone ESC
)
# Bidi embedding/override/isolate controls reorder what a terminal shows ("Trojan Source").
_BIDI = re.compile("[\u202a-\u202e\u2066-\u2069]")
_LINE_BREAKS = re.compile(r"\r\n|[\n\r\v\f\x85\u2028\u2029]")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def _picture(m: re.Match[str]) -> str:
    c = ord(m.group())
    if c < 0x20:
        return chr(0x2400 + c)  # ␀ … ␟
    if c == 0x7F:
        return "\u2421"  # ␡
    return "\ufffd"  # C1: no control picture exists


def terminal(text: object, *, multiline: bool = False) -> str:
    """`text` safe to print on a terminal: no escape sequence, no control character.

    One line unless `multiline` (then `\\n` is kept and other line breaks become `\\n`); tabs
    become spaces.
    """
    s = "" if text is None else str(text)
    if not s:
        return s
    s = _SEQUENCE.sub("", s)
    s = _BIDI.sub("", s)
    s = _LINE_BREAKS.sub("\n" if multiline else " ", s)
    s = s.replace("\t", " ")
    if not multiline:
        s = s.replace("\n", " ")
    return _CONTROL.sub(_picture, s)


# Everything a URL may legitimately hold stays as it is (so links keep working); the rest (blanks,
# controls, quotes, angle brackets, backticks) is percent-encoded, which browsers decode back.
_URL_SAFE = "/:?#[]@!$&'()*+,;=%~-._"


def url(link: object) -> str:
    """A URL safe to print and to put in `<…>`, `(…)` or an attribute: unsafe bytes as `%XX`."""
    from urllib.parse import quote

    return quote("" if link is None else str(link), safe=_URL_SAFE)


def rich(text: object) -> str:
    """`terminal` text that rich prints literally: `[bold]` in a title is not markup."""
    from rich.markup import escape

    return escape(terminal(text))


# Spreadsheets run a cell starting with these as a formula (OWASP "CSV injection"); the
# full-width forms are converted by some locales' Excel, and leading blanks are skipped.
_FORMULA_START = tuple("=+-@\uff1d\uff0b\uff0d\uff20")


def csv_cell(value: object) -> object:
    """A CSV cell: strings made inert (numbers pass through, they cannot start a formula)."""
    if not isinstance(value, str):
        return value
    s = terminal(value)
    if s.lstrip().startswith(_FORMULA_START):
        s = "'" + s  # the spreadsheet convention for "this is text"
    return s


def _entities(s: str) -> str:
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


# Only what is active is escaped, so the raw Markdown stays readable: `]` makes a link or image
# only when `(`, `[` or `:` follows (a citation's "[Video]" stays), and `_` inside a word
# (SPEAKER_01) never starts emphasis in CommonMark.
_MD_SPECIAL = re.compile(r"([\\`*|~]|\](?=[(\[:])|(?<![^\W_])_|_(?![^\W_]))")
# What starts a block (heading, list item, setext underline) when it opens a line.
_MD_BLOCK_START = re.compile(r"^(\s*)([#+=-]|\d+(?=[.)]))")


def markdown(text: object) -> str:
    """Markdown text: raw HTML shown as text; no emphasis, link, code, table or block syntax."""
    s = _entities(terminal(text))
    s = _MD_SPECIAL.sub(r"\\\1", s)
    return _MD_BLOCK_START.sub(lambda m: m.group(1) + "\\" + m.group(2), s)


def vtt_text(text: object) -> str:
    """WebVTT cue text: one line (a blank line would end the cue), `& < >` as entities."""
    return _entities(terminal(text))


def vtt_voice(name: object) -> str:
    """The annotation of a `<v …>` span: parsers unescape `&amp; &lt; &gt;` back to the name."""
    return _entities(terminal(name)).strip()


def srt_text(text: object) -> str:
    """SRT cue text: one line; `<i>`-style tags and `{\\an8}` overrides shown, not applied.

    SRT has no escaping: players apply any `<b>`, `<font …>` or `{\\…}` they find. A zero-width
    space after `<` and `{` breaks the tag for the parser and looks the same to a reader; `-->`
    gets one too, so lenient parsers never take the line for a timing line.
    """
    s = terminal(text)
    return s.replace("<", "<\u200b").replace("{", "{\u200b").replace("-->", "--\u200b>")


def html(text: object, *, multiline: bool = False) -> str:
    """HTML text or attribute value (quotes escaped too)."""
    return _html.escape(terminal(text, multiline=multiline), quote=True)


_JSON_UNSAFE = re.compile("[\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


# XML 1.0 allows neither surrogates nor U+FFFE/U+FFFF (lxml refuses them outright).
_XML_INVALID = re.compile("[\ud800-\udfff\ufffe\uffff]")


def xml_text(text: object) -> str:
    """Text for an XML document (EAF, EXMARaLDA, .docx): one line, as `terminal` makes it, and
    nothing XML 1.0 forbids. The XML writer escapes `& < >` itself."""
    return _XML_INVALID.sub("\ufffd", terminal(text))


def json_text(dumped: str) -> str:
    """JSON text (from `json.dumps(..., ensure_ascii=False)`) with C1/bidi chars as `\\uXXXX`.

    `json.dumps` escapes C0 (so ESC is `\\u001b`) but passes C1 controls (8-bit CSI U+009B)
    through; they only occur inside strings, where a `\\u` escape means the same character.
    """
    return _JSON_UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}", dumped)


def with_spans(
    text: str, spans: list[tuple[int, int]], escape: Callable[[str], str] = terminal
) -> tuple[str, list[tuple[int, int]]]:
    """`text` escaped piece by piece, and `spans` moved to the same characters in the result."""
    out: list[str] = []
    new_spans: list[tuple[int, int]] = []
    pos = n = 0
    for s, e in sorted(spans):
        if s < pos:
            continue
        before, inside = escape(text[pos:s]), escape(text[s:e])
        out += [before, inside]
        n += len(before)
        new_spans.append((n, n + len(inside)))
        n += len(inside)
        pos = e
    out.append(escape(text[pos:]))
    return "".join(out), new_spans


def mark_spans(
    text: str,
    spans: list[tuple[int, int]],
    open_mark: str,
    close_mark: str,
    escape: Callable[[str], str],
) -> str:
    """`text` escaped piece by piece, with `spans` wrapped in (trusted) marks."""
    out, pos = [], 0
    for s, e in spans:
        if s < pos:
            continue
        out += [escape(text[pos:s]), open_mark, escape(text[s:e]), close_mark]
        pos = e
    out.append(escape(text[pos:]))
    return "".join(out)
