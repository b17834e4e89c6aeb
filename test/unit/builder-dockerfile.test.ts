import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { buildDockerfile, parseDockerfile } from '../../src/builder/dockerfile.js';
import { expandWord, expandWords, splitWords, WordError } from '../../src/builder/shell-words.js';
import { InvalidArgumentError } from '../../src/errors.js';
import { ImageStore } from '../../src/image-store.js';

describe('variable substitution', () => {
  const vars: Record<string, string> = { NAME: 'world', EMPTY: '', SPACED: 'a b', DIR: '/srv' };
  const lookup = (n: string): string | undefined => vars[n];
  const cases: [word: string, value: string][] = [
    ['$NAME', 'world'],
    ['${NAME}', 'world'],
    ['hello-${NAME}!', 'hello-world!'],
    ['$UNSET', ''],
    ['${UNSET:-fallback}', 'fallback'],
    ['${EMPTY:-fallback}', 'fallback'],
    ['${NAME:-fallback}', 'world'],
    ['${EMPTY-fallback}', ''],
    ['${UNSET-fallback}', 'fallback'],
    ['${NAME:+alt}', 'alt'],
    ['${EMPTY:+alt}', ''],
    ['${UNSET:+alt}', ''],
    ['${EMPTY+alt}', 'alt'],
    ['${UNSET:-$DIR/x}', '/srv/x'],
    ['${UNSET:-"a b"}', 'a b'],
    ["'$NAME'", '$NAME'],
    ['"$NAME"', 'world'],
    ['"a \\"q\\" \\$NAME \\n"', 'a "q" $NAME \\n'],
    ['\\$NAME', '$NAME'],
    ['a\\ b', 'a b'],
    ['$', '$'],
    ['$1x', 'x'],
    ['${DIR}/"${SPACED}"', '/srv/a b'],
  ];
  for (const [word, value] of cases) {
    it(`${word} → ${JSON.stringify(value)}`, () => assert.equal(expandWord(word, lookup).value, value));
  }

  it('uses the escape directive character', () => {
    assert.equal(expandWord('`$NAME', lookup, '`').value, '$NAME');
    assert.equal(expandWord('C:\\path\\$NAME', lookup, '`').value, 'C:\\path\\world');
  });

  it('reports the variables it used', () => {
    assert.deepEqual([...expandWord('${NAME}${UNSET:-x}$DIR', lookup).used].sort(), ['DIR', 'NAME']);
  });

  it('fails on bad syntax and on ${VAR:?} of an unset variable', () => {
    for (const bad of ['${NAME', '${}', '${:-x}', '${NAME:%x}', '"open', "'open", '${UNSET:?must be set}', '${EMPTY:?}']) {
      assert.throws(() => expandWord(bad, lookup), WordError, bad);
    }
    assert.throws(() => expandWord('${UNSET:?must be set}', lookup), /UNSET: must be set/);
  });

  it('splits words on unquoted whitespace, also in expansions, for EXPOSE and VOLUME', () => {
    assert.deepEqual(expandWords('80 $SPACED "$SPACED" $EMPTY x${EMPTY}y', lookup).values, ['80', 'a', 'b', 'a b', 'xy']);
    assert.deepEqual(splitWords('A=1 B="two words" C=\'x y\' D=a\\ b'), ['A=1', 'B="two words"', "C='x y'", 'D=a\\ b']);
  });
});

