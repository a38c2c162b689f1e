/**
 * One engine, one generation at a time: requests wait in a bounded FIFO. A full queue refuses at
 * once (429), and a waiting request whose client goes away leaves the queue.
 */
import { AbortError } from '../errors.js';
import { HttpError } from './errors.js';

interface Waiter {
  grant: (release: () => void) => void;
  reject: (e: unknown) => void;
  signal?: AbortSignal;
  onAbort?: () => void;
}

export class RequestQueue {
  private busy = false;
  private readonly waiting: Waiter[] = [];

  /** `maxWaiting` requests may wait while one runs. */
  constructor(private readonly maxWaiting: number) {}

  get running(): number {
    return this.busy ? 1 : 0;
  }

  get queued(): number {
    return this.waiting.length;
  }

  /** Resolves with a release function once the request may run. */
  acquire(signal?: AbortSignal): Promise<() => void> {
    if (signal?.aborted) return Promise.reject(new AbortError());
    if (!this.busy) {
      this.busy = true;
      return Promise.resolve(this.releaser());
    }
    if (this.waiting.length >= this.maxWaiting) {
      return Promise.reject(new HttpError(429, `the server is busy: ${this.waiting.length} requests are already waiting; retry later`, null, 'rate_limit_exceeded'));
    }
    return new Promise((grant, reject) => {
      const w: Waiter = { grant, reject, signal };
      if (signal) {
        w.onAbort = () => {
          const i = this.waiting.indexOf(w);
          if (i >= 0) this.waiting.splice(i, 1);
          reject(new AbortError());
        };
        signal.addEventListener('abort', w.onAbort, { once: true });
      }
      this.waiting.push(w);
    });
  }

  private releaser(): () => void {
    let done = false;
    return () => {
      if (done) return;
      done = true;
      const next = this.waiting.shift();
      if (!next) {
        this.busy = false;
        return;
      }
      if (next.onAbort) next.signal!.removeEventListener('abort', next.onAbort);
      next.grant(this.releaser());
    };
  }
}
