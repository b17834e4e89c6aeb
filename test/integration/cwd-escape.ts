// The runc CVE-2024-21626 attack, shared by cwd-escape.test.ts (root) and
// rootless-cases.ts (a real non-root user): a working directory of
// /proc/self/fd/N, from the spec's `cwd` or from an image's WorkingDir, must be
// refused or land inside the container; never in a host directory through a
// descriptor the helper still holds. Not a test file itself.
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { copyFile, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { HelperError, InvalidArgumentError, type ImageConfig, type ImageStore, type Runtime } from '../../src/index.js';
import { nativeBuildDir } from '../../src/helper/locate.js';
import type { ContainerSpec } from '../../src/runtime/spec.js';

/** Every N of /proc/self/fd/N tried. */
export const ESCAPE_FDS: readonly number[] = Array.from({ length: 62 }, (_, i) => i + 3);
const BATCH = 16;
const MARKER = 'dl-cwd-escape-marker';
/** Enough `..` to climb from any directory to the top of whatever root it is in. */
const CLIMB = `${'../'.repeat(24)}${MARKER}`;

/** A tiny rootfs (the static probe and a marker only the container's root has), and images of it. */
export interface EscapeFixture {
  rootfs: string;
  /** A host directory to bind-mount into the container. */
  bindSource: string;
  token: string;
  /** The image reference whose WorkingDir is /proc/self/fd/N. */
  imageFor(n: number): string;
}

/** Builds the fixture under `base`: the rootfs, a bind source, and one image per N in `store`. */
export async function prepareEscape(base: string, store: ImageStore): Promise<EscapeFixture> {
  const rootfs = join(base, 'escape-rootfs');
  const bindSource = join(base, 'escape-bind');
  const token = randomBytes(8).toString('hex');
  for (const dir of ['bin', 'proc', 'sys', 'dev', 'tmp', 'etc', 'mnt']) await mkdir(join(rootfs, dir), { recursive: true });
  await mkdir(join(bindSource, 'sub'), { recursive: true });
  await copyFile(join(nativeBuildDir, 'probe'), join(rootfs, 'bin', 'probe'));
  execFileSync('chmod', ['755', join(rootfs, 'bin', 'probe')]);
  await writeFile(join(rootfs, MARKER), token);
  const tar = execFileSync('tar', ['-C', rootfs, '--numeric-owner', '-cf', '-', '.'], { maxBuffer: 1 << 28 });
  const diffId = `sha256:${createHash('sha256').update(tar).digest('hex')}`;
  const layer = { descriptor: await store.putBlob(gzipSync(tar), { mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip' }), diffId };
  for (const n of ESCAPE_FDS) {
    const config = {
      architecture: 'amd64',
      os: 'linux',
      config: { Env: ['PATH=/bin'], Cmd: ['/bin/probe', 'cat', CLIMB], WorkingDir: `/proc/self/fd/${n}` },
      rootfs: { type: 'layers', diff_ids: [diffId] },
    } as ImageConfig;
    const manifest = await store.putImage({ config, layers: [layer] });
    await store.tag(manifest.digest, `example.test/cwd-escape:${n}`);
  }
  return { rootfs, bindSource, token, imageFor: (n) => `example.test/cwd-escape:${n}` };
}

/** The mount sets tried: none, and a directory bind with a tmpfs (each bind source is a host fd the helper opens). */
export function escapeMountSets(fixture: EscapeFixture): [string, ContainerSpec['mounts']][] {
  return [
    ['no mounts', []],
    [
      'a bind and a tmpfs mount',
      [
        { type: 'bind', source: fixture.bindSource, target: '/mnt/bind' },
        { type: 'tmpfs', target: '/mnt/tmpfs' },
      ],
    ],
  ];
}

type Extra = Partial<Omit<ContainerSpec, 'rootfs' | 'image' | 'cmd' | 'cwd'>>;

/** One start: undefined when refused by the helper's chdir (or the spec check) or inside; else what went wrong. */
async function tryOne(runtime: Runtime, spec: ContainerSpec, token: string): Promise<string | undefined> {
  let c;
  try {
    c = await runtime.create(spec);
  } catch (error) {
    if (error instanceof InvalidArgumentError || (error instanceof HelperError && error.step === 'chdir')) return undefined;
    return `failed otherwise: ${String(error)}`;
  }
  try {
    const chunks: Buffer[] = [];
    const errs: Buffer[] = [];
    const reading = Promise.all([
      (async () => { for await (const x of c.stdout ?? []) chunks.push(x as Buffer); })(),
      (async () => { for await (const x of c.stderr ?? []) errs.push(x as Buffer); })(),
    ]);
    try {
      await c.start();
    } catch (error) {
      if (error instanceof HelperError && error.step === 'chdir') return undefined;
      return `failed otherwise: ${String(error)}`;
    }
    const [, exit] = await Promise.all([reading, c.wait()]);
    const out = Buffer.concat(chunks).toString();
    if (exit.exitCode === 0 && out === token) return undefined;
    return `ran outside the container's root (exit ${exit.exitCode}, stdout ${JSON.stringify(out)}, stderr ${JSON.stringify(Buffer.concat(errs).toString().trim())})`;
  } finally {
    await c.remove({ force: true }).catch(() => undefined);
  }
}

/**
 * Starts a container with each /proc/self/fd/N as its working directory, from
 * the spec's cwd (on `fixture.rootfs`) and from an image's WorkingDir, with
 * each mount set, and returns a line for every start that did neither get
 * refused nor land inside the container.
 */
export async function findCwdEscapes(fixture: EscapeFixture, runtime: Runtime, imageRuntime: Runtime, extra: Extra): Promise<string[]> {
  const failures: string[] = [];
  for (const [mountsName, mounts] of escapeMountSets(fixture)) {
    for (const source of ['spec cwd', 'image WorkingDir'] as const) {
      for (let i = 0; i < ESCAPE_FDS.length; i += BATCH) {
        await Promise.all(
          ESCAPE_FDS.slice(i, i + BATCH).map(async (n) => {
            const spec: ContainerSpec =
              source === 'spec cwd'
                ? { rootfs: fixture.rootfs, cmd: ['/bin/probe', 'cat', CLIMB], cwd: `/proc/self/fd/${n}`, mounts, ...extra }
                : { image: fixture.imageFor(n), mounts, ...extra };
            const why = await tryOne(source === 'spec cwd' ? runtime : imageRuntime, spec, fixture.token);
            if (why !== undefined) failures.push(`${source} /proc/self/fd/${n} with ${mountsName}: ${why}`);
          }),
        );
      }
    }
  }
  return failures;
}
