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
