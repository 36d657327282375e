// Generates tests/data/tokenizer/golden.json: token ids, decoded texts and chat-template renderings
// computed by Hugging Face's JavaScript ports (@huggingface/tokenizers for tokenizer.json semantics,
// @huggingface/jinja for chat templates) on the real MiniCPM4 tokenizer files in ../shared/minicpm4.
// See README.md for how to run it and what the goldens cover.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Tokenizer } from '@huggingface/tokenizers';
import { Template } from '@huggingface/jinja';

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, '../..');
const sharedDir = process.env.MCPM_SHARED_DIR
  ? path.join(process.env.MCPM_SHARED_DIR, 'minicpm4')
  : path.resolve(repo, '../shared/minicpm4');
const outPath = process.argv[2] ?? path.join(repo, 'tests/data/tokenizer/golden.json');

const tokenizerJsonText = fs.readFileSync(path.join(sharedDir, 'tokenizer.json'), 'utf8');
const tokenizerJson = JSON.parse(tokenizerJsonText);
const tokenizerConfig = JSON.parse(fs.readFileSync(path.join(sharedDir, 'tokenizer_config.json'), 'utf8'));
const tok = new Tokenizer(tokenizerJson, tokenizerConfig);
const pkg = (name) =>
  JSON.parse(fs.readFileSync(path.join(here, 'node_modules', name, 'package.json'), 'utf8')).version;

// ---- helpers ------------------------------------------------------------------------------------

const encode = (text, addSpecial = true) => tok.encode(text, { add_special_tokens: addSpecial }).ids;
const decode = (ids, skip) =>
  ids.length === 0 ? '' : tok.decode(ids, { skip_special_tokens: skip, clean_up_tokenization_spaces: false });

const pieceOf = (id) => tok.id_to_token(id);
const byteOf = (piece) => {
  const m = /^<0x([0-9A-Fa-f]{2})>$/.exec(piece ?? '');
  return m ? parseInt(m[1], 16) : null;
};
const specialIds = new Set(tokenizerJson.added_tokens.filter((t) => t.special).map((t) => t.id));

// HF's Rust ByteFallback decoder turns a byte run that is not valid UTF-8 into one U+FFFD per byte
// (String::from_utf8), while this JS port uses TextDecoder: one U+FFFD per maximal bad subpart, and a
// leading U+FEFF (BOM) of a run is dropped. Decode goldens are kept only where neither can happen;
// the Rust behaviour there is tested separately in C++.
const fatal = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
const jsDecodeDiverges = (ids, skip) => {
  let run = [];
  const flush = () => {
    const r = run;
    run = [];
    if (!r.length) return false;
    if (r.length >= 3 && r[0] === 0xef && r[1] === 0xbb && r[2] === 0xbf) return true;
    try {
      fatal.decode(Uint8Array.from(r));
    } catch {
      return true;
    }
    return false;
  };
  for (const id of ids) {
    if (skip && specialIds.has(id)) continue;
    const b = byteOf(pieceOf(id));
    if (b === null) {
      if (flush()) return true;
    } else {
      run.push(b);
    }
  }
  return flush();
};

// FNV-1a 64 over the ids as little-endian int32 bytes (decimal string).
const fnv1a64 = (ids) => {
  let h = 0xcbf29ce484222325n;
  const prime = 0x100000001b3n;
  for (const id of ids) {
    for (let k = 0; k < 4; ++k) {
      h ^= BigInt((id >>> (8 * k)) & 0xff);
      h = (h * prime) & 0xffffffffffffffffn;
    }
  }
  return h.toString();
};

// Deterministic PRNG (mulberry32) for the random decode cases.
const mulberry32 = (seed) => () => {
  seed |= 0;
  seed = (seed + 0x6d2b79f5) | 0;
  let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
};

// ---- encode cases -------------------------------------------------------------------------------

