/**
 * A fixture builder: assembles a tiny container rootfs from the host's own
 * binaries and their shared libraries, so that demos and tests can run a
 * container without downloading an image.
 *
 * Past ~600 lines on purpose: it is one pipeline (pick the binaries, follow
 * their ELF interpreters and libraries, lay out a skeleton, copy) whose steps
 * share one context string and one set of error rules; the parts are private
 * to it, and nothing else in the library reads ELF files or host libraries.
 *
 * @module
 */

import { execFile } from 'node:child_process';
import { constants as fsConstants, promises as fs } from 'node:fs';
import path from 'node:path';
import createDebug from 'debug';
import { AlreadyExistsError, DocklessError, InvalidArgumentError, NotFoundError } from '../errors.js';

import { fsError, isErrno, settleSiblings } from '../util/index.js';

const debug = createDebug('dockless:rootfs');

/**
 * The host binaries {@link rootfsFromHost} copies when its `binaries` option is
 * not given, as far as the host has them (with busybox, only those busybox has
 * no applet for): a shell and the coreutils, grep, sed and find commands that
 * shell scripts and Dockerfile `RUN` steps take for granted, so that a host
 * without busybox (a stock Debian or Ubuntu) still gives a usable userland.
 */
export const DEFAULT_HOST_BINARIES: readonly string[] = Object.freeze([
  'sh',
  'ls',
  'cat',
  'echo',
  'printf',
  'true',
  'false',
  'test',
  '[',
  'sleep',
  'env',
  'id',
  'whoami',
  'hostname',
  'uname',
  'date',
  'ps',
  'kill',
  'mount',
  'mkdir',
  'rmdir',
  'rm',
  'cp',
  'mv',
  'ln',
  'touch',
  'chmod',
  'chown',
  'stat',
  'readlink',
  'basename',
  'dirname',
  'pwd',
  'head',
  'tail',
  'cut',
  'tr',
  'sort',
  'uniq',
  'wc',
  'tee',
  'seq',
  'expr',
  'grep',
  'sed',
  'awk',
  'find',
  'xargs',
]);

/** Options of {@link rootfsFromHost}. */
export interface HostRootfsOptions {
  /**
   * Host binaries to include: absolute paths, or names looked up in the host
   * `PATH` (relative `PATH` entries are ignored). Each goes to `/bin/<name>` in
   * the rootfs with its shared-library closure. A binary given here replaces
   * the busybox applet of the same name. Shell scripts are copied as they are.
   *
   * @default {@link DEFAULT_HOST_BINARIES}, skipping those the host lacks
   */
  binaries?: string[];
  /**
   * Use busybox when the host has it (`/bin/busybox`, else `busybox` in
   * `PATH`): copy it to `/bin/busybox` and link `/bin/<applet>` to it for every
   * applet `busybox --list` names, so a full shell userland exists and
   * `/bin/sh` is busybox's shell. A dynamically linked busybox gets its
   * library closure like any other binary. Without busybox on the host this
   * option is ignored and `HostRootfs.busybox` is `false`.
   *
   * @default true
   */
  busybox?: boolean;
  /**
   * Extra files to copy in: host path → absolute path in the rootfs. A host
   * directory is copied recursively (its symlinks kept as they are). Copied
   * last, so these replace anything the builder put at the same path. This is
   * trusted input: it is checked to stay inside the rootfs, not sanitised.
   *
   * @default {}
   */
  files?: Record<string, string>;
  /**
   * Shared objects a binary loads at run time with `dlopen` (plugins, a
   * server's extension modules), as absolute host paths: each is copied to
   * its own path in the rootfs, with the shared-library closure the loader
   * lists for it, as the binaries' libraries are. A module's data files go
   * in `files`.
   *
   * @default []
   */
  modules?: string[];
  /**
   * Replace an existing non-empty target directory (or a non-directory at
   * the target path).
   *
   * @default false — a non-empty target is an {@link AlreadyExistsError}
   */
  overwrite?: boolean;
}

/** What {@link rootfsFromHost} built. */
export interface HostRootfs {
  /** The absolute path of the rootfs directory on the host. */
  path: string;
  /**
   * Every command in the rootfs as a path inside it (`/bin/ls`), sorted:
   * each host binary copied in and, with busybox, `/bin/busybox` and each
   * applet link.
   */
  binaries: string[];
  /**
   * Every shared library (the ELF interpreter included) as a path inside the
   * rootfs, sorted: both the name the loader asks for and the real file it
   * names, when they differ.
   */
  libraries: string[];
  /** Whether busybox was copied in. */
  busybox: boolean;
}

