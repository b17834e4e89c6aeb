import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { rehearse } from '../../src/cli/main.js';

// The command line's startup snapshot runs this at install (native/snapshot-entry.cjs): whatever it touched would be done, or frozen into the blob, there.
test('rehearsing `run` opens no store, makes no directory and starts no container', async () => {
  const base = await mkdtemp(join(tmpdir(), 'dl-rehearse-'));
  const root = join(base, 'root');
  const saved = process.env.DOCKLESS_ROOT;
  process.env.DOCKLESS_ROOT = root;
  try {
    await rehearse(['run', '--rm', '--network', 'none', '-v', `${base}:/data`, '--name', 'rehearsed', 'image', 'true']);
    assert.equal(existsSync(root), false, 'the rehearsal made the data directory');
  } finally {
    if (saved === undefined) delete process.env.DOCKLESS_ROOT;
    else process.env.DOCKLESS_ROOT = saved;
    await rm(base, { recursive: true, force: true });
  }
});
