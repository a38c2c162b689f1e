/**
 * Tokenizer benchmark: vocabulary load time and encode/decode throughput on ≥ 10 MB of
 * deterministically generated mixed Chinese / English / code text.
 *   npm run build:ts && node dist/bench/tokenizer.js [--mb 10] [--runs 3]
 * Prints one JSON line per measurement and a table; js-tiktoken (same ranks and pattern) is the peer.
 */
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import { PAT_STR_JS, QwenTokenizer, gunzip } from '../src/tokenizer/index.js';

function findAsset(name: string): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let up = 0; up < 4; up++) {
    const p = join(dir, 'assets', name);
    if (existsSync(p)) return p;
    dir = dirname(dir);
  }
  throw new Error(`asset ${name} not found above ${fileURLToPath(import.meta.url)}`);
}

/** mulberry32: small deterministic PRNG. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const EN = ('the of and to in is that for it as was with be by on not he this are or his from at which but have an they ' +
  'you were her all she there would their we him been has when who will more no if out so said what up its about into ' +
  'than them can only other new some could time these two may then do first any my now such like our over man me even ' +
  'most made after also did many before must through back years where much your way well down should because each just ' +
  'language model token inference quantization attention transformer gradient benchmark kernel memory throughput latency ' +
  'Alibaba Qwen WebGPU WebAssembly browser runtime streaming decoder vocabulary compression')
  .split(' ');
const ZH =
  '的一是在不了有和人这中大为上个国我以要他时来用们生到作地于出就分对成会可主发年动同工也能下过子说产种面而方后多定行学法所民得经十三之进着等部度家电力里如水化高自二理起小物现实加量都两体制机当使点从业本去把性好应开它合还因由其些然前外天政四日那社义事平形相全表间样与关各重新线内数正心反你明看原又么利比或但质气第向道命此变条只没结解问意建月公无系军很情者最立代想已通并提直题党程展五果料象员革位入常文总次品式活设及管特件长求老头基资边流路级少图山统接知较将组见计别她手角期根论运农指几九区强放决西被干做必战先回则任取据处队南给色光门即保治北造百规热领七海口东导器压志世金增争济阶油思术极交受联什认六共权收证改清己美再采转更单风切打白教速花带安场身车例真务具万每目至达走积示议声报斗完类八离华名确才科张信马节话米整空元况今集温传土许步群广石记需段研界拉林律叫且究观越织装影算低持音众书布复容儿须际商非验连断深难近矿千周委素技备半办青省列习响约支般史感劳便团往酸历市克何除消构府称太准精值号率族维划选标写存候毛亲快效斯院查江型眼王按格养易置派层片始却专状育厂京识适属圆包火住调满县局照参红细引听该铁价严';
const PUNCT_ZH = '，。、；：？！“”（）';
const CODE = [
  'function {id}({a}, {b}) {\n  const {c} = {a} + {b} * {n};\n  return {c};\n}\n',
  'def {id}({a}, {b}):\n    """{w} {w} {w}."""\n    {c} = [{a} ** 2 for {a} in range({n})]\n    return {c}\n\n',
  'for (let i = 0; i < {n}; i++) {\n\tif ({a}[i] !== {b}) {c}.push({a}[i]);\n}\n',
  '#include <stdio.h>\nint {id}(int {a}) { return {a} * {n} + 0x{h}; }\n',
  'SELECT {a}, COUNT(*) FROM {id} WHERE {b} > {n} GROUP BY {a};\n',
  '<div class="{id}">{w} {w}</div>\n',
  '  "{id}": {"{a}": {n}, "{b}": [{n}, {n}, "{w}"]},\n',
];

export type TextKind = 'en' | 'zh' | 'code';

export function generateText(targetBytes: number, seed = 20261127, only?: TextKind): string {
  const r = rng(seed);
  const pick = <T>(xs: ArrayLike<T>): T => xs[Math.floor(r() * xs.length)];
  const ident = (): string => {
    const parts = [pick(EN), pick(EN)];
    return r() < 0.5 ? parts.join('_') : parts[0] + parts[1].charAt(0).toUpperCase() + parts[1].slice(1);
  };
  const out: string[] = [];
  let bytes = 0;
  while (bytes < targetBytes) {
    let kind = r();
    if (only) kind = only === 'en' ? 0.2 : only === 'zh' ? 0.5 : 0.9;
    let s: string;
    if (kind < 0.4) {
      const words: string[] = [];
      const n = 8 + Math.floor(r() * 30);
      for (let i = 0; i < n; i++) words.push(r() < 0.05 ? String(Math.floor(r() * 100000)) : pick(EN));
      s = words.join(' ');
      s = s.charAt(0).toUpperCase() + s.slice(1) + pick(['. ', '! ', '? ', '.\n\n', ", it's ", "'s "]);
    } else if (kind < 0.7) {
      let z = '';
      const n = 10 + Math.floor(r() * 60);
      for (let i = 0; i < n; i++) z += r() < 0.1 ? pick(PUNCT_ZH) : pick(ZH);
      s = z + pick(['。', '！', '？\n', '。\n\n']);
    } else {
      s = pick(CODE).replace(/\{(\w+)\}/g, (_, k: string) => {
        switch (k) {
          case 'n': return String(Math.floor(r() * 10000));
          case 'h': return Math.floor(r() * 0xffffff).toString(16);
          case 'w': return pick(EN);
          default: return ident();
        }
      });
    }
    out.push(s);
    bytes += Buffer.byteLength(s);
  }
  return out.join('');
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

export interface TokenizerBenchResult {
  bench: 'tokenizer';
  impl: string;
  text: string;
  textMB: number;
  tokens: number;
  loadMs: number;
  /** Fresh tokenizer (empty piece cache) per run. */
  encodeColdMBps: number;
  /** Second pass over the same text with the same tokenizer. */
  encodeWarmMBps: number;
  decodeMBps?: number;
  streamDecodeMBps?: number;
  node: string;
}

