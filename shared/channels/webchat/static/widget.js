/*
 * Chat Service web chat widget: plain JavaScript, no build step, no dependencies.
 *
 *   <script src="https://<webchat>/widget.js" data-site-key="<site key>" async></script>
 *
 * data-site-key  the site (required)
 * data-api       the API's base URL (default: the origin this file was loaded from)
 * data-title     the chat window's title (default "Chat with us")
 * data-open      "true": open the chat window at once
 *
 * It opens a visitor session when the chat is first opened (POST /sessions; the token is kept
 * in localStorage and renewed with POST /sessions/resume before it expires), sends messages
 * with a client_message_id and retries them with the same id (the server drops duplicates),
 * and shows replies live from the Server-Sent Events stream GET /stream, or by polling
 * GET /messages?after=<cursor> where the stream is not available. Under a Content-Security-
 * Policy with nonces, give this script tag the page's nonce: its stylesheet carries it too.
 */
(function () {
  "use strict";

  var script = document.currentScript;
  if (!script || !script.dataset.siteKey) {
    if (window.console) console.error("chat widget: the script tag needs data-site-key");
    return;
  }

  var SITE_KEY = script.dataset.siteKey;
  var API = (script.dataset.api || new URL(script.src, location.href).origin).replace(/\/+$/, "");
  var TITLE = script.dataset.title || "Chat with us";
  var NONCE = script.nonce || script.getAttribute("nonce") || "";
  var STORAGE_KEY = "chat-service.webchat:" + API + ":" + SITE_KEY;
  var RENEW_BEFORE_MS = 5 * 60 * 1000; // renew the token this long before it expires
  var EXPIRY_MARGIN_MS = 30 * 1000; // a token this close to expiry is as good as expired
  var SEND_ATTEMPTS = 5;
  var POLL_MS = 3000;
  var LIVE_FAILURES_BEFORE_POLLING = 3;
  var LIVE_RETRY_AFTER_POLLS = 20; // while polling, try the live stream again now and then
  var AUTHORS = { visitor: "You", bot: "Assistant", fallback: "Assistant", agent: "Agent" };

  var STYLE = [
    ":host { all: initial; }",
    "*, *::before, *::after { box-sizing: border-box; }",
    ".root { font: 15px/1.45 system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif; color: #111827; }",
    "button, textarea { font: inherit; }",
    ":focus-visible { outline: 3px solid #b45309; outline-offset: 2px; }",
    ".sr-only { position: absolute; width: 1px; height: 1px; margin: -1px; padding: 0; overflow: hidden; clip: rect(0 0 0 0); white-space: nowrap; border: 0; }",
    ".launcher { position: fixed; right: 1rem; bottom: 1rem; z-index: 2147483000; border: 0; border-radius: 999px; padding: .75rem 1.25rem; background: #1d4ed8; color: #fff; font-weight: 600; cursor: pointer; box-shadow: 0 4px 14px rgba(0,0,0,.25); }",
    ".launcher:hover { background: #1e40af; }",
    ".panel { position: fixed; right: 1rem; bottom: 4.75rem; z-index: 2147483001; width: 23rem; max-width: calc(100vw - 2rem); height: 34rem; max-height: calc(100vh - 6rem); display: flex; flex-direction: column; background: #fff; border: 1px solid #d1d5db; border-radius: 12px; box-shadow: 0 10px 30px rgba(0,0,0,.2); overflow: hidden; }",
    ".panel[hidden] { display: none; }",
    ".header { display: flex; align-items: center; justify-content: space-between; gap: .5rem; padding: .75rem 1rem; background: #1d4ed8; color: #fff; }",
    ".header h2 { margin: 0; font-size: 1rem; }",
    ".close { border: 0; background: transparent; color: #fff; font-size: 1.5rem; line-height: 1; padding: .25rem .5rem; cursor: pointer; border-radius: 6px; }",
    ".log { flex: 1; overflow-y: auto; margin: 0; padding: 1rem; list-style: none; display: flex; flex-direction: column; gap: .5rem; }",
    ".msg { max-width: 85%; padding: .5rem .75rem; border-radius: 12px; overflow-wrap: anywhere; white-space: pre-wrap; }",
    ".msg p { margin: 0; }",
    ".from-them { align-self: flex-start; background: #f3f4f6; }",
    ".from-agent { align-self: flex-start; background: #ecfdf5; border: 1px solid #a7f3d0; }",
    ".from-me { align-self: flex-end; background: #1d4ed8; color: #fff; }",
    ".who { display: block; font-size: .75rem; font-weight: 600; color: #374151; }",
    ".meta { display: block; font-size: .75rem; margin-top: .25rem; }",
    ".failed { background: #fef2f2; color: #7f1d1d; border: 1px solid #fca5a5; }",
    ".retry { margin-left: .5rem; border: 1px solid currentColor; background: #fff; color: #7f1d1d; border-radius: 6px; padding: 0 .5rem; cursor: pointer; }",
    ".quick { display: flex; flex-wrap: wrap; gap: .5rem; padding: 0 1rem .5rem; }",
    ".quick[hidden] { display: none; }",
    ".quick button { border: 1px solid #1d4ed8; background: #fff; color: #1d4ed8; border-radius: 999px; padding: .25rem .75rem; cursor: pointer; }",
    ".quick button:hover { background: #eff6ff; }",
    ".status { margin: 0; padding: 0 1rem; font-size: .8rem; color: #4b5563; min-height: 1.2em; }",
    ".composer { display: flex; gap: .5rem; padding: .75rem; border-top: 1px solid #e5e7eb; }",
    ".composer textarea { flex: 1; resize: none; min-height: 2.5rem; max-height: 8rem; padding: .5rem; border: 1px solid #6b7280; border-radius: 8px; }",
    ".send { border: 0; border-radius: 8px; padding: 0 1rem; background: #1d4ed8; color: #fff; font-weight: 600; cursor: pointer; }",
    "@media (max-width: 480px) {",
    "  .panel { inset: 0; width: 100%; max-width: none; height: 100%; max-height: none; border: 0; border-radius: 0; }",
    "  .msg { max-width: 92%; }",
    "}",
  ].join("\n");

  // --- storage: localStorage where the browser allows it, else this page only ---------------
  var memory = {};
  var storage = (function () {
    try {
      window.localStorage.setItem(STORAGE_KEY + ":probe", "1");
      window.localStorage.removeItem(STORAGE_KEY + ":probe");
      return window.localStorage;
    } catch (error) {
      return {
        getItem: function (key) { return memory[key] || null; },
        setItem: function (key, value) { memory[key] = value; },
        removeItem: function (key) { delete memory[key]; },
      };
    }
  })();

  function storedSession() {
    try {
      var session = JSON.parse(storage.getItem(STORAGE_KEY) || "null");
      return session && session.token && session.expires_at ? session : null;
    } catch (error) {
      return null;
    }
  }

  // --- state -----------------------------------------------------------------------------------
  var state = {
    session: storedSession(), // {token, conversation_id, visitor_id, expires_at (ms)}
    pendingSession: null, // the session being opened or renewed
    renewTimer: null,
    cursor: null, // the last position seen: the stream's event id or a page's next_cursor
    seen: new Set(), // message ids shown
    outgoing: new Map(), // client_message_id → the message being sent
    source: null, // the EventSource
    liveFailures: 0,
    polls: 0,
    pollTimer: null,
    started: false,
  };

  // --- the API ---------------------------------------------------------------------------------
  function call(method, path, body, token) {
    var headers = {};
    if (body) headers["Content-Type"] = "application/json";
    if (token) headers.Authorization = "Bearer " + token;
    return fetch(API + path, {
      method: method,
      headers: headers,
      body: body ? JSON.stringify(body) : undefined,
      credentials: "omit",
      cache: "no-store",
    }).then(function (response) {
      return response.json().catch(function () { return null; }).then(function (data) {
        if (response.ok) return data;
        var error = new Error((data && data.message) || "HTTP " + response.status);
        error.status = response.status;
        error.code = data && data.error;
        error.retryAfterMs = (Number(response.headers.get("Retry-After")) || 0) * 1000;
        throw error;
      });
    });
  }

  function adopt(body) {
    var changed = !state.session || state.session.conversation_id !== body.conversation_id;
    state.session = {
      token: body.token,
      conversation_id: body.conversation_id,
      visitor_id: body.visitor_id,
      expires_at: Date.parse(body.expires_at),
    };
    try { storage.setItem(STORAGE_KEY, JSON.stringify(state.session)); } catch (error) { /* full */ }
    scheduleRenewal();
    if (changed) {
      state.cursor = null;
      state.seen.clear();
      if (state.source) live(); // the stream of a conversation that is no longer ours
    }
    return state.session;
  }

  function forgetSession() {
    state.session = null;
    try { storage.removeItem(STORAGE_KEY); } catch (error) { /* nothing stored */ }
  }

  // A usable session: the stored one, renewed when it is about to expire, or a new one.
  function session() {
    if (state.pendingSession) return state.pendingSession;
    var current = state.session;
    var left = current ? current.expires_at - Date.now() : 0;
    if (current && left > RENEW_BEFORE_MS) return Promise.resolve(current);
    var opening = current && left > EXPIRY_MARGIN_MS
      ? call("POST", "/sessions/resume", null, current.token).catch(function (error) {
          if (error.status !== 401) throw error;
          forgetSession();
          return call("POST", "/sessions", { site_key: SITE_KEY });
        })
      : call("POST", "/sessions", { site_key: SITE_KEY });
    state.pendingSession = opening.then(adopt).finally(function () {
      state.pendingSession = null;
    });
    return state.pendingSession;
  }

  function scheduleRenewal() {
    clearTimeout(state.renewTimer);
    var wait = state.session.expires_at - Date.now() - RENEW_BEFORE_MS + 1000;
    state.renewTimer = setTimeout(function () {
      session().then(function (current) {
        // The stream reconnects by itself with the URL it has: give it the new token.
        if (state.source && state.source.token !== current.token) live();
      }, function () { /* the next use tries again */ });
    }, Math.max(wait, 1000));
  }

  // --- receiving: the live stream, or polling ----------------------------------------------------
  function live() {
    stopReceiving();
    if (!window.EventSource || state.liveFailures >= LIVE_FAILURES_BEFORE_POLLING) {
      poll();
      return;
    }
    var url = API + "/stream?token=" + encodeURIComponent(state.session.token);
    if (state.cursor) url += "&last_event_id=" + encodeURIComponent(state.cursor);
    var source = new EventSource(url);
    source.token = state.session.token;
    state.source = source;
    source.onopen = function () {
      state.liveFailures = 0;
      setStatus("");
    };
    source.addEventListener("message", function (event) {
      if (event.lastEventId) state.cursor = event.lastEventId;
      receive(JSON.parse(event.data));
    });
    source.onerror = function () {
      if (state.source !== source) return;
      if (source.readyState !== EventSource.CLOSED) {
        setStatus("Reconnecting…"); // the browser reconnects by itself, with Last-Event-ID
        return;
      }
      // Refused (expired token, server busy): the browser gave up; try again, or poll.
      state.source = null;
      state.liveFailures += 1;
      setStatus("Reconnecting…");
      setTimeout(resume, backoff(state.liveFailures));
    };
  }

  function resume() {
    session().then(live, function () {
      setStatus("Offline. Retrying…");
      setTimeout(resume, backoff(++state.liveFailures));
    });
  }

  function poll() {
    clearTimeout(state.pollTimer);
    state.polls += 1;
    if (window.EventSource && state.polls % LIVE_RETRY_AFTER_POLLS === 0) {
      state.liveFailures = 0;
      live();
      return;
    }
    session()
      .then(function (current) { return pollPages(current.token); })
      .then(function () { setStatus(""); }, function (error) {
        if (error.status === 401) forgetSession();
        setStatus("Offline. Retrying…");
      })
      .then(function () { state.pollTimer = setTimeout(poll, POLL_MS); });
  }

  function pollPages(token) {
    var path = "/messages" + (state.cursor ? "?after=" + encodeURIComponent(state.cursor) : "");
    return call("GET", path, null, token).then(function (page) {
      page.messages.forEach(receive);
      if (page.next_cursor) state.cursor = page.next_cursor;
      if (page.has_more) return pollPages(token);
    });
  }

  function stopReceiving() {
    if (state.source) state.source.close();
    state.source = null;
    clearTimeout(state.pollTimer);
  }

  function receive(message) {
    if (state.seen.has(message.id)) return;
    state.seen.add(message.id);
    if (message.direction === "inbound") {
      var mine = message.client_message_id && state.outgoing.get(message.client_message_id);
      if (mine) setSendState(mine, "sent");
      else if (message.text) bubble("visitor", message.text); // none: its content is not kept
      showQuickReplies([]); // offered for a reply the visitor has moved past
      return;
    }
    bubble(message.author, message.text);
    showQuickReplies(message.quick_replies || []);
  }

  // --- sending -----------------------------------------------------------------------------------
  function newId() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    var bytes = new Uint8Array(16);
    crypto.getRandomValues(bytes);
    return Array.prototype.map.call(bytes, function (b) { return (b + 256).toString(16).slice(1); }).join("");
  }

  function send(text) {
    var message = { id: newId(), text: text, state: "new", item: bubble("visitor", text) };
    state.outgoing.set(message.id, message);
    showQuickReplies([]);
    deliver(message);
  }

  // Sent again with the same client_message_id until the server answers: a resend of a message
  // it has is answered as a duplicate, never shown twice.
  function deliver(message) {
    setSendState(message, "sending");
    var attempt = 0;
    function tryOnce(waitMs) {
      if (attempt++ >= SEND_ATTEMPTS) {
        setSendState(message, "failed");
        return;
      }
      setTimeout(function () {
        session()
          .then(function (current) {
            var body = { client_message_id: message.id, text: message.text };
            return call("POST", "/messages", body, current.token);
          })
          .then(function () {
            if (message.state !== "sent") setSendState(message, "sent");
          }, function (error) {
            if (error.status === 401) {
              forgetSession(); // expired or unknown token: a new session, the same message id
              tryOnce(0);
            } else if (!error.status || error.status === 429 || error.status >= 500) {
              tryOnce(error.retryAfterMs || backoff(attempt));
            } else {
              setSendState(message, "failed"); // refused as it is: resending will not help
            }
          });
      }, waitMs);
    }
    tryOnce(0);
  }

  function backoff(attempt) {
    return Math.min(1000 * Math.pow(2, attempt - 1), 15000);
  }

  // --- the window --------------------------------------------------------------------------------
  function element(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text != null) node.textContent = text;
    return node;
  }

  var host = element("div");
  host.id = "chat-service-webchat";
  var shadow = host.attachShadow({ mode: "open" });
  var style = element("style", null, STYLE);
  if (NONCE) style.setAttribute("nonce", NONCE);
  var root = element("div", "root");

  var launcher = element("button", "launcher", TITLE);
  launcher.type = "button";
  launcher.setAttribute("aria-expanded", "false");
  launcher.setAttribute("aria-controls", "chat-panel");

  var panel = element("section", "panel");
  panel.id = "chat-panel";
  panel.hidden = true;
  panel.setAttribute("aria-labelledby", "chat-title");

  var header = element("div", "header");
  var title = element("h2", null, TITLE);
  title.id = "chat-title";
  var closeButton = element("button", "close", "×");
  closeButton.type = "button";
  closeButton.setAttribute("aria-label", "Close chat");
  header.append(title, closeButton);

  var log = element("ol", "log");
  log.setAttribute("role", "log");
  log.setAttribute("aria-live", "polite");
  log.setAttribute("aria-label", "Conversation");
  log.tabIndex = 0; // scrollable with the keyboard

  var quick = element("div", "quick");
  quick.setAttribute("role", "group");
  quick.setAttribute("aria-label", "Suggested replies");
  quick.hidden = true;

  var status = element("p", "status");
  status.setAttribute("role", "status");

  var form = element("form", "composer");
  var label = element("label", "sr-only", "Message");
  label.htmlFor = "chat-input";
  var input = element("textarea");
  input.id = "chat-input";
  input.rows = 1;
  input.maxLength = 4096;
  input.placeholder = "Type a message…";
  input.setAttribute("enterkeyhint", "send");
  var sendButton = element("button", "send", "Send");
  sendButton.type = "submit";
  form.append(label, input, sendButton);

  panel.append(header, log, quick, status, form);
  root.append(launcher, panel);
  shadow.append(style, root);

  function bubble(author, text) {
    var mine = author === "visitor";
    var item = element("li", "msg " + (mine ? "from-me" : author === "agent" ? "from-agent" : "from-them"));
    var who = element("span", mine ? "sr-only" : "who", (AUTHORS[author] || "Assistant") + (mine ? ": " : ""));
    item.append(who, element("p", null, text || ""));
    log.append(item);
    log.scrollTop = log.scrollHeight;
    return item;
  }

  function setSendState(message, next) {
    message.state = next;
    var item = message.item;
    var old = item.querySelector(".meta");
    if (old) old.remove();
    item.classList.toggle("failed", next === "failed");
    if (next === "sent") return;
    var meta = element("span", "meta", next === "sending" ? "Sending…" : "Not sent.");
    if (next === "failed") {
      var retry = element("button", "retry", "Retry");
      retry.type = "button";
      retry.setAttribute("aria-label", "Retry sending: " + message.text.slice(0, 60));
      retry.addEventListener("click", function () {
        deliver(message);
        input.focus(); // the button is gone with the failed state
      });
      meta.append(retry);
    }
    item.append(meta);
  }

  function showQuickReplies(replies) {
    quick.textContent = "";
    replies.forEach(function (reply) {
      var button = element("button", null, reply.title);
      button.type = "button";
      button.addEventListener("click", function () {
        send(reply.title);
        input.focus(); // the buttons are gone once one is chosen
      });
      quick.append(button);
    });
    quick.hidden = replies.length === 0;
  }

  function setStatus(text) {
    if (status.textContent !== text) status.textContent = text;
  }

  function start() {
    if (state.started) return;
    state.started = true;
    if (state.session) scheduleRenewal();
    setStatus("Connecting…");
    resume();
  }

  function openPanel() {
    panel.hidden = false;
    launcher.setAttribute("aria-expanded", "true");
    input.focus();
    start();
  }

  function closePanel() {
    panel.hidden = true;
    launcher.setAttribute("aria-expanded", "false");
    launcher.focus();
  }

  launcher.addEventListener("click", function () {
    if (panel.hidden) openPanel();
    else closePanel();
  });
  closeButton.addEventListener("click", closePanel);
  panel.addEventListener("keydown", function (event) {
    if (event.key === "Escape") closePanel();
  });
  input.addEventListener("keydown", function (event) {
    // Enter sends; Shift+Enter is a new line; not while an input method is composing.
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      form.requestSubmit ? form.requestSubmit() : form.dispatchEvent(new Event("submit"));
    }
  });
  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var text = input.value.trim();
    if (!text) return;
    input.value = "";
    send(text);
  });

  function mount() {
    document.body.append(host);
    if (script.dataset.open === "true") openPanel();
  }
  if (document.body) mount();
  else document.addEventListener("DOMContentLoaded", mount);
})();
