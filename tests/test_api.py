"""The public API (`confindex.Archive`), the one writer (`publish`) and its history/undo, name
carrying, and options checked before any work. Model-free: synthetic transcripts, the real
Whoosh index, the real CLI."""

from __future__ import annotations

import ast
import inspect
import json
import subprocess
import sys
import types
import typing

import pytest
from conftest import SAMPLES, run

from confindex import Archive
from confindex.errors import InputError, NotFoundError
from confindex.search.hits import search
from confindex.store.publish import carry_names, history, publish, undo
from confindex.store.transcript import (
    Provenance,
    Recording,
    SpeakerSegment,
    Transcript,
    Turn,
    Word,
    load,
    save,
)
from confindex.store.workspace import Workspace


def make(turns: list[tuple[float, float, str | None, str]], rid: str = "talk-1") -> Transcript:
    out = []
    for i, (a, b, spk, text) in enumerate(turns):
        words = text.split()
        step = (b - a) / len(words)
        ws = [Word(a + k * step, a + (k + 1) * step, w, 0.9) for k, w in enumerate(words)]
        out.append(Turn(i, a, b, spk, text, "en", ws))
    diar = [SpeakerSegment(a, b, s) for a, b, s, _ in turns if s]
    return Transcript(
        recording=Recording(id=rid, source=f"/x/{rid}.wav", kind="file", title="A talk"),
        provenance=Provenance(confindex_version="0"),
        language="en",
        duration=max(b for _, b, _, _ in turns),
        turns=out,
        diarization=diar,
    )


OLD = [
    (0, 10, "SPEAKER_00", "welcome to the panel"),
    (10, 20, "SPEAKER_01", "thanks for having me"),
]


def test_carry_names_follows_time_overlap_when_labels_are_renumbered():
    old = make(OLD)
    old.speakers = {"SPEAKER_00": "Ada", "SPEAKER_01": "Grace"}
    new = make([(0, 9.5, "SPEAKER_01", "welcome to the panel"), (9.5, 20, "SPEAKER_00", "thanks")])
    assert carry_names(old, new) == {"SPEAKER_01": "Ada", "SPEAKER_00": "Grace"}


def test_carry_names_never_drops_a_name():
    old = make(OLD)
    old.speakers = {"SPEAKER_00": "Ada", "SPEAKER_01": "Grace"}
    # The new version found one speaker for the whole time: the better-overlapping name takes
    # the label, the other stays on its own label (it comes back with a later diarization).
    one = make([(0, 20, "SPEAKER_00", "welcome to the panel thanks for having me")])
    carried = carry_names(old, one)
    assert sorted(carried.values()) == ["Ada", "Grace"]
    # No speakers at all (transcribed without diarization): names stay on their labels.
    none = make([(0, 20, None, "welcome to the panel thanks for having me")])
    assert carry_names(old, none) == old.speakers


def test_publish_keeps_names_and_the_previous_version_and_undo_restores_it(tmp_path):
    ws = Workspace(tmp_path / "ws")
    first = make(OLD)
    first.speakers = {"SPEAKER_01": "Grace"}
    publish(ws, first)
    assert history(ws, first.id) == []
    second = make([(0, 10, "SPEAKER_01", "welcome to the panel"), (10, 20, "SPEAKER_00", "cheers")])
    done = publish(ws, second)
    assert done.names_carried == {"SPEAKER_00": "Grace"}
    assert load(ws, "talk-1").speakers == {"SPEAKER_00": "Grace"}
    assert len(history(ws, "talk-1")) == 1
    assert [h.recording_id for h in search(ws, "cheers").hits] == ["talk-1"]
    assert "Grace" in (ws.transcripts / "talk-1.vtt").read_text()

    restored = undo(ws, "talk-1")
    assert restored.turns[1].text == "thanks for having me"
    assert load(ws, "talk-1").speakers == {"SPEAKER_01": "Grace"}
    assert search(ws, "cheers").hits == []  # the index follows the restored version
    assert len(search(ws, "thanks").hits) == 1
    assert history(ws, "talk-1") == []
    with pytest.raises(NotFoundError):
        undo(ws, "talk-1")


