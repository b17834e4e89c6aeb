/**
 * `dockless cp CONTAINER:PATH HOSTPATH`: writes the tar stream that
 * `container.copyOut()` gives onto the host, as `docker cp` does: into HOSTPATH
 * when it is a directory, else as HOSTPATH itself. An entry that would land
 * outside the destination (`..`, an absolute name, a path through a symlink the
 * archive made) is refused.
 *
 * @module
 */
import { createReadStream } from 'node:fs';
import { lstat, mkdir, open, readdir, readlink, symlink, utimes } from 'node:fs/promises';
import { basename, dirname, join, posix, resolve, sep } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import tar from 'tar-stream';
import { InvalidArgumentError, UnsafeContentError } from '../index.js';

/** Extracts `stream` to `dest` with `docker cp`'s naming rules. */
export async function extractTar(stream: Readable, dest: string): Promise<void> {
  const target = resolve(dest);
  const isDir = await lstat(target).then((s) => s.isDirectory(), () => false);
  if (!isDir) {
    const parent = await lstat(dirname(target)).catch(() => undefined);
    if (parent === undefined || !parent.isDirectory()) throw new InvalidArgumentError(`cp: destination directory \`${dirname(target)}\` does not exist`);
  }
  const root = isDir ? target : dirname(target);
  const extract = tar.extract();
  let top: string | undefined;
  const links: [string, string][] = [];
  extract.on('entry', (header, body, next) => {
    void (async () => {
      const name = posix.normalize(header.name).replace(/\/$/, '');
      if (name.startsWith('/') || name === '..' || name.startsWith('../')) throw new UnsafeContentError(`cp: archive entry \`${header.name}\` leaves the destination`);
      const first = name.split('/')[0]!;
      top ??= first;
      const renamed = isDir ? name : basename(target) + name.slice(first.length);
      const path = join(root, renamed);
      if (path !== root && !path.startsWith(root + sep)) throw new UnsafeContentError(`cp: archive entry \`${header.name}\` leaves the destination`);
      for (const link of links) {
        if (path.startsWith(link[0] + sep)) throw new UnsafeContentError(`cp: archive entry \`${header.name}\` goes through the symlink \`${link[0]}\``);
      }
      const mode = (header.mode ?? 0o644) & 0o7777;
      if (header.type === 'directory') {
        await mkdir(path, { recursive: true, mode });
        body.resume();
      } else if (header.type === 'symlink') {
        await symlink(header.linkname ?? '', path);
        links.push([path, header.linkname ?? '']);
        body.resume();
      } else if (header.type === 'file' || header.type === 'contiguous-file') {
        if ((await lstat(path).catch(() => undefined))?.isSymbolicLink() === true) {
          throw new UnsafeContentError(`cp: \`${path}\` is a symlink; refusing to write through it`);
        }
        const handle = await open(path, 'w', mode);
        await pipeline(body, handle.createWriteStream());
        if (header.mtime !== undefined) await utimes(path, header.mtime, header.mtime).catch(() => undefined);
      } else {
        body.resume();
      }
    })().then(() => next(), (error: unknown) => next(error as Error));
  });
  await pipeline(stream, extract);
}

/**
 * A tar stream of a host file or directory whose top entry is named `topName`:
 * what `docker cp HOSTPATH CONTAINER:NEWNAME` copies when NEWNAME does not exist yet.
 */
export function packHostPath(hostPath: string, topName: string): Readable {
  const pack = tar.pack();
  void (async () => {
    const walk = async (path: string, name: string): Promise<void> => {
      const st = await lstat(path);
      const common = { name, mode: st.mode & 0o7777, mtime: st.mtime };
      if (st.isDirectory()) {
        pack.entry({ ...common, type: 'directory' });
        for (const child of (await readdir(path)).sort()) await walk(join(path, child), `${name}/${child}`);
      } else if (st.isSymbolicLink()) {
        pack.entry({ ...common, type: 'symlink', linkname: await readlink(path) });
      } else if (st.isFile()) {
        await new Promise<void>((resolveEntry, reject) => {
          const entry = pack.entry({ ...common, type: 'file', size: st.size }, (error) => (error ? reject(error) : resolveEntry()));
          createReadStream(path).on('error', reject).pipe(entry);
        });
      } else {
        throw new InvalidArgumentError(`cp: \`${path}\` is not a file, directory or symlink`);
      }
    };
    await walk(resolve(hostPath), topName);
    pack.finalize();
  })().catch((error: unknown) => pack.destroy(error as Error));
  return pack as unknown as Readable;
}
