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
  for (const form of document.querySelectorAll("form[data-confirm]")) {
    form.addEventListener("submit", (event) => {
      if (!window.confirm(form.dataset.confirm)) event.preventDefault();
    });
  }
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
