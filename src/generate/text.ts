/** Text-stream helpers for chat: Python-style strip() on a stream, and stop strings. */

/** Python str.isspace() for one character (what the official response.strip() removes). */
export function isPySpace(ch: string): boolean {
  return /^[\t\n\v\f\r\x1c-\x20\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]$/u.test(ch);
}

export function pyStrip(s: string): string {
  const chars = Array.from(s);
  let a = 0;
  let b = chars.length;
  while (a < b && isPySpace(chars[a])) a++;
  while (b > a && isPySpace(chars[b - 1])) b--;
  return chars.slice(a, b).join('');
}

/**
 * Streams text with leading whitespace dropped and trailing whitespace held back until more text
 * follows, so the concatenated output equals pyStrip(all input) at every point where it ends.
 */
export class WhitespaceTrimmer {
  private started = false;
  private pending = '';

  push(text: string): string {
    let out = '';
    for (const ch of text) {
      if (isPySpace(ch)) {
        if (this.started) this.pending += ch;
      } else {
        this.started = true;
        out += this.pending + ch;
        this.pending = '';
      }
    }
    return out;
  }
}

/**
 * Matches stop strings across token boundaries. Text that could still be the start of a stop
 * string is held back, so a partial stop string never leaks to the caller.
 */
export class StopStringMatcher {
  private held = '';

  constructor(private readonly stops: string[]) {}

  push(text: string): { text: string; stopped: boolean } {
    if (this.stops.length === 0) return { text, stopped: false };
    const buf = this.held + text;
    let cut = -1;
    for (const s of this.stops) {
      const i = buf.indexOf(s);
      if (i >= 0 && (cut < 0 || i < cut)) cut = i;
    }
    if (cut >= 0) {
      this.held = '';
      return { text: buf.slice(0, cut), stopped: true };
    }
    // hold back the longest suffix that is a proper prefix of some stop string
    let keep = 0;
    for (const s of this.stops) {
      for (let k = Math.min(s.length - 1, buf.length); k > keep; k--) {
        if (buf.endsWith(s.slice(0, k))) {
          keep = k;
          break;
        }
      }
    }
    this.held = buf.slice(buf.length - keep);
    return { text: buf.slice(0, buf.length - keep), stopped: false };
  }

  /** End of stream: whatever was held back is plain text (after `last`). */
  flush(last: string): string {
    const r = this.push(last);
    const out = r.text + (r.stopped ? '' : this.held);
    this.held = '';
    return out;
  }
}
