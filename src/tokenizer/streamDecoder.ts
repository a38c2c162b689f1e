/**
 * Incremental detokenisation: text is released only up to the last point whose decoding can no
 * longer change (see settledEnd), so the concatenation of every push() and the final flush() equals
 * decode(all ids) with errors='replace'.
 */
import { decodeUtf8, settledEnd } from './utf8.js';

export interface StreamDecoder {
  /** New complete text since the last call. */
  push(id: number): string;
  /** Remaining bytes, invalid ones replaced; the decoder is empty afterwards. */
  flush(): string;
}

export class Utf8StreamDecoder implements StreamDecoder {
  private buf = new Uint8Array(64);
  private len = 0;

  constructor(
    private readonly bytesOf: (id: number) => Uint8Array | undefined,
  ) {}

  push(id: number): string {
    const bytes = this.bytesOf(id);
    if (bytes === undefined || bytes.length === 0) return '';
    if (this.len + bytes.length > this.buf.length) {
      const grown = new Uint8Array(Math.max(this.buf.length * 2, this.len + bytes.length));
      grown.set(this.buf.subarray(0, this.len));
      this.buf = grown;
    }
    this.buf.set(bytes, this.len);
    this.len += bytes.length;
    const cut = settledEnd(this.buf, this.len);
    if (cut === 0) return '';
    const text = decodeUtf8(this.buf.subarray(0, cut), 'replace');
    this.buf.copyWithin(0, cut, this.len);
    this.len -= cut;
    return text;
  }

  flush(): string {
    if (this.len === 0) return '';
    const text = decodeUtf8(this.buf.subarray(0, this.len), 'replace');
    this.len = 0;
    return text;
  }
}
