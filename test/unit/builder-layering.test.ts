/**
 * The builder's shape: no import cycle between its files, other folders
 * entered only through their index.ts (and it only through its own), no
 * dynamic import of our modules, and no file past ~600 lines.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const SRC = resolve(dirname(fileURLToPath(import.meta.url)), '../../src');
const IMPORT_RE = /(?:^|\n)\s*(?:import|export)\s[^'";]*?from\s*['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)/g;

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? sources(path) : name.endsWith('.ts') ? [path] : [];
  });
}

const rel = (file: string): string => relative(SRC, file);
const imports = new Map<string, { target: string; dynamic: boolean }[]>();
for (const file of sources(SRC)) {
  const deps = [];
  for (const m of readFileSync(file, 'utf8').matchAll(IMPORT_RE)) {
    const spec = m[1] ?? m[2]!;
    if (spec.startsWith('.')) deps.push({ target: resolve(dirname(file), spec).replace(/\.js$/, '.ts'), dynamic: m[2] !== undefined });
  }
  imports.set(file, deps);
}
const builderFiles = [...imports.keys()].filter((f) => rel(f).startsWith('builder/'));

test('src/builder enters other folders only through their index.ts, and is entered only through its own', () => {
  const bypasses: string[] = [];
  for (const [file, deps] of imports) {
    for (const { target } of deps) {
      const [from, to] = [rel(file).split('/'), rel(target).split('/')];
      const crosses = from[0] !== to[0] && (from[0] === 'builder' || to[0] === 'builder');
      if (crosses && to.length > 1 && !(to.length === 2 && to[1] === 'index.ts')) bypasses.push(`${rel(file)} -> ${rel(target)}`);
    }
  }
  assert.deepEqual(bypasses, []);
});

test('no folder below src/builder imports it (runtime, store, transfer, …)', () => {
  const upward = [...imports].flatMap(([file, deps]) =>
    !rel(file).includes('/') || rel(file).startsWith('builder/') ? [] : deps.filter((d) => rel(d.target).startsWith('builder/')).map((d) => `${rel(file)} -> ${rel(d.target)}`),
  );
  assert.deepEqual(upward, []);
});

test('no import cycle and no dynamic import between the files of src/builder', () => {
  assert.deepEqual(builderFiles.flatMap((f) => imports.get(f)!.filter((d) => d.dynamic).map((d) => `${rel(f)} -> ${rel(d.target)}`)), []);
  const cycles: string[] = [];
  const state = new Map<string, 'open' | 'done'>();
  const visit = (file: string, path: string[]): void => {
    if (state.get(file) === 'done') return;
    if (state.get(file) === 'open') return void cycles.push([...path.slice(path.indexOf(file)), file].map(rel).join(' -> '));
    state.set(file, 'open');
    for (const { target } of imports.get(file) ?? []) if (rel(target).startsWith('builder/')) visit(target, [...path, file]);
    state.set(file, 'done');
  };
  for (const file of builderFiles) visit(file, []);
  assert.deepEqual(cycles, []);
});

test('no file of src/builder is over 600 lines', () => {
  const long = builderFiles.map((f) => [rel(f), readFileSync(f, 'utf8').split('\n').length] as const).filter(([, n]) => n > 600);
  assert.deepEqual(long, []);
});
