// The phone layout's behaviour (shell.css lays it out):
// - the sidebar is a drawer below 760 px: the header's menu button opens it, Escape, the
//   backdrop or its close button close it; while open the rest of the page is inert, so
//   focus stays in the drawer, and it goes back to the menu button on closing;
// - --app-height follows the visual viewport, which an on-screen keyboard shrinks (iOS
//   Safari does not resize the layout for it), so the composer stays above the keyboard.
"use strict";

(function () {
  const PHONE = window.matchMedia("(max-width: 760px)");
  const app = () => document.querySelector(".app");
  const toggles = () => document.querySelectorAll(".drawer-toggle");

  function isOpen() {
    const frame = app();
    return Boolean(frame && frame.dataset.drawer === "open");
  }

  function setOpen(open, { restoreFocus = true } = {}) {
    const frame = app();
    if (!frame) return;
    const sidebar = frame.querySelector(".sidebar");
    const main = frame.querySelector("main");
    const backdrop = frame.querySelector(".drawer-backdrop");
    if (open) frame.dataset.drawer = "open";
    else delete frame.dataset.drawer;
    if (backdrop) backdrop.hidden = !open;
    if (main) main.inert = open;
    toggles().forEach((button) => button.setAttribute("aria-expanded", String(open)));
    if (open) {
      const first = sidebar.querySelector("#new-chat") || sidebar.querySelector("a, button, input");
      if (first) first.focus();
    } else if (restoreFocus && sidebar.contains(document.activeElement)) {
      const toggle = toggles()[0];
      if (toggle) toggle.focus();
    }
  }

  // Opens the drawer if the sidebar is one (the search shortcut needs its box shown).
  window.switchboardDrawer = {
    reveal() {
      if (PHONE.matches && !isOpen()) setOpen(true);
    },
    isOpen,
  };

  document.addEventListener("click", (event) => {
    if (event.target.closest(".drawer-toggle")) setOpen(!isOpen());
    else if (event.target.closest(".drawer-close, .drawer-backdrop")) setOpen(false);
  });

  document.addEventListener("keydown", (event) => {
    if (event.key !== "Escape" || event.shiftKey || !isOpen()) return;
    if (document.querySelector("dialog[open]")) return; // the dialog closes first
    event.preventDefault();
    setOpen(false);
  });

  // Back to a wide window: the sidebar is a column again, nothing is inert.
  PHONE.addEventListener("change", () => {
    if (!PHONE.matches && isOpen()) setOpen(false, { restoreFocus: false });
  });

  const viewport = window.visualViewport;
  if (viewport) {
    // Not while pinch-zoomed: the visual viewport is then smaller than the layout's.
    const fit = () => {
      if (Math.abs(viewport.scale - 1) > 0.01) return;
      document.documentElement.style.setProperty("--app-height", viewport.height + "px");
    };
    viewport.addEventListener("resize", fit);
    fit();
  }
})();
