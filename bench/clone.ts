/**
 * Warm once, fork many: the time for a test to get a fresh, migrated
 * PostgreSQL, by clone of a migrated snapshot vs by re-running the
 * migrations, in the same run, alternating, on disk (`--shm` for /dev/shm,
 * `--dir PARENT` for another).
 *
 * The database is Debian's PostgreSQL 15 from the host's binaries (a rootfs
 * made by `rootfsFromHost` with `postgres`, `initdb`, `psql` and their data
 * files; no network, no image). Both paths start from a snapshot, so the
 * re-migration path does not pay for `initdb`:
 *
 * - re-migration: clone of the *initialised* database (initdb done, no
 *   schema), wait for "ready to accept connections", then `psql -f` the
 *   migrations (tables, indexes, seed rows, one transaction per migration);
 * - clone: clone of the *migrated* database, wait for the same log line.
 *
 * Each path is then checked (row counts) outside the timing. Both use
 * `fsync=off`, as test databases do. The target is clone ≤ 0.25× re-migration.
 *
 * Run: node --import tsx bench/clone.ts [--runs N] [--rows N] [--shm | --dir PARENT]   (root)
 */
import { existsSync } from 'node:fs';
import { chown, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Runtime, rootfsFromHost } from '../src/index.js';
import { startContainer, Wait, type StartedContainer } from '../src/testing/index.js';
import { arg, benchParent, compare, dropCaches, latencyStats, writeResults, type ResultRow } from './common.js';

const PG = '/usr/lib/postgresql/15';
const RUNS = Number(arg('--runs') ?? 5);
const ROWS = Number(arg('--rows') ?? 20_000);
const PGDATA = '/var/lib/postgresql/data';
const PG_UID = 70;

/** A migration suite in the shape of a real one: many small DDL steps, seed data, indexes built after the load. */
function migrations(rows: number): string {
  const steps: string[] = [];
  steps.push(`create table users (id bigserial primary key, email text not null unique, name text not null, created timestamptz not null default now());`);
  steps.push(`insert into users (email, name) select 'user' || g || '@example.com', 'User ' || g from generate_series(1, ${rows}) g;`);
  steps.push(`create table orders (id bigserial primary key, user_id bigint not null references users(id), total numeric(12,2) not null, status text not null, created timestamptz not null default now());`);
  steps.push(`insert into orders (user_id, total, status) select 1 + (g % ${rows}), (g % 997) / 7.0, (array['new','paid','shipped','done'])[1 + g % 4] from generate_series(1, ${rows * 2}) g;`);
  steps.push(`create index orders_user on orders (user_id);`, `create index orders_status on orders (status, created);`);
  for (let i = 0; i < 30; i++) {
    steps.push(
      `create table t${i} (id bigserial primary key, ref bigint references users(id), label text, payload jsonb default '{}'::jsonb, updated timestamptz);`,
      `insert into t${i} (ref, label) select 1 + (g * ${i + 7}) % ${rows}, 'label ' || g from generate_series(1, ${Math.round(rows / 20)}) g;`,
      `create index t${i}_ref on t${i} (ref);`,
      `alter table t${i} add column note text;`,
    );
  }
  steps.push('analyze;');
  return steps.map((s) => `begin;\n${s}\ncommit;\n`).join('');
}

async function postgresRootfs(dir: string): Promise<string> {
  const etc = join(dir, 'etc-src');
  await mkdir(etc, { recursive: true });
  await writeFile(join(etc, 'passwd'), `root:x:0:0:root:/root:/bin/sh\npostgres:x:${PG_UID}:${PG_UID}:postgres:/var/lib/postgresql:/bin/sh\n`);
  await writeFile(join(etc, 'group'), `root:x:0:\npostgres:x:${PG_UID}:\n`);
  await writeFile(join(etc, 'migrate.sql'), migrations(ROWS));
  const rootfs = await rootfsFromHost(join(dir, 'rootfs'), {
    binaries: [`${PG}/bin/postgres`, `${PG}/bin/initdb`, `${PG}/bin/psql`],
    files: {
      [PG]: PG,
      // The rootfs's /usr/lib is a link to /lib: postgres finds its share directory relative to its real path.
      '/usr/share/postgresql/15': '/share/postgresql/15',
      '/usr/share/zoneinfo/Etc/UTC': '/usr/share/zoneinfo/Etc/UTC',
      [join(etc, 'passwd')]: '/etc/passwd',
      [join(etc, 'group')]: '/etc/group',
      [join(etc, 'migrate.sql')]: '/migrate.sql',
    },
  });
  await mkdir(join(rootfs.path, '/var/lib/postgresql'), { recursive: true, mode: 0o755 });
  await mkdir(join(rootfs.path, PGDATA), { mode: 0o700 });
  await chown(join(rootfs.path, '/var/lib/postgresql'), PG_UID, PG_UID);
  await chown(join(rootfs.path, PGDATA), PG_UID, PG_UID);
  return rootfs.path;
}

