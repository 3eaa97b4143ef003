// Headwater's small enhancements: live tables while runs are under way, and confirmations.
"use strict";

const REFRESH_MS = 2000;
const IDLE_EVERY = 5; // a table with no run under way is read again every 5th tick (10 s): runs start

function hasActiveRun(element) {
  return element.querySelector('[data-state="pending"], [data-state="running"]') !== null;
}

async function refresh(element) {
  const response = await fetch(window.location.href, { headers: { Accept: "text/html" } });
  if (!response.ok) return;
  const page = new DOMParser().parseFromString(await response.text(), "text/html");
  const fresh = page.getElementById(element.id);
  if (fresh) {
    element.replaceWith(fresh);
    sizeBars();
  }
}

let ticks = 0;

function watch() {
  ticks += 1;
  if (document.hidden) return;
  for (const element of document.querySelectorAll("[data-refresh]")) {
    if (element.querySelector("details[data-menu][open]")) continue; // a menu in use stays put
    if (hasActiveRun(element) || ticks % IDLE_EVERY === 0) {
      refresh(element).catch(() => {});
    }
  }
}

// Bars whose length the page gives as data (the content security policy forbids inline styles).
function sizeBars() {
  for (const bar of document.querySelectorAll("[data-width]")) {
    bar.style.width = `${Number(bar.dataset.width)}%`;
  }
}

document.addEventListener("DOMContentLoaded", () => {
  sizeBars();
  window.setInterval(watch, REFRESH_MS);
  // On the document: forms in rows the live refresh replaced ask too (the ⋮ menu's Delete).
  document.addEventListener("submit", (event) => {
    const form = event.target;
    if (!(form instanceof HTMLFormElement) || form.dataset.confirm === undefined) return;
    if (!window.confirm(form.dataset.confirm)) event.preventDefault();
  });
});

// A checkbox that switches an input on and off (the CVE score box).
function wireEnablers() {
  for (const box of document.querySelectorAll("input[data-enables]")) {
    const target = box.form && box.form.elements[box.dataset.enables];
    if (!target) continue;
    const apply = () => { target.disabled = !box.checked; };
    box.addEventListener("change", apply);
    apply();
  }
}

// Buttons that show or hide a section (View channel filters).
function wireToggles() {
  for (const button of document.querySelectorAll("button[data-toggle]")) {
    button.addEventListener("click", () => {
      const section = document.getElementById(button.dataset.toggle);
      if (section) section.hidden = !section.hidden;
      if (section) button.setAttribute("aria-expanded", String(!section.hidden));
    });
  }
}

// The Preview button: the form as it stands, judged by the server against the upstream.
function wirePreview() {
  for (const button of document.querySelectorAll("button[data-preview]")) {
    button.addEventListener("click", async () => {
      const section = document.getElementById("preview");
      const old = document.getElementById("preview-result");
      section.hidden = false;
      old.textContent = "Reading the upstream's metadata…";
      button.disabled = true;
      try {
        const response = await fetch(button.dataset.preview, { method: "POST", body: new FormData(button.form) });
        const fresh = new DOMParser().parseFromString(await response.text(), "text/html").getElementById("preview-result");
        document.getElementById("preview-result").replaceWith(fresh);
      } catch (error) {
        document.getElementById("preview-result").textContent = "The preview failed: " + error;
      } finally {
        button.disabled = false;
      }
    });
  }
}

// Before saving, say when the filters (with the channel's) leave nothing at all.
function wireNothingPasses() {
  for (const form of document.querySelectorAll("form[data-check]")) {
    const note = form.querySelector("[data-nothing-passes]");
    if (!note) continue;
    let timer = null;
    const check = async () => {
      const response = await fetch(form.dataset.check, { method: "POST", body: new FormData(form) });
      if (!response.ok) return;
      const { problems, invalid } = await response.json();
      note.hidden = !invalid && problems.length === 0;
      note.textContent = invalid
        ? "These filters are not valid: " + invalid
        : problems.length ? "These filters leave nothing: " + problems.join("; ") + "." : "";
    };
    form.addEventListener("change", () => {
      window.clearTimeout(timer);
      timer = window.setTimeout(() => check().catch(() => {}), 250);
    });
    check().catch(() => {});
  }
}

// Chips: each name typed and ended with Enter (or a comma, or leaving the box) becomes a chip
// that carries a hidden input, so the form sends one value per chip.
function addChip(box, entry, name) {
  name = name.trim();
  if (!name) return;
  const taken = [...box.querySelectorAll("input[type=hidden]")].some((input) => input.value === name);
  if (taken) return;
  const chip = document.createElement("span");
  chip.className = "chip";
  chip.append(name);
  const value = document.createElement("input");
  value.type = "hidden";
  value.name = box.dataset.chips;
  value.value = name;
  const remove = document.createElement("button");
  remove.type = "button";
  remove.setAttribute("aria-label", "Remove " + name);
  remove.textContent = "×";
  chip.append(value, remove);
  box.insertBefore(chip, entry);
  box.dispatchEvent(new Event("change", { bubbles: true }));
  if (box.dataset.chipsCheck) checkChip(box, chip).catch(() => {});
}