const texts = [
  ['empty', ''],
  ['hello', 'Hello world'],
  ['hello_lower', 'hello world'],
  ['sentence', 'The quick brown fox jumps over the lazy dog.'],
  ['leading_space', ' Hello'],
  ['leading_spaces', '   Hello'],
  ['trailing_space', 'Hello '],
  ['trailing_spaces', 'Hello   '],
  ['only_space', ' '],
  ['only_spaces', '     '],
  ['double_space', 'a  b'],
  ['space_runs', 'a b  c   d    e     f      g'],
  ['tabs', '\tindented\ttext\t\t'],
  ['tab_space_mix', ' \t \t x\t '],
  ['newline', 'line1\nline2'],
  ['crlf', 'line1\r\nline2\r\n'],
  ['cr_only', 'a\rb'],
  ['blank_lines', 'para1\n\n\npara2\n'],
  ['newline_only', '\n'],
  ['newlines_spaces', '\n \n  \n   '],
  ['python', 'def fib(n):\n    if n < 2:\n        return n\n    return fib(n - 1) + fib(n - 2)\n\nprint([fib(i) for i in range(10)])\n'],
  ['cpp', '#include <vector>\nint main() {\n  std::vector<int> v{1, 2, 3};\n  for (auto& x : v) x *= 2;\n\treturn 0;\n}\n'],
  ['json_text', '{"key": "value", "list": [1, 2.5, -3e10], "nested": {"a": null}}'],
  ['digits', '12345'],
  ['numbers', '3.14159 1,000,000 -42 0x1F 1e-9 2025-06-13 007'],
  ['ellipsis', '...'],
  ['ellipsis_text', 'Wait... what?! Really?!? Hmm....'],
  ['punctuation', 'Hello, world! (a) [b] {c} <d> "e" \'f\' `g` ~h @i #j $k %l ^m &n *o _p +q =r |s \\t /u'],
  ['chinese', '你好'],
  ['chinese_sentence', '今天天气很好，我们去公园散步吧。'],
  ['japanese', 'こんにちは、世界！カタカナとひらがな。'],
  ['korean', '안녕하세요 세계'],
  ['mixed_cjk_en', 'MiniCPM4是一个高效的端侧大模型 (efficient on-device LLM)。'],
  ['emoji', 'I love 🍕 and 🎉!'],
  ['emoji_zwj', '👨‍👩‍👧‍👦 family, 🏳️‍🌈 flag, 👍🏽 thumbs'],
  ['accents', 'café naïve résumé Zürich Ångström'],
  ['combining', 'cafe\u0301 n\u0303 a\u030a e\u0301\u0327'],
  ['rare_chars', '𝔘𝔫𝔦𝔠𝔬𝔡𝔢 ∮ E⋅da = Q ☃ ⚡ 🜁 𓀀'],
  ['arabic_hebrew', 'مرحبا بالعالم שלום'],
  ['russian', 'Привет, мир!'],
  ['thai_devanagari', 'สวัสดี नमस्ते'],
  ['special_chat', '<|im_start|>user\nhi<|im_end|>'],
  ['special_chat_full', '<|im_start|>user\nWho are you<|im_end|>\n<|im_start|>assistant\n'],
  ['special_bos_eos', '<s>Hello</s>'],
  ['special_adjacent', '<|im_start|><|im_end|><s></s><unk>'],
  ['special_spaces', ' <|im_start|> x <|im_end|> '],
  ['special_fim', '<|fim_prefix|>def f():<|fim_suffix|>\n    return 1<|fim_middle|>'],
  ['special_tools', '<|tool_call|>{"name": "f"}<|execute_start|>print(1)<|execute_end|>'],
  ['special_only', '<|im_end|>'],
  ['fake_special_1', '<|im_start |>user'],
  ['fake_special_2', '<|im_start|'],
  ['fake_special_3', '<|IM_START|>'],
  ['fake_special_4', '< s>hello</ s>'],
  ['fake_special_5', '<|im_end||>'],
  ['fake_special_6', '<<|im_end|>>'],
  ['fake_special_7', '<|im_start|im_end|>'],
  ['user_defined_pieces', '<SEP> <CLS> <img> </img> <table> <reserved_12> <0x41>'],
  ['html', '<p>Hello <b>world</b></p>\n<!-- comment -->'],
  ['url', 'https://github.com/OpenBMB/MiniCPM?tab=readme#quick-start'],
  ['markdown', '# Title\n\n- item 1\n- item 2\n\n```python\nprint(\'hi\')\n```\n'],
  ['math', 'E = mc^2, ∑_{i=1}^{n} i = n(n+1)/2, √2 ≈ 1.414'],
  ['fullwidth', 'ＡＢＣ１２３！？'],
  ['control_chars', '\u0001\u0002\u007f\u0080\u00ff'],
  ['nul', 'a\u0000b'],
  ['bom', '\ufeffhello'],
  ['long_word', 'supercalifragilisticexpialidocious antidisestablishmentarianism'],
  ['repeat_char', 'a'.repeat(57)],
  ['repeat_dash', '-'.repeat(40)],
  ['repeat_eq', '========'],
  ['repeat_spaces_newline', 'x          \n          y'],
  ['sentencepiece_marker', '▁already▁has▁markers'],
  ['low_line_mix', 'a▁ b ▁c ▁'],
];

