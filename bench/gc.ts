/** GC pauses seen by benchmarks (Node's PerformanceObserver 'gc' entries). */
import { PerformanceObserver, constants as perf } from 'node:perf_hooks';

export interface GcPause {
  start: number;
  ms: number;
  kind: number;
}

/** GC pauses as they happen ('gc' entries arrive asynchronously: wait a turn before reading). */
export function watchGc() {
  const gcs: GcPause[] = [];
  const obs = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) gcs.push({ start: e.startTime, ms: e.duration, kind: (e as { detail?: { kind?: number } }).detail?.kind ?? 0 });
  });
  obs.observe({ entryTypes: ['gc'] });
  return { gcs, obs };
}

/** Node's GC kinds ('major' = Mark-Compact, 'incremental' = an incremental-marking step). */
export const GC_KINDS: Record<number, string> = {
  [perf.NODE_PERFORMANCE_GC_MINOR]: 'minor',
  [perf.NODE_PERFORMANCE_GC_MAJOR]: 'major',
  [perf.NODE_PERFORMANCE_GC_INCREMENTAL]: 'incremental',
  [perf.NODE_PERFORMANCE_GC_WEAKCB]: 'weakcb',
};

/** ms of GC pauses that began in [a, b), and their kinds (GC_KINDS). */
export function gcBetween(gcs: GcPause[], a: number, b: number): string {
  const inside = gcs.filter((g) => g.start >= a && g.start < b);
  return inside.map((g) => `${GC_KINDS[g.kind] ?? g.kind}:${g.ms.toFixed(1)}`).join(' ');
}
