"""Downloaded files: their container tags count, the HTTP Last-Modified date never does.

Real yt-dlp (generic extractor) over a loopback HTTP server; no model is loaded.
"""

from __future__ import annotations

import os
import shutil

from conftest import SAMPLES, shared_file

from confindex.formats.cite import cite
from confindex.run import fetch
from confindex.store.transcript import Provenance, Transcript, Turn, Word
from confindex.store.workspace import Workspace


def test_download_reads_tags_and_ignores_last_modified(http_root, tmp_path) -> None:
    root, base = http_root
    media = root / "ep1.ogg"
    shutil.copy(SAMPLES / "panel.ogg", media)
    os.utime(media, (978307200, 978307200))  # served with Last-Modified: 1 Jan 2001
    ws = Workspace(tmp_path / "ws").ensure()
    rec = fetch.download(ws, f"{base}/ep1.ogg").recording
    # The file's own tags, as for a local file (samples/panel.ogg carries them).
    assert rec.title == "Space diplomacy panel excerpt (synthetic)"
    assert rec.channel == "confindex samples"
    assert rec.upload_date == "2026-11-24"  # its date tag, not 2001-01-01
    t = Transcript(
        recording=rec,
        provenance=Provenance("test"),
        language="en",
        duration=10.0,
        turns=[Turn(0, 1.0, 2.0, "SPEAKER_00", "Hello.", "en", [Word(1.0, 2.0, " Hello.")])],
    )
    c = cite(t, 1.5)
    assert c.medium == "audio" and "[Audio]" in c.render("apa")
    assert c.render("apa").startswith("confindex samples. (2026, November 24).")


def test_tags_encoded_several_times_are_repaired(http_root, tmp_path) -> None:
    # The real Radio France file's title tag is UTF-8 encoded three times; its album twice.
    root, base = http_root
    media = root / "radio.mp3"
    shutil.copy(shared_file("fr/radiofrance_smartphone.mp3"), media)
    ws = Workspace(tmp_path / "ws").ensure()
    title = "Smartphones\u00a0: éloge de la réparation"
    rec = fetch.download(ws, f"{base}/radio.mp3").recording
    assert (rec.title, rec.channel, rec.upload_date) == (title, "Radio France", "2022")
    assert fetch.local_media(media).recording.title == title
    # Tags written correctly stay as written (quotes, dashes, Cyrillic, accents).
    for kept in ("Chrétien — «\u00a0Салют-7\u00a0» “Q&A”", "Ã la carte", "Panel \x9b31m"):
        assert fetch._unmangle(kept) == kept
