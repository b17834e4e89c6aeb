import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import { InvalidArgumentError, PermissionError } from '../../src/errors.js';
import { outboundArgv } from '../../src/runtime/forwarder.js';
import {
  checkPortPrivilege,
  expandPortSpec,
  forwardPortArgs,
  inspectPorts,
  parsePortSpec,
  parsePorts,
  type PortSpec,
  type PublishedPort,
} from '../../src/runtime/ports.js';
import { checkOutboundChoice, planPublish } from '../../src/runtime/publish.js';

const p = (container: number, host: number, hostIp: string, protocol: 'tcp' | 'udp' = 'tcp'): PublishedPort => ({
  container,
  host,
  hostIp,
  protocol,
});

test("Docker's short forms parse as `docker run -p` reads them", () => {
  const cases: [string, PublishedPort][] = [
    ['5432', p(5432, 0, '0.0.0.0')],
    ['8080:80', p(80, 8080, '0.0.0.0')],
    ['127.0.0.1:8080:80', p(80, 8080, '127.0.0.1')],
    ['127.0.0.1::5432/udp', p(5432, 0, '127.0.0.1', 'udp')],
    ['53/udp', p(53, 0, '0.0.0.0', 'udp')],
    [':80', p(80, 0, '0.0.0.0')],
    ['0:80/tcp', p(80, 0, '0.0.0.0')],
    ['[::1]:8080:80', p(80, 8080, '::1')],
    ['[::]::80/udp', p(80, 0, '::', 'udp')],
    ['10.0.0.5:65535:1', p(1, 65535, '10.0.0.5')],
  ];
  for (const [spec, want] of cases) assert.deepEqual(parsePortSpec(spec), want, spec);
});

test('object specs get their defaults: any free host port, every IPv4 address, tcp', () => {
  assert.deepEqual(parsePortSpec({ container: 80 }), p(80, 0, '0.0.0.0'));
  assert.deepEqual(parsePortSpec({ container: 53, host: 5353, hostIp: '::1', protocol: 'udp' }), p(53, 5353, '::1', 'udp'));
});

test('a malformed port spec is an InvalidArgumentError that names the spec', () => {
  const bad: (PortSpec | string)[] = [
    '',
    'abc',
    '80/sctp',
    '70000',
    '0',
    '8080:0',
    '99999:80',
    '1.2.3:80:80',
    'localhost:80:80',
    '::1:8080:80',
    '[::1:8080:80',
    '[::1]8080:80',
    '1:2:3:4',
    '8000-8010:80-90',
    '80/',
    ' 80',
    { container: 0 },
    { container: 80.5 },
    { container: 80, host: -1 },
    { container: 80, host: 65536 },
    { container: 80, hostIp: 'example.com' },
    { container: 80, protocol: 'TCP' as 'tcp' },
    { container: 80, extra: 1 } as unknown as PortSpec,
    { container: '80' } as unknown as PortSpec,
    null as unknown as PortSpec,
  ];
  for (const spec of bad) {
    assert.throws(
      () => parsePortSpec(spec),
      (e: unknown) => {
        assert.ok(e instanceof InvalidArgumentError, `${JSON.stringify(spec)}: ${String(e)}`);
        const shown = typeof spec === 'string' ? `\`${spec}\`` : JSON.stringify(spec);
        assert.ok(e.message.includes(shown), `${e.message} names ${shown}`);
        return true;
      },
    );
  }
});

test('the same host address, port and protocol published twice is refused; a free port (0) never collides', () => {
  assert.throws(() => parsePorts(['8080:80', '127.0.0.1:9090:81', '8080:81']), InvalidArgumentError);
  assert.equal(parsePorts(['80', '80', '0:81', '8080:80/udp', '8080:80']).length, 5);
  assert.throws(() => parsePorts('80' as unknown as string[]), InvalidArgumentError);
});

test('a caller that is not root gets a PermissionError for a port below ip_unprivileged_port_start, root does not', () => {
  const ports = parsePorts(['80:80', '0:22']);
  assert.throws(() => checkPortPrivilege(ports, false, 1024), (e: unknown) => e instanceof PermissionError && /80\/tcp/.test(e.message));
  checkPortPrivilege(ports, true, 1024);
  checkPortPrivilege(parsePorts(['1024:80', '0:1']), false, 1024);
  checkPortPrivilege(ports, false, 0);
});

test("inspect's NetworkSettings.Ports has Docker's shape, ports as strings, one key per container port and protocol", () => {
  assert.deepEqual(inspectPorts([p(5432, 49153, '127.0.0.1'), p(5432, 49154, '::1'), p(53, 5353, '0.0.0.0', 'udp')]), {
    '5432/tcp': [
      { HostIp: '127.0.0.1', HostPort: '49153' },
      { HostIp: '::1', HostPort: '49154' },
    ],
    '53/udp': [{ HostIp: '0.0.0.0', HostPort: '5353' }],
  });
  assert.deepEqual(inspectPorts([]), {});
});

