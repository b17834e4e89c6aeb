import assert from 'node:assert/strict';
import { mkdtemp, writeFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { describe, it } from 'node:test';
import { HelperError, InvalidArgumentError } from '../../src/index.js';
import { CliContext, ExitCode } from '../../src/cli/context.js';
import {
  parseCopyOperand,
  parseDuration,
  parseEnv,
  parseEnvFile,
  parseMount,
  parseSecurityOpts,
  parseSize,
  parseTmpfs,
  parseUlimit,
  parseVolume,
  updateResources,
} from '../../src/cli/flags.js';
import { formatRows, humanDuration, humanSize, renderTemplate, shortCommand, table } from '../../src/cli/format.js';
import { splitReference } from '../../src/cli/images.js';
import { buildProgram, COMMAND_GROUPS, commandName, exitFor, main } from '../../src/cli/main.js';
import { ProgressDisplay } from '../../src/cli/progress.js';
import { DetachKeysFilter, parseDetachKeys } from '../../src/cli/detach-keys.js';
import { specFromRunOptions } from '../../src/cli/run-spec.js';
import { dockerInfoFields } from '../../src/cli/system.js';
import { psRow } from '../../src/cli/containers.js';
import { bashCompletion } from '../../src/cli/system.js';

function capture(): { stream: NodeJS.WriteStream; text: () => string } {
  const stream = new PassThrough() as unknown as NodeJS.WriteStream;
  let out = '';
  (stream as unknown as PassThrough).on('data', (c: Buffer) => (out += c.toString()));
  return { stream, text: () => out };
}

describe('cli flags', () => {
  it('reads sizes as Docker does', () => {
    assert.equal(parseSize('--memory', '512m'), 512 * 1024 * 1024);
    assert.equal(parseSize('--memory', '1G'), 1024 ** 3);
    assert.equal(parseSize('--memory', '1048576'), 1048576);
    assert.equal(parseSize('--memory', '1.5k'), 1536);
    assert.throws(() => parseSize('--memory', 'lots'), InvalidArgumentError);
  });

  it('reads durations, a bare number being seconds', () => {
    assert.equal(parseDuration('--health-interval', '30s'), 30_000);
    assert.equal(parseDuration('--health-interval', '1m30s'), 90_000);
    assert.equal(parseDuration('--health-interval', '500ms'), 500);
    assert.equal(parseDuration('--health-interval', '5'), 5000);
    assert.throws(() => parseDuration('--health-interval', '5 parsecs'), InvalidArgumentError);
  });

  it('takes -e KEY alone from the environment and leaves it out when unset', () => {
    assert.deepEqual(parseEnv('A=1=2'), ['A', '1=2']);
    assert.deepEqual(parseEnv('HOME_X', { HOME_X: 'v' }), ['HOME_X', 'v']);
    assert.equal(parseEnv('UNSET_X', {}), undefined);
    assert.throws(() => parseEnv('=v'), InvalidArgumentError);
  });

  it('reads an env file, skipping comments and blank lines', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'dl-cli-'));
    try {
      await writeFile(join(dir, 'env'), '# comment\n\nA=1\nB=two words\r\nFROM_ENV\n');
      assert.deepEqual(parseEnvFile(join(dir, 'env'), { FROM_ENV: 'x' }), [['A', '1'], ['B', 'two words'], ['FROM_ENV', 'x']]);
      assert.throws(() => parseEnvFile(join(dir, 'missing')), InvalidArgumentError);
    } finally {
      await rm(dir, { recursive: true });
    }
  });

  it('reads -v, --mount and --tmpfs, refusing named volumes and relative targets', () => {
    assert.deepEqual(parseVolume('/data:/srv:ro'), { type: 'bind', source: '/data', target: '/srv', readonly: true });
    assert.deepEqual(parseVolume('./d:/srv', '/home/u'), { type: 'bind', source: '/home/u/d', target: '/srv', readonly: false });
    assert.throws(() => parseVolume('pgdata:/var/lib/postgresql'), /named volumes are not supported/);
    assert.throws(() => parseVolume('/a:rel'), /must be absolute/);
    assert.deepEqual(parseMount('type=bind,source=/a,target=/b,readonly'), { type: 'bind', source: '/a', target: '/b', readonly: true });
    assert.deepEqual(parseMount('type=tmpfs,dst=/t,tmpfs-size=64m,tmpfs-mode=1777'), { type: 'tmpfs', target: '/t', readonly: false, size: 64 * 1024 * 1024, mode: 0o1777 });
    assert.throws(() => parseMount('type=volume,target=/x'), /not supported/);
    assert.deepEqual(parseTmpfs('/run:size=1m,mode=755'), { type: 'tmpfs', target: '/run', readonly: false, size: 1024 * 1024, mode: 0o755 });
  });

  it('reads --ulimit and --security-opt', () => {
    assert.deepEqual(parseUlimit('nofile=1024:4096'), ['nofile', { soft: 1024, hard: 4096 }]);
    assert.deepEqual(parseUlimit('core=-1'), ['core', { soft: Infinity, hard: Infinity }]);
    assert.throws(() => parseUlimit('nofile=10:5'), /soft limit above hard/);
    assert.throws(() => parseUlimit('bogus=1'), InvalidArgumentError);
    assert.deepEqual(parseSecurityOpts(['seccomp=unconfined', 'no-new-privileges:false']), { seccomp: 'unconfined', noNewPrivileges: false });
    assert.throws(() => parseSecurityOpts(['apparmor=x']), /not supported/);
  });

  it('tells container paths from host paths in cp operands', () => {
    assert.deepEqual(parseCopyOperand('web:/etc/hosts'), { container: 'web', path: '/etc/hosts' });
    assert.deepEqual(parseCopyOperand('./web:x'), { host: './web:x' });
    assert.deepEqual(parseCopyOperand('-'), { host: '-' });
  });

  it('turns run flags into a spec', () => {
    const spec = specFromRunOptions('alpine', ['sh', '-c', 'true'], {
      env: ['A=1'],
      volume: ['/h:/c'],
      memory: '64m',
      cpus: '0.5',
      pidsLimit: '50',
      ulimit: ['nofile=100:200'],
      capAdd: ['NET_ADMIN'],
      readOnly: true,
      name: 'x',
      workdir: '/w',
      user: '1000',
      entrypoint: '',
    });
    assert.deepEqual(spec, {
      image: 'alpine',
      cmd: ['sh', '-c', 'true'],
      entrypoint: [],
      env: { A: '1' },
      cwd: '/w',
      user: '1000',
      name: 'x',
      mounts: [{ type: 'bind', source: '/h', target: '/c', readonly: false }],
      readonlyRootfs: true,
      init: false,
      resources: { memory: 64 * 1024 * 1024, cpus: 0.5, pids: 50 },
      rlimits: { nofile: { soft: 100, hard: 200 } },
      capAdd: ['NET_ADMIN'],
    });
    assert.throws(() => specFromRunOptions('a', [], { userns: 'container:x' }), /not supported/);
  });

  it('ps shows the published ports of a running container, as docker ps does', () => {
    // The PORTS column was always empty.
    const info = { id: 'a'.repeat(64), status: 'running' as const, pid: 1, created: new Date(0), detached: true, cmd: ['sleep'], rootfs: '/r', restartCount: 0, labels: {} };
    const ports = [{ container: 80, protocol: 'tcp' as const, hostIp: '127.0.0.1', host: 18080 }, { container: 53, protocol: 'udp' as const, hostIp: '0.0.0.0', host: 5353 }];
    assert.equal(psRow({ ...info, ports }, false).Ports, '127.0.0.1:18080->80/tcp, 0.0.0.0:5353->53/udp');
    assert.equal(psRow({ ...info, status: 'stopped', ports }, false).Ports, '');
    assert.equal(psRow(info, false).Ports, '');
  });

  it("info has docker info's field names for --format (a script's {{.CgroupVersion}} failed)", () => {
    // Only dockless's own names existed: `info --format '{{.CgroupVersion}}'` was a template error, exit 125.
    const counts = { containers: 3, running: 1, paused: 1, stopped: 1, images: 2 };
    const fields = dockerInfoFields({ cgroupVersion: 'hybrid', kernel: '6.1.0', root: '/var/lib/dockless/data', rootless: false }, counts);
    assert.equal(fields.CgroupVersion, '1');
    assert.equal(dockerInfoFields({ cgroupVersion: 'v2', kernel: '6.1.0', root: '/r', rootless: true }, counts).CgroupVersion, '2');
    assert.deepEqual([fields.Containers, fields.ContainersRunning, fields.ContainersPaused, fields.ContainersStopped, fields.Images], [3, 1, 1, 1, 2]);
    assert.equal(fields.KernelVersion, '6.1.0');
    assert.equal(fields.OSType, 'linux');
    assert.match(String(fields.Architecture), /^(x86_64|aarch64|\w+)$/);
  });

  it('--init alone gives the container an init: without it the command is pid 1, as with Docker', () => {
    // --init did nothing: the library's init was always pid 1, where Docker runs the command itself.
    assert.equal(specFromRunOptions('img', [], {}).init, false);
    assert.equal(specFromRunOptions('img', [], { init: true }).init, true);
  });
});