const ELF_MAGIC = Buffer.from([0x7f, 0x45, 0x4c, 0x46]);
const PT_INTERP = 3;
// Cap on the interpreter string read from PT_INTERP; real ones are ~30 bytes.
const MAX_INTERP_LENGTH = 4096;

const FALLBACK_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/**
 * Host directories that the rootfs folds into one real directory, so every
 * file has one canonical path and the other names work through the
 * `sbin -> bin`, `usr/bin -> ../bin`, `usr/lib -> ../lib`, … links.
 */
const FOLDED_PREFIXES: ReadonlyArray<readonly [string, string]> = [
  ['/usr/sbin/', '/bin/'],
  ['/usr/bin/', '/bin/'],
  ['/sbin/', '/bin/'],
  ['/usr/lib64/', '/lib64/'],
  ['/usr/lib/', '/lib/'],
];

type ExecutableKind = { kind: 'elf'; interpreter: string | null } | { kind: 'script' };

/**
 * Reads the ELF interpreter (`PT_INTERP`, e.g. `/lib64/ld-linux-x86-64.so.2`)
 * of an executable by parsing its ELF and program headers.
 *
 * @param file - Path of the executable on the host.
 * @returns The interpreter path, or `null` for a statically linked executable
 *   (static-pie included).
 * @throws {@link InvalidArgumentError} when the file is not an ELF file or its
 *   headers are truncated or out of bounds.
 * @throws {@link NotFoundError} when the file does not exist.
 * @example
 * ```ts
 * const interp = await readElfInterpreter('/bin/ls'); // '/lib64/ld-linux-x86-64.so.2'
 * const none = await readElfInterpreter('/bin/busybox'); // null when busybox is static
 * ```
 */
export async function readElfInterpreter(file: string): Promise<string | null> {
  const probed = await probeExecutable(file);
  if (probed.kind !== 'elf') {
    throw new InvalidArgumentError(`read elf \`${file}\`: not an elf file`, { path: file });
  }
  return probed.interpreter;
}

async function probeExecutable(file: string): Promise<ExecutableKind> {
  let handle: fs.FileHandle;
  try {
    handle = await fs.open(file, 'r');
  } catch (error) {
    throw fsError(error, `read elf \`${file}\``, file);
  }
  try {
    const bad = (why: string): InvalidArgumentError =>
      new InvalidArgumentError(`read elf \`${file}\`: ${why}`, { path: file });
    const read = async (offset: number, length: number): Promise<Buffer> => {
      const buffer = Buffer.alloc(length);
      const { bytesRead } = await handle.read(buffer, 0, length, offset);
      if (bytesRead !== length) throw bad('truncated headers');
      return buffer;
    };

    const ident = Buffer.alloc(64);
    const { bytesRead } = await handle.read(ident, 0, 64, 0);
    if (bytesRead >= 2 && ident[0] === 0x23 && ident[1] === 0x21) return { kind: 'script' };
    if (bytesRead < 16 || !ident.subarray(0, 4).equals(ELF_MAGIC)) throw bad('not an elf file');
    const elfClass = ident[4];
    const data = ident[5];
    if (elfClass !== 1 && elfClass !== 2) throw bad(`unknown elf class ${elfClass}`);
    if (data !== 1 && data !== 2) throw bad(`unknown elf data encoding ${data}`);
    const is64 = elfClass === 2;
    const le = data === 1;
    if (bytesRead < (is64 ? 64 : 52)) throw bad('truncated headers');

    const u16 = (b: Buffer, o: number): number => (le ? b.readUInt16LE(o) : b.readUInt16BE(o));
    const u32 = (b: Buffer, o: number): number => (le ? b.readUInt32LE(o) : b.readUInt32BE(o));
    const word = (b: Buffer, o: number): number => {
      if (!is64) return u32(b, o);
      const v = le ? b.readBigUInt64LE(o) : b.readBigUInt64BE(o);
      if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw bad('header offset out of range');
      return Number(v);
    };

    const phoff = word(ident, is64 ? 32 : 28);
    const phentsize = u16(ident, is64 ? 54 : 42);
    const phnum = u16(ident, is64 ? 56 : 44);
    if (phnum === 0) return { kind: 'elf', interpreter: null };
    if (phentsize < (is64 ? 56 : 32)) throw bad(`program header size ${phentsize} too small`);
    // PN_XNUM (0xffff) moves the real count into section header 0; no
    // executable has that many segments, so a count this large is garbage.
    if (phnum >= 0xffff) throw bad(`program header count ${phnum} out of range`);

    const table = await read(phoff, phentsize * phnum);
    for (let i = 0; i < phnum; i++) {
      const entry = table.subarray(i * phentsize, (i + 1) * phentsize);
      if (u32(entry, 0) !== PT_INTERP) continue;
      const offset = word(entry, is64 ? 8 : 4);
      const size = word(entry, is64 ? 32 : 16);
      if (size === 0 || size > MAX_INTERP_LENGTH) throw bad(`interpreter size ${size} out of range`);
      const raw = await read(offset, size);
      const nul = raw.indexOf(0);
      const interpreter = raw.subarray(0, nul === -1 ? raw.length : nul).toString('utf8');
      if (!path.isAbsolute(interpreter)) throw bad(`interpreter \`${interpreter}\` is not absolute`);
      return { kind: 'elf', interpreter };
    }
    return { kind: 'elf', interpreter: null };
  } finally {
    await handle.close();
  }
}