function wireChips() {
  for (const box of document.querySelectorAll("[data-chips]")) {
    const entry = box.querySelector(".chip-entry");
    const commit = () => {
      for (const name of entry.value.split(/[\s,]+/)) addChip(box, entry, name);
      entry.value = "";
    };
    entry.addEventListener("keydown", (event) => {
      if (event.key === "Enter" || event.key === ",") {
        event.preventDefault();
        commit();
      } else if (event.key === "Backspace" && !entry.value) {
        const chips = box.querySelectorAll(".chip");
        if (chips.length) chips[chips.length - 1].remove();
      }
    });
    entry.addEventListener("blur", commit);
    if (entry.form) entry.form.addEventListener("submit", commit);
    box.addEventListener("click", (event) => {
      if (event.target.matches(".chip button")) {
        event.target.closest(".chip").remove();
        box.dispatchEvent(new Event("change", { bubbles: true }));
      }
    });
  }
}

// The mirror type decides which fields apply: PyPI mirrors get projects and their own rules.
function wireMirrorType() {
  for (const select of document.querySelectorAll("select[data-mirror-type]")) {
    const form = select.form;
    const source = form.elements.source_root;
    const apply = () => {
      for (const section of form.querySelectorAll("[data-for-type]")) {
        const shown = section.dataset.forType === select.value;
        section.hidden = !shown;
        section.disabled = !shown;
      }
      const placeholders = JSON.parse(source.dataset.placeholders || "{}");
      if (placeholders[select.value]) source.placeholder = placeholders[select.value];
    };
    select.addEventListener("change", apply);
    apply();
  }
}

document.addEventListener("DOMContentLoaded", () => {
  wireChips();
  wireMirrorType();
  wireEnablers();
  wireToggles();
  wirePreview();
  wireNothingPasses();
});

// --- The mirror screens as their users know them (issue 14): the Mirrors tab's ⋮ menu,
// project chips checked as they are entered, and the frequency's sentence as it is typed.

// The ⋮ menu of a mirror (a <details>): one open at a time, Escape or a click elsewhere closes
// it. Listeners sit on the document, so rows the live refresh replaces keep working.
function closeMenu(menu, focus) {
  menu.open = false;
  if (focus) menu.querySelector("summary").focus();
}

function wireMenus() {
  document.addEventListener("toggle", (event) => {
    const menu = event.target;
    if (!(menu instanceof HTMLDetailsElement) || !menu.matches("[data-menu]")) return;
    menu.querySelector("summary").setAttribute("aria-expanded", String(menu.open));
    if (!menu.open) return;
    for (const other of document.querySelectorAll("details[data-menu][open]")) {
      if (other !== menu) closeMenu(other, false);
    }
    const first = menu.querySelector(".menu-items a, .menu-items button");
    if (first) first.focus();
  }, true); // toggle does not bubble: caught on its way down
  document.addEventListener("keydown", (event) => {
    if (event.key !== "Escape") return;
    for (const menu of document.querySelectorAll("details[data-menu][open]")) {
      closeMenu(menu, menu.contains(document.activeElement));
    }
  });
  document.addEventListener("click", (event) => {
    for (const menu of document.querySelectorAll("details[data-menu][open]")) {
      if (!menu.contains(event.target)) closeMenu(menu, false);
    }
  });
  for (const summary of document.querySelectorAll("details[data-menu] > summary")) {
    summary.setAttribute("aria-expanded", "false");
  }
}

// A project chip, asked about at the server: blue when the name is accepted (shown as PEP 503
// normalizes it), red with the reason when not. Text only: nothing typed becomes markup.
async function checkChip(box, chip) {
  const form = box.closest("form");
  const value = chip.querySelector("input[type=hidden]");
  if (!form || !value) return;
  const body = new FormData();
  body.set("csrf", form.elements.csrf ? form.elements.csrf.value : "");
  body.set("project", value.value);
  for (const field of ["mirror_type", "source_root", "proxy"]) {
    const input = form.elements[field];
    if (input && input.value !== undefined) body.set(field, input.value);
  }
  if (form.dataset.mirrorId) body.set("mirror_id", form.dataset.mirrorId);
  chip.classList.remove("chip-ok", "chip-bad");
  chip.classList.add("chip-checking");
  const response = await fetch(box.dataset.chipsCheck, { method: "POST", body });
  let verdict;
  try {
    verdict = await response.json();
  } catch (error) {
    verdict = null;
  }
  if (!chip.isConnected) return;
  chip.classList.remove("chip-checking");
  if (!response.ok || !verdict) {
    const reason = (verdict && typeof verdict.detail === "string") ? verdict.detail : "could not be checked";
    showChip(chip, false, reason);
    return;
  }
  if (verdict.accepted && verdict.name && verdict.name !== value.value) {
    const twin = [...box.querySelectorAll("input[type=hidden]")].some(
      (input) => input !== value && input.value === verdict.name);
    if (twin) { // the same project under another spelling: one chip is enough
      chip.remove();
      box.dispatchEvent(new Event("change", { bubbles: true }));
      return;
    }
    value.value = verdict.name;
    chip.firstChild.nodeValue = verdict.name;
    chip.querySelector("button").setAttribute("aria-label", "Remove " + verdict.name);
  }
  chip.dataset.upstream = verdict.upstream || "";
  showChip(chip, Boolean(verdict.accepted), verdict.reason || "");
}

