// Cortex panel: a terminal page. xterm.js (vendored) draws the terminal;
// keys and sizes go to Core over a WebSocket, which passes them to the
// node's PTY; Core answers with the recent output first (reattaching after
// a reload), then live output.
(function () {
  "use strict";
  var box = document.getElementById("terminal");
  if (!box || typeof Terminal === "undefined") {
    return;
  }
  var status = document.getElementById("terminal-state");
  var term = new Terminal({ cursorBlink: true, scrollback: 5000, fontSize: 14 });
  var fit = new FitAddon.FitAddon();
  term.loadAddon(fit);
  term.open(box);
  fit.fit();
  var url = (location.protocol === "https:" ? "wss://" : "ws://") + location.host + box.getAttribute("data-socket");
  var socket = new WebSocket(url);

  function say(text) {
    if (status) {
      status.textContent = text;
    }
  }

  function send(message) {
    if (socket.readyState === WebSocket.OPEN) {
      socket.send(JSON.stringify(message));
    }
  }

  socket.onopen = function () {
    say("connected");
    send({ type: "resize", cols: term.cols, rows: term.rows });
    term.focus();
  };
  socket.onmessage = function (event) {
    var message = JSON.parse(event.data);
    if (message.type === "output") {
      term.write(message.data);
    } else if (message.type === "exit") {
      say("the shell has exited" + (message.code === null ? "" : " (code " + message.code + ")"));
    } else if (message.type === "error") {
      say(message.message);
    }
  };
  socket.onclose = function () {
    say("disconnected: reload the page to reattach");
  };
  // The terminal takes every key, Tab included; Ctrl+] gives the keyboard
  // back to the page (the focus moves to the link after the terminal).
  term.attachCustomKeyEventHandler(function (event) {
    if (event.type === "keydown" && event.ctrlKey && event.key === "]") {
      term.blur();
      var after = document.getElementById("after-terminal");
      if (after) {
        after.focus();
      }
      return false;
    }
    return true;
  });
  term.onData(function (data) {
    send({ type: "input", data: data });
  });
  window.addEventListener("resize", function () {
    fit.fit();
    send({ type: "resize", cols: term.cols, rows: term.rows });
  });
})();
