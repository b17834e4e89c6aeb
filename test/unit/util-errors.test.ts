import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { InvalidArgumentError, IOError, NotFoundError, PermissionError } from '../../src/errors.js';
import { fsError, parseJsonObject } from '../../src/util/index.js';

const errno = (code: string): NodeJS.ErrnoException => Object.assign(new Error(code), { code });

// Callers branch on the class, never on message text: every filesystem failure maps to one documented class.
describe('fsError', () => {
  for (const [code, cls] of [
    ['ENOENT', NotFoundError],
    ['ENOTDIR', NotFoundError],
    ['EACCES', PermissionError],
    ['EPERM', PermissionError],
    ['EROFS', PermissionError],
    ['ENOSPC', IOError],
    ['EIO', IOError],
  ] as const) {
    it(`maps ${code} to ${cls.name}, keeping the cause and the path`, () => {
      const cause = errno(code);
      const err = fsError(cause, 'open `/x`', '/x');
      assert.ok(err instanceof cls);
      assert.equal(err.message, `open \`/x\`: ${code}`);
      assert.equal(err.cause, cause);
      assert.equal(err.path, '/x');
    });
  }
});

describe('parseJsonObject', () => {
  it('parses a JSON object from bytes or text', () => {
    assert.deepEqual(parseJsonObject(Buffer.from('{"a":1}'), 'doc'), { a: 1 });
    assert.deepEqual(parseJsonObject('{"b":2}', 'doc'), { b: 2 });
  });

  it('refuses what is not JSON, or not an object, with InvalidArgumentError naming the document', () => {
    assert.throws(() => parseJsonObject('{nope', 'manifest sha256:ab'), (e: unknown) => e instanceof InvalidArgumentError && e.message === 'manifest sha256:ab: not valid JSON' && e.cause instanceof SyntaxError);
    assert.throws(() => parseJsonObject('"text"', 'index'), InvalidArgumentError);
    assert.throws(() => parseJsonObject('null', 'index'), InvalidArgumentError);
  });
});
