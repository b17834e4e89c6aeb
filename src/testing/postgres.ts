/**
 * `startPostgres()`: a ready PostgreSQL server for a test, from the host's
 * Debian `postgresql` package, with no image to pull. The cluster is made
 * once (`initdb`, the user, the password and the database) into the cached
 * image, so each start is only the server's own start on a copy-on-write view.
 *
 * @module
 */

import { chmod, mkdir, readdir, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { InvalidArgumentError, NotFoundError, NotReadyError, type Runtime } from '../index.js';
import { serviceRootfs } from './service-image.js';
import { startContainer, StartedContainer, type StartContainerOptions } from './start.js';
import { Wait } from './wait.js';

/** Options of {@link startPostgres}. */
export interface PostgresOptions {
  /** The user the cluster is made with. @default 'test' */
  username?: string;
  /** Its password (scram-sha-256 over TCP). @default 'test' */
  password?: string;
  /** The database made for the test, owned by `username`. @default 'test' */
  database?: string;
  /**
   * The host directory of `postgres` and `initdb`.
   * @default the newest `/usr/lib/postgresql/<version>/bin` (Debian's layout)
   */
  binDir?: string;
  /** Settings passed as `-c name=value` on top of the test-friendly ones (fsync off, listen on every address). @default {} */
  settings?: Readonly<Record<string, string>>;
  /** Any other option of `startContainer` (a network, aliases, a pod, `reuse`, resources…). */
  container?: Omit<StartContainerOptions, 'image' | 'rootfs' | 'cmd' | 'build' | 'user'>;
}

/** A started PostgreSQL: the container handle, plus where and how to connect. */
export class StartedPostgres extends StartedContainer {
  /** The host port PostgreSQL's 5432 is published on. */
  readonly port: number;
  /** The user to connect as. */
  readonly username: string;
  /** Its password. */
  readonly password: string;
  /** The database made for the test. */
  readonly database: string;
  /** `postgres://user:password@host:port/database`, for the `pg` client (`new pg.Client({ connectionString })`). */
  readonly connectionUri: string;

  /** @internal */
  constructor(started: StartedContainer, username: string, password: string, database: string) {
    super(...StartedContainer.parts(started));
    this.port = started.getMappedPort(POSTGRES_PORT);
    this.username = username;
    this.password = password;
    this.database = database;
    const host = this.host.includes(':') ? `[${this.host}]` : this.host;
    this.connectionUri = `postgres://${encodeURIComponent(username)}:${encodeURIComponent(password)}@${host}:${this.port}/${encodeURIComponent(database)}`;
  }
}

const POSTGRES_PORT = 5432;
const PGDATA = '/var/lib/postgresql/data';
const HBA = '/etc/postgresql/pg_hba.conf';
// llvmjit needs libLLVM (hundreds of MB) and JIT is off; sepgsql needs SELinux.
const SKIPPED_MODULES = new Set(['llvmjit.so', 'sepgsql.so']);
const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]{0,62}$/;

async function newestBinDir(): Promise<string> {
  const base = '/usr/lib/postgresql';
  const versions = await readdir(base).catch(() => [] as string[]);
  const sorted = versions.filter((v) => /^\d+(\.\d+)?$/.test(v)).sort((a, b) => Number(b) - Number(a));
  for (const v of sorted) {
    if (await stat(join(base, v, 'bin', 'postgres')).then(() => true, () => false)) return join(base, v, 'bin');
  }
  throw new NotFoundError('start postgres: no `/usr/lib/postgresql/<version>/bin/postgres` on this host (Debian: apt-get install postgresql)', { path: base });
}

/**
 * Starts PostgreSQL and waits until it accepts connections (its log says so
 * and its port listens). The image is the host's `postgres` and `initdb`, the
 * modules and data files they load, with a cluster made by `initdb` once per
 * user/password/database and cached under the runtime's root; nothing is
 * pulled. The server runs as the image's unprivileged user (uid 1000) with
 * fsync off: a test database, not a durable one.
 *
 * @throws `NotFoundError` (from `dockless`) when the host has no PostgreSQL server (Debian: `apt-get install postgresql`).
 * @throws `InvalidArgumentError` (from `dockless`) when `username` or `database` is not a plain SQL identifier.
 * @throws `NotReadyError` (from `dockless`) when it is not ready in time, or `initdb` fails.
 * @example
 * ```ts
 * import pg from 'pg';
 * await using db = await startPostgres(runtime);
 * const client = new pg.Client({ connectionString: db.connectionUri });
 * await client.connect();
 * ```
 */
