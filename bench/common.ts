/**
 * What the benchmarks share: command-line options, latency figures, the runc
 * bundle the start and exec benches time beside ours, and for the image
 * benchmarks (bench/pull, bench/unpack) the deterministic generation of layer
 * contents and the numbers they print. Each bench keeps its own image layout (word list, file sizes,
 * plans), so that the images they cache stay as they were.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { createWriteStream, promises as fs, writeFileSync } from 'node:fs';
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

/**
 * The environment for a timed Node process: none of the bench's own loader
 * (`NODE_OPTIONS`, tsx), and no `NODE_EXTRA_CA_CERTS`, with which Node 20
 * reads and parses that CA bundle at every start (~50 ms here, where the
 * machine's environment sets it; a user's shell normally does not). Says so once when it drops it.
 */
export function nodeEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, NODE_OPTIONS: '', ...extra };
  if (env.NODE_EXTRA_CA_CERTS !== undefined && extra.NODE_EXTRA_CA_CERTS === undefined) {
    if (!caNoted) console.log(`# NODE_EXTRA_CA_CERTS (${env.NODE_EXTRA_CA_CERTS}) is left out of the timed Node processes: Node reads that bundle at each start`);
    caNoted = true;
    delete env.NODE_EXTRA_CA_CERTS;
  }
  return env;
}
let caNoted = false;

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
 * Where the image benches (unpack, pull, build, memory) work ({@link benchParent}),
 * and whether the page cache can be dropped before each timed run
 * ({@link dropCaches}, which says once why not when it cannot).
 */
