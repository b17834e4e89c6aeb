/**
 * The house's shape, checked on every run: arrows between top-level folders
 * point one way (DESIGN.md), a folder is entered only through its index.ts, no
 * import cycle exists between or inside folders, and no source file grows past
 * ~600 lines without saying why in its opening comment ("Past ~600 lines …").
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const SRC = resolve(dirname(fileURLToPath(import.meta.url)), '../../src');

/** What each top-level unit of src/ may import besides itself; `index.ts` may import anything. */
const ALLOWED: Record<string, readonly string[]> = {
  'errors.ts': [],
  util: ['errors.ts'],
  oci: ['errors.ts', 'util'],
  helper: ['errors.ts', 'util'],
  layer: ['errors.ts', 'util', 'oci', 'helper'],
  store: ['errors.ts', 'util', 'oci', 'layer', 'helper'],
  transfer: ['errors.ts', 'util', 'oci', 'layer', 'store'],
  'image-store.ts': ['errors.ts', 'util', 'oci', 'layer', 'helper', 'store', 'transfer'],
  runtime: ['errors.ts', 'util', 'oci', 'layer', 'helper', 'store'],
  ns: ['errors.ts', 'util', 'oci', 'helper', 'store', 'runtime'],
  'networked-runtime.ts': ['errors.ts', 'util', 'runtime', 'ns'],
  builder: ['errors.ts', 'util', 'oci', 'layer', 'helper', 'store', 'transfer', 'runtime'],
  testing: ['index.ts'],
  cli: ['index.ts'],
  'oci-runtime': ['errors.ts', 'util', 'oci', 'helper', 'runtime'],
};

const MAX_LINES = 600;
const IMPORT_RE =
  /(?:^|\n)\s*(?:import|export)\s[^'";]*?from\s*['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)|(?:^|\n)\s*import\s*['"]([^'"]+)['"]/g;

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return sources(path);
    return name.endsWith('.ts') ? [path] : [];
  });
}

const unitOf = (file: string): string => relative(SRC, file).split('/')[0]!;
const rel = (file: string): string => relative(SRC, file);

const graph = new Map<string, string[]>();
const dynamicImports: string[] = [];
for (const file of sources(SRC)) {
  const deps: string[] = [];
  for (const m of readFileSync(file, 'utf8').matchAll(IMPORT_RE)) {
    const spec = m[1] ?? m[2] ?? m[3]!;
    if (!spec.startsWith('.')) continue;
    deps.push(resolve(dirname(file), spec).replace(/\.js$/, '.ts'));
    if (m[2] !== undefined) dynamicImports.push(`${rel(file)} -> ${spec}`);
  }
  graph.set(file, deps);
}

/** Strongly connected components with more than one node, or a node importing itself (Tarjan). */
function cycles<T>(nodes: Iterable<T>, next: (node: T) => T[]): T[][] {
  let counter = 0;
  const index = new Map<T, number>();
  const low = new Map<T, number>();
  const onStack = new Set<T>();
  const stack: T[] = [];
  const found: T[][] = [];
  const visit = (v: T): void => {
    index.set(v, counter);
    low.set(v, counter++);
    stack.push(v);
    onStack.add(v);
    for (const w of next(v)) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) {
        low.set(v, Math.min(low.get(v)!, index.get(w)!));
      }
    }
    if (low.get(v) !== index.get(v)) return;
    const component: T[] = [];
    let w: T;
    do {
      w = stack.pop()!;
      onStack.delete(w);
      component.push(w);
    } while (w !== v);
    if (component.length > 1 || next(v).includes(v)) found.push(component);
  };
  for (const v of nodes) if (!index.has(v)) visit(v);
  return found;
}

test('every top-level unit of src/ is in the layering table', () => {
  const unknown = [...new Set([...graph.keys()].map(unitOf))].filter((u) => u !== 'index.ts' && !(u in ALLOWED));
  assert.deepEqual(unknown, []);
});