const encodeCases = texts.map(([name, text]) => {
  const ids = encode(text, true);
  const decoded = decode(ids, false);
  const decodedSkip = decode(ids, true);
  return {
    name,
    text,
    ids,
    ids_no_special: encode(text, false),
    decoded: jsDecodeDiverges(ids, false) ? null : decoded,
    decoded_skip: jsDecodeDiverges(ids, true) ? null : decodedSkip,
    roundtrip: decodedSkip === text,
  };
});

// ---- long texts (stored as a recipe + hash) -------------------------------------------------------

const paragraph =
  'Paragraph {i}: The MiniCPM4 tokenizer handles English, 中文（简体）, 日本語, code like `for (int i = 0; i < n; ++i) sum += a[i];`, ' +
  'numbers 3.14159 and 42, emoji 😀🚀, and  double  spaces.\n';
const longRecipes = [
  ['long_mixed', paragraph, 600],
  ['long_chat', '<|im_start|>user\nQuestion {i}?<|im_end|>\n<|im_start|>assistant\nAnswer {i}.<|im_end|>\n', 300],
  ['long_a', 'a', 20000],
  ['long_spaces', ' ', 5000],
  ['long_newlines', '\n', 3000],
  ['long_emoji', '😀', 2000],
  ['long_chinese', '我们', 5000],
];
const expand = (unit, count) => {
  const parts = [];
  for (let i = 0; i < count; ++i) parts.push(unit.replaceAll('{i}', String(i)));
  return parts.join('');
};
const longCases = longRecipes.map(([name, unit, count]) => {
  const text = expand(unit, count);
  const ids = encode(text, true);
  return {
    name,
    unit,
    count,
    bytes: Buffer.byteLength(text, 'utf8'),
    n_ids: ids.length,
    fnv1a64: fnv1a64(ids),
    head: ids.slice(0, 48),
    tail: ids.slice(-48),
    roundtrip: decode(ids, true) === text,
  };
});

// ---- decode cases -------------------------------------------------------------------------------

const B = (b) => 1089 + b; // <0xXX> piece ids
const hello = tok.token_to_id('▁Hello');
const decodeLists = [
  ['metaspace_only', [59320]],
  ['metaspace_twice', [59320, 59320]],
  ['double_metaspace_piece', [1345]],
  ['bos_metaspace', [1, 59320, 1, 59320]],
  ['special_metaspace_special', [73441, 59320, 73440]],
  ['hello_after_specials', [1, 73441, hello, 73440, hello]],
  ['bytes_valid', [B(0xe4), B(0xbd), B(0xa0)]],
  ['bytes_then_text', [B(0xe4), B(0xbd), B(0xa0), hello]],
  ['text_then_bytes', [hello, B(0xf0), B(0x9f), B(0x98), B(0x80)]],
  ['byte_space_first', [B(0x20), hello]],
  ['byte_space_only', [B(0x20)]],
  ['byte_newline', [B(0x0a), hello, B(0x0a)]],
  ['bytes_split_by_special', [B(0xe4), 73440, B(0xbd), B(0xa0)]],
  ['special_only', [73440]],
  ['specials_all', [0, 1, 2, 73440, 73441, 73442, 73443, 73444, 73445, 73446, 73447]],
  ['unk_text', [0, hello]],
  ['user_defined', [3, 4, 5, 6, 7, 75]],
  ['eos_mid', [hello, 2, hello]],
];
// Ids in the normal vocab range plus a few specials, for random lists.
const rand = mulberry32(20250613);
for (let n = 0; n < 40; ++n) {
  const len = 5 + Math.floor(rand() * 60);
  const ids = [];
  for (let k = 0; k < len; ++k) {
    const r = rand();
    if (r < 0.05) ids.push(73440 + Math.floor(rand() * 8));
    else if (r < 0.08) ids.push(Math.floor(rand() * 3));
    else if (r < 0.15) ids.push(1089 + Math.floor(rand() * 128)); // ASCII byte pieces: always valid
    else ids.push(3 + Math.floor(rand() * 73437));
  }
  decodeLists.push([`random_${n}`, ids]);
}
const decodeCases = decodeLists.map(([name, ids]) => ({
  name,
  ids,
  text: jsDecodeDiverges(ids, false) ? null : decode(ids, false),
  text_skip: jsDecodeDiverges(ids, true) ? null : decode(ids, true),
}));