test("the forwarder's argv: one --port PROTO HOSTIP HOSTPORT CONTAINERPORT per port", () => {
  assert.deepEqual(forwardPortArgs([p(80, 0, '127.0.0.1'), p(53, 5353, '::1', 'udp')]), [
    '--port', 'tcp', '127.0.0.1', '0', '80',
    '--port', 'udp', '::1', '5353', '53',
  ]);
});

test('a rootless spec with ports gets outbound access; root, no ports, or a network other than bridge does not', () => {
  assert.equal(planPublish({ cmd: ['x'] }, true), undefined);
  assert.deepEqual(planPublish({ cmd: ['x'], ports: ['8080:80'] }, false), { ports: [p(80, 8080, '0.0.0.0')], outbound: false, tool: 'auto' });
  assert.equal(planPublish({ cmd: ['x'], ports: ['8080:80'] }, true)?.outbound, true);
  assert.equal(planPublish({ cmd: ['x'], ports: ['8080:80'] }, true, 'none')?.outbound, false);
  assert.equal(planPublish({ cmd: ['x'], network: 'bridge' } as never, true)?.outbound, true);
  assert.equal(planPublish({ cmd: ['x'], network: 'none' } as never, true), undefined);
  assert.throws(() => checkOutboundChoice('vpnkit' as never), InvalidArgumentError);
});

test('the outbound helper gets the namespaces from its own fds, never a path it could not open from inside', () => {
  for (const tool of ['pasta', 'slirp4netns'] as const) {
    const argv = outboundArgv(true, tool);
    if (argv === undefined) continue;
    assert.ok(argv.some((a) => a.endsWith('/proc/self/fd/3')), argv.join(' '));
    assert.ok(argv.some((a) => a.endsWith('/proc/self/fd/4')), argv.join(' '));
  }
  assert.equal(outboundArgv(true, 'none'), undefined);
});

// Port ranges used to be refused ("publish each port"), unlike `docker run -p 8000-8002:80-82`.
test("port ranges expand as Docker's: host and container ports pair in order, an empty host port is a free one each", () => {
  assert.deepEqual(parsePorts(['8000-8002:80-82']), [p(80, 8000, '0.0.0.0'), p(81, 8001, '0.0.0.0'), p(82, 8002, '0.0.0.0')]);
  assert.deepEqual(parsePorts(['127.0.0.1::53-54/udp']), [p(53, 0, '127.0.0.1', 'udp'), p(54, 0, '127.0.0.1', 'udp')]);
  assert.deepEqual(parsePorts(['[::1]:9000-9001:90-91', '70-71']), [p(90, 9000, '::1'), p(91, 9001, '::1'), p(70, 0, '0.0.0.0'), p(71, 0, '0.0.0.0')]);
  assert.deepEqual(expandPortSpec('8080:80'), [p(80, 8080, '0.0.0.0')]);
  assert.throws(() => parsePorts(['8000-8001:80', '8000:80-81']), InvalidArgumentError);
  for (const bad of ['8000-8002:80-81', '8002-8000:82-80', '0-2:80-82', '1-300', '8000-8001:80-81/sctp', '1.2.3::80-81', '80-', '8000-8001:80-81:1']) {
    assert.throws(
      () => parsePorts([bad]),
      (e: unknown) => e instanceof InvalidArgumentError && e.message.includes(`\`${bad}\``),
      bad,
    );
  }
  // Expanded ranges collide as single ports do, and their total is bounded by the forwarder's 256.
  assert.throws(() => parsePorts(['8000-8002:80-82', '8001:90']), InvalidArgumentError);
  assert.throws(() => parsePorts(['1000-1200:1000-1200', '2000-2100:2000-2100']), /more than 256/);
});

// `'8000-8010:80'` was refused ("a host port range needs a container port range"), unlike `docker run -p 8000-8010:80`.
test('a host range for one container port is one port whose host is picked from the range at the bind', () => {
  assert.deepEqual(parsePorts(['127.0.0.1:8000-8010:80/udp']), [{ ...p(80, 8000, '127.0.0.1', 'udp'), hostLast: 8010 }]);
  assert.deepEqual(parsePorts(['[::1]:8000-8010:80']), [{ ...p(80, 8000, '::1'), hostLast: 8010 }]);
  assert.deepEqual(parsePorts(['8000-8000:80']), [p(80, 8000, '0.0.0.0')]);
  // Two ranges over the same ports each get their own port of it.
  assert.equal(parsePorts(['8000-8010:80', '8000-8010:81']).length, 2);
  assert.deepEqual(forwardPortArgs(parsePorts(['127.0.0.1:8000-8010:80'])), ['--port', 'tcp', '127.0.0.1', '8000-8010', '80']);
  assert.throws(() => parsePorts(['8010-8000:80']), InvalidArgumentError);
});
