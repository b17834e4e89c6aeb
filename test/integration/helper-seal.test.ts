import { strict as assert } from 'node:assert';
import { execFileSync, spawn } from 'node:child_process';
import { closeSync, existsSync, openSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { locateHelper, nativeBuildDir } from '../../src/helper/locate.js';
import { sealedHelperPath } from '../../src/helper/sealed.js';

const skip = !existsSync(join(nativeBuildDir, 'dockless-helper')) ? `${nativeBuildDir}/dockless-helper not built: run npm run build` : undefined;
if (skip !== undefined) console.log(`# skipping the helper seal tests: ${skip}`);

/** Runs `seal`, opens its copy, sends `line(copy path)` and returns the answer that follows. */
async function sealAnswer(line: (copy: string) => string): Promise<string> {
  const child = spawn(locateHelper(), ['seal'], { stdio: ['pipe', 'pipe', 'ignore', 'ignore'], env: {} });
  const closed = new Promise((resolve) => child.once('close', resolve));
  let out = '';
  let fd: number | undefined;
  try {
    for await (const chunk of child.stdout!) {
      out += String(chunk);
      if (fd === undefined && out.includes('\n')) {
        fd = openSync(`/proc/${child.pid}/fd/${out.trim()}`, 'r');
        out = '';
        child.stdin!.write(`${line(`/proc/${process.pid}/fd/${fd}`)}\n`);
      } else if (fd !== undefined && out.includes('\n')) {
        break;
      }
    }
  } finally {
    child.stdin!.end();
    child.stdout!.destroy();
    await closed;
    if (fd !== undefined) closeSync(fd);
  }
  return out.trim();
}

describe('the sealed copy of the helper', { skip, timeout: 20_000 }, () => {
  // The check that the copy executes was a second spawn of the whole Node process; `seal` makes it now.
  it('`seal` checks that its copy executes by the path the caller names, and says so', async () => {
    assert.equal(await sealAnswer((copy) => copy), 'ok');
  });

  it('`seal` answers with the exit status when the path does not execute', async () => {
    assert.equal(await sealAnswer(() => `/proc/${process.pid}/fd/1000000`), 'exit 126');
  });

  // Unanswered, the caller would wait for the answer as long as `seal` waits for its EOF.
  it('`seal` answers a line that names no /proc path, or one too long, with a usage exit', async () => {
    assert.equal(await sealAnswer(() => 'version'), 'exit 2');
    assert.equal(await sealAnswer(() => `/proc/${'x'.repeat(100)}`), 'exit 2');
  });

  it('the library makes it on the second call, and runs the helper from it', async () => {
    const first = await sealedHelperPath();
    const copy = await sealedHelperPath();
    assert.equal(first, locateHelper());
    assert.match(copy, new RegExp(`^/proc/${process.pid}/fd/\\d+$`));
    assert.match(readlinkSync(copy), /^\/memfd:dockless-helper/);
    assert.match(execFileSync(copy, ['version'], { encoding: 'utf8' }), /^dockless-helper \d+/);
    assert.equal(await sealedHelperPath(), copy);
  });
});