def test_cli_undo_restores_the_name_before_a_rename(tmp_path):
    ws = Workspace(tmp_path / "ws")
    t = make(OLD)
    publish(ws, t)
    assert run("speakers", "talk-1", "rename", "SPEAKER_00", "Ada", ws=ws).exit_code == 0
    assert run("speakers", "talk-1", "rename", "Ada", "Ada Lovelace", ws=ws).exit_code == 0
    r = run("transcribe", "talk-1", "--undo", ws=ws)
    assert r.exit_code == 0, r.output
    assert load(ws, "talk-1").speakers == {"SPEAKER_00": "Ada"}
    r = run("transcribe", "talk-1", "--undo", ws=ws)
    assert load(ws, "talk-1").speakers == {}
    r = run("transcribe", "talk-1", "--undo", ws=ws)
    assert r.exit_code == 4 or r.exit_code != 0
    assert r.stderr.startswith("Error: no earlier version of talk-1")
    assert len(r.stderr.strip().splitlines()) == 1


def test_archive_methods_return_dataclasses_with_to_dict(tmp_path):
    ws = Workspace(tmp_path / "ws")
    t = make(OLD)
    save(ws, t)
    a = Archive(ws.root)
    assert a.root == ws.root
    assert a.status().to_dict()["total"] == 0
    r = a.rename_speaker("talk-1", "SPEAKER_01", "Grace")
    assert r.to_dict()["name"] == "Grace" and r.label == "SPEAKER_01"
    assert [s.display for s in a.speakers("talk")] == ["SPEAKER_00", "Grace"]
    hits = a.search("thanks").hits
    assert [(h.recording_id, h.speaker_name) for h in hits] == [("talk-1", "Grace")]
    assert a.stats().to_dict()["recordings"] == 1
    assert "Grace" in a.export("talk-1", "vtt")
    assert json.loads(a.export("talk-1", "json"))["speakers"] == {"SPEAKER_01": "Grace"}
    assert [x.text for x in a.show("talk-1", at=15, around=1)] == ["thanks for having me"]
    assert "A talk" in a.cite("talk-1", 12).render("apa")
    assert len(a.history("talk-1")) == 1  # the rename kept the version before it


def test_archive_list_index_export_all_and_remove(tmp_path):
    ws = Workspace(tmp_path / "ws")
    save(ws, make(OLD))
    save(ws, make([(0, 5, "SPEAKER_00", "a second talk about orbits")], rid="talk-2"))
    a = Archive(ws)
    first = a.index()
    assert sorted(first.added) == ["talk-1", "talk-2"] and first.turns == 3
    assert a.index().up_to_date
    rebuilt = a.index(rebuild=True)
    assert rebuilt.rebuilt and rebuilt.turns == 3 and not rebuilt.skipped
    assert [e.id for e in a.list_recordings(title="talk-2")] == ["talk-2"]
    assert [e.id for e in a.list_recordings(speaker="nobody")] == []
    written = a.export_all("srt", tmp_path / "subs")
    assert sorted(p.name for p in written) == ["talk-1.srt", "talk-2.srt"]
    assert "orbits" in (tmp_path / "subs" / "talk-2.srt").read_text(encoding="utf-8")
    with pytest.raises(InputError):
        a.show("talk-1", at=3600)  # past the end: said, not an empty list
    removed = a.remove("talk-2")
    assert [r.id for r in removed] == ["talk-2"] and removed[0].index_docs == 1
    assert [h.recording_id for h in a.search("orbits").hits] == []
    assert [e.id for e in a.list_recordings()] == ["talk-1"]
    with pytest.raises(NotFoundError):
        a.remove("talk-1", "no-such-recording")  # every id checked before anything goes
    assert [e.id for e in a.list_recordings()] == ["talk-1"]


