// Cortex panel: keeps a session's live page exact. The page is rendered up
// to a seq; the SSE stream (htmx's sse extension) sends each later event
// once, with its seq as the SSE id. After a dropped connection the browser
// resumes from Last-Event-ID, or the extension opens a new stream from the
// `after=` kept up to date here; a block already on the page is never added
// twice.
(function () {
  "use strict";

  document.addEventListener("htmx:sseBeforeMessage", function (event) {
    var message = event.detail;
    if (!message || message.type !== "block") {
      return;
    }
    var live = document.getElementById("live");
    if (!live) {
      return;
    }
    var seq = parseInt(message.lastEventId, 10);
    var last = parseInt(live.getAttribute("data-last-seq") || "0", 10);
    if (!(seq > last) || document.getElementById("event-" + seq)) {
      event.preventDefault();
      return;
    }
    live.setAttribute("data-last-seq", String(seq));
    var source = live.getAttribute("sse-connect");
    if (source) {
      live.setAttribute("sse-connect", source.replace(/after=\d+/, "after=" + seq));
    }
  });

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
