#!/usr/bin/env node
/**
 * Renders bench/README.md's table of the last figures from bench/results/*.json,
 * the files each bench writes at its end: the table is the benches' own output,
 * never typed by hand. Run after a bench: `node bench/render-readme.mjs`.
 */
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const here = import.meta.dirname;
const BEGIN = '<!-- results:begin (written by bench/render-readme.mjs from bench/results/*.json) -->';
const END = '<!-- results:end -->';

const num = (n) => (n >= 100 ? n.toFixed(0) : n >= 10 ? n.toFixed(1) : n.toFixed(2));

const files = readdirSync(join(here, 'results'))
  .filter((f) => f.endsWith('.json'))
  .sort();
const lines = ['| bench | what | dockless | peer (same run) | ratio | target | measured |', '|---|---|---|---|---|---|---|'];
for (const file of files) {
  const r = JSON.parse(readFileSync(join(here, 'results', file), 'utf8'));
  const where = `${r.date.slice(0, 16).replace('T', ' ')} UTC, ${r.fs === 'shm' ? '/dev/shm' : 'disk'}${r.fs === 'disk' ? (r.cacheDropped ? ', cache dropped' : ', warm cache') : ''}`;
  for (const row of r.rows) {
    const peer = row.peer ? `${row.peer.name} ${num(row.peer.value)} ${row.unit}` : '—';
    const ratio = row.ratio !== undefined ? `${row.ratio.toFixed(2)}×` : '—';
    lines.push(`| ${r.bench} | ${row.what} | ${num(row.ours)} ${row.unit} | ${peer} | ${ratio} | ${row.target ?? ''} | ${where} |`);
  }
}
const readme = join(here, 'README.md');
const text = readFileSync(readme, 'utf8');
const start = text.indexOf(BEGIN);
const end = text.indexOf(END);
if (start < 0 || end < start) throw new Error(`bench/README.md: markers ${BEGIN} … ${END} not found`);
writeFileSync(readme, `${text.slice(0, start + BEGIN.length)}\n${lines.join('\n')}\n${text.slice(end)}`);
console.log(`bench/README.md: ${lines.length - 2} rows from ${files.length} result files`);
