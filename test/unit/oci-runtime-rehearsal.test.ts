// dockless-runtime's V8 startup snapshot runs `rehearse` at build time: whatever it reads or does is frozen into the blob.
import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { rehearse } from '../../src/oci-runtime/main.js';

/** Runs `body` with process.env replaced by one that records each name read, and stderr by a recorder. */
async function watched(body: () => Promise<void>): Promise<{ envReads: string[]; stderr: string }> {
  const env = process.env;
  const write = process.stderr.write;
  const envReads: string[] = [];
  let stderr = '';
  process.env = new Proxy(
    {},
    {
      get: (_target, name) => {
        if (typeof name === 'string') envReads.push(name);
        return undefined;
      },
    },
  );
  process.stderr.write = ((chunk: string) => ((stderr += chunk), true)) as typeof process.stderr.write;
  try {
    await body();
  } finally {
    process.env = env;
    process.stderr.write = write;
  }
  return { envReads, stderr };
}

describe('dockless-runtime rehearsal (what its startup snapshot runs at build time)', () => {
  // A rehearsal that ran the command would make containers, state or files at build time.
  it('parses create, run, exec and spec up to their actions and runs none of them', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'dl-rehearsal-'));
    try {
      const state = join(dir, 'state');
      await rehearse(['--root', state, 'spec', '--bundle', dir]);
      await rehearse(['--root', state, 'create', '--bundle', dir, 'c1']);
      await rehearse(['--root', state, 'run', '--bundle', dir, 'c1']);
      await rehearse(['--root', state, 'exec', '--process', join(dir, 'process.json'), '--detach', 'c1']);
      assert.deepEqual(await readdir(dir), []);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  // A default --root from $XDG_RUNTIME_DIR, or the user namespace it runs in, would be the build machine's in every later start.
  it('reads no environment variable and prints nothing, even for a command line it refuses', async () => {
    const seen = await watched(async () => {
      await rehearse(['create', '--bundle', '/rehearsal', 'c1']);
      await rehearse(['--nosuch-flag', 'create']);
    });
    assert.deepEqual(seen, { envReads: [], stderr: '' });
  });
});
