// Healthcheck, restart and events policy, pure or on plain files: no root, no helper.
import { strict as assert } from 'node:assert';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { InvalidArgumentError } from '../../src/errors.js';
import { appendEvent, appendEventLineSync, eventLine, EVENTS_MAX_BYTES, eventsFile, matchesFilters, readEvents, type ContainerEvent, type NewEvent } from '../../src/runtime/events.js';
import { freshHealth, healthPlan, nextHealth, type HealthLogEntry } from '../../src/runtime/health.js';
import { restartArgs, restartPlan } from '../../src/runtime/restart.js';

const ID = 'a'.repeat(64);

test('healthPlan: the spec over the image over Docker defaults; image durations are ns, the spec’s ms', () => {
  assert.equal(healthPlan(undefined, undefined, undefined), undefined);
  assert.deepEqual(healthPlan(undefined, { Test: ['CMD-SHELL', 'curl -f localhost'], Interval: 2e9, Retries: 5 }, undefined), {
    cmd: ['/bin/sh', '-c', 'curl -f localhost'],
    interval: 2000,
    timeout: 30_000,
    retries: 5,
    startPeriod: 0,
    startInterval: 5000,
  });
  assert.deepEqual(healthPlan({ interval: 100 }, { Test: ['CMD', 'probe', '-x'], Timeout: 1e9 }, ['/bin/bash', '-c'])?.cmd, ['probe', '-x']);
  assert.deepEqual(healthPlan({ test: 'ok' }, undefined, ['/bin/bash', '-c'])?.cmd, ['/bin/bash', '-c', 'ok']);
  assert.deepEqual(healthPlan({ test: ['CMD-SHELL', 'a b'] }, undefined, undefined)?.cmd, ['/bin/sh', '-c', 'a b']);
  assert.deepEqual(healthPlan({ test: ['probe', '1'] }, undefined, undefined)?.cmd, ['probe', '1']);
  assert.equal(healthPlan({ test: 'none' }, { Test: ['CMD', 'x'] }, undefined), undefined);
  assert.equal(healthPlan(undefined, { Test: ['NONE'] }, undefined), undefined);
  for (const bad of [{ test: '' }, { test: [] as string[] }, { interval: 0 }, { timeout: -1 }, { retries: 0 }, { retries: 1.5 }, { test: ['CMD'] }]) {
    assert.throws(() => healthPlan(bad, { Test: ['CMD', 'x'] }, undefined), InvalidArgumentError, JSON.stringify(bad));
  }
});

const plan = { cmd: ['x'], interval: 1000, timeout: 100, retries: 3, startPeriod: 5000, startInterval: 200 };
const entry = (code: number, n = 0): HealthLogEntry => ({ Start: `s${n}`, End: `e${n}`, ExitCode: code, Output: `o${n}` });

test('nextHealth: healthy after one success; unhealthy after `retries` failures; start-period failures not counted while starting', () => {
  let r = freshHealth(plan, 0, 0);
  assert.equal(r.Status, 'starting');
  assert.equal(r.nextCheck, 200);
  r = nextHealth(r, plan, entry(1), 1000);
  assert.deepEqual([r.Status, r.FailingStreak, r.nextCheck], ['starting', 0, 1200]);
  r = nextHealth(r, plan, entry(0), 1500);
  assert.deepEqual([r.Status, r.FailingStreak, r.nextCheck], ['healthy', 0, 2500]);
  // Once healthy, a failure counts even inside the start period.
  r = nextHealth(r, plan, entry(1), 2000);
  assert.deepEqual([r.Status, r.FailingStreak], ['healthy', 1]);
  r = nextHealth(r, plan, entry(-1), 6000);
  r = nextHealth(r, plan, entry(2), 7000);
  assert.deepEqual([r.Status, r.FailingStreak], ['unhealthy', 3]);
  r = nextHealth(r, plan, entry(0), 8000);
  assert.deepEqual([r.Status, r.FailingStreak], ['healthy', 0]);
});

test('nextHealth keeps the last 5 results', () => {
  let r = freshHealth({ ...plan, startPeriod: 0 }, 0, 0);
  for (let i = 0; i < 8; i++) r = nextHealth(r, plan, entry(1, i), 1000 * i);
  assert.deepEqual(r.Log.map((e) => e.Output), ['o3', 'o4', 'o5', 'o6', 'o7']);
});