test('arrows between folders point down (DESIGN.md)', () => {
  const upward: string[] = [];
  for (const [file, deps] of graph) {
    const from = unitOf(file);
    if (from === 'index.ts') continue;
    for (const dep of deps) {
      const to = unitOf(dep);
      if (to !== from && !(ALLOWED[from] ?? []).includes(to)) upward.push(`${rel(file)} -> ${rel(dep)}`);
    }
  }
  assert.deepEqual(upward, []);
});

test("another folder is entered only through its index.ts", () => {
  const bypasses: string[] = [];
  for (const [file, deps] of graph) {
    for (const dep of deps) {
      const parts = rel(dep).split('/');
      if (unitOf(dep) !== unitOf(file) && parts.length > 1 && !(parts.length === 2 && parts[1] === 'index.ts'))
        bypasses.push(`${rel(file)} -> ${rel(dep)}`);
    }
  }
  assert.deepEqual(bypasses, []);
});

/**
 * The only places that load one of our modules lazily, with `import()`: each
 * keeps a part that a container run never needs out of `import('dockless')`
 * (time to first container). The imports are still in the graph above, so
 * layering and cycles are checked through them as through static ones.
 */
const LAZY_IMPORTS: Record<string, string> = {
  // pull, push, import and export load http, tls and the archive formats on first use.
  'image-store.ts -> ./transfer/index.js': 'registries and archives load on the first pull, push, import or export',
  // ADD <url> needs the http client; a build without one does not.
  'builder/fetch-url.ts -> ../transfer/index.js': 'the http client loads with the first ADD of a URL',
  // `import --change` parses Dockerfile instructions with the archive import's parser.
  'builder/import-rootfs.ts -> ../transfer/index.js': 'the change parser loads with the first import of a directory with changes',
  // The `dockless` command loads the code of the command it runs, not of all of them.
  'cli/bin.ts -> ./main.js': 'loaded after the compile cache of Node 22 is turned on, so that it is cached',
  'cli/main.ts -> ./containers.js': 'the container commands load when one of them runs',
  'cli/main.ts -> ./images.js': 'the image commands (the builder, the progress display) load when one of them runs',
  'cli/main.ts -> ./networks.js': 'the network and pod commands load when one of them runs',
  'cli/main.ts -> ./system.js': 'the system commands load when one of them runs',
  'cli/containers.ts -> ./host-tar.js': 'the host-side tar code loads with the first cp',
};

test('no dynamic import() of our own modules (it hides a cycle from the checks above) outside the lazy-loading allow-list', () => {
  assert.deepEqual(
    [...new Set(dynamicImports)].filter((d) => !(d in LAZY_IMPORTS)),
    [],
  );
});

test('every lazy-loading point of the allow-list is still used (a stale entry would allow a new one silently)', () => {
  assert.deepEqual(
    Object.keys(LAZY_IMPORTS).filter((d) => !dynamicImports.includes(d)),
    [],
  );
});

test('no import cycle between files', () => {
  const found = cycles(graph.keys(), (f) => (graph.get(f) ?? []).filter((d) => graph.has(d)));
  assert.deepEqual(found.map((c) => c.map(rel).sort()), []);
});

test('no import cycle between folders', () => {
  const units = new Map<string, Set<string>>();
  for (const [file, deps] of graph) {
    const from = unitOf(file);
    const set = units.get(from) ?? new Set<string>();
    for (const dep of deps) if (unitOf(dep) !== from) set.add(unitOf(dep));
    units.set(from, set);
  }
  assert.deepEqual(cycles(units.keys(), (u) => [...(units.get(u) ?? [])]), []);
});

test(`no source file over ${MAX_LINES} lines without a comment at its top saying why`, () => {
  const long: string[] = [];
  for (const file of graph.keys()) {
    const text = readFileSync(file, 'utf8');
    const lines = text.split('\n').length;
    // The reason is in the file's opening comment: "Past ~600 lines on purpose: …".
    const opening = /^\/\*\*[\s\S]*?\*\//.exec(text)?.[0] ?? '';
    if (lines > MAX_LINES && !/Past ~600 lines/.test(opening)) long.push(`${rel(file)} (${lines})`);
  }
  assert.deepEqual(long, []);
});