/**
 * Assembles a small container rootfs at `target` from host binaries: a
 * standard skeleton (`bin`, `lib`, `etc`, `proc`, `sys`, `dev`, `tmp` 1777,
 * `root` 0700, `home/dockless`, with `sbin`, `usr/bin`, `usr/sbin`, `usr/lib`
 * as links to the real directories), `etc/passwd` and `etc/group` with
 * `root`, `nobody`/`nogroup` and a `dockless` user (1000:1000, also in
 * `wheel`), an `etc/nsswitch.conf` that reads those files, the chosen binaries
 * in `/bin`, and the shared-library closure of every dynamically linked one as
 * the ELF interpreter reports it (`<interp> --list <binary>`, as `ldd` does),
 * each library at the path the loader asks for. The host's `/etc/ld.so.cache`
 * is copied too, so the loader inside finds libraries where it found them on
 * the host. `/etc/hostname`, `hosts` and `resolv.conf` are left to the runtime.
 *
 * Everything is copied, never hard-linked, so the rootfs is independent of
 * the host; permission bits are kept except setuid and setgid. The tree is
 * built in a temporary sibling directory and renamed into place, so a failure
 * leaves nothing behind and never a half-built target.
 *
 * @param target - The directory to create; its parent is created if needed.
 * @param options - What to put in; see {@link HostRootfsOptions}.
 * @returns Where the rootfs is and what it holds.
 * @throws {@link AlreadyExistsError} when `target` exists and is not an empty
 *   directory, unless `overwrite` is set.
 * @throws {@link NotFoundError} when an explicitly listed binary, a file of
 *   `files`, an ELF interpreter or a needed library does not exist.
 * @throws {@link InvalidArgumentError} when a binary is not executable or is
 *   neither ELF nor a script, its interpreter cannot list its libraries, two
 *   binaries share a name, or a `files` destination is not an absolute path
 *   inside the rootfs.
 * @throws {@link PermissionError} when a file cannot be read or written.
 * @example
 * ```ts
 * import { rootfsFromHost } from 'dockless';
 *
 * const rootfs = await rootfsFromHost('/tmp/demo-rootfs', { overwrite: true });
 * console.log(rootfs.busybox, rootfs.binaries.length, rootfs.libraries);
 * // rootfs.path can now be the rootfs of a container running ['/bin/sh', '-c', 'id']
 * ```
 */