describe('parseDockerfile', () => {
  it('reads stages, global args, flags, continuations, JSON forms and heredocs', () => {
    const text = [
      'ARG BASE=base:1',
      'FROM --platform=$BUILDPLATFORM ${BASE} AS Build',
      'RUN echo a \\',
      '# a comment inside a continuation',
      '    && echo b',
      'RUN ["sh", "-c", "echo x y"]',
      'RUN <<EOF',
      'echo heredoc',
      'EOF',
      'COPY --from=build --chown=1:2 --chmod=644 a b /dst/',
      'COPY <<-"EOT" /file',
      '\tcontent ${X}',
      '\tEOT',
      'FROM scratch',
      'CMD ["a", "b c"]',
    ].join('\n');
    const df = parseDockerfile(text);
    assert.equal(df.escape, '\\');
    assert.equal(df.globalArgs.length, 1);
    assert.equal(df.stages.length, 2);
    const [build, final] = df.stages;
    assert.equal(build!.name, 'build');
    assert.equal(build!.from, '${BASE}');
    assert.equal(build!.platform, '$BUILDPLATFORM');
    const [run, runJson, runHeredoc, copy, copyHeredoc] = build!.instructions;
    assert.equal(run!.line, 3);
    assert.equal(run!.args, 'echo a     && echo b');
    assert.deepEqual(runJson!.json, ['sh', '-c', 'echo x y']);
    assert.equal(runHeredoc!.firstLine, '<<EOF');
    assert.deepEqual(runHeredoc!.heredocs, [{ name: 'EOF', content: 'echo heredoc\n', quoted: false }]);
    assert.deepEqual(copy!.flags, [
      { name: 'from', value: 'build' },
      { name: 'chown', value: '1:2' },
      { name: 'chmod', value: '644' },
    ]);
    assert.equal(copy!.args, 'a b /dst/');
    assert.deepEqual(copyHeredoc!.heredocs, [{ name: 'EOT', content: 'content ${X}\n', quoted: true }]);
    assert.equal(final!.name, undefined);
    assert.deepEqual(final!.instructions[0]!.json, ['a', 'b c']);
  });

  it('honours the escape directive', () => {
    const df = parseDockerfile('# escape=`\nFROM scratch\nENV A=1 `\n    B=2\n');
    assert.equal(df.escape, '`');
    assert.equal(df.stages[0]!.instructions[0]!.args, 'A=1     B=2');
  });

  const errors: [text: string, line: number, pattern: RegExp][] = [
    ['FROM scratch\nFROBNICATE x\n', 2, /unknown instruction `FROBNICATE`/],
    ['RUN echo\nFROM scratch\n', 1, /RUN before the first FROM/],
    ['FROM scratch\nCOPY onlyone\n', 2, /needs a source and a destination/],
    ['FROM scratch\n\nSHELL /bin/bash -c\n', 3, /SHELL must be a JSON array/],
    ['FROM scratch\nCOPY --frm=x a /b\n', 2, /unknown flag --frm/],
    ['FROM scratch\nRUN --network=host true\n', 2, /--network=host/],
    ['FROM scratch\nENV\n', 2, /requires at least one argument/],
    ['FROM scratch AS a\nFROM scratch AS a\n', 2, /duplicate stage name/],
    ['FROM scratch\nHEALTHCHECK --interval=soon CMD true\n', 2, /not a duration/],
    ['FROM a b c d\n', 1, /FROM takes an image/],
  ];
  for (const [text, line, pattern] of errors) {
    it(`names line ${line}: ${pattern.source}`, async () => {
      const dir = await mkdtemp(join(tmpdir(), 'dockless-df-'));
      try {
        await writeFile(join(dir, 'Dockerfile'), text);
        const store = await ImageStore.open({ root: join(dir, 'store') });
        await assert.rejects(buildDockerfile(store, { context: dir }), (err: unknown) => {
          assert.ok(err instanceof InvalidArgumentError, String(err));
          assert.match(err.message, new RegExp(`^Dockerfile line ${line}: `));
          assert.match(err.message, pattern);
          return true;
        });
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    });
  }

  it('refuses a Dockerfile without FROM', () => {
    assert.throws(() => parseDockerfile('# nothing\n'), /no FROM/);
  });
});

describe('Dockerfile config steps', () => {
  let dir: string;
  let store: ImageStore;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'dockless-df-config-'));
    store = await ImageStore.open({ root: join(dir, 'store') });
  });
  afterEach(() => rm(dir, { recursive: true, force: true }));

  const build = async (text: string, options: { buildArgs?: Record<string, string>; target?: string } = {}) => {
    await writeFile(join(dir, 'Dockerfile'), text);
    const result = await buildDockerfile(store, { context: dir, ...options });
    return (await store.inspect(result.digest)).config;
  };

  it('scopes ARGs as Docker does and substitutes them, with ENV winning over ARG', async () => {
    const config = await build(
      [
        'ARG GLOBAL=g1',
        'ARG ONLY_GLOBAL=og',
        'FROM scratch',
        'ARG GLOBAL',
        'ARG LOCAL=l1',
        'ARG UNSET_ARG',
        'ENV FROM_GLOBAL=${GLOBAL} FROM_LOCAL=$LOCAL NOT_IN_SCOPE=${ONLY_GLOBAL:-out-of-scope}',
        'ENV DEFAULTED=${UNSET_ARG:-dflt} ALT=${LOCAL:+alt} NOALT=${UNSET_ARG:+alt}',
        'ENV LOCAL=from-env',
        'LABEL "with space"="$LOCAL" plain=${GLOBAL}-x',
        'USER ${LOCAL}',
        'EXPOSE 80 53/udp 8000-8001',
        'VOLUME ["/data"]',
        'STOPSIGNAL SIGINT',
        'HEALTHCHECK --interval=30s --retries=3 CMD wget -q localhost',
        'ONBUILD RUN echo child',
        'CMD echo "$HOME"',
      ].join('\n'),
      { buildArgs: { LOCAL: 'from-build-arg' } },
    );
    const env = Object.fromEntries((config.config?.Env ?? []).map((p) => [p.slice(0, p.indexOf('=')), p.slice(p.indexOf('=') + 1)]));
    assert.equal(env.FROM_GLOBAL, 'g1');
    assert.equal(env.FROM_LOCAL, 'from-build-arg');
    assert.equal(env.NOT_IN_SCOPE, 'out-of-scope');
    assert.equal(env.DEFAULTED, 'dflt');
    assert.equal(env.ALT, 'alt');
    assert.equal(env.NOALT, '');
    assert.equal(env.LOCAL, 'from-env');
    assert.deepEqual(config.config?.Labels, { 'with space': 'from-env', plain: 'g1-x' });
    assert.equal(config.config?.User, 'from-env');
    assert.deepEqual(Object.keys(config.config?.ExposedPorts ?? {}).sort(), ['53/udp', '80/tcp', '8000/tcp', '8001/tcp']);
    assert.deepEqual(config.config?.Volumes, { '/data': {} });
    assert.equal(config.config?.StopSignal, 'SIGINT');
    assert.deepEqual(config.config?.Healthcheck, { Test: ['CMD-SHELL', 'wget -q localhost'], Interval: 30_000_000_000, Retries: 3 });
    assert.deepEqual(config.config?.OnBuild, ['RUN echo child']);
    assert.deepEqual(config.config?.Cmd, ['/bin/sh', '-c', 'echo "$HOME"']);
    assert.ok(config.history?.every((h) => h.empty_layer === true));
    assert.ok(config.history?.some((h) => h.created_by === 'USER from-env'));
  });

  it('builds the target stage, SHELL changes shell forms, ENTRYPOINT clears an inherited CMD', async () => {
    const text = [
      'FROM scratch AS one',
      'CMD ["inherited"]',
      'FROM one AS two',
      'SHELL ["/bin/bash", "-c"]',
      'ENTRYPOINT run-me',
      'FROM one AS three',
      'CMD ["mine"]',
      'ENTRYPOINT ["/entry"]',
    ].join('\n');
    const two = await build(text, { target: 'two' });
    assert.deepEqual(two.config?.Entrypoint, ['/bin/bash', '-c', 'run-me']);
    assert.equal(two.config?.Cmd, null);
    const three = await build(text);
    assert.deepEqual(three.config?.Entrypoint, ['/entry']);
    assert.deepEqual(three.config?.Cmd, ['mine']);
    await assert.rejects(build(text, { target: 'four' }), /target stage `four`/);
  });

  it('gives the same image for the same Dockerfile (config steps take no new time)', async () => {
    const text = 'FROM scratch\nENV A=1\nLABEL b=2\n';
    await writeFile(join(dir, 'Dockerfile'), text);
    const first = await buildDockerfile(store, { context: dir, sourceDateEpoch: 1_700_000_000 });
    const second = await buildDockerfile(store, { context: dir, sourceDateEpoch: 1_700_000_000 });
    assert.equal(second.digest, first.digest);
    assert.equal((await store.inspect(first.digest)).config.created, '2023-11-14T22:13:20.000Z');
  });
});
