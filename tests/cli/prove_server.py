# prove_server.py - a scripted OpenAI-compatible server playing the three V2 roles with known
# behaviour, for test_submit.sh and test_prove.sh.
#   generator     writes "ATTEMPT-a" proofs: a = 1 + the highest ATTEMPT-x among the candidates
#                 of a refinement prompt (0 for a first prompt). The proof is right when a >= the
#                 problem's TARGET-t. Its self-evaluation is honest (1 right, 0 wrong).
#   verifier      an ATTEMPT proof below target: 0 for a first attempt, 0.5 for a refined one; a
#                 proof marked WRONG: 0, or 0.5 when the seed is odd; both with a confirmed issue
#                 (RATE-1); a proof marked FALSE-ISSUES: score 0
#                 with an issue the meta-verifier rejects (RATE-0) when the seed is even, else 1;
#                 anything else: 1.
#   metaverifier  answers the RATE-r the evaluation carries.
# Every request is logged as "<role> <seed>" to LOGFILE. Usage: python3 prove_server.py PORTFILE LOGFILE
import json, re, sys, threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

VB = "Here is my evaluation of the solution:"
VS = "Based on my evaluation, the final overall score should be:"
MB = 'Here is my analysis of the "solution evaluation":'
MS = 'Based on my analysis, I will rate the "solution evaluation" as:'
lock = threading.Lock()


def target(prompt):
    m = re.search(r"TARGET-(\d+)", prompt)
    return int(m.group(1)) if m else 0


def generator(prompt):
    attempts = [int(x) for x in re.findall(r"ATTEMPT-(\d+)", prompt)]
    a = max(attempts) + 1 if "## Candidate Solution(s) to Refine" in prompt and attempts else 0
    right = a >= target(prompt)
    proof = f"Proof ATTEMPT-{a}: " + ("every case is handled." if right else "a case is missing.")
    verdict = "The proof is complete." if right else "The proof misses a case."
    return f"## Solution\n{proof}\n\n## Self Evaluation\n{VB}\n{verdict}\n{VS} \\boxed{{{1 if right else 0}}}\n"


def verifier(prompt, seed):
    m = re.search(r"Proof ATTEMPT-(\d+)", prompt)
    if m and int(m.group(1)) < target(prompt):  # a refined wrong proof is closer: 0.5, a first one 0
        sc = "0.5" if int(m.group(1)) > 0 else "0"
        return f"{VB}\nA case is missing (RATE-1).\n\n{VS} \\boxed{{{sc}}}"
    if "WRONG" in prompt:
        sc = "0.5" if seed % 2 else "0"
        return f"{VB}\nA case is missing (RATE-1).\n\n{VS} \\boxed{{{sc}}}"
    if "FALSE-ISSUES" in prompt and seed % 2 == 0:
        return f"{VB}\nStep 1 looks wrong to me (RATE-0).\n\n{VS} \\boxed{{0}}"
    return f"{VB}\nEvery step is justified.\n\n{VS} \\boxed{{1}}"


class H(BaseHTTPRequestHandler):
    def log_message(self, *a):
        pass

    def do_GET(self):  # /v1/models: the model name a client asks for
        data = json.dumps({"object": "list", "data": [{"id": "scripted", "object": "model"}]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        prompt = body["messages"][-1]["content"]
        seed = int(body.get("seed") or 0)
        if MB in prompt:
            role = "metaverifier"
            r = re.findall(r"RATE-([01])", prompt)[-1]
            text = f"{MB}\nThe evaluation was checked.\n\n{MS} \\boxed{{{r}}}"
        elif "### Proof to grade" in prompt:
            role, text = "verifier", verifier(prompt, seed)
        else:
            role, text = "generator", generator(prompt)
        with lock, open(sys.argv[2], "a") as f:
            f.write(f"{role} {seed}\n")
        out = {"id": "x", "object": "chat.completion", "model": body.get("model", "scripted"),
               "choices": [{"index": 0, "finish_reason": "stop",
                            "message": {"role": "assistant", "content": text}}],
               "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}}
        data = json.dumps(out).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


# a listen backlog for every connection a client opens at once (the default, 5, drops the rest
# and each dropped connection costs its client a SYN retransmission: a second or more)
ThreadingHTTPServer.request_queue_size = 256
srv = ThreadingHTTPServer(("127.0.0.1", 0), H)
with open(sys.argv[1] + ".tmp", "w") as f:
    f.write(str(srv.server_address[1]))
import os
os.rename(sys.argv[1] + ".tmp", sys.argv[1])
srv.serve_forever()
