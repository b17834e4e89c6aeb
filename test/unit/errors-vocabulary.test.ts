import { strict as assert } from 'node:assert';
import { readdir, readFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { test } from 'node:test';
import * as errors from '../../src/errors.js';

const src = join(import.meta.dirname, '..', '..', 'src');
/** The folders whose errors follow the one vocabulary (store, transfer and build join when they do). */
const FOLDERS = ['helper', 'runtime', 'oci', 'layer'];

async function sources(): Promise<{ file: string; text: string }[]> {
  const files: string[] = [join(src, 'errors.ts')];
  for (const folder of FOLDERS) {
    for (const entry of await readdir(join(src, folder), { recursive: true })) {
      if (entry.endsWith('.ts')) files.push(join(src, folder, entry));
    }
  }
  return Promise.all(files.map(async (file) => ({ file: relative(src, file), text: await readFile(file, 'utf8') })));
}

// Callers branch on the class: a bare DocklessError (code `ERR_DOCKLESS`) says nothing they can branch on.
test('no bare DocklessError is thrown: every error is a subclass with a documented code', async () => {
  const bare = (await sources()).flatMap(({ file, text }) =>
    text.split('\n').flatMap((line, i) => (/new DocklessError\(/.test(line) ? [`${file}:${i + 1}: ${line.trim()}`] : [])),
  );
  assert.deepEqual(bare, []);
  const table = (await readFile(join(src, 'errors.ts'), 'utf8')).split('\n').filter((l) => l.startsWith(' * | `ERR_'));
  for (const value of Object.values(errors)) {
    if (typeof value !== 'function' || !(value.prototype instanceof errors.DocklessError)) continue;
    const code = (Reflect.construct(value, ['x', { op: 'run', expected: 'x' }]) as errors.DocklessError).code;
    assert.ok(
      table.some((row) => row.startsWith(` * | \`${code}\` | {@link ${value.name}} |`)),
      `${value.name} (${code}) is missing from the code table in src/errors.ts`,
    );
  }
});

// A message is for people; deciding on its text breaks when the wording changes.
test('no decision is taken from an error message or from a code string of our own errors', async () => {
  const found = (await sources()).flatMap(({ file, text }) =>
    text.split('\n').flatMap((line, i) =>
      /\.message\.(startsWith|endsWith|includes|match)\(|\.test\([\w.]*\.message\)|\.code\s*[!=]==\s*'ERR_DOCKLESS/.test(line)
        ? [`${file}:${i + 1}: ${line.trim()}`]
        : [],
    ),
  );
  assert.deepEqual(found, []);
});
