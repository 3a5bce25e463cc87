import type { HttpResult, LatencySummary } from '../load/protocol.js';
import { measureProcess, type ProcessUsage, postgresCpuSeconds } from './proc-stats.js';

/** One measured run of one side. */
export interface RunRecord {
  side: string;
  round: number;
  /** The figure compared: requests or jobs per second. */
  rate: number;
  latency?: LatencySummary;
  http?: HttpResult;
  /** The measured process (server under test or reference), when there is one. */
  usage?: ProcessUsage;
  /** Cores PostgreSQL used on average during the run (throwaway cluster only). */
  postgresCores?: number;
  notes?: string;
}

export interface Side {
  name: string;
  /** The process whose CPU and peak RSS are reported; none for pgbench or a queue library's own process. */
  pid?: () => number | undefined;
  /** Preparation before a run (loading its jobs, starting its process): not measured. */
  before?(round: number): Promise<void>;
  /** `usage` when the measured process reports its own (one that exits at the end of its run). */
  run(round: number): Promise<Omit<RunRecord, 'side' | 'round' | 'postgresCores'>>;
  /** Cleanup after a run (files it wrote): not measured. */
  after?(round: number): Promise<void>;
}

export interface Comparison {
  title: string;
  sides: string[];
  runs: RunRecord[];
}

/**
 * Runs every side once per round, in the same order each round (A B A B …), so that whatever the
 * machine does meanwhile (other test suites, thermal or neighbour drift) falls on every side
 * alike; each ratio is taken within a round, between runs a few seconds apart.
 */
export async function alternate(
  title: string,
  sides: Side[],
  rounds: number,
  options: { postmasterPid?: number; log: (m: string) => void },
): Promise<Comparison> {
  const runs: RunRecord[] = [];
  for (let round = 1; round <= rounds; round++) {
    for (const side of sides) {
      await side.before?.(round);
      const pid = side.pid?.();
      const process = pid ? measureProcess(pid) : undefined;
      const pgStart = options.postmasterPid ? postgresCpuSeconds(options.postmasterPid) : Number.NaN;
      const started = performance.now();
      const result = await side.run(round);
      const seconds = (performance.now() - started) / 1000;
      const usage = result.usage ?? process?.stop();
      const postgresCores = options.postmasterPid
        ? (postgresCpuSeconds(options.postmasterPid) - pgStart) / seconds
        : undefined;
      const record: RunRecord = { side: side.name, round, ...result, usage, postgresCores };
      if (!Number.isFinite(record.usage?.cpuCores ?? 0)) record.usage = undefined;
      runs.push(record);
      await side.after?.(round);
      options.log(
        `  ${title} | round ${round} | ${side.name}: ${record.rate.toFixed(1)}/s` +
          (record.latency && Number.isFinite(record.latency.p50)
            ? ` p50 ${record.latency.p50.toFixed(2)} ms p99 ${record.latency.p99.toFixed(2)} ms`
            : ''),
      );
    }
  }
  return { title, sides: sides.map((s) => s.name), runs };
}

export function median(values: number[]): number {
  const finite = values.filter(Number.isFinite).sort((a, b) => a - b);
  if (finite.length === 0) return Number.NaN;
  const mid = Math.floor(finite.length / 2);
  return finite.length % 2 ? finite[mid] : (finite[mid - 1] + finite[mid]) / 2;
}

export function runsOf(comparison: Comparison, side: string): RunRecord[] {
  return comparison.runs.filter((r) => r.side === side);
}

/** Per-round ratios of `side` to `reference` (rate over rate), and their median. */
export function ratios(comparison: Comparison, side: string, reference: string) {
  const a = runsOf(comparison, side);
  const b = runsOf(comparison, reference);
  const perRound = a.map((run) => {
    const other = b.find((r) => r.round === run.round);
    return other ? run.rate / other.rate : Number.NaN;
  });
  return { perRound, median: median(perRound) };
}
