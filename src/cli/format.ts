/**
 * Output as Docker prints it: tables with its column names and padding,
 * `--format json` (one object per line), `--format '{{.ID}}\t{{.Names}}'`-style
 * templates for the common fields, Docker's relative times and human sizes.
 *
 * @module
 */
import { InvalidArgumentError } from '../index.js';

/** One row: Docker's field names (`ID`, `Image`, `Names`…) to display strings. */
export type Row = Readonly<Record<string, string>>;

/** A table column: its heading and the row field it shows. */
export interface Column {
  /** The heading, as Docker prints it (`CONTAINER ID`). */
  heading: string;
  /** The row field. */
  field: string;
}

/**
 * Prints rows in the layout `--format` asks for: `undefined` or `table` for
 * Docker's table, `json` for one JSON object per line, `table TEMPLATE` for a
 * table of a template, anything else a template applied to each row.
 */
export function formatRows(rows: readonly Row[], columns: readonly Column[], format: string | undefined, quiet = false): string {
  if (quiet) return rows.map((r) => `${r[columns[0]!.field] ?? ''}\n`).join('');
  if (format === undefined || format === 'table') return table(rows, columns);
  if (format === 'json') return rows.map((r) => `${JSON.stringify(r)}\n`).join('');
  if (format.startsWith('table ')) {
    const template = format.slice('table '.length);
    const fields = [...template.matchAll(/\{\{\s*\.(\w+)\s*\}\}/g)].map((m) => m[1]!);
    const headed = fields.map((f) => columns.find((c) => c.field === f) ?? { heading: f.toUpperCase(), field: f });
    return table(rows, headed);
  }
  return rows.map((r) => `${renderTemplate(format, r)}\n`).join('');
}

/** Docker's table: columns left-aligned, three spaces apart, no trailing spaces. */
export function table(rows: readonly Row[], columns: readonly Column[]): string {
  const cells = [columns.map((c) => c.heading), ...rows.map((r) => columns.map((c) => r[c.field] ?? ''))];
  const widths = columns.map((_, i) => Math.max(...cells.map((line) => line[i]!.length)));
  return cells
    .map((line) => line.map((cell, i) => (i === line.length - 1 ? cell : cell.padEnd(widths[i]! + 3))).join('').trimEnd() + '\n')
    .join('');
}

/**
 * Applies a Go-template-like format to a value: `{{.Field}}`, `{{.A.B}}`,
 * `{{json .}}`, `{{json .Field}}`, `{{upper .F}}`, `{{lower .F}}`, and the
 * escapes `\t` and `\n`. Unknown fields are an error, as in Docker.
 */
export function renderTemplate(template: string, value: unknown): string {
  const text = template.replace(/\\t/g, '\t').replace(/\\n/g, '\n');
  return text.replace(/\{\{\s*(?:(json|upper|lower|title)\s+)?\.([\w.]*)\s*\}\}/g, (_, fn: string | undefined, path: string) => {
    const v = path === '' ? value : lookup(value, path, template);
    if (fn === 'json') return JSON.stringify(v ?? null);
    const s = typeof v === 'string' ? v : v === undefined || v === null ? '' : typeof v === 'object' ? JSON.stringify(v) : String(v);
    if (fn === 'upper') return s.toUpperCase();
    if (fn === 'lower') return s.toLowerCase();
    if (fn === 'title') return s.charAt(0).toUpperCase() + s.slice(1);
    return s;
  });
}

function lookup(value: unknown, path: string, template: string): unknown {
  let v: unknown = value;
  for (const key of path.split('.')) {
    if (v === null || typeof v !== 'object' || !(key in v)) {
      throw new InvalidArgumentError(`--format: template \`${template}\`: no field \`${key}\``);
    }
    v = (v as Record<string, unknown>)[key];
  }
  return v;
}

/** Docker's "2 minutes ago" wording (go-units HumanDuration). */
export function ago(date: Date, now = Date.now()): string {
  return `${humanDuration(now - date.getTime())} ago`;
}

/** go-units HumanDuration: "Less than a second", "3 seconds", "About a minute", "2 hours"… */
export function humanDuration(ms: number): string {
  const s = Math.floor(ms / 1000);
  if (s < 1) return 'Less than a second';
  if (s === 1) return '1 second';
  if (s < 60) return `${s} seconds`;
  const min = Math.round(ms / 60_000);
  if (min === 1) return 'About a minute';
  if (min < 60) return `${min} minutes`;
  const h = Math.round(ms / 3_600_000);
  if (h === 1) return 'About an hour';
  if (h < 48) return `${h} hours`;
  if (h < 24 * 7 * 2) return `${Math.round(h / 24)} days`;
  if (h < 24 * 30 * 2) return `${Math.round(h / 24 / 7)} weeks`;
  if (h < 24 * 365 * 2) return `${Math.round(h / 24 / 30)} months`;
  return `${Math.round(h / 24 / 365)} years`;
}

/** go-units HumanSize: decimal units, four significant digits ("1.23MB"). */
export function humanSize(bytes: number): string {
  const units = ['B', 'kB', 'MB', 'GB', 'TB', 'PB'];
  let v = bytes;
  let i = 0;
  while (v >= 1000 && i < units.length - 1) {
    v /= 1000;
    i++;
  }
  return `${Number(v.toPrecision(4))}${units[i]}`;
}

/** Binary units for memory, as `docker stats` shows them ("12.5MiB"). */
export function binarySize(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = bytes;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${Number(v.toFixed(2))}${units[i]}`;
}

/** A command line as `docker ps` shows it: quoted, cut to 20 characters with an ellipsis. */
export function shortCommand(cmd: readonly string[], full = false): string {
  const text = cmd.join(' ');
  const cut = !full && text.length > 20 ? `${text.slice(0, 19)}…` : text;
  return `"${cut}"`;
}

/** The 12-character id Docker shows; `full` keeps it whole. */
export function shortId(id: string, full = false): string {
  const hex = id.startsWith('sha256:') ? id.slice('sha256:'.length) : id;
  return full ? id : hex.slice(0, 12);
}