// ---- chat templates -----------------------------------------------------------------------------

const conv = {
  single: [{ role: 'user', content: 'Who are you?' }],
  multi: [
    { role: 'system', content: 'You are a helpful assistant.' },
    { role: 'user', content: 'Hi!' },
    { role: 'assistant', content: 'Hello! How can I help?' },
    { role: 'user', content: '写一首关于春天的诗。' },
  ],
  alternating: [
    { role: 'user', content: '  What is 2+2?  ' },
    { role: 'assistant', content: ' 4 ' },
    { role: 'user', content: 'And 3+3?' },
  ],
  tricky: [
    { role: 'user', content: 'Line 1\nLine 2\n\n<|im_end|> is special; so is <s>.' },
    { role: 'assistant', content: '' },
    { role: 'user', content: '  spaces  \t' },
  ],
  empty: [],
  bad_roles: [
    { role: 'user', content: 'a' },
    { role: 'user', content: 'b' },
  ],
};

const templates = {
  minicpm4: tokenizerConfig.chat_template,
  chatml_loop:
    "{%- for message in messages %}\n" +
    "    {%- if loop.first and message.role != 'system' %}\n" +
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n" +
    "    {% endif %}\n" +
    "<|im_start|>{{ message.role }}\n{{ message.content | trim }}<|im_end|>\n" +
    "{% endfor %}\n" +
    "{%- if add_generation_prompt %}\n" +
    "<|im_start|>assistant\n" +
    "{% endif %}\n",
  llama2:
    "{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}{% set system_message = messages[0]['content'] %}" +
    "{% else %}{% set loop_messages = messages %}{% set system_message = false %}{% endif %}" +
    "{% for message in loop_messages %}" +
    "{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}" +
    "{% if loop.index0 == 0 and system_message != false %}{% set content = '<<SYS>>\\n' + system_message + '\\n<</SYS>>\\n\\n' + message['content'] %}" +
    "{% else %}{% set content = message['content'] %}{% endif %}" +
    "{% if message['role'] == 'user' %}{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}" +
    "{% elif message['role'] == 'assistant' %}{{ ' '  + content.strip() + ' ' + eos_token }}{% endif %}{% endfor %}",
  zephyr:
    "{% for message in messages %}\n" +
    "{% if message['role'] == 'user' %}\n" +
    "{{ '<|user|>\\n' + message['content'] + eos_token }}\n" +
    "{% elif message['role'] == 'system' %}\n" +
    "{{ '<|system|>\\n' + message['content'] + eos_token }}\n" +
    "{% elif message['role'] == 'assistant' %}\n" +
    "{{ '<|assistant|>\\n'  + message['content'] + eos_token }}\n" +
    "{% endif %}\n" +
    "{% if loop.last and add_generation_prompt %}\n" +
    "{{ '<|assistant|>' }}\n" +
    "{% endif %}\n" +
    "{% endfor %}",
  namespace_flags:
    "{% set ns = namespace(has_system=false, count=0) %}" +
    "{% for m in messages %}{% if m.role == 'system' %}{% set ns.has_system = true %}{% endif %}{% set ns.count = ns.count + 1 %}{% endfor %}" +
    "{% if not ns.has_system %}[default system]\n{% endif %}" +
    "{% for m in messages %}{{ loop.index }}/{{ loop.length }} {{ m['role'] | upper }}: {{ m.content }}{% if not loop.last %} | {% endif %}{% endfor %}" +
    "\n(total {{ ns.count }}){% if add_generation_prompt %} -> ASSISTANT{% endif %}",
  expressions:
    "{# a comment #}{{ 'a' ~ 1 ~ 'b' }}|{{ \"dq\\t'x'\" }}|{{ 'it\\'s' }}|{{ 1 + 2 * 3 }}|{{ 7 // 2 }},{{ 7 % 3 }},{{ -7 // 2 }}\n" +
    "{%- set xs = ['x', 'y', 'z'] %}\n" +
    "{{ xs | length }} {{ xs[0] }} {{ xs[-1] }} {{ xs[1:] | join(',') }} {{ xs | join('-') }} {{ xs[::-1] | join('') }}\n" +
    "{{ 'yes' if messages | length > 1 else 'no' }} {{ 'D' if undefined_var is defined else 'U' }} {{ undefined_var | default('dflt') }}\n" +
    "{%- for m in messages if m.role == 'user' %}\n[{{ loop.index0 }}:{{ m.content | replace('?', '!') | lower }}]\n{%- endfor %}\n" +
    "{{ 'T' if 'Who' in (messages[0].content if messages else '') else 'F' }} {{ 'T' if 'user' not in ['system'] else 'F' }}" +
    " {{ 'T' if (messages[0] if messages else {}) is mapping else 'F' }} {{ 'T' if none is none else 'F' }} {{ 'T' if 'x' is string else 'F' }}\n" +
    "{%- if messages | length == 0 %}empty{% elif messages | length == 1 %}one{% else %}many{% endif %}\n" +
    "  {{- 'END' -}}  \n",
};

