import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { authFiles, lookupCredentials, matchAuths } from '../../src/transfer/auth-config.js';

const b64 = (s: string): string => Buffer.from(s).toString('base64');

describe('authFiles', () => {
  it('lists $REGISTRY_AUTH_FILE, the runtime and config containers files, then Docker\'s', () => {
    const files = authFiles({
      env: { REGISTRY_AUTH_FILE: '/a/auth.json', XDG_RUNTIME_DIR: '/run/user/1000' },
      home: '/home/u',
    });
    assert.deepEqual(
      files.map((f) => f.path),
      ['/a/auth.json', '/run/user/1000/containers/auth.json', '/home/u/.config/containers/auth.json', '/home/u/.docker/config.json'],
    );
    assert.match(files[0]!.label, /^\$REGISTRY_AUTH_FILE/);
  });
  it('honours XDG_CONFIG_HOME and DOCKER_CONFIG', () => {
    const files = authFiles({ env: { XDG_CONFIG_HOME: '/cfg', DOCKER_CONFIG: '/dk' }, home: '/home/u' });
    assert.deepEqual(files.map((f) => f.path), ['/cfg/containers/auth.json', '/dk/config.json']);
  });
});

describe('matchAuths', () => {
  it('decodes `auth` (base64 user:password, the password may hold colons)', () => {
    assert.deepEqual(matchAuths({ 'r.example': { auth: b64('u:p:w') } }, 'r.example'), { username: 'u', password: 'p:w' });
  });
  it('reads username/password, identitytoken and registrytoken fields', () => {
    assert.deepEqual(matchAuths({ r: { username: 'u', password: 'p' } }, 'r'), { username: 'u', password: 'p' });
    assert.deepEqual(matchAuths({ r: { identitytoken: 'refresh' } }, 'r'), { identityToken: 'refresh' });
    assert.deepEqual(matchAuths({ r: { registrytoken: 'tok' } }, 'r'), { registryToken: 'tok' });
  });
  it('maps Docker Hub\'s legacy key to docker.io', () => {
    const auths = { 'https://index.docker.io/v1/': { auth: b64('hub:pw') } };
    assert.deepEqual(matchAuths(auths, 'docker.io', 'library/alpine'), { username: 'hub', password: 'pw' });
  });
  it('strips a scheme and trailing slash from keys', () => {
    assert.deepEqual(matchAuths({ 'https://localhost:5000/': { auth: b64('a:b') } }, 'localhost:5000'), { username: 'a', password: 'b' });
  });
  it('prefers the most specific repository key', () => {
    const auths = {
      'quay.io': { auth: b64('host:1') },
      'quay.io/org': { auth: b64('org:2') },
      'quay.io/org/repo': { auth: b64('repo:3') },
    };
    assert.equal(matchAuths(auths, 'quay.io', 'org/repo')?.username, 'repo');
    assert.equal(matchAuths(auths, 'quay.io', 'org/other')?.username, 'org');
    assert.equal(matchAuths(auths, 'quay.io', 'else/x')?.username, 'host');
  });
  it('does not match another registry or a port-less host', () => {
    assert.equal(matchAuths({ 'localhost:5000': { auth: b64('a:b') } }, 'localhost'), undefined);
    assert.equal(matchAuths({ 'a.example': { auth: b64('a:b') } }, 'b.example'), undefined);
  });
  it('skips empty entries, as Docker leaves them for a credential helper', () => {
    assert.equal(matchAuths({ r: {} }, 'r'), undefined);
    assert.equal(matchAuths({ r: { auth: '' } }, 'r'), undefined);
  });
  it('ignores a malformed auths value', () => {
    assert.equal(matchAuths(undefined, 'r'), undefined);
    assert.equal(matchAuths('nope' as never, 'r'), undefined);
  });
});

describe('lookupCredentials', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'dockless-auth-'));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  const write = async (path: string, content: unknown): Promise<void> => {
    await mkdir(join(path, '..'), { recursive: true });
    await writeFile(path, typeof content === 'string' ? content : JSON.stringify(content));
  };

  it('takes the first file with a matching entry, and names it', async () => {
    const home = join(dir, 'h1');
    const runtime = join(dir, 'run1');
    await write(join(runtime, 'containers', 'auth.json'), { auths: { 'other.example': { auth: b64('x:y') } } });
    await write(join(home, '.docker', 'config.json'), { auths: { 'r.example': { auth: b64('docker:pw') } } });
    const env = { XDG_RUNTIME_DIR: runtime };
    const { found, files } = await lookupCredentials('r.example', 'app', { env, home });
    assert.deepEqual(found?.credentials, { username: 'docker', password: 'pw' });
    assert.equal(found?.source, join(home, '.docker', 'config.json'));
    assert.equal(files.length, 3);
  });

  it('prefers $REGISTRY_AUTH_FILE over the others', async () => {
    const home = join(dir, 'h2');
    const file = join(dir, 'explicit.json');
    await write(file, { auths: { 'r.example': { auth: b64('explicit:pw') } } });
    await write(join(home, '.docker', 'config.json'), { auths: { 'r.example': { auth: b64('docker:pw') } } });
    const { found } = await lookupCredentials('r.example', undefined, { env: { REGISTRY_AUTH_FILE: file }, home });
    assert.equal(found?.credentials.username, 'explicit');
    assert.match(found!.source, /REGISTRY_AUTH_FILE/);
  });

  it('skips missing and malformed files', async () => {
    const home = join(dir, 'h3');
    await write(join(home, '.config', 'containers', 'auth.json'), '{not json');
    await write(join(home, '.docker', 'config.json'), { auths: { 'r.example': { auth: b64('ok:pw') } } });
    const { found } = await lookupCredentials('r.example', undefined, { env: { REGISTRY_AUTH_FILE: join(dir, 'missing.json') }, home });
    assert.equal(found?.credentials.username, 'ok');
  });

  it('reports files naming a credential helper, which it does not run', async () => {
    const home = join(dir, 'h4');
    await write(join(home, '.docker', 'config.json'), { auths: { 'r.example': {} }, credHelpers: { 'r.example': 'secretservice' } });
    const lookup = await lookupCredentials('r.example', undefined, { env: {}, home });
    assert.equal(lookup.found, undefined);
    assert.deepEqual(lookup.helpers, [join(home, '.docker', 'config.json')]);
  });

  it('finds nothing with no files', async () => {
    const lookup = await lookupCredentials('r.example', undefined, { env: {}, home: join(dir, 'none') });
    assert.equal(lookup.found, undefined);
    assert.equal(lookup.helpers.length, 0);
  });
});
