// The `dockless` command as a user meets it: every command a subprocess
// (`node dist/bundle/cli.js …`, the package's bin), against real containers and a
// real local registry, checking output and exit codes. DOCKLESS_NETWORK=none keeps
// the command line's default 'bridge' (which changes the host's firewall and
// ip_forward) off this machine; bridge networks are tested in a throwaway
// network namespace by network.test.ts.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { connect } from 'node:net';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { rootfsFromHost } from '../../src/runtime/host-rootfs.js';
import { registryMissing, startRegistry, type RegistryFixture } from '../fixtures/registry.js';
import { cannotRun } from '../fixtures/world.js';
import { CLI_BIN, runCli, type CliResult } from '../fixtures/cli-terminal.js';

const BIN = CLI_BIN;
type Result = CliResult;

let base = '';

function dockless(args: readonly string[], options: { input?: string | Buffer; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<Result> {
  return runCli(args, { DOCKLESS_ROOT: join(base, 'dl'), DOCKLESS_NETWORK: 'none', ...options.env }, {
    ...(options.input !== undefined ? { input: options.input } : {}),
    ...(options.timeoutMs !== undefined ? { timeoutMs: options.timeoutMs } : {}),
  });
}

/** Connects to 127.0.0.1:`port` until a reply comes (the server may not listen yet), and returns it. */
function askLocal(port: number): Promise<string> {
  return new Promise<string>((resolveReply, reject) => {
    const attempt = (left: number): void => {
      const socket = connect(port, '127.0.0.1');
      let got = '';
      socket.on('data', (d) => (got += d.toString()));
      socket.on('end', () => (got !== '' || left === 0 ? resolveReply(got) : setTimeout(() => attempt(left - 1), 100)));
      socket.on('error', (e) => (left === 0 ? reject(e) : setTimeout(() => attempt(left - 1), 100)));
    };
    attempt(50);
  });
}

/**
 * Runs `dockless ARGS` on a terminal (script(1)'s pseudo-terminal), typing
 * each input once the output so far matches its `after` (else after 10 s).
 */
function onTerminal(args: readonly string[], inputs: readonly { after: RegExp; type: string }[]): Promise<Result> {
  const command = [process.execPath, BIN, ...args].map((a) => `'${a.replaceAll("'", "'\\''")}'`).join(' ');
  return new Promise((resolvePromise) => {
    const p = spawn('script', ['-qfec', command, '/dev/null'], { env: { ...process.env, DOCKLESS_ROOT: join(base, 'dl'), DOCKLESS_NETWORK: 'none', TERM: 'xterm' }, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let next = 0;
    const type = (): void => {
      const input = inputs[next];
      if (input === undefined || !input.after.test(stdout)) return;
      next++;
      p.stdin.write(input.type);
      type();
    };
    const timer = setInterval(() => {
      // Nothing came to match: type it anyway, the assertions on the output will say what was missing.
      if (next < inputs.length) {
        p.stdin.write(inputs[next++]!.type);
      }
    }, 10_000);
    const killer = setTimeout(() => p.kill('SIGKILL'), 60_000);
    p.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
      type();
    });
    p.on('close', (code) => {
      clearInterval(timer);
      clearTimeout(killer);
      resolvePromise({ code: code ?? -1, stdout, stderr: '' });
    });
    type();
  });
}

async function ok(args: readonly string[], options?: Parameters<typeof dockless>[1]): Promise<string> {
  const r = await dockless(args, options);
  assert.equal(r.code, 0, `dockless ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
  return r.stdout;
}

const why = cannotRun() ?? (existsSync(BIN) ? undefined : 'dist/cli/bin.js is not built: run npm run build');

describe('dockless command line', { skip: why, concurrency: false }, () => {
  before(async () => {
    base = await mkdtemp(join(tmpdir(), 'dl-cli-'));
    await rootfsFromHost(join(base, 'rootfs'));
    await ok(['import', join(base, 'rootfs'), 'bb:1']);
  });
  after(async () => {
    // Whatever a failed test left running goes with the directory.
    const ids = (await dockless(['ps', '-aq', '--no-trunc'])).stdout.split('\n').filter((l) => l !== '');
    if (ids.length > 0) await dockless(['rm', '-f', ...ids]);
    await rm(base, { recursive: true, force: true });
  });

  it("run passes the command's output and exit code through; 127 for a command not found", async () => {
    assert.equal(await ok(['run', '--rm', 'bb:1', 'echo', 'hello']), 'hello\n');
    const three = await dockless(['run', '--rm', '-e', 'N=3', 'bb:1', 'sh', '-c', 'exit $N']);
    assert.equal(three.code, 3);
    const missing = await dockless(['run', '--rm', 'bb:1', 'no-such-command']);
    assert.equal(missing.code, 127, missing.stderr);
    const bad = await dockless(['run', '--memory', 'lots', 'bb:1', 'true']);
    assert.equal(bad.code, 125);
    assert.match(bad.stderr, /^dockless: --memory: invalid size `lots`/m);
    assert.doesNotMatch(bad.stderr, /at .*\.js:\d+/, 'no stack trace without --debug');
    const unknownImage = await dockless(['run', 'nosuch:9', 'true']);
    assert.equal(unknownImage.code, 125);
  });

  it('run -d, ps, exec, logs, inspect, top, stats, pause, stop, wait, rm', async () => {
    const id = (await ok(['run', '-d', '--init', '--name', 'cli-web', 'bb:1', 'sh', '-c', 'echo started; echo oops >&2; exec sleep 300'])).trim();
    assert.match(id, /^[0-9a-f]{64}$/);
    const table = await ok(['ps']);
    assert.match(table, /^CONTAINER ID +IMAGE +COMMAND +CREATED +STATUS +PORTS +NAMES$/m);
    assert.match(table, new RegExp(`^${id.slice(0, 12)} +bb:1 +"sh -c echo started;…" .* Up .* cli-web$`, 'm'));
    assert.equal(await ok(['ps', '-q']), `${id.slice(0, 12)}\n`);
    assert.equal(await ok(['ps', '--format', '{{.Names}}:{{.State}}']), 'cli-web:running\n');
    assert.equal(await ok(['exec', '-e', 'X=42', 'cli-web', 'sh', '-c', 'echo $X']), '42\n');
    assert.equal((await dockless(['exec', 'cli-web', 'sh', '-c', 'exit 7'])).code, 7);
    assert.equal(await ok(['inspect', '--format', '{{.State.Status}} {{.Name}}', 'cli-web']), 'running /cli-web\n');
    const inspected = JSON.parse(await ok(['inspect', id])) as { Id: string }[];
    assert.equal(inspected[0]!.Id, id);
    assert.match(await ok(['top', 'cli-web']), /sleep 300/);
    assert.match(await ok(['stats', '--no-stream', 'cli-web']), /^CONTAINER ID +NAME +CPU TIME +MEM USAGE \/ LIMIT +PIDS$/m);
    await ok(['pause', 'cli-web']);
    assert.match(await ok(['ps']), /\(Paused\)/);
    await ok(['unpause', 'cli-web']);
    assert.equal(await ok(['stop', '-t', '1', 'cli-web']), 'cli-web\n');
    assert.equal(await ok(['wait', 'cli-web']), '143\n');
    const logs = await dockless(['logs', 'cli-web']);
    assert.equal(logs.stdout, 'started\n');
    assert.equal(logs.stderr, 'oops\n');
    assert.match(await ok(['ps', '-a', '--filter', 'status=exited']), /Exited \(143\)/);
    assert.equal(await ok(['rm', 'cli-web']), 'cli-web\n');
    const gone = await dockless(['inspect', 'cli-web']);
    assert.equal(gone.code, 1);
    assert.match(gone.stderr, /No such object: cli-web/);
  });

  it('restart: a running and an exited container run again with the same id; an unknown one exits 1', async () => {
    const id = (await ok(['run', '-d', '--name', 'cli-restart', 'bb:1', 'sh', '-c', 'echo up; exec sleep 300'])).trim();
    const pid = (await ok(['inspect', '-f', '{{.State.Pid}}', 'cli-restart'])).trim();
    assert.equal(await ok(['restart', '-t', '1', 'cli-restart']), 'cli-restart\n');
    assert.equal((await ok(['inspect', '-f', '{{.Id}} {{.State.Status}}', 'cli-restart'])).trim(), `${id} running`);
    assert.notEqual((await ok(['inspect', '-f', '{{.State.Pid}}', 'cli-restart'])).trim(), pid);
    await ok(['kill', 'cli-restart']);
    assert.equal(await ok(['wait', 'cli-restart']), '137\n');
    await ok(['restart', 'cli-restart']);
    assert.match(await ok(['ps', '--format', '{{.Names}} {{.Status}}']), /cli-restart Up/);
    assert.equal((await dockless(['logs', 'cli-restart'])).stdout, 'up\nup\nup\n');
    const missing = await dockless(['restart', 'cli-no-such']);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /cli-no-such/);
    await ok(['rm', '-f', 'cli-restart']);
  });

  it('update changes the limits of running containers and prints each name; a bad value exits 1, no flag 125', async () => {
    await ok(['run', '-d', '--name', 'cli-upd-a', '-m', '64m', 'bb:1', 'sleep', '300']);
    await ok(['run', '-d', '--name', 'cli-upd-b', 'bb:1', 'sleep', '300']);
    try {
      assert.equal(await ok(['update', '--memory', '128m', '--pids-limit', '50', '--cpus', '0.5', 'cli-upd-a', 'cli-upd-b']), 'cli-upd-a\ncli-upd-b\n');
      for (const name of ['cli-upd-a', 'cli-upd-b']) {
        assert.equal(await ok(['inspect', '-f', '{{.HostConfig.Memory}} {{.HostConfig.PidsLimit}} {{.HostConfig.NanoCpus}}', name]), `${128 * 1024 * 1024} 50 500000000\n`);
        assert.match(await ok(['stats', '--no-stream', name]), /128MiB/);
      }
      const bad = await dockless(['update', '--memory', '1k', 'cli-upd-a']);
      assert.equal(bad.code, 1);
      assert.match(bad.stderr, /resources\.memory must be/);
      const none = await dockless(['update', 'cli-upd-a']);
      assert.equal(none.code, 125);
      assert.match(none.stderr, /one or more flags/);
    } finally {
      await dockless(['rm', '-f', 'cli-upd-a', 'cli-upd-b']);
    }
  });

  it('system check prints the leak audit: a planted orphan fails it (exit 1), the next command reaps it', async () => {
    const clean = await dockless(['system', 'check']);
    assert.equal(clean.code, 0, clean.stdout + clean.stderr);
    assert.match(clean.stdout, /^audit: \d+ found, none orphaned$/m);
    // A container record whose owner is gone and that is not detached: what a SIGKILLed owner leaves.
    const id = 'f'.repeat(64);
    const state = join(base, 'dl', 'state', id);
    await mkdir(state, { recursive: true });
    await writeFile(join(state, 'state.json'), JSON.stringify({ version: 1, id, created: new Date().toISOString(), pid: 4_194_305, pidStart: 1, ownerPid: 4_194_305, ownerStart: 1, detached: false, rootfs: '/', cmd: ['true'], stdio: 'ignore' }));
    const dirty = await dockless(['system', 'check', '--format', '{{.Kind}} {{.ID}} {{.Orphaned}}']);
    assert.equal(dirty.code, 1);
    assert.match(dirty.stdout, new RegExp(`^container ${id.slice(0, 12)} yes$`, 'm'));
    assert.match(dirty.stdout, /^audit: 1 of \d+ orphaned/m);
    // The next command that opens the state directory takes it (system prune would too, but it also
    // takes empty cgroups of other users' runtimes under this machine's shared cgroup root).
    await ok(['ps', '-a']);
    assert.ok(!existsSync(state));
    assert.equal((await dockless(['system', 'check'])).code, 0);
  });

  it('create then start; kill; rm -f', async () => {
    const id = (await ok(['create', '--init', '--name', 'cli-created', 'bb:1', 'sleep', '300'])).trim();
    assert.match(await ok(['ps', '-a', '--format', '{{.Names}} {{.Status}}']), /cli-created Created/);
    await ok(['start', 'cli-created']);
    assert.match(await ok(['ps', '--format', '{{.ID}}']), new RegExp(id.slice(0, 12)));
    await ok(['kill', '-s', 'TERM', 'cli-created']);
    assert.equal(await ok(['wait', 'cli-created']), '143\n');
    await ok(['run', '-d', '--name', 'cli-force', 'bb:1', 'sleep', '300']);
    assert.equal((await dockless(['rm', 'cli-force'])).code, 1, 'a running container is not removed without -f');
    await ok(['rm', '-f', 'cli-force', 'cli-created']);
    assert.equal(await ok(['ps', '-aq']), '');
  });

  it('run -p publishes a port (port shows it), --health-cmd reports health, -t gives a terminal, pods', async () => {
    await ok(['run', '-d', '--name', 'cli-port', '-p', '127.0.0.1::7000', '--health-cmd', 'true', '--health-interval', '200ms', 'bb:1', 'sh', '-c', 'while :; do echo served | nc -l -p 7000; done']);
    try {
      const mapped = (await ok(['port', 'cli-port', '7000'])).trim();
      assert.match(mapped, /^127\.0\.0\.1:\d+$/);
      assert.match(await ok(['port', 'cli-port']), /^7000\/tcp -> 127\.0\.0\.1:\d+$/m);
      const port = Number(mapped.split(':')[1]);
      const reply = await new Promise<string>((resolveReply, reject) => {
        const attempt = (left: number): void => {
          const socket = connect(port, '127.0.0.1');
          let got = '';
          socket.on('data', (d) => (got += d.toString()));
          socket.on('end', () => (got !== '' || left === 0 ? resolveReply(got) : setTimeout(() => attempt(left - 1), 100)));
          socket.on('error', (e) => (left === 0 ? reject(e) : setTimeout(() => attempt(left - 1), 100)));
        };
        attempt(50);
      });
      assert.equal(reply, 'served\n');
      let health = '';
      for (let i = 0; i < 50 && health !== 'healthy'; i++) {
        health = (await ok(['inspect', '--format', '{{.State.Health.Status}}', 'cli-port'])).trim();
        await new Promise((r) => setTimeout(r, 100));
      }
      assert.equal(health, 'healthy');
      assert.equal((await dockless(['port', 'cli-port', '9999'])).code, 1);
    } finally {
      await dockless(['rm', '-f', 'cli-port']);
    }
    assert.equal(await ok(['run', '--rm', '-t', 'bb:1', 'tty']), '/dev/pts/0\r\n');
    const bad = await dockless(['run', '--restart', 'sometimes', 'bb:1', 'true']);
    assert.equal(bad.code, 125);
    const pod = (await ok(['pod', 'create', '--name', 'cli-pod'])).trim();
    assert.match(await ok(['pod', 'ls']), /cli-pod +Running/);
    assert.equal(await ok(['run', '--rm', '--pod', 'cli-pod', 'bb:1', 'hostname']), `${pod.slice(0, 12)}\n`);
    await ok(['pod', 'rm', 'cli-pod']);
    await ok(['pod', 'create', '--name', 'cli-ppod', '-p', '127.0.0.1::7001']);
    try {
      const published = (JSON.parse(await ok(['pod', 'inspect', 'cli-ppod'])) as { ports: { host: number; container: number }[] }).ports;
      assert.equal(published[0]?.container, 7001);
      await ok(['run', '-d', '--pod', 'cli-ppod', 'bb:1', 'sh', '-c', 'echo pod-served | nc -l -p 7001']);
      assert.equal(await askLocal(published[0]!.host), 'pod-served\n');
    } finally {
      await ok(['pod', 'rm', '-f', 'cli-ppod']);
    }
    assert.match(await ok(['network', 'ls']), /^NETWORK ID +NAME +DRIVER +SCOPE$/m);
  });

  it('run -t and exec -t of a command that ends at once print all its output, every time', async () => {
    // Both lost it some of the time: run when pid 1 ended before the shim took its terminal (1 run in 7
    // printed nothing), exec when the CLI stopped relaying as soon as wait() resolved (1 in 2 or more).
    await ok(['run', '-d', '--name', 'cli-ttyloop', 'bb:1', 'sleep', '300']);
    try {
      for (let i = 0; i < 20; i++) {
        assert.equal(await ok(['run', '--rm', '-t', 'bb:1', 'tty']), '/dev/pts/0\r\n', `run ${i}`);
        assert.equal(await ok(['exec', '-t', 'cli-ttyloop', 'tty']), '/dev/pts/0\r\n', `exec ${i}`);
      }
    } finally {
      await dockless(['rm', '-f', 'cli-ttyloop']);
    }
  });

  it('cp copies into and out of a container, as files and as tar streams', async () => {
    await ok(['run', '-d', '--name', 'cli-cp', 'bb:1', 'sleep', '300']);
    try {
      const host = join(base, 'cp');
      await mkdir(host, { recursive: true });
      await writeFile(join(host, 'in.txt'), 'from the host\n');
      await ok(['cp', join(host, 'in.txt'), 'cli-cp:/tmp/']);
      assert.equal(await ok(['exec', 'cli-cp', 'cat', '/tmp/in.txt']), 'from the host\n');
      await ok(['exec', 'cli-cp', 'sh', '-c', 'mkdir -p /out/sub && echo made > /out/sub/f']);
      await ok(['cp', 'cli-cp:/out', join(host, 'out')]);
      assert.equal(await readFile(join(host, 'out', 'sub', 'f'), 'utf8'), 'made\n');
      const tar = await dockless(['cp', 'cli-cp:/out/sub/f', '-']);
      assert.equal(tar.code, 0);
      assert.match(tar.stdout, /made/);
    } finally {
      await dockless(['rm', '-f', 'cli-cp']);
    }
  });

  it('images, tag, history, save and load, rmi', async () => {
    await ok(['tag', 'bb:1', 'bb:copy']);
    const images = await ok(['images']);
    assert.match(images, /^REPOSITORY +TAG +IMAGE ID +CREATED +SIZE$/m);
    assert.match(images, /^bb +copy +[0-9a-f]{12} /m);
    assert.match(await ok(['images', '--format', '{{.Repository}}:{{.Tag}}']), /^bb:1$/m);
    // images --filter was refused; scripts for Docker use reference= and dangling=.
    assert.equal(await ok(['images', '-f', 'reference=bb:c*', '--format', '{{.Repository}}:{{.Tag}}']), 'bb:copy\n');
    assert.doesNotMatch(await ok(['images', '-f', 'dangling=true']), /^bb /m);
    assert.match(await ok(['history', 'bb:1']), /^IMAGE +CREATED +CREATED BY +SIZE +COMMENT$/m);
    const archive = join(base, 'bb.tar');
    await ok(['save', '-o', archive, 'bb:copy']);
    assert.match(await ok(['rmi', 'bb:copy']), /Untagged: .*bb:copy/);
    assert.doesNotMatch(await ok(['images']), /copy/);
    assert.match(await ok(['load', '-i', archive]), /Loaded image: .*bb:copy/);
    assert.match(await ok(['images']), /^bb +copy /m);
    assert.match(await ok(['image', 'inspect', '--format', '{{.digest}}', 'bb:copy']), /^sha256:[0-9a-f]{64}$/m);
  });

  it('build with build args, cached steps marked, plain progress on a pipe', async () => {
    const context = join(base, 'ctx');
    await mkdir(context, { recursive: true });
    await writeFile(join(context, 'Dockerfile'), 'FROM bb:1\nARG GREETING=hi\nCOPY msg /msg\nRUN echo "$GREETING $(cat /msg)" > /out\nCMD ["cat", "/out"]\n');
    await writeFile(join(context, 'msg'), 'world');
    const first = await dockless(['build', '-t', 'greet:1', '--build-arg', 'GREETING=hello', context]);
    assert.equal(first.code, 0, first.stderr);
    assert.match(first.stderr, /#\d\/\d+ RUN .*: running/);
    assert.doesNotMatch(first.stderr, /\x1b/, 'no escape codes when stderr is not a terminal');
    assert.match(first.stdout, /Successfully tagged greet:1/);
    assert.equal(await ok(['run', '--rm', 'greet:1']), 'hello world\n');
    const again = await dockless(['build', '-t', 'greet:1', '--build-arg', 'GREETING=hello', context]);
    assert.match(again.stderr, /RUN .*: CACHED/);
    assert.match(await ok(['build', '-q', '--build-arg', 'GREETING=hello', context]), /^sha256:[0-9a-f]{64}\n$/);
  });

  it('push to and pull from a local registry with per-layer progress; login and logout', async (t) => {
    const missing = await registryMissing();
    if (missing !== undefined) return t.skip(missing);
    await using registry: RegistryFixture = await startRegistry({ type: 'htpasswd', users: { alice: 's3cret' } });
    const authFile = join(base, 'auth.json');
    const env = { REGISTRY_AUTH_FILE: authFile };
    const ref = `${registry.host}/cli/bb:1`;
    await ok(['tag', 'bb:1', ref]);
    const denied = await dockless(['push', ref], { env });
    assert.equal(denied.code, 125, 'a push without credentials fails');
    const wrong = await dockless(['login', '-u', 'alice', '--password-stdin', registry.host], { env, input: 'nope\n' });
    assert.notEqual(wrong.code, 0);
    assert.equal(existsSync(authFile), false, 'refused credentials are not saved');
    assert.match(await ok(['login', '-u', 'alice', '--password-stdin', registry.host], { env, input: 's3cret\n' }), /Login Succeeded/);
    const pushed = await dockless(['push', ref], { env });
    assert.equal(pushed.code, 0, pushed.stderr);
    assert.match(pushed.stderr, /[0-9a-f]{12}: Pushed/);
    assert.match(pushed.stdout, /digest: sha256:[0-9a-f]{64}/);
    await ok(['rmi', ref]);
    const pulled = await dockless(['pull', ref], { env });
    assert.equal(pulled.code, 0, pulled.stderr);
    assert.match(pulled.stderr, /pulling 1 layer/);
    assert.match(pulled.stderr, /[0-9a-f]{12}: (Pull complete|Already exists)/);
    assert.match(pulled.stdout, /^Digest: sha256:/m);
    await ok(['logout', registry.host], { env });
    assert.doesNotMatch(await readFile(authFile, 'utf8'), /127\.0\.0\.1/);
  });

  it('run -d --rm removes the container once it exits, with no dockless process left waiting in the foreground', async () => {
    // Docker's daemon removes a `run -d --rm` container when it exits; without a daemon, a background waiter must.
    const id = (await ok(['run', '-d', '--rm', '--name', 'cli-autorm', 'bb:1', 'sh', '-c', 'sleep 0.5; exit 3'])).trim();
    assert.match(id, /^[0-9a-f]{64}$/);
    let left = '';
    for (let i = 0; i < 100; i++) {
      left = await ok(['ps', '-aq', '--no-trunc']);
      if (!left.includes(id)) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.doesNotMatch(left, new RegExp(id), 'the container is removed after it exits');
    assert.equal((await dockless(['run', '-d', '--rm', '--restart', 'always', 'bb:1', 'true'])).code, 125, '--rm and --restart conflict, as in Docker');
  });

  it('run --rm leaves no container, no trash entry after the next command, and no process behind', async () => {
    // The command hands its removed container's files to a detached helper `rm` instead of waiting for their deletion: it must finish and end.
    const helper = resolve('native/build/dockless-helper');
    const removers = async (): Promise<string[]> => {
      const found: string[] = [];
      for (const pid of (await readdir('/proc')).filter((e) => /^\d+$/.test(e))) {
        const argv = (await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '')).split('\0');
        if (argv[0] === helper && argv[1] === 'rm') found.push(pid);
      }
      return found;
    };
    const trashes = [join(base, 'dl', 'state', '.trash'), join(base, 'dl', 'data', 'containers', '.trash')];
    const inTrash = async () => (await Promise.all(trashes.map(async (t) => readdir(t).catch(() => [] as string[])))).flat();
    const before = await inTrash();
    assert.equal(await ok(['run', '--rm', '--name', 'cli-rm-gone', 'bb:1', 'sh', '-c', 'echo gone > /tmp/x']), '');
    // While it runs, what it deletes is a live process's: the audit must not call it leaked.
    const check = await dockless(['system', 'check']);
    assert.equal(check.code, 0, check.stdout + check.stderr);
    for (let i = 0; i < 200 && (await removers()).length > 0; i++) await new Promise((r) => setTimeout(r, 50));
    assert.deepEqual(await removers(), [], 'no helper rm left running');
    assert.equal(await ok(['ps', '-aq']), '');
    assert.deepEqual(await inTrash(), before);
    assert.equal((await dockless(['system', 'check'])).code, 0);
  });

  it('run without --rm keeps the container once it exits: ps -a, logs, start -a runs it again, rm', async () => {
    // It died with the command line and was reaped: `ps -a`, `logs` and `rm` of it failed, unlike Docker's.
    const r = await dockless(['run', '--name', 'cli-kept', 'bb:1', 'sh', '-c', 'echo kept; exit 3']);
    assert.deepEqual([r.code, r.stdout], [3, 'kept\n'], r.stderr);
    assert.match(await ok(['ps', '-a', '--filter', 'name=^cli-kept$', '--format', '{{.Status}}']), /^Exited \(3\)/);
    assert.equal(await ok(['logs', 'cli-kept']), 'kept\n');
    // Docker's exited=, before= and since= filters were refused.
    assert.equal(await ok(['ps', '-f', 'exited=3', '-f', 'name=^cli-kept$', '--format', '{{.Names}}']), 'cli-kept\n', 'exited= shows exited containers without -a');
    assert.equal(await ok(['ps', '-a', '-f', 'exited=0', '-f', 'name=^cli-kept$']).then((o) => o.split('\n').length), 2, 'only the heading');
    const later = (await ok(['create', 'bb:1', 'true'])).trim().slice(0, 12);
    assert.equal(await ok(['ps', '-a', '-f', 'since=cli-kept', '--format', '{{.ID}}']), `${later}\n`);
    assert.match(await ok(['ps', '-a', '-f', `before=${later}`, '--format', '{{.Names}}']), /^cli-kept$/m);
    await ok(['rm', later]);
    // A name not found made inspect print nothing for the others; Docker prints them, then the error.
    const inspected = await dockless(['inspect', '-f', '{{.Name}}', 'cli-kept', 'nosuch']);
    assert.deepEqual([inspected.code, inspected.stdout], [1, '/cli-kept\n']);
    assert.match(inspected.stderr, /No such object: nosuch/);
    const again = await dockless(['start', '-a', 'cli-kept']);
    assert.deepEqual([again.code, again.stdout], [3, 'kept\n'], `start -a of an exited container runs it again, showing only this run: ${again.stderr}`);
    assert.equal(await ok(['logs', 'cli-kept']), 'kept\nkept\n');
    await ok(['rm', 'cli-kept']);
    assert.equal(await ok(['ps', '-aq', '--filter', 'name=^cli-kept$']), '');
  });

  it('create --rm: the container is removed once it exits after start (and start -a removes it too)', async () => {
    // Docker accepts `create --rm` (HostConfig.AutoRemove); dockless refused the flag.
    const id = (await ok(['create', '--rm', '--name', 'cli-create-rm', 'bb:1', 'sh', '-c', 'sleep 0.5; exit 4'])).trim();
    assert.match(id, /^[0-9a-f]{64}$/);
    assert.equal(await ok(['inspect', '--format', '{{.HostConfig.AutoRemove}}', 'cli-create-rm']), 'true\n');
    assert.match(await ok(['ps', '-a', '--filter', 'name=^cli-create-rm$', '--format', '{{.Status}}']), /^Created/, 'created, it stays until started');
    await ok(['start', 'cli-create-rm']);
    let left = id;
    for (let i = 0; i < 100 && left.includes(id); i++) {
      await new Promise((r) => setTimeout(r, 100));
      left = await ok(['ps', '-aq', '--no-trunc']);
    }
    assert.doesNotMatch(left, new RegExp(id), 'removed once it exited');
    await ok(['create', '--rm', '--name', 'cli-create-rma', 'bb:1', 'sh', '-c', 'echo attached; exit 5']);
    const attached = await dockless(['start', '-a', 'cli-create-rma']);
    assert.deepEqual([attached.code, attached.stdout], [5, 'attached\n'], attached.stderr);
    assert.equal(await ok(['ps', '-aq', '--filter', 'name=^cli-create-rma$']), '', 'start -a removes it once it exits');
    assert.equal(await ok(['inspect', '--format', '{{.HostConfig.AutoRemove}}', (await ok(['create', 'bb:1', 'true'])).trim()]), 'false\n');
    assert.equal((await dockless(['create', '--rm', '--restart', 'always', 'bb:1', 'true'])).code, 125, '--rm and --restart conflict, as in Docker');
  });

  it('ps shows health in STATUS as Docker does and filters on it (health=starting|healthy|unhealthy|none)', async () => {
    // Health was only read by inspect: ps showed "Up …" with no health, and --filter health= was refused.
    await ok(['run', '-d', '--name', 'cli-healthy', '--health-cmd', 'true', '--health-interval', '200ms', 'bb:1', 'sleep', '300']);
    await ok(['run', '-d', '--name', 'cli-unhealthy', '--health-cmd', 'false', '--health-interval', '200ms', '--health-retries', '1', 'bb:1', 'sleep', '300']);
    await ok(['run', '-d', '--name', 'cli-starting', '--health-cmd', 'false', '--health-interval', '1h', '--health-start-period', '1h', 'bb:1', 'sleep', '300']);
    await ok(['run', '-d', '--name', 'cli-nohealth', 'bb:1', 'sleep', '300']);
    try {
      const statusOf = async (name: string): Promise<string> => (await ok(['ps', '--filter', `name=^${name}$`, '--format', '{{.Status}}'])).trim();
      let healthy = '';
      let unhealthy = '';
      for (let i = 0; i < 50 && !(healthy.endsWith('(healthy)') && unhealthy.endsWith('(unhealthy)')); i++) {
        await new Promise((r) => setTimeout(r, 200));
        [healthy, unhealthy] = await Promise.all([statusOf('cli-healthy'), statusOf('cli-unhealthy')]);
      }
      assert.match(healthy, /^Up .* \(healthy\)$/);
      assert.match(unhealthy, /^Up .* \(unhealthy\)$/);
      assert.match(await statusOf('cli-starting'), /^Up .* \(health: starting\)$/);
      assert.match(await statusOf('cli-nohealth'), /^Up [^(]*$/);
      const only = async (value: string): Promise<string> => (await ok(['ps', '--filter', `health=${value}`, '--format', '{{.Names}}'])).split('\n').filter((n) => n.startsWith('cli-')).sort().join(' ');
      assert.equal(await only('healthy'), 'cli-healthy');
      assert.equal(await only('unhealthy'), 'cli-unhealthy');
      assert.equal(await only('starting'), 'cli-starting');
      assert.equal(await only('none'), 'cli-nohealth');
      assert.equal((await dockless(['ps', '--filter', 'health=fine'])).code, 125);
    } finally {
      await dockless(['rm', '-f', 'cli-healthy', 'cli-unhealthy', 'cli-starting', 'cli-nohealth']);
    }
  });

  it('import -c applies Dockerfile changes, from a directory and from a tar; build --label labels the image', async () => {
    // Both were refused before: a Docker user's `import --change` and `build --label` failed with 125.
    const changes = ['-c', 'CMD ["cat", "/etc/greeting"]', '-c', 'ENV GREETING=hi', '-c', 'LABEL team=core', '-c', 'WORKDIR /tmp', '-c', 'EXPOSE 8080', '-c', 'USER 1:1'];
    await writeFile(join(base, 'rootfs', 'etc', 'greeting'), 'imported\n');
    await ok(['import', ...changes, join(base, 'rootfs'), 'bb:changed']);
    const config = JSON.parse(await ok(['image', 'inspect', '--format', '{{json .config.config}}', 'bb:changed'])) as Record<string, unknown>;
    assert.deepEqual(config.Cmd, ['cat', '/etc/greeting']);
    assert.ok((config.Env as string[]).includes('GREETING=hi'));
    assert.deepEqual(config.Labels, { team: 'core' });
    assert.equal(config.WorkingDir, '/tmp');
    assert.deepEqual(config.ExposedPorts, { '8080/tcp': {} });
    assert.equal(config.User, '1:1');
    assert.equal(await ok(['run', '--rm', 'bb:changed']), 'imported\n');
    assert.equal(await ok(['run', '--rm', 'bb:changed', 'pwd']), '/tmp\n');
    const tar = join(base, 'rootfs.tar');
    await new Promise<void>((resolveTar, reject) => spawn('tar', ['-C', join(base, 'rootfs'), '-cf', tar, '.'], { stdio: 'ignore' }).on('close', (c) => (c === 0 ? resolveTar() : reject(new Error(`tar exited ${c}`)))));
    await ok(['import', '--change', 'ENTRYPOINT ["echo", "from-tar"]', tar, 'bb:fromtar']);
    assert.equal(await ok(['run', '--rm', 'bb:fromtar']), 'from-tar\n');
    await ok(['import', '-c', 'CMD ["echo", "from-stdin"]', '-', 'bb:fromstdin'], { input: await readFile(tar) });
    assert.equal(await ok(['run', '--rm', 'bb:fromstdin']), 'from-stdin\n');
    const bad = await dockless(['import', '-c', 'FROB x', join(base, 'rootfs'), 'bb:bad']);
    assert.equal(bad.code, 125);
    assert.match(bad.stderr, /unknown instruction/);

    const context = join(base, 'ctx-label');
    await mkdir(context, { recursive: true });
    await writeFile(join(context, 'Dockerfile'), 'FROM bb:1\nLABEL stage=own\n');
    await ok(['build', '-q', '-t', 'labelled:1', '--label', 'org.example.version=2', '--label', 'stage=overridden', context]);
    assert.deepEqual(JSON.parse(await ok(['image', 'inspect', '--format', '{{json .config.config.Labels}}', 'labelled:1'])), { 'org.example.version': '2', stage: 'overridden' });
  });

  it('the detach keys leave a container running: run -it, attach, start -ai; start -a ends with its exit code', async (t) => {
    // ctrl-p ctrl-q did nothing before: run -it could not leave its container, and start had no -i.
    if (!existsSync('/usr/bin/script')) return t.skip('script(1) from util-linux is not installed');
    const running = async (name: string): Promise<string> => (await ok(['ps', '-a', '--filter', `name=^${name}$`, '--format', '{{.Status}}'])).trim();
    try {
      const run = await onTerminal(['run', '-it', '--name', 'cli-detach', 'bb:1', 'sh'], [
        { after: /# $/m, type: 'echo one""two\r' },
        { after: /onetwo/, type: '\x10\x11' },
      ]);
      assert.equal(run.code, 0, run.stdout);
      assert.match(run.stdout, /onetwo/);
      assert.match(await running('cli-detach'), /^Up /, 'the container goes on after ctrl-p ctrl-q');
      const attached = await onTerminal(['attach', '--detach-keys', 'ctrl-x,x', 'cli-detach'], [
        { after: /^/, type: 'echo three""four\r' },
        { after: /threefour/, type: '\x18x' },
      ]);
      assert.equal(attached.code, 0, attached.stdout);
      assert.match(attached.stdout, /threefour/);
      assert.match(await running('cli-detach'), /^Up /, 'attach --detach-keys leaves it running too');
      const last = await onTerminal(['attach', 'cli-detach'], [{ after: /^/, type: 'exit 7\r' }]);
      assert.equal(last.code, 7, last.stdout);

      await ok(['create', '-it', '--name', 'cli-startai', 'bb:1', 'sh', '-c', 'read x; echo "got $x"; read y; echo "then $y"']);
      const first = await onTerminal(['start', '-ai', 'cli-startai'], [
        { after: /^/, type: 'one\r' },
        { after: /got one/, type: '\x10\x11' },
      ]);
      assert.equal(first.code, 0, first.stdout);
      assert.match(await running('cli-startai'), /^Up /);
      const second = await onTerminal(['start', '-ai', 'cli-startai'], [{ after: /^/, type: 'two\r' }]);
      assert.equal(second.code, 0, second.stdout);
      assert.match(second.stdout, /then two/);
      assert.doesNotMatch(second.stdout, /got one/, 'attaching to a running container shows its output from now on');
    } finally {
      await dockless(['rm', '-f', 'cli-detach', 'cli-startai']);
    }
    await ok(['create', '--name', 'cli-start-a', 'bb:1', 'sh', '-c', 'echo started; exit 4']);
    const started = await dockless(['start', '-a', 'cli-start-a']);
    assert.equal(started.code, 4, started.stderr);
    assert.equal(started.stdout, 'started\n');
    assert.equal(started.stderr, '');
    await ok(['rm', 'cli-start-a']);
  });

  it('shows live progress on a terminal (redrawn lines)', async (t) => {
    if (!existsSync('/usr/bin/script')) return t.skip('script(1) from util-linux is not installed');
    const context = join(base, 'ctx-tty');
    await mkdir(context, { recursive: true });
    await writeFile(join(context, 'Dockerfile'), 'FROM bb:1\nRUN echo one; sleep 0.3; echo two\n');
    const command = `${process.execPath} ${BIN} build --no-cache ${context}`;
    const child = await new Promise<Result>((resolvePromise) => {
      const p = spawn('script', ['-qfec', command, '/dev/null'], { env: { ...process.env, DOCKLESS_ROOT: join(base, 'dl'), DOCKLESS_NETWORK: 'none', TERM: 'xterm', CI: '' }, stdio: ['pipe', 'pipe', 'pipe'] });
      let stdout = '';
      p.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
      p.on('close', (code) => resolvePromise({ code: code ?? -1, stdout, stderr: '' }));
      p.stdin.end();
    });
    assert.equal(child.code, 0, child.stdout);
    assert.match(child.stdout, /\x1b\[/, 'the terminal gets escape codes that redraw the lines');
    assert.match(child.stdout, /RUN .*echo one.*: DONE/);
  });

  it('completion for bash completes commands and flags', async () => {
    const script = await ok(['completion', 'bash']);
    const file = join(base, 'completion.bash');
    await writeFile(file, script);
    const complete = (words: string[]): Promise<string> =>
      new Promise((resolvePromise) => {
        const line = `source ${file}; COMP_WORDS=(${words.map((w) => `'${w}'`).join(' ')}); COMP_CWORD=${words.length - 1}; _dockless; echo "\${COMPREPLY[@]}"`;
        const p = spawn('bash', ['-c', line], { stdio: ['ignore', 'pipe', 'inherit'] });
        let out = '';
        p.stdout.on('data', (d: Buffer) => (out += d.toString()));
        p.on('close', () => resolvePromise(out.trim()));
      });
    assert.equal(await complete(['dockless', 'sys']), 'system');
    assert.match(await complete(['dockless', 'system', '']), /df prune check/);
    assert.match(await complete(['dockless', 'run', '--mem']), /--memory --memory-swap/);
  });

  it('runs a script written for docker, with docker aliased to dockless', async (t) => {
    const missing = await registryMissing();
    if (missing !== undefined) return t.skip(missing);
    await using registry = await startRegistry();
    const binDir = join(base, 'alias-bin');
    await mkdir(binDir, { recursive: true });
    await writeFile(join(binDir, 'docker'), `#!/bin/sh\nexec ${process.execPath} ${BIN} "$@"\n`, { mode: 0o755 });
    const r = await new Promise<Result>((resolvePromise) => {
      const p = spawn('bash', [resolve('test/compat/docker-compat.sh'), 'bb:1', registry.host, join(base, 'compat')], {
        env: { ...process.env, PATH: `${binDir}:${process.env.PATH ?? ''}`, DOCKLESS_ROOT: join(base, 'dl'), DOCKLESS_NETWORK: 'none', CI: 'true' },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stdout = '';
      let stderr = '';
      p.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
      p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      p.on('close', (code) => resolvePromise({ code: code ?? -1, stdout, stderr }));
    });
    assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
    assert.match(r.stdout, /compat: all steps passed/);
  });
});
