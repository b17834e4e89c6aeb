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
import { isAscii } from 'node:buffer';
import { createHash } from 'node:crypto';
import { closeSync, constants, fstatSync, lstatSync, mkdirSync, openSync, readFileSync, readSync, renameSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { Script } from 'node:vm';

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
}

/** What {@link runCachedScript} returns. */
export interface CachedScript {
  /** The script's completion value (a bundle wrapped in a function expression returns that function). */
  value: unknown;
  /** What happened to the cache. */
  cache: ScriptCacheOutcome;
  /** The cache file, when there is a cache directory. */
  cacheFile?: string;
  /** Writes the cache now when it is due (after a miss or a rejection); otherwise does nothing. */
  flush(): void;
}

const MAGIC = Buffer.from('dockless-v8-cache-1\n');
const HASH = 32;

/** The default cache directory, or undefined when there is no home to keep it in. */
export function defaultCodeCacheDir(): string | undefined {
  const xdg = process.env.XDG_CACHE_HOME;
  if (xdg !== undefined && xdg.startsWith('/')) return join(xdg, 'dockless', 'code');
  let home: string;
  try {
    home = homedir();
  } catch {
    return undefined;
  }
  return home === '' ? undefined : join(home, '.cache', 'dockless', 'code');
}

const sha256 = (...parts: (string | Buffer)[]): Buffer => {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return h.digest();
};

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

/** The cached code for `key` in `file`, undefined when missing, foreign, not ours alone, or damaged. */
function readCache(file: string, key: Buffer, uid: number): Buffer | undefined | 'untrusted' {
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
    const head = MAGIC.length + 2 * HASH;
    if (got !== data.length || got <= head || !data.subarray(0, MAGIC.length).equals(MAGIC)) return undefined;
    if (!data.subarray(MAGIC.length, MAGIC.length + HASH).equals(key)) return undefined;
    const payload = data.subarray(head);
    if (!data.subarray(MAGIC.length + HASH, head).equals(sha256(payload))) return undefined;
    return payload;
  } catch {
    return undefined;
  } finally {
    closeSync(fd);
  }
}

/** Writes the cache file whole or not at all: a temporary file of ours, renamed over the old one. */
function writeCache(file: string, key: Buffer, payload: Buffer): void {
  const tmp = `${file}.${process.pid}.tmp`;
  try {
    writeFileSync(tmp, Buffer.concat([MAGIC, key, sha256(payload), payload]), { mode: 0o600, flag: 'wx' });
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
    return { value: new Script(source, { filename: file }).runInThisContext(), cache: 'off', flush: () => undefined };
  }
  const uid = process.geteuid?.() ?? process.getuid?.() ?? -1;
  const stats = statSync(file);
  const key = sha256(JSON.stringify([options.key ?? '', process.version, process.arch, file, stats.size, stats.mtimeMs, stats.ino]));
  // One cache file per script path and variant, so a rebuild replaces it rather than adding one.
  const cacheFile = join(dir, `${sha256(file, '\0', options.variant ?? '').toString('hex').slice(0, 24)}.v8`);
  const trusted = trustedDir(dir, uid);
  const cached = trusted === undefined ? 'untrusted' : readCache(cacheFile, key, uid);
  const script = new Script(source, { filename: file, ...(Buffer.isBuffer(cached) ? { cachedData: cached } : {}) });
  let cache: ScriptCacheOutcome;
  if (cached === 'untrusted') cache = 'untrusted';
  else if (cached === undefined) cache = 'miss';
  else cache = script.cachedDataRejected === true ? 'rejected' : 'hit';
  let due = cache === 'miss' || cache === 'rejected';
  const flush = (): void => {
    if (!due) return;
    due = false;
    process.removeListener('exit', flush);
    clearTimeout(timer);
    writeCache(cacheFile, key, script.createCachedData());
  };
  let timer: NodeJS.Timeout | undefined;
  if (due) {
    timer = setTimeout(flush, options.writeAfterMs ?? 1000).unref();
    process.once('exit', flush);
  }
  return { value: script.runInThisContext(), cache, cacheFile, flush };
}