def test_a_transcription_again_is_recorded_in_the_ledger(tmp_path):
    # `transcribe` publishes through the ledger like `fetch`: a recording with no row (saved
    # by the API or an older version) gets one, indexed and unclaimed afterwards.
    from confindex.run.pipeline import _ledger_row
    from confindex.store.ledger import Ledger

    ws = Workspace(tmp_path / "ws")
    t = make(OLD)
    save(ws, t)
    for _ in range(2):  # again: the same row, not a second one
        with _ledger_row(ws, t) as (led, key):
            assert led is not None and key == t.recording.source
            publish(ws, make(OLD), ledger=led, key=key, work_seconds=1.5)
        with Ledger.of(ws) as led:
            rows = led.rows()
        assert [(r.key, r.stage, r.owner, r.recording_id) for r in rows] == [
            ("/x/talk-1.wav", "indexed", None, "talk-1")
        ]
    assert Archive(ws).status().to_dict()["counts"]["indexed"] == 1


def test_ytdlp_politeness_options_are_library_code(tmp_path):
    from confindex.run.fetch import politeness_options

    got = politeness_options(
        sleep_interval=2, limit_rate="2M", cookies="c.txt", cookies_from_browser="Firefox:work"
    )
    assert got["sleep_interval"] == 2 and got["ratelimit"] == 2 * 1024 * 1024
    assert got["cookiefile"] == "c.txt"
    assert got["cookiesfrombrowser"] == ("firefox", "work", None, None)
    with pytest.raises(InputError, match="not a rate: '2Q'"):
        politeness_options(limit_rate="2Q")
    ws = Workspace(tmp_path / "ws")
    r = run("fetch", str(SAMPLES / "panel.ogg"), "--limit-rate", "2Q", ws=ws)
    assert r.exit_code == 1
    assert r.stderr.strip().splitlines() == [
        "Error: --limit-rate: not a rate: '2Q' (e.g. 500K, 2M)"
    ]
    assert not ws.root.exists()


def test_unknown_option_and_bad_language_fail_before_any_work(tmp_path):
    a = Archive(tmp_path / "ws")
    with pytest.raises(InputError, match="unknown transcription option"):
        a.fetch(str(SAMPLES / "panel.ogg"), langauge="fr")
    with pytest.raises(InputError, match="unknown language code 'xx'"):
        a.fetch(str(SAMPLES / "panel.ogg"), language="xx")
    assert not (tmp_path / "ws" / ".confindex").exists()


def test_bad_language_on_forced_refetch_marks_nothing_failed(tmp_path):
    # issue 16: `fetch --force --language xx` marked the recording failed, and the next plain
    # fetch said "failed in an earlier run". Options are now checked before the ledger is.
    ws = Workspace(tmp_path / "ws")
    r = run("fetch", str(SAMPLES / "panel.ogg"), "--force", "--language", "xx", ws=ws)
    # a usage error, as `--languages fr,xx` (one rule: check_language_codes)
    assert r.exit_code == 2
    assert r.stderr.startswith("Error: unknown language code 'xx'")
    assert len(r.stderr.strip().splitlines()) == 1
    status = json.loads(run("status", "--json", ws=ws).stdout)
    assert status["counts"].get("failed", 0) == 0 and status["total"] == 0
    r = run("transcribe", str(SAMPLES / "panel.ogg"), "--language", "xx", ws=ws)
    assert r.stderr.startswith("Error: unknown language code 'xx'")


