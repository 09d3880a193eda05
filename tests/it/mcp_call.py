"""An MCP client in a few lines (streamable HTTP, stdlib only) written for
the tests: a fake session's command calls one tool of the session's
gateway at $CORTEX_MCP_URL, as an agent would, and prints what came back.
Usage: mcp_call.py SERVER.TOOL '{"arg": "value"}', or mcp_call.py --list
(prints the names of the tools the gateway lists, one a line)."""

import json
import os
import sys
import urllib.request

url = os.environ["CORTEX_MCP_URL"]
headers = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}


def post(message):
    request = urllib.request.Request(url, json.dumps(message).encode(), headers)
    with urllib.request.urlopen(request, timeout=120) as response:
        if "Mcp-Session-Id" in response.headers:
            headers["Mcp-Session-Id"] = response.headers["Mcp-Session-Id"]
        if "id" not in message:
            return None
        for line in response:
            line = line.decode().strip()
            if line.startswith("data:") and line[5:].strip():
                answer = json.loads(line[5:])
                if answer.get("id") == message["id"]:
                    return answer
            elif line.startswith("{"):
                return json.loads(line)
    sys.exit("no answer to " + message["method"])


post({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
    "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "mcp_call", "version": "1"}}})
post({"jsonrpc": "2.0", "method": "notifications/initialized"})
if sys.argv[1] == "--list":
    listed = post({"jsonrpc": "2.0", "id": 2, "method": "tools/list", "params": {}})
    for tool in listed["result"]["tools"]:
        print("listed:", tool["name"])
    sys.exit(0)
answer = post({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
               "params": {"name": sys.argv[1], "arguments": json.loads(sys.argv[2])}})
if "error" in answer:
    sys.exit("error: " + answer["error"]["message"])
for block in answer["result"].get("content", []):
    print(block.get("text", ""))
sys.exit(1 if answer["result"].get("isError") else 0)
