// Published ports and rootless outbound networking.
//
// Every case runs inside a throwaway "host" network namespace (a child under
// `unshare --net`, as netavark's own suite does), so the machine's addresses and
// firewall are never touched: it gets a host address with the default route and
// a second "WAN" address where outside servers listen. The cases
// (test/fixtures/ports-cases.ts) run there once as root, and once as a real
// non-root user created for the run, with a /dev/net/tun of mode 0666 bind-mounted
// in a private mount namespace (the machine's own is 0600: CI's .ci/run opens it
// up instead), and once more without it.
import { strict as assert } from 'node:assert';
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { cannotRun, text } from '../fixtures/world.js';
import { CASES } from '../fixtures/ports-cases.js';

const repo = join(import.meta.dirname, '..', '..');
const HOST_IP = '10.77.0.1';
const WAN_IP = '10.78.0.1';

function readFileSyncOr(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}

function hasCommand(name: string): boolean {
  return ['/usr/sbin', '/usr/bin', '/sbin', '/bin'].some((d) => existsSync(join(d, name)));
}

function whyNot(rootless: boolean): string | undefined {
  const base = cannotRun();
  if (base !== undefined) return base;
  for (const cmd of ['unshare', 'ip', 'setpriv']) if (!hasCommand(cmd)) return `${cmd} missing (util-linux, iproute2)`;
  if (!rootless) return undefined;
  if (Number(readFileSync('/proc/sys/user/max_user_namespaces', 'utf8')) === 0) return 'user namespaces are disabled';
  for (const cmd of ['newuidmap', 'useradd', 'userdel']) if (!hasCommand(cmd)) return `${cmd} missing`;
  if (!hasCommand('slirp4netns') || !hasCommand('pasta')) return 'slirp4netns or pasta missing: apt-get install -y slirp4netns passt';
  return undefined;
}

/** The throwaway host network: a veth pair inside the new namespace carries both addresses. */
const NETWORK_SETUP = [
  'set -e',
  'ip link set lo up',
  'ip link add dl0 type veth peer name dl1',
  `ip addr add ${HOST_IP}/24 dev dl0`,
  `ip addr add ${WAN_IP}/24 dev dl1`,
  'ip link set dl0 up',
  'ip link set dl1 up',
  'ip route add default via 10.77.0.254 dev dl0',
].join('\n');

/** A /dev/net/tun of `mode`, in this mount namespace only: 666 the user may open, 600 it may not (whatever the machine's is; CI opens it to users). */
const tunSetup = (mode: '666' | '600'): string =>
  ['d=$(mktemp -d)', 'mount -t tmpfs tmpfs "$d"', `mknod -m ${mode} "$d/tun" c 10 200`, 'mount --bind "$d/tun" /dev/net/tun'].join('\n');
const TUN_SETUP = tunSetup('666');

interface CaseResult {
  name: string;
  ok: boolean;
  error?: string;
  skipped?: string;
}

async function runCases(script: string, env: Record<string, string>): Promise<{ results: Map<string, CaseResult>; failure: string }> {
  const child = spawn('unshare', ['--net', '--mount', '--propagation', 'private', 'sh', '-c', script, 'sh'], {
    cwd: repo,
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...env, ...(process.env.DEBUG !== undefined ? { DEBUG: process.env.DEBUG } : {}), ...(process.env.DL_PORTS_ONLY !== undefined ? { DL_PORTS_ONLY: process.env.DL_PORTS_ONLY } : {}) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const [out, err, code] = await Promise.all([text(child.stdout), text(child.stderr), new Promise<number | null>((r) => child.on('close', r))]);
  if (process.env.DEBUG !== undefined) process.stderr.write(err);
  const results = new Map<string, CaseResult>();
  for (const line of out.split('\n')) {
    if (!line.startsWith('RESULT ')) continue;
    const r = JSON.parse(line.slice(7)) as CaseResult;
    results.set(r.name, r);
  }
  return { results, failure: `child exited ${code}; stderr:\n${err.slice(-4000)}` };
}

function caseTests(mode: 'root' | 'rootless' | 'no-tun', get: () => { results: Map<string, CaseResult>; failure: string }): void {
  for (const c of CASES) {
    if (mode === 'no-tun' ? c.only !== 'no-tun' : c.only !== undefined && c.only !== mode) continue;
    it(c.name, (t) => {
      const only = process.env.DL_PORTS_ONLY;
      if (only !== undefined && !c.name.includes(only)) {
        console.log(`# skipped ${c.name}: DL_PORTS_ONLY=${only}`);
        t.skip(`DL_PORTS_ONLY=${only}`);
        return;
      }
      const { results, failure } = get();
      const r = results.get(c.name);
      assert.ok(r !== undefined, `the case did not run: ${failure}`);
      if (r.skipped !== undefined) {
        console.log(`# skipped ${c.name}: ${r.skipped}`);
        t.skip(r.skipped);
        return;
      }
      assert.ok(r.ok, r.error);
    });
  }
}

const skipRoot = whyNot(false);
const skipRootless = whyNot(true);
if (skipRoot !== undefined) console.log(`# skipping published-port tests as root: ${skipRoot}`);
if (skipRootless !== undefined) console.log(`# skipping rootless published-port tests: ${skipRootless}`);

describe('published ports as root, in a throwaway host network namespace', { skip: skipRoot }, () => {
  let work = '';
  let run = { results: new Map<string, CaseResult>(), failure: '' };
  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'dl-ports-'));
    const script = `${NETWORK_SETUP}\nexec "${process.execPath}" --import tsx test/fixtures/ports-cases.ts`;
    run = await runCases(script, { DL_PORTS_WORK: work, DL_PORTS_HOST_IP: HOST_IP, DL_PORTS_WAN_IP: WAN_IP });
  });
  after(async () => {
    await rm(work, { recursive: true, force: true });
  });
  caseTests('root', () => run);
});