export async function imageBenchParent(): Promise<{ parent: string; onDisk: boolean; canDrop: boolean }> {
  const { dir, kind } = await benchParent();
  return { parent: dir, onDisk: kind === 'disk', canDrop: dropCaches() };
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

// ---------------------------------------------------------------- where and how benches run

/**
 * The parent directory a bench works in: `--dir PARENT` when given, `/dev/shm`
 * with `--shm`, else `/var/tmp`, a directory on disk, because a user's first
 * pull, build or run meets a disk, not a warm tmpfs.
 */
export async function benchParent(): Promise<{ dir: string; kind: 'disk' | 'shm' }> {
  const dir = arg('--dir');
  if (dir !== undefined) return { dir, kind: (await fsType(dir)) === 'tmpfs' ? 'shm' : 'disk' };
  if (process.argv.includes('--shm')) {
    const shm = await defaultParent();
    return { dir: shm, kind: shm === '/dev/shm' ? 'shm' : 'disk' };
  }
  return { dir: '/var/tmp', kind: (await fsType('/var/tmp')) === 'tmpfs' ? 'shm' : 'disk' };
}

/** The filesystem type of the mount holding `path` (the longest matching mount point), from `/proc/mounts`. */
export async function fsType(path: string): Promise<string | undefined> {
  const real = await fs.realpath(path).catch(() => path);
  let best: { point: string; type: string } | undefined;
  for (const line of (await fs.readFile('/proc/mounts', 'utf8').catch(() => '')).split('\n')) {
    const [, point, type] = line.split(' ');
    if (point === undefined || type === undefined) continue;
    const inside = point === '/' || real === point || real.startsWith(`${point}/`);
    if (inside && (best === undefined || point.length >= best.point.length)) best = { point, type };
  }
  return best?.type;
}

let cacheWarned = false;

/**
 * Writes dirty pages back and drops the page cache (`sync; echo 3 >
 * /proc/sys/vm/drop_caches`), so that the next timed disk run reads as a first
 * run does. Returns false, and says so once on stderr, when it cannot (not
 * root, or /proc/sys read-only in a container): the figures are then warm-cache.
 */
export function dropCaches(): boolean {
  spawnSync('sync');
  try {
    if (process.getuid?.() !== 0) throw new Error('not root');
    writeFileSync('/proc/sys/vm/drop_caches', '3\n');
    return true;
  } catch (error) {
    if (!cacheWarned) {
      cacheWarned = true;
      const why = (error as NodeJS.ErrnoException).code ?? (error as Error).message;
      console.error(`(page cache NOT dropped before disk runs: ${why}; figures are warm-cache)`);
    }
    return false;
  }
}

/** One figure of a bench beside its peer's, measured in the same run. */
export interface ResultRow {
  /** What was measured, as the README table names it. */
  what: string;
  /** Our figure. */
  ours: number;
  /** The unit of both figures: `ms`, `containers/s`, `MB/s`, `MiB`. */
  unit: string;
  /** The peer's name and figure from the same run, when one was measured. */
  peer?: { name: string; value: number };
  /** ours / peer (for rates, peer / ours, so that below 1 is always better). */
  ratio?: number;
  /** The issue's target, as text (`≤ 0.2× runc`). */
  target?: string;
}

/**
 * Prints `ours`, the peer's figure and the ratio on one line, and returns
 * the row for {@link writeResults}. For a rate (`higher` is better) the ratio
 * is peer/ours so that a ratio below 1 always means we are faster.
 */
export function compare(
  what: string,
  ours: number,
  unit: string,
  peer?: { name: string; value: number },
  options: { higher?: boolean; target?: string } = {},
): ResultRow {
  const ratio = peer === undefined ? undefined : options.higher ? peer.value / ours : ours / peer.value;
  const num = (n: number) => (n >= 100 ? n.toFixed(0) : n >= 10 ? n.toFixed(1) : n.toFixed(2));
  const theirs = peer === undefined ? '' : `   ${peer.name} ${num(peer.value)} ${unit}   ratio ${ratio!.toFixed(2)}`;
  console.log(`${what.padEnd(58)} ${num(ours).padStart(8)} ${unit}${theirs}${options.target ? `   (target ${options.target})` : ''}`);
  return {
    what,
    ours,
    unit,
    ...(peer !== undefined ? { peer, ratio } : {}),
    ...(options.target !== undefined ? { target: options.target } : {}),
  };
}

/**
 * Writes a bench's rows to `bench/results/<name>.json` with where and how it
 * ran; `node bench/render-readme.mjs` turns every such file into the table of
 * bench/README.md.
 */
export async function writeResults(
  name: string,
  rows: ResultRow[],
  how: { dir: string; kind: 'disk' | 'shm'; cacheDropped: boolean; argv?: string[] },
): Promise<void> {
  const dir = join(import.meta.dirname, 'results');
  await fs.mkdir(dir, { recursive: true });
  const record = {
    bench: name,
    date: new Date().toISOString(),
    host: { cpus: os.cpus().length, kernel: os.release(), node: process.version },
    dir: how.dir,
    fs: how.kind,
    cacheDropped: how.cacheDropped,
    argv: how.argv ?? process.argv.slice(2),
    rows,
  };
  await fs.writeFile(join(dir, `${name}.json`), `${JSON.stringify(record, null, 2)}\n`);
  console.log(`(results written to bench/results/${name}.json; run node bench/render-readme.mjs to update bench/README.md)`);
}

/** What of the host's network a root bench could leave behind: dl-* bridges, our nft table, ip_forward. */
function hostNetworkState(): { bridges: string[]; table: boolean; ipForward: string } {
  const links = spawnSync('ip', ['-o', 'link', 'show', 'type', 'bridge'], { encoding: 'utf8' }).stdout ?? '';
  const bridges = links
    .split('\n')
    .map((l) => l.split(': ')[1]?.split('@')[0] ?? '')
    .filter((name) => name.startsWith('dl-'));
  const table = spawnSync('nft', ['list', 'table', 'inet', 'dockless'], { stdio: 'ignore' }).status === 0;
  const ipForward = spawnSync('sysctl', ['-n', 'net.ipv4.ip_forward'], { encoding: 'utf8' }).stdout?.trim() ?? '?';
  return { bridges, table, ipForward };
}

/**
 * Runs this bench again, as root, inside a throwaway network namespace (loopback
 * only, as test/sandbox.mjs does for the tests) and a private mount namespace
 * (podman leaves its storage's overlay mounted otherwise), and exits with its
 * status: the bridges, nftables table and `ip_forward` its network cases set
 * live and die with that namespace. The parent then checks that the host has
 * no new dl-* bridge, no `inet dockless` table and the same `ip_forward`, and
 * fails the bench when it has. Returns only in the child, or when not root
 * (rootless networks live in the user's own namespace anyway).
 */
export function inNetSandbox(): void {
  if (process.env.DOCKLESS_BENCH_NETNS === '1' || process.getuid?.() !== 0) return;
  const before = hostNetworkState();
  const r = spawnSync(
    'unshare',
    ['--net', '--mount', '--', 'sh', '-c', 'ip link set lo up && exec "$@"', 'sh', process.execPath, ...process.execArgv, ...process.argv.slice(1)],
    { stdio: 'inherit', env: { ...process.env, DOCKLESS_BENCH_NETNS: '1' } },
  );
  const after = hostNetworkState();
  const left = after.bridges.filter((b) => !before.bridges.includes(b));
  const problems = [
    ...(left.length > 0 ? [`bridges ${left.join(', ')}`] : []),
    ...(after.table && !before.table ? ['table inet dockless'] : []),
    ...(after.ipForward !== before.ipForward ? [`net.ipv4.ip_forward ${before.ipForward} → ${after.ipForward}`] : []),
  ];
  if (problems.length > 0) {
    console.error(`bench: the host's network changed: ${problems.join('; ')}`);
    process.exit(1);
  }
  console.error(`# ran in a throwaway network namespace; host checked after: no new dl-* bridge, no inet dockless table, net.ipv4.ip_forward ${after.ipForward}`);
  process.exit(r.status ?? 1);
}