export async function rootfsFromHost(target: string, options: HostRootfsOptions = {}): Promise<HostRootfs> {
  const started = performance.now();
  const root = path.resolve(target);
  const context = `build rootfs \`${root}\``;
  if (path.parse(root).root === root) {
    throw new InvalidArgumentError(`${context}: target is the filesystem root`, { path: root });
  }
  const overwrite = options.overwrite ?? false;
  const existing = await inspectTarget(root, context);
  if (existing !== 'absent' && existing !== 'empty' && !overwrite) {
    const what = existing === 'non-empty' ? 'is not empty' : 'is not a directory';
    throw new AlreadyExistsError(`${context}: target exists and ${what}`, { path: root });
  }
  const extraFiles = validateFiles(options.files ?? {}, context);

  const pathEnv = process.env['PATH'] || FALLBACK_PATH;
  const wantBusybox = options.busybox ?? true;
  const [busybox, explicit] = await Promise.all([
    wantBusybox ? findBusybox(pathEnv, context) : Promise.resolve(undefined),
    options.binaries ? resolveBinaries(options.binaries, pathEnv, context, true) : Promise.resolve(undefined),
  ]);

  // With busybox, the default list is only what busybox has no applet for;
  // explicitly listed binaries always win over applets.
  let hostBinaries: HostBinary[];
  if (explicit) {
    hostBinaries = explicit;
  } else {
    const wanted = busybox ? DEFAULT_HOST_BINARIES.filter((n) => !busybox.applets.has(n)) : DEFAULT_HOST_BINARIES;
    hostBinaries = await resolveBinaries(wanted, pathEnv, context, false);
  }
  const sources = busybox ? [{ name: 'busybox', hostPath: busybox.hostPath }, ...hostBinaries] : hostBinaries;
  const seen = new Map<string, string>();
  for (const { name, hostPath } of sources) {
    const other = seen.get(name);
    if (other !== undefined) {
      throw new InvalidArgumentError(`${context}: binaries \`${other}\` and \`${hostPath}\` both go to \`/bin/${name}\``, {
        path: hostPath,
      });
    }
    seen.set(name, hostPath);
  }

  const closures = await Promise.all(sources.map((b) => libraryClosure(b.hostPath, context)));
  const moduleClosures = await modulesClosure(options.modules ?? [], closures, context);
  const libraryNames = await withNssFiles([...new Set([...closures.flat(), ...moduleClosures])]);
  const plan = await planLibraries(libraryNames, context);

  const parent = path.dirname(root);
  await fs.mkdir(parent, { recursive: true }).catch((error: unknown) => {
    throw fsError(error, `${context}: mkdir \`${parent}\``, parent);
  });
  const staging = await fs.mkdtemp(path.join(parent, `.${path.basename(root)}.tmp-`)).catch((error: unknown) => {
    throw fsError(error, `${context}: mkdtemp in \`${parent}\``, parent);
  });
  debug('build %s in %s: %d binaries, busybox %s', root, staging, sources.length, busybox?.hostPath ?? 'no');

  try {
    await buildSkeleton(staging, plan.needsLib64, context);
    const commands: string[] = [];
    const applets = busybox ? [...busybox.applets].filter((a) => !hostBinaries.some((b) => b.name === a)) : [];
    await settleSiblings([
      ...sources.map(async ({ name, hostPath }) => {
        await copyFile(hostPath, path.join(staging, 'bin', name), context);
        commands.push(`/bin/${name}`);
      }),
      ...applets.map(async (applet) => {
        await symlink('busybox', path.join(staging, 'bin', applet), context);
        commands.push(`/bin/${applet}`);
      }),
      writeLibraries(staging, plan, context),
      libraryNames.length > 0 ? copyLoaderCache(staging, context) : Promise.resolve(),
    ]);
    for (const [hostPath, inRootfs] of extraFiles) {
      await copyExtraFile(staging, hostPath, inRootfs, context);
    }

    if (existing !== 'absent') {
      await fs.rm(root, { recursive: true, force: true }).catch((error: unknown) => {
        throw fsError(error, `${context}: remove old target`, root);
      });
    }
    await fs.rename(staging, root).catch((error: unknown) => {
      throw fsError(error, `${context}: rename \`${staging}\``, root);
    });
    const result: HostRootfs = {
      path: root,
      binaries: commands.sort(),
      libraries: plan.inRootfs,
      busybox: busybox !== undefined,
    };
    debug(
      'built %s: %d commands, %d libraries in %d ms',
      root,
      result.binaries.length,
      result.libraries.length,
      Math.round(performance.now() - started),
    );
    return result;
  } catch (error) {
    await fs.rm(staging, { recursive: true, force: true }).catch(() => undefined);
    throw fsError(error, context, root);
  }
}

interface HostBinary {
  /** The name in the rootfs: `/bin/<name>`. */
  name: string;
  /** The absolute path on the host. */
  hostPath: string;
}

interface Busybox {
  hostPath: string;
  applets: Set<string>;
}

