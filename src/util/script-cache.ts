/**
 * Runs a JavaScript file as a classic script with V8's code cache, kept per
 * user on disk: Node 20 compiles every ES module from its source at each
 * start (it has no `module.enableCompileCache`), and for the ~1 MB bundle of
 * the library that parse and compile is most of what `import('dockless')`
 * costs. A cache file is compiled code that V8 runs without checking it, so it
 * is trusted only as the user's own code is: a regular file owned by this
 * user, in a directory owned by this user, neither writable by anyone else,
 * whose checksum and key match; anything else is ignored (and not replaced
 * when the directory is not ours), and a cache V8 rejects is rewritten.
 *
 * @module
 */
import { checksum } from './checksum.js';

// Node's built-ins are taken from `process.getBuiltinModule` (Node 20.16+), not imported: this file
// runs in the bundle's ES module entries (dist/bundle/index.js and the others), where each `import … from 'node:…'`
// evaluates the module's ES facade, reading every export. Seven of them cost ~3 ms of each import,
// `node:fs`'s alone ~2 ms: its `ReadStream` getter loads Node's streams. On an older Node, `require`.
const builtin: NodeJS.Process['getBuiltinModule'] =
  typeof process.getBuiltinModule === 'function'
    ? process.getBuiltinModule.bind(process)
    : ((await import('node:module')).createRequire(import.meta.url) as NodeJS.Process['getBuiltinModule']);
const { isAscii } = builtin('node:buffer');
const { closeSync, constants, fstatSync, lstatSync, mkdirSync, openSync, readdirSync, readFileSync, readSync, renameSync, statSync, unlinkSync, writeFileSync } = builtin('node:fs');
const { join } = builtin('node:path');
const { Script } = builtin('node:vm');

/** Set to `0` to compile without the code cache (neither read nor written). */
export const CODE_CACHE_ENV = 'DOCKLESS_CODE_CACHE';

/** What happened to the code cache when a script was loaded. */
export type ScriptCacheOutcome =
  /** V8 took the cached code. */
  | 'hit'
  /** There was no usable cache file (none, another key, a bad checksum); one is written. */
  | 'miss'
  /** V8 refused the cached code (another V8 build or flags); it is rewritten. */
  | 'rejected'
  /** The cache directory or file is not this user's alone: compiled from source, nothing written. */
  | 'untrusted'
  /** Turned off by {@link CODE_CACHE_ENV} or no cache directory. */
  | 'off';

/** Options of {@link runCachedScript}. */
export interface ScriptCacheOptions {
  /**
   * The cache directory; created (0700) when missing. `false` turns the cache off.
   * @default `$XDG_CACHE_HOME/dockless/code`, else `~/.cache/dockless/code`
   */
  cacheDir?: string | false;
  /**
   * What the cached code is valid for besides the Node version, the
   * architecture and the file's identity (path, size, mtime, inode): the
   * build's hash of the script.
   * @default ''
   */
  key?: string;
  /**
   * Which of the script's uses this cache is for: each variant has a cache file of its
   * own, holding the functions that use compiled (a library's import and run, or a
   * command line's parsing), so that one use's first process does not shape the other's.
   * @default ''
   */
  variant?: string;
  /**
   * When the cache is written after a miss: V8 then keeps the functions the
   * program has compiled by that time, so the next start skips their lazy
   * compile too. Also written at the process's exit if that comes first.
   * @default 1000
   */
  writeAfterMs?: number;
  /**
   * The stage a cache written by this process covers until {@link CachedScript.reached}
   * names another.
   * @default 'load'
   */
  stage?: string;
  /**
   * How many cache files the directory keeps (see {@link pruneCodeCache}), pruned
   * each time this process writes one.
   * @default {@link CODE_CACHE_KEEP}
   */
  keep?: number;
}

/**
 * How many cache files a cache directory keeps by default: one is made per
 * installed copy of the package, script and variant (an app's import, the
 * command line, the test harness), so a handful of installs fit.
 */
export const CODE_CACHE_KEEP = 24;

