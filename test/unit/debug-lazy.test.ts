/**
 * The bundle's stand-in for `debug` (tools/debug-lazy.mjs): loading the real
 * package costs every import of dockless ~15 ms, so it loads only once a
 * logger is used with `DEBUG` set — also when `DEBUG` was set after the
 * loggers were made — and then logs as `debug` does.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { dirname, resolve } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const SHIM = resolve(dirname(fileURLToPath(import.meta.url)), '../../tools/debug-lazy.mjs');

function run(script: string, env: NodeJS.ProcessEnv): { stdout: string } {
  const { DEBUG: _, ...rest } = process.env;
  const out = execFileSync(process.execPath, ['--input-type=module', '-e', `import createDebug from ${JSON.stringify(SHIM)};\n${script}`], {
    encoding: 'utf8',
    env: { ...rest, ...env, DEBUG_COLORS: 'no' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return { stdout: out };
}

const LOADED = `import { createRequire } from 'node:module';
const loaded = () => Object.keys(createRequire(import.meta.url).cache).some((k) => /node_modules\\/debug\\//.test(k));`;

test('without DEBUG, a dockless logger neither loads debug nor logs', () => {
  const { stdout } = run(`${LOADED}\nconst log = createDebug('dockless:x'); log('hello %d', 1); console.log(JSON.stringify({ loaded: loaded(), enabled: log.enabled }));`, {});
  assert.deepEqual(JSON.parse(stdout), { loaded: false, enabled: false });
});

test('with DEBUG set after the loggers were made, a dockless logger logs through debug', () => {
  const script = `${LOADED}
const log = createDebug('dockless:x');
process.env.DEBUG = 'dockless:*';
const lines = [];
process.stderr.write = (chunk) => (lines.push(String(chunk)), true);
log('hello %d', 1);
console.log(JSON.stringify({ loaded: loaded(), enabled: log.enabled, logged: lines.join('') }));`;
  const result = JSON.parse(run(script, {}).stdout);
  assert.equal(result.loaded, true);
  assert.equal(result.enabled, true);
  assert.match(result.logged, /dockless:x hello 1/);
});
