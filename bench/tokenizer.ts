/**
 * Tokenizer benchmark: vocabulary load time and encode/decode throughput on ≥ 10 MB of
 * deterministically generated mixed Chinese / English / code text.
 *   npm run build:ts && node dist/bench/tokenizer.js [--mb 10] [--runs 3]
 * Prints one JSON line per measurement and a table.
 */
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import { QwenTokenizer, gunzip } from '../src/tokenizer/index.js';

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

export function generateText(targetBytes: number, seed = 20261127): string {
  const r = rng(seed);
  const pick = <T>(xs: ArrayLike<T>): T => xs[Math.floor(r() * xs.length)];
  const ident = (): string => {
    const parts = [pick(EN), pick(EN)];
    return r() < 0.5 ? parts.join('_') : parts[0] + parts[1].charAt(0).toUpperCase() + parts[1].slice(1);
  };
  const out: string[] = [];
  let bytes = 0;
  while (bytes < targetBytes) {
    const kind = r();
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
  textMB: number;
  tokens: number;
  loadMs: number;
  encodeMBps: number;
  decodeMBps: number;
  streamDecodeMBps: number;
  node: string;
}

export async function benchTokenizer(mb = 10, runs = 3): Promise<TokenizerBenchResult> {
  const gz = new Uint8Array(readFileSync(findAsset('qwen.tiktoken.gz')));
  const vocab = await gunzip(gz);
  const text = generateText(mb * 1e6);
  const textMB = Buffer.byteLength(text) / 1e6;

  const loads: number[] = [];
  for (let i = 0; i < Math.max(runs, 5); i++) {
    const t0 = performance.now();
    QwenTokenizer.fromTiktoken(vocab);
    loads.push(performance.now() - t0);
  }
  const enc: number[] = [];
  let ids: number[] = [];
  for (let i = 0; i < runs; i++) {
    const tok = QwenTokenizer.fromTiktoken(vocab); // fresh piece cache each run
    const t0 = performance.now();
    ids = tok.encode(text);
    enc.push(performance.now() - t0);
  }
  const tok = QwenTokenizer.fromTiktoken(vocab);
  const dec: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    const back = tok.decode(ids);
    dec.push(performance.now() - t0);
    if (back !== text.normalize('NFC')) throw new Error('round trip failed');
  }
  const sdec: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    const sd = tok.createStreamDecoder();
    let n = 0;
    for (const id of ids) n += sd.push(id).length;
    n += sd.flush().length;
    sdec.push(performance.now() - t0);
    if (n !== text.length) throw new Error('stream decode length mismatch');
  }
  return {
    bench: 'tokenizer',
    textMB: +textMB.toFixed(2),
    tokens: ids.length,
    loadMs: +median(loads).toFixed(1),
    encodeMBps: +(textMB / (median(enc) / 1000)).toFixed(2),
    decodeMBps: +(textMB / (median(dec) / 1000)).toFixed(2),
    streamDecodeMBps: +(textMB / (median(sdec) / 1000)).toFixed(2),
    node: process.version,
  };
}

function printResult(r: TokenizerBenchResult): void {
  console.log(JSON.stringify(r));
  console.log('| bench | text MB | tokens | load ms | encode MB/s | decode MB/s | stream decode MB/s |');
  console.log('|---|---|---|---|---|---|---|');
  console.log(`| tokenizer | ${r.textMB} | ${r.tokens} | ${r.loadMs} | ${r.encodeMBps} | ${r.decodeMBps} | ${r.streamDecodeMBps} |`);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const arg = (name: string, def: number): number => {
    const i = process.argv.indexOf(name);
    return i >= 0 ? Number(process.argv[i + 1]) : def;
  };
  printResult(await benchTokenizer(arg('--mb', 10), arg('--runs', 3)));
}