const timeMs = (f: () => void): number => {
  const t0 = performance.now();
  f();
  return performance.now() - t0;
};

export async function benchTokenizer(mb = 10, runs = 3): Promise<TokenizerBenchResult[]> {
  const vocab = await gunzip(new Uint8Array(readFileSync(findAsset('qwen.tiktoken.gz'))));
  const results: TokenizerBenchResult[] = [];
  const texts: Array<[string, string]> = [
    ['mixed zh/en/code', generateText(mb * 1e6)],
    ['en', generateText(2e6, 1, 'en')],
    ['zh', generateText(2e6, 2, 'zh')],
    ['code', generateText(2e6, 3, 'code')],
  ];
  const loads: number[] = [];
  for (let i = 0; i < 7; i++) loads.push(timeMs(() => QwenTokenizer.fromTiktoken(vocab)));
  for (const [name, text] of texts) {
    const textMB = Buffer.byteLength(text) / 1e6;
    const cold: number[] = [];
    const warm: number[] = [];
    let ids: number[] = [];
    for (let i = 0; i < runs; i++) {
      const tok = QwenTokenizer.fromTiktoken(vocab);
      cold.push(timeMs(() => (ids = tok.encode(text))));
      warm.push(timeMs(() => tok.encode(text)));
    }
    const r: TokenizerBenchResult = {
      bench: 'tokenizer',
      impl: 'qwen-rt',
      text: name,
      textMB: +textMB.toFixed(2),
      tokens: ids.length,
      loadMs: +median(loads).toFixed(1),
      encodeColdMBps: +(textMB / (median(cold) / 1000)).toFixed(2),
      encodeWarmMBps: +(textMB / (median(warm) / 1000)).toFixed(2),
      node: process.version,
    };
    if (name.startsWith('mixed')) {
      const tok = QwenTokenizer.fromTiktoken(vocab);
      const dec: number[] = [];
      const sdec: number[] = [];
      for (let i = 0; i < runs; i++) {
        let back = '';
        dec.push(timeMs(() => (back = tok.decode(ids))));
        if (back !== text.normalize('NFC')) throw new Error('round trip failed');
        let n = 0;
        sdec.push(
          timeMs(() => {
            const sd = tok.createStreamDecoder();
            for (const id of ids) n += sd.push(id).length;
            n += sd.flush().length;
          }),
        );
        if (n !== text.length) throw new Error('stream decode length mismatch');
      }
      r.decodeMBps = +(textMB / (median(dec) / 1000)).toFixed(2);
      r.streamDecodeMBps = +(textMB / (median(sdec) / 1000)).toFixed(2);
    }
    results.push(r);
  }
  results.push(await benchJsTiktoken(vocab, texts[0][1].slice(0, 1_000_000)));
  return results;
}

/** Peer: js-tiktoken's own Tiktoken class with the same ranks and pattern (no NFC step). */
async function benchJsTiktoken(vocab: Uint8Array, text: string): Promise<TokenizerBenchResult> {
  const { Tiktoken } = await import('js-tiktoken/lite');
  const byRank: string[] = [];
  for (const line of Buffer.from(vocab).toString('latin1').split('\n')) {
    if (!line) continue;
    const [b64, rank] = line.split(' ');
    byRank[Number(rank)] = b64;
  }
  const ranks = { pat_str: PAT_STR_JS, special_tokens: {}, bpe_ranks: `! 0 ${byRank.join(' ')}` };
  let enc: InstanceType<typeof Tiktoken> | undefined;
  const loadMs = timeMs(() => (enc = new Tiktoken(ranks)));
  const jt = enc as InstanceType<typeof Tiktoken>;
  const textMB = Buffer.byteLength(text) / 1e6;
  let ids: number[] = [];
  const cold = timeMs(() => (ids = jt.encode(text, [], [])));
  const warm = timeMs(() => jt.encode(text, [], []));
  return {
    bench: 'tokenizer',
    impl: 'js-tiktoken 1.0.21',
    text: 'mixed zh/en/code (first 1M chars)',
    textMB: +textMB.toFixed(2),
    tokens: ids.length,
    loadMs: +loadMs.toFixed(1),
    encodeColdMBps: +(textMB / (cold / 1000)).toFixed(2),
    encodeWarmMBps: +(textMB / (warm / 1000)).toFixed(2),
    node: process.version,
  };
}

function printResults(rs: TokenizerBenchResult[]): void {
  for (const r of rs) console.log(JSON.stringify(r));
  console.log('| impl | text | MB | tokens | load ms | encode MB/s (cold) | encode MB/s (warm) | decode MB/s | stream decode MB/s |');
  console.log('|---|---|---|---|---|---|---|---|---|');
  for (const r of rs) {
    console.log(
      `| ${r.impl} | ${r.text} | ${r.textMB} | ${r.tokens} | ${r.loadMs} | ${r.encodeColdMBps} | ${r.encodeWarmMBps} | ${r.decodeMBps ?? ''} | ${r.streamDecodeMBps ?? ''} |`,
    );
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const arg = (name: string, def: number): number => {
    const i = process.argv.indexOf(name);
    return i >= 0 ? Number(process.argv[i + 1]) : def;
  };
  printResults(await benchTokenizer(arg('--mb', 10), arg('--runs', 3)));
}
