// Chat page behaviour: the composer, and following answers as they stream.
//
// Streaming uses EventSource directly rather than htmx's SSE extension: that
// extension replaces a closed EventSource with a new one, which forgets the last
// event id, while resuming exactly where the text stopped is the whole point here.
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

  function follow(bubble) {
    if (bubble.dataset.following) return;
    bubble.dataset.following = "1";
    const text = bubble.querySelector(".stream-text");
    const open = () => {
      const url = bubble.dataset.streamUrl + "?after=" + encodeURIComponent(bubble.dataset.after || "0");
      const source = new EventSource(url);
      source.addEventListener("delta", (event) => {
        // The server sends escaped text, so inserting it as HTML only ever adds text.
        keepScrolled(() => text.insertAdjacentHTML("beforeend", event.data));
        bubble.dataset.after = event.lastEventId;
        if (!bubble.classList.contains("is-streaming")) {
          bubble.classList.replace("is-pending", "is-streaming");
          const badge = bubble.querySelector(".badge--live");
          if (badge) badge.lastChild.textContent = "Writing…";
        }
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
        // CONNECTING means the browser reconnects by itself (sending Last-Event-ID).
        // CLOSED means it gave up: start again from the last id we saw.
        if (source.readyState === EventSource.CLOSED && bubble.isConnected) {
          setTimeout(open, 1000);
        }
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
