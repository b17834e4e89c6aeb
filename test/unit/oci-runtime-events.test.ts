// `dockless-runtime events --stats`: the cgroup files of v1 and v2 read into
// runc's stats JSON (the shape its consumers decode), and --interval's durations.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { InvalidArgumentError } from '../../src/errors.js';
import { parseBlkioV1, parseInterval, parseIoStatV2, readRuncStats, stringifyCounters } from '../../src/oci-runtime/events.js';

const fake = (files: Record<string, string>) => (path: string) => files[path];

describe('dockless-runtime events', () => {
  it('reads v1 controllers into runc stats: cpuacct ticks as ns, throttling, memory with swap, pids, blkio', () => {
    const stats = readRuncStats(
      [
        { dir: '/cg/cpuacct/c', version: 1, controllers: ['cpuacct'] },
        { dir: '/cg/cpu/c', version: 1, controllers: ['cpu'] },
        { dir: '/cg/memory/c', version: 1, controllers: ['memory'] },
        { dir: '/cg/pids/c', version: 1, controllers: ['pids'] },
        { dir: '/cg/blkio/c', version: 1, controllers: ['blkio'] },
      ],
      fake({
        '/cg/cpuacct/c/cpuacct.usage': '123456789\n',
        '/cg/cpuacct/c/cpuacct.usage_percpu': '100 200 \n',
        '/cg/cpuacct/c/cpuacct.stat': 'user 7\nsystem 3\n',
        '/cg/cpu/c/cpu.stat': 'nr_periods 10\nnr_throttled 2\nthrottled_time 5000\n',
        '/cg/memory/c/memory.limit_in_bytes': '67108864\n',
        '/cg/memory/c/memory.usage_in_bytes': '1048576\n',
        '/cg/memory/c/memory.max_usage_in_bytes': '2097152\n',
        '/cg/memory/c/memory.failcnt': '0\n',
        '/cg/memory/c/memory.memsw.limit_in_bytes': '9223372036854771712\n',
        '/cg/memory/c/memory.stat': 'cache 4096\nrss 8192\n',
        '/cg/pids/c/pids.current': '3\n',
        '/cg/pids/c/pids.max': 'max\n',
        '/cg/blkio/c/blkio.io_service_bytes_recursive': '',
        '/cg/blkio/c/blkio.throttle.io_service_bytes_recursive': '8:0 Read 4096\n8:0 Write 0\nTotal 4096\n',
      }),
    );
    assert.deepEqual(stats.cpu, {
      usage: { total: 123456789, percpu: [100, 200], kernel: 30_000_000, user: 70_000_000 },
      throttling: { periods: 10, throttledPeriods: 2, throttledTime: 5000 },
    });
    assert.deepEqual(stats.memory, {
      cache: 4096,
      usage: { limit: 67108864, usage: 1048576, max: 2097152, failcnt: 0 },
      swap: { limit: 9223372036854771712n, failcnt: 0 },
      raw: { cache: 4096, rss: 8192 },
    });
    assert.deepEqual(stats.pids, { current: 3 });
    assert.deepEqual(stats.blkio, { ioServiceBytesRecursive: [{ major: 8, op: 'Read', value: 4096 }, { major: 8, op: 'Write' }] });
    assert.equal(
      JSON.stringify({ hugetlb: stats.hugetlb, intel_rdt: stats.intel_rdt, network_interfaces: stats.network_interfaces }),
      '{"hugetlb":{},"intel_rdt":{},"network_interfaces":null}',
    );
  });

  it('reads the unified hierarchy: cpu.stat in µs, memory.max "max", memory.events, io.stat', () => {
    const stats = readRuncStats(
      [{ dir: '/u/c', version: 2, controllers: [] }],
      fake({
        '/u/c/cpu.stat': 'usage_usec 1500\nuser_usec 1000\nsystem_usec 500\nnr_periods 4\nnr_throttled 1\nthrottled_usec 7\n',
        '/u/c/memory.current': '4096\n',
        '/u/c/memory.max': 'max\n',
        '/u/c/memory.events': 'low 0\nhigh 0\nmax 2\noom 0\noom_kill 0\n',
        '/u/c/memory.stat': 'anon 1\nfile 2\n',
        '/u/c/pids.current': '1\n',
        '/u/c/pids.max': '100\n',
        '/u/c/io.stat': '259:0 rbytes=512 wbytes=0 rios=1 wios=0 dbytes=0 dios=0\n',
      }),
    );
    assert.deepEqual(stats.cpu, { usage: { total: 1_500_000, kernel: 500_000, user: 1_000_000 }, throttling: { periods: 4, throttledPeriods: 1, throttledTime: 7000 } });
    assert.deepEqual(stats.memory.usage, { limit: 18446744073709551615n, usage: 4096, failcnt: 2 });
    // Consumers compare a limit with the kernel's "unlimited": every digit is printed, none rounded.
    assert.equal(stringifyCounters(stats.memory.usage), '{"limit":18446744073709551615,"usage":4096,"failcnt":2}');
    assert.equal(stats.memory.cache, 2);
    assert.deepEqual(stats.pids, { current: 1, limit: 100 });
    assert.deepEqual(stats.blkio, {
      ioServiceBytesRecursive: [{ major: 259, op: 'Read', value: 512 }, { major: 259, op: 'Write' }],
      ioServicedRecursive: [{ major: 259, op: 'Read', value: 1 }, { major: 259, op: 'Write' }],
    });
  });

  it('a container without cgroups has zero figures, not an error', () => {
    const stats = readRuncStats([], fake({}));
    assert.deepEqual(stats.cpu.usage, { kernel: 0, user: 0 });
    assert.deepEqual(stats.pids, {});
    assert.deepEqual(stats.blkio, {});
  });

  it('parses blkio and io.stat lines, skipping totals and junk', () => {
    assert.deepEqual(parseBlkioV1('8:16 Sync 2\nTotal 2\ngarbage\n'), [{ major: 8, minor: 16, op: 'Sync', value: 2 }]);
    assert.deepEqual(parseIoStatV2('nonsense\n'), { bytes: [], ios: [] });
  });

  it('--interval takes Go durations and refuses the rest', () => {
    assert.equal(parseInterval('5s'), 5000);
    assert.equal(parseInterval('250ms'), 250);
    assert.equal(parseInterval('1m30s'), 90_000);
    for (const bad of ['', '5', 's', '-1s', '0s', '5 s', '1x']) assert.throws(() => parseInterval(bad), InvalidArgumentError, bad);
  });
});
