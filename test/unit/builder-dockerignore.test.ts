import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DockerIgnore, globToRegExp } from '../../src/builder/patterns.js';
import { InvalidArgumentError } from '../../src/errors.js';

describe('.dockerignore', () => {
  const cases: [rules: string, path: string, excluded: boolean][] = [
    ['node_modules', 'node_modules', true],
    ['node_modules', 'node_modules/x/index.js', true],
    ['node_modules', 'src/node_modules', false],
    ['*.log', 'debug.log', true],
    ['*.log', 'logs/debug.log', false],
    ['**/*.log', 'logs/deep/debug.log', true],
    ['**/*.log', 'debug.log', true],
    ['logs/**', 'logs/a/b', true],
    ['*/temp*', 'somedir/temporary.txt', true],
    ['*/temp*', 'temp', false],
    ['*/*/temp*', 'a/b/temp', true],
    ['temp?', 'temp1', true],
    ['temp?', 'temp12', false],
    ['/build/', 'build/out.o', true],
    ['./build', 'build', true],
    ['*.md\n!README.md', 'README.md', false],
    ['*.md\n!README.md', 'CHANGES.md', true],
    ['!README.md\n*.md', 'README.md', true],
    ['docs\n!docs/keep.txt', 'docs/keep.txt', false],
    ['docs\n!docs/keep.txt', 'docs/drop.txt', true],
    ['# a comment\n\n   spaced.txt   ', 'spaced.txt', true],
    ['# a comment', '# a comment', false],
    ['[a-c].txt', 'b.txt', true],
    ['[a-c].txt', 'd.txt', false],
    ['[^a-c].txt', 'd.txt', true],
    ['a\\*b', 'a*b', true],
    ['a\\*b', 'axb', false],
  ];
  for (const [rules, path, excluded] of cases) {
    it(`${JSON.stringify(rules)} ${excluded ? 'excludes' : 'keeps'} ${path}`, () => {
      assert.equal(DockerIgnore.parse(rules).excludes(path), excluded);
    });
  }

  it('knows when `!` rules may re-include below an excluded directory', () => {
    assert.equal(DockerIgnore.parse('docs\n').hasExceptions, false);
    assert.equal(DockerIgnore.parse('docs\n!docs/keep.txt\n').hasExceptions, true);
    assert.equal(DockerIgnore.parse('\n# only comments\n').empty, true);
  });

  it('names the line of a malformed pattern', () => {
    assert.throws(() => DockerIgnore.parse('ok\n[unterminated\n'), (err: unknown) => err instanceof InvalidArgumentError && /line 2/.test(err.message));
  });
});

describe('COPY wildcards (Go filepath.Match)', () => {
  it('never match across a slash, and treat ** as two stars', () => {
    assert.equal(globToRegExp('*.txt').test('a.txt'), true);
    assert.equal(globToRegExp('*.txt').test('dir/a.txt'), false);
    assert.equal(globToRegExp('?').test('/'), false);
    assert.equal(globToRegExp('[a/]').test('/'), false);
    assert.equal(globToRegExp('**').test('a/b'), false);
    assert.equal(globToRegExp('**', { doubleStar: true }).test('a/b'), true);
  });
});