interface LibraryPlan {
  /** Real files to copy: canonical rootfs path → host path. */
  files: Map<string, string>;
  /** Names the loader asks for: canonical rootfs path → canonical rootfs path of the real file. */
  links: Map<string, string>;
  needsLib64: boolean;
  /** Every library path in the rootfs, sorted. */
  inRootfs: string[];
}

async function inspectTarget(
  root: string,
  context: string,
): Promise<'absent' | 'empty' | 'non-empty' | 'not-directory'> {
  let stat;
  try {
    stat = await fs.lstat(root);
  } catch (error) {
    if (isErrno(error, 'ENOENT')) return 'absent';
    throw fsError(error, `${context}: stat target`, root);
  }
  if (!stat.isDirectory()) return 'not-directory';
  const entries = await fs.readdir(root).catch((error: unknown) => {
    throw fsError(error, `${context}: read target`, root);
  });
  return entries.length === 0 ? 'empty' : 'non-empty';
}

function validateFiles(files: Record<string, string>, context: string): Array<[string, string]> {
  return Object.entries(files).map(([hostPath, inRootfs]) => {
    if (!path.isAbsolute(hostPath)) {
      throw new InvalidArgumentError(`${context}: extra file \`${hostPath}\`: host path is not absolute`, {
        path: hostPath,
      });
    }
    if (!inRootfs.startsWith('/') || inRootfs.split('/').includes('..')) {
      throw new InvalidArgumentError(
        `${context}: extra file \`${hostPath}\`: destination \`${inRootfs}\` is not an absolute path without \`..\``,
        { path: hostPath },
      );
    }
    const normal = path.posix.normalize(inRootfs);
    if (normal === '/') {
      throw new InvalidArgumentError(`${context}: extra file \`${hostPath}\`: destination is the rootfs itself`, {
        path: hostPath,
      });
    }
    return [hostPath, normal];
  });
}

async function isExecutableFile(file: string): Promise<boolean> {
  try {
    const stat = await fs.stat(file);
    if (!stat.isFile()) return false;
    await fs.access(file, fsConstants.X_OK);
    return true;
  } catch {
    return false;
  }
}

async function lookPath(name: string, pathEnv: string): Promise<string | undefined> {
  // Relative PATH entries (``, `.`) would make the result depend on the cwd.
  const dirs = pathEnv.split(':').filter((d) => path.isAbsolute(d));
  for (const dir of dirs) {
    const candidate = path.join(dir, name);
    if (await isExecutableFile(candidate)) return candidate;
  }
  return undefined;
}

async function resolveBinaries(
  names: readonly string[],
  pathEnv: string,
  context: string,
  required: boolean,
): Promise<HostBinary[]> {
  const resolved = await Promise.all(
    names.map(async (name): Promise<HostBinary | undefined> => {
      let hostPath: string | undefined;
      if (name.includes('/')) {
        if (!path.isAbsolute(name)) {
          throw new InvalidArgumentError(`${context}: binary \`${name}\` is neither absolute nor a bare name`, {
            path: name,
          });
        }
        hostPath = (await isExecutableFile(name)) ? name : undefined;
        if (hostPath === undefined && (await fs.stat(name).then(() => true, () => false))) {
          throw new InvalidArgumentError(`${context}: binary \`${name}\` is not an executable file`, { path: name });
        }
      } else if (name === '' || name === '.' || name === '..') {
        throw new InvalidArgumentError(`${context}: binary name \`${name}\` is invalid`);
      } else {
        hostPath = await lookPath(name, pathEnv);
      }
      if (hostPath === undefined) {
        if (required) {
          throw new NotFoundError(`${context}: binary \`${name}\` not found${name.includes('/') ? '' : ' in PATH'}`, {
            path: name,
          });
        }
        debug('skip %s: not on this host', name);
        return undefined;
      }
      return { name: path.basename(name), hostPath };
    }),
  );
  return resolved.filter((b): b is HostBinary => b !== undefined);
}

async function findBusybox(pathEnv: string, context: string): Promise<Busybox | undefined> {
  const hostPath = (await isExecutableFile('/bin/busybox')) ? '/bin/busybox' : await lookPath('busybox', pathEnv);
  if (hostPath === undefined) {
    debug('no busybox on this host');
    return undefined;
  }
  const { stdout } = await run(hostPath, ['--list'], `${context}: list busybox applets`);
  const applets = new Set(
    stdout
      .split('\n')
      .map((line) => line.trim())
      .filter((a) => /^[\w.+[\]-]+$/.test(a) && a !== '.' && a !== '..' && a !== 'busybox'),
  );
  if (applets.size === 0) {
    throw new InvalidArgumentError(`${context}: \`${hostPath} --list\` named no applets`, { path: hostPath });
  }
  return { hostPath, applets };
}