const psql = (sql: string) => [`${PG}/bin/psql`, '-h', '127.0.0.1', '-U', 'postgres', '-v', 'ON_ERROR_STOP=1', '-Atq', '-c', sql];

async function check(db: StartedContainer): Promise<void> {
  const r = await db.exec(psql(`select (select count(*) from users) || ' ' || (select count(*) from orders) || ' ' || (select count(*) from t29)`));
  const want = `${ROWS} ${ROWS * 2} ${Math.round(ROWS / 20)}\n`;
  if (r.stdout !== want) throw new Error(`database not migrated: ${JSON.stringify(r.stdout)} (${r.stderr.trim()}), want ${JSON.stringify(want)}`);
}

async function migrate(db: StartedContainer): Promise<void> {
  const r = await db.exec([`${PG}/bin/psql`, '-h', '127.0.0.1', '-U', 'postgres', '-v', 'ON_ERROR_STOP=1', '-q', '-f', '/migrate.sql']);
  if (r.exitCode !== 0) throw new Error(`migrations failed: ${r.stderr}`);
}

if (process.getuid?.() !== 0) {
  console.error('bench/clone.ts needs root (containers whose postgres runs as uid 70)');
  process.exit(2);
}
if (!existsSync(join(PG, 'bin', 'postgres'))) {
  console.error(`bench/clone.ts needs Debian's postgresql-15 on the host (${PG}/bin/postgres): apt-get install -y postgresql-15`);
  process.exit(2);
}

const parent = await benchParent();
const base = await mkdtemp(join(parent.dir, 'dockless-bench-clone-'));
const rows: ResultRow[] = [];
try {
  const rootfs = await postgresRootfs(base);
  await using runtime = new Runtime({ root: join(base, 'data'), stateDir: join(base, 'state') });
  const ready = Wait.forLogMessage(/database system is ready to accept connections/);
  const cmd = [
    'sh',
    '-c',
    `[ -s ${PGDATA}/PG_VERSION ] || ${PG}/bin/initdb -D ${PGDATA} -U postgres --locale=C -E UTF8 -A trust --no-sync >/dev/null; exec ${PG}/bin/postgres -D ${PGDATA} -k /tmp -c listen_addresses=127.0.0.1 -c fsync=off`,
  ];
  const first = await startContainer(runtime, { rootfs, user: `${PG_UID}:${PG_UID}`, env: { TZ: 'UTC' }, cmd, wait: ready, startupTimeout: 120_000 });
  await using initialised = await first.snapshot();
  const migrating = await initialised.clone();
  let t = performance.now();
  await migrate(migrating);
  console.log(`migrations once: ${(performance.now() - t).toFixed(0)} ms (${ROWS} users, ${ROWS * 2} orders, 30 more tables)`);
  await check(migrating);
  await using migrated = await migrating.snapshot();

  const cacheDropped = dropCaches();
  const byMigration: number[] = [];
  const byClone: number[] = [];
  const startOnly: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    t = performance.now();
    {
      await using db = await initialised.clone();
      startOnly.push(performance.now() - t);
      await migrate(db);
      byMigration.push(performance.now() - t);
      await check(db);
    }
    t = performance.now();
    {
      await using db = await migrated.clone();
      byClone.push(performance.now() - t);
      await check(db);
    }
  }
  const m = latencyStats(byMigration);
  const c = latencyStats(byClone);
  console.log(`runs: ${RUNS}, alternating; re-migration ${byMigration.map((x) => x.toFixed(0)).join(' ')} ms; clone ${byClone.map((x) => x.toFixed(0)).join(' ')} ms`);
  rows.push(
    compare('fresh migrated PostgreSQL: clone of the migrated snapshot (median)', c.median, 'ms', { name: 're-migration', value: m.median }, { target: '≤ 0.25× re-migration' }),
    compare('  the same clone beside a PostgreSQL start with no schema', c.median, 'ms', { name: 'start only', value: latencyStats(startOnly).median }),
  );
  await first[Symbol.asyncDispose]();
  await migrating[Symbol.asyncDispose]();
  await writeResults('clone', rows, { dir: parent.dir, kind: parent.kind, cacheDropped });
} finally {
  await rm(base, { recursive: true, force: true });
}