test('restartPlan and its helper options', () => {
  assert.deepEqual(restartPlan(undefined), { policy: 'no', maxRetries: 0 });
  assert.deepEqual(restartArgs(restartPlan('no'), '/r'), []);
  assert.deepEqual(restartArgs(restartPlan('always'), '/r'), ['--restart', 'always', '--restart-file', '/r']);
  assert.deepEqual(restartArgs(restartPlan({ policy: 'on-failure', maxRetries: 4 }), '/r'), [
    '--restart', 'on-failure', '--restart-max', '4', '--restart-file', '/r',
  ]);
  for (const bad of ['sometimes', { policy: 'always' }, { policy: 'on-failure', maxRetries: -1 }, { policy: 'on-failure', maxRetries: 1.5 }, null]) {
    assert.throws(() => restartPlan(bad as never), InvalidArgumentError, JSON.stringify(bad));
  }
});

function event(action: ContainerEvent['action'], attributes: ContainerEvent['attributes'] = {}): ContainerEvent {
  return { type: 'container', action, id: ID, time: new Date(0), attributes };
}

test('matchesFilters: container by id, prefix or name; event; label key or key=value; image', () => {
  const e = event('die', { name: 'web', image: 'nginx:1', labels: { team: 'red', tier: '' } });
  assert.ok(matchesFilters(e, undefined));
  assert.ok(matchesFilters(e, { container: ['web'] }));
  assert.ok(matchesFilters(e, { container: ['aaaa'] }));
  assert.ok(!matchesFilters(e, { container: ['db', 'bbb'] }));
  assert.ok(matchesFilters(e, { event: ['start', 'die'] }));
  assert.ok(!matchesFilters(e, { event: ['start'] }));
  assert.ok(matchesFilters(e, { label: ['team=red', 'tier'] }));
  assert.ok(!matchesFilters(e, { label: ['team=blue'] }));
  assert.ok(!matchesFilters(e, { label: ['owner'] }));
  assert.ok(matchesFilters(e, { image: ['nginx:1'] }));
  assert.ok(!matchesFilters(e, { image: ['nginx:2'] }));
});

async function replay(dir: string, since = 0): Promise<ContainerEvent[]> {
  const out: ContainerEvent[] = [];
  for await (const e of readEvents(dir, { since, until: Date.now() })) out.push(e);
  return out;
}

test('concurrent appends never interleave, and a line too long for one atomic write drops its labels', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'dl-events-'));
  try {
    const labels = Object.fromEntries(Array.from({ length: 200 }, (_, i) => [`label-${i}`, 'x'.repeat(40)]));
    await Promise.all(Array.from({ length: 200 }, (_, i) => appendEvent(dir, { action: 'die', id: ID, attributes: { exitCode: i, ...(i === 7 ? { labels } : {}) } })));
    const lines = (await readFile(eventsFile(dir), 'utf8')).split('\n').filter(Boolean);
    assert.equal(lines.length, 200);
    for (const line of lines) assert.ok(Buffer.byteLength(line) < 4096 && JSON.parse(line).action === 'die');
    const events = await replay(dir);
    assert.deepEqual(events.map((e) => e.attributes.exitCode).sort((a, b) => a! - b!), Array.from({ length: 200 }, (_, i) => i));
    assert.equal(events.find((e) => e.attributes.exitCode === 7)?.attributes.labels, undefined);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

// The same bound for the append a process's first removal makes on its own thread (appendEventLineSync).
const appenders: [string, (dir: string, event: NewEvent) => Promise<void>][] = [
  ['appendEvent', appendEvent],
  ['appendEventLineSync', async (dir, event) => appendEventLineSync(eventsFile(dir), eventLine(event))],
];
for (const [name, append] of appenders) {
  test(`the events file is rotated past its bound; since replays the rotated generation first (${name})`, async () => {
    const dir = await mkdtemp(join(tmpdir(), 'dl-events-'));
    try {
      await writeFile(eventsFile(dir), `${JSON.stringify({ type: 'container', action: 'create', id: ID, time: 1, attributes: {} })}\n`.padEnd(EVENTS_MAX_BYTES, ' '));
      await append(dir, { action: 'start', id: ID });
      assert.ok((await stat(`${eventsFile(dir)}.1`)).size >= EVENTS_MAX_BYTES);
      assert.ok((await stat(eventsFile(dir))).size < 4096);
      assert.deepEqual((await replay(dir)).map((e) => e.action), ['create', 'start']);
      assert.deepEqual((await replay(dir, Date.now() - 60_000)).map((e) => e.action), ['start']);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
}

test('events: unknown filters, event names and bad times are InvalidArgumentErrors', async () => {
  for (const options of [{ filters: { colour: ['red'] } }, { filters: { event: ['explode'] } }, { since: Number.NaN }, { filters: { label: 'a' } }]) {
    assert.throws(() => readEvents('/nonexistent', options as never), InvalidArgumentError, JSON.stringify(options));
  }
});