export async function startPostgres(runtime: Runtime, options: PostgresOptions = {}): Promise<StartedPostgres> {
  const username = options.username ?? 'test';
  const password = options.password ?? 'test';
  const database = options.database ?? 'test';
  for (const [what, value] of [['username', username], ['database', database]] as const) {
    if (typeof value !== 'string' || !IDENTIFIER.test(value)) throw new InvalidArgumentError(`startPostgres: ${what} \`${String(value)}\` must be a plain SQL identifier (letters, digits, _)`);
  }
  if (typeof password !== 'string' || password === '') throw new InvalidArgumentError('startPostgres: password must be a non-empty string');
  const binDir = options.binDir ?? (await newestBinDir());
  const libDir = join(binDir, '..', 'lib');
  const version = binDir.split('/').at(-2) ?? '';
  const shareDir = `/usr/share/postgresql/${version}`;
  const modules = (await readdir(libDir).catch(() => [] as string[])).filter((f) => f.endsWith('.so') && !SKIPPED_MODULES.has(f)).map((f) => join(libDir, f));
  const files: Record<string, string> = {};
  if (await stat(shareDir).then(() => true, () => false)) files[shareDir] = shareDir;
  for (const zone of ['/usr/share/zoneinfo/Etc/UTC', '/usr/share/zoneinfo/UTC']) {
    if (await stat(zone).then(() => true, () => false)) files[zone] = zone;
  }
  const rootfs = await serviceRootfs(runtime, {
    name: 'postgres',
    // The programs stay at their host paths (as modules, not in /bin): postgres finds $libdir and
    // its share directory relative to its own directory. busybox's shell runs the initdb script.
    rootfs: { binaries: [], modules: [join(binDir, 'postgres'), join(binDir, 'initdb'), ...modules], files, busybox: true },
    salt: [username, password, database],
    prepare: async (dir) => {
      // /usr/lib is /lib in the rootfs, so postgres, seeing itself in /lib/postgresql/<v>/bin, looks for /share/postgresql/<v>.
      await symlink('usr/share', join(dir, 'share'));
      await makeCluster(runtime, dir, binDir, username, password, database);
    },
  });
  const settings: Record<string, string> = {
    listen_addresses: '*',
    unix_socket_directories: '/tmp',
    hba_file: HBA,
    fsync: 'off',
    synchronous_commit: 'off',
    full_page_writes: 'off',
    jit: 'off',
    ...options.settings,
  };
  const cmd = [join(binDir, 'postgres'), '-D', PGDATA, ...Object.entries(settings).flatMap(([k, v]) => ['-c', `${k}=${v}`])];
  const started = await startContainer(runtime, {
    ...options.container,
    rootfs,
    cmd,
    user: '1000:1000',
    env: { TZ: 'UTC', ...options.container?.env },
    ports: [POSTGRES_PORT, ...(options.container?.ports ?? [])],
    wait: options.container?.wait ?? Wait.all(Wait.forLogMessage('database system is ready to accept connections'), Wait.forListeningPorts(POSTGRES_PORT)),
  });
  return new StartedPostgres(started, username, password, database);
}

/** Runs `initdb` (and makes the database) in a container on the new rootfs, writing through a bind mount into it. */
async function makeCluster(runtime: Runtime, dir: string, binDir: string, username: string, password: string, database: string): Promise<void> {
  const pgHome = join(dir, 'var', 'lib', 'postgresql');
  await mkdir(pgHome, { recursive: true });
  // The server's uid may be a subordinate id with no write access to a directory of the caller's.
  await chmod(pgHome, 0o1777);
  await mkdir(join(dir, 'etc', 'postgresql'), { recursive: true });
  await writeFile(join(dir, HBA), 'local all all trust\nhost all all all scram-sha-256\n', { mode: 0o644 });
  const pwfile = join(dir, 'tmp', '.pwfile');
  await writeFile(pwfile, `${password}\n`, { mode: 0o644 });
  const script = [
    'set -e',
    `${join(binDir, 'initdb')} -D ${PGDATA} -U ${username} --pwfile=/tmp/.pwfile -E UTF8 --locale=C --no-sync --no-instructions`,
    database !== 'postgres' ? `echo 'CREATE DATABASE ${database} OWNER ${username};' | ${join(binDir, 'postgres')} --single -F -D ${PGDATA} postgres` : 'true',
  ].join('\n');
  try {
    const out = await runtime.output({
      rootfs: dir,
      cmd: ['/bin/sh', '-c', script],
      user: '1000:1000',
      env: { TZ: 'UTC' },
      mounts: [{ type: 'bind', source: pgHome, target: '/var/lib/postgresql' }],
    });
    if (out.exitCode !== 0) {
      const tail = `${out.stdout}\n${out.stderr}`.trim().split('\n').slice(-20);
      throw new NotReadyError(`start postgres: initdb in \`${dir}\` exited with code ${out.exitCode}:\n${tail.slice(-5).join('\n')}`, {
        reason: 'failed',
        waitedFor: 'initdb',
        logTail: tail,
      });
    }
  } finally {
    await rm(pwfile, { force: true });
  }
}
