/**
 * The quickstart demo: builds a tiny rootfs from host binaries (no download),
 * runs containers that show their isolation, streams their output and prints
 * how long each run took; then makes it an image, builds examples/Dockerfile
 * on it, runs that, and rebuilds it from the build cache.
 *
 * Run: npm run demo (as root; rootless mode arrives with user namespaces).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ImageStore, LayerBuilder, Runtime, importRootfs, rootfsFromHost, type ContainerSpec } from '../src/index.js';

const base = await mkdtemp(join(tmpdir(), 'dockless-demo-'));
try {
  let t = performance.now();
  const rootfs = await rootfsFromHost(join(base, 'rootfs'));
  console.log(
    `built a rootfs from host binaries in ${(performance.now() - t).toFixed(1)} ms ` +
      `(${rootfs.busybox ? 'busybox' : `${rootfs.binaries.length} binaries`}, ${rootfs.libraries.length} libraries)\n`,
  );

  const runtime = new Runtime({ root: join(base, 'data'), stateDir: join(base, 'state') });

  async function show(title: string, spec: Omit<ContainerSpec, 'rootfs'>): Promise<void> {
    const start = performance.now();
    await using container = await runtime.run({ rootfs: rootfs.path, ...spec });
    let out = '';
    container.stdout?.on('data', (chunk: Buffer) => (out += chunk.toString()));
    container.stderr?.pipe(process.stderr);
    const exit = await container.wait();
    const ms = (performance.now() - start).toFixed(1);
    console.log(`$ ${(spec.cmd ?? []).join(' ')}    # ${title} — exit ${exit.exitCode}, ${ms} ms`);
    console.log(out.trimEnd().replace(/^/gm, '  '));
  }

  await show('its own hostname', { cmd: ['hostname'], hostname: 'demo-box' });
  await show('its own pid namespace: the init is pid 1, no host processes', {
    cmd: ['sh', '-c', 'echo "my pid: $$"; ls /proc | grep -E "^[0-9]+$" | tr "\\n" " "; echo'],
  });
  await show('its own mount table: an overlay root, fresh /proc and /dev', {
    cmd: ['sh', '-c', 'cat /proc/self/mounts | cut -d" " -f1-3'],
  });
  await show('its own network: only loopback', { cmd: ['ls', '/sys/class/net'] });
  await show('writes go to the container, never to the rootfs', {
    cmd: ['sh', '-c', 'echo hello > /etc/motd && cat /etc/motd'],
  });
  await show('runs as any user', { cmd: ['id'], user: 'nobody' });

  t = performance.now();
  const runs = 20;
  for (let i = 0; i < runs; i++) {
    const c = await runtime.run({ rootfs: rootfs.path, cmd: ['true'], stdio: 'ignore' });
    await c.wait();
    await c.remove();
  }
  console.log(`\n${runs} run+wait+remove cycles of \`true\`: ${((performance.now() - t) / runs).toFixed(2)} ms each`);

  // Images: the rootfs becomes an image, and examples/Dockerfile is built on it, run, and rebuilt from the cache.
  const store = await ImageStore.open({ root: join(base, 'store') });
  const images = new Runtime({ root: join(base, 'data'), stateDir: join(base, 'state'), store });
  await importRootfs(store, rootfs.path, { tag: 'host-binaries' });
  const build = async (): Promise<{ ms: number; cached: number; digest: string }> => {
    const start = performance.now();
    const result = await LayerBuilder.fromDockerfile(store, { context: import.meta.dirname, runtime: images, tag: 'demo-app' });
    return { ms: performance.now() - start, cached: result.cachedSteps, digest: result.digest };
  };
  const cold = await build();
  await using app = await images.run({ image: 'demo-app' });
  let greeting = '';
  app.stdout?.on('data', (chunk: Buffer) => (greeting += chunk.toString()));
  await app.wait();
  const warm = await build();
  console.log(`\nbuilt examples/Dockerfile in ${cold.ms.toFixed(0)} ms; \`docker run demo-app\` says: ${greeting.trim()}`);
  console.log(
    `rebuilt it in ${warm.ms.toFixed(1)} ms (${warm.cached} steps from the cache, ` +
      `${warm.digest === cold.digest ? 'the same image' : 'a different image!'})`,
  );
} finally {
  await rm(base, { recursive: true, force: true });
}
