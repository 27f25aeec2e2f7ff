// The Roomz chat page: the sign-in form, and the chat over Socket.IO once signed in.
// Plain JavaScript, no build step. Whatever people send is written with textContent only;
// rich messages (Markdown, questions) are drawn by rich.js.
"use strict";

(function () {
  // The terminal's waits between attempts to reach the server (roomz.cli, roomz.backoff):
  // 1 s, doubling up to 60 s, each ±25%; and it never gives up.
  const RECONNECT_DELAY_MS = 1000;
  const RECONNECT_DELAY_MAX_MS = 60000;
  const RECONNECT_JITTER = 0.25;
  const ACK_TIMEOUT_MS = 10000;  // the client library's: a send unanswered by then failed
  const UNANSWERED_KEPT = 20;  // texts without an answer whose key a send again reuses
  const HISTORY_ON_LOAD = 50;  // messages from before the page, shown dimmed as it opens
  // Asked for again when the server did not send them: after 1 s, doubling up to 30 s, while
  // connected, 12 times (about 5 minutes), and once more after each reconnect.
  const HISTORY_RETRY_MS = 1000;
  const HISTORY_RETRY_MAX_MS = 30000;
  const HISTORY_RETRIES = 12;
  const NEAR_BOTTOM_PX = 48;  // closer than this to the end counts as reading the newest
  // A page left open for weeks stays light: the list keeps its newest lines (the server's
  // history keeps the messages), and the ids kept against repeats are bounded too.
  const LINES_KEPT = 1000;
  const IDS_KEPT = 5000;

  const $ = (id) => document.getElementById(id);
  const status = $("status");

  function setStatus(text, state) {
    status.textContent = text;
    status.dataset.state = state;
  }

  /** Write ``text`` into ``element`` as text, with the class ``kind`` ("bad", "ok" or ""). */
  function say(element, text, kind) {
    element.textContent = text;
    element.className = "said " + (kind || "");
  }

  /** The text of a field the server sent HTML-escaped (Python's html.escape), as typed. */
  const ESCAPED = { "&amp;": "&", "&lt;": "<", "&gt;": ">", "&quot;": "\"", "&#x27;": "'" };
  function unescaped(text) {
    return String(text == null ? "" : text).replace(/&(amp|lt|gt|quot|#x27);/g, (e) => ESCAPED[e]);
  }

  /** "Name (email)", or the email alone, as the terminal labels a connection. */
  function label(user) {
    if (!user) return "someone";
    const name = unescaped(user.display_name).trim();
    return name ? `${name} (${user.email})` : String(user.email);
  }

  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

  /** POST ``body`` as JSON; the answer's status, headers and JSON body (null if none). */
  async function postJson(path, body) {
    const response = await fetch(path, {
      method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body), credentials: "same-origin", cache: "no-store",
    });
    let json = null;
    try { json = await response.json(); } catch (e) { /* not JSON: json stays null */ }
    return { status: response.status, headers: response.headers, json };
  }

  /** What a problem answer says to people (its detail), or what its status means. */
  function problemDetail(answer) {
    if (answer.json && typeof answer.json.detail === "string") return answer.json.detail;
    return `The server answered ${answer.status}.`;
  }

  // -- signed out: send the link, then wait until it is used -------------------------------

  function signInView() {
    const form = $("sign-in-form");
    const email = $("email");
    const said = $("sign-in-said");
    let attempt = 0;  // each new link stops the wait for the one before

    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const mine = ++attempt;
      const address = email.value.trim();
      if (!address) {
        say(said, "Enter your email address.", "bad");
        email.focus();
        return;
      }
      say(said, "Sending the sign-in link…", "");
      let answer;
      try {
        answer = await postJson("/auth/request-magic-link", { email: address });
      } catch (e) {
        say(said, "Could not reach the server. Check your connection and try again.", "bad");
        return;
      }
      if (answer.status !== 200) {
        const retry = answer.headers.get("Retry-After");
        const wait = answer.status === 429 && retry ? ` Try again in ${retry} s.` : "";
        say(said, `No link sent: ${problemDetail(answer)}${wait}`, "bad");
        email.focus();
        return;
      }
      const offer = answer.json && answer.json.sign_in;
      showSent(said, address, offer);
      if (offer) waitForSignIn(offer, said, () => mine === attempt);
    });
  }

  function showSent(said, address, offer) {
    said.replaceChildren();
    said.className = "said ok";
    const lines = [`A sign-in link is on its way to ${address}.`,
      "Open it in this browser to sign in, or open it on another device " +
      "and enter this code there:"];
    for (const text of offer ? lines : lines.slice(0, 1)) {
      const p = document.createElement("p");
      p.textContent = text;
      said.append(p);
    }
    if (offer) {
      const code = document.createElement("p");
      code.className = "the-code";
      code.textContent = offer.code;
      const waiting = document.createElement("p");
      waiting.textContent = "This page signs in by itself once you have.";
      said.append(code, waiting);
    }
  }

  /** Poll until the link is confirmed (then this browser has the cookie), as the terminal does. */
  async function waitForSignIn(offer, said, current) {
    const interval = Math.max(1, Number(offer.interval) || 2) * 1000;
    const deadline = Date.now() + (Number(offer.expires_in) || 900) * 1000;
    let wait = 0;  // the first poll at once: the link's page then offers the code field
    while (current()) {
      await sleep(wait);
      if (!current()) return;
      if (Date.now() > deadline) {
        say(said, "The sign-in link expired. Send a new one.", "bad");
        return;
      }
      wait = interval;
      let answer;
      try {
        answer = await postJson("/auth/sign-in/poll", { id: offer.id });
      } catch (e) {
        continue;  // the network, for a moment: try again
      }
      if (answer.status === 200 && answer.json && answer.json.status === "ok") {
        location.assign("/");
        return;
      }
      if (answer.status === 200 || answer.status >= 500) continue;
      if (answer.status === 429) {
        wait = Math.max(interval, 1000 * (Number(answer.headers.get("Retry-After")) || 0));
        continue;
      }
      if (answer.status === 410 && await signedInAlready()) {
        location.assign("/");  // the link was opened in another tab of this browser
        return;
      }
      say(said, problemDetail(answer), "bad");
      return;
    }
  }

  async function signedInAlready() {
    try {
      return (await fetch("/auth/me", { credentials: "same-origin", cache: "no-store" })).ok;
    } catch (e) {
      return false;
    }
  }

  // -- signed in: the chat -----------------------------------------------------------------

  function chatView() {
    const list = $("messages");
    const more = $("more");
    const box = $("text");
    const composeSaid = $("compose-said");
    const nameSaid = $("name-said");
    const seen = new Set();  // message ids shown already
    let me = null;  // this connection's user, from "authenticated"
    let myConnection = null;
    let myName = null;  // set again after each reconnect: the server forgets it
    let signedOut = false;
    let cursor = null;  // where the page stands in the user's history (protocol.md 3.7)
    let sendOnce = false;  // the server says a message sent again with its key once (3.5)
    // Keys of texts sent that got no answer, by text: sent again, a text takes its key.
    const unanswered = new Map();

    const socket = io({
      reconnection: true, reconnectionAttempts: Infinity,
      reconnectionDelay: RECONNECT_DELAY_MS, reconnectionDelayMax: RECONNECT_DELAY_MAX_MS,
      randomizationFactor: RECONNECT_JITTER,
      // Asked on every (re)connect: what who lists this connection as, and the cursor
      // after which the server replays what the page missed, before anything new.
      auth: (send) => send({ client: { kind: "page" }, history: { after: cursor } }),
    });

    // The list follows new messages unless the person has scrolled up to read.
    function nearBottom() {
      return list.scrollHeight - list.scrollTop - list.clientHeight < NEAR_BOTTOM_PX;
    }
    function append(item) {
      const follow = nearBottom();
      list.append(item);
      keepNewest();
      if (follow) list.scrollTop = list.scrollHeight;
      else more.hidden = false;
    }
    function keepNewest() {
      // The browser's scroll anchoring keeps what the person reads in place meanwhile.
      while (list.children.length > LINES_KEPT) list.firstElementChild.remove();
    }
    list.addEventListener("scroll", () => { if (nearBottom()) more.hidden = true; });
    more.addEventListener("click", () => {
      list.scrollTop = list.scrollHeight;
      more.hidden = true;
      box.focus();
    });

    function timeOf(iso) {
      const time = document.createElement("time");
      const when = iso ? new Date(iso) : new Date();
      if (!isNaN(when)) {
        time.dateTime = when.toISOString();
        time.title = when.toLocaleString();
        time.textContent = when.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
      }
      return time;
    }

    function showMessage(message) {
      const item = messageItem(message);
      if (item) append(item);
    }

    /** The list item of ``message``, or null if it was shown already (by id). */
    function messageItem(message) {
      if (!message || seen.has(message.id)) return null;
      seen.add(message.id);
      if (seen.size > IDS_KEPT) seen.delete(seen.values().next().value);  // the oldest
      const item = document.createElement("li");
      item.className = "message" + (myConnection && message.connection_id === myConnection
        ? " mine" : "");
      const meta = document.createElement("p");
      meta.className = "meta";
      const who = document.createElement("span");
      who.className = "who";
      who.textContent = label(message.user);
      meta.append(who, timeOf(message.timestamp));
      let text;
      if (RoomzRich.isRich(message)) {
        text = RoomzRich.render(message, { unescaped, answer });
      } else {
        text = document.createElement("p");
        text.className = "text";
        text.textContent = unescaped(message.content);
      }
      item.append(meta, text);
      return item;
    }

    /** Send the answer to a question (rich.js writes it): the acknowledgement, or null. */
    function answer(payload) {
      return new Promise((resolve) => {
        socket.timeout(ACK_TIMEOUT_MS).emit("message", payload,
          (error, ack) => resolve(error ? null : ack));
      });
    }

    // Who is here: the user's connections, listed when the panel opens, kept current.
    const who = $("who");
    function listWho() {
      if (!who.open || !socket.connected) return;
      socket.timeout(ACK_TIMEOUT_MS).emit("who", {}, (error, ack) => {
        const list = $("who-list");
        if (error || !ack || ack.status !== "ok") {
          list.replaceChildren(Object.assign(document.createElement("li"), {
            className: "bad", textContent: (ack && ack.error) || "The server did not answer." }));
          return;
        }
        list.replaceChildren(...RoomzRich.whoItems(ack.connections, { unescaped }));
      });
    }
    who.addEventListener("toggle", listWho);

    /** A line about the chat (not a message) at the end of the list; its item. */
    function note(text, kind, iso) {
      const item = document.createElement("li");
      item.className = "note " + (kind || "");
      const words = document.createElement("span");
      words.textContent = text + " ";
      item.append(words, timeOf(iso));
      append(item);
      return item;
    }

    function endedSession(why) {
      if (signedOut) return;
      signedOut = true;
      socket.disconnect();
      setStatus("Signed out", "offline");
      const item = document.createElement("li");
      item.className = "note bad";
      const again = document.createElement("a");
      again.href = "/";
      again.textContent = "Sign in again";
      item.append(`${why} `, again);
      append(item);
      box.disabled = true;
    }

    // The connection, and what the indicator says about it.
    socket.io.on("open", () => {
      const engine = socket.io.engine;
      status.dataset.transport = engine.transport.name;
      engine.on("upgrade", (transport) => { status.dataset.transport = transport.name; });
    });
    socket.on("connect", () => setStatus("Connected", "online"));
    socket.io.on("reconnect_attempt", (attempt) => {
      setStatus(`Reconnecting… (attempt ${attempt})`, "reconnecting");
    });
    socket.on("disconnect", (reason) => {
      if (signedOut) return;
      if (reason === "io server disconnect") {  // the server ended it: its session is over
        endedSession("The server ended this connection.");
      } else if (reason !== "io client disconnect") {
        setStatus("Reconnecting…", "reconnecting");
        note("Lost the connection to the server; reconnecting.", "");
      }
    });
    socket.on("connect_error", (error) => {
      if (socket.active) {  // the server is away: Socket.IO tries again by itself
        setStatus("Reconnecting… (the server is not reachable)", "reconnecting");
        return;
      }
      const why = String(error && error.message || "refused");
      if (why.startsWith("Not authenticated")) {
        endedSession(`Signed out: ${why}.`);
      } else {  // full, or too many connections: try again later, as the terminal does
        setStatus(`Refused: ${why}. Trying again in a minute.`, "offline");
        setTimeout(() => { if (!signedOut) socket.connect(); }, RECONNECT_DELAY_MAX_MS);
      }
    });
    socket.on("session_ended", (data) => {
      const reason = data && typeof data.reason === "string" ? data.reason : "ended";
      endedSession(`Your session ended (${reason}).`);
    });

    socket.on("authenticated", (data) => {
      me = data && data.user;
      myConnection = data && data.connection_id;
      sendOnce = Array.isArray(data && data.features) && data.features.includes("send_once");
      if (myName) setName(myName, true);
      caughtUp(data && data.history);
    });
    for (const event of ["user_joined", "user_left", "display_name_changed", "connect"]) {
      socket.on(event, listWho);
    }
    socket.on("user_joined", (data) => {
      const n = data && data.total_connections;
      note(`${label(data && data.user)} joined (${n} connection${n === 1 ? "" : "s"})`, "",
           data && data.timestamp);
    });
    socket.on("user_left", (data) => {
      note(`${label(data && data.user)} left (${data && data.remaining_connections} remaining)`,
           "", data && data.timestamp);
    });
    socket.on("display_name_changed", (data) => {
      const user = data && data.user;
      if (!user) return;
      note(user.display_name ? `${user.email} is now called ${label(user)}`
        : `${user.email} cleared their display name`, "", data.timestamp);
    });

    // -- history (protocol.md 3.7): what came before the page, and what it missed ----------
    // A server without the extension sends no "history" in "authenticated": none of this runs.
    // The history on load: until it is shown (or refused for good), asked for again.
    const earlier = { limit: 0, tries: 0, asks: 0, timer: 0, done: false, note: null, why: "" };

    function onMessage(message) {
      if (message && typeof message.cursor === "string") cursor = message.cursor;
      showMessage(message);
    }
    socket.on("message", onMessage);
    socket.on("replay", (data) => {  // after "authenticated", before any live message
      for (const message of (data && data.messages) || []) onMessage(message);
    });

    function caughtUp(history) {
      if (!history || typeof history !== "object") return;
      const missed = Number(history.missed) || 0;
      if (history.complete === false) {
        note("Some messages sent while you were away are gone: the server keeps the last " +
             `${history.messages} only.`, "bad gone");
      }
      if (missed > 0) {  // the replay follows: its messages move the cursor
        note(`— ${missed} message${missed === 1 ? "" : "s"} while you were away —`, "gap");
      } else if (typeof history.cursor === "string") {
        cursor = history.cursor;  // where the history ends now
      }
      // A reconnect asks again at once, even when the retries are spent; within its window.
      if (earlier.limit) earlier.tries = Math.min(earlier.tries, HISTORY_RETRIES);
      earlier.limit = Math.min(HISTORY_ON_LOAD, Number(history.messages) || HISTORY_ON_LOAD);
      askEarlier();
    }

    /** Ask for the last messages from before the page, unless shown or refused for good. */
    function askEarlier() {
      clearTimeout(earlier.timer);
      if (earlier.done || signedOut) return;
      const waiting = `Earlier messages not shown yet: ${earlier.why}; asking again`;
      if (!socket.connected) {  // each reconnect asks again
        tellEarlier(`${waiting} once reconnected.`, "");
        return;
      }
      if (earlier.note) tellEarlier(`${waiting} now.`, "");
      const ask = ++earlier.asks;
      socket.timeout(ACK_TIMEOUT_MS).emit("history", { limit: earlier.limit }, (error, ack) => {
        if (earlier.done) return;
        if (!error && ack && Array.isArray(ack.messages)) {
          earlier.done = true;
          if (earlier.note) earlier.note.remove();
          showEarlier(ack.messages);
        } else if (ask === earlier.asks) {  // not an older request, answered after a reconnect
          notShown(error, ack);
        }
      });
    }

    /** The messages from before the page, dimmed, in order, above all shown since it opened. */
    function showEarlier(messages) {
      const items = messages.map(messageItem).filter(Boolean);  // skips those shown live
      items.forEach((item) => item.classList.add("history"));
      const follow = nearBottom();
      list.prepend(...items);
      keepNewest();
      if (follow) list.scrollTop = list.scrollHeight;
    }

    /** No answer, or a refusal: asked again later if it may pass, else said once. */
    function notShown(error, ack) {
      const code = Number(ack && ack.code);
      if (!error && !(code >= 500 || code === 408 || code === 429)) {
        earlier.done = true;
        tellEarlier(`Earlier messages not shown: ${(ack && ack.error) || "refused"}.`, "bad");
        return;
      }
      earlier.why = error ? "the server did not answer" : "the server is busy";
      if (++earlier.tries > HISTORY_RETRIES) {
        tellEarlier(`Earlier messages not shown: ${earlier.why}. Reload the page to ask again.`,
                    "bad");
        return;
      }
      countDown(Math.min(HISTORY_RETRY_MS * 2 ** (earlier.tries - 1), HISTORY_RETRY_MAX_MS) / 1000);
    }
    function countDown(seconds) {
      tellEarlier(`Earlier messages not shown yet: ${earlier.why}; asking again in ${seconds} s.`,
                  "");
      earlier.timer = setTimeout(() => (seconds > 1 ? countDown(seconds - 1) : askEarlier()), 1000);
    }

    /** Say where the earlier messages are, on one line of the list, said again in place. */
    function tellEarlier(text, kind) {
      if (!earlier.note) {
        earlier.note = note(text, kind);
        return;
      }
      earlier.note.className = "note " + kind;
      earlier.note.firstChild.textContent = text + " ";
    }

    // Sending: Enter sends, Shift+Enter starts a new line.
    function send() {
      const content = box.value;
      if (!content.trim()) return;
      if (!socket.connected) {
        say(composeSaid, "Not sent: not connected to the server. Your message is still here.",
            "bad");
        return;
      }
      box.value = "";
      say(composeSaid, "", "bad");
      const key = unanswered.get(content) || (sendOnce ? newKey() : null);
      unanswered.delete(content);
      const payload = key ? { content, key } : { content };
      socket.timeout(ACK_TIMEOUT_MS).emit("message", payload, (error, ack) => {
        if (!error && ack && ack.status === "ok") return;
        // Never lost: the text goes back in the box, unless something new was typed there.
        if (!box.value.trim()) box.value = content;
        const inBox = box.value === content;
        // Sent again, it takes this key: an answer lost after the server kept it (a 503
        // on several nodes) cannot make it show twice either.
        if (key) remember(content, key);
        const maybeSent = !error && ack && ack.maybe_sent === true;
        if (!error && !maybeSent) {
          say(composeSaid, `Not sent: ${(ack && ack.error) || "refused"}.`
            + (inBox ? " Your message is still in the box." : ""), "bad");
          return;
        }
        // No answer, or Redis's lost: it may have gone. Sent again with its key, it is shown once.
        const why = error ? "the server did not answer in time"
                          : "the server lost touch with its history store";
        say(composeSaid, `Perhaps not sent: ${why}. `
          + (key ? `${inBox ? "Press Enter" : "Send it again"} and it is shown once, `
                   + "whether it went or not."
                 : "It may show twice if you send it again."), "bad");
      });
    }
    function newKey() {  // random, without crypto.randomUUID: that needs https or localhost
      const bytes = crypto.getRandomValues(new Uint8Array(16));
      return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
    }
    function remember(content, key) {
      unanswered.set(content, key);
      if (unanswered.size > UNANSWERED_KEPT) unanswered.delete(unanswered.keys().next().value);
    }
    box.addEventListener("keydown", (event) => {
      if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        send();
      }
    });
    $("compose").addEventListener("submit", (event) => {
      event.preventDefault();
      send();
      box.focus();
    });

    // The display name of this tab's connection, and signing out.
    function setName(name, quietly) {
      socket.timeout(ACK_TIMEOUT_MS).emit("set_display_name", { display_name: name },
        (error, ack) => {
          if (error || !ack || ack.error) {
            const why = error ? "the server did not answer in time" : (ack && ack.error) || "refused";
            say(nameSaid, `Name not changed: ${why}`, "bad");
            return;
          }
          myName = ack.display_name ? unescaped(ack.display_name) : null;
          const mine = { email: me ? me.email : "", display_name: ack.display_name };
          $("me").textContent = label(mine);
          if (!quietly) {
            say(nameSaid, myName ? `You are now ${label(mine)}.`
              : "Display name cleared: you show as your email.", "ok");
          }
        });
    }
    $("name-form").addEventListener("submit", (event) => {
      event.preventDefault();
      const name = $("name").value;
      if (!name.trim()) {
        say(nameSaid, "Type a name first, or press “Clear name”.", "bad");
        return;
      }
      setName(name, false);
    });
    $("clear-name").addEventListener("click", () => {
      $("name").value = "";
      setName(null, false);
    });
    $("sign-out").addEventListener("click", async () => {
      signedOut = true;  // the session_ended that follows is ours
      try {
        await postJson("/auth/logout", {});
      } finally {
        socket.disconnect();
        location.assign("/");
      }
    });
    document.addEventListener("keydown", (event) => {  // Escape closes the menu
      const menu = $("menu");
      if (event.key === "Escape" && menu.open) {
        menu.open = false;
        menu.querySelector("summary").focus();
      }
    });

    box.focus();
  }

  if (document.body.dataset.view === "chat") chatView();
  else signInView();
})();