const chatCases = [];
const chatErrors = [];
const specials = {
  bos_token: tokenizerConfig.bos_token,
  eos_token: tokenizerConfig.eos_token,
  unk_token: tokenizerConfig.unk_token,
};
for (const [tname, tsrc] of Object.entries(templates)) {
  const t = new Template(tsrc);
  for (const [cname, messages] of Object.entries(conv)) {
    if (tname === 'llama2' && cname === 'empty') continue;
    for (const agp of [false, true]) {
      const name = `${tname}.${cname}.${agp ? 'gen' : 'nogen'}`;
      let rendered;
      try {
        rendered = t.render({ messages, add_generation_prompt: agp, ...specials });
      } catch (e) {
        chatErrors.push({ name, template: tname, messages, add_generation_prompt: agp, error: String(e.message ?? e) });
        continue;
      }
      const c = { name, template: tname, messages, add_generation_prompt: agp, rendered };
      if (tname === 'minicpm4') c.ids = encode(rendered, true);
      chatCases.push(c);
    }
  }
}

const golden = {
  generator: 'tools/tokenizer_golden/gen_golden.mjs (see README.md there)',
  reference: `@huggingface/tokenizers ${pkg('@huggingface/tokenizers')}, @huggingface/jinja ${pkg('@huggingface/jinja')}, node ${process.version}`,
  tokenizer_json_sha256: crypto.createHash('sha256').update(tokenizerJsonText, 'utf8').digest('hex'),
  notes: [
    'encode[].ids: tokenizer(text) (BOS added); ids_no_special: add_special_tokens=False.',
    'decoded / decoded_skip / decode[].text*: decode(ids, skip_special_tokens=False/True); null where the ids hold a byte-fallback run that is not valid UTF-8 or starts with a BOM (the JS port decodes those differently from HF Rust; tested separately in C++).',
    'long[]: text = concat over i in [0, count) of unit with "{i}" replaced by i; fnv1a64 over the ids as little-endian int32 bytes.',
    'chat[]: templates rendered with trim_blocks + lstrip_blocks (transformers settings) for the given variables; ids (minicpm4 only) = tokenizer(rendered).',
  ],
  templates,
  special_tokens: specials,
  encode: encodeCases,
  long: longCases,
  decode: decodeCases,
  chat: chatCases,
  chat_errors: chatErrors,
};

fs.mkdirSync(path.dirname(outPath), { recursive: true });
// One line per case keeps the file compact and diffs readable.
const lines = Object.entries(golden).map(([k, v]) => {
  if (Array.isArray(v) && v.length && typeof v[0] === 'object')
    return ` ${JSON.stringify(k)}: [\n${v.map((x) => '  ' + JSON.stringify(x)).join(',\n')}\n ]`;
  if (v && typeof v === 'object' && !Array.isArray(v))
    return ` ${JSON.stringify(k)}: {\n${Object.entries(v).map(([a, b]) => `  ${JSON.stringify(a)}: ${JSON.stringify(b)}`).join(',\n')}\n }`;
  return ` ${JSON.stringify(k)}: ${JSON.stringify(v)}`;
});
fs.writeFileSync(outPath, '{\n' + lines.join(',\n') + '\n}\n');
console.log(
  `wrote ${outPath}: ${encodeCases.length} encode, ${longCases.length} long, ${decodeCases.length} decode, ` +
    `${chatCases.length} chat, ${chatErrors.length} chat errors`,
);