def test_import_confindex_stays_light():
    code = (
        "import sys, confindex; "
        "heavy = [m for m in ('faster_whisper', 'yt_dlp', 'sherpa_onnx', 'dask', "
        "'confindex.api', 'confindex.run.job') if m in sys.modules]; "
        "print(heavy); a = confindex.Archive; "
        "print([m for m in ('faster_whisper', 'yt_dlp', 'sherpa_onnx', 'dask', 'numpy', "
        "'confindex.run.job') if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    # numpy (via the run layer) cost every read-only command ~0.15 CPU s at start: the return
    # types of Archive are imported under TYPE_CHECKING only.
    assert out.stdout.split("\n")[:2] == ["[]", "[]"]


def _public_members() -> dict[str, typing.Callable[..., object]]:
    """Archive's public methods and property getters, the Corrections mixin's included."""
    out = {}
    for name in dir(Archive):
        attr = inspect.getattr_static(Archive, name)
        if name.startswith("_"):
            continue
        if isinstance(attr, property):
            out[name] = attr.fget
        elif inspect.isfunction(attr):
            out[name] = attr
    return out


def _return_hint(fn: typing.Callable[..., object]) -> object:
    """`fn`'s return annotation resolved in its module, with the names that module imports
    under `if TYPE_CHECKING:` imported for real (a name missing there is a NameError)."""
    mod = sys.modules[fn.__module__]
    ns = dict(vars(mod))
    for node in ast.parse(inspect.getsource(mod)).body:
        if isinstance(node, ast.If) and ast.unparse(node.test).endswith("TYPE_CHECKING"):
            exec(compile(ast.Module(node.body, []), mod.__file__, "exec"), ns)
    return typing.get_type_hints(fn, globalns=ns)["return"]


def _mentions_any(hint: object) -> bool:
    if hint is typing.Any:
        return True
    return any(_mentions_any(a) for a in typing.get_args(hint))


def test_every_public_archive_method_has_a_concrete_return_type():
    members = _public_members()
    assert {"fetch", "search", "recording", "root", "meta", "undo", "status"} <= set(members)
    missing = [n for n, fn in members.items() if "return" not in fn.__annotations__]
    assert missing == []
    vague = [n for n, fn in members.items() if _mentions_any(_return_hint(fn))]
    # The stored scheduling options of the last run are free-form by design.
    assert vague == ["last_run_options"]


def _conforms(value: object, hint: object) -> bool:
    """`value` is of type `hint` (unions, list/tuple/dict items, TypedDict keys, classes)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return any(_conforms(value, a) for a in args)
    if hint is None or hint is type(None):
        return value is None
    if typing.is_typeddict(hint):
        keys = typing.get_type_hints(hint)
        return isinstance(value, dict) and set(value) == set(keys)
    if origin is list:
        return isinstance(value, list) and all(_conforms(v, args[0]) for v in value)
    if origin is tuple:
        if not isinstance(value, tuple) or len(value) != len(args):
            return False
        return all(_conforms(v, a) for v, a in zip(value, args, strict=True))
    if origin is dict:
        return isinstance(value, dict) and all(_conforms(v, args[1]) for v in value.values())
    if origin is not None:  # Iterator[...] and other generic ABCs: the container only
        return isinstance(value, origin)
    return isinstance(value, hint)  # type: ignore[arg-type]


def test_archive_methods_return_what_their_annotations_say(tmp_path):
    ws = Workspace(tmp_path / "ws")
    save(ws, make(OLD))
    save(ws, make([(0, 5, "SPEAKER_00", "a second talk about orbits")], rid="talk-2"))
    a = Archive(ws)
    a.rename_speaker("talk-1", "SPEAKER_01", "Grace")
    got = {
        "root": a.root,
        "recording": a.recording("talk-1"),
        "recordings": a.recordings(),
        "list_recordings": a.list_recordings(),
        "index": a.index(),
        "search": a.search("thanks"),
        "review": a.review("talk-1"),
        "show": a.show("talk-1"),
        "cite": a.cite("talk-1", 12),
        "speakers": a.speakers("talk-1"),
        "archive_speakers": a.archive_speakers(),
        "pending_names": a.pending_names(),
        "meta": a.meta("talk-1"),
        "changes": a.changes("talk-1"),
        "history": a.history("talk-1"),
        "version": a.version("talk-1"),
        "status": a.status(),
        "stats": a.stats(),
        "export": a.export("talk-1", "srt"),
        "undo": a.undo("talk-1"),
        "remove": a.remove("talk-2"),
    }
    assert got["archive_speakers"][0] and got["meta"]["title"] == "A talk"
    members = _public_members()
    wrong = {
        n: type(v).__name__ for n, v in got.items() if not _conforms(v, _return_hint(members[n]))
    }
    assert wrong == {}
