import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test, type TestContext } from 'node:test';
import { promisify } from 'node:util';
import { ImageStore, importRootfs, LayerBuilder, Runtime } from '../../src/index.js';
import { rootfsFromHost } from '../../src/runtime/host-rootfs.js';
import { hostBusybox, which } from '../fixtures/host.js';
import { cannotRun, text } from '../fixtures/world.js';

const execFileAsync = promisify(execFile);
const examples = path.resolve(import.meta.dirname, '..', '..', 'examples');

let base: string;
let counter = 0;
/** A fresh, not yet existing path below the per-file temp dir. */
const fresh = (): string => path.join(base, `rootfs-${++counter}`);

before(async () => {
  base = await fs.mkdtemp(path.join(os.tmpdir(), 'dl-it-host-rootfs-'));
});

after(async () => {
  await fs.rm(base, { recursive: true, force: true });
});

/** chroot(8), or `undefined` after skipping the test with the reason. */
async function chrootOrSkip(t: TestContext): Promise<string | undefined> {
  if (process.getuid?.() !== 0) {
    t.skip('needs root for chroot(2)');
    return undefined;
  }
  const chroot = await which('chroot');
  if (!chroot) t.skip('chroot(8) not installed');
  return chroot;
}

describe('rootfsFromHost', () => {
  test('runs the copied binaries under chroot', async (t) => {
    const chroot = await chrootOrSkip(t);
    if (!chroot) return;
    const target = fresh();
    await rootfsFromHost(target, { busybox: false });
    const { stdout: listing } = await execFileAsync(chroot, [target, '/bin/ls', '/']);
    assert.deepEqual(listing.split('\n').filter(Boolean).sort(), (await fs.readdir(target)).sort());
    const { stdout: id } = await execFileAsync(chroot, [target, '/bin/id', 'dockless']);
    assert.match(id, /uid=1000\(dockless\) gid=1000\(dockless\) groups=1000\(dockless\),10\(wheel\)/);
    const { stdout: sh } = await execFileAsync(chroot, [target, '/bin/sh', '-c', 'echo hi; /bin/cat /etc/group']);
    assert.match(sh, /^hi\nroot:x:0:/);
  });

  test('runs busybox applets under chroot', async (t) => {
    const chroot = await chrootOrSkip(t);
    if (!chroot) return;
    if (!(await hostBusybox())) {
      t.skip('busybox not installed: apt-get install busybox-static to run this test');
      return;
    }
    const target = fresh();
    await rootfsFromHost(target);
    const { stdout } = await execFileAsync(chroot, [target, '/bin/sh', '-c', 'echo hi; ls /bin | grep -c .; id -un']);
    const [hi, count, user] = stdout.trim().split('\n');
    assert.equal(hi, 'hi');
    assert.ok(Number(count) > 50);
    assert.equal(user, 'root');
  });

  // The quickstart failed on a stock Debian (no busybox): the rootfs had no chmod, cut, grep or tr, so its build exited 127.
  test('without busybox, the default rootfs runs the quickstart: its pipelines and the examples/Dockerfile build', async (t) => {
    const why = cannotRun();
    if (why !== undefined) {
      t.skip(why);
      console.log(`# skipped ${t.name}: ${why}`);
      return;
    }
    const rootfs = await rootfsFromHost(fresh(), { busybox: false });
    const dir = await fs.mkdtemp(path.join(base, 'demo-'));
    const store = await ImageStore.open({ root: path.join(dir, 'store') });
    const runtime = new Runtime({ root: path.join(dir, 'root'), stateDir: path.join(dir, 'state'), store });
    try {
      const output = async (cmd: string[]): Promise<string> => {
        await using c = await runtime.run({ rootfs: rootfs.path, cmd });
        const [out, err, exit] = await Promise.all([text(c.stdout), text(c.stderr), c.wait()]);
        assert.equal(exit.exitCode, 0, `${cmd.join(' ')}: ${err}`);
        return out;
      };
      assert.match(await output(['sh', '-c', 'echo "my pid: $$"; ls /proc | grep -E "^[0-9]+$" | tr "\\n" " "; echo']), /^my pid: \d+\n1 [\d ]+\n$/);
      assert.match(await output(['sh', '-c', 'cat /proc/self/mounts | cut -d" " -f1-3']), /^overlay \/ overlay\n/);
      assert.match(await output(['id']), /^uid=0\(root\)/);

      await importRootfs(store, rootfs.path, { tag: 'host-binaries' });
      const built = await LayerBuilder.fromDockerfile(store, { context: examples, runtime, tag: 'demo-app' });
      assert.equal(built.cachedSteps, 0);
      await using app = await runtime.run({ image: 'demo-app' });
      const [greeting, exit] = await Promise.all([text(app.stdout), app.wait()]);
      assert.equal(exit.exitCode, 0);
      assert.match(greeting, /^hello from an image dockless built \(built \d\d:\d\d:\d\d\)\n$/);
    } finally {
      for (const c of await runtime.list()) await (await runtime.get(c.id).catch(() => undefined))?.remove({ force: true });
    }
  });
});