function showChip(chip, accepted, reason) {
  chip.classList.toggle("chip-ok", accepted);
  chip.classList.toggle("chip-bad", !accepted);
  chip.dataset.accepted = String(accepted);
  chip.title = reason;
  let note = chip.querySelector(".chip-reason");
  if (!accepted && reason) {
    if (!note) {
      note = document.createElement("span");
      note.className = "chip-reason";
      chip.insertBefore(note, chip.querySelector("input[type=hidden]"));
    }
    note.textContent = ": " + reason;
  } else if (note) {
    note.remove();
  }
}

function wireChipChecks() {
  for (const box of document.querySelectorAll("[data-chips-check]")) {
    const form = box.closest("form");
    const recheck = async () => {
      for (const chip of box.querySelectorAll(".chip")) await checkChip(box, chip);
    };
    if (form) {
      for (const field of ["source_root", "mirror_type"]) {
        const input = form.elements[field];
        if (input && input.addEventListener) input.addEventListener("change", () => recheck().catch(() => {}));
      }
    }
    recheck().catch(() => {});
  }
}

// The frequency: the sentence and the next runs follow the cron as it is typed (debounced);
// a cron the server refuses shows its reason instead.
function wireCronSentence() {
  for (const input of document.querySelectorAll("input[data-cron]")) {
    const area = document.getElementById(input.getAttribute("aria-describedby") || "schedule");
    if (!area || !input.dataset.cron) continue;
    let timer = null;
    let asked = 0;
    const line = (className, text) => {
      const paragraph = document.createElement("p");
      paragraph.className = className;
      paragraph.textContent = text;
      return paragraph;
    };
    const show = async () => {
      const mine = ++asked;
      const url = input.dataset.cron + "?cron=" + encodeURIComponent(input.value.slice(0, 200));
      const response = await fetch(url, { headers: { Accept: "application/json" } });
      const answer = await response.json().catch(() => ({}));
      if (mine !== asked) return; // a later keystroke already asked
      if (!response.ok) {
        const reason = answer.error || (Array.isArray(answer.detail) ? "the schedule is too long" : "the schedule cannot be read");
        const error = line("error", reason);
        error.dataset.scheduleError = "";
        area.replaceChildren(error);
        return;
      }
      const sentence = line("muted", answer.description + ". Next runs: ");
      sentence.dataset.scheduleSentence = "";
      answer.next_runs.forEach((moment, index) => {
        const time = document.createElement("time");
        time.dateTime = moment.at;
        time.textContent = moment.text;
        sentence.append(index ? ", " : "", time);
      });
      area.replaceChildren(sentence, ...answer.warnings.map((warning) => {
        const note = line("warning", warning);
        note.setAttribute("role", "status");
        return note;
      }));
    };
    input.addEventListener("input", () => {
      window.clearTimeout(timer);
      timer = window.setTimeout(() => show().catch(() => {}), 300);
    });
  }
}

document.addEventListener("DOMContentLoaded", () => {
  wireMenus();
  wireChipChecks();
  wireCronSentence();
});

// Bulk selection (CVE curation): a `data-select-all="<form id>"` box ticks every box of its
// page that belongs to that form, and the form's button says how many are ticked.
function wireSelectAll() {
  const boxesOf = (formId) =>
    document.querySelectorAll(`input[type="checkbox"][form="${CSS.escape(formId)}"]`);
  const recount = (formId) => {
    const form = document.getElementById(formId);
    const button = form && form.querySelector("[data-selected-count]");
    if (!button) return;
    if (!button.dataset.label) button.dataset.label = button.textContent;
    const ticked = Array.from(boxesOf(formId)).filter((box) => box.checked).length;
    button.textContent = ticked ? `${button.dataset.label} (${ticked})` : button.dataset.label;
    for (const all of document.querySelectorAll(`[data-select-all="${CSS.escape(formId)}"]`)) {
      const boxes = boxesOf(formId);
      all.checked = boxes.length > 0 && ticked === boxes.length;
      all.indeterminate = ticked > 0 && ticked < boxes.length;
    }
  };
  for (const all of document.querySelectorAll("[data-select-all]")) {
    const formId = all.dataset.selectAll;
    all.addEventListener("change", () => {
      for (const box of boxesOf(formId)) box.checked = all.checked;
      recount(formId);
    });
    for (const box of boxesOf(formId)) box.addEventListener("change", () => recount(formId));
    recount(formId);
  }
}

document.addEventListener("DOMContentLoaded", wireSelectAll);
