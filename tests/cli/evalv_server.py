# evalv_server.py - a scripted OpenAI-compatible verifier for test_eval_verifier.sh. It reads
# ./scores.json: a list of {"match": TEXT, "answers": [[SCORE, ANALYSIS], ...]}; a verification
# prompt containing a match TEXT gets the answers of that entry in turn (the k-th request for that
# proof gets answers[k % len]), so each proof's multiset of scores is known whatever the order of
# the requests. An unmatched prompt is answered 500. Every request is logged as "verifier <seed>"
# to LOGFILE. Usage: python3 evalv_server.py PORTFILE LOGFILE
import json, os, sys, threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

VB = "Here is my evaluation of the solution:"
VS = "Based on my evaluation, the final overall score should be:"
lock = threading.Lock()
table = json.load(open("scores.json"))
seen = {}


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
        self.reply(200, {"object": "list", "data": [{"id": "scripted-verifier", "object": "model"}]})

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        prompt = body["messages"][-1]["content"]
        seed = int(body.get("seed") or 0)
        hit = [i for i, e in enumerate(table) if e["match"] in prompt]
        with lock:
            with open(sys.argv[2], "a") as f:
                f.write(f"verifier {seed}\n")
            if len(hit) != 1:
                self.reply(500, {"error": {"message": f"{len(hit)} entries match this prompt"}})
                return
            k = seen.get(hit[0], 0)
            seen[hit[0]] = k + 1
        score, analysis = table[hit[0]]["answers"][k % len(table[hit[0]]["answers"])]
        text = f"{VB}\n{analysis}\n\n{VS} \\boxed{{{score}}}"
        self.reply(200, {"id": "x", "object": "chat.completion", "model": "scripted-verifier",
                         "choices": [{"index": 0, "finish_reason": "stop",
                                      "message": {"role": "assistant", "content": text}}],
                         "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}})


# a listen backlog for every connection a client opens at once (the default, 5, drops the rest
# and each dropped connection costs its client a SYN retransmission: a second or more)
ThreadingHTTPServer.request_queue_size = 256
srv = ThreadingHTTPServer(("127.0.0.1", 0), H)
with open(sys.argv[1] + ".tmp", "w") as f:
    f.write(str(srv.server_address[1]))
os.rename(sys.argv[1] + ".tmp", sys.argv[1])
srv.serve_forever()
