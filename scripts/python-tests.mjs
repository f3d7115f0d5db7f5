// Runs the organism's Python unit tests (TReFT loss) when Debian's python3 has torch; in CI a missing
// torch is an error (.ci/run installs python3-torch), locally it is reported and skipped.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';

const py = '/usr/bin/python3';
if (!existsSync('organism/tests')) {
  console.log('no organism/tests yet');
  process.exit(0);
}
const probe = spawnSync(py, ['-c', 'import torch'], { stdio: 'ignore' });
if (probe.status !== 0) {
  const msg = 'organism tests need Debian python3-torch: apt-get install -y python3-torch';
  if (process.env.CI) {
    console.error(msg);
    process.exit(1);
  }
  console.log(`skipped: ${msg}`);
  process.exit(0);
}
const r = spawnSync(py, ['-m', 'unittest', 'discover', '-s', 'organism/tests', '-t', '.', '-v'], {
  stdio: 'inherit',
});
process.exit(r.status ?? 1);
