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
        failures = 0;
        endThinking();
        // The server sends escaped text, so inserting it as HTML only ever adds text.
        keepScrolled(() => text.insertAdjacentHTML("beforeend", event.data));
        bubble.dataset.after = event.lastEventId;
        showPhase(bubble, "Writing…");
      });
      source.addEventListener("done", (event) => {
        source.close();
        const template = document.createElement("template");
        template.innerHTML = event.data;
        const fresh = template.content.firstElementChild;
        if (!fresh) return;
        keepScrolled(() => bubble.replaceWith(fresh));
        htmx.process(fresh);
        refreshComposer();
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

  document.addEventListener("keydown", (event) => {
    const area = event.target;
    if (!(area instanceof HTMLTextAreaElement) || !area.closest("#composer")) return;
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      const form = composer();
      if (!form.querySelector(".send").disabled && area.value.trim()) form.requestSubmit();
    }
  });

  document.addEventListener("input", (event) => {
    const area = event.target;
    if (area instanceof HTMLTextAreaElement && area.closest("#composer")) {
      area.style.height = "auto";
      area.style.height = Math.min(area.scrollHeight, 240) + "px";
    }
  });

  document.addEventListener("click", (event) => {
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
    }
    refreshComposer();
    form.querySelector("textarea").focus();
  });

  document.addEventListener("DOMContentLoaded", () => {
    const t = thread();
    if (t) t.scrollTop = t.scrollHeight;
  });
})();
