# eval_server.py - a scripted OpenAI-compatible server for test_eval_store.sh: answers "What is
# a + b?" with "\boxed{a+b}", except sampled completions whose seed + index is divisible by 3,
# which answer a+b+1 (greedy requests, temperature 0, are always right). A prompt containing
# FAIL-ONCE gets HTTP 500 the first time. Honours n. Logs "<n> <seed> <temperature>" per request.
# Usage: python3 eval_server.py PORTFILE LOGFILE
import json, os, re, sys, threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

lock = threading.Lock()
failed = set()


class H(BaseHTTPRequestHandler):
    def log_message(self, *a):
        pass

    def reply(self, code, obj):
        data = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        self.reply(200, {"object": "list", "data": [{"id": "scripted", "object": "model"}]})

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        prompt = body["messages"][-1]["content"]
        n, seed, temp = int(body.get("n", 1)), int(body.get("seed") or 0), float(body.get("temperature", 1))
        with lock, open(sys.argv[2], "a") as f:
            f.write(f"{n} {seed} {temp}\n")
        if "FAIL-ONCE" in prompt:
            with lock:
                first = prompt not in failed
                failed.add(prompt)
            if first:
                return self.reply(500, {"error": "scripted failure"})
        a, b = (int(x) for x in re.search(r"What is (\d+) \+ (\d+)", prompt).groups())
        choices = []
        for j in range(n):
            wrong = temp > 0 and (seed + j) % 3 == 0
            choices.append({"index": j, "finish_reason": "stop",
                            "message": {"role": "assistant", "content": f"So it is \\boxed{{{a + b + wrong}}}."}})
        self.reply(200, {"id": "x", "object": "chat.completion", "model": "scripted", "choices": choices,
                         "usage": {"prompt_tokens": 1, "completion_tokens": n, "total_tokens": n + 1}})


# a listen backlog for every connection a client opens at once (the default, 5, drops the rest
# and each dropped connection costs its client a SYN retransmission: a second or more)
ThreadingHTTPServer.request_queue_size = 256
srv = ThreadingHTTPServer(("127.0.0.1", 0), H)
with open(sys.argv[1] + ".tmp", "w") as f:
    f.write(str(srv.server_address[1]))
os.rename(sys.argv[1] + ".tmp", sys.argv[1])
srv.serve_forever()
