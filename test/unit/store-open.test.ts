import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { InvalidArgumentError, NotFoundError } from '../../src/errors.js';
import { ImageStore } from '../../src/image-store.js';
import { putSyntheticImage } from '../fixtures/store-images.js';

describe('ImageStore.open options', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'dockless-store-open-'));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  // A root that is no directory path must be refused as such, never opened somewhere else (an empty
  // string used to mean the current directory) nor fail with a raw Node error.
  it('refuses a root that is empty, holds a NUL byte or is a file, with InvalidArgumentError', async () => {
    const file = join(dir, 'a-file');
    await writeFile(file, '');
    for (const root of ['', 'bad\0root', file, join(file, 'below')]) {
      await assert.rejects(ImageStore.open({ root }), InvalidArgumentError, JSON.stringify(root));
    }
  });

  // ImageStore.open takes the helper's path as new Runtime() does, and the store uses it.
  it('uses the helper named by helperPath', async () => {
    const store = await ImageStore.open({ root: join(dir, 'store'), helperPath: join(dir, 'no-such-helper') });
    const { manifest } = await putSyntheticImage(store, [{ 'a.txt': 'a' }]);
    // The helper flushes the snapshot to disk, after the snapshot is published: flush() waits for it.
    await assert.rejects(store.snapshot(manifest.digest).then(() => store.flush()), (err: unknown) => {
      assert.ok(err instanceof NotFoundError, String(err));
      assert.match(err.message, /no-such-helper/);
      return true;
    });
  });
});