/** The loader names (absolute host paths, interpreter included) a binary needs. */
async function libraryClosure(binary: string, context: string): Promise<string[]> {
  const probed = await probeExecutable(binary).catch((error: unknown) => {
    if (error instanceof DocklessError) throw error;
    throw fsError(error, `${context}: read \`${binary}\``, binary);
  });
  if (probed.kind === 'script' || probed.interpreter === null) {
    debug('%s: %s, no libraries', binary, probed.kind === 'script' ? 'script' : 'static');
    return [];
  }
  const interp = probed.interpreter;
  if (!(await isExecutableFile(interp))) {
    throw new NotFoundError(`${context}: binary \`${binary}\`: interpreter \`${interp}\` not found`, { path: interp });
  }
  const { stdout } = await run(interp, ['--list', binary], `${context}: list libraries of \`${binary}\``);
  const names = new Set<string>([interp, ...parseLoaderList(stdout, binary, context)]);
  debug('%s: %d libraries via %s', binary, names.size, interp);
  return [...names];
}

/**
 * The modules themselves and the libraries each needs, listed by the loader
 * the binaries use (a shared object names no interpreter of its own), else by
 * the one this Node binary was started with.
 */
async function modulesClosure(modules: readonly string[], closures: string[][], context: string): Promise<string[]> {
  if (modules.length === 0) return [];
  let interp = closures.map((c) => c[0]).find((c): c is string => c !== undefined);
  if (interp === undefined) {
    const node = await probeExecutable(process.execPath).catch(() => undefined);
    interp = node?.kind === 'elf' ? (node.interpreter ?? undefined) : undefined;
  }
  const lists = await Promise.all(
    modules.map(async (module) => {
      if (!path.isAbsolute(module)) {
        throw new InvalidArgumentError(`${context}: module \`${module}\` is not an absolute path`, { path: module });
      }
      const stat = await fs.stat(module).catch((error: unknown) => {
        throw fsError(error, `${context}: module \`${module}\``, module);
      });
      if (!stat.isFile()) throw new InvalidArgumentError(`${context}: module \`${module}\` is not a file`, { path: module });
      if (interp === undefined) return [module];
      const { stdout } = await run(interp, ['--list', module], `${context}: list libraries of \`${module}\``);
      return [module, ...parseLoaderList(stdout, module, context)];
    }),
  );
  return [...new Set(lists.flat())];
}

/** The absolute library paths in `<interp> --list` output. */
function parseLoaderList(stdout: string, binary: string, context: string): string[] {
  const names: string[] = [];
  for (const raw of stdout.split('\n')) {
    const line = raw.trim();
    if (line === '') continue;
    const arrow = line.indexOf(' => ');
    const rhs = arrow === -1 ? line : line.slice(arrow + 4).trim();
    if (rhs.startsWith('not found')) {
      const lib = line.slice(0, arrow).trim();
      throw new NotFoundError(`${context}: binary \`${binary}\`: library \`${lib}\` not found`, { path: binary });
    }
    // `linux-vdso.so.1 (0x…)` and the like are provided by the kernel.
    if (!rhs.startsWith('/')) continue;
    const paren = rhs.lastIndexOf(' (');
    names.push(paren === -1 ? rhs : rhs.slice(0, paren));
  }
  return names;
}

/**
 * Adds glibc's `libnss_files.so.2` beside each `libc.so.6`: glibc before 2.34
 * loads it with dlopen to read /etc/passwd, so no `--list` names it.
 */
async function withNssFiles(names: string[]): Promise<string[]> {
  const extra = await Promise.all(
    names
      .filter((name) => path.basename(name) === 'libc.so.6')
      .map(async (libc) => {
        const nss = path.join(path.dirname(libc), 'libnss_files.so.2');
        return (await fs.access(nss).then(() => true, () => false)) ? nss : undefined;
      }),
  );
  return [...new Set([...names, ...extra.filter((n): n is string => n !== undefined)])];
}

