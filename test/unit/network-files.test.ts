import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { InvalidArgumentError } from '../../src/errors.js';
import { hostsContent, padded, rewriteInPlace } from '../../src/ns/hosts.js';
import { addNetworkScript, NFT_TABLE, parseBridges, removeNetworkScript, tableScript } from '../../src/ns/nft.js';
import { networkOf } from '../../src/runtime/network-mode.js';
import { linkArgs } from '../../src/runtime/run-args.js';

const net = { bridge: 'dl-abc', subnet: '10.89.0.0/16', internal: false };

test('every nft statement names our table and nothing else; nothing is flushed but our own chains', () => {
  for (const script of [addNetworkScript(net), removeNetworkScript(net), addNetworkScript({ ...net, internal: true })]) {
    for (const line of script.split('\n').filter((l) => /^(add|delete|flush|table)\b/.test(l))) {
      assert.match(line, new RegExp(`^(add (rule|element|set)|delete (element|table)|flush chain|table) ${NFT_TABLE}( |$)`), line);
    }
    assert.doesNotMatch(script, /flush ruleset|flush table/);
  }
});

test('a second network does not double the table rules: the chains are flushed and filled in one transaction', () => {
  // Why: re-declaring a table block with rules in it appends the rules again on every network.
  const script = tableScript();
  const rules = script.split('\n').filter((l) => l.startsWith('add rule'));
  assert.equal(rules.length, 6);
  const flush = script.indexOf(`flush chain ${NFT_TABLE} forward`);
  assert.ok(flush >= 0 && flush < script.indexOf('add rule'));
  assert.doesNotMatch(script.slice(0, flush), /masquerade|drop|accept\n/);
});

test('an internal network gets no masquerade element; a normal one gets its subnet', () => {
  assert.match(addNetworkScript(net), /add element inet dockless masq4 \{ 10\.89\.0\.0\/16 \}/);
  assert.doesNotMatch(addNetworkScript({ ...net, internal: true }), /masq4 \{ 10/);
  assert.match(addNetworkScript({ ...net, internal: true }), /add element inet dockless internal \{ "dl-abc" \}/);
});

test('removing elements first adds them in the same transaction, so a second removal is no error', () => {
  const script = removeNetworkScript(net);
  assert.ok(script.indexOf('add element inet dockless bridges') < script.indexOf('delete element inet dockless bridges'));
});

test('hosts: loopback, self, the host, then members; a name given twice resolves to the first', () => {
  const text = hostsContent({ ip: '10.89.0.3', names: ['web'] }, [
    { ip: '10.89.0.1', names: ['host.dockless.internal'] },
    { ip: '10.89.0.2', names: ['db', 'database'] },
    { ip: '10.89.0.4', names: ['db2', 'database'] },
  ]);
  assert.equal(
    text,
    '127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n10.89.0.3\tweb\n10.89.0.1\thost.dockless.internal\n10.89.0.2\tdb database\n10.89.0.4\tdb2\n',
  );
});

test('hosts files are rewritten in place with one write: same inode, a shorter text padded with a comment, a missing file no error', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'dl-hosts-'));
  try {
    const path = join(dir, 'hosts');
    await writeFile(path, 'a long old content\nwith two lines\n');
    const ino = (await stat(path)).ino;
    await rewriteInPlace(path, 'new\n');
    const now = await readFile(path, 'utf8');
    assert.equal(now.length, 'a long old content\nwith two lines\n'.length);
    assert.match(now, /^new\n# *\n$/);
    await rewriteInPlace(path, 'a longer text than the file was before it\n');
    assert.equal(await readFile(path, 'utf8'), 'a longer text than the file was before it\n');
    assert.equal((await stat(path)).ino, ino);
    await rewriteInPlace(join(dir, 'gone'), 'x');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('padding: none when long enough, a newline for one byte, a comment line otherwise', () => {
  assert.equal(padded('abc\n', 2), 'abc\n');
  assert.equal(padded('abc\n', 5), 'abc\n\n');
  assert.equal(padded('abc\n', 8), 'abc\n#  \n');
});

test('network modes: none is the default, a network needs an attacher, aliases need a network', () => {
  const spec = { rootfs: '/r', cmd: ['true'] };
  assert.equal(networkOf(spec, undefined, false), undefined);
  assert.equal(networkOf({ ...spec, network: 'bridge' }, undefined, true), 'bridge');
  assert.deepEqual(networkOf({ ...spec, network: { id: 'i', name: 'app' } }, undefined, true), { id: 'i', name: 'app' });
  assert.throws(() => networkOf({ ...spec, network: 'bridge' }, undefined, false), InvalidArgumentError);
  assert.throws(() => networkOf({ ...spec, networkAliases: ['x'] }, undefined, true), InvalidArgumentError);
  assert.throws(() => networkOf({ ...spec, network: 'bridge', networkAliases: ['bad alias'] }, undefined, true), InvalidArgumentError);
});

test('a link plan becomes the helper veth options', () => {
  assert.deepEqual(
    linkArgs({ host: 'dlv1', bridge: 'dl-b', peer: 'eth0', mac: '02:42:0a:58:00:02', mtu: 0, addresses: ['10.88.0.2/16'], gateways: ['10.88.0.1'] }),
    ['--veth', 'dlv1', 'dl-b', 'eth0', '02:42:0a:58:00:02', '0', '--veth-addr', '10.88.0.2/16', '--veth-gateway', '10.88.0.1'],
  );
});

// A state directory deleted without prune() left its bridges: nothing said whose they were.
test("a root network's bridges element names its state directory, and the listing reads it back to remove the network's elements", () => {
  const net = { bridge: 'dl-abc', subnet: '10.89.0.0/16', subnet6: 'fd12:3456:789a:1::/64', internal: false, owner: '/tmp/x y/state' };
  const script = addNetworkScript(net);
  assert.match(script, /add element inet dockless bridges \{ "dl-abc" comment "10\.89\.0\.0\/16 fd12:3456:789a:1::\/64 - \/tmp\/x y\/state" \}/);
  assert.doesNotMatch(removeNetworkScript(net).split('\n').filter((l) => l.startsWith('delete')).join('\n'), /comment/);
  const listed = JSON.stringify({
    nftables: [{ set: { name: 'bridges', elem: [{ elem: { val: 'dl-abc', comment: /comment "([^"]*)"/.exec(script)![1] } }, 'dl-old', { elem: { val: 'dl-odd', comment: 'not ours' } }] } }],
  });
  assert.deepEqual(parseBridges(listed), [{ name: 'dl-abc', network: net }, { name: 'dl-old' }, { name: 'dl-odd' }]);
  // A directory nft could not hold in a comment (over 128 bytes, or a quote) is not written: that bridge stays its directory's alone.
  assert.doesNotMatch(addNetworkScript({ ...net, owner: `/${'x'.repeat(130)}` }), /comment/);
  assert.doesNotMatch(addNetworkScript({ ...net, owner: '/a"b' }), /comment/);
  assert.doesNotMatch(addNetworkScript({ ...net, owner: undefined }), /comment/);
});
