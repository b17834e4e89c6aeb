/**
 * What the benchmarks share: command-line options, latency figures, the runc
 * bundle the start and exec benches time beside ours, and for the image
 * benchmarks (bench/pull, bench/unpack) the deterministic generation of layer
 * contents and the numbers they print. Each bench keeps its own image layout (word list, file sizes,
 * plans), so that the images they cache stay as they were.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { createWriteStream, promises as fs } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import zlib from 'node:zlib';
import tar from 'tar-stream';

/** One generated gzip layer, as cached in a bench's `layers.json`. */
export interface LayerInfo {
  digest: string;
  diffId: string;
  size: number;
  uncompressed: number;
  files: number;
}

/** The value after `name` on the command line. */
export function arg(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

// ---------------------------------------------------------------- generation

/** xorshift32: the image's layout is the same every time it is generated. */
export function rng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x / 0x100000000;
  };
}

/** 1 MiB of soup of `words`, compressing about 3× as source trees and docs do. */
export function makeText(rand: () => number, words: readonly string[]): Buffer {
  const parts: string[] = [];
  let n = 0;
  while (n < 1 << 20) {
    const w = words[Math.floor(rand() * words.length)]!;
    parts.push(w, rand() < 0.1 ? '\n' : ' ');
    n += w.length + 1;
  }
  return Buffer.from(parts.join('')).subarray(0, 1 << 20);
}

/** `len` bytes of text-like content: 4 KiB pieces of `text` at random offsets. */
export function textBody(text: Buffer, len: number, rand: () => number): Buffer {
  const body = Buffer.allocUnsafe(len);
  for (let o = 0; o < len; ) {
    const start = Math.floor(rand() * (text.length - 4096));
    const n = Math.min(len - o, 4096);
    text.copy(body, o, start, start + n);
    o += n;
  }
  return body;
}

/** `len` binary-looking bytes: random bytes with runs of zeros, compressing about 1.3×. */
export function binaryBody(len: number): Buffer {
  const body = randomBytes(len);
  for (let o = 0; o + 64 < len; o += 256) body.fill(0, o, o + 64);
  return body;
}

/** A pass-through stream that feeds what goes through it to `hash` and its length to `count`. */
function hashTap(hash: ReturnType<typeof createHash>, count: (n: number) => void): Transform {
  return new Transform({
    transform(chunk: Buffer, _enc, cb) {
      hash.update(chunk);
      count(chunk.length);
      cb(null, chunk);
    },
  });
}

/** A layer being written by {@link gzipLayer}. */
export interface GzipLayer {
  /** Adds one tar entry (`pack.entry` as a promise). */
  entry(header: Parameters<tar.Pack['entry']>[0], body?: Buffer): Promise<void>;
  /** Ends the tar and waits for the file; returns its digest, diffID and both sizes. */
  finish(): Promise<Omit<LayerInfo, 'files'>>;
}

/** Starts writing a tar, gzipped (level 6), to `out`, hashing it before and after compression. */
export function gzipLayer(out: string): GzipLayer {
  const pack = tar.pack();
  const diff = createHash('sha256');
  const digest = createHash('sha256');
  let uncompressed = 0;
  let size = 0;
  const done = pipeline(
    pack,
    hashTap(diff, (n) => (uncompressed += n)),
    zlib.createGzip({ level: 6 }),
    hashTap(digest, (n) => (size += n)),
    createWriteStream(out),
  );
  return {
    entry: (header, body) =>
      new Promise((resolve, reject) => {
        const cb = (err?: Error | null): void => (err ? reject(err) : resolve());
        if (body === undefined) pack.entry(header, cb);
        else pack.entry(header, body, cb);
      }),
    async finish() {
      pack.finalize();
      await done;
      return { digest: `sha256:${digest.digest('hex')}`, diffId: `sha256:${diff.digest('hex')}`, size, uncompressed };
    },
  };
}

// ---------------------------------------------------------------- measuring

/** `/dev/shm` when it is a writable tmpfs, else the temporary directory. */
export async function defaultParent(): Promise<string> {
  try {
    const mounts = await fs.readFile('/proc/mounts', 'utf8');
    if (/^\S+ \/dev\/shm tmpfs /m.test(mounts)) {
      await fs.access('/dev/shm', fs.constants.W_OK);
      return '/dev/shm';
    }
  } catch {
    // no /dev/shm
  }
  return os.tmpdir();
}