describe('cli output', () => {
  it("prints Docker's table: three spaces between columns, no trailing spaces", () => {
    const out = table([{ ID: 'abc', Names: 'web' }, { ID: 'abcdef', Names: '' }], [{ heading: 'CONTAINER ID', field: 'ID' }, { heading: 'NAMES', field: 'Names' }]);
    assert.equal(out, 'CONTAINER ID   NAMES\nabc            web\nabcdef\n');
  });

  it('applies Go-style templates and json lines', () => {
    const rows = [{ ID: '1', Names: 'a' }];
    assert.equal(formatRows(rows, [], '{{.ID}}\\t{{.Names}}'), '1\ta\n');
    assert.equal(formatRows(rows, [], 'json'), '{"ID":"1","Names":"a"}\n');
    assert.equal(formatRows(rows, [{ heading: 'CONTAINER ID', field: 'ID' }], 'table {{.ID}}'), 'CONTAINER ID\n1\n');
    assert.equal(renderTemplate('{{.State.Status}} {{json .Config.Env}} {{upper .Name}}', { State: { Status: 'running' }, Config: { Env: ['A=1'] }, Name: 'web' }), 'running ["A=1"] WEB');
    assert.throws(() => renderTemplate('{{.Nope}}', {}), /no field `Nope`/);
  });

  it('writes sizes, durations and commands as Docker does', () => {
    assert.equal(humanSize(1_108_000), '1.108MB');
    assert.equal(humanSize(999), '999B');
    assert.equal(humanDuration(500), 'Less than a second');
    assert.equal(humanDuration(90_000), '2 minutes');
    assert.equal(humanDuration(3_600_000), 'About an hour');
    assert.equal(shortCommand(['sh', '-c', 'while true; do sleep 1; done']), '"sh -c while true; d…"');
  });

  it('shows repositories and tags the way docker images does', () => {
    assert.deepEqual(splitReference('docker.io/library/alpine:3.20'), { repository: 'alpine', tag: '3.20' });
    assert.deepEqual(splitReference('localhost:5000/app:1'), { repository: 'localhost:5000/app', tag: '1' });
    assert.deepEqual(splitReference('localhost:5000/app@sha256:ab'), { repository: 'localhost:5000/app', tag: '<none>' });
  });
});

