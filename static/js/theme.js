// The theme switch: light, dark or the system's (prefers-color-scheme). The choice is
// remembered in localStorage and put on <html data-theme> before the first paint by the
// inline script in base.html's head; the stylesheet does the rest (color-scheme and
// light-dark()), so following the system needs no script at all.
"use strict";

(function () {
  const KEY = "switchboard-theme";
  const root = document.documentElement;

  function remember(choice) {
    try {
      if (choice === "system") localStorage.removeItem(KEY);
      else localStorage.setItem(KEY, choice);
    } catch (e) {
      // Storage blocked (a private window's settings): the choice lasts for this page.
    }
  }

  function showChoice() {
    const choice = root.dataset.theme || "system";
    document.querySelectorAll("[data-theme-choice]").forEach((button) => {
      button.setAttribute("aria-pressed", String(button.dataset.themeChoice === choice));
    });
  }

  document.addEventListener("click", (event) => {
    const button = event.target.closest("[data-theme-choice]");
    if (!button) return;
    const choice = button.dataset.themeChoice;
    root.dataset.theme = choice;
    remember(choice);
    showChoice();
  });

  // Another tab changed it: follow.
  window.addEventListener("storage", (event) => {
    if (event.key !== KEY) return;
    root.dataset.theme = event.newValue === "light" || event.newValue === "dark" ? event.newValue : "system";
    showChoice();
  });

  showChoice();
})();
