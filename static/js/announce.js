// What a screen reader hears of a streamed answer (chat.js gives it each delta).
"use strict";

(function () {
  // What a screen reader hears of a streamed answer: its text once, in sentences. The
  // thread is not a live region (each token would be an announcement of its own, and the
  // final swap of the bubble would read the whole answer again); the text goes to a
  // polite live region instead, a sentence (or a line, or ~300 characters) at a time.
  // The last end of a sentence (a stop then a space: "3.5" is no end) or of a line.
  const SENTENCE_END = /(?:[.!?:;](?=\s)|\n)[^.!?:;\n]*$/;

  function announce(text) {
    const region = document.getElementById("answer-announcer");
    if (!region || !text.trim()) return;
    const line = document.createElement("p");
    line.textContent = text.trim();
    region.append(line);
    // Read lines are of no more use; removals are not announced.
    while (region.childElementCount > 20) region.firstElementChild.remove();
  }

  // One answer's voice: `hear` takes each delta (escaped text), `end` says the rest.
  function voice() {
    let heard = "";
    return {
      hear(escaped) {
        const template = document.createElement("template");
        template.innerHTML = escaped;
        heard += template.content.textContent;
        const end = heard.search(SENTENCE_END);
        if (end >= 0) {
          announce(heard.slice(0, end + 1));
          heard = heard.slice(end + 1);
        } else if (heard.length > 300) {
          // No end in sight (a list of words, a long line of code): up to the last space.
          const space = heard.lastIndexOf(" ");
          const cut = space > 0 ? space : heard.length;
          announce(heard.slice(0, cut));
          heard = heard.slice(cut);
        }
      },
      end(ending) {
        announce(heard);
        heard = "";
        if (ending) announce(ending);
      },
    };
  }

  window.switchboardVoice = voice;
})();