describe('cli progress', () => {
  it('prints plain lines on changes of state only, never escape codes', () => {
    const { stream, text } = capture();
    const display = new ProgressDisplay(stream, 'plain');
    const digest = `sha256:${'a'.repeat(64)}` as const;
    display.listener({ op: 'pull', type: 'resolved', reference: 'r:1', digest, mediaType: 'm', manifest: { mediaType: 'm', digest, size: 1 }, layers: 1, size: 10 });
    for (const bytes of [0, 3, 6]) display.listener({ op: 'pull', type: 'layer', index: 0, digest, size: 10, state: 'downloading', bytes });
    display.listener({ op: 'pull', type: 'layer', index: 0, digest, size: 10, state: 'done', bytes: 10 });
    display.listener({ op: 'build', type: 'step-output', step: 2, total: 3, instruction: 'RUN echo', stream: 'stdout', data: 'hello\nworld\n' });
    display.finish();
    assert.equal(text(), 'r:1: pulling 1 layer (10B)\naaaaaaaaaaaa: Downloading\naaaaaaaaaaaa: Pull complete\n#2 hello\n#2 world\n');
    assert.doesNotMatch(text(), /\x1b/);
  });

  it('redraws in place on a terminal', async () => {
    const { stream, text } = capture();
    Object.assign(stream, { isTTY: true, columns: 100, rows: 40 });
    const display = new ProgressDisplay(stream, 'tty');
    const digest = `sha256:${'b'.repeat(64)}` as const;
    display.listener({ op: 'push', type: 'blob', digest, size: 100, kind: 'layer', state: 'uploading', bytes: 50 });
    await new Promise((r) => setTimeout(r, 150));
    display.listener({ op: 'push', type: 'blob', digest, size: 100, kind: 'layer', state: 'done', bytes: 100 });
    display.finish();
    assert.match(text(), /bbbbbbbbbbbb: Pushing {2}\[=+>? *\] 50B\/100B/);
    assert.match(text(), /\x1b\[/, 'a redraw erases the previous lines with escape codes');
    assert.match(text(), /bbbbbbbbbbbb: Pushed/);
  });
});

describe('cli program', () => {
  it("maps failures to Docker's exit codes", () => {
    assert.deepEqual(exitFor(new ExitCode(3)), { code: 3, message: '' });
    const notFound = new HelperError('exec `nosuch`: No such file or directory', { op: 'run', step: 'execve', errnoCode: 'ENOENT' });
    assert.equal(exitFor(notFound).code, 127);
    const denied = new HelperError('exec `/etc`: Permission denied', { op: 'run', step: 'execve', errnoCode: 'EACCES' });
    assert.equal(exitFor(denied).code, 126);
    assert.equal(exitFor(new InvalidArgumentError('bad')).code, 125);
    assert.equal(exitFor(new Error('boom')).code, 125);
  });

  it('generates completion from the command definitions', async () => {
    const program = await buildProgram(new CliContext({}));
    const script = bashCompletion(program);
    assert.match(script, /complete -F _dockless dockless/);
    assert.match(script, /"run"\) echo "[^"]*--publish|"run"\) echo "[^"]*--env/);
    assert.match(script, /"system"\) echo "df prune check/);
    for (const c of program.commands.filter((c) => !c.name().startsWith('__'))) assert.ok(script.includes(`"${c.name()}")`), `completion knows ${c.name()}`);
    assert.doesNotMatch(script, /__remove-on-exit/);
  });

  it('knows the group of every command, so that a command loads only its own group', async () => {
    // A command missing from the table would load every group (slower, still correct); one in the wrong group would not be found.
    const all = (await buildProgram(new CliContext({}))).commands.map((c) => c.name()).sort();
    assert.deepEqual(Object.keys(COMMAND_GROUPS).sort(), all);
    for (const name of all) {
      const only = (await buildProgram(new CliContext({}), name)).commands.map((c) => c.name());
      assert.ok(only.includes(name), `${name} is in group ${COMMAND_GROUPS[name]}`);
    }
    assert.equal(commandName(['--root', '/x', '-D', 'run', 'img']), 'run');
    assert.equal(commandName(['--help']), undefined);
  });

  it('--userns: host and empty are the default, private is auto, keep-id and nomap only for a caller that is not root', () => {
    assert.equal(specFromRunOptions('img', [], { userns: 'host' }).userns, undefined);
    assert.equal(specFromRunOptions('img', [], { userns: 'private' }).userns, 'auto');
    assert.throws(() => specFromRunOptions('img', [], { userns: 'ns:/proc/1/ns/user' }), InvalidArgumentError);
    if (process.getuid?.() === 0) assert.throws(() => specFromRunOptions('img', [], { userns: 'keep-id' }), /only for a caller that is not root/);
  });

  it("parses detach keys as Docker writes them, and refuses what it cannot type", () => {
    assert.deepEqual([...parseDetachKeys('ctrl-p,ctrl-q')], [0x10, 0x11]);
    assert.deepEqual([...parseDetachKeys('ctrl-@,ctrl-[,ctrl-\\,ctrl-],ctrl-^,ctrl-_,a,Z')], [0, 27, 28, 29, 30, 31, 0x61, 0x5a]);
    assert.equal(parseDetachKeys('').length, 0);
    assert.throws(() => parseDetachKeys('ctrl-1'), InvalidArgumentError);
    assert.throws(() => parseDetachKeys('ab'), InvalidArgumentError);
  });

  it('the detach filter swallows the sequence only when it is whole, across chunks, and passes a partial one on', async () => {
    const run = async (keys: string, chunks: string[]): Promise<{ out: string; detached: boolean }> => {
      let detached = false;
      const f = new DetachKeysFilter(parseDetachKeys(keys), () => (detached = true));
      let out = '';
      f.on('data', (d: Buffer) => (out += d.toString('latin1')));
      for (const c of chunks) f.write(Buffer.from(c, 'latin1'));
      f.end();
      await new Promise((r) => setImmediate(r));
      return { out, detached };
    };
    assert.deepEqual(await run('ctrl-p,ctrl-q', ['ab\x10', '\x11cd']), { out: 'ab', detached: true });
    assert.deepEqual(await run('ctrl-p,ctrl-q', ['a\x10b\x10\x10\x11']), { out: 'a\x10b\x10', detached: true });
    assert.deepEqual(await run('ctrl-p,ctrl-q', ['\x10x\x11']), { out: '\x10x\x11', detached: false });
    assert.deepEqual(await run('', ['\x10\x11']), { out: '\x10\x11', detached: false });
    assert.deepEqual(await run('x', ['abxcd']), { out: 'ab', detached: true });
  });

  it('refuses an unknown flag with exit code 125', async () => {
    const out = capture();
    const err = capture();
    assert.equal(await main(['ps', '--bogus-flag'], out.stream, err.stream), 125);
    assert.match(err.text(), /unknown option '--bogus-flag'/);
    assert.equal(await main(['--help'], out.stream, err.stream), 0);
    assert.match(out.text(), /Usage: dockless/);
  });
});

describe('dockless update flags', () => {
  it("become the library's resource names, with docker run's value syntax, only those given", () => {
    assert.deepEqual(updateResources({ memory: '512m', memorySwap: '-1', cpus: '1.5', cpuShares: '512', cpusetCpus: '0-1', pidsLimit: '100' }), {
      memory: 512 * 1024 * 1024,
      memorySwap: -1,
      cpus: 1.5,
      cpuShares: 512,
      cpuset: '0-1',
      pids: 100,
    });
    assert.deepEqual(updateResources({ pidsLimit: '7' }), { pids: 7 });
  });
  it('refuses a malformed value naming the flag, and no flag at all', () => {
    assert.throws(() => updateResources({ memory: 'lots' }), (e: unknown) => e instanceof InvalidArgumentError && /--memory/.test(e.message));
    assert.throws(() => updateResources({ cpus: '0' }), /--cpus/);
    assert.throws(() => updateResources({ pidsLimit: 'x' }), /--pids-limit/);
    assert.throws(() => updateResources({}), /one or more flags/);
  });
});