/** What {@link runCachedScript} returns. */
export interface CachedScript {
  /** The script's completion value (a bundle wrapped in a function expression returns that function). */
  value: unknown;
  /** What happened to the cache. */
  cache: ScriptCacheOutcome;
  /** The cache file, when there is a cache directory. */
  cacheFile?: string;
  /** The stage the cache that was read covers (see {@link CachedScript.reached}); undefined when none was used. */
  stage: string | undefined;
  /** Writes the cache now when it is due (after a miss or a rejection, or a new stage); otherwise does nothing. */
  flush(): void;
  /**
   * Says the program has reached `stage` (a library's first container run): V8
   * compiles functions on first use, so a cache written after the import
   * alone leaves that path to compile in every later process. When the cache
   * that was read covers another stage, it is rewritten once, at the process's
   * exit (with all that was compiled by then), and says it covers `stage`.
   * Never when the cache is untrusted or off.
   */
  reached(stage: string): void;
}

// V8 checks a cache's length and version but not its bytes (not in release builds), and runs what
// it is given: the payload's checksum (./checksum.ts) catches a file damaged on disk. It replaced
// zlib's CRC-32 (whose module loads Node's streams) under the same magic: a file summed the other
// way reads as damaged and is rewritten, and another installed version of dockless, pruning the
// directory shared with this one, keeps this one's files (a new magic reads to it as a dead file).
const MAGIC = Buffer.from('dockless-v8-cache-2\n');

/** The head of a cache file, after {@link MAGIC} and its own length (4 bytes). */
interface CacheHead {
  /** What the code is valid for: the build's key, Node, the architecture and the script file's identity. */
  key: string;
  /** What the program had done when the cache was written. */
  stage: string;
  /** The payload's length and checksum. */
  length: number;
  sum: number;
}

/** The default cache directory, or undefined when there is no home to keep it in. */
export function defaultCodeCacheDir(): string | undefined {
  const xdg = process.env.XDG_CACHE_HOME;
  if (xdg !== undefined && xdg.startsWith('/')) return join(xdg, 'dockless', 'code');
  let home: string;
  try {
    home = builtin('node:os').homedir();
  } catch {
    return undefined;
  }
  return home === '' ? undefined : join(home, '.cache', 'dockless', 'code');
}

/** True when `mode`/`uid` describe something only this user can change. */
function ownedAlone(stats: { uid: number; mode: number }, uid: number): boolean {
  return stats.uid === uid && (stats.mode & 0o022) === 0;
}

/** The cache directory, made if missing, or undefined when it is not this user's alone. */
function trustedDir(dir: string, uid: number): string | undefined {
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const stats = lstatSync(dir);
    return stats.isDirectory() && ownedAlone(stats, uid) ? dir : undefined;
  } catch {
    return undefined;
  }
}

/** The cached code for `key` in `file` and the stage it covers, undefined when missing, foreign, not ours alone, or damaged. */
function readCache(file: string, key: string, uid: number): { payload: Buffer; stage: string } | undefined | 'untrusted' {
  let fd: number;
  try {
    fd = openSync(file, constants.O_RDONLY | constants.O_NOFOLLOW);
  } catch {
    return undefined;
  }
  try {
    const stats = fstatSync(fd);
    if (!stats.isFile() || !ownedAlone(stats, uid)) return 'untrusted';
    const data = Buffer.allocUnsafe(stats.size);
    let got = 0;
    while (got < data.length) {
      const n = readSync(fd, data, got, data.length - got, got);
      if (n === 0) break;
      got += n;
    }
    if (got !== data.length || got < MAGIC.length + 4 || !data.subarray(0, MAGIC.length).equals(MAGIC)) return undefined;
    const headEnd = MAGIC.length + 4 + data.readUInt32LE(MAGIC.length);
    if (headEnd > got) return undefined;
    const head = JSON.parse(data.toString('utf8', MAGIC.length + 4, headEnd)) as CacheHead;
    const payload = data.subarray(headEnd);
    if (head.key !== key || head.length !== payload.length || head.sum !== checksum(payload)) return undefined;
    return { payload, stage: head.stage };
  } catch {
    return undefined;
  } finally {
    closeSync(fd);
  }
}

