// The `dockless` command at a terminal and in its lifecycle corners: what an
// attached terminal shows before a newline, the detach keys of `exec -it`,
// `run -it --rm` whose command is killed, and the rootless `--userns` modes as
// a real non-root user. Each command is a subprocess (the package's bin),
// DOCKLESS_NETWORK=none as in cli.test.ts.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { rootfsFromHost } from '../../src/runtime/host-rootfs.js';
import { CLI_BIN, CliTerminal, runCli } from '../fixtures/cli-terminal.js';
import { cannotRun, cgroupDirs, hostMounts } from '../fixtures/world.js';

let base = '';
const env = (): NodeJS.ProcessEnv => ({ DOCKLESS_ROOT: join(base, 'dl'), DOCKLESS_NETWORK: 'none' });
const dockless = (args: readonly string[], input?: string) => runCli(args, env(), input !== undefined ? { input } : {});

async function ok(args: readonly string[]): Promise<string> {
  const r = await dockless(args);
  assert.equal(r.code, 0, `dockless ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
  return r.stdout;
}

/** Polls `check` every 200 ms until it is true; false after `ms`. */
async function eventually(check: () => Promise<boolean>, ms: number): Promise<boolean> {
  for (const end = Date.now() + ms; Date.now() < end; await sleep(200)) if (await check()) return true;
  return check();
}

/** The exit code, or 'running' if the command has not ended within `ms`. */
const exitWithin = (t: CliTerminal, ms: number): Promise<number | 'running'> => Promise.race([t.exited(), sleep(ms, 'running' as const)]);

const why = cannotRun() ?? (!existsSync(CLI_BIN) ? 'dist/bundle/cli.js is not built: run npm run build' : !existsSync('/usr/bin/script') ? 'script(1) from util-linux is not installed' : undefined);
if (why !== undefined) console.log(`# skipping the dockless terminal tests: ${why}`);

describe('dockless at a terminal', { skip: why, concurrency: false }, () => {
  before(async () => {
    base = await mkdtemp(join(tmpdir(), 'dl-cli-term-'));
    await chmod(base, 0o755);
    await rootfsFromHost(join(base, 'rootfs'));
    await ok(['import', join(base, 'rootfs'), 'bb:1']);
  });
  after(async () => {
    const ids = (await dockless(['ps', '-aq', '--no-trunc'])).stdout.split('\n').filter((l) => l !== '');
    if (ids.length > 0) await dockless(['rm', '-f', ...ids]);
    await rm(base, { recursive: true, force: true });
  });

  it('start -ai and attach show a prompt before its newline; logs gives the line whole', async () => {
    // The log was written a line at a time, so a prompt reached an attached terminal only once its newline came: after the input it waits for.
    try {
      await ok(['create', '-it', '--name', 'term-prompt', 'bb:1', 'sh', '-c', 'printf "name> "; read x; echo "hello $x"; while :; do printf "again> "; read y; echo "got $y"; done']);
      const start = new CliTerminal(['start', '-ai', 'term-prompt'], env());
      try {
        await start.expect(/name> /);
        start.type('bob\r');
        await start.expect(/hello bob\s/);
        await start.expect(/again> $/);
        start.type('\x10\x11');
        assert.equal(await exitWithin(start, 10_000), 0, start.output);
      } finally {
        start.kill();
      }
      const attach = new CliTerminal(['attach', 'term-prompt'], env());
      try {
        // Attached from now on: what it wrote before is not shown, the next prompt is, before any newline.
        await sleep(500);
        attach.type('one\r');
        await attach.expect(/got one\s+again> $/);
        attach.type('\x10\x11');
        assert.equal(await exitWithin(attach, 10_000), 0, attach.output);
      } finally {
        attach.kill();
      }
      const logs = (await ok(['logs', '-t', 'term-prompt'])).split('\n').filter((l) => l !== '');
      const stamp = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z /;
      assert.ok(logs.every((l) => stamp.test(l)), `one time per line: ${JSON.stringify(logs)}`);
      assert.match(logs[0]!, /^\S+ name> bob\r$/);
      assert.match(logs[1]!, /^\S+ hello bob\r$/);
      assert.ok(logs.some((l) => /^\S+ again> one\r$/.test(l)), JSON.stringify(logs));
    } finally {
      await dockless(['rm', '-f', 'term-prompt']);
    }
  });

  it('exec -it leaves its command running on the detach keys, as run -it does', async () => {
    // exec -it had no detach keys: ctrl-p ctrl-q went to the command, and the only way out ended it.
    try {
      await ok(['run', '-d', '--name', 'term-exec', 'bb:1', 'sleep', '300']);
      const exec = new CliTerminal(['exec', '-it', 'term-exec', 'sh'], env());
      try {
        await exec.expect(/# /);
        exec.type('echo $$ > /tmp/exec.pid; echo wr""ote\r');
        await exec.expect(/wrote/);
        exec.type('\x10\x11');
        assert.equal(await exitWithin(exec, 10_000), 0, `exec -it ended by the detach keys: ${exec.output}`);
      } finally {
        exec.kill();
      }
      assert.equal(await ok(['exec', 'term-exec', 'sh', '-c', 'kill -0 "$(cat /tmp/exec.pid)" && echo alive']), 'alive\n', 'the detached shell goes on');

      // A closed terminal is no detach: the shell goes with it.
      const closed = new CliTerminal(['exec', '-it', 'term-exec', 'sh'], env());
      try {
        await closed.expect(/# /);
        closed.type('echo $$ > /tmp/closed.pid; echo wr""ote\r');
        await closed.expect(/wrote/);
      } finally {
        closed.kill();
      }
      assert.ok(await eventually(async () => (await dockless(['exec', 'term-exec', 'sh', '-c', 'kill -0 "$(cat /tmp/closed.pid)"'])).code !== 0, 10_000), 'the shell of a closed terminal ends');

      const other = new CliTerminal(['exec', '-it', '--detach-keys', 'ctrl-x,x', 'term-exec', 'sh'], env());
      try {
        await other.expect(/# /);
        other.type('\x10\x11echo st""ill\r');
        await other.expect(/still/);
        other.type('\x18x');
        assert.equal(await exitWithin(other, 10_000), 0, other.output);
      } finally {
        other.kill();
      }
    } finally {
      await dockless(['rm', '-f', 'term-exec']);
    }
  });

  it('run: the command is pid 1, as Docker runs it; --init puts an init there', async () => {
    // --init did nothing: dockless's init was pid 1 with or without it.
    assert.equal(await ok(['run', '--rm', 'bb:1', 'sh', '-c', 'echo $$']), '1\n');
    assert.notEqual(await ok(['run', '--rm', '--init', 'bb:1', 'sh', '-c', 'echo $$']), '1\n');
  });

  it('run -it --rm whose command is SIGKILLed does not leave its container behind', async () => {
    // The container of run -it is detached (so ctrl-p ctrl-q can leave it); with --rm it outlived a killed command, running, for ever.
    const cgroupsBefore = new Set(await cgroupDirs());
    const run = new CliTerminal(['run', '-it', '--rm', '--name', 'term-rm', 'bb:1', 'sleep', '300'], env());
    try {
      const id = async (): Promise<string> => (await ok(['ps', '-aq', '--no-trunc', '--filter', 'name=^term-rm$'])).trim();
      assert.ok(await eventually(async () => (await ok(['ps', '-q', '--filter', 'name=^term-rm$'])).trim() !== '', 20_000), `the container runs: ${run.output}`);
      const full = await id();
      // The remover needs the command to be up a moment: killed at once, it must still do its job.
      process.kill(run.cliPid(), 'SIGKILL');
      assert.ok(await eventually(async () => (await id()) === '', 15_000), 'the container is gone after its command was SIGKILLed');
      assert.deepEqual((await hostMounts()).filter((m) => m.includes(full)), []);
      assert.deepEqual((await cgroupDirs()).filter((d) => !cgroupsBefore.has(d) && d.includes(full.slice(0, 12))), []);
      assert.deepEqual((await readdir(join(base, 'dl'), { recursive: true })).filter((p) => p.includes(full)), []);
    } finally {
      run.kill();
      await dockless(['rm', '-f', 'term-rm']);
    }
    // Detached by the keys, it goes on, and is removed once it exits.
    const detach = new CliTerminal(['run', '-it', '--rm', '--name', 'term-rm2', 'bb:1', 'sh'], env());
    try {
      await detach.expect(/# /);
      detach.type('\x10\x11');
      assert.equal(await exitWithin(detach, 10_000), 0, detach.output);
      await sleep(1500);
      assert.match(await ok(['ps', '--filter', 'name=^term-rm2$', '--format', '{{.Status}}']), /^Up /, 'detached, it outlives its command');
      await ok(['kill', 'term-rm2']);
      assert.ok(await eventually(async () => (await ok(['ps', '-aq', '--filter', 'name=^term-rm2$'])).trim() === '', 15_000), 'removed once it exited');
    } finally {
      detach.kill();
      await dockless(['rm', '-f', 'term-rm2']);
    }
  });
});

function whyNotRootless(): string | undefined {
  const has = (name: string): boolean => ['/usr/sbin', '/usr/bin', '/sbin', '/bin'].some((d) => existsSync(join(d, name)));
  const base = cannotRun() ?? (!existsSync(CLI_BIN) ? 'dist/bundle/cli.js is not built: run npm run build' : undefined);
  if (base !== undefined) return base;
  if (Number(readFileSync('/proc/sys/user/max_user_namespaces', 'utf8')) === 0) return 'user namespaces are disabled (user.max_user_namespaces = 0)';
  if (!has('newuidmap') || !has('newgidmap')) return 'newuidmap/newgidmap missing: apt-get install -y uidmap';
  if (!has('useradd') || !has('userdel')) return 'useradd/userdel missing';
  return undefined;
}
const whyNotUser = whyNotRootless();
if (whyNotUser !== undefined) console.log(`# skipping the dockless --userns keep-id/nomap tests: ${whyNotUser}`);

describe('dockless --userns keep-id and nomap, as a real non-root user', { skip: whyNotUser, concurrency: false }, () => {
  const user = `dl-cliuser-${process.pid}`;
  let uid = 0;
  let gid = 0;
  let home = '';
  let subuid = 0;
  let subgid = 0;
  let userEnv: NodeJS.ProcessEnv = {};
  const asUser = (args: readonly string[]) => runCli(args, userEnv, { uid, gid });

  before(async () => {
    execFileSync('useradd', ['-m', '-s', '/bin/sh', user]);
    uid = Number(execFileSync('id', ['-u', user], { encoding: 'utf8' }));
    gid = Number(execFileSync('id', ['-g', user], { encoding: 'utf8' }));
    const listed = (file: string): string | undefined => readFileSync(file, 'utf8').split('\n').find((l) => l.startsWith(`${user}:`));
    if (listed('/etc/subuid') === undefined || listed('/etc/subgid') === undefined) {
      const start = 1_600_000_000 + (process.pid % 1000) * 65536;
      execFileSync('usermod', ['--add-subuids', `${start}-${start + 65535}`, '--add-subgids', `${start}-${start + 65535}`, user]);
    }
    subuid = Number(listed('/etc/subuid')!.split(':')[1]);
    subgid = Number(listed('/etc/subgid')!.split(':')[1]);
    home = execFileSync('sh', ['-c', `getent passwd ${user} | cut -d: -f6`], { encoding: 'utf8' }).trim();
    await rootfsFromHost(join(home, 'rootfs'));
    await mkdir(join(home, 'run'), { mode: 0o700 });
    await mkdir(join(home, 'vol'));
    await writeFile(join(home, 'vol', 'mine'), 'the user\'s own file\n');
    execFileSync('chown', ['-R', `${uid}:${gid}`, home]);
    userEnv = { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: home, USER: user, XDG_RUNTIME_DIR: join(home, 'run'), DOCKLESS_ROOT: join(home, 'dl'), DOCKLESS_NETWORK: 'none' };
    const imported = await asUser(['import', join(home, 'rootfs'), 'bb:1']);
    assert.equal(imported.code, 0, imported.stderr);
  });
  after(async () => {
    const ids = (await asUser(['ps', '-aq', '--no-trunc'])).stdout.split('\n').filter((l) => l !== '');
    if (ids.length > 0) await asUser(['rm', '-f', ...ids]);
    // userdel -r takes the home directory and the /etc/subuid and /etc/subgid entries.
    execFileSync('userdel', ['-r', '-f', user], { stdio: 'ignore' });
  });

  it('keep-id: the user is itself inside, owns its files on a volume, and what the container writes there is its own', async () => {
    // Only unit-tested before: the maps were checked, never a container run with them.
    const r = await asUser(['run', '--rm', '--userns', 'keep-id', '-v', `${join(home, 'vol')}:/data`, 'bb:1', 'sh', '-c', 'id -u; id -g; stat -c %u:%g /data/mine; echo new > /data/keep-id; cat /proc/self/uid_map']);
    assert.equal(r.code, 0, r.stderr);
    const [inUid, inGid, mine, ...map] = r.stdout.trim().split('\n');
    assert.equal(inUid, String(uid));
    assert.equal(inGid, String(gid));
    assert.equal(mine, `${uid}:${gid}`, 'the user\'s file is its own inside');
    assert.ok(map.some((l) => l.trim().split(/\s+/).join(' ') === `${uid} ${uid} 1`), `its own uid is mapped to itself: ${map.join('|')}`);
    const written = await stat(join(home, 'vol', 'keep-id'));
    assert.deepEqual([written.uid, written.gid], [uid, gid], 'what it writes on the volume is the user\'s on the host');
  });

  it('keep-id: the image\'s files keep their owners (root\'s are root\'s inside)', async () => {
    // The store held image root's files as the user's uid, which keep-id maps to itself: they showed as the user's inside.
    const r = await asUser(['run', '--rm', '--userns', 'keep-id', '-u', '0', 'bb:1', 'sh', '-c', 'stat -c %u:%g /etc /bin/sh; echo x > /etc/written && stat -c %u:%g /etc/written']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, '0:0\n0:0\n0:0\n');
    assert.equal((await asUser(['ps', '-aq'])).stdout, '', 'removed (--rm)');
  });

  it("nomap: root inside is a subordinate id, the user's own files belong to nobody there", async () => {
    // The overlay was mounted in the container's namespace, which leaves out the user who owns the store's files: EACCES, no container ran.
    await chmod(join(home, 'vol'), 0o777);
    const r = await asUser(['run', '--rm', '--userns', 'nomap', '-v', `${join(home, 'vol')}:/data`, 'bb:1', 'sh', '-c', 'id -u; stat -c %u:%g /etc /; echo x > /etc/written; stat -c %u:%g /data/mine; echo new > /data/nomap; cat /proc/self/uid_map']);
    assert.equal(r.code, 0, r.stderr);
    const [inUid, etc, top, mine, ...map] = r.stdout.trim().split('\n');
    assert.equal(inUid, '0');
    assert.deepEqual([etc, top], ['0:0', '0:0'], "the image's root files and the root directory are root's inside");
    assert.equal(mine, '65534:65534', 'an unmapped owner shows as the overflow id');
    assert.ok(!map.some((l) => l.trim().split(/\s+/)[1] === String(uid)), `the user's uid is not mapped: ${map.join('|')}`);
    const written = await stat(join(home, 'vol', 'nomap'));
    assert.deepEqual([written.uid, written.gid], [subuid, subgid], "root's writes are the first subordinate ids on the host");
    assert.equal((await asUser(['ps', '-aq'])).stdout, '', 'removed (--rm), its subordinate-owned upper directory too');
  });
});
