import { readFile } from 'node:fs/promises';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
  children?: number[];
}

const PSEUDO = new Set(['(idle)', '(program)', '(root)']);

interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
}

/** Where a function lives: a package, Node itself, the project, or V8's pseudo-frames. */
function owner(url: string, functionName: string): string {
  if (!url) return functionName.startsWith('(') ? functionName : '(native)';
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (pkg) return pkg[1];
  if (url.startsWith('node:')) return 'node internals';
  const own = /\/(dist\/)?(src|sdk|bench)\/(.+)$/.exec(url);
  if (own) return `project ${own[2]}/`;
  return url;
}

function keyOf(node: ProfileNode): string {
  const { functionName, url, lineNumber } = node.callFrame;
  const where = url
    ? `${url.replace(/^file:\/\/.*?\/(node_modules|dist|src|bench)\//, '$1/')}:${lineNumber + 1}`
    : '';
  return `${functionName || '(anonymous)'} ${where}`.trim();
}

/**
 * Self and inclusive time by function, and self time by owner, from a .cpuprofile written by
 * node --cpu-prof. Percentages are of the busy samples (idle left out): a server that waited
 * half the run still shows where its work went.
 */
export async function summariseCpuProfile(file: string, top = 25) {
  const profile = JSON.parse(await readFile(file, 'utf8')) as CpuProfile;
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const busy = profile.nodes
    .filter((n) => !PSEUDO.has(n.callFrame.functionName))
    .reduce((sum, n) => sum + (n.hitCount ?? 0), 0);
  const self = new Map<string, number>();
  const byOwner = new Map<string, number>();
  for (const node of profile.nodes) {
    const hits = node.hitCount ?? 0;
    if (hits === 0 || PSEUDO.has(node.callFrame.functionName)) continue;
    const key = keyOf(node);
    self.set(key, (self.get(key) ?? 0) + hits);
    const o = owner(node.callFrame.url, node.callFrame.functionName);
    byOwner.set(o, (byOwner.get(o) ?? 0) + hits);
  }
  // Inclusive: each sample counts once for every distinct function on its stack.
  const inclusive = new Map<string, number>();
  const visit = (node: ProfileNode, onStack: Set<string>): number => {
    const key = keyOf(node);
    const added = !onStack.has(key);
    if (added) onStack.add(key);
    let total = PSEUDO.has(node.callFrame.functionName) ? 0 : (node.hitCount ?? 0);
    for (const child of node.children ?? []) {
      const c = byId.get(child);
      if (c) total += visit(c, onStack);
    }
    if (added) {
      onStack.delete(key);
      inclusive.set(key, (inclusive.get(key) ?? 0) + total);
    }
    return total;
  };
  const root = profile.nodes[0];
  if (root) visit(root, new Set());
  const pct = (hits: number) => `${((100 * hits) / busy).toFixed(1)}%`;
  const sorted = (m: Map<string, number>) => [...m.entries()].sort((a, b) => b[1] - a[1]);
  const seconds = (profile.endTime - profile.startTime) / 1e6;
  const interval = seconds / profile.nodes.reduce((sum, n) => sum + (n.hitCount ?? 0), 0);
  const ownCode = sorted(inclusive).filter(([k]) => /(dist\/|^|\s)(src|sdk)\/|dist\/src/.test(k));
  return [
    `Profile \`${file}\`: ${seconds.toFixed(0)} s, ${(busy * interval).toFixed(1)} s busy. Percentages are of the busy time.`,
    '',
    '| self time | owner |',
    '|---:|---|',
    ...sorted(byOwner)
      .slice(0, 15)
      .map(([o, hits]) => `| ${pct(hits)} | ${o} |`),
    '',
    '| self time | function |',
    '|---:|---|',
    ...sorted(self)
      .slice(0, top)
      .map(([f, hits]) => `| ${pct(hits)} | \`${f}\` |`),
    '',
    '| inclusive time | project function |',
    '|---:|---|',
    ...ownCode.slice(0, top).map(([f, hits]) => `| ${pct(hits)} | \`${f}\` |`),
  ].join('\n');
}
