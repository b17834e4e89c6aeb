import { strict as assert } from 'node:assert';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  commitContainer,
  InvalidArgumentError,
  BuildError,
  ImageStore,
  LayerBuilder,
  NotFoundError,
  Runtime,
  importRootfs,
  type BuildProgress,
} from '../../src/index.js';
import { locateHelper } from '../../src/helper/locate.js';
import { readXattrs } from '../../src/helper/xattrs.js';
import { setFlushDelayForTesting } from '../../src/store/durability.js';
import { diffToTar, unpackLayer } from '../../src/layer/index.js';
import { cannotRun, makeWorld, text, type World } from '../fixtures/world.js';

const skip = cannotRun();
if (skip !== undefined) console.log(`# skipping build integration tests: ${skip}`);

/** Collects progress events; `statuses()` gives each filesystem step's outcome in order. */
function recorder() {
  const events: BuildProgress[] = [];
  return {
    events,
    onProgress: (e: BuildProgress) => void events.push(e),
    statuses: (stage?: string) =>
      events
        .filter((e) => (e.type === 'step-cached' || e.type === 'step-done') && (stage === undefined || e.stage === stage))
        .filter((e) => /^(RUN|COPY|ADD|WORKDIR)/.test(e.instruction))
        .map((e) => `${e.type === 'step-cached' ? 'cached' : 'built'} ${e.instruction.split(' ')[0]}`),
    output: () => events.filter((e): e is Extract<BuildProgress, { type: 'step-output' }> => e.type === 'step-output').map((e) => e.data).join(''),
  };
}

/** The entries of a layer blob, as `tar -tv` lists them (owner/mode/name). */
function layerEntries(store: ImageStore, digest: string): string[] {
  return execFileSync('tar', ['-tvzf', store.blobPath(digest), '--numeric-owner'])
    .toString()
    .trim()
    .split('\n')
    .filter(Boolean)
    .map((l) => {
      const f = l.split(/\s+/);
      return `${f[0]} ${f[1]} ${f.slice(5).join(' ')}`;
    });
}

