# serve_server.py - a scripted OpenAI-compatible chat/completions server for test_serve.sh.
# Usage: python3 serve_server.py PORTFILE LOGFILE. Listens on 127.0.0.1 (port 0 = any free one,
# written to PORTFILE), answers POST .../chat/completions with a canned verifier output chosen by
# the tag CASE-<X> found in the prompt (A-E canned outputs, S answers after 30 s, W answers A after
# 3 s, anything else HTTP 500), logs one line per request ("<tag> <seed> <temperature> <max_tokens>") to LOGFILE.
import json, re, sys, threading, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

BEGIN = "Here is my evaluation of the solution:"
SCORE = "Based on my evaluation, the final overall score should be:"
MBEGIN = 'Here is my analysis of the "solution evaluation":'
MSCORE = 'Based on my analysis, I will rate the "solution evaluation" as:'
# SCRIPT-<name> in a verifier prompt: the i-th request for that proof gets the i-th score, with an
# analysis carrying RATE-<r> that the meta-verifier (a prompt with its marker) answers with r.
SCRIPTS = {
    "L1": [("1", "1"), ("1", "1"), ("1", "1")],
    "L2": [("0", "1"), ("0", "1"), ("1", "1")],
    "L3": [("0", "0"), ("0.5", "0"), ("1", "1")],
    "L4": [("0", "1"), ("0.5", "1"), ("1", "1")],
}
seen = {}
lock = threading.Lock()
CASES = {
    "A": ("stop", f"{BEGIN}\nEvery step is justified.\n\n{SCORE}\n\\boxed{{1}}"),
    "B": ("stop", f"{BEGIN}\nStep 2 skips a case.\n\nBased on my evaluation, the final overal score should be: \\boxed{{0.5}}"),
    "C": ("stop", f"<think>hmm \\boxed{{1}}</think>{BEGIN}\nThe claim is false.\n\n{SCORE} \\boxed{{0}}"),
    "D": ("stop", f"{BEGIN}\nI forgot the score marker. \\boxed{{1}}"),
    "E": ("length", f"{BEGIN}\nThis goes on and on"),
}

class H(BaseHTTPRequestHandler):
    def log_message(self, *a):
        pass

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        prompt = body["messages"][-1]["content"]
        m = re.search(r"CASE-([A-Z])", prompt)
        tag = m.group(1) if m else "?"
        text = None
        ms = re.search(r"SCRIPT-(L[0-9])", prompt)
        if MBEGIN in prompt and "RATE-" in prompt:
            r = re.search(r"RATE-([01](?:\.5)?)", prompt).group(1)
            tag, text = "M", f"{MBEGIN}\nThe evaluation was checked.\n\n{MSCORE} \\boxed{{{r}}}"
        elif ms:
            with lock:
                i = seen.get(ms.group(1), 0)
                seen[ms.group(1)] = i + 1
            sc, r = SCRIPTS[ms.group(1)][i % 3]
            tag, text = ms.group(1), f"{BEGIN}\nScripted finding RATE-{r}.\n\n{SCORE} \\boxed{{{sc}}}"
        with open(sys.argv[2], "a") as f:
            f.write(f"{tag} {body.get('seed')} {body.get('temperature')} {body.get('max_tokens')}\n")
        if tag == "S":  # slow: the worker is stopped (SIGTERM) while waiting for this
            time.sleep(30)
        if tag == "W":  # a long generation: the worker must heartbeat its lease meanwhile
            time.sleep(3)
            tag = "A"
        if text is not None:
            finish = "stop"
        elif tag not in CASES:
            self.send_response(500)
            self.end_headers()
            self.wfile.write(b'{"error": "scripted failure"}')
            return
        else:
            finish, text = CASES[tag]
        out = json.dumps({"id": "x", "object": "chat.completion", "model": body.get("model"),
                          "choices": [{"index": 0, "finish_reason": finish,
                                       "message": {"role": "assistant", "content": text}}],
                          "usage": {"prompt_tokens": 10, "completion_tokens": 7}}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

# a listen backlog for every connection a client opens at once (the default, 5, drops the rest
# and each dropped connection costs its client a SYN retransmission: a second or more)
ThreadingHTTPServer.request_queue_size = 256
srv = ThreadingHTTPServer(("127.0.0.1", 0), H)
with open(sys.argv[1] + ".tmp", "w") as f:
    f.write(str(srv.server_address[1]))
import os
os.rename(sys.argv[1] + ".tmp", sys.argv[1])
srv.serve_forever()
