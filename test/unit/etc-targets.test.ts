import { strict as assert } from 'node:assert';
import { mkdir, mkdtemp, readdir, rm, stat, symlink, writeFile, chmod } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ETC_TARGETS_DIR, etcTargetsLower } from '../../src/runtime/etc-targets.js';

// The shared lower may only stand in for a target where what the container sees stays the same: a symlink the
// helper must refuse, or a whiteout hiding a lower file, must reach the helper as they are.
describe('etcTargetsLower: when the /etc targets come from the shared lower', () => {
  let base: string;
  let n = 0;
  before(async () => {
    base = await mkdtemp(join(tmpdir(), 'dl-etc-targets-'));
  });
  after(async () => {
    await rm(base, { recursive: true, force: true });
  });

  /** A root and one layer per entry, each with the given files below `etc/` (`null`: `etc` is not there). */
  async function layers(...trees: (Record<string, string | { link: string }> | null)[]): Promise<{ root: string; lowers: string[] }> {
    const dir = join(base, String(n++));
    const lowers: string[] = [];
    for (const [i, tree] of trees.entries()) {
      const lower = join(dir, `l${i}`);
      await mkdir(lower, { recursive: true });
      if (tree !== null) {
        await mkdir(join(lower, 'etc'));
        for (const [name, content] of Object.entries(tree)) {
          if (typeof content === 'string') await writeFile(join(lower, 'etc', name), content);
          else await symlink(content.link, join(lower, 'etc', name));
        }
      }
      lowers.push(lower);
    }
    return { root: join(dir, 'root'), lowers };
  }

  it("a target missing from every layer: the lower, with /etc in the top layer's mode and empty targets", async () => {
    const { root, lowers } = await layers({ passwd: 'root:x:0:0::/:/bin/sh\n' }, { hosts: 'lower\n' });
    await chmod(join(lowers[0]!, 'etc'), 0o750);
    const lower = await etcTargetsLower(root, lowers);
    assert.ok(lower !== undefined);
    assert.equal(lower.startsWith(join(root, ETC_TARGETS_DIR)), true);
    assert.deepEqual((await readdir(join(lower, 'etc'))).sort(), ['hostname', 'hosts', 'resolv.conf']);
    const etc = await stat(join(lower, 'etc'));
    assert.equal(etc.mode & 0o7777, 0o750);
    assert.equal(etc.uid, process.getuid!());
    assert.equal((await stat(join(lower, 'etc', 'hosts'))).size, 0);
    // Made once: another image with /etc alike shares it.
    const other = await layers({});
    await chmod(join(other.lowers[0]!, 'etc'), 0o750);
    assert.equal(await etcTargetsLower(root, other.lowers), lower);
    assert.deepEqual((await readdir(join(root, ETC_TARGETS_DIR))).filter((e) => e.startsWith('.new-')), [], 'a half-made lower is left');
  });

  it("an image's snapshots are looked at once; a rootfs directory at each launch", async () => {
    const image = await layers({});
    const lower = await etcTargetsLower(image.root, image.lowers, true);
    assert.ok(lower !== undefined);
    // Snapshots never change; were this one changed, the first answer stands (no lookup made again).
    await writeFile(join(image.lowers[0]!, 'etc', 'hostname'), '');
    await writeFile(join(image.lowers[0]!, 'etc', 'hosts'), '');
    await writeFile(join(image.lowers[0]!, 'etc', 'resolv.conf'), '');
    assert.equal(await etcTargetsLower(image.root, image.lowers, true), lower);
    // A rootfs directory is asked again: with every target there now, no lower.
    assert.equal(await etcTargetsLower(image.root, image.lowers), undefined);
  });

  it('none: every target there already, /etc not a directory at the top, or a target that is not a regular file', async () => {
    const cases = [
      await layers({ hostname: '', hosts: '', 'resolv.conf': '' }),
      await layers({ hostname: '' }, { hosts: '', 'resolv.conf': '' }),
      await layers(null, {}),
      await layers({ hostname: { link: '/etc/shadow' } }),
      await layers({}, { 'resolv.conf': { link: '../run/resolv.conf' } }),
    ];
    const linked = await layers({});
    await rm(join(linked.lowers[0]!, 'etc'), { recursive: true });
    await symlink('/etc', join(linked.lowers[0]!, 'etc'));
    cases.push(linked);
    for (const [i, { root, lowers }] of cases.entries()) {
      assert.equal(await etcTargetsLower(root, lowers), undefined, `case ${i}`);
      await assert.rejects(stat(join(root, ETC_TARGETS_DIR)), { code: 'ENOENT' }, `case ${i}: made a lower`);
    }
  });
});