/** Maps a host path to its one real location in the rootfs (see {@link FOLDED_PREFIXES}). */
function canonical(hostPath: string): string {
  const normal = path.posix.normalize(hostPath);
  for (const [from, to] of FOLDED_PREFIXES) {
    if (normal.startsWith(from)) return to + normal.slice(from.length);
  }
  return normal;
}

async function planLibraries(names: string[], context: string): Promise<LibraryPlan> {
  const real = await Promise.all(
    names.map((name) =>
      fs.realpath(name).catch((error: unknown) => {
        throw fsError(error, `${context}: resolve library \`${name}\``, name);
      }),
    ),
  );
  const files = new Map<string, string>();
  const links = new Map<string, string>();
  names.forEach((name, i) => {
    const hostReal = real[i]!;
    const file = canonical(hostReal);
    const previous = files.get(file);
    if (previous !== undefined && previous !== hostReal) {
      debug('library %s and %s both map to %s; keeping the first', previous, hostReal, file);
    } else {
      files.set(file, hostReal);
    }
  });
  names.forEach((name, i) => {
    const link = canonical(name);
    const file = canonical(real[i]!);
    if (link !== file && !files.has(link) && !links.has(link)) links.set(link, file);
  });
  const inRootfs = [...files.keys(), ...links.keys()].sort();
  const needsLib64 = inRootfs.some((p) => p.startsWith('/lib64/'));
  return { files, links, needsLib64, inRootfs };
}

async function writeLibraries(root: string, plan: LibraryPlan, context: string): Promise<void> {
  const dirs = new Set([...plan.files.keys(), ...plan.links.keys()].map((p) => path.posix.dirname(p)));
  await settleSiblings([...dirs].map((dir) => mkdir(path.join(root, dir), context)));
  await settleSiblings([...plan.files].map(([file, hostPath]) => copyFile(hostPath, path.join(root, file), context)));
  await settleSiblings(
    [...plan.links].map(([link, file]) =>
      symlink(path.posix.relative(path.posix.dirname(link), file), path.join(root, link), context),
    ),
  );
}

async function copyLoaderCache(root: string, context: string): Promise<void> {
  const cache = '/etc/ld.so.cache';
  try {
    await fs.access(cache, fsConstants.R_OK);
  } catch {
    return; // musl and some minimal hosts have no cache; the loader's default dirs then apply
  }
  await copyFile(cache, path.join(root, 'etc', 'ld.so.cache'), context);
}

const PASSWD = [
  'root:x:0:0:root:/root:/bin/sh',
  'nobody:x:65534:65534:nobody:/nonexistent:/bin/false',
  'dockless:x:1000:1000::/home/dockless:/bin/sh',
  '',
].join('\n');

const GROUP = ['root:x:0:', 'wheel:x:10:dockless', 'nogroup:x:65534:', 'dockless:x:1000:', ''].join('\n');

// glibc before 2.34 otherwise tries nis/compat first; no services means no DNS plugins to load.
const NSSWITCH = ['passwd: files', 'group: files', 'shadow: files', 'hosts: files dns', ''].join('\n');

async function buildSkeleton(root: string, needsLib64: boolean, context: string): Promise<void> {
  const dirs: Array<[string, number]> = [
    ['bin', 0o755],
    ['lib', 0o755],
    ['usr', 0o755],
    ['etc', 0o755],
    ['proc', 0o555],
    ['sys', 0o555],
    ['dev', 0o755],
    ['tmp', 0o1777],
    ['root', 0o700],
    ['home', 0o755],
    ['home/dockless', 0o755],
  ];
  if (needsLib64) dirs.push(['lib64', 0o755]);
  // mkdtemp makes the staging dir 0700, which would lock non-root users out of `/`.
  await chmod(root, 0o755, context);
  await settleSiblings(
    dirs.map(async ([dir, mode]) => {
      const full = path.join(root, dir);
      await mkdir(full, context);
      // mkdir's mode is filtered by the umask; chmod sets exactly what we mean.
      await chmod(full, mode, context);
    }),
  );
  const links: Array<[string, string]> = [
    ['sbin', 'bin'],
    ['usr/bin', '../bin'],
    ['usr/sbin', '../bin'],
    ['usr/lib', '../lib'],
  ];
  if (needsLib64) links.push(['usr/lib64', '../lib64']);
  await settleSiblings([
    ...links.map(([link, to]) => symlink(to, path.join(root, link), context)),
    writeFile(path.join(root, 'etc', 'passwd'), PASSWD, context),
    writeFile(path.join(root, 'etc', 'group'), GROUP, context),
    writeFile(path.join(root, 'etc', 'nsswitch.conf'), NSSWITCH, context),
  ]);
  if (process.getuid?.() === 0) {
    const home = path.join(root, 'home', 'dockless');
    await fs.chown(home, 1000, 1000).catch((error: unknown) => {
      throw fsError(error, `${context}: chown \`${home}\``, home);
    });
  }
}

