"""A real Whoosh index on disk, built from hand-made FR/EN/RU transcripts; the real CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from confindex.cli import cli
from confindex.search import analysis, index
from confindex.search.hits import search
from confindex.store.transcript import Provenance, Recording, Transcript, Turn, Word, save
from confindex.store.workspace import Workspace


def make(
    rid: str,
    title: str,
    turns: list[tuple[str, str, str | None]],
    *,
    date: str | None = "2023-10-05",
    channel: str = "ESA Web TV",
    speakers: dict[str, str] | None = None,
    lang: str = "en",
    gap: float = 10.0,
    step: float = 0.5,
) -> Transcript:
    """A transcript whose words start every `step` s; turns are `gap` s apart."""
    out, t = [], 0.0
    for i, (spk, text, tl) in enumerate(turns):
        words = []
        for k, w in enumerate(text.split()):
            s = t + k * step
            words.append(Word(round(s, 2), round(s + step * 0.8, 2), " " + w))
        out.append(Turn(i, t, words[-1].end, spk, text, tl or lang, words))
        t = words[-1].end + gap
    rec = Recording(
        id=rid,
        title=title,
        source=f"https://www.youtube.com/watch?v={rid}",
        kind="youtube",
        extractor="youtube",
        extractor_id=rid,
        channel=channel,
        upload_date=date,
    )
    return Transcript(
        recording=rec,
        provenance=Provenance("test"),
        language=lang,
        duration=t,
        turns=out,
        speakers=speakers or {},
    )


FR = make(
    "frpanel",
    "Diplomatie spatiale européenne",
    [
        ("SPEAKER_00", "Bonjour à tous et bienvenue.", None),
        ("SPEAKER_00", "La diplomatie spatiale et l'espace européen avancent.", None),
        ("SPEAKER_01", "Jean Chrétien a parlé du vaisseau Soïouz hier soir.", None),
        ("SPEAKER_01", "Les étoiles filantes sont diplomatiques ce soir.", None),
    ],
    lang="fr",
    date="2023-11-20",
    speakers={"SPEAKER_00": "Marie Dupont", "SPEAKER_01": "Paul Martin"},
)
EN = make(
    "enpanel",
    "Space policy roundtable",
    [
        ("SPEAKER_00", "Space diplomacy matters for every station we build.", None),
        ("SPEAKER_01", "Diplomacy in space is hard and budgets are running low.", None),
        ("SPEAKER_00", "The launch schedule slipped again this year.", None),
        ("SPEAKER_01", "Budget talks resume after the summer.", None),
    ],
    date="2023-10-05",
    channel="NASA",
    speakers={"SPEAKER_00": "Alice Smith"},
)
RU = make(
    "rupanel",
    "Космическая политика",
    [
        ("SPEAKER_00", "Космическая станция работает хорошо.", None),
        ("SPEAKER_00", "Мы обсуждаем новые станции на орбите.", None),
    ],
    lang="ru",
    date="2022-03-01",
    channel="Roscosmos",
)
ALL = (FR, EN, RU)


def _build(root: Path, items=ALL) -> Workspace:
    ws = Workspace(root).ensure()
    for t in items:
        save(ws, t)
    index.add(ws, list(items))
    return ws


@pytest.fixture(scope="module")
def arch(tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    """One shared read-only archive (built once: tests that write make their own)."""
    return _build(tmp_path_factory.mktemp("arch") / "ws")


def ids(ws: Workspace, q: str, **kw) -> list[str]:
    return [f"{h.recording_id}#{h.turn_id}" for h in search(ws, q, limit=50, **kw).hits]


# ------------------------------------------------------------------------------- analysis


def test_french_stemmer_conflates_diplomatique_and_diplomatie() -> None:
    # What Snowball French really does: both reduce to "diplomat" (so does "diplomatiques").
    assert analysis.normalize("diplomatique", "fr") == "diplomat"
    assert analysis.normalize("diplomatie", "fr") == "diplomat"
    assert analysis.normalize("Étoiles", "fr") == analysis.normalize("etoile", "fr") == "etoil"
    assert analysis.normalize("l'espace") == "espace"
    assert analysis.normalize("Soïouz") == "soiouz"
    # Cyrillic keeps й for the Russian stemmer; ё is written е.
    assert analysis.fold("Космический") == "космический"
    assert analysis.fold("ёлка") == "елка"


def test_french_stemming_and_accent_folding(arch: Workspace) -> None:
    assert set(ids(arch, "diplomatique")) == {"frpanel#1", "frpanel#3"}
    assert ids(arch, "chretien") == ["frpanel#2"]
    assert ids(arch, "CHRÉTIEN") == ["frpanel#2"]
    assert ids(arch, "soiouz") == ["frpanel#2"]
    assert ids(arch, "etoile") == ["frpanel#3"]
    assert ids(arch, "espace") == ["frpanel#1"]  # elision: l'espace
    assert ids(arch, "l'espace") == ["frpanel#1"]


def test_french_query_finds_french_turns_in_mixed_archive(arch: Workspace) -> None:
    hits = search(arch, "diplomatie spatiale").hits
    assert [h.recording_id for h in hits] == ["frpanel"]
    assert hits[0].language == "fr"


def test_russian_stemming(arch: Workspace) -> None:
    assert set(ids(arch, "станции")) == {"rupanel#0", "rupanel#1"}
    assert ids(arch, "космический") == ["rupanel#0"]


def test_english_stemming(arch: Workspace) -> None:
    assert ids(arch, "run") == ["enpanel#1"]
    assert set(ids(arch, "budget")) == {"enpanel#1", "enpanel#3"}


def test_phrase_stems_and_exact_form(arch: Workspace) -> None:
    assert ids(arch, '"space diplomacy"') == ["enpanel#0"]
    assert ids(arch, '"diplomacy space"') == []
    assert ids(arch, '"budgets are running"') == ["enpanel#1"]
    assert ids(arch, '"budget are running"') == ["enpanel#1"]  # a phrase stems, in order
    assert ids(arch, '"budget running are"') == []
    assert ids(arch, '="budget are running"') == []  # ="…" keeps the written form
    assert ids(arch, '="budgets are running"') == ["enpanel#1"]
    assert ids(arch, '"diplomatie spatial"') == ["frpanel#1"]
    # "again this" is an indexed pair of common words; the rest is checked by position.
    assert ids(arch, '"again this"') == ["enpanel#2"]
    assert ids(arch, '"this again"') == []
    assert ids(arch, '"slipped again this year"') == ["enpanel#2"]


def test_fuzzy_and_prefix(arch: Workspace) -> None:
    assert ids(arch, "diplomacie~") == ["frpanel#1"]
    assert ids(arch, "soyouz~2") == ["frpanel#2"]
    assert set(ids(arch, "diplom*")) == {"frpanel#1", "frpanel#3", "enpanel#0", "enpanel#1"}


def test_boolean_operators(arch: Workspace) -> None:
    assert set(ids(arch, "budget OR soiouz")) == {"enpanel#1", "enpanel#3", "frpanel#2"}
    assert ids(arch, "budget -diplomacy") == ["enpanel#3"]
    assert ids(arch, "budget NOT diplomacy") == ["enpanel#3"]
    assert set(ids(arch, "(budget OR launch) summer")) == {"enpanel#3"}


def test_field_filters(arch: Workspace) -> None:
    assert set(ids(arch, "speaker:Dupont")) == {"frpanel#0", "frpanel#1"}
    assert set(ids(arch, 'speaker:"Paul Martin"')) == {"frpanel#2", "frpanel#3"}
    assert set(ids(arch, "diplomacy speaker:SPEAKER_01")) == {"enpanel#1"}
    assert set(ids(arch, "title:roundtable budget")) == {"enpanel#1", "enpanel#3"}
    assert set(ids(arch, "channel:roscosmos")) == {"rupanel#0", "rupanel#1"}
    assert set(ids(arch, "lang:ru")) == {"rupanel#0", "rupanel#1"}
    assert set(ids(arch, "recording:enp budget")) == {"enpanel#1", "enpanel#3"}
    assert set(ids(arch, "-speaker:dupont lang:fr")) == {"frpanel#2", "frpanel#3"}


def test_date_filters(arch: Workspace) -> None:
    by_rec = lambda q: {i.split("#")[0] for i in ids(arch, q)}  # noqa: E731
    assert by_rec("date:2023") == {"frpanel", "enpanel"}
    assert by_rec("date:2023-10") == {"enpanel"}
    assert by_rec("date:2023-10-05") == {"enpanel"}
    assert by_rec("date:2023-10-06") == set()
    assert by_rec("date:2023-11..2023-12") == {"frpanel"}
    assert by_rec("date:2022..2023-10") == {"rupanel", "enpanel"}
    assert by_rec("date:2023-11..") == {"frpanel"}
    assert by_rec("date:..2022") == {"rupanel"}


def test_time_filters(arch: Workspace) -> None:
    # EN turns (words every 0.5 s, 10 s gaps): 0–3.9, 13.9–18.8, 28.8–32.2, 42.2–45.1.
    spans = {h.turn_id: (h.start, h.end) for h in search(arch, "recording:enpanel").hits}
    assert spans == {0: (0.0, 3.9), 1: (13.9, 18.8), 2: (28.8, 32.2), 3: (42.2, 45.1)}
    assert set(ids(arch, "recording:enpanel at:0..10")) == {"enpanel#0"}
    assert set(ids(arch, "recording:enpanel at:12s..20s")) == {"enpanel#1"}
    assert set(ids(arch, "recording:enpanel at:0:16")) == {"enpanel#1"}
    assert set(ids(arch, "recording:enpanel after:40")) == {"enpanel#3"}
    assert set(ids(arch, "recording:enpanel before:10")) == {"enpanel#0"}
    assert ids(arch, "recording:enpanel at:10m..20m") == []


def test_hit_time_link_and_highlight(arch: Workspace) -> None:
    (hit,) = search(arch, "soiouz").hits
    # "Jean Chrétien a parlé du vaisseau Soïouz": word 6 of the turn, 0.5 s apart.
    assert hit.time == pytest.approx(hit.start + 3.0)
    assert hit.link == f"https://youtu.be/frpanel?t={int(hit.start + 3.0)}"
    assert hit.fragment == "Jean Chrétien a parlé du vaisseau **Soïouz** hier soir."
    assert hit.speaker_name == "Paul Martin" and hit.speaker == "SPEAKER_01"
    assert hit.styled("<", ">") == "Jean Chrétien a parlé du vaisseau <Soïouz> hier soir."
    (hit,) = search(arch, '"space diplomacy"').hits
    assert hit.fragment.startswith("**Space diplomacy** matters")


def test_title_boost_and_ties(arch: Workspace) -> None:
    # "space" is in both EN turns 0 and 1; the FR title has "spatiale", not "space".
    hits = search(arch, "station").hits
    assert [h.recording_id for h in hits] == ["enpanel"]
    # Filters only: all scores tie, so date then time order (oldest first).
    order = ids(arch, "date:2022..2023")
    assert order[:2] == ["rupanel#0", "rupanel#1"] and order[2:4] == ["enpanel#0", "enpanel#1"]


def test_paging_group_and_context(arch: Workspace) -> None:
    res = search(arch, "lang:en", limit=2, offset=1)
    assert res.total == 4 and [h.turn_id for h in res.hits] == [1, 2]
    res = search(arch, "diplomacy OR diplomatie", group=True)
    assert {h.recording_id: h.matches for h in res.hits} == {"enpanel": 2, "frpanel": 2}
    assert res.total == 2
    (hit,) = search(arch, "launch", context=1).hits
    assert [c.turn_id for c in hit.before] == [1] and [c.turn_id for c in hit.after] == [3]
    assert hit.after[0].text == "Budget talks resume after the summer."


def test_total_is_exact_unless_whoosh_skipped_blocks() -> None:
    # On a big index Whoosh skips low-scoring blocks and only estimates the total.
    from confindex.search import hits as search_mod

    class Results:
        def __init__(self, exact: bool, scored: int, estimate: int) -> None:
            self.exact, self.scored, self.estimate = exact, scored, estimate

        def has_exact_length(self) -> bool:
            return self.exact

        def __len__(self) -> int:
            return self.estimate

        def scored_length(self) -> int:
            return self.scored

        def estimated_length(self) -> int:
            return self.estimate

    assert search_mod._count(Results(True, 30, 1234), 30) == (1234, True)
    assert search_mod._count(Results(False, 7, 1234), 30) == (7, True)  # heap never filled
    assert search_mod._count(Results(False, 30, 1234), 30) == (1234, False)


# ------------------------------------------------------------------------------- writing


def test_readd_is_idempotent_and_rebuild_equals_incremental(tmp_path: Path) -> None:
    ws = _build(tmp_path / "ws", (FR,))
    for t in (EN, RU):  # separate commits: a multi-segment index, as incremental adds make
        save(ws, t)
        index.add(ws, [t])
    n = index.doc_count(ws)
    assert n == sum(len(t.turns) for t in ALL)
    queries = ["diplomatie", "budget", "станции", "diplomacie~", "speaker:dupont", "date:2023"]
    before = {q: ids(ws, q) for q in queries}
    index.add(ws, [EN, FR])
    assert index.doc_count(ws) == n
    assert {q: ids(ws, q) for q in queries} == before
    assert index.rebuild(ws) == n
    assert index.doc_count(ws) == n
    assert {q: ids(ws, q) for q in queries} == before
    assert index.remove(ws, ["enpanel"]) == len(EN.turns)
    assert ids(ws, "budget") == [] and index.doc_count(ws) == n - len(EN.turns)


def test_readd_replaces_changed_text(tmp_path: Path) -> None:
    ws = _build(tmp_path / "ws", (EN,))
    changed = make(
        "enpanel", "Space policy roundtable", [("SPEAKER_00", "Entirely new words.", None)]
    )
    index.add(ws, [changed])
    assert ids(ws, "budget") == [] and ids(ws, "entirely") == ["enpanel#0"]
    assert index.doc_count(ws) == 1


def test_old_schema_is_a_warning_naming_the_rebuild(tmp_path: Path) -> None:
    """A read never writes: an index of another schema is a one-line warning naming
    `confindex index --rebuild`, and `index --rebuild` brings the hits back."""
    ws = _build(tmp_path / "ws")
    cur = ws.index_dir / index.CURRENT
    d = json.loads(cur.read_text())
    cur.write_text(json.dumps({**d, "schema": index.SCHEMA_VERSION - 1}))
    assert index.needs_rebuild(ws) and not index.exists(ws)
    messages: list[str] = []
    res = search(ws, "soiouz", log=messages.append)
    assert res.hits == []
    assert len(messages) == 1 and "schema" in messages[0]
    assert "confindex index --rebuild" in messages[0]
    assert index.needs_rebuild(ws)  # untouched
    # CLI: the message goes to stderr; `index --rebuild` fixes it.
    cur.write_text(json.dumps({**json.loads(cur.read_text()), "schema": 0}))
    r = CliRunner().invoke(cli, ["search", "-w", str(ws.root), "soiouz"])
    assert r.exit_code == 0 and "confindex index --rebuild" in r.stderr
    assert "Soïouz" not in r.stdout
    r = CliRunner().invoke(cli, ["index", "-w", str(ws.root), "--rebuild"])
    assert r.exit_code == 0, r.output
    r = CliRunner().invoke(cli, ["search", "-w", str(ws.root), "soiouz"])
    assert r.exit_code == 0 and "Soïouz" in r.stdout and not r.stderr


def test_bare_whoosh_index_of_an_older_layout_is_replaced_by_index(tmp_path: Path) -> None:
    from whoosh import fields
    from whoosh import index as windex

    ws = Workspace(tmp_path / "ws").ensure()
    save(ws, FR)
    windex.create_in(str(ws.index_dir), fields.Schema(text=fields.TEXT(stored=True)))
    assert index.needs_rebuild(ws) and "schema 0" in index.stale_message(ws)
    r = CliRunner().invoke(cli, ["search", "-w", str(ws.root), "chretien"])
    assert r.exit_code == 0 and "index --rebuild" in r.stderr and "Chrétien" not in r.stdout
    assert list(ws.index_dir.glob("*.toc"))  # a read leaves the old files alone
    r = CliRunner().invoke(cli, ["index", "-w", str(ws.root), "--rebuild"])
    assert r.exit_code == 0, r.output
    r = CliRunner().invoke(cli, ["search", "-w", str(ws.root), "chretien"])
    assert r.exit_code == 0 and "Chrétien" in r.stdout
    assert not list(ws.index_dir.glob("*.toc"))  # the old files are gone


def test_crashed_rebuild_leaves_the_old_index(tmp_path: Path, monkeypatch) -> None:
    ws = _build(tmp_path / "ws")
    (ws.transcripts / "broken.json").write_text("{not json")  # skipped, not fatal
    n = index.doc_count(ws)

    def boom(*a, **k):
        raise RuntimeError("killed mid-build")

    monkeypatch.setattr(index, "recording_meta", boom)
    with pytest.raises(RuntimeError):
        index.rebuild(ws)
    assert index.doc_count(ws) == n
    assert len([p for p in ws.index_dir.iterdir() if p.is_dir()]) == 1  # temp generation gone
    monkeypatch.undo()
    assert index.rebuild(ws) == n


def test_add_without_index_builds_one(tmp_path: Path) -> None:
    ws = Workspace(tmp_path / "ws").ensure()
    save(ws, FR)
    assert not index.exists(ws)
    assert index.add(ws, [EN]) == len(FR.turns) + len(EN.turns)  # EN need not be saved yet
    assert index.exists(ws)
    assert search(ws, "nothing-here-at-all").total == 0


# ------------------------------------------------------------------------------- CLI


def run(ws: Workspace, *args: str):
    return CliRunner().invoke(cli, [args[0], "-w", str(ws.root), *args[1:]])


HOSTILE = [
    '"unbalanced',
    "NOT",
    "budget NOT",
    "-budget",
    "x" * 10_000,
    "budget\x00drop",
    "speaker:",
    "",
    "   ",
    "(budget",
    "budget)",
    "foo:bar",
    "date:2023-13",
    "at:soon",
    "a*",
    "*",
    "ab~",
    "budget OR",
    "speaker:dupont OR at:10m",
]


@pytest.mark.parametrize("q", HOSTILE)
def test_hostile_queries_exit_2_with_one_line(arch: Workspace, q: str) -> None:
    r = run(arch, "search", q)
    assert r.exit_code == 2, r.output
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ")
    assert r.stdout == ""


def test_cli_search_text_fits_80_columns(arch: Workspace) -> None:
    r = run(arch, "search", "diplomatie", "--context", "1")
    assert r.exit_code == 0, r.output
    assert "**diplomatie**" in r.stdout and "https://youtu.be/frpanel?t=" in r.stdout
    assert all(len(line) <= 80 for line in r.stdout.splitlines())
    assert "Marie Dupont" in r.stdout and "[00:00:" in r.stdout


def test_cli_search_formats(arch: Workspace) -> None:
    r = run(arch, "search", "budget", "--json")
    data = json.loads(r.stdout)
    assert data["total"] == 2 and {h["recording_id"] for h in data["hits"]} == {"enpanel"}
    assert data["hits"][0]["fragment"].count("**") == 2
    r = run(arch, "search", "budget", "--format", "csv", "--limit", "1")
    assert r.stdout.splitlines()[0].startswith("rank,recording_id,title")
    assert len(r.stdout.strip().splitlines()) == 2
    r = run(arch, "search", "budget", "--format", "md", "--cite")
    assert r.stdout.startswith("## 2 hits") and "(https://youtu.be/enpanel?t=" in r.stdout
    assert "[Video]" in r.stdout
    r = run(arch, "search", "zzzz")
    assert r.exit_code == 0 and "No hits" in r.stdout


def test_cli_show_cite_export_index_stats(arch: Workspace, tmp_path: Path) -> None:
    r = run(arch, "show", "enp", "--at", "0:16", "--around", "1")
    assert r.exit_code == 0, r.output
    assert ">[00:00:13] SPEAKER_01" in r.stdout and "Budget talks" not in r.stdout
    r = run(arch, "cite", "frpanel", "--at", "0:30", "--style", "bibtex")
    assert r.exit_code == 0 and r.stdout.startswith("@misc{martin2023diplomatie_")
    r = run(arch, "cite", "frpanel", "--at", "9:99")
    assert r.exit_code == 1 and "cannot read '9:99' as a time" in r.stderr
    r = run(arch, "cite", "frpanel", "--at", "2h")
    assert r.exit_code == 1 and "past the end of frpanel" in r.stderr
    r = run(arch, "cite", "frpanel", "--at", "0:30", "--style", "ris")
    assert r.stdout.startswith("TY  - VIDEO\nID  - martin2023diplomatie_") and "ER  - " in r.stdout
    r = run(arch, "export", "frpanel", "--format", "json")
    assert json.loads(r.stdout)["recording"]["id"] == "frpanel"
    r = run(arch, "export", "--all", "--format", "json", "-o", str(tmp_path / "out"))
    assert r.exit_code == 0 and len(list((tmp_path / "out").glob("*.json"))) == 3
    r = run(arch, "index")
    assert r.exit_code == 0 and "up to date" in r.stdout
    r = run(arch, "stats", "--json")
    s = json.loads(r.stdout)
    assert (s["recordings"], s["turns"]) == (3, 10)
    assert s["languages"] == {"fr": 1, "en": 1, "ru": 1} and s["speakers"] == 5
    r = run(arch, "show", "nope")
    assert r.exit_code == 1 and r.stderr.startswith("Error: ")
