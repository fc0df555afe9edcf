// confindex serve: the search page and the recording page. No framework, no inline script
// (the Content-Security-Policy forbids it), one listener per page region rather than per word.
"use strict";

(function () {
  const $ = (sel, root) => (root || document).querySelector(sel);
  const token = () => $('meta[name="confindex-token"]').content;

  function isTyping(e) {
    const t = e.target;
    return t && (t.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(t.tagName));
  }

  document.addEventListener("keydown", (e) => {
    if (e.key === "/" && !isTyping(e)) {
      const q = $("#q");
      if (q) { e.preventDefault(); q.focus(); q.select(); }
    }
  });

  // ------------------------------------------------------------------------ search page
  function searchPage() {
    const list = $("#hits");
    if (!list) return;
    const player = $("#player");
    const hits = Array.from(list.querySelectorAll("li.hit"));
    const nowPlaying = $("#now-playing");
    let playing = null; // the hit being played
    let playingBtn = null; // the button that started it (the hit's ▶ or an "also at" one)

    function fmt(t) {
      const s = Math.floor(t), h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60);
      return (h ? h + ":" + String(m).padStart(2, "0") : String(m)) + ":" + String(s % 60).padStart(2, "0");
    }

    // A visible playing state: the hit's card, the button pressed (❚❚) and a status line.
    function showState() {
      const on = playing && !player.paused;
      for (const b of list.querySelectorAll("button.active")) {
        b.classList.remove("active");
        b.setAttribute("aria-pressed", "false");
        if (b.dataset.label) b.textContent = b.dataset.label;
      }
      for (const li of list.querySelectorAll("li.playing")) if (li !== playing || !on) li.classList.remove("playing");
      if (!playing) { nowPlaying.hidden = true; return; }
      if (on) {
        playing.classList.add("playing");
        if (playingBtn) {
          playingBtn.dataset.label = playingBtn.dataset.label || playingBtn.textContent;
          playingBtn.classList.add("active");
          playingBtn.setAttribute("aria-pressed", "true");
          playingBtn.textContent = "❚❚" + playingBtn.dataset.label.replace(/^▶/, "");
        }
      }
      const title = $(".title", playing).textContent;
      nowPlaying.textContent = (on ? "▶ Playing " : "❚❚ Paused ") + "“" + title + "” at " + fmt(player.currentTime);
      nowPlaying.hidden = false;
    }

    function play(li, t, btn) {
      if (!li.dataset.media) { window.location = $("a.open", li).href; return; }
      if (t === undefined) t = parseFloat(li.dataset.t);
      btn = btn || $("button.play", li);
      const src = "/media/" + encodeURIComponent(li.dataset.recording);
      if (playing === li && playingBtn === btn && !player.paused) { player.pause(); return; }
      if (player.dataset.recording !== li.dataset.recording || player.readyState < 1) {
        // A media fragment starts the new source at the hit's second (preload is "none":
        // nothing is fetched before a hit is played).
        player.src = src + "#t=" + t;
        player.dataset.recording = li.dataset.recording;
      } else {
        player.currentTime = t;
      }
      playing = li;
      playingBtn = btn;
      player.play().catch(() => {});
      showState();
    }

    list.addEventListener("click", (e) => {
      const btn = e.target.closest("button.play, button.play-at");
      if (!btn) return;
      const li = btn.closest("li.hit");
      play(li, btn.classList.contains("play-at") ? parseFloat(btn.dataset.t) : undefined, btn);
    });
    for (const ev of ["play", "playing", "pause", "ended", "seeked"]) player.addEventListener(ev, showState);
    player.addEventListener("timeupdate", () => { if (playing) showState(); });

    document.addEventListener("keydown", (e) => {
      if (isTyping(e) || e.ctrlKey || e.metaKey || e.altKey) return;
      const i = hits.indexOf(document.activeElement);
      if (e.key === "j" || e.key === "k") {
        e.preventDefault();
        const next = e.key === "j" ? Math.min(hits.length - 1, i + 1) : Math.max(0, i - 1);
        if (hits[next]) hits[next].focus();
      } else if (e.key === "Enter" && i >= 0) {
        e.preventDefault();
        window.location = $("a.open", hits[i]).href;
      } else if (e.key === " " && i >= 0) {
        e.preventDefault();
        play(hits[i]);
      }
    });
  }

  // Facets: fetched after the hits are shown; built with textContent (never as HTML).
  const FACET_NAMES = { speaker: "Speaker", recording: "Recording", lang: "Language", channel: "Channel", date: "Year" };
  async function facets() {
    const box = $("#facets");
    if (!box) return;
    const resp = await fetch("/api/facets?q=" + encodeURIComponent(box.dataset.q));
    if (!resp.ok) return;
    const data = await resp.json();
    for (const [field, rows] of Object.entries(data.facets)) {
      if (rows.length < 1) continue;
      const sec = document.createElement("section");
      sec.className = "facet";
      sec.dataset.field = field;
      const h = document.createElement("h2");
      h.textContent = FACET_NAMES[field] || field;
      const ul = document.createElement("ul");
      for (const row of rows) {
        const li = document.createElement("li");
        const a = document.createElement("a");
        a.href = "/search?q=" + encodeURIComponent(row.query);
        a.textContent = row.value;
        const n = document.createElement("span");
        n.className = "n";
        n.textContent = String(row.hits);
        li.append(a, " ", n);
        ul.append(li);
      }
      sec.append(h, ul);
      box.append(sec);
    }
    if (data.counted < data.total) {
      const p = document.createElement("p");
      p.className = "note";
      p.textContent = "Counted over the first " + data.counted + " hits.";
      box.append(p);
    }
  }

  // ------------------------------------------------------------------------ recording page
  function recordingPage() {
    const rec = $("#rec");
    if (!rec) return;
    const rid = rec.dataset.recording;
    const transcript = $("#transcript");
    const player = $("#player");
    const message = $("#message");
    // Word start times, read once from the rendered spans (sorted: the transcript is in order).
    const spans = transcript.querySelectorAll("p span[data-t]");
    const times = new Float64Array(spans.length);
    for (let i = 0; i < spans.length; i++) times[i] = parseFloat(spans[i].dataset.t);
    let current = -1;
    let userScrolledAt = 0;

    function wordAt(t) { // the last word that starts at or before t
      let lo = 0, hi = times.length;
      while (lo < hi) { const mid = (lo + hi) >> 1; if (times[mid] <= t + 1e-3) lo = mid + 1; else hi = mid; }
      return lo - 1;
    }

    function say(text) { message.textContent = text; }
    function fmtTime(t) {
      const s = Math.floor(t), h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60);
      return (h ? h + ":" + String(m).padStart(2, "0") : String(m)) + ":" + String(s % 60).padStart(2, "0");
    }

    function highlight(t, follow) {
      const i = wordAt(t);
      if (i !== current) {
        if (current >= 0) spans[current].classList.remove("now");
        current = i;
        if (i >= 0) {
          spans[i].classList.add("now");
          if (follow && Date.now() - userScrolledAt > 4000) keepInView(spans[i]);
        }
      }
      const head = $("#playhead");
      if (head) { head.setAttribute("x1", t); head.setAttribute("x2", t); }
    }

    function keepInView(el) {
      const box = transcript.getBoundingClientRect();
      const r = el.getBoundingClientRect();
      if (r.top < box.top + 20 || r.bottom > box.bottom - 20) {
        programmaticScroll = true;
        // Scroll the transcript box only (scrollIntoView would move the whole page too).
        transcript.scrollTop += r.top - box.top - box.height / 2;
      }
    }
    let programmaticScroll = false;
    transcript.addEventListener("scroll", () => {
      if (programmaticScroll) { programmaticScroll = false; return; }
      userScrolledAt = Date.now();
    }, { passive: true });

    function seek(t, andPlay) {
      if (!player) { highlight(t, true); return; }
      const go = () => {
        player.currentTime = t;
        highlight(t, true);
        if (andPlay) player.play().catch(() => {});
      };
      if (player.readyState >= 1) go();
      else { player.addEventListener("loadedmetadata", go, { once: true }); player.load(); }
    }

    // One listener for every word and timestamp of the transcript.
    transcript.addEventListener("click", (e) => {
      const el = e.target.closest("[data-t]");
      if (!el || window.getSelection().toString()) return;
      seek(parseFloat(el.dataset.t), true);
    });

    // Speaker timeline: a click anywhere seeks to that second (the viewBox unit is the second).
    const svg = $("#timeline");
    svg.addEventListener("click", (e) => {
      const box = svg.getBoundingClientRect();
      const duration = parseFloat(rec.dataset.duration);
      const t = Math.max(0, Math.min(duration, ((e.clientX - box.left) / box.width) * duration));
      seek(t, true);
    });

    // Chapters (list and timeline strip): links to the page at their second; with a player,
    // a plain click seeks instead and the address becomes that chapter's link.
    for (const box of [$("#chapters"), $("#chapter-strip")]) {
      if (!box) continue;
      box.addEventListener("click", (e) => {
        const a = e.target.closest("a[data-t]");
        if (!a || e.ctrlKey || e.metaKey || e.shiftKey || e.button !== 0) return;
        e.preventDefault();
        e.stopPropagation();
        history.replaceState(null, "", a.getAttribute("href"));
        seek(parseFloat(a.dataset.t), true);
      });
    }

    if (player) {
      let raf = 0;
      const tick = () => { highlight(player.currentTime, true); raf = player.paused ? 0 : requestAnimationFrame(tick); };
      player.addEventListener("play", () => { if (!raf) raf = requestAnimationFrame(tick); });
      player.addEventListener("timeupdate", () => highlight(player.currentTime, true));
      player.addEventListener("seeked", () => highlight(player.currentTime, true));
      player.addEventListener("error", () => say("The media could not be played."));
      player.addEventListener("loadedmetadata", () => {
        const t = parseFloat(rec.dataset.t);
        if (t > 0 && Math.abs(player.currentTime - t) > 0.5) player.currentTime = t;
      }, { once: true });
    }
    // Space plays/pauses anywhere but in a text field (as on the search page).
    document.addEventListener("keydown", (e) => {
      if (!player || isTyping(e) || e.key !== " " || e.target === player || e.target.tagName === "BUTTON") return;
      e.preventDefault();
      if (player.paused) player.play().catch(() => say("The media could not be played."));
      else player.pause();
    });

    const yt = $("#youtube");
    if (yt && !navigator.onLine) { $("#offline-note").hidden = false; }

    // Cue the page at ?t= : the word spoken then, scrolled into view.
    const t0 = parseFloat(rec.dataset.t);
    highlight(t0, false);
    if (current >= 0) keepInView(spans[current]);

    // ---- the search's matches on this page: marked, and stepped through with n / p
    const matches = rec.dataset.matches ? JSON.parse(rec.dataset.matches) : [];
    let atMatch = -1;
    matches.forEach((m, k) => {
      for (const i of m.words) {
        if (!spans[i]) continue;
        spans[i].classList.add("match");
        spans[i].dataset.match = String(k);
      }
    });
    function goMatch(k) {
      if (!matches.length) return;
      k = (k + matches.length) % matches.length; // wraps around, as a find bar does
      for (const el of transcript.querySelectorAll("span.match.current")) el.classList.remove("current");
      atMatch = k;
      const m = matches[k];
      for (const i of m.words) if (spans[i]) spans[i].classList.add("current");
      const pos = $("#match-pos");
      if (pos) pos.textContent = "match " + (k + 1) + " of " + matches.length;
      const first = spans[m.words[0]];
      if (first) { userScrolledAt = 0; keepInView(first); }
      // The address names this match's second, so a reload or a shared link lands here too.
      const url = new URL(window.location.href);
      url.searchParams.set("t", m.t.toFixed(2));
      history.replaceState(null, "", url);
      if (player) {
        const wasPlaying = !player.paused;
        seek(m.t, wasPlaying);
      } else highlight(m.t, false);
    }
    if (matches.length) {
      // Start on the match the hit pointed at (the first at or after ?t=).
      let k = matches.findIndex((m) => m.t >= t0 - 0.01);
      if (k < 0) k = matches.length - 1;
      atMatch = k;
      for (const i of matches[k].words) if (spans[i]) spans[i].classList.add("current");
      const pos = $("#match-pos");
      if (pos) pos.textContent = "match " + (k + 1) + " of " + matches.length;
      $("#next-match").addEventListener("click", () => goMatch(atMatch + 1));
      $("#prev-match").addEventListener("click", () => goMatch(atMatch - 1));
      document.addEventListener("keydown", (e) => {
        if (isTyping(e) || e.ctrlKey || e.metaKey || e.altKey) return;
        if (e.key === "n") { e.preventDefault(); goMatch(atMatch + 1); }
        else if (e.key === "p" || e.key === "N") { e.preventDefault(); goMatch(atMatch - 1); }
      });
    }

    // ---- quality flags where you read: flagged words marked, a wordless (missed) passage
    // noted between turns; the list's times seek; "decode again" re-decodes the passage.
    const flags = rec.dataset.flags ? JSON.parse(rec.dataset.flags) : [];
    flags.forEach((f, k) => {
      let i = Math.max(0, wordAt(f.start - 0.01));
      let marked = 0;
      for (; i < spans.length && times[i] <= f.end; i++) {
        if (times[i] < f.start - 0.01) continue;
        spans[i].classList.add("flagged", "flag-" + f.kind);
        spans[i].dataset.flag = String(k);
        spans[i].title = "⚑ " + f.kind + ": " + f.reason;
        marked++;
      }
      if (!marked) { // no word there (a `missed` stretch): a note where it falls
        const note = document.createElement("p");
        note.className = "flagnote flag-" + f.kind;
        note.dataset.t = f.start.toFixed(2);
        note.dataset.flag = String(k);
        note.textContent = "⚑ " + f.kind + " [" + fmtTime(f.start) + "–" + fmtTime(f.end) + "]: " + f.reason;
        const after = Array.from(transcript.querySelectorAll("article.turn")).find(
          (a) => parseFloat(a.querySelector("button.ts").dataset.t) >= f.start);
        if (after) after.before(note); else transcript.append(note);
      }
    });
    const flagBox = $("#flags");
    if (flagBox) {
      flagBox.addEventListener("click", (e) => {
        const ts = e.target.closest("button.ts");
        if (ts) seek(parseFloat(ts.dataset.t), false);
      });
      flagBox.addEventListener("submit", async (e) => {
        const form = e.target.closest("form.redecode-form");
        if (!form) return;
        e.preventDefault();
        const out = form.parentElement.querySelector("output.redecoded");
        const button = form.querySelector("button[type=submit]");
        const body = { start: parseFloat(form.dataset.start), end: parseFloat(form.dataset.end) };
        for (const el of form.elements) if (el.name && el.value.trim()) body[el.name] = el.value.trim();
        button.disabled = true;
        out.className = "redecoded busy";
        out.textContent = "Decoding again… (the model loads first: this takes a while)";
        try {
          const resp = await fetch("/api/recordings/" + encodeURIComponent(rid) + "/redecode", {
            method: "POST",
            headers: { "Content-Type": "application/json", "X-Confindex-Token": token() },
            body: JSON.stringify(body),
          });
          const data = await resp.json();
          if (!resp.ok) { out.className = "redecoded error"; out.textContent = data.error || "Decoding failed."; return; }
          out.className = "redecoded done";
          out.textContent = "";
          const now = document.createElement("q");
          now.textContent = data.text || "(no words)";
          const left = data.flags.length ? " Still flagged: " + data.flags.map((x) => x.kind).join(", ") + "." : " No flag left here.";
          const again = document.createElement("a");
          again.href = window.location.pathname + "?t=" + body.start.toFixed(2);
          again.textContent = "show it in the transcript";
          out.append("Now reads: ", now, "." + left + " ", again);
        } finally {
          button.disabled = false;
        }
      });
    }

    // ---- rename a speaker inline
    // The overlap bars that name `label` say the new name too (render.overlap_bars' sentence).
    function renameOverlaps(label) {
      const nameOf = (l) => {
        const el = document.querySelector('#speakers .name[data-label="' + CSS.escape(l) + '"]');
        return el ? el.textContent : l;
      };
      for (const bar of document.querySelectorAll("#timeline rect.ovl")) {
        const labels = bar.dataset.overlap.split(" ");
        if (!labels.includes(label)) continue;
        const names = labels.map(nameOf);
        const who = names.length === 1 ? names[0] : names.slice(0, -1).join(", ") + " and " + names[names.length - 1];
        const said = who + " at once, " + bar.dataset.when;
        bar.setAttribute("aria-label", said);
        bar.querySelector("title").textContent = said;
      }
    }
    $("#speakers").addEventListener("click", (e) => {
      const btn = e.target.closest("button.rename");
      if (!btn || btn.closest("li").querySelector("form")) return;
      const li = btn.closest("li");
      const label = btn.dataset.label;
      const nameEl = li.querySelector(".name");
      const form = document.createElement("form");
      form.className = "rename-form";
      const input = document.createElement("input");
      input.name = "name";
      input.value = nameEl.textContent;
      input.setAttribute("aria-label", "New name for " + label);
      const ok = document.createElement("button");
      ok.type = "submit";
      ok.textContent = "Save";
      form.append(input, ok);
      nameEl.hidden = true;
      btn.hidden = true;
      nameEl.after(form);
      input.focus();
      input.select();
      const close = () => { form.remove(); nameEl.hidden = false; btn.hidden = false; };
      input.addEventListener("keydown", (ev) => { if (ev.key === "Escape") close(); });
      form.addEventListener("submit", async (ev) => {
        ev.preventDefault();
        const resp = await fetch("/api/recordings/" + encodeURIComponent(rid) + "/speakers/" + encodeURIComponent(label), {
          method: "POST",
          headers: { "Content-Type": "application/json", "X-Confindex-Token": token() },
          body: JSON.stringify({ name: input.value }),
        });
        const data = await resp.json();
        if (!resp.ok) { say(data.error || "Rename failed."); return; }
        for (const el of document.querySelectorAll('.name[data-label="' + CSS.escape(label) + '"], .who[data-label="' + CSS.escape(label) + '"]')) {
          el.textContent = data.name;
        }
        btn.title = "Rename " + data.name;
        renameOverlaps(label);
        close();
        say("Renamed " + label + " to " + data.name + " (transcript, exports and index updated).");
      });
    });

    // ---- cite the selected words, or the word being played
    function selectedTime() { // the start of the first selected word, or null
      const sel = window.getSelection();
      if (!sel || !sel.rangeCount || sel.isCollapsed || !transcript.contains(sel.anchorNode)) return null;
      const range = sel.getRangeAt(0);
      const node = range.startContainer;
      const el = node.nodeType === 1 ? node : node.parentElement;
      let w = el.closest("p [data-t]");
      if (!w) w = Array.from(spans).find((s) => range.intersectsNode(s)); // starts between words
      return w ? parseFloat(w.dataset.t) : null;
    }
    function selectedSpan() { // "A-B": the starts of the first and last selected words, or null
      const sel = window.getSelection();
      if (!sel || !sel.rangeCount || sel.isCollapsed || !transcript.contains(sel.anchorNode)) return null;
      const range = sel.getRangeAt(0);
      const picked = Array.from(spans).filter((s) => range.intersectsNode(s));
      if (!picked.length) return null;
      // The page shows times to 0.01 s: widen by half of that so the words are inside.
      const a = Math.max(0, parseFloat(picked[0].dataset.t) - 0.006);
      const b = parseFloat(picked[picked.length - 1].dataset.t) + 0.006;
      return a.toFixed(3) + "-" + b.toFixed(3);
    }
    const citeButton = $("#cite");
    let pressedAt = null;
    // Read the selection before the click's mousedown may collapse it.
    let pressedSpan = null;
    citeButton.addEventListener("mousedown", () => { pressedAt = selectedTime(); pressedSpan = selectedSpan(); });
    citeButton.addEventListener("click", async () => {
      let t = pressedAt !== null ? pressedAt : selectedTime();
      const span = pressedSpan !== null ? pressedSpan : selectedSpan();
      pressedAt = null;
      pressedSpan = null;
      if (t === null) t = current >= 0 ? times[current] : (player ? player.currentTime : t0);
      const style = $("#cite-style").value;
      // Selected words: exactly those are quoted; otherwise the sentence at the moment.
      const where = span ? "&span=" + encodeURIComponent(span) : "&at=" + t;
      const resp = await fetch("/api/cite?recording=" + encodeURIComponent(rid) + where + "&style=" + style);
      const data = await resp.json();
      const out = $("#citation");
      if (!resp.ok) { say(data.error || "Cannot cite."); return; }
      out.textContent = data.text;
      out.dataset.at = String(t);
      if (span) out.dataset.span = span; else delete out.dataset.span;
      try { await navigator.clipboard.writeText(data.text); say("Citation copied."); }
      catch (err) { say("Citation ready: select it to copy."); }
    });
  }

  // ------------------------------------------------------------------------ status page
  function statusRefresh() {
    const m = $('meta[name="confindex-refresh"]');
    if (m) setTimeout(() => window.location.reload(), parseFloat(m.content) * 1000);
  }

  document.addEventListener("DOMContentLoaded", () => {
    searchPage();
    facets();
    recordingPage();
    statusRefresh();
    performance.mark("confindex-ready"); // every word can be clicked from here (bench/serve.py)
  });
})();