async function copyExtraFile(root: string, hostPath: string, inRootfs: string, context: string): Promise<void> {
  const what = `${context}: extra file \`${hostPath}\``;
  let stat;
  try {
    stat = await fs.stat(hostPath);
  } catch (error) {
    throw fsError(error, what, hostPath);
  }
  const dest = path.join(root, inRootfs);
  const parent = path.dirname(dest);
  await mkdir(parent, what);
  // The parent may be reached through links placed earlier; never write outside the rootfs.
  const [realRoot, realParent] = await Promise.all([fs.realpath(root), fs.realpath(parent)]);
  if (realParent !== realRoot && !realParent.startsWith(realRoot + path.sep)) {
    throw new InvalidArgumentError(`${what}: destination \`${inRootfs}\` leads outside the rootfs`, {
      path: hostPath,
    });
  }
  const existing = await fs.lstat(dest).catch(() => undefined);
  // Replace a link (e.g. a busybox applet) rather than writing through it.
  if (existing && !existing.isDirectory()) await fs.rm(dest, { force: true });
  if (stat.isDirectory()) {
    await fs.cp(hostPath, dest, { recursive: true, verbatimSymlinks: true }).catch((error: unknown) => {
      throw fsError(error, `${what}: copy to \`${inRootfs}\``, hostPath);
    });
  } else if (stat.isFile()) {
    await copyFile(hostPath, dest, what);
  } else {
    throw new InvalidArgumentError(`${what}: neither a regular file nor a directory`, { path: hostPath });
  }
}

async function copyFile(from: string, to: string, context: string): Promise<void> {
  try {
    // FICLONE shares blocks copy-on-write where the filesystem can; still an independent file.
    await fs.copyFile(from, to, fsConstants.COPYFILE_FICLONE);
    const { mode } = await fs.stat(from);
    // A setuid copy would be a second, never-updated privileged binary on the host.
    await fs.chmod(to, mode & 0o1777);
  } catch (error) {
    throw fsError(error, `${context}: copy \`${from}\``, from);
  }
}

async function symlink(to: string, at: string, context: string): Promise<void> {
  await fs.symlink(to, at).catch((error: unknown) => {
    throw fsError(error, `${context}: symlink \`${at}\``, at);
  });
}

async function chmod(file: string, mode: number, context: string): Promise<void> {
  await fs.chmod(file, mode).catch((error: unknown) => {
    throw fsError(error, `${context}: chmod \`${file}\``, file);
  });
}

async function mkdir(dir: string, context: string): Promise<void> {
  await fs.mkdir(dir, { recursive: true }).catch((error: unknown) => {
    throw fsError(error, `${context}: mkdir \`${dir}\``, dir);
  });
}

async function writeFile(file: string, content: string, context: string): Promise<void> {
  try {
    await fs.writeFile(file, content, { mode: 0o644 });
    await fs.chmod(file, 0o644);
  } catch (error) {
    throw fsError(error, `${context}: write \`${file}\``, file);
  }
}

function run(file: string, args: string[], context: string): Promise<{ stdout: string; stderr: string }> {
  // Drop LD_* so the closure is what the loader finds inside the container, not
  // what the caller's LD_LIBRARY_PATH or LD_PRELOAD would add.
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('LD_')));
  return new Promise((resolve, reject) => {
    execFile(file, args, { env, timeout: 10_000, maxBuffer: 4 * 1024 * 1024 }, (error, stdout, stderr) => {
      if (error) {
        const tail = stderr.trim().split('\n').slice(-3).join('; ');
        reject(
          new InvalidArgumentError(`${context}: \`${file} ${args.join(' ')}\` failed: ${tail || error.message}`, {
            cause: error,
            path: file,
          }),
        );
      } else {
        resolve({ stdout, stderr });
      }
    });
  });
}

/**
 * Like `Promise.all`, but waits for every promise to settle before rejecting,
 * so no copy is still writing into the staging directory while it is removed.
 */
