# loop_server.py - a scripted OpenAI-compatible server that plays all three roles of the synthetic
# domain for test_loop.sh, with known behaviour so that the loop's labels can be checked:
#   generator     proves the claim of "Problem: Show that a op b op c = v."; when seed % 3 == 0 the
#                 last step is off by one (score 0); the self-evaluation is always honest;
#   verifier      checks every step and the conclusion and scores right, except when seed % 4 == 0:
#                 then it blames a right first line ("a + b = x+1, not x. Wrong.") and scores 0 --
#                 a false issue, independent from sample to sample (seeds differ);
#   metaverifier  recomputes the equation the evaluation blames: rates 0 when the blamed line was
#                 right (a false issue), 1 otherwise.
# So a single analysis is wrong on ~1/4 of right proofs, while the V2 vote (issues confirmed by a
# majority of meta-verifications) labels every proof with its true score.
# Usage: python3 loop_server.py PORTFILE LOGFILE
import json, re, sys, threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

VB = "Here is my evaluation of the solution:"
VS = "Based on my evaluation, the final overall score should be:"
MB = 'Here is my analysis of the "solution evaluation":'
MS = 'Based on my analysis, I will rate the "solution evaluation" as:'
lock = threading.Lock()


def chain(problem):
    m = re.search(r"Show that (.*) = (-?\d+)\.", problem)
    toks = m.group(1).split()
    vals, ops = [int(toks[0])], []
    for i in range(1, len(toks), 2):
        ops.append((toks[i], int(toks[i + 1])))
    return vals[0], ops, m.group(1), int(m.group(2))


def generator(problem, seed):
    v, ops, expr, claim = chain(problem)
    lines, verdicts, score = [], [], 1
    for i, (op, t) in enumerate(ops):
        nv = v + t if op == "+" else v - t
        shown = nv + 1 if (seed % 3 == 0 and i == len(ops) - 1) else nv
        lines.append(f"{v} {op} {t} = {shown}")
        if shown != nv:
            verdicts.append(f"Line {i + 1}: {v} {op} {t} = {nv}, not {shown}. Wrong.")
            score = 0
            break
        verdicts.append(f"Line {i + 1}: {v} {op} {t} = {nv}. Correct.")
        v = nv
    lines.append(f"So {expr} = {claim}.")
    if score:
        verdicts.append(f"Line {len(lines)}: the steps give {claim}, as claimed. Correct.")
    return ("## Solution\n" + "\n".join(lines) + "\n## Self Evaluation\n" + VB + "\n" + "\n".join(verdicts) +
            "\n" + VS + "\n\\boxed{" + str(score) + "}\n")


def verify(problem, proof, seed):
    v, ops, expr, claim = chain(problem)
    steps = [l for l in proof.strip().split("\n") if l.strip()]
    out, score = [], 1
    for i, l in enumerate(steps):
        m = re.match(r"(-?\d+) ([+-]) (\d+) = (-?\d+)$", l)
        if m:
            a, op, b, c = int(m.group(1)), m.group(2), int(m.group(3)), int(m.group(4))
            r = a + b if op == "+" else a - b
            if seed % 4 == 0 and i == 0 and r == c:  # a false issue
                return VB + f"\nLine 1: {a} {op} {b} = {r + 1}, not {c}. Wrong.\n" + VS + "\n\\boxed{0}\n"
            if r != c:
                out.append(f"Line {i + 1}: {a} {op} {b} = {r}, not {c}. Wrong.")
                score = 0
                break
            out.append(f"Line {i + 1}: {a} {op} {b} = {r}. Correct.")
        else:
            out.append(f"Line {i + 1}: the steps give {claim}, as claimed. Correct.")
    return VB + "\n" + "\n".join(out) + "\n" + VS + "\n\\boxed{" + str(score) + "}\n"


def metaverify(evaluation):
    m = re.search(r"Line \d+: (-?\d+) ([+-]) (\d+) = (-?\d+), not (-?\d+)\. Wrong\.", evaluation)
    if not m:
        return MB + "\nThe evaluation stands.\n" + MS + "\n\\boxed{1}\n"
    a, op, b, c = int(m.group(1)), m.group(2), int(m.group(3)), int(m.group(5))
    right = (a + b if op == "+" else a - b) == c
    return MB + ("\nThe blamed line is right. The issue is false.\n" + MS + "\n\\boxed{0}\n" if right else
                 "\nThe issue is real.\n" + MS + "\n\\boxed{1}\n")


class H(BaseHTTPRequestHandler):
    def log_message(self, *a):
        pass

    def do_GET(self):
        body = json.dumps({"data": [{"id": "oracle"}]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        req = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        p = req["messages"][-1]["content"]
        seed = int(req.get("seed", 0))
        prob = re.search(r"Problem: (.*)\n", p).group(1)
        if p.startswith("Task: prove"):
            role, text = "generator", generator(prob, seed)
        elif p.startswith("Task: evaluate"):
            proof = p.split("Solution:\n", 1)[1]
            role, text = "verifier", verify(prob, proof, seed)
        else:
            role, text = "metaverifier", metaverify(p.split("Evaluation:\n", 1)[1])
        with lock:
            with open(sys.argv[2], "a") as f:
                f.write(f"{role} {seed}\n")
        n = int(req.get("n", 1))
        body = json.dumps({"id": "x", "object": "chat.completion", "model": "oracle",
                           "choices": [{"index": i, "message": {"role": "assistant", "content": text},
                                        "finish_reason": "stop"} for i in range(n)],
                           "usage": {"prompt_tokens": 1, "completion_tokens": 1}}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


# a listen backlog for every connection a client opens at once (the default, 5, drops the rest
# and each dropped connection costs its client a SYN retransmission: a second or more)
ThreadingHTTPServer.request_queue_size = 256
srv = ThreadingHTTPServer(("127.0.0.1", 0), H)
with open(sys.argv[1], "w") as f:
    f.write(str(srv.server_address[1]))
srv.serve_forever()
