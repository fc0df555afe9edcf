// confindex serve: the recording page's edit mode (issue 27). Every change names the version
// the page shows; a 409 (another tab saved first) is shown as a conflict, nothing is lost.
"use strict";

(function () {
  const $ = (sel, root) => (root || document).querySelector(sel);
  const token = () => $('meta[name="confindex-token"]').content;

  document.addEventListener("DOMContentLoaded", () => {
    const rec = $("#rec");
    if (!rec) return;
    const rid = rec.dataset.recording;
    const transcript = $("#transcript");
    const player = $("#player");
    const message = $("#message");
    const toggle = $("#edit-mode");

    function say(text, conflict) {
      message.textContent = text;
      message.classList.toggle("conflict", !!conflict);
    }

    async function post(what, body) {
      const resp = await fetch("/api/recordings/" + encodeURIComponent(rid) + "/" + what, {
        method: "POST",
        headers: { "Content-Type": "application/json", "X-Confindex-Token": token() },
        body: JSON.stringify(Object.assign({ version: rec.dataset.version }, body)),
      });
      let data = {};
      try { data = await resp.json(); } catch (err) { data = { error: "The server did not answer." }; }
      if (resp.status === 409) {
        say("Conflict: " + data.error + " Your text is still in the box: copy it, then reload.", true);
        return null;
      }
      if (!resp.ok) { say(data.error || "Not saved.", false); return null; }
      return data;
    }

    // After a save the page is shown again at the same place, still in edit mode.
    function reloadAt(t) {
      const url = new URL(window.location.href);
      url.searchParams.set("t", String(Math.max(0, t).toFixed(2)));
      if (document.body.classList.contains("editing")) url.searchParams.set("edit", "1");
      window.location.href = url.toString();
    }

    function setEditing(on) {
      document.body.classList.toggle("editing", on);
      toggle.setAttribute("aria-pressed", on ? "true" : "false");
      toggle.textContent = on ? "Done editing" : "Edit";
    }
    toggle.addEventListener("click", () => setEditing(!document.body.classList.contains("editing")));
    if (new URL(window.location.href).searchParams.get("edit") === "1") setEditing(true);

    function labels() {
      return Array.from(document.querySelectorAll("#speakers li[data-label]")).map((li) => ({
        label: li.dataset.label, name: $(".name", li).textContent,
      }));
    }

    function newLabel() {
      const taken = new Set(labels().map((x) => x.label));
      for (let i = 0; ; i++) {
        const l = "SPEAKER_" + String(i).padStart(2, "0");
        if (!taken.has(l)) return l;
      }
    }

    function openEditor(turn) {
      if ($("textarea.editor", turn)) return;
      const p = $("p", turn);
      const text = Array.from(p.querySelectorAll("span[data-t]")).map((s) => s.textContent).join(" ");
      const box = document.createElement("textarea");
      box.className = "editor";
      box.value = text;
      box.setAttribute("aria-label", "Text of this turn");
      // The speaker of the turn, from a list (a new speaker at the end).
      const sel = document.createElement("select");
      sel.className = "who-edit";
      sel.setAttribute("aria-label", "Speaker of this turn");
      for (const s of labels()) {
        const o = document.createElement("option");
        o.value = s.label; o.textContent = s.name;
        if (s.label === turn.dataset.label) o.selected = true;
        sel.append(o);
      }
      const o = document.createElement("option");
      o.value = "__new__"; o.textContent = "New speaker";
      sel.append(o);
      p.hidden = true;
      p.after(box);
      $("header", turn).append(sel);
      box.focus();
      const close = () => { box.remove(); sel.remove(); p.hidden = false; };
      const start = parseFloat(turn.dataset.start);
      box.addEventListener("keydown", async (e) => {
        if (e.key === "Escape") { e.preventDefault(); close(); say(""); return; }
        if (e.key === "Tab" && player) {
          e.preventDefault();
          if (e.shiftKey) player.currentTime = Math.max(0, player.currentTime - 2);
          else if (player.paused) player.play().catch(() => say("The media could not be played."));
          else player.pause();
          return;
        }
        if (e.key === "Enter" && !e.shiftKey) {
          e.preventDefault();
          if (box.value.trim() === text.trim()) { close(); return; }
          say("Saving…");
          const data = await post("edit", { turn: parseInt(turn.dataset.turn, 10), text: box.value });
          if (data) { rec.dataset.version = data.version; say("Saved: " + data.change); reloadAt(start); }
        }
      });
      sel.addEventListener("change", async () => {
        const label = sel.value === "__new__" ? newLabel() : sel.value;
        const span = turn.dataset.start + "-" + turn.dataset.end;
        const data = await post("assign", { span: span, label: label });
        if (data) { say("Saved: " + data.change); reloadAt(start); }
      });
    }

    // In edit mode a click on a turn's text opens its editor (and does not seek or play).
    transcript.addEventListener("click", (e) => {
      if (!document.body.classList.contains("editing")) return;
      const turn = e.target.closest("article.turn");
      if (!turn || e.target.closest("textarea, select, button.ts")) return;
      e.stopPropagation();
      openEditor(turn);
    }, true);

    // Merge from the legend: the chosen speaker becomes this one.
    $("#speakers").addEventListener("change", async (e) => {
      const sel = e.target.closest("select.merge");
      if (!sel || !sel.value) return;
      const data = await post("merge", { label: sel.dataset.label, others: [sel.value] });
      if (data) { say("Saved: " + data.change); reloadAt(player ? player.currentTime : 0); }
      else sel.value = "";
    });

    const form = $("#meta-form");
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      const body = {};
      for (const el of form.querySelectorAll("input[name]")) {
        if (el.value !== el.defaultValue) body[el.name] = el.value;
      }
      if (!Object.keys(body).length) { say("No metadata changed."); return; }
      const data = await post("meta", body);
      if (data) { say("Saved: " + data.change); reloadAt(player ? player.currentTime : 0); }
    });
  });
})();
