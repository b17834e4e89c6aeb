import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { contextual, rewrap } from '../../src/builder/error-context.js';
import { BuildError, NotFoundError } from '../../src/errors.js';

describe('build error context', () => {
  it('names the step once, keeping the class; what names it already is known without reading the message', () => {
    const step = 'build step 2/3 `COPY a /a`';
    const plain = rewrap(new NotFoundError('build cache entry gone'), step);
    assert.ok(plain instanceof NotFoundError);
    assert.equal(plain.message, `${step}: build cache entry gone`);
    assert.equal(rewrap(plain, 'build'), plain);
    assert.equal(plain.message, `${step}: build cache entry gone`);

    const named = contextual(new NotFoundError('somewhere else: gone'));
    assert.equal(rewrap(named, step).message, 'somewhere else: gone');
  });

  it('wraps what is not a dockless error in a BuildError with the cause', () => {
    const cause = Object.assign(new Error('EACCES: permission denied'), { code: 'EACCES' });
    const err = rewrap(cause, 'build step 1/1 `RUN x`');
    assert.ok(err instanceof BuildError);
    assert.equal(err.message, 'build step 1/1 `RUN x`: EACCES: permission denied');
    assert.equal(err.cause, cause);
  });
});
