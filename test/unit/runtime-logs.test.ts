// The io plan (where a container's stdio goes, as helper options) and the log
// reader, without a helper: a log written here in the helper's format.
import { strict as assert } from 'node:assert';
import { mkdtemp, readFile, rename, rm, writeFile, appendFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { InvalidArgumentError } from '../../src/errors.js';
import { ioArgs, planIo, resizeRecord, DEFAULT_OUTPUT_BUFFER } from '../../src/runtime/io-plan.js';
import { ContainerLogReader, DEFAULT_LOG_OPTIONS, resolveLogOptions, type LogLine } from '../../src/runtime/logs.js';

const nativeDir = join(import.meta.dirname, '..', '..', 'native');
const paths = { log: '/b/json.log', stdinFifo: '/s/stdin.fifo', control: '/s/control.fifo' };

test('planIo: a log by default, Docker local-driver rotation; stdio straight through with log: false and nothing else', () => {
  const plain = planIo({ cmd: ['x'] }, undefined, paths, 'x');
  assert.deepEqual(plain.io, { log: { path: '/b/json.log', ...DEFAULT_LOG_OPTIONS }, live: true, liveBuffer: DEFAULT_OUTPUT_BUFFER, stdinRelay: false });
  assert.deepEqual(DEFAULT_LOG_OPTIONS, { maxSize: 20 * 1024 * 1024, maxFiles: 5 });
  assert.deepEqual(plain.stdio, ['pipe', 'pipe', 'pipe']);
  assert.deepEqual(planIo({ log: false }, undefined, paths, 'x'), { io: undefined, stdio: ['pipe', 'pipe', 'pipe'] });
  assert.deepEqual(planIo({}, false, paths, 'x').io, undefined);
  assert.deepEqual(planIo({ log: { maxFiles: 2 } }, false, paths, 'x').io?.log, { path: '/b/json.log', maxSize: DEFAULT_LOG_OPTIONS.maxSize, maxFiles: 2 });
  assert.deepEqual(planIo({ detached: true, log: false }, undefined, paths, 'x').stdio, ['ignore', 'ignore', 'ignore']);
});

test('planIo: detached containers relay nothing live; tty and stdin: true bring the FIFOs; outputBuffer block is 0', () => {
  const d = planIo({ detached: true, stdin: true }, undefined, paths, 'x');
  assert.deepEqual(d.stdio, ['ignore', 'ignore', 'ignore']);
  assert.equal(d.io?.live, false);
  assert.equal(d.io?.stdinRelay, false);
  assert.equal(d.io?.stdinFifo, '/s/stdin.fifo');
  const t = planIo({ tty: true, outputBuffer: 'block' }, undefined, paths, 'x');
  assert.deepEqual(t.io?.tty, { columns: 80, rows: 24 });
  assert.equal(t.io?.stdinRelay, true);
  assert.equal(t.io?.controlFifo, '/s/control.fifo');
  assert.equal(t.io?.liveBuffer, 0);
  assert.equal(planIo({ tty: true, stdio: 'ignore' }, undefined, paths, 'x').io?.live, false);
  for (const bad of [{ outputBuffer: 0 }, { outputBuffer: -1 }, { tty: true, ttySize: { columns: 0, rows: 1 } }, { log: { maxSize: 100 } }, { log: { maxFiles: 0 } }]) {
    assert.throws(() => planIo(bad, undefined, paths, 'x'), InvalidArgumentError, JSON.stringify(bad));
  }
  assert.throws(() => resolveLogOptions({ maxSize: 1.5 }, 'x'), InvalidArgumentError);
});

test('planIo: a detached container whose creator attaches (attach: true) relays live, stdin too, until its creator goes', () => {
  // `docker run -it` that ctrl-p ctrl-q can leave: the container must be detached and still relay to its creator.
  const a = planIo({ detached: true, attach: true, tty: true, stdin: true }, undefined, paths, 'x');
  assert.deepEqual(a.stdio, ['pipe', 'pipe', 'pipe']);
  assert.equal(a.io?.live, true);
  assert.equal(a.io?.stdinRelay, true);
  assert.equal(a.io?.stdinFifo, '/s/stdin.fifo');
  assert.deepEqual(planIo({ detached: true, attach: true, stdio: 'ignore' }, undefined, paths, 'x').stdio, ['ignore', 'ignore', 'ignore']);
});

test('ioArgs encodes the plan; every option it emits is parsed by the helper', async () => {
  const args = ioArgs({
    log: { path: '/l', maxSize: 4096, maxFiles: 3 },
    live: true,
    liveBuffer: 0,
    tty: { columns: 100, rows: 30 },
    stdinRelay: true,
    stdinFifo: '/in',
    controlFifo: '/ctl',
  });
  assert.deepEqual(args, [
    '--log', '/l', '--log-max-size', '4096', '--log-max-files', '3', '--live', '--live-buffer', '0',
    '--tty', '--tty-size', '30', '100', '--stdin', '--stdin-fifo', '/in', '--control-fifo', '/ctl',
  ]);
  assert.deepEqual(ioArgs(undefined), []);
  const source = await readFile(join(nativeDir, 'logio.c'), 'utf8');
  for (const option of new Set([...args, '--control-fd'].filter((a) => a.startsWith('--')))) assert.match(source, new RegExp(`"${option}"`));
});

test('resizeRecord: 8 bytes, little-endian kind 1, rows, columns', () => {
  assert.deepEqual([...resizeRecord({ columns: 0x102, rows: 0x304 })], [1, 0, 0, 0, 4, 3, 2, 1]);
});

const rec = (log: string, stream: string, time: string) => `${JSON.stringify({ log, stream, time })}\n`;

async function lines(reader: ContainerLogReader): Promise<LogLine[]> {
  const out: LogLine[] = [];
  for await (const l of reader) out.push(l);
  return out;
}

test('the reader: rotated files oldest first, tail across files, since/until with nanoseconds, stream filters', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'dl-logs-'));
  try {
    const path = join(dir, 'json.log');
    await writeFile(`${path}.2`, rec('a\n', 'stdout', '2026-01-01T00:00:01.000000001Z'));
    await writeFile(`${path}.1`, rec('b\n', 'stderr', '2026-01-01T00:00:02.500000000Z') + '{torn');
    await writeFile(path, rec('c\n', 'stdout', '2026-01-01T00:00:03.999999999Z') + rec('d', 'stdout', '2026-01-01T00:00:04Z'));
    const source = { path, ended: async () => true };
    assert.deepEqual((await lines(new ContainerLogReader(source))).map((l) => l.text), ['a\n', 'b\n', 'c\n', 'd']);
    assert.deepEqual((await lines(new ContainerLogReader(source, { tail: 3 }))).map((l) => l.text), ['b\n', 'c\n', 'd']);
    assert.deepEqual((await lines(new ContainerLogReader(source, { tail: 3, stderr: false }))).map((l) => l.text), ['a\n', 'c\n', 'd']);
    assert.deepEqual((await lines(new ContainerLogReader(source, { since: '2026-01-01T00:00:02.5Z', until: Date.parse('2026-01-01T00:00:04Z') }))).map((l) => l.text), ['b\n', 'c\n']);
    assert.deepEqual((await lines(new ContainerLogReader(source, { stdout: false, timestamps: true }))).map((l) => l.text), ['2026-01-01T00:00:02.500000000Z b\n']);
    assert.deepEqual(await new ContainerLogReader(source).collect(), { stdout: Buffer.from('a\nc\nd'), stderr: Buffer.from('b\n') });
    assert.throws(() => new ContainerLogReader(source, { tail: -1 }), InvalidArgumentError);
    assert.throws(() => new ContainerLogReader(source, { since: 'yesterday' }), InvalidArgumentError);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('the reader: follow goes on through a rotation, and ends once the source has ended and nothing more came', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'dl-logs-'));
  try {
    const path = join(dir, 'json.log');
    await writeFile(path, rec('1\n', 'stdout', '2026-01-01T00:00:01Z'));
    let ended = false;
    const got: string[] = [];
    const following = (async () => {
      for await (const l of new ContainerLogReader({ path, ended: async () => ended }, { follow: true })) got.push(l.text);
    })();
    await new Promise((r) => setTimeout(r, 120));
    await appendFile(path, rec('2\n', 'stdout', '2026-01-01T00:00:02Z'));
    await rename(path, `${path}.1`);
    await writeFile(path, rec('3\n', 'stdout', '2026-01-01T00:00:03Z'));
    await new Promise((r) => setTimeout(r, 120));
    await appendFile(path, rec('4\n', 'stdout', '2026-01-01T00:00:04Z'));
    ended = true;
    await following;
    assert.deepEqual(got, ['1\n', '2\n', '3\n', '4\n']);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('the reader: a line logged in pieces (a prompt logged before its newline) is one line, but while following with partial', async () => {
  // The helper logs the start of a line once its writer pauses (a prompt): `logs` must still give whole lines, one time each.
  const dir = await mkdtemp(join(tmpdir(), 'dl-logs-'));
  try {
    const path = join(dir, 'json.log');
    await writeFile(
      path,
      rec('prompt> ', 'stdout', '2026-01-01T00:00:01Z') +
        rec('oops\n', 'stderr', '2026-01-01T00:00:02Z') +
        rec('hi\n', 'stdout', '2026-01-01T00:00:03Z') +
        rec('next> ', 'stdout', '2026-01-01T00:00:04Z'),
    );
    const source = { path, ended: async () => true };
    assert.deepEqual((await lines(new ContainerLogReader(source))).map((l) => l.text), ['oops\n', 'prompt> hi\n', 'next> ']);
    assert.deepEqual((await lines(new ContainerLogReader(source, { tail: 2, stderr: false, timestamps: true }))).map((l) => l.text), ['2026-01-01T00:00:01Z prompt> hi\n', '2026-01-01T00:00:04Z next> ']);
    assert.deepEqual((await lines(new ContainerLogReader(source, { follow: true }))).map((l) => l.text), ['oops\n', 'prompt> hi\n', 'next> ']);
    assert.deepEqual(await new ContainerLogReader(source).collect(), { stdout: Buffer.from('prompt> hi\nnext> '), stderr: Buffer.from('oops\n') });

    let ended = false;
    const got: string[] = [];
    let seen: () => void = () => undefined;
    const following = (async () => {
      for await (const l of new ContainerLogReader({ path, ended: async () => ended }, { follow: true, partial: true })) {
        got.push(l.text);
        seen();
      }
    })();
    while (!got.includes('next> ')) await new Promise<void>((r) => (seen = r));
    assert.deepEqual(got, ['oops\n', 'prompt> hi\n', 'next> '], 'the start of a line comes before its end is written');
    await appendFile(path, rec('the', 'stdout', '2026-01-01T00:00:05Z'));
    while (!got.includes('the')) await new Promise<void>((r) => (seen = r));
    await appendFile(path, rec('re\n', 'stdout', '2026-01-01T00:00:06Z'));
    ended = true;
    await following;
    assert.deepEqual(got.slice(3), ['the', 're\n']);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
