/**
 * A tiny WGSL preprocessor so one file per op family can hold its variants:
 * `//#if NAME`, `//#if !NAME`, `//#else`, `//#endif` (nestable) keep or drop lines by the set of
 * defines, and `{{KEY}}` is replaced by a value (e.g. the head dimension sizing workgroup arrays).
 */
export function preprocess(src: string, defines: readonly string[] = [], values: Record<string, string | number> = {}): string {
  const on = new Set(defines);
  const out: string[] = [];
  // each frame: [this branch active, any enclosing branch inactive]
  const stack: { active: boolean; parentActive: boolean }[] = [];
  const live = () => stack.every((f) => f.active);
  for (const line of src.split('\n')) {
    const t = line.trim();
    if (t.startsWith('//#if ')) {
      const cond = t.slice(6).trim();
      const neg = cond.startsWith('!');
      const name = neg ? cond.slice(1) : cond;
      stack.push({ active: on.has(name) !== neg, parentActive: live() });
    } else if (t === '//#else') {
      const f = stack[stack.length - 1];
      if (!f) throw new Error('wgsl preprocess: //#else without //#if');
      f.active = !f.active;
    } else if (t === '//#endif') {
      if (!stack.pop()) throw new Error('wgsl preprocess: //#endif without //#if');
    } else if (live()) {
      out.push(line);
    }
  }
  if (stack.length) throw new Error('wgsl preprocess: unterminated //#if');
  return out.join('\n').replace(/\{\{(\w+)\}\}/g, (_, k: string) => {
    if (!(k in values)) throw new Error(`wgsl preprocess: no value for {{${k}}}`);
    return String(values[k]);
  });
}
