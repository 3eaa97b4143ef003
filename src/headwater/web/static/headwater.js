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
