"""A small MCP server (stdio, JSON-RPC lines, stdlib only) written for the
tests: one `echo` tool. It exits at once when FOLDER/crash-always exists,
and exits (removing the file first) when FOLDER/crash-now appears, so a
test can crash it once or for good. It writes its pid to FOLDER/pid."""

import json
import os
import sys
import threading
import time

folder = sys.argv[1]
if os.path.exists(os.path.join(folder, "crash-always")):
    sys.exit(3)
with open(os.path.join(folder, "pid"), "w") as pid:
    pid.write(str(os.getpid()))


def watch():
    trigger = os.path.join(folder, "crash-now")
    while True:
        if os.path.exists(trigger):
            os.remove(trigger)
            os._exit(3)
        time.sleep(0.05)


threading.Thread(target=watch, daemon=True).start()

TOOL = {
    "name": "echo",
    "description": "Echo: answers with the text it is given (the project echo tool)",
    "inputSchema": {"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]},
}

for line in sys.stdin:
    message = json.loads(line)
    method, ident = message.get("method"), message.get("id")
    if ident is None:
        continue
    if method == "initialize":
        result = {
            "protocolVersion": message["params"]["protocolVersion"],
            "capabilities": {"tools": {}},
            "serverInfo": {"name": "crashy", "version": "1.0.0"},
        }
    elif method == "tools/list":
        result = {"tools": [TOOL]}
    elif method == "tools/call":
        text = message["params"].get("arguments", {}).get("text", "")
        result = {"content": [{"type": "text", "text": text}]}
    else:
        print(json.dumps({"jsonrpc": "2.0", "id": ident, "error": {"code": -32601, "message": method}}), flush=True)
        continue
    print(json.dumps({"jsonrpc": "2.0", "id": ident, "result": result}), flush=True)
