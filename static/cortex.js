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
      tick();
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

  // Follow the tail: with the box ticked, each new event scrolls into
  // view. Scrolling up (wheel, keys) unticks it; the choice is kept.
  function follow() {
    var box = document.getElementById("follow");
    return box && box.checked;
  }
  document.addEventListener("DOMContentLoaded", function () {
    var box = document.getElementById("follow");
    if (!box) {
      return;
    }
    box.checked = window.localStorage.getItem("cortex.follow") !== "off";
    box.closest(".follow").removeAttribute("hidden");
    box.addEventListener("change", function () {
      window.localStorage.setItem("cortex.follow", box.checked ? "on" : "off");
      if (box.checked) {
        toTail();
      }
    });
    var stop = function () {
      if (box.checked) {
        box.checked = false;
        window.localStorage.setItem("cortex.follow", "off");
      }
    };
    window.addEventListener("wheel", function (event) {
      if (event.deltaY < 0) {
        stop();
      }
    }, { passive: true });
    document.addEventListener("keydown", function (event) {
      if (["PageUp", "ArrowUp", "Home", "k"].indexOf(event.key) >= 0 && !event.target.closest("input, textarea, select, .terminal")) {
        stop();
      }
    });
  });
  function toTail() {
    var timeline = document.getElementById("timeline");
    var last = timeline && timeline.lastElementChild;
    if (last) {
      last.scrollIntoView({ block: "end" });
    }
  }
  document.addEventListener("htmx:sseMessage", function (event) {
    if (event.detail && (event.detail.type === "block" || event.detail.type === "output") && follow()) {
      toTail();
    }
  });

  // The running step's clock: a command without an exit yet, in a session
  // that is busy, shows how long it has run. Once it ends (or the session
  // does), the clock is cleared, as a reload renders it.
  var BUSY = ["starting", "running", "awaiting_approval"];
  function tick() {
    var state = document.getElementById("state");
    var busy = state && BUSY.indexOf(state.textContent) >= 0;
    document.querySelectorAll("#timeline article[data-at]").forEach(function (block) {
      var seq = block.getAttribute("data-seq");
      var clock = document.getElementById("clock-" + seq);
      var exit = document.getElementById("exit-" + seq);
      if (!clock || !exit) {
        return;
      }
      if (busy && exit.hidden) {
        var seconds = Math.max(0, Math.floor((Date.now() - Date.parse(block.getAttribute("data-at"))) / 1000));
        var minutes = Math.floor(seconds / 60);
        clock.textContent = "running " + (minutes > 0 ? minutes + " min " : "") + (seconds % 60) + " s";
        clock.hidden = false;
      } else if (!clock.hidden || clock.textContent) {
        clock.textContent = "";
        clock.hidden = true;
      }
    });
  }
  window.setInterval(tick, 1000);
  document.addEventListener("htmx:afterSettle", tick);

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

  // The title counts the sessions waiting for an approval, as the tree's
  // last refresh counted them: "(2) Cortex".
  function syncTitle() {
    var tree = document.querySelector("nav.tree[data-waiting]");
    if (!tree) {
      return;
    }
    var waiting = parseInt(tree.getAttribute("data-waiting"), 10) || 0;
    var bare = document.title.replace(/^\(\d+\) /, "");
    document.title = waiting > 0 ? "(" + waiting + ") " + bare : bare;
  }
  document.addEventListener("htmx:afterSettle", syncTitle);

  // A live swap of the controls (the state changed) removes the button
  // that had the focus; the focus goes to the next sensible control
  // instead of falling to the page: the composer, else the first button.
  var controlsHadFocus = false;
  document.addEventListener("htmx:sseBeforeMessage", function (event) {
    var controls = document.getElementById("controls");
    if (event.detail && event.detail.type === "controls" && controls) {
      controlsHadFocus = controls.contains(document.activeElement);
    }
  });
  document.addEventListener("htmx:sseMessage", function (event) {
    if (!event.detail || event.detail.type !== "controls" || !controlsHadFocus) {
      return;
    }
    controlsHadFocus = false;
    // A removed element can stay the active one until the next frame.
    var active = document.activeElement;
    if (active && active !== document.body && active.isConnected) {
      return;
    }
    var next = document.querySelector("#controls textarea") || document.querySelector("#controls button");
    if (next) {
      next.focus();
    }
  });

  // Keyboard: Ctrl+Enter (or Cmd+Enter) sends the form being typed in;
  // elsewhere j/k move between timeline events, n/p between a diff's
  // files, and ? lists the keys.
  function step(selector, by) {
    var all = Array.prototype.slice.call(document.querySelectorAll(selector));
    if (all.length === 0) {
      return;
    }
    var at = all.indexOf(document.activeElement);
    var next = all[Math.max(0, Math.min(all.length - 1, at < 0 ? (by > 0 ? 0 : all.length - 1) : at + by))];
    if (!next.hasAttribute("tabindex") && next.tagName !== "DETAILS") {
      next.setAttribute("tabindex", "-1");
    }
    var target = next.tagName === "DETAILS" ? next.querySelector("summary") : next;
    target.focus();
    target.scrollIntoView({ block: "nearest" });
  }
  document.addEventListener("keydown", function (event) {
    var typing = event.target.closest && event.target.closest("input, textarea, select, [contenteditable], .terminal");
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey) && typing) {
      var form = event.target.form;
      if (form) {
        event.preventDefault();
        form.requestSubmit();
      }
      return;
    }
    if (typing || event.ctrlKey || event.metaKey || event.altKey) {
      return;
    }
    var keys = document.getElementById("keys");
    if (event.key === "j" || event.key === "k") {
      step("#timeline > article, .timeline > article", event.key === "j" ? 1 : -1);
    } else if (event.key === "n" || event.key === "p") {
      step("details.file", event.key === "n" ? 1 : -1);
    } else if (event.key === "?" && keys && !keys.open) {
      keys.showModal();
    } else {
      return;
    }
    event.preventDefault();
  });

  // Below 700 px the tree is a drawer, closed until asked for (without
  // JavaScript it stays open, above the page).
  var narrow = window.matchMedia("(max-width: 700px)");
  function drawer() {
    var tree = document.querySelector("details.drawer");
    if (tree) {
      tree.open = !narrow.matches;
    }
  }
  document.addEventListener("DOMContentLoaded", drawer);
  narrow.addEventListener("change", drawer);

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
