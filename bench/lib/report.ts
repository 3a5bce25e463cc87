import { type Comparison, median, ratios, runsOf } from './alternate.js';

export interface Verdict {
  what: string;
  figure: string;
  reference: string;
  ratio: string;
  target: string;
  met: boolean | undefined;
}

export interface Section {
  title: string;
  markdown: string;
  verdicts: Verdict[];
}

export const fmt = {
  rate: (n: number) =>
    Number.isFinite(n) ? (n >= 100 ? Math.round(n).toLocaleString('en-US') : n.toFixed(1)) : '–',
  ms: (n: number | undefined) => (n !== undefined && Number.isFinite(n) ? n.toFixed(n < 10 ? 2 : 1) : '–'),
  cores: (n: number | undefined) => (n !== undefined && Number.isFinite(n) ? n.toFixed(2) : '–'),
  mib: (bytes: number | undefined) =>
    bytes !== undefined && Number.isFinite(bytes) ? `${(bytes / 1048576).toFixed(0)} MiB` : '–',
  ratio: (n: number) => (Number.isFinite(n) ? n.toFixed(2) : '–'),
};

/** Every run, in the order it ran, then one line per side with medians. */
export function comparisonTables(c: Comparison, unit: string): string {
  const lines = [
    `| run | ${unit} | p50 ms | p99 ms | errors / non-2xx | process CPU (cores) | process peak RSS | PostgreSQL CPU (cores) |`,
    '|---|---:|---:|---:|---:|---:|---:|---:|',
  ];
  for (const r of c.runs) {
    const errors = r.http ? `${r.http.errors + r.http.timeouts} / ${r.http.non2xx}` : '–';
    lines.push(
      `| ${r.round}. ${r.side} | ${fmt.rate(r.rate)} | ${fmt.ms(r.latency?.p50)} | ${fmt.ms(r.latency?.p99)} | ${errors} | ${fmt.cores(r.usage?.cpuCores)} | ${fmt.mib(r.usage?.peakRssBytes)} | ${fmt.cores(r.postgresCores)} |`,
    );
  }
  lines.push('', `| side | median ${unit} | median p50 ms | median p99 ms | median CPU | max peak RSS |`);
  lines.push('|---|---:|---:|---:|---:|---:|');
  for (const side of c.sides) {
    const runs = runsOf(c, side);
    lines.push(
      `| ${side} | ${fmt.rate(median(runs.map((r) => r.rate)))} | ${fmt.ms(median(runs.map((r) => r.latency?.p50 ?? Number.NaN)))} | ${fmt.ms(median(runs.map((r) => r.latency?.p99 ?? Number.NaN)))} | ${fmt.cores(median(runs.map((r) => r.usage?.cpuCores ?? Number.NaN)))} | ${fmt.mib(Math.max(...runs.map((r) => r.usage?.peakRssBytes ?? Number.NaN)))} |`,
    );
  }
  return lines.join('\n');
}

/** "0.84 (rounds: 0.82, 0.86)" */
export function ratioText(c: Comparison, side: string, reference: string): { text: string; median: number } {
  const r = ratios(c, side, reference);
  return {
    text: `${fmt.ratio(r.median)} (per round: ${r.perRound.map(fmt.ratio).join(', ')})`,
    median: r.median,
  };
}

export function verdictFor(
  c: Comparison,
  what: string,
  side: string,
  reference: string,
  unit: string,
  target: { atLeast: number } | undefined,
): Verdict {
  const r = ratioText(c, side, reference);
  return {
    what,
    figure: `${fmt.rate(median(runsOf(c, side).map((x) => x.rate)))} ${unit}`,
    reference: `${reference}: ${fmt.rate(median(runsOf(c, reference).map((x) => x.rate)))} ${unit}`,
    ratio: r.text,
    target: target ? `≥ ${target.atLeast}` : 'none set',
    met: target ? r.median >= target.atLeast : undefined,
  };
}

export function verdictTable(verdicts: Verdict[]): string {
  const lines = [
    '| what | figure | reference (same run) | ratio | target | met |',
    '|---|---:|---:|---:|---:|:---:|',
  ];
  for (const v of verdicts) {
    const met = v.met === undefined ? '–' : v.met ? 'yes' : '**no**';
    lines.push(`| ${v.what} | ${v.figure} | ${v.reference} | ${v.ratio} | ${v.target} | ${met} |`);
  }
  return lines.join('\n');
}
