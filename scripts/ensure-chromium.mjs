// Makes sure Debian's Chromium is present for the e2e tests: installs it with apt when missing and we
// are root; otherwise fails with a message naming the package. Never downloads a browser build.
import { existsSync } from 'node:fs';
import { execSync } from 'node:child_process';

const path = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
if (!existsSync(path)) {
  const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  if (!isRoot) {
    console.error(
      `e2e needs Debian's Chromium at ${path}. Install the package: sudo apt-get install -y chromium`,
    );
    process.exit(1);
  }
  console.log('Installing Debian package "chromium" for the e2e tests…');
  execSync('apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium', {
    stdio: 'inherit',
  });
  if (!existsSync(path)) {
    console.error(`apt-get finished but ${path} is still missing; install the package "chromium".`);
    process.exit(1);
  }
}
