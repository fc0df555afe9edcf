"""Search benchmark: a synthetic FR/EN/RU archive, Whoosh (confindex) vs SQLite FTS5.

    python bench/search.py                  # 500,000 turns in 1,000 recordings, cached in /tmp
    python bench/search.py --turns 20000    # a quick run
    python bench/search.py /data/cache --queries 200

The archive is built ONCE into CACHE/confindex-bench-<turns>/ (a workspace: index/ and an
FTS5 database, no transcript JSON: the bench feeds generated transcripts straight to
`index.build`, the same code `rebuild` runs). Later runs reuse it and only measure queries.

Printed: build time, index size, searcher open time, p50/p95 latency of top-10 searches with
highlights, mentions and links (term, AND, phrase — inflected forms, in order —, exact phrase
`="…"`, fuzzy, filtered by speaker + date range), the time to
add one 1-hour recording (~600 turns) to the big index, and the same queries on FTS5.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sqlite3
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from confindex.search import hits as search
from confindex.search import index
from confindex.store.transcript import Provenance, Recording, Transcript, Turn, Word
from confindex.store.workspace import Workspace

SEED = 20261124
TURNS_PER_HOUR = 500  # turns per recording (~1.4 h of synthetic speech each, ~10 s per turn)
WORDS_PER_SECOND = 2.6

EN_REAL = [
    "space",
    "diplomacy",
    "station",
    "launch",
    "budget",
    "orbit",
    "satellite",
    "mission",
    "agency",
    "policy",
    "cooperation",
    "treaty",
    "research",
    "science",
    "climate",
    "data",
    "rocket",
    "engine",
    "crew",
    "astronaut",
    "moon",
    "mars",
    "europe",
    "partner",
    "industry",
    "security",
    "debris",
    "spectrum",
    "navigation",
    "weather",
    "telescope",
    "funding",
    "commercial",
    "program",
    "international",
    "exploration",
    "capsule",
    "module",
    "docking",
    "lunar",
    "habitat",
    "radiation",
    "observation",
    "earth",
    "governance",
    "regulation",
    "frequency",
    "insurance",
    "liability",
    "market",
    "startup",
    "investment",
    "defense",
]
EN_STOP = [
    "the",
    "of",
    "and",
    "to",
    "in",
    "is",
    "that",
    "we",
    "it",
    "for",
    "this",
    "on",
    "are",
    "with",
    "be",
    "as",
    "have",
    "our",
    "at",
    "not",
    "but",
    "they",
    "what",
    "so",
    "about",
    "very",
    "can",
    "will",
    "there",
    "think",
    "more",
]
FR_REAL = [
    "spatiale",
    "diplomatie",
    "diplomatique",
    "station",
    "lanceur",
    "budget",
    "orbite",
    "satellite",
    "mission",
    "agence",
    "politique",
    "coopération",
    "traité",
    "recherche",
    "science",
    "climat",
    "données",
    "fusée",
    "moteur",
    "équipage",
    "astronaute",
    "lune",
    "étoile",
    "européen",
    "partenaire",
    "industrie",
    "sécurité",
    "débris",
    "navigation",
    "télescope",
    "financement",
    "exploration",
    "capsule",
    "amarrage",
    "habitat",
    "rayonnement",
    "observation",
    "terre",
    "gouvernance",
    "réglementation",
    "fréquence",
    "assurance",
    "marché",
    "investissement",
    "défense",
    "Soïouz",
    "Chrétien",
    "ministre",
]
FR_STOP = [
    "la",
    "le",
    "les",
    "de",
    "des",
    "et",
    "à",
    "en",
    "un",
    "une",
    "que",
    "qui",
    "nous",
    "est",
    "pour",
    "dans",
    "sur",
    "pas",
    "avec",
    "ce",
    "il",
    "sont",
    "plus",
    "mais",
    "comme",
    "très",
    "aussi",
]
RU_REAL = [
    "космос",
    "станция",
    "станции",
    "космическая",
    "орбита",
    "спутник",
    "миссия",
    "агентство",
    "политика",
    "сотрудничество",
    "договор",
    "исследование",
    "наука",
    "климат",
    "данные",
    "ракета",
    "двигатель",
    "экипаж",
    "космонавт",
    "луна",
    "Союз",
    "Европа",
    "партнер",
    "промышленность",
    "безопасность",
    "мусор",
    "навигация",
    "телескоп",
    "финансирование",
]
RU_STOP = [
    "и",
    "в",
    "не",
    "на",
    "что",
    "мы",
    "это",
    "как",
    "с",
    "по",
    "но",
    "они",
    "для",
    "все",
    "так",
]

SYLLABLES = {
    "en": [
        "ka",
        "tor",
        "mi",
        "len",
        "dra",
        "sion",
        "pro",
        "ver",
        "tan",
        "gel",
        "mor",
        "lis",
        "ben",
        "cat",
        "rel",
        "pha",
        "nu",
        "sto",
        "vin",
        "gra",
    ],
    "fr": [
        "ré",
        "tion",
        "eau",
        "ique",
        "ment",
        "lé",
        "va",
        "par",
        "cou",
        "mé",
        "gre",
        "noi",
        "bal",
        "ché",
        "tou",
        "lan",
        "fri",
        "vé",
        "que",
        "son",
    ],
    "ru": [
        "ка",
        "про",
        "ни",
        "ста",
        "ль",
        "ва",
        "ро",
        "те",
        "до",
        "ми",
        "ры",
        "на",
        "го",
        "ско",
        "вер",
        "бо",
        "ле",
        "ту",
        "жи",
        "ча",
    ],
}
FIRST = [
    "Marie",
    "Paul",
    "Alice",
    "Jean",
    "Olga",
    "Ivan",
    "Sophie",
    "Pierre",
    "Anna",
    "John",
    "Maria",
    "Louis",
    "Elena",
    "Thomas",
    "Claire",
    "Sergei",
    "Emma",
    "Lucas",
    "Nadia",
    "Victor",
    "Irina",
    "Hugo",
    "Laura",
    "Mikhail",
    "Julie",
    "David",
    "Sarah",
    "Pavel",
    "Camille",
]
LAST = [
    "Dupont",
    "Martin",
    "Smith",
    "Petrov",
    "Bernard",
    "Ivanova",
    "Durand",
    "Johnson",
    "Leroy",
    "Sokolov",
    "Moreau",
    "Brown",
    "Fournier",
    "Popov",
    "Girard",
    "Wilson",
    "Bonnet",
    "Lebedev",
    "Lambert",
    "Taylor",
    "Fontaine",
    "Kozlov",
    "Rousseau",
    "Clark",
    "Vincent",
    "Novikov",
    "Muller",
    "Garnier",
    "Morozov",
    "Faure",
    "Evans",
    "Andre",
    "Volkov",
    "Mercier",
    "Walker",
]
CHANNELS = [
    f"{n} {k}"
    for n in ("ESA", "NASA", "CNES", "Roscosmos", "UNOOSA")
    for k in ("TV", "Live", "Talks", "Web", "Events", "Forum")
]


@dataclass
class Lang:
    code: str
    words: list[str]
    cum: np.ndarray  # cumulative Zipf weights
    topical: list[str]  # real, mid-frequency words for queries


def make_lang(code: str, real: list[str], stop: list[str], rng: random.Random, size: int) -> Lang:
    syl = SYLLABLES[code]
    synth: set[str] = set()
    while len(synth) < size:
        synth.add("".join(rng.choice(syl) for _ in range(rng.randint(2, 4))))
    synth_l = sorted(synth)
    rng.shuffle(synth_l)
    # Stop words on top, real topical words spread over ranks 20–400, synthetic words after.
    words = list(stop)
    rest = synth_l
    for i, w in enumerate(real):
        pos = 20 + i * 380 // max(1, len(real))
        while len(words) < pos and rest:
            words.append(rest.pop())
        words.append(w)
    words += rest
    ranks = np.arange(1, len(words) + 1, dtype=np.float64)
    cum = np.cumsum(1.0 / ranks**1.07)
    return Lang(code, words, cum / cum[-1], [w for w in real])


class Corpus:
    """Deterministic synthetic recordings: 1 h each, 2–6 speakers, mostly one language."""

    def __init__(self, turns: int, seed: int = SEED) -> None:
        rng = random.Random(seed)
        self.langs = {
            "en": make_lang("en", EN_REAL, EN_STOP, rng, 15000),
            "fr": make_lang("fr", FR_REAL, FR_STOP, rng, 15000),
            "ru": make_lang("ru", RU_REAL, RU_STOP, rng, 12000),
        }
        self.turns = turns
        self.recordings = max(1, turns // TURNS_PER_HOUR)
        self.samples: list[dict] = []  # a few turns per recording, to build queries that hit

    def recording(self, i: int, turns: int = TURNS_PER_HOUR) -> Transcript:
        rng = random.Random(SEED * 7 + i)
        nrng = np.random.default_rng(SEED + i)
        main = rng.choices(["en", "fr", "ru"], weights=[6, 3, 1])[0]
        nspk = rng.randint(2, 6)
        labels = [f"SPEAKER_{k:02d}" for k in range(nspk)]
        names = {
            lb: f"{rng.choice(FIRST)} {rng.choice(LAST)}" for lb in labels if rng.random() < 0.8
        }
        day = rng.randint(0, 11 * 365)
        date = time.strftime("%Y-%m-%d", time.gmtime(1420070400 + day * 86400))
        lang = self.langs[main]
        title_idx = np.searchsorted(lang.cum, nrng.random(rng.randint(3, 6)))
        title = " ".join(lang.words[j] for j in title_idx).capitalize()
        out, t = [], 0.0
        lengths = nrng.integers(5, 36, size=turns)
        for k in range(turns):
            tl = main if rng.random() < 0.9 else rng.choice(["en", "fr", "ru"])
            L = self.langs[tl]
            idx = np.searchsorted(L.cum, nrng.random(int(lengths[k])))
            texts = [L.words[j] for j in idx]
            words, s = [], t
            for w in texts:
                d = len(w) / (WORDS_PER_SECOND * 5.5)
                words.append(Word(round(s, 2), round(s + d, 2), " " + w))
                s += d + 0.05
            spk = labels[k % nspk] if rng.random() < 0.7 else rng.choice(labels)
            text = " ".join(texts)
            out.append(Turn(k, t, words[-1].end, spk, text, tl, words))
            if k % 97 == 3:
                self.samples.append(
                    {
                        "rid": f"rec{i:05d}",
                        "lang": tl,
                        "words": texts,
                        "speaker": names.get(spk),
                        "date": date,
                    }
                )
            t = words[-1].end + 0.6
        rec = Recording(
            id=f"rec{i:05d}",
            title=title,
            source=f"https://www.youtube.com/watch?v=v{i:010d}",
            kind="youtube",
            extractor="youtube",
            extractor_id=f"v{i:010d}",
            channel=rng.choice(CHANNELS),
            upload_date=date,
        )
        return Transcript(
            recording=rec,
            provenance=Provenance("bench"),
            language=main,
            duration=t,
            turns=out,
            speakers=names,
        )

    def __iter__(self) -> Iterator[Transcript]:
        left = self.turns
        for i in range(self.recordings):
            n = TURNS_PER_HOUR if i < self.recordings - 1 else left
            left -= n
            yield self.recording(i, n)


# ---------------------------------------------------------------------------------------------


def fts_build(db: Path, corpus: Corpus) -> float:
    t0 = time.perf_counter()
    con = sqlite3.connect(db)
    con.execute(
        "CREATE VIRTUAL TABLE turns USING fts5(text, speaker_name, title, rid UNINDEXED,"
        " date UNINDEXED, start UNINDEXED, tokenize='unicode61 remove_diacritics 2')"
    )
    for t in corpus:
        con.executemany(
            "INSERT INTO turns VALUES (?,?,?,?,?,?)",
            [
                (
                    tn.text,
                    t.speaker_name(tn.speaker),
                    t.recording.title,
                    t.id,
                    t.recording.upload_date,
                    tn.start,
                )
                for tn in t.turns
            ],
        )
    con.commit()
    con.close()
    return time.perf_counter() - t0


def make_queries(corpus: Corpus, n: int) -> dict[str, list[tuple[str, str]]]:
    """(confindex query, FTS5 MATCH) pairs per type, drawn from real turns so they hit."""
    rng = random.Random(SEED + 1)
    samples = corpus.samples
    q: dict[str, list[tuple[str, str]]] = {
        k: [] for k in ("term", "and", "phrase", "exact", "fuzzy", "filtered")
    }

    def topical(lang: str) -> str:
        return rng.choice(corpus.langs[lang].topical).lower()

    def fts(w: str) -> str:
        return '"' + w.replace('"', "") + '"'

    for _ in range(n):
        s = rng.choice(samples)
        w = topical(s["lang"])
        q["term"].append((w, fts(w)))
        a, b = topical(s["lang"]), topical(s["lang"])
        q["and"].append((f"{a} {b}", f"{fts(a)} AND {fts(b)}"))
        ws = s["words"]
        k = rng.randrange(len(ws) - 1)
        q["phrase"].append((f'"{ws[k]} {ws[k + 1]}"', f'"{ws[k]} {ws[k + 1]}"'))
        # ="…": the written form only (before issue 11, every quoted phrase was this).
        q["exact"].append((f'="{ws[k]} {ws[k + 1]}"', f'"{ws[k]} {ws[k + 1]}"'))
        w = rng.choice([x for x in corpus.langs[s["lang"]].topical if len(x) >= 6]).lower()
        i = rng.randrange(1, len(w))
        typo = w[:i] + ("a" if w[i] != "a" else "e") + w[i + 1 :]
        q["fuzzy"].append((f"{typo}~", ""))
    named = [s for s in samples if s["speaker"]]
    for _ in range(n):
        s = rng.choice(named)
        w = rng.choice(s["words"][:8])
        last = s["speaker"].split()[-1]
        y, m = int(s["date"][:4]), int(s["date"][5:7])
        lo = f"{y}-{m:02d}"
        y2, m2 = (y, m + 2) if m <= 10 else (y + 1, m - 10)
        hi = f"{y2}-{m2:02d}"
        q["filtered"].append(
            (
                f"{w} speaker:{last} date:{lo}..{hi}",
                f"text:{fts(w)} AND speaker_name:{fts(last)}|{lo}|{hi}-99",
            )
        )
    return q


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, round(p / 100 * (len(xs) - 1)))]


def timed(fn: Callable[[], object], reps: list[float], cpu: list[float] | None = None) -> object:
    """Run fn; append its wall ms to reps and its CPU ms to cpu (the cores are shared)."""
    c0, t0 = time.process_time(), time.perf_counter()
    out = fn()
    reps.append((time.perf_counter() - t0) * 1000)
    if cpu is not None:
        cpu.append((time.process_time() - c0) * 1000)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("cache", nargs="?", default="/tmp", help="where the built archive is kept")
    ap.add_argument("--turns", type=int, default=500_000)
    ap.add_argument("--queries", type=int, default=100, help="queries per type")
    ap.add_argument("--no-fts", action="store_true", help="skip the SQLite FTS5 reference")
    ap.add_argument("--build-only", action="store_true", help="build the cache, measure nothing")
    args = ap.parse_args()

    root = Path(args.cache) / f"confindex-bench-{args.turns}"
    ws = Workspace(root).ensure()
    meta_path = root / "bench-build.json"
    corpus = Corpus(args.turns)
    meta = json.loads(meta_path.read_text()) if meta_path.exists() else {}
    if not index.exists(ws) or meta.get("turns") != args.turns:
        print(
            f"building {args.turns:,} turns ({corpus.recordings} recordings) into {root} …",
            flush=True,
        )
        t0, c0 = time.perf_counter(), time.process_time()
        step = max(1, corpus.recordings // 10)

        def progress(done: int, total: int) -> None:
            if done % step == 0:
                print(f"  {done}/{total} recordings, {time.perf_counter() - t0:.0f} s", flush=True)

        n = index.build(ws, iter(corpus), progress=progress, total=corpus.recordings)
        meta = {
            "turns": n,
            "build_s": time.perf_counter() - t0,
            "build_cpu_s": time.process_time() - c0,
        }
        meta_path.write_text(json.dumps(meta))
    fts_db = root / "fts5.sqlite"
    if not args.no_fts and not fts_db.exists():
        print("building the FTS5 reference …", flush=True)
        tmp = fts_db.with_suffix(".tmp")
        tmp.unlink(missing_ok=True)
        meta["fts_build_s"] = fts_build(tmp, corpus)
        tmp.rename(fts_db)
        meta_path.write_text(json.dumps(meta))

    if args.build_only:
        print(json.dumps(meta))
        return
    report: dict[str, object] = {
        "turns": index.doc_count(ws),
        "recordings": corpus.recordings,
        "build_s": round(meta["build_s"], 1),
        "build_cpu_s": round(meta.get("build_cpu_s", 0.0), 1),
        "loadavg_start": os.getloadavg()[0],
        "index_mb": round(index.size_bytes(ws) / 1e6, 1),
    }
    t0 = time.perf_counter()
    search.searcher(ws)
    report["open_s"] = round(time.perf_counter() - t0, 2)

    # Add one 1-hour recording (~600 turns) to the big index, three times (idempotent replace).
    hour = corpus.recording(10**6, 600)
    adds: list[float] = []
    for _ in range(3):
        timed(lambda: index.add(ws, [hour]), adds)
    report["add_one_hour_s"] = round(min(adds) / 1000, 2)
    report["add_one_hour_all_s"] = [round(a / 1000, 2) for a in adds]
    report["segments"] = len(index.open_index(ws)._segments())  # incremental adds: multi-segment

    # Query material from ~100 recordings spread over the archive (regenerated: deterministic).
    corpus.samples = []
    for i in range(0, corpus.recordings, max(1, corpus.recordings // 100)):
        corpus.recording(i)
    queries = make_queries(corpus, args.queries)
    results: dict[str, dict[str, float]] = {}
    for kind, qs in queries.items():
        for qtext, _ in qs[:3]:  # warm the caches of this query type
            search.search(ws, qtext, limit=10)
        lat: list[float] = []
        cpu: list[float] = []
        hits = 0
        for qtext, _ in qs:
            r = timed(lambda qtext=qtext: search.search(ws, qtext, limit=10), lat, cpu)
            hits += bool(r.hits)  # type: ignore[attr-defined]
        results[kind] = {
            "p50_ms": round(statistics.median(lat), 1),
            "p95_ms": round(pct(lat, 95), 1),
            "cpu_p50_ms": round(statistics.median(cpu), 1),
            "cpu_p95_ms": round(pct(cpu, 95), 1),
            "with_hits": round(hits / len(qs), 2),
        }
    report["whoosh"] = results

    if not args.no_fts:
        con = sqlite3.connect(fts_db)
        fres: dict[str, dict[str, float]] = {}
        for kind, qs in queries.items():
            if kind == "fuzzy":
                continue
            lat, cpu = [], []
            hl = "SELECT rid, start, highlight(turns, 0, '**', '**') FROM turns WHERE turns MATCH ?"
            for _, m in qs:
                if kind == "filtered":
                    match, lo, hi = m.split("|")
                    sql = hl + " AND date BETWEEN ? AND ? ORDER BY rank LIMIT 10"
                    params: tuple = (match, lo, hi)
                else:
                    sql = hl + " ORDER BY rank LIMIT 10"
                    params = (f"text:({m})",)
                timed(lambda sql=sql, params=params: con.execute(sql, params).fetchall(), lat, cpu)
            fres[kind] = {
                "p50_ms": round(statistics.median(lat), 1),
                "p95_ms": round(pct(lat, 95), 1),
                "cpu_p50_ms": round(statistics.median(cpu), 1),
                "cpu_p95_ms": round(pct(cpu, 95), 1),
            }
        report["fts5"] = fres
        report["fts5_build_s"] = round(meta.get("fts_build_s", 0.0), 1)
        report["fts5_mb"] = round(fts_db.stat().st_size / 1e6, 1)

    report["loadavg_end"] = os.getloadavg()[0]
    print(json.dumps(report, indent=1, ensure_ascii=False))
    print()
    print(
        f"{report['turns']:,} turns, {report['recordings']} recordings; "
        f"index {report['index_mb']} MB, built in {report['build_s']} s "
        f"(CPU {report['build_cpu_s']} s); open {report['open_s']} s"
    )
    print(f"add one hour (600 turns): {report['add_one_hour_s']} s; segments: {report['segments']}")
    print(f"load average {report['loadavg_start']:.1f} → {report['loadavg_end']:.1f} (2 cores)")
    print(f"{'query':<9} {'wall p50/p95 ms':>16} {'CPU p50/p95 ms':>16} {'FTS5 p50/p95':>14}  hits")
    for kind, r in results.items():
        f = report.get("fts5", {}).get(kind)  # type: ignore[union-attr]
        fs = f"{f['p50_ms']} / {f['p95_ms']}" if f else "n/a"
        wall = f"{r['p50_ms']} / {r['p95_ms']}"
        cpu_s = f"{r['cpu_p50_ms']} / {r['cpu_p95_ms']}"
        print(f"{kind:<9} {wall:>16} {cpu_s:>16} {fs:>14}  {r['with_hits']:.0%}")
    (root / "bench-report.json").write_text(json.dumps(report, indent=1, ensure_ascii=False))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