describe('LayerBuilder', { skip }, () => {
  let world: World;
  let store: ImageStore;
  let runtime: Runtime;
  let ctx: string;

  const output = async (image: string, cmd?: string[]): Promise<string> => {
    const c = await runtime.run({ image, ...(cmd !== undefined ? { cmd } : {}) });
    const [out, exit] = await Promise.all([text(c.stdout), c.wait()]);
    await c.remove();
    assert.equal(exit.exitCode, 0, out);
    return out;
  };
  const dockerfile = async (body: string, name = 'Dockerfile'): Promise<void> => writeFile(join(ctx, name), body);

  before(async () => {
    world = await makeWorld();
    store = await ImageStore.open({ root: join(world.base, 'store') });
    runtime = new Runtime({ root: world.runtime.root, stateDir: world.runtime.stateDir, store });
    await importRootfs(store, world.rootfs, { tag: 'base:1' });
    ctx = join(world.base, 'ctx');
    await mkdir(join(ctx, 'files', 'sub'), { recursive: true });
    await writeFile(join(ctx, 'files', 'a.txt'), 'alpha\n');
    await writeFile(join(ctx, 'files', 'sub', 'b.txt'), 'beta\n');
    await writeFile(join(ctx, 'top.txt'), 'top\n');
  });
  after(async () => {
    await world?.dispose();
  });

  it('builds one layer per filesystem step; inspect shows the steps as history', async () => {
    const rec = recorder();
    const result = await new LayerBuilder(store, { from: 'base:1', runtime, context: ctx, onProgress: rec.onProgress })
      .run('echo hello > /hello && mkdir -p /data && echo ran')
      .copy('files/', '/srv/files/')
      .env('GREETING', 'hi there')
      .workdir('/srv/work')
      .run('rm /hello && pwd > /srv/pwd')
      .label('org.example.step', 'six')
      .cmd(['cat', '/srv/pwd'])
      .commit('built:1');
    assert.equal(result.reference, 'docker.io/library/built:1');
    assert.equal(result.cachedSteps, 0);
    const details = await store.inspect('built:1');
    assert.equal(details.digest, result.digest);
    assert.deepEqual(
      details.history.slice(1).map((h) => `${h.empty_layer ? '-' : '+'} ${h.created_by}`),
      [
        '+ RUN /bin/sh -c echo hello > /hello && mkdir -p /data && echo ran',
        '+ COPY files/ /srv/files/',
        '- ENV GREETING="hi there"',
        '+ WORKDIR /srv/work',
        '+ RUN /bin/sh -c rm /hello && pwd > /srv/pwd',
        '- LABEL org.example.step=six',
        '- CMD ["cat","/srv/pwd"]',
      ],
    );
    assert.equal(details.layers.length, 5);
    assert.equal(details.config.config?.WorkingDir, '/srv/work');
    assert.equal(details.config.created, details.history.at(-1)!.created);
    assert.match(rec.output(), /ran\n/);
    // The RUN layers hold the changes only, not the mount points the runtime made.
    assert.deepEqual(layerEntries(store, details.layers[1]!.digest), ['drwxr-xr-x 0/0 data/', '-rw-r--r-- 0/0 hello']);
    assert.deepEqual(layerEntries(store, details.layers[4]!.digest), ['---------- 0/0 .wh.hello', 'drwxr-xr-x 0/0 srv/', '-rw-r--r-- 0/0 srv/pwd']);
    assert.deepEqual(layerEntries(store, details.layers[2]!.digest), [
      'drwxr-xr-x 0/0 srv/',
      'drwxr-xr-x 0/0 srv/files/',
      '-rw-r--r-- 0/0 srv/files/a.txt',
      'drwxr-xr-x 0/0 srv/files/sub/',
      '-rw-r--r-- 0/0 srv/files/sub/b.txt',
    ]);
    assert.equal(await output('built:1'), '/srv/work\n');
    assert.equal(
      await output('built:1', ['sh', '-c', 'test -e /hello && echo present || echo gone; cat /srv/files/sub/b.txt; echo "$GREETING"']),
      'gone\nbeta\nhi there\n',
    );
  });

  // A snapshot the builder adopts (the directory a layer was made from) must be what
  // unpacking that layer gives: containers of a pulled copy of the image see the same files.
  // Each helper spawn is a fork+exec on the critical path of a step: pruning the upper dir and diffing it need the same xattrs.
  it('a RUN step reads its upper dir\'s xattrs with one helper run, and its layer keeps them', async () => {
    const log = join(world.base, 'run-xattrs-ops.log');
    const wrapper = join(world.base, 'run-xattrs-helper');
    await writeFile(wrapper, `#!/bin/sh\necho "$1" >> '${log}'\nexec '${locateHelper()}' "$@"\n`, { mode: 0o755 });
    await writeFile(log, '');
    const result = await new LayerBuilder(store, { from: 'base:1', runtime, context: ctx, helperPath: wrapper, noCache: true })
      .run('mkdir -p /one/two && echo x > /one/two/file && mkdir /empty-parent')
      .commit('xattrs-once:1');
    const ops = (await readFile(log, 'utf8')).split('\n').filter((op) => op !== '');
    assert.deepEqual(ops.filter((op) => op === 'xattrs'), ['xattrs'], `helper ops of the build: ${ops.join(', ')}`);
    const details = await store.inspect(result.reference!);
    const entries = layerEntries(store, details.layers.at(-1)!.digest);
    assert.ok(entries.includes('-rw-r--r-- 0/0 one/two/file') && entries.includes('drwxr-xr-x 0/0 empty-parent/'), entries.join('\n'));
  });

  // A step's adopted snapshot waited for a syncfs of its files (and fsyncs of its marker) before the
  // next step could start; it is now published as an unpack publishes: flushed in the background,
  // trusted in this boot until then, and flush() waits for it.
  it('a step adopts its directory as a snapshot without waiting on the disk, and flush() makes it durable', async () => {
    const log = join(world.base, 'adopt-ops.log');
    const wrapper = join(world.base, 'adopt-helper');
    await writeFile(wrapper, `#!/bin/sh\necho "$1" >> '${log}'\nexec '${locateHelper()}' "$@"\n`, { mode: 0o755 });
    await writeFile(log, '');
    const flushing = await ImageStore.open({ root: store.root, helperPath: wrapper });
    // The root's flusher is shared by its stores: a flush an earlier test left scheduled (its timer armed
    // with the default delay) would take this test's snapshots along. Drained first, none is armed.
    await store.flush();
    setFlushDelayForTesting(600_000);
    let result;
    try {
      result = await new LayerBuilder(flushing, { from: 'base:1', runtime, context: ctx, helperPath: wrapper, noCache: true })
        .run('dd if=/dev/urandom of=/big bs=1024 count=4096 2>/dev/null && echo done')
        .copy('files/', '/srv/files/')
        .commit('adopt-unflushed:1');
      const ops = (await readFile(log, 'utf8')).split('\n').filter((op) => op !== '');
      assert.deepEqual(ops.filter((op) => op === 'syncfs'), [], `helper ops of the build: ${ops.join(', ')}`);
      const details = await store.inspect(result.reference!);
      const markers = details.layers.slice(-2).map((l) => join(store.root, 'dockless', 'snapshots', l.chainId.slice(7), 'snapshot.json'));
      for (const marker of markers) assert.equal(JSON.parse(await readFile(marker, 'utf8')).flushed, false, marker);
      await flushing.flush();
      for (const marker of markers) assert.equal(JSON.parse(await readFile(marker, 'utf8')).flushed, true, marker);
    } finally {
      setFlushDelayForTesting(undefined);
    }
    const snapshot = await store.snapshot(result.reference!);
    assert.equal(snapshot.lowerDirs.length, 3);
    assert.equal(await output('adopt-unflushed:1', ['sh', '-c', 'wc -c < /big; cat /srv/files/a.txt']), '4194304\nalpha\n');
  });

  it('adopts the directories layers were made from as their snapshots, identical to unpacking the layers', async () => {
    const result = await new LayerBuilder(store, { from: 'base:1', runtime, context: ctx })
      .run('mkdir -p /opt/new/deep && echo x > /opt/new/deep/f && ln -s deep/f /opt/new/link && ln /opt/new/deep/f /opt/new/hard')
      .run('echo changed >> /etc/passwd && rm /bin/probe && rm -rf /home && mkdir -p /home/fresh && mkfifo /opt/fifo')
      .copy('files/', '/srv/files/', { chown: '7:8', chmod: '640' })
      .commit();
    const details = await store.inspect(result.digest);
    // Nothing unpacked the last layers: their snapshots exist because they were adopted.
    for (const layer of details.layers) {
      assert.ok(existsSync(join(store.root, 'dockless', 'snapshots', layer.chainId.slice(7), 'snapshot.json')), layer.chainId);
    }
    const snapshots = await store.snapshot(result.digest);
    // Whiteouts' own times mean nothing (the tar has none for them): left out.
    const listing = (dir: string): string =>
      execFileSync('find', [dir, '-mindepth', '1', '-printf', '%P %y %m %U %G %s %T@ %l %n\\n'])
        .toString()
        .split('\n')
        .map((l) => (l.split(' ')[1] === 'c' ? l.split(' ').filter((_, k) => k !== 6).join(' ') : l))
        .sort()
        .join('\n');
    for (const [i, layer] of details.layers.entries()) {
      if (i === 0) continue;
      const unpacked = join(world.base, `unpacked-${i}`);
      await mkdir(unpacked);
      await unpackLayer(await store.getBlob(layer.digest), unpacked);
      const adopted = snapshots.lowerDirs[snapshots.lowerDirs.length - 1 - i]!;
      assert.equal(listing(adopted), listing(unpacked), `layer ${i}`);
      const dirs = execFileSync('find', [unpacked, '-mindepth', '1', '-type', 'd', '-printf', '%P\n']).toString().trim().split('\n').filter(Boolean);
      const opaque = async (root: string) =>
        [...(await readXattrs(root, dirs))].filter(([, a]) => a.has('trusted.overlay.opaque')).map(([p]) => p).sort();
      assert.deepEqual(await opaque(adopted), await opaque(unpacked), `layer ${i} opaque dirs`);
    }
    assert.equal(
      await output(result.digest, ['sh', '-c', "cat /opt/new/link; ls /home; test -e /bin/probe || echo no-probe; ls -ln /srv/files/a.txt | awk '{print $1, $3, $4}'"]),
      'x\nfresh\nno-probe\n-rw-r----- 7 8\n',
    );
  });

  // A COPY's layer tar is written while its files are copied, not diffed from its directory
  // after: it must be the very tar diffing the finished directory gives, including the names
  // whose byte order differs from the walk's, links, a file past the small-file size, copied-up
  // directories; and a COPY the stream cannot take in order (a file, then a directory's files
  // into the same place) is diffed instead, with the same result.
  it('a COPY\'s layer, gzipped while it is copied, is byte for byte the tar of its finished directory', async () => {
    const src = join(world.base, 'ctx-stream');
    await mkdir(join(src, 'tree', 'a', 'deep'), { recursive: true });
    await mkdir(join(src, 'tree', 'a-b'), { recursive: true });
    await writeFile(join(src, 'tree', 'a', 'x'), 'x\n');
    await writeFile(join(src, 'tree', 'a', 'deep', 'y'), 'y\n');
    await writeFile(join(src, 'tree', 'a-b', 'z'), 'z\n');
    await writeFile(join(src, 'tree', 'a.c'), 'dot\n');
    await writeFile(join(src, 'tree', 'é-name'), 'accent\n');
    await writeFile(join(src, 'tree', 'big.bin'), Buffer.alloc((1 << 20) + 12345, 7));
    await chmod(join(src, 'tree', 'a.c'), 0o751);
    execFileSync('ln', ['-s', 'a/x', join(src, 'tree', 'link')]);
    await writeFile(join(src, 'top.txt'), 'top\n');
    const diffed: string[] = [];
    const { default: createDebug } = await import('debug');
    const was = createDebug.disable();
    const log = createDebug.log;
    createDebug.enable('dockless:build');
    createDebug.log = (...args: unknown[]) => void diffed.push(String(args[0]));
    let result;
    try {
      result = await new LayerBuilder(store, { from: 'base:1', runtime, context: src, noCache: true })
        .copy('tree/', '/srv/tree/')
        .copy('tree/', '/opt/owned/', { chown: '7:8', chmod: '640' })
        .copy(['top.txt', 'tree/'], '/etc/')
        .workdir('/srv/work/deep')
        .commit();
    } finally {
      createDebug.log = log;
      createDebug.enable(was);
    }
    const details = await store.inspect(result.digest);
    const snapshots = await store.snapshot(result.digest);
    const layers = details.layers.slice(-4);
    for (const [i, layer] of layers.entries()) {
      const dir = snapshots.lowerDirs[layers.length - 1 - i]!;
      const tar = diffToTar(dir, { readXattrs: (paths) => readXattrs(dir, paths) });
      const hash = createHash('sha256');
      for await (const chunk of tar) hash.update(chunk as Buffer);
      assert.equal(`sha256:${hash.digest('hex')}`, layer.diffId, `layer ${i}: ${layerEntries(store, layer.digest).join(', ')}`);
    }
    assert.deepEqual(layerEntries(store, layers[0]!.digest).slice(0, 8), [
      'drwxr-xr-x 0/0 srv/',
      'drwxr-xr-x 0/0 srv/tree/',
      'drwxr-xr-x 0/0 srv/tree/a/',
      'drwxr-xr-x 0/0 srv/tree/a/deep/',
      '-rw-r--r-- 0/0 srv/tree/a/deep/y',
      '-rw-r--r-- 0/0 srv/tree/a/x',
      'drwxr-xr-x 0/0 srv/tree/a-b/',
      '-rw-r--r-- 0/0 srv/tree/a-b/z',
    ]);
    // Only the COPY of a file and then a directory into /etc was diffed.
    assert.equal(diffed.filter((m) => m.includes('the stream could not stand for it')).length, 1, diffed.join('\n'));
    assert.equal(
      await output(result.digest, ['sh', '-c', 'cat /srv/tree/link /etc/top.txt /etc/a/deep/y; wc -c < /opt/owned/big.bin; ls -ln /opt/owned/a.c | awk \'{print $1, $3, $4}\'']),
      `x\ntop\ny\n${(1 << 20) + 12345}\n-rw-r----- 7 8\n`,
    );
  });

  it('a COPY whose sources meet at one path: the later source replaces what the earlier one wrote there (file, symlink)', async () => {
    // Small files are written with an O_EXCL open, which is what finds an entry already there.
    const src = join(world.base, 'ctx-overlap');
    await mkdir(join(src, 'one'), { recursive: true });
    await mkdir(join(src, 'two'), { recursive: true });
    await writeFile(join(src, 'one', 'same.txt'), 'from one\n');
    await writeFile(join(src, 'two', 'same.txt'), 'from two\n');
    execFileSync('ln', ['-s', 'same.txt', join(src, 'one', 'was-link')]);
    await writeFile(join(src, 'two', 'was-link'), 'a file now\n');
    const result = await new LayerBuilder(store, { from: 'base:1', runtime, context: src, noCache: true }).copy(['one/', 'two/'], '/merged/').commit();
    assert.equal(
      await output(result.digest, ['sh', '-c', 'cat /merged/same.txt /merged/was-link; test -L /merged/was-link && echo link || echo file']),
      'from two\na file now\nfile\n',
    );
    const details = await store.inspect(result.digest);
    assert.deepEqual(layerEntries(store, details.layers.at(-1)!.digest).filter((e) => e.includes('merged/')).map((e) => e.split(' ').slice(2).join(' ')), ['merged/', 'merged/same.txt', 'merged/was-link']);
  });

  it('rebuilds from the cache: every step a hit, nothing run, the same image', async () => {
    const steps = (b: LayerBuilder) =>
      b.run('echo cached > /c').copy('top.txt', '/top.txt').env('X', '1').run('cat /top.txt /c > /both').cmd(['cat', '/both']);
    const first = await steps(new LayerBuilder(store, { from: 'base:1', runtime, context: ctx })).commit('cached:1');
    const rec = recorder();
    const second = await steps(new LayerBuilder(store, { from: 'base:1', runtime, context: ctx, onProgress: rec.onProgress })).commit('cached:1');
    assert.deepEqual(rec.statuses(), ['cached RUN', 'cached COPY', 'cached RUN']);
    assert.equal(rec.output(), '', 'no command ran');
    assert.equal(second.digest, first.digest);
    assert.equal(second.cachedSteps, 3);
    const cached = rec.events.filter((e) => e.type === 'step-cached');
    assert.ok(cached.every((e) => e.type === 'step-cached' && e.layer !== undefined && e.layer.size > 0));
  });

  it('hashes a COPY\'s context files while the steps before it run, not when the COPY is reached', async () => {
    // A cold build's first read of its context waited on the disk at its COPY step; the look-ahead
    // reads it during the steps before. The digest cache records when each file was hashed.
    const ahead = join(world.base, 'ctx-ahead');
    await mkdir(ahead);
    await writeFile(join(ahead, 'ahead.txt'), 'ahead\n');
    // Past the digest cache's racy window (a file written in the second before it is hashed is hashed again), as a source tree's files are.
    await new Promise((r) => setTimeout(r, 1100));
    let runDone = 0;
    const built = await new LayerBuilder(store, {
      from: 'base:1',
      runtime,
      context: ahead,
      onProgress: (e) => {
        if (e.type === 'step-done' && e.step === 1) runDone = Date.now();
      },
    })
      .run('sleep 1')
      .copy('ahead.txt', '/ahead.txt')
      .commit('ahead:1');
    assert.equal(await output(built.digest, ['cat', '/ahead.txt']), 'ahead\n');
    const files = join(world.base, 'store', 'dockless', 'build-cache', 'files');
    const records = await Promise.all((await readdir(files)).map(async (f) => JSON.parse(await readFile(join(files, f), 'utf8')) as { root: string; files: Record<string, [number, string, string, number, number, string]> }));
    const record = records.find((r) => r.root === ahead)?.files['ahead.txt'];
    assert.ok(record !== undefined, 'the context file\'s digest was not remembered');
    assert.ok(runDone > 0 && record[4] < runDone - 500, `hashed at ${record[4]}, the RUN before it ended at ${runDone}`);
  });

  it('invalidates exactly: a copied file\'s content, mode or name, or an earlier step, rebuilds from that step on', async () => {
    await rm(join(ctx, 'inv'), { recursive: true, force: true });
    await mkdir(join(ctx, 'inv'));
    await writeFile(join(ctx, 'inv', 'a.txt'), 'one\n');
    await writeFile(join(ctx, 'inv', 'b.txt'), 'two\n');
    const df = (first: string) =>
      `FROM base:1\nRUN echo ${first} > /first\nCOPY inv/ /inv/\nRUN ls -ln /inv > /listing && cat /inv/* >> /listing\nCMD ["cat", "/listing"]\n`;
    const build = async (first = 'one') => {
      await dockerfile(df(first), 'Dockerfile.inv');
      const rec = recorder();
      const result = await LayerBuilder.fromDockerfile(store, { context: ctx, dockerfile: 'Dockerfile.inv', runtime, onProgress: rec.onProgress, tag: 'inv:1' });
      return { result, statuses: rec.statuses() };
    };
    const baseline = await build();
    assert.deepEqual(baseline.statuses, ['built RUN', 'built COPY', 'built RUN']);
    assert.deepEqual((await build()).statuses, ['cached RUN', 'cached COPY', 'cached RUN']);

    await writeFile(join(ctx, 'inv', 'a.txt'), 'ONE\n');
    assert.deepEqual((await build()).statuses, ['cached RUN', 'built COPY', 'built RUN'], 'content');
    assert.match(await output('inv:1'), /ONE/);

    await chmod(join(ctx, 'inv', 'a.txt'), 0o600);
    assert.deepEqual((await build()).statuses, ['cached RUN', 'built COPY', 'built RUN'], 'mode');
    assert.match(await output('inv:1'), /-rw------- .* a\.txt/);

    await rename(join(ctx, 'inv', 'b.txt'), join(ctx, 'inv', 'c.txt'));
    assert.deepEqual((await build()).statuses, ['cached RUN', 'built COPY', 'built RUN'], 'name');
    assert.match(await output('inv:1'), /c\.txt/);

    assert.deepEqual((await build()).statuses, ['cached RUN', 'cached COPY', 'cached RUN'], 'nothing changed');
    assert.deepEqual((await build('uno')).statuses, ['built RUN', 'built COPY', 'built RUN'], 'earlier step');
  });

  it('noCache runs every step; with SOURCE_DATE_EPOCH the image is the same, byte for byte', async () => {
    const steps = (b: LayerBuilder) => b.run('mkdir -p /out && echo reproducible > /out/file').copy('files/', '/files/').cmd(['true']);
    const options = { from: 'base:1', runtime, context: ctx, sourceDateEpoch: 1_700_000_000 };
    await steps(new LayerBuilder(store, options)).commit();
    const rec = recorder();
    const first = await steps(new LayerBuilder(store, { ...options, noCache: true, onProgress: rec.onProgress })).commit();
    assert.deepEqual(rec.statuses(), ['built RUN', 'built COPY']);
    const second = await steps(new LayerBuilder(store, { ...options, noCache: true })).commit();
    assert.equal(second.digest, first.digest);
    const details = await store.inspect(first.digest);
    assert.equal(details.config.created, '2023-11-14T22:13:20.000Z');
    assert.ok(details.history.slice(1).every((h) => h.created === '2023-11-14T22:13:20.000Z'));
  });

  it('a failing RUN is a BuildError with its exit code and output, and leaves no layer, tag or container', async () => {
    const containersBefore = (await runtime.list()).length;
    const cacheDir = join(store.root, 'dockless', 'build-cache');
    const entriesBefore = (await readdir(cacheDir)).length;
    await dockerfile('FROM base:1\nRUN echo ok > /ok\nRUN echo "about to fail" && echo "on stderr" >&2 && exit 3\nCMD ["true"]\n', 'Dockerfile.fail');
    await assert.rejects(
      LayerBuilder.fromDockerfile(store, { context: ctx, dockerfile: 'Dockerfile.fail', runtime, tag: 'fails:1' }),
      (err: unknown) => {
        assert.ok(err instanceof BuildError, String(err));
        assert.equal(err.code, 'ERR_DOCKLESS_BUILD');
        assert.equal(err.exitCode, 3);
        assert.equal(err.line, 3);
        assert.equal(err.step, 2);
        assert.match(err.output ?? '', /about to fail\n/);
        assert.match(err.output ?? '', /on stderr/);
        assert.match(err.message, /Dockerfile line 3/);
        assert.match(err.message, /exited with code 3/);
        return true;
      },
    );
    await assert.rejects(store.resolve('fails:1'), NotFoundError);
    assert.equal((await runtime.list()).length, containersBefore);
    // The step before it is cached; the failing one is not.
    assert.equal((await readdir(cacheDir)).length, entriesBefore + 1);
    assert.deepEqual((await readdir(join(store.root, 'dockless', 'tmp'))).filter((n) => n.startsWith('build-')), []);
  });

  it('multi-stage: COPY --from a stage, and only the stages the target needs are built', async () => {
    await dockerfile(
      [
        'FROM base:1 AS unused',
        'RUN exit 1',
        'FROM base:1 AS build',
        'RUN mkdir -p /out && echo built-in-stage > /out/artifact && echo other > /out/other',
        'FROM scratch AS assets',
        'COPY top.txt /assets/',
        'FROM base:1',
        'COPY --from=build /out/artifact /app/artifact',
        'COPY --from=assets /assets/ /app/assets/',
        'COPY --from=base:1 /bin/probe /app/probe',
        'CMD ["cat", "/app/artifact", "/app/assets/top.txt"]',
      ].join('\n'),
      'Dockerfile.multi',
    );
    const rec = recorder();
    const result = await LayerBuilder.fromDockerfile(store, { context: ctx, dockerfile: 'Dockerfile.multi', runtime, onProgress: rec.onProgress, tag: 'multi:1' });
    assert.equal(await output('multi:1'), 'built-in-stage\ntop\n');
    assert.ok(!rec.events.some((e) => e.stage === 'unused'), 'the unused stage was not built');
    assert.equal(await output('multi:1', ['sh', '-c', 'ls /app; test -x /app/probe && echo probe-ok']), 'artifact\nassets\nprobe\nprobe-ok\n');
    const again = recorder();
    const second = await LayerBuilder.fromDockerfile(store, { context: ctx, dockerfile: 'Dockerfile.multi', runtime, onProgress: again.onProgress });
    assert.equal(second.digest, result.digest);
    assert.ok(again.statuses().length > 0 && again.statuses().every((s) => s.startsWith('cached')), again.statuses().join(', '));
  });

  it('Dockerfile: heredocs, build args in RUN, .dockerignore, ADD of a tar, --chown/--chmod, USER and WORKDIR', async () => {
    await mkdir(join(ctx, 'feat'), { recursive: true });
    await writeFile(join(ctx, 'feat', 'kept.txt'), 'kept\n');
    await writeFile(join(ctx, 'feat', 'secret.key'), 'do not copy\n');
    execFileSync('tar', ['-C', join(ctx, 'files'), '-czf', join(ctx, 'feat', 'bundle.tar.gz'), '.']);
    await writeFile(join(ctx, 'Dockerfile.feat.dockerignore'), '**/*.key\n');
    await dockerfile(
      [
        '# escape=\\',
        'ARG VERSION=1.0',
        'FROM base:1',
        'ARG VERSION',
        'ARG MODE=dev',
        'ENV APP_HOME=/opt/app',
        'WORKDIR ${APP_HOME}',
        'COPY --chown=1000:1000 --chmod=750 feat/ ./feat/',
        'ADD feat/bundle.tar.gz /opt/bundle/',
        'COPY <<EOF /opt/app/version.txt',
        'version ${VERSION} in $APP_HOME',
        'EOF',
        'RUN <<EOF',
        'echo "mode=$MODE version=$VERSION" > /opt/app/run.txt',
        'id -u >> /opt/app/run.txt',
        'EOF',
        'USER 1000',
        'RUN id -u > /tmp/uid && cp /tmp/uid /opt/app/feat/uid || echo "not writable" > /dev/null',
        'CMD ["sh", "-c", "cat version.txt run.txt; ls -ln feat; ls /opt/bundle /opt/bundle/sub"]',
      ].join('\n'),
      'Dockerfile.feat',
    );
    const result = await LayerBuilder.fromDockerfile(store, {
      context: ctx,
      dockerfile: 'Dockerfile.feat',
      runtime,
      buildArgs: { MODE: 'prod' },
      tag: 'feat:1',
    });
    const out = await output('feat:1');
    assert.match(out, /^version 1\.0 in \/opt\/app\nmode=prod version=1\.0\n0\n/);
    assert.match(out, /-rwxr-x--- +1 1000 +1000 .* kept\.txt/);
    assert.doesNotMatch(out, /secret\.key/);
    assert.match(out, /a\.txt\nsub\n/);
    assert.match(out, /b\.txt/);
    const details = await store.inspect(result.digest);
    assert.equal(details.config.config?.User, '1000');
    assert.ok(!(details.config.config?.Env ?? []).some((e) => e.startsWith('MODE=') || e.startsWith('VERSION=')), 'build args are not kept in the image');
    // A build arg that changes changes the RUN steps that see it, and only those.
    const rec = recorder();
    await LayerBuilder.fromDockerfile(store, { context: ctx, dockerfile: 'Dockerfile.feat', runtime, buildArgs: { MODE: 'test' }, onProgress: rec.onProgress });
    assert.deepEqual(rec.statuses(), ['cached WORKDIR', 'cached COPY', 'cached ADD', 'cached COPY', 'built RUN', 'built RUN']);
    // A file .dockerignore excludes changes nothing.
    await writeFile(join(ctx, 'feat', 'secret.key'), 'another secret\n');
    const rec2 = recorder();
    await LayerBuilder.fromDockerfile(store, { context: ctx, dockerfile: 'Dockerfile.feat', runtime, buildArgs: { MODE: 'prod' }, onProgress: rec2.onProgress });
    assert.deepEqual(rec2.statuses(), ['cached WORKDIR', 'cached COPY', 'cached ADD', 'cached COPY', 'cached RUN', 'cached RUN']);
  });

  it('commitContainer: a stopped container and a running one become images', async () => {
    const stopped = await runtime.run({ image: 'base:1', cmd: ['sh', '-c', 'echo committed > /greeting && rm /bin/probe'] });
    await stopped.wait();
    const one = await commitContainer(store, runtime, stopped, { tag: 'committed:1', message: 'add a greeting', config: { Cmd: ['cat', '/greeting'] } });
    await stopped.remove();
    assert.equal(one.reference, 'docker.io/library/committed:1');
    assert.equal(await output('committed:1'), 'committed\n');
    assert.equal(await output('committed:1', ['sh', '-c', 'test -e /bin/probe && echo there || echo gone']), 'gone\n');
    const details = await store.inspect('committed:1');
    assert.equal(details.layers.length, 2);
    assert.deepEqual(details.history.at(-1)?.comment, 'add a greeting');
    assert.deepEqual(layerEntries(store, details.layers[1]!.digest), ['drwxr-xr-x 0/0 bin/', '---------- 0/0 bin/.wh.probe', '-rw-r--r-- 0/0 greeting']);

    const running = await runtime.run({ image: 'committed:1', cmd: ['sh', '-c', 'echo live > /live && sleep 100'] });
    for (let i = 0; i < 100 && !(await readdir(runtime.pathsOf(running.id).upper)).includes('live'); i++) await new Promise((r) => setTimeout(r, 20));
    const two = await commitContainer(store, runtime, running.id, { tag: 'committed:2' });
    assert.equal(running.status, 'running', 'commit does not stop it');
    await running.remove({ force: true });
    assert.equal(await output(two.digest, ['cat', '/live', '/greeting']), 'live\ncommitted\n');
    const plain = await world.runtime.run({ rootfs: world.rootfs, cmd: ['true'] });
    await plain.wait();
    await assert.rejects(
      commitContainer(store, runtime, plain.id),
      (e: unknown) => e instanceof InvalidArgumentError && /runs on a rootfs directory/.test(e.message),
    );
    await plain.remove();
  });

  it('commitContainer of a running container needs no `cp` on PATH', async () => {
    // The running container's upper dir is copied before it is read: that copy was `cp -a`, a program the host may lack.
    const running = await runtime.run({ image: 'base:1', cmd: ['sh', '-c', 'echo live > /no-cp && sleep 100'] });
    try {
      for (let i = 0; i < 100 && !(await readdir(runtime.pathsOf(running.id).upper)).includes('no-cp'); i++) await new Promise((r) => setTimeout(r, 20));
      const saved = process.env['PATH'];
      process.env['PATH'] = join(world.base, 'no-such-bin');
      let result;
      try {
        result = await commitContainer(store, runtime, running);
      } finally {
        process.env['PATH'] = saved;
      }
      assert.equal(await output(result.digest, ['cat', '/no-cp']), 'live\n');
    } finally {
      await running.remove({ force: true });
    }
  });

  it('gc() keeps the cache\'s layers: an untagged build still rebuilds from the cache', async () => {
    const steps = (b: LayerBuilder) => b.run('echo gc-proof > /gc').copy('top.txt', '/gc-top.txt');
    await steps(new LayerBuilder(store, { from: 'base:1', runtime, context: ctx })).commit('gc:1');
    await store.untag('gc:1');
    await store.gc({ gracePeriodMs: 0 });
    assert.equal((await store.check()).length, 0);
    const rec = recorder();
    const again = await steps(new LayerBuilder(store, { from: 'base:1', runtime, context: ctx, onProgress: rec.onProgress })).commit('gc:1');
    assert.deepEqual(rec.statuses(), ['cached RUN', 'cached COPY']);
    assert.equal(await output(again.digest, ['cat', '/gc', '/gc-top.txt']), 'gc-proof\ntop\n');
  });
});