/** A cache file's name: the checksum of its script's path and variant, and the variant; or, from earlier versions, a longer hash alone. */
const CACHE_NAME = /^[0-9a-f]{8}(-[\w-]*|[0-9a-f]{16})\.v8$/;
/** A temporary file {@link writeCache} left (its process was killed between write and rename). */
const TMP_NAME = /^[0-9a-f]{8}-[\w-]*\.v8\.\d+\.tmp$/;
/** How old a temporary file must be to be taken as left: a write takes milliseconds. */
const TMP_GRACE_MS = 10 * 60_000;
/** At most this many directory entries are looked at by one prune, so that its cost has a bound. */
const PRUNE_SCAN = 256;

/**
 * Deletes the cache files in `dir` that no process will use again and keeps
 * at most `keep` of the others, the most recently written (`spare` always):
 * a cache is keyed by its script's path and identity, so once that file is
 * gone (a removed install, a test's temporary copy) or changed (a rebuild
 * that was not run again), its cache is dead weight (~0.5 MB each). Also
 * deletes temporary files left by killed writers, and damaged cache files.
 * Touches only regular files of this user named as this module names them;
 * never fails.
 *
 * @param dir - a cache directory found to be this user's alone
 * @param spare - the cache file just written, kept whatever its age
 * @param keep - how many cache files stay at most, `spare` among them
 * @param uid - whose files may be deleted
 * @returns the names deleted
 */
export function pruneCodeCache(dir: string, spare: string | undefined, keep = CODE_CACHE_KEEP, uid = process.geteuid?.() ?? -1): string[] {
  let names: string[];
  try {
    names = readdirSync(dir).slice(0, PRUNE_SCAN);
  } catch {
    return [];
  }
  const deleted: string[] = [];
  const drop = (name: string): void => {
    try {
      unlinkSync(join(dir, name));
      deleted.push(name);
    } catch {
      // gone meanwhile
    }
  };
  const live: { name: string; mtimeMs: number }[] = [];
  for (const name of names) {
    const path = join(dir, name);
    if (path === spare) continue;
    const isTmp = TMP_NAME.test(name);
    if (!isTmp && !CACHE_NAME.test(name)) continue;
    let fd: number;
    try {
      fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
    } catch {
      continue;
    }
    try {
      const stats = fstatSync(fd);
      if (!stats.isFile() || !ownedAlone(stats, uid)) continue;
      if (isTmp) {
        if (Date.now() - stats.mtimeMs > TMP_GRACE_MS) drop(name);
        continue;
      }
      if (scriptOfCache(fd) === 'gone') drop(name);
      else live.push({ name, mtimeMs: stats.mtimeMs });
    } finally {
      closeSync(fd);
    }
  }
  // The spare counts against `keep`.
  const room = Math.max(0, keep - (spare !== undefined ? 1 : 0));
  for (const { name } of live.sort((a, b) => b.mtimeMs - a.mtimeMs).slice(room)) drop(name);
  return deleted;
}

/** Whether the script a cache file (open at `fd`) was written for is still the file it was: 'gone' when it is not, or the head is unreadable. */
function scriptOfCache(fd: number): 'there' | 'gone' {
  try {
    const data = Buffer.alloc(4096);
    const got = readSync(fd, data, 0, data.length, 0);
    if (got < MAGIC.length + 4 || !data.subarray(0, MAGIC.length).equals(MAGIC)) return 'gone';
    const headEnd = MAGIC.length + 4 + data.readUInt32LE(MAGIC.length);
    if (headEnd > got) return 'gone';
    const head = JSON.parse(data.toString('utf8', MAGIC.length + 4, headEnd)) as CacheHead;
    // The key (runCachedScript): [build key, Node version, arch, path, size, mtime, inode].
    const [, , , file, size, mtimeMs, ino] = JSON.parse(head.key) as [string, string, string, string, number, number, number];
    const stats = statSync(file, { throwIfNoEntry: false });
    return stats !== undefined && stats.size === size && stats.mtimeMs === mtimeMs && stats.ino === ino ? 'there' : 'gone';
  } catch {
    return 'gone';
  }
}

