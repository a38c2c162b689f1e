/**
 * The running estimate (ms from submit to data) behind paced token readbacks (Recorder.pace).
 *
 * A readback still pending when asked for measures the latency. The first estimate needs two
 * samples in a row within a factor 2 of each other: a lone first sample is often no decode step
 * (the load-time warm-up's, with cold kernels, or the first token after a prefill); 1.8B on the
 * H200 learnt ≈ 90 ms from the warm-up and slept that long for its first tokens. After that, a
 * lone sample far above the estimate (over 4×) is ignored, two in a row that agree replace it (an
 * estimate that shrank while the GPU ran dry would otherwise refuse every real sample: 14B on the
 * H200 stopped pacing for good after a GC pause). A readback ready at once only bounds the
 * latency from above, so the estimate shrinks: a 'near' wait ends close to the estimate, and one
 * such wait is a small step down; several in a row mean it is far off, so it halves.
 */
export class ReadbackLatency {
  /** ms; 0 = nothing learnt yet (no pacing) */
  ms = 0;
  private candidate = 0;
  private readyStreak = 0;

  constructor(private readonly mode: () => 'early' | 'near') {}

  learn(queuedAt: number, asked: number, done: number): void {
    const sample = done - queuedAt;
    if (done - asked <= 0.3) {
      this.readyStreak++;
      this.ms *= this.mode() === 'early' ? 0.8 : this.readyStreak > 1 ? 0.5 : 0.97;
      return;
    }
    this.readyStreak = 0;
    if (this.ms > 0 && sample < 4 * this.ms) {
      this.ms = sample;
      this.candidate = 0;
    } else if (this.candidate > 0 && sample < 2 * this.candidate && this.candidate < 2 * sample) {
      // no estimate yet, or one far below two samples in a row that agree (it shrank while the
      // GPU ran dry, e.g. through a GC pause): take the samples
      this.ms = sample;
      this.candidate = 0;
    } else {
      this.candidate = sample;
    }
  }
}