export function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/** The sizes (compressed and not) and file count of a whole image. */
export function layerTotals(layers: readonly LayerInfo[]): { compressed: number; uncompressed: number; files: number } {
  return {
    compressed: layers.reduce((n, l) => n + l.size, 0),
    uncompressed: layers.reduce((n, l) => n + l.uncompressed, 0),
    files: layers.reduce((n, l) => n + l.files, 0),
  };
}

/** Median, 95th percentile and mean of latency samples. */
export function latencyStats(samples: number[]): { median: number; p95: number; mean: number } {
  const s = [...samples].sort((a, b) => a - b);
  return {
    median: s[Math.floor(s.length / 2)]!,
    p95: s[Math.min(s.length - 1, Math.floor(s.length * 0.95))]!,
    mean: s.reduce((a, b) => a + b, 0) / s.length,
  };
}

/** A command's path on PATH, or `undefined`. */
export function which(cmd: string): string | undefined {
  const r = spawnSync('sh', ['-c', `command -v ${cmd}`], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : undefined;
}

/**
 * A runc bundle in `base/bundle` whose read-only root is `rootfs` and whose
 * process is `args`, with runc's state in `base/runc-state`; or, when runc
 * cannot be measured here, why.
 */
export async function runcBundle(
  base: string,
  rootfs: string,
  args: string[],
): Promise<{ runc: string; bundle: string; root: string } | { skip: string }> {
  const runc = which('runc');
  if (runc === undefined) return { skip: 'runc is not installed: apt-get install runc' };
  if (process.getuid?.() !== 0) return { skip: 'runc needs root' };
  const bundle = join(base, 'bundle');
  await fs.mkdir(bundle);
  execFileSync(runc, ['spec', '--bundle', bundle]);
  const config = JSON.parse(await fs.readFile(join(bundle, 'config.json'), 'utf8'));
  config.root = { path: rootfs, readonly: true };
  config.process.terminal = false;
  config.process.args = args;
  await fs.writeFile(join(bundle, 'config.json'), JSON.stringify(config));
  return { runc, bundle, root: join(base, 'runc-state') };
}

// ---------------------------------------------------------------- disk runs (image benches)

/**
 * Where the image benches (unpack, pull, build, memory) work: `--dir`, else
 * `/dev/shm` with `--shm`, else `/var/tmp`, a disk, where users meet the
 * figures. Also says whether the page cache can be dropped before each timed
 * run (as root only), and prints why not when it cannot.
 */
export async function imageBenchParent(): Promise<{ parent: string; onDisk: boolean; canDrop: boolean }> {
  const parent = arg('--dir') ?? (process.argv.includes('--shm') ? '/dev/shm' : '/var/tmp');
  const fsType = spawnSync('stat', ['-f', '-c', '%T', parent], { encoding: 'utf8' }).stdout.trim();
  const canDrop = process.getuid?.() === 0;
  if (!canDrop) console.log('page cache: not dropped before timed runs (needs root); figures are warm-cache');
  return { parent, onDisk: fsType !== 'tmpfs', canDrop };
}

/** `sync; echo 3 > /proc/sys/vm/drop_caches` when root: a timed run then meets a cold cache, as a user's first pull or build does. */
export function dropPageCache(): void {
  spawnSync('sync');
  if (process.getuid?.() !== 0) return;
  try {
    execFileSync('sh', ['-c', 'echo 3 > /proc/sys/vm/drop_caches']);
  } catch {
    // not allowed (a container without /proc/sys write access): the run is warm, as said at start
  }
}

/** `ours / peer` as text, with the verdict against `target`. */
export function ratioLine(label: string, ours: number, peer: number, target: number): string {
  const ratio = ours / peer;
  return `${label}: ${ratio.toFixed(2)}× (target ≤ ${target.toFixed(2)}×) ${ratio <= target ? 'OK' : 'OVER TARGET'}`;
}

/** Runs `cmd` under `/usr/bin/time -v`; returns its wall time (ms) and peak RSS (KiB), or throws with its stderr. */
export function timeV(cmd: string, args: string[], options: { cwd?: string } = {}): { ms: number; maxRssKiB: number } {
  const started = performance.now();
  const r = spawnSync('/usr/bin/time', ['-v', cmd, ...args], { encoding: 'utf8', maxBuffer: 1 << 26, ...options });
  const ms = performance.now() - started;
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status}):\n${r.stderr.slice(-2000)}`);
  const m = /Maximum resident set size \(kbytes\): (\d+)/.exec(r.stderr);
  return { ms, maxRssKiB: m ? Number(m[1]) : NaN };
}