/** Writes the cache file whole or not at all: a temporary file of ours, renamed over the old one. */
function writeCache(file: string, key: string, stage: string, payload: Buffer): void {
  const tmp = `${file}.${process.pid}.tmp`;
  const head = Buffer.from(JSON.stringify({ key, stage, length: payload.length, sum: checksum(payload) } satisfies CacheHead));
  const size = Buffer.alloc(4);
  size.writeUInt32LE(head.length);
  try {
    writeFileSync(tmp, Buffer.concat([MAGIC, size, head, payload]), { mode: 0o600, flag: 'wx' });
    renameSync(tmp, file);
  } catch {
    try {
      unlinkSync(tmp);
    } catch {
      // never made
    }
  }
}

/**
 * Compiles and runs `file` as a classic script in this context, with its V8
 * code cache when a trusted one matches, and writes the cache after a miss
 * (see {@link ScriptCacheOptions.writeAfterMs}). Never fails because of the
 * cache: any problem with it means compiling from source.
 *
 * @param file - an absolute path to a script (not an ES module)
 * @param options - where the cache is kept and what it is keyed by
 * @returns the script's completion value and what happened to the cache
 */
export function runCachedScript(file: string, options: ScriptCacheOptions = {}): CachedScript {
  const bytes = readFileSync(file);
  // A bundle is ASCII (esbuild escapes the rest): copied as one-byte text, not decoded.
  const source = isAscii(bytes) ? bytes.toString('latin1') : bytes.toString('utf8');
  const dir = process.env[CODE_CACHE_ENV] === '0' || options.cacheDir === false ? undefined : (options.cacheDir ?? defaultCodeCacheDir());
  if (dir === undefined) {
    return { value: new Script(source, { filename: file }).runInThisContext(), cache: 'off', stage: undefined, flush: () => undefined, reached: () => undefined };
  }
  const uid = process.geteuid?.() ?? process.getuid?.() ?? -1;
  const stats = statSync(file);
  const key = JSON.stringify([options.key ?? '', process.version, process.arch, file, stats.size, stats.mtimeMs, stats.ino]);
  // One cache file per script path and variant, so a rebuild replaces it rather than adding one. Two
  // paths whose names collide only take turns (each key names its path), never run the other's code.
  const cacheFile = join(dir, `${checksum(`${file}\0${options.variant ?? ''}`).toString(16).padStart(8, '0')}-${(options.variant ?? '').replace(/[^\w-]/g, '_')}.v8`);
  const trusted = trustedDir(dir, uid);
  const cached = trusted === undefined ? 'untrusted' : readCache(cacheFile, key, uid);
  const script = new Script(source, { filename: file, ...(typeof cached === 'object' ? { cachedData: cached.payload } : {}) });
  let cache: ScriptCacheOutcome;
  if (cached === 'untrusted') cache = 'untrusted';
  else if (cached === undefined) cache = 'miss';
  else cache = script.cachedDataRejected === true ? 'rejected' : 'hit';
  const read = cache === 'hit' && typeof cached === 'object' ? cached.stage : undefined;
  let stage = options.stage ?? 'load';
  let due = false;
  let timer: NodeJS.Timeout | undefined;
  const flush = (): void => {
    if (!due) return;
    due = false;
    process.removeListener('exit', flush);
    clearTimeout(timer);
    writeCache(cacheFile, key, stage, script.createCachedData());
    // Rarely (a first run after an install or a build): then the directory is pruned too.
    pruneCodeCache(dir, cacheFile, options.keep, uid);
  };
  if (cache === 'miss' || cache === 'rejected') {
    due = true;
    timer = setTimeout(flush, options.writeAfterMs ?? 1000).unref();
    process.once('exit', flush);
  }
  let rewritten = false;
  const reached = (next: string): void => {
    if (cache === 'untrusted' || next === stage) return;
    stage = next;
    if (read === next || rewritten) return;
    rewritten = true;
    // At exit: by then the stage's functions have run, and V8 keeps what they compiled.
    clearTimeout(timer);
    if (!due) {
      due = true;
      process.once('exit', flush);
    }
  };
  return { value: script.runInThisContext(), cache, cacheFile, stage: read, flush, reached };
}