describe('published ports and outbound networking as a real non-root user, in a throwaway host network namespace', { skip: skipRootless }, () => {
  const user = `dl-ports-${process.pid}`;
  let run = { results: new Map<string, CaseResult>(), failure: '' };
  let noTun = { results: new Map<string, CaseResult>(), failure: '' };
  let uid = -1;
  before(async () => {
    execFileSync('useradd', ['-m', '-s', '/bin/sh', user]);
    uid = Number(execFileSync('id', ['-u', user], { encoding: 'utf8' }));
    const gid = Number(execFileSync('id', ['-g', user], { encoding: 'utf8' }));
    const listed = (file: string) => readFileSync(file, 'utf8').split('\n').some((l) => l.startsWith(`${user}:`));
    if (!listed('/etc/subuid') || !listed('/etc/subgid')) {
      const start = 1_600_000_000 + (process.pid % 1000) * 65536;
      execFileSync('usermod', ['--add-subuids', `${start}-${start + 65535}`, '--add-subgids', `${start}-${start + 65535}`, user]);
    }
    const home = execFileSync('sh', ['-c', `getent passwd ${user} | cut -d: -f6`], { encoding: 'utf8' }).trim();
    for (const dir of ['work', 'work-notun', 'run']) {
      await mkdir(join(home, dir), { recursive: true, mode: 0o700 });
      execFileSync('chown', [`${uid}:${gid}`, join(home, dir)]);
    }
    const asUser = (workDir: string, extra = '') =>
      `exec setpriv --reuid=${uid} --regid=${gid} --clear-groups env -i PATH=/usr/bin:/bin HOME=${home} USER=${user} ` +
      `XDG_RUNTIME_DIR=${join(home, 'run')} DL_PORTS_WORK=${join(home, workDir)} DL_PORTS_HOST_IP=${HOST_IP} DL_PORTS_WAN_IP=${WAN_IP} ${extra}` +
      `${process.env.DEBUG !== undefined ? `DEBUG=${process.env.DEBUG} ` : ''}${process.env.DL_PORTS_ONLY !== undefined ? `DL_PORTS_ONLY='${process.env.DL_PORTS_ONLY}' ` : ''}"${process.execPath}" --import tsx test/fixtures/ports-cases.ts`;
    run = await runCases(`${NETWORK_SETUP}\n${TUN_SETUP}\n${asUser('work')}`, {});
    noTun = await runCases(`${NETWORK_SETUP}\n${tunSetup('600')}\n${asUser('work-notun', 'DL_PORTS_NO_TUN=1 ')}`, {});
  });
  after(() => {
    // A case that failed half-way may leave the user's detached network namespace (its holder, forwarder, slirp4netns).
    for (const entry of readdirSync('/proc')) {
      if (!/^\d+$/.test(entry) || uid < 0) continue;
      const owner = Number(/^Uid:\s+(\d+)/m.exec(readFileSyncOr(`/proc/${entry}/status`))?.[1]);
      if (owner !== uid) continue;
      try {
        process.kill(Number(entry), 'SIGKILL');
      } catch {
        /* gone meanwhile */
      }
    }
    execFileSync('userdel', ['-r', '-f', user], { stdio: 'ignore' });
  });
  caseTests('rootless', () => run);
  caseTests('no-tun', () => noTun);
});
