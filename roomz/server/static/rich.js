// Rich messages on the chat page (docs/protocol.md 3.8-3.9): Markdown, code, diffs,
// collapsible subjects, questions as buttons, answers, and the list of connections.
// Markdown goes through the vendored markdown-it with raw HTML off, then DOMPurify (a
// short list of tags, links to http(s) and mailto only) into a DOM fragment: no raw HTML
// from a message ever reaches the page. Code in a language the vendored highlight.js knows
// is coloured: its HTML (spans with classes, around text it escaped) goes through DOMPurify
// too. Everything else is written with textContent.
"use strict";

window.RoomzRich = (function () {
  const QUESTION = "application/x-question";
  // Questions shown, by message id, so that their answers can close them: the newest only,
  // so that a page open for weeks does not grow. The server keeps at most 50 open per user.
  const QUESTIONS_KEPT = 200;
  const questions = new Map();
  const markdown = window.markdownit({
    html: false, linkify: false, typographer: false,
    highlight: (text, language) => highlightedHtml(text, language) || "",
  });
  // A table column's alignment as a class, not markdown-it's inline style (the CSP refuses
  // inline styles, and DOMPurify is told to drop every style attribute).
  markdown.core.ruler.push("align_by_class", (state) => {
    for (const token of state.tokens) {
      const align = /text-align:\s*(left|right|center)/.exec(token.attrGet("style") || "");
      if (!align) continue;
      token.attrs = token.attrs.filter(([name]) => name !== "style");
      token.attrJoin("class", `align-${align[1]}`);
    }
  });
  const ALLOWED = {
    ALLOWED_TAGS: ["p", "br", "hr", "h1", "h2", "h3", "h4", "h5", "h6", "strong", "em", "s",
      "del", "code", "pre", "blockquote", "ul", "ol", "li", "table", "thead", "tbody", "tr",
      "th", "td", "a", "span"],
    ALLOWED_ATTR: ["href", "title", "start", "class"],
    ALLOWED_URI_REGEXP: /^(?:https?:|mailto:)/i,
    RETURN_DOM_FRAGMENT: true,
  };
  // Links open elsewhere and tell nothing of this page.
  window.DOMPurify.addHook("afterSanitizeAttributes", (node) => {
    if (node.tagName === "A") {
      node.setAttribute("target", "_blank");
      node.setAttribute("rel", "noopener noreferrer nofollow");
    }
  });

  // What highlight.js may add to code: spans with its classes, nothing else.
  const TOKENS = { ALLOWED_TAGS: ["span"], ALLOWED_ATTR: ["class"], RETURN_DOM_FRAGMENT: true };

  /** ``text`` coloured as ``language`` (HTML), or null for a language highlight.js lacks. */
  function highlightedHtml(text, language) {
    const hljs = window.hljs;
    if (!language || !hljs || !hljs.getLanguage(language)) return null;
    return hljs.highlight(text, { language, ignoreIllegals: true }).value;
  }

  const el = (tag, className, text) => {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  };

  /** True for a message this file draws: a content type, a subject, a question or answer. */
  function isRich(message) {
    return Boolean(message.content_type && message.content_type !== "text/plain"
      || message.subject || message.answer_to);
  }

  /** Markdown ``text`` (as typed) as a sanitized DOM fragment. */
  function markdownOf(text) {
    const box = el("div", "md");
    box.append(window.DOMPurify.sanitize(markdown.render(text), ALLOWED));
    return box;
  }

  function codeOf(text, language, diff) {
    const pre = el("pre", diff ? "code diff" : "code");
    const code = el("code");
    if (language) code.dataset.language = language;
    if (diff) {
      for (const line of text.split("\n")) {
        const kind = /^@@/.test(line) ? "hunk" : /^\+/.test(line) ? "add" : /^-/.test(line)
          ? "del" : "";
        code.append(el("span", kind, line + "\n"));
      }
    } else {
      const coloured = highlightedHtml(text, language);
      if (coloured === null) code.textContent = text;
      else code.append(window.DOMPurify.sanitize(coloured, TOKENS));
    }
    pre.append(code);
    return pre;
  }

  /**
   * The body of a rich ``message``; ``page`` gives ``unescaped(text)`` and ``answer(payload)``
   * (sends the answer's message: a promise of the acknowledgement, null when none came).
   */
  function render(message, page) {
    const text = page.unescaped(message.content);
    let body;
    if (message.content_type === QUESTION && message.question_data) {
      body = questionOf(message, page);
    } else if (message.answer_to) {
      body = answerOf(message, text, page);
    } else if (message.content_type === "text/markdown") {
      body = markdownOf(text);
    } else if (message.content_type === "text/code" || message.content_type === "text/diff") {
      body = codeOf(text, message.language, message.content_type === "text/diff");
    } else {
      body = el("p", "text", text);
    }
    if (!message.subject) return body;
    const details = el("details", "subject");
    details.append(el("summary", "", page.unescaped(message.subject)), body);
    return details;
  }

  function questionOf(message, page) {
    const data = message.question_data;
    const box = el("div", "question");
    box.append(el("p", "asked", page.unescaped(data.question)));
    const buttons = el("div", "answers");
    const said = el("p", "said", "");
    const chosen = new Set();
    const state = { box, data, buttons, said, closed: false };
    questions.set(message.id, state);
    if (questions.size > QUESTIONS_KEPT) questions.delete(questions.keys().next().value);

    async function send(ids, freeText) {
      setDisabled(buttons, true);
      const ack = await page.answer(answerTo(message, ids, freeText, page));
      if (ack && ack.status === "ok") {
        if (!state.closed) said.textContent = "Answered.";  // else the answer itself said so
      } else {
        said.textContent = `Not answered: ${(ack && ack.error) || "no answer from the server"}`;
        said.classList.add("bad");
        if (!state.closed) setDisabled(buttons, false);
      }
    }

    for (const choice of data.answers) {
      const label = page.unescaped(choice.label);
      const button = el("button", "answer", label);
      button.type = "button";
      button.addEventListener("click", () => {
        if (data.multi_select) {
          chosen.has(choice.id) ? chosen.delete(choice.id) : chosen.add(choice.id);
          button.setAttribute("aria-pressed", String(chosen.has(choice.id)));
        } else if (choice.free_text) {
          const own = el("input", "free-text");
          own.setAttribute("aria-label", label);
          own.placeholder = label;
          own.addEventListener("keydown", (event) => {
            if (event.key === "Enter" && own.value.trim()) send([choice.id], own.value.trim());
          });
          button.replaceWith(own);
          own.focus();
        } else {
          send([choice.id]);
        }
      });
      buttons.append(button);
    }
    if (data.multi_select) {
      const done = el("button", "send-answers", "Answer");
      done.type = "button";
      done.addEventListener("click", () => { if (chosen.size) send([...chosen]); });
      buttons.append(done);
    }
    const labels = (data.default || []).map((id) => labelOf(data, id, page));
    const until = `Open ${data.timeout} s` + (labels.length ? `; then “${labels.join(", ")}”.` : ".");
    box.append(buttons, el("p", "until", until), said);
    return box;
  }

  function labelOf(data, id, page) {
    const found = (data.answers || []).find((a) => a.id === id);
    return found ? page.unescaped(found.label) : id;
  }

  /** The message that answers ``question`` with the answers ``ids`` (and ``freeText``). */
  function answerTo(question, ids, freeText, page) {
    const labels = ids.map((id) => labelOf(question.question_data, id, page));
    const payload = { content: labels.join(", ") + (freeText ? `: ${freeText}` : ""),
      answer_to: question.id, answers: ids };
    if (freeText) payload.free_text = freeText;
    return payload;
  }

  /** Disable a question's buttons and answer field, or enable them again. */
  function setDisabled(buttons, disabled) {
    for (const control of buttons.querySelectorAll("button, input")) control.disabled = disabled;
  }

  function answerOf(message, text, page) {
    const asked = questions.get(message.answer_to);
    if (asked && (message.timed_out || !asked.data.keep_open)) {
      asked.closed = true;
      setDisabled(asked.buttons, true);
      asked.said.textContent = message.timed_out ? "Closed: timed out." : `Answered: ${text}`;
    }
    if (message.timed_out) return el("p", "text timed-out", `⏱ ${text}`);
    const box = el("p", "text answer", `↳ ${text}`);
    if (asked) box.append(el("span", "to", ` (to “${page.unescaped(asked.data.question)}”)`));
    return box;
  }

  /** The list of connections of a ``who`` acknowledgement, as list items. */
  function whoItems(connections, page) {
    return connections.map((c) => {
      const kind = c.kind || "unknown client";
      const words = [c.name ? `${kind} ${c.name}` : kind];
      if (c.display_name) words.push(page.unescaped(c.display_name));
      const item = el("li", c.you ? "you" : "", words.join(", ") + (c.you ? " (this page)" : ""));
      item.dataset.kind = kind;
      return item;
    });
  }

  return { isRich, render, whoItems };
})();
