// Headwater's small enhancements: live tables while runs are under way, and confirmations.
"use strict";

const REFRESH_MS = 2000;

function hasActiveRun(element) {
  return element.querySelector('[data-state="pending"], [data-state="running"]') !== null;
}

async function refresh(element) {
  const response = await fetch(window.location.href, { headers: { Accept: "text/html" } });
  if (!response.ok) return;
  const page = new DOMParser().parseFromString(await response.text(), "text/html");
  const fresh = page.getElementById(element.id);
  if (fresh) element.replaceWith(fresh);
}

function watch() {
  for (const element of document.querySelectorAll("[data-refresh]")) {
    if (hasActiveRun(element)) {
      refresh(element).catch(() => {});
    }
  }
}

document.addEventListener("DOMContentLoaded", () => {
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

document.addEventListener("DOMContentLoaded", () => {
  wireEnablers();
  wireToggles();
  wirePreview();
  wireNothingPasses();
});
