/**
 * Registry authentication against the real registry: htpasswd Basic auth,
 * and Bearer tokens from a small token server written here (JWTs the
 * registry verifies against a self-signed certificate).
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { PermissionError } from '../../src/errors.js';
import type { Descriptor } from '../../src/oci/index.js';
import { ImageStore } from '../../src/image-store.js';
import { pullImage } from '../../src/transfer/pull.js';
import { pushImage } from '../../src/transfer/push.js';
import { putSyntheticImage } from '../fixtures/store-images.js';
import { installed, registryMissing, startRegistry, startTokenServer, type RegistryFixture, type TokenServer } from '../fixtures/registry.js';

/** Auth-file lookups that see only what a test writes (never the developer's own files). */
function isolatedAuth(dir: string, env: NodeJS.ProcessEnv = {}): { env: NodeJS.ProcessEnv; home: string } {
  return { env, home: join(dir, 'home') };
}

describe('registry auth', async () => {
  const missing = (await registryMissing()) ?? ((await installed('htpasswd')) ? undefined : 'htpasswd not installed (apache2-utils)');
  if (missing) console.log(`# skipping registry auth tests: ${missing}`);

  let dir: string;
  let source: ImageStore;
  let image: Descriptor;
  let fresh: () => Promise<ImageStore>;

  before(async () => {
    if (missing) return;
    dir = await mkdtemp(join(tmpdir(), 'dockless-transfer-auth-'));
    source = await ImageStore.open({ root: join(dir, 'source') });
    const built = await putSyntheticImage(source, [{ 'etc/': { type: 'dir' }, 'etc/secret': 'classified\n' }]);
    image = built.manifest;
    await source.tag(image.digest, 'local/app:1');
    let n = 0;
    fresh = () => ImageStore.open({ root: join(dir, `store-${n++}`) });
  });
  after(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  describe('htpasswd Basic auth', () => {
    let registry: RegistryFixture;
    before(async () => {
      if (missing) return;
      registry = await startRegistry({ type: 'htpasswd', users: { alice: 'wonderland' } });
    });
    after(async () => registry?.stop());

    it('pushes and pulls with credentials from the options', { skip: missing }, async () => {
      const credentials = { username: 'alice', password: 'wonderland' };
      const authFiles = isolatedAuth(dir);
      const pushed = await pushImage(source, 'local/app:1', { to: `${registry.host}/private/app:1`, credentials, authFiles });
      assert.equal(pushed.digest, image.digest);
      const pulled = await pullImage(await fresh(), `${registry.host}/private/app:1`, { credentials, authFiles });
      assert.equal(pulled.digest, image.digest);
    });

    it('says which credentials are missing on a 401 without any', { skip: missing }, async () => {
      await assert.rejects(
        pullImage(await fresh(), `${registry.host}/private/app:1`, { authFiles: isolatedAuth(dir) }),
        (err: unknown) => {
          assert.ok(err instanceof PermissionError, String(err));
          assert.match(
            err.message,
            new RegExp(`^pull ${registry.host.replace(/\./g, '\\.')}/private/app:1: registry ${registry.host.replace(/\./g, '\\.')} requires authentication and no credentials were found for it \\(looked in options\\.credentials, .*config\\.json\\)`),
          );
          return true;
        },
      );
    });

    it('says whose credentials were refused', { skip: missing }, async () => {
      await assert.rejects(
        pullImage(await fresh(), `${registry.host}/private/app:1`, {
          credentials: { username: 'alice', password: 'wrong' },
          authFiles: isolatedAuth(dir),
        }),
        (err: unknown) => {
          assert.ok(err instanceof PermissionError, String(err));
          assert.match(err.message, /requires authentication for user "alice" from options\.credentials/);
          return true;
        },
      );
    });

    it('finds credentials in $REGISTRY_AUTH_FILE', { skip: missing }, async () => {
      const file = join(dir, 'auth.json');
      const auth = Buffer.from('alice:wonderland').toString('base64');
      await writeFile(file, JSON.stringify({ auths: { [registry.host]: { auth } } }));
      const pulled = await pullImage(await fresh(), `${registry.host}/private/app:1`, {
        authFiles: isolatedAuth(dir, { REGISTRY_AUTH_FILE: file }),
      });
      assert.equal(pulled.digest, image.digest);
    });

    it('finds credentials in ~/.docker/config.json', { skip: missing }, async () => {
      const home = join(dir, 'docker-home');
      const { mkdir } = await import('node:fs/promises');
      await mkdir(join(home, '.docker'), { recursive: true });
      await writeFile(
        join(home, '.docker', 'config.json'),
        JSON.stringify({ auths: { [`http://${registry.host}`]: { username: 'alice', password: 'wonderland' } } }),
      );
      const pulled = await pullImage(await fresh(), `${registry.host}/private/app:1`, { authFiles: { env: {}, home } });
      assert.equal(pulled.digest, image.digest);
    });
  });

  describe('Bearer token auth', () => {
    let registry: RegistryFixture;
    let tokens: TokenServer;
    before(async () => {
      if (missing) return;
      tokens = await startTokenServer({ bob: 'builder' });
      registry = await startRegistry({
        type: 'token',
        realm: tokens.realm,
        service: tokens.service,
        issuer: tokens.issuer,
        certPath: tokens.certPath,
      });
    });
    after(async () => {
      await registry?.stop();
      await tokens?.stop();
    });

    it('pushes and pulls with tokens fetched once per scope', { skip: missing }, async () => {
      const credentials = { username: 'bob', password: 'builder' };
      const authFiles = isolatedAuth(dir);
      tokens.requests.length = 0;
      await pushImage(source, 'local/app:1', { to: `${registry.host}/team/app:1`, credentials, authFiles });
      const pushScopes = tokens.requests.map((r) => r.scopes.join(' '));
      // Every request of the push (HEADs, uploads, the manifest) used one token.
      assert.deepEqual(pushScopes, ['repository:team/app:pull,push'], JSON.stringify(tokens.requests));
      assert.ok(tokens.requests.every((r) => r.account === 'bob' && r.authorized));

      tokens.requests.length = 0;
      const pulled = await pullImage(await fresh(), `${registry.host}/team/app:1`, { credentials, authFiles });
      assert.equal(pulled.digest, image.digest);
      assert.deepEqual(tokens.requests.map((r) => r.scopes.join(' ')), ['repository:team/app:pull']);
      // The cached token serves the next pull.
      await pullImage(await fresh(), `${registry.host}/team/app:1`, { credentials, authFiles });
      assert.equal(tokens.requests.length, 1);
    });

    it('pulls anonymously where the token server allows it', { skip: missing }, async () => {
      const authFiles = isolatedAuth(dir);
      await pushImage(source, 'local/app:1', { to: `${registry.host}/public/app:1`, credentials: { username: 'bob', password: 'builder' }, authFiles });
      const pulled = await pullImage(await fresh(), `${registry.host}/public/app:1`, { authFiles });
      assert.equal(pulled.digest, image.digest);
      assert.ok(tokens.requests.some((r) => r.account === undefined));
    });

    it('says which credentials are missing when anonymous access is refused', { skip: missing }, async () => {
      await assert.rejects(
        pullImage(await fresh(), `${registry.host}/team/app:1`, { authFiles: isolatedAuth(dir) }),
        (err: unknown) => {
          assert.ok(err instanceof PermissionError, String(err));
          assert.match(err.message, /requires authentication and no credentials were found for it \(looked in options\.credentials/);
          return true;
        },
      );
    });

    it('says whose credentials the token server refused', { skip: missing }, async () => {
      await assert.rejects(
        pullImage(await fresh(), `${registry.host}/team/app:1`, {
          credentials: { username: 'bob', password: 'nope' },
          authFiles: isolatedAuth(dir),
        }),
        (err: unknown) => {
          assert.ok(err instanceof PermissionError, String(err));
          assert.match(err.message, /for user "bob" from options\.credentials: token endpoint 127\.0\.0\.1:\d+ answered 401/);
          return true;
        },
      );
    });

    it('fetches a new token when the registry refuses the cached one (401)', { skip: missing }, async () => {
      const credentials = { username: 'bob', password: 'builder' };
      const authFiles = isolatedAuth(dir);
      // A scope no earlier test cached, so that the first token is the expired one.
      await pushImage(source, 'local/app:1', { to: `${registry.host}/refresh/app:1`, credentials, authFiles });
      tokens.requests.length = 0;
      tokens.expireNext = true;
      const pulled = await pullImage(await fresh(), `${registry.host}/refresh/app:1`, { credentials, authFiles });
      assert.equal(pulled.digest, image.digest);
      assert.equal(tokens.requests.length, 2, 'the expired token, then a fresh one');
    });
  });
});
