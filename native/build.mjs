// Builds the native helper with the system C compiler at `npm install`.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
if (process.platform !== 'linux') {
  console.error('dockless: the native helper needs Linux; skipping its build');
  process.exit(0);
}
const cc = process.env.CC || 'cc';
const probe = spawnSync(cc, ['--version'], { stdio: 'ignore' });
if (probe.error || probe.status !== 0) {
  console.error(`dockless: no C compiler found (${cc}); install one: apt-get install -y gcc make libc6-dev`);
  process.exit(1);
}
if (!existsSync(join(here, 'Makefile'))) process.exit(0);
execFileSync('make', ['-s', '-C', here, `CC=${cc}`], { stdio: 'inherit' });
