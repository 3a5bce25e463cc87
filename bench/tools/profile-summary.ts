/** `npx tsx bench/tools/profile-summary.ts <file.cpuprofile> [top]`: where the busy time of a profile went. */
import { summariseCpuProfile } from '../lib/cpu-profile.js';

const [file, top] = process.argv.slice(2);
if (!file) {
  process.stderr.write('usage: tsx bench/tools/profile-summary.ts <file.cpuprofile> [top]\n');
  process.exit(2);
}
process.stdout.write(`${await summariseCpuProfile(file, Number(top ?? 25))}\n`);
