// Keyboard shortcuts, listed in the dialog "?" opens (templates/_shortcuts.html):
//   Ctrl/Cmd+Shift+O  new chat            Shift+Esc  focus the message box
//   Esc               stop the answer     / or Ctrl/Cmd+K  search chats
// Chosen not to fight the browser or typing: the single keys act only outside text
// fields, the chords carry Shift or are ones web apps commonly take (Ctrl+K); Esc stops
// only while an answer is being written and no dialog or drawer is open.
"use strict";

(function () {
  const dialog = () => document.getElementById("shortcuts-dialog");
  const MAC = /Mac|iPhone|iPad/.test(navigator.platform || navigator.userAgent);
  let returnFocus = null;

  function isTyping(target) {
    if (!(target instanceof Element)) return false;
    if (target.closest("textarea, select, [contenteditable=''], [contenteditable=true]")) return true;
    const input = target.closest("input");
    return Boolean(input) && !["button", "checkbox", "radio", "submit", "reset", "file"].includes(input.type);
  }

  function openList() {
    const box = dialog();
    if (!box || box.open) return;
    returnFocus = document.activeElement;
    box.showModal();
  }

  function newChat() {
    const box = dialog();
    if (box) window.location.assign(box.dataset.newChatUrl);
  }

  function focusComposer() {
    const area = document.querySelector("#composer textarea");
    if (!area) return false;
    if (window.switchboardDrawer && window.switchboardDrawer.isOpen()) document.querySelector(".drawer-close").click();
    area.focus();
    return true;
  }

  function focusSearch() {
    const box = document.querySelector("#search-form input[name=q]");
    if (!box) {
      const list = dialog();
      if (list) window.location.assign(list.dataset.searchUrl);
      return;
    }
    if (window.switchboardDrawer) window.switchboardDrawer.reveal();
    box.focus();
    box.select();
  }

  function stopAnswer() {
    const stop = document.querySelector("#composer .stop-all:not([hidden])");
    if (!stop) return false;
    stop.click();
    return true;
  }

  document.addEventListener("keydown", (event) => {
    if (event.defaultPrevented || event.isComposing) return;
    const mod = MAC ? event.metaKey : event.ctrlKey;
    const key = event.key.length === 1 ? event.key.toLowerCase() : event.key;
    const modal = document.querySelector("dialog[open]");
    if (mod && event.shiftKey && !event.altKey && key === "o") {
      event.preventDefault();
      newChat();
    } else if (mod && !event.shiftKey && !event.altKey && key === "k") {
      event.preventDefault();
      if (!modal) focusSearch();
    } else if (key === "Escape" && event.shiftKey) {
      if (!modal && focusComposer()) event.preventDefault();
    } else if (key === "Escape") {
      // A dialog or the drawer takes Escape itself; the search box clears with it.
      if (modal || (window.switchboardDrawer && window.switchboardDrawer.isOpen())) return;
      if (event.target instanceof Element && event.target.closest("#search-form")) return;
      if (stopAnswer()) event.preventDefault();
    } else if (event.ctrlKey || event.metaKey || event.altKey || modal || isTyping(event.target)) {
      // Anything else is typing, or the browser's.
    } else if (key === "?") {
      event.preventDefault();
      openList();
    } else if (key === "/") {
      event.preventDefault();
      focusSearch();
    }
  });

  document.addEventListener("DOMContentLoaded", () => {
    const box = dialog();
    if (!box) return;
    if (MAC) box.querySelectorAll(".kbd-mod").forEach((kbd) => { kbd.textContent = "⌘"; });
    // Focus goes back where it was (Chromium restores it itself; others may not).
    box.addEventListener("close", () => {
      if (returnFocus && returnFocus.isConnected) returnFocus.focus();
      returnFocus = null;
    });
  });

  // The sidebar's "?" button opens the list as the key does.
  document.addEventListener("click", (event) => {
    if (event.target.closest("[data-open-shortcuts]")) openList();
  });
})();
