/**
 * The image commands: commit, images, pull, push, tag, rmi, history, save, load,
 * import, build, image inspect/ls/rm/prune/history, and ours: rollback. Each
 * is a thin layer over {@link ImageStore} and {@link LayerBuilder}; long ones
 * show live progress (./progress.ts).
 *
 * @module
 */
import { createWriteStream } from 'node:fs';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Command } from 'commander';
import { commitContainer, importRootfs, LayerBuilder, type ExportFormat, type ImageSummary } from '../index.js';
import { ExitCode, type CliContext } from './context.js';
import { parseBuildArgs, parseLabels } from './flags.js';
import { ago, formatRows, humanSize, shortId, type Column, type Row } from './format.js';
import { printInspect } from './containers.js';
import { ProgressDisplay, progressMode } from './progress.js';

const IMAGE_COLUMNS: readonly Column[] = [
  { heading: 'REPOSITORY', field: 'Repository' },
  { heading: 'TAG', field: 'Tag' },
  { heading: 'IMAGE ID', field: 'ID' },
  { heading: 'CREATED', field: 'CreatedSince' },
  { heading: 'SIZE', field: 'Size' },
];

/** `docker.io/library/alpine:3.20` → `alpine` and `3.20`, as `docker images` shows them. */
export function splitReference(reference: string): { repository: string; tag: string } {
  const at = reference.indexOf('@');
  const named = at >= 0 ? reference.slice(0, at) : reference;
  const colon = named.lastIndexOf(':');
  const hasTag = colon > named.lastIndexOf('/');
  let repository = hasTag ? named.slice(0, colon) : named;
  repository = repository.replace(/^docker\.io\/library\//, '').replace(/^docker\.io\//, '');
  return { repository, tag: hasTag ? named.slice(colon + 1) : '<none>' };
}

/** A `docker images` row. */
export function imageRow(image: ImageSummary, full: boolean, now = Date.now()): Row {
  const { repository, tag } = splitReference(image.reference);
  const created = image.created !== undefined ? new Date(image.created) : undefined;
  return {
    Repository: repository,
    Tag: tag,
    ID: shortId(image.digest, full),
    Digest: image.digest,
    CreatedSince: created !== undefined ? ago(created, now) : 'N/A',
    CreatedAt: created?.toISOString() ?? '',
    Size: humanSize(image.size),
  };
}

/** A `docker images --filter` predicate: `dangling=`, or `reference=` as a glob (`*` within a path part) on `name` or `name:tag`. */
function imageFilter(filter: string): (row: Row) => boolean {
  const eq = filter.indexOf('=');
  const [key, value] = [filter.slice(0, eq), filter.slice(eq + 1)];
  if (key === 'dangling' && (value === 'true' || value === 'false')) return (r) => (r.Repository === '<none>') === (value === 'true');
  if (key === 'reference') {
    const glob = new RegExp(`^${value.replace(/[.+^${}()|[\]\\]/g, '\\$&').replaceAll('*', '[^/]*').replaceAll('?', '[^/]')}$`);
    return (r) => glob.test(r.Repository ?? '') || glob.test(`${r.Repository}:${r.Tag}`);
  }
  throw new ExitCode(125, `dockless: invalid filter '${filter}' (dangling=true|false, reference=PATTERN)`);
}

async function withProgress<T>(ctx: CliContext, flags: { quiet?: boolean; progress?: string }, work: (display: ProgressDisplay) => Promise<T>): Promise<T> {
  const display = new ProgressDisplay(ctx.err, progressMode(flags.progress, flags.quiet === true, ctx.err));
  try {
    return await work(display);
  } finally {
    display.finish();
  }
}

/** Adds the image commands to `program` (and the `image` group). */
export function addImageCommands(program: Command, ctx: CliContext): void {
  program
    .command('commit')
    .description("Create a new image from a container's changes")
    .argument('<container>')
    .argument('[repository]')
    .option('-m, --message <message>', 'commit message')
    .option('-a, --author <author>', 'author')
    .action(async (ref: string, repository: string | undefined, flags: { message?: string; author?: string }) => {
      const result = await commitContainer(await ctx.store(), await ctx.runtime(), ref, {
        ...(repository !== undefined ? { tag: repository } : {}),
        ...(flags.message !== undefined ? { message: flags.message } : {}),
        ...(flags.author !== undefined ? { author: flags.author } : {}),
      });
      ctx.print(result.digest);
    });

  const image = program.command('image').description('Manage images');
  const ls = (cmd: Command): Command =>
    cmd
      .description('List images')
      .argument('[repository]')
      .option('-q, --quiet', 'only show image IDs')
      .option('-a, --all', 'show all images')
      .option('--digests', 'show digests')
      .option('--no-trunc', "don't truncate output")
      .option('--format <format>', 'table, json, or a Go template')
      .option('-f, --filter <filter>', 'filter output (dangling=true|false, reference=PATTERN)', (v: string, p: string[] = []) => [...p, v])
      .action(async (repository: string | undefined, flags: { quiet?: boolean; digests?: boolean; trunc?: boolean; format?: string; filter?: string[] }) => {
        const store = await ctx.store();
        const now = Date.now();
        let rows = (await store.list()).map((i) => imageRow(i, flags.trunc === false, now));
        if (repository !== undefined) rows = rows.filter((r) => r.Repository === repository || r.Repository === splitReference(repository).repository);
        for (const f of flags.filter ?? []) rows = rows.filter(imageFilter(f));
        const columns = flags.digests === true ? [...IMAGE_COLUMNS.slice(0, 2), { heading: 'DIGEST', field: 'Digest' }, ...IMAGE_COLUMNS.slice(2)] : IMAGE_COLUMNS;
        if (flags.quiet === true) {
          ctx.out.write([...new Set(rows.map((r) => r.ID))].map((id) => `${id}\n`).join(''));
          return;
        }
        ctx.out.write(formatRows(rows, columns, flags.format));
      });
  ls(program.command('images'));
  ls(image.command('ls').alias('list'));

  const pull = (cmd: Command): Command =>
    cmd
      .description('Download an image from a registry')
      .argument('<name>')
      .option('--platform <platform>', 'os/arch[/variant] of a multi-platform image')
      .option('-q, --quiet', 'suppress verbose output')
      .action(async (name: string, flags: { platform?: string; quiet?: boolean }) => {
        const store = await ctx.store();
        const result = await withProgress(ctx, flags, (display) =>
          store.pull(name, { ...(flags.platform !== undefined ? { platform: flags.platform } : {}), onProgress: display.listener }),
        );
        // Docker's daemon keeps what it pulled across a reboot: so does a command that ends here.
        await store.flush();
        if (flags.quiet !== true) ctx.print(`Digest: ${result.digest}`);
        ctx.print(result.reference);
      });
  pull(program.command('pull'));
  pull(image.command('pull'));

  const push = (cmd: Command): Command =>
    cmd
      .description('Upload an image to a registry')
      .argument('<name>')
      .option('-q, --quiet', 'suppress verbose output')
      .action(async (name: string, flags: { quiet?: boolean }) => {
        const store = await ctx.store();
        const result = await withProgress(ctx, flags, (display) => store.push(name, { onProgress: display.listener }));
        ctx.print(`${result.tag ?? result.reference}: digest: ${result.digest} size: ${result.size}`);
      });
  push(program.command('push'));
  push(image.command('push'));

  const tag = (cmd: Command): Command =>
    cmd
      .description('Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE')
      .argument('<source>')
      .argument('<target>')
      .action(async (source: string, target: string) => {
        await (await ctx.store()).tag(source, target);
      });
  tag(program.command('tag'));
  tag(image.command('tag'));

  const rmi = (cmd: Command): Command =>
    cmd
      .description('Remove one or more images')
      .argument('<image...>')
      .option('-f, --force', 'force removal')
      .action(async (refs: string[]) => {
        const store = await ctx.store();
        let failed = false;
        for (const ref of refs) {
          try {
            const removed = await store.remove(ref);
            for (const r of removed) ctx.print(`Untagged: ${r}`);
          } catch (error) {
            failed = true;
            ctx.err.write(`Error response from dockless: ${(error as Error).message}\n`);
          }
        }
        if (failed) throw new ExitCode(1);
      });
  rmi(program.command('rmi'));
  rmi(image.command('rm').alias('remove'));

  const history = (cmd: Command): Command =>
    cmd
      .description('Show the history of an image')
      .argument('<image>')
      .option('-q, --quiet', 'only show image IDs')
      .option('--no-trunc', "don't truncate output")
      .option('--format <format>', 'table, json, or a Go template')
      .action(async (ref: string, flags: { quiet?: boolean; trunc?: boolean; format?: string }) => {
        const details = await (await ctx.store()).inspect(ref);
        const now = Date.now();
        const rows = [...details.history].reverse().map((h, i) => ({
          ID: i === 0 ? shortId(details.digest, flags.trunc === false) : '<missing>',
          CreatedSince: h.created !== undefined ? ago(new Date(h.created), now) : 'N/A',
          CreatedBy: flags.trunc === false ? (h.created_by ?? '') : (h.created_by ?? '').slice(0, 45),
          Size: h.empty_layer === true ? '0B' : '',
          Comment: h.comment ?? '',
        }));
        const columns = [
          { heading: 'IMAGE', field: 'ID' },
          { heading: 'CREATED', field: 'CreatedSince' },
          { heading: 'CREATED BY', field: 'CreatedBy' },
          { heading: 'SIZE', field: 'Size' },
          { heading: 'COMMENT', field: 'Comment' },
        ];
        ctx.out.write(formatRows(rows, columns, flags.format, flags.quiet === true));
      });
  history(program.command('history'));
  history(image.command('history'));

  const save = (cmd: Command): Command =>
    cmd
      .description('Save one or more images to a tar archive (docker-archive; --format oci for an OCI layout)')
      .argument('<image...>')
      .requiredOption('-o, --output <file>', 'write to a file (dockless does not write archives to a terminal)')
      .option('--format <format>', 'docker-archive, oci-archive or oci', 'docker-archive')
      .action(async (images: string[], flags: { output: string; format: string }) => {
        const store = await ctx.store();
        if (!['docker-archive', 'oci-archive', 'oci'].includes(flags.format)) throw new ExitCode(125, `dockless: --format: unknown archive format \`${flags.format}\``);
        await withProgress(ctx, {}, (display) => store.export(images, flags.output, { format: flags.format as ExportFormat, onProgress: display.listener }));
      });
  save(program.command('save'));
  save(image.command('save'));

  const load = (cmd: Command): Command =>
    cmd
      .description('Load images from a tar archive or an OCI layout')
      .requiredOption('-i, --input <file>', 'read from a tar archive file or an OCI layout directory')
      .option('-q, --quiet', 'suppress the load output')
      .action(async (flags: { input: string; quiet?: boolean }) => {
        const store = await ctx.store();
        const images = await withProgress(ctx, flags, (display) => store.import(flags.input, { onProgress: display.listener }));
        await store.flush();
        for (const i of images) ctx.print(`Loaded image: ${i.reference ?? i.digest}`);
      });
  load(program.command('load'));
  load(image.command('load'));

  const imp = (cmd: Command): Command =>
    cmd
      .description('Import a root filesystem (a directory, or a tar archive as `docker import` takes; `-` reads it from stdin) as a one-layer image')
      .argument('<dir|file|->')
      .argument('[repository]')
      .option('-c, --change <instruction>', 'apply a Dockerfile instruction to the image (CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, ONBUILD, STOPSIGNAL, USER, VOLUME, WORKDIR)', (v: string, p: string[] = []) => [...p, v])
      .option('-m, --message <message>', 'set the history message of the imported image')
      .action(async (source: string, repository: string | undefined, flags: { change?: string[]; message?: string }) => {
        const store = await ctx.store();
        const changes = flags.change ?? [];
        if ((await stat(source).catch(() => undefined))?.isDirectory() === true) {
          const result = await importRootfs(store, source, {
            ...(repository !== undefined ? { tag: repository } : {}),
            ...(changes.length > 0 ? { changes } : {}),
            ...(flags.message !== undefined ? { createdBy: flags.message } : {}),
          });
          await store.flush();
          return ctx.print(result.digest);
        }
        // `-`: a tar on stdin, kept in a temporary file for the archive import, which reads it more than once.
        const tmp = source === '-' ? await mkdtemp(join(tmpdir(), 'dockless-import-')) : undefined;
        if (tmp !== undefined) await pipeline(process.stdin, createWriteStream(join(tmp, 'rootfs.tar')));
        const [image] = await store.import(tmp !== undefined ? join(tmp, 'rootfs.tar') : source, {
          format: 'rootfs',
          ...(repository !== undefined ? { tag: repository } : {}),
          ...(changes.length > 0 ? { changes } : {}),
          ...(flags.message !== undefined ? { message: flags.message } : {}),
        }).finally(() => (tmp !== undefined ? rm(tmp, { recursive: true, force: true }) : undefined));
        await store.flush();
        ctx.print(image!.digest);
      });
  imp(program.command('import'));
  imp(image.command('import'));

  const build = (cmd: Command): Command =>
    cmd
      .description('Build an image from a Dockerfile')
      .argument('<context>')
      .option('-t, --tag <name>', 'name and optionally a tag (name:tag)', (v: string, p: string[] = []) => [...p, v])
      .option('-f, --file <path>', 'name of the Dockerfile (default: CONTEXT/Dockerfile)')
      .option('--build-arg <K=V>', 'set build-time variables', (v: string, p: string[] = []) => [...p, v])
      .option('--target <stage>', 'the build stage to build')
      .option('--no-cache', 'do not use the cache')
      .option('--label <k=v>', 'set metadata on the image', (v: string, p: string[] = []) => [...p, v])
      .option('--progress <mode>', 'auto, plain or tty', 'auto')
      .option('-q, --quiet', 'print only the image digest')
      .action(async (contextDir: string, flags: { tag?: string[]; file?: string; buildArg?: string[]; target?: string; cache?: boolean; label?: string[]; progress: string; quiet?: boolean }) => {
        const store = await ctx.store();
        const runtime = await ctx.runtime();
        const tags = flags.tag ?? [];
        const labels = parseLabels(flags.label ?? []);
        const result = await withProgress(ctx, flags, (display) =>
          LayerBuilder.fromDockerfile(store, {
            context: contextDir,
            runtime,
            ...(flags.file !== undefined ? { dockerfile: flags.file } : {}),
            buildArgs: parseBuildArgs(flags.buildArg ?? []),
            ...(flags.target !== undefined ? { target: flags.target } : {}),
            ...(tags[0] !== undefined ? { tag: tags[0] } : {}),
            ...(Object.keys(labels).length > 0 ? { labels } : {}),
            ...(flags.cache === false ? { noCache: true } : {}),
            onProgress: display.listener,
          }),
        );
        for (const t of tags.slice(1)) await store.tag(result.digest, t);
        await store.flush();
        if (flags.quiet === true) return ctx.print(result.digest);
        ctx.print(`Successfully built ${shortId(result.digest)}`);
        for (const t of tags) ctx.print(`Successfully tagged ${t}`);
      });
  build(program.command('build'));
  build(image.command('build'));

  image
    .command('inspect')
    .description('Display detailed information on one or more images')
    .argument('<image...>')
    .option('-f, --format <format>', 'format the output using a Go template')
    .action(async (refs: string[], flags: { format?: string }) => {
      const store = await ctx.store();
      printInspect(ctx, await Promise.all(refs.map((r) => store.inspect(r))), flags.format);
    });

  image
    .command('prune')
    .description('Remove unused data: untagged images, unreferenced blobs and snapshots')
    .option('-a, --all', 'also unused tagged images (dockless keeps tagged images)')
    .option('-f, --force', 'do not prompt for confirmation')
    .action(async () => {
      const result = await (await ctx.store()).gc();
      ctx.print(`Deleted blobs: ${result.blobs.length}, snapshots: ${result.snapshots.length}`);
      ctx.print(`Total reclaimed space: ${humanSize(result.reclaimedBytes)}`);
    });

  program
    .command('rollback')
    .description("Point a tag back at the image it named before (dockless's tag history)")
    .argument('<tag>')
    .action(async (ref: string) => {
      const descriptor = await (await ctx.store()).rollback(ref);
      ctx.print(descriptor.digest);
    });
}
