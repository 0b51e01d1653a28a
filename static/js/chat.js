// Chat page behaviour: the composer, and following answers as they stream.
//
// Streaming uses EventSource directly rather than htmx's SSE extension: that
// extension reopens a failed stream from its first URL, which forgets where the
// text stopped, at fixed doubling delays without jitter. Here a reopened stream
// asks for the text after what the page shows (?after=), with jittered backoff.
"use strict";

(function () {
  const thread = () => document.getElementById("thread");
  const composer = () => document.getElementById("composer");

  function nearBottom(el) {
    return el.scrollHeight - el.scrollTop - el.clientHeight < 120;
  }

  function keepScrolled(fn) {
    const t = thread();
    const stick = t && nearBottom(t);
    fn();
    if (t && stick) t.scrollTop = t.scrollHeight;
  }

  function activeBubble() {
    return document.querySelector("#thread [data-stream-url]");
  }

  // The composer is busy while a message is being sent or an answer is streaming.
  function refreshComposer() {
    const form = composer();
    if (!form) return;
    const streaming = Boolean(activeBubble());
    const sending = form.classList.contains("is-sending");
    form.querySelector(".send").disabled = streaming || sending;
    form.querySelector(".send").hidden = streaming;
    form.querySelector(".stop-all").hidden = !streaming;
    form.querySelector("textarea").disabled = sending;
    form.classList.toggle("is-busy", streaming || sending);
  }

  // A failed stream is opened again after 1 s, 2 s, 4 s ... up to 30 s, each delay
  // +-20% at random (never above 30 s) so that the pages of many users do not all come
  // back at the same moment after a restart. A delta resets the count.
  const RETRY_FIRST_MS = 1000;
  const RETRY_MAX_MS = 30000;
  const RETRY_JITTER = 0.2;

  function retryDelay(failures) {
    const nominal = Math.min(RETRY_MAX_MS, RETRY_FIRST_MS * 2 ** failures);
    const jittered = nominal * (1 + RETRY_JITTER * (2 * Math.random() - 1));
    return Math.min(RETRY_MAX_MS, jittered);
  }

  // The bubble is streaming: its badge says what the model is doing now.
  function showPhase(bubble, label) {
    bubble.classList.replace("is-pending", "is-streaming");
    const badge = bubble.querySelector(".badge--live");
    if (badge && badge.lastChild.textContent !== label) badge.lastChild.textContent = label;
  }

  function follow(bubble) {
    if (bubble.dataset.following) return;
    bubble.dataset.following = "1";
    const text = bubble.querySelector(".stream-text");
    // The thinking, if the model reasons: a collapsed block that fills as it streams,
    // then says how long it took once the answer begins.
    const reasoning = bubble.querySelector(".reasoning");
    const reasoningText = reasoning && reasoning.querySelector(".reasoning__text");
    let thinkingSince = reasoning && !reasoning.hidden
      ? performance.now() - 1000 * parseFloat(reasoning.dataset.thinkingFor || "0") : null;
    const endThinking = () => {
      if (!reasoning || !reasoning.classList.contains("is-thinking")) return;
      reasoning.classList.remove("is-thinking");
      if (reasoning.hidden || thinkingSince === null) return;
      const seconds = Math.max(1, Math.round((performance.now() - thinkingSince) / 1000));
      reasoning.querySelector(".reasoning__label").textContent = "Thought for " + seconds + " s";
    };
    const speaker = window.switchboardVoice(); // announce.js: read out once, politely
    let failures = 0;
    const open = () => {
      if (!bubble.isConnected) return;
      // ?after= is the length of the texts shown (the thinking, then the answer: one
      // offset space): the stream sends only what follows.
      const url = bubble.dataset.streamUrl + "?after=" + encodeURIComponent(bubble.dataset.after || "0");
      const source = new EventSource(url);
      source.addEventListener("reasoning", (event) => {
        failures = 0;
        if (!reasoning) return;
        if (thinkingSince === null) thinkingSince = performance.now();
        reasoning.hidden = false;
        // Escaped by the server like the answer's text: inserting it only adds text.
        keepScrolled(() => reasoningText.insertAdjacentHTML("beforeend", event.data));
        bubble.dataset.after = event.lastEventId;
        showPhase(bubble, "Thinking…");
      });
      source.addEventListener("delta", (event) => {
        if (!bubble.isConnected) {
          // Swapped out (another version is shown now): the answer goes on without us,
          // and showing its version again follows it from what was saved.
          source.close();
          return;
        }
        failures = 0;
        endThinking();
        // The server sends escaped text, so inserting it as HTML only ever adds text.
        keepScrolled(() => text.insertAdjacentHTML("beforeend", event.data));
        speaker.hear(event.data);
        bubble.dataset.after = event.lastEventId;
        showPhase(bubble, "Writing…");
      });
      source.addEventListener("done", (event) => {
        source.close();
        const template = document.createElement("template");
        template.innerHTML = event.data;
        const fresh = template.content.firstElementChild;
        // A failed answer's alert announces itself (role=alert).
        speaker.end(fresh && fresh.classList.contains("is-cancelled") ? "Answer stopped." : "");
        if (!fresh) return;
        keepScrolled(() => bubble.replaceWith(fresh));
        htmx.process(fresh);
        refreshComposer();
        // The chat's running total and the next send's estimate read this.
        htmx.trigger(document.body, "chat:answered");
      });
      source.addEventListener("error", () => {
        // The browser's own retry comes back at a fixed pace (and gives up on an error
        // status): close, and open again after the backoff from the last text shown.
        source.close();
        setTimeout(open, retryDelay(failures));
        failures += 1;
      });
    };
    open();
  }

  function followAll(root) {
    const bubbles = root.matches && root.matches("[data-stream-url]")
      ? [root] : Array.from(root.querySelectorAll("[data-stream-url]"));
    bubbles.forEach(follow);
    refreshComposer();
  }

  htmx.onLoad(followAll);

  // Attachments. The files chosen (picked, pasted or dropped) live in `attached`; the
  // form's file input always holds exactly them, so htmx's multipart post sends them.
  // The limits are checked here only to answer at once: the server checks everything
  // again, the type of each file by its bytes.
  let attached = [];
  let previews = []; // the object URLs of the image previews on show

  function sizeText(bytes) {
    if (bytes < 1024) return bytes + " bytes";
    if (bytes < 1024 * 1024) return (bytes / 1024).toFixed(1) + " KB";
    return (bytes / (1024 * 1024)).toFixed(1) + " MB";
  }

  function showComposerError(text) {
    const box = document.getElementById("composer-error");
    if (!box) return;
    const alert = document.createElement("div");
    alert.className = "alert alert--error";
    alert.setAttribute("role", "alert");
    alert.textContent = text;
    box.replaceChildren(alert);
  }

  // The first limit `files` (added to those attached) would break, in words, or null.
  function overLimit(form, files) {
    const maxFiles = Number(form.dataset.maxFiles);
    const maxFile = Number(form.dataset.maxFileBytes);
    const maxTotal = Number(form.dataset.maxTotalBytes);
    const all = attached.concat(files);
    if (all.length > maxFiles) {
      return `A message can carry at most ${maxFiles} files (this one would have ${all.length}).`;
    }
    const big = files.find((file) => file.size > maxFile);
    if (big) return `“${big.name}” is ${sizeText(big.size)}: a file can be at most ${sizeText(maxFile)}.`;
    const total = all.reduce((sum, file) => sum + file.size, 0);
    if (total > maxTotal) {
      return `These files come to ${sizeText(total)}: the files of one message can be at most ${sizeText(maxTotal)} together.`;
    }
    return null;
  }

  function syncInput(form) {
    const input = form.querySelector("input[type=file][name=attachments]");
    const transfer = new DataTransfer();
    attached.forEach((file) => transfer.items.add(file));
    input.files = transfer.files;
  }

  function chipFor(file, index) {
    const item = document.createElement("li");
    const chip = document.createElement("span");
    const image = file.type.startsWith("image/");
    chip.className = "attachment " + (image ? "attachment--image" : "attachment--file");
    chip.title = `${file.name} · ${sizeText(file.size)}`;
    if (image) {
      const thumb = document.createElement("img");
      thumb.src = URL.createObjectURL(file);
      previews.push(thumb.src);
      thumb.alt = file.name;
      chip.append(thumb);
    } else {
      const icon = document.createElement("span");
      icon.className = "attachment__icon";
      icon.setAttribute("aria-hidden", "true");
      icon.textContent = /\.pdf$/i.test(file.name) ? "PDF" : "FILE";
      const name = document.createElement("span");
      name.className = "attachment__name";
      name.textContent = file.name;
      const size = document.createElement("span");
      size.className = "attachment__size";
      size.textContent = sizeText(file.size);
      chip.append(icon, name, size);
    }
    const remove = document.createElement("button");
    remove.type = "button";
    remove.className = "attachment__remove";
    remove.dataset.index = String(index);
    remove.setAttribute("aria-label", "Remove " + file.name);
    remove.textContent = "×";
    chip.append(remove);
    item.append(chip);
    return item;
  }

  function renderAttached(form) {
    const list = document.getElementById("composer-attachments");
    // The previews shown so far go with their chips (each holds its file in memory).
    const shown = previews;
    previews = [];
    list.replaceChildren(...attached.map(chipFor));
    shown.forEach((url) => URL.revokeObjectURL(url));
    list.hidden = attached.length === 0;
    syncInput(form);
  }

  function attach(files) {
    const form = composer();
    if (!form || !files.length) return;
    const refusal = overLimit(form, files);
    if (refusal) {
      showComposerError(refusal);
      return;
    }
    document.getElementById("composer-error").replaceChildren();
    attached = attached.concat(files);
    renderAttached(form);
  }

  function clearAttached() {
    const form = composer();
    attached = [];
    if (form) renderAttached(form);
  }

  document.addEventListener("change", (event) => {
    const input = event.target;
    if (!(input instanceof HTMLInputElement) || input.type !== "file" || !input.closest("#composer")) return;
    // The picker replaced the input's files with its choice: add those to the rest.
    const picked = Array.from(input.files);
    syncInput(composer());
    attach(picked);
  });

  document.addEventListener("paste", (event) => {
    if (!(event.target instanceof Element) || !event.target.closest("#composer")) return;
    const files = Array.from((event.clipboardData && event.clipboardData.files) || []);
    if (!files.length) return; // plain text pastes as usual
    event.preventDefault();
    attach(files);
  });

  // Dropping files anywhere on the chat attaches them (instead of the browser opening them).
  const carriesFiles = (event) => event.dataTransfer && Array.from(event.dataTransfer.types).includes("Files");
  document.addEventListener("dragover", (event) => {
    if (!carriesFiles(event) || !composer() || !event.target.closest || !event.target.closest(".chat")) return;
    event.preventDefault();
    composer().classList.add("is-dropping");
  });
  document.addEventListener("dragleave", (event) => {
    if (composer() && !event.relatedTarget) composer().classList.remove("is-dropping");
  });
  document.addEventListener("drop", (event) => {
    if (!carriesFiles(event) || !composer() || !event.target.closest || !event.target.closest(".chat")) return;
    event.preventDefault();
    composer().classList.remove("is-dropping");
    attach(Array.from(event.dataTransfer.files));
  });

  document.addEventListener("keydown", (event) => {
    const area = event.target;
    if (!(area instanceof HTMLTextAreaElement)) return;
    // The composer and a message being edited send on Enter alike (Shift+Enter: a new line).
    const form = area.closest("#composer, form.edit");
    if (!form) return;
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      const send = form.querySelector("button[type=submit]");
      // The composer may send files alone; an edit needs its text.
      const ready = area.value.trim() || (form.id === "composer" && attached.length);
      if (!send.disabled && ready) form.requestSubmit();
    }
  });

  document.addEventListener("input", (event) => {
    const area = event.target;
    if (area instanceof HTMLTextAreaElement && area.closest("#composer")) {
      area.style.height = "auto";
      area.style.height = Math.min(area.scrollHeight, 240) + "px";
    }
  });

  // An alias picked in the composer answers instead of the provider and model (shown
  // dimmed): picking a provider or a model again means them, so the alias is cleared.
  document.addEventListener("change", (event) => {
    const pick = event.target;
    if (!(pick instanceof HTMLSelectElement) || !pick.closest("#composer")) return;
    if (pick.name !== "provider" && pick.name !== "model") return;
    const alias = composer().querySelector("select[name=alias]");
    if (alias) alias.value = "";
  });

  document.addEventListener("click", (event) => {
    const remove = event.target.closest("#composer-attachments .attachment__remove");
    if (remove) {
      attached.splice(Number(remove.dataset.index), 1);
      renderAttached(composer());
      return;
    }
    if (event.target.closest(".stop-all")) {
      const stop = activeBubble() && activeBubble().querySelector(".stop");
      if (stop) stop.click();
    }
  });

  document.addEventListener("htmx:beforeSend", (event) => {
    if (event.detail.elt === composer()) {
      composer().classList.add("is-sending");
      refreshComposer();
    }
  });

  document.addEventListener("htmx:afterRequest", (event) => {
    const form = composer();
    if (event.detail.elt !== form) return;
    form.classList.remove("is-sending");
    const xhr = event.detail.xhr;
    if (event.detail.successful && !xhr.getResponseHeader("HX-Retarget")) {
      const area = form.querySelector("textarea");
      area.value = "";
      area.style.height = "auto";
      document.getElementById("composer-error").replaceChildren();
      clearAttached();
    }
    refreshComposer();
    form.querySelector("textarea").focus();
  });

  document.addEventListener("DOMContentLoaded", () => {
    const t = thread();
    if (t) t.scrollTop = t.scrollHeight;
  });
})();
