// Cortex panel: keeps a session's live page exact. The page is rendered up
// to a seq; the SSE stream (htmx's sse extension) sends each later event
// once, with its seq as the SSE id. After a dropped connection the browser
// resumes from Last-Event-ID, or the extension opens a new stream from the
// `after=` kept up to date here; a block already on the page is never added
// twice. A command's output and exit (`output` messages) go into the
// command's block, as the server renders them on a reload.
(function () {
  "use strict";

  // Takes `seq` as shown; false when it already is (a replay after a reconnect).
  function advance(live, seq) {
    var last = parseInt(live.getAttribute("data-last-seq") || "0", 10);
    if (!(seq > last) || document.getElementById("event-" + seq)) {
      return false;
    }
    live.setAttribute("data-last-seq", String(seq));
    var source = live.getAttribute("sse-connect");
    if (source) {
      live.setAttribute("sse-connect", source.replace(/after=\d+/, "after=" + seq));
    }
    return true;
  }

  function fold(seq, data) {
    var folded = document.getElementById("folded-" + data.command);
    if (!folded) {
      // The command's block is not on this page: the event gets its own.
      document.getElementById("timeline").insertAdjacentHTML("beforeend", data.block);
      return;
    }
    if (data.append) {
      document.getElementById("output-" + data.command).append(data.append);
      document.getElementById("output-" + data.command).parentElement.removeAttribute("hidden");
    }
    if (data.exit) {
      var exit = document.getElementById("exit-" + data.command);
      exit.textContent = data.exit;
      exit.removeAttribute("hidden");
    }
    var marker = document.createElement("span");
    marker.id = "event-" + seq;
    marker.setAttribute("data-seq", String(seq));
    marker.hidden = true;
    folded.append(marker);
  }

  document.addEventListener("htmx:sseBeforeMessage", function (event) {
    var message = event.detail;
    var live = document.getElementById("live");
    if (!message || !live || (message.type !== "block" && message.type !== "output")) {
      return;
    }
    var seq = parseInt(message.lastEventId, 10);
    if (!advance(live, seq)) {
      event.preventDefault();
      return;
    }
    if (message.type === "output") {
      event.preventDefault();
      fold(seq, JSON.parse(message.data));
    }
  });

  // One state on the page: the breadcrumb's badge and the session's entry
  // in the tree follow the state box the live stream keeps, also after the
  // tree's own refresh brings a summary that trails the events.
  function syncState() {
    var box = document.getElementById("state");
    var controls = document.getElementById("controls");
    if (!box || !controls) {
      return;
    }
    var state = box.textContent;
    var badges = document.querySelectorAll("#crumb-state, [data-state-of='" + controls.getAttribute("data-session") + "']");
    badges.forEach(function (badge) {
      if (badge.textContent !== state) {
        badge.textContent = state;
        badge.className = "badge " + state;
      }
    });
  }
  document.addEventListener("htmx:afterSettle", syncState);
  document.addEventListener("DOMContentLoaded", syncState);

  // A page that names the control to start on (a line's "comment" link
  // opens the review form on it) gets it focused, where browsers skip
  // `autofocus` after a fragment navigation (the scroll to the fragment,
  // after the load, takes the focus away again).
  window.addEventListener("load", function () {
    var first = document.querySelector("[autofocus]");
    if (first && document.activeElement !== first) {
      first.focus();
    }
  });
})();
