import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import { InvalidArgumentError } from '../../src/index.js';
import { startOrder } from '../../src/testing/group.js';

test('services start in waves: each after everything it depends on', () => {
  assert.deepEqual(startOrder({ web: { dependsOn: ['api'] }, api: { dependsOn: ['db', 'cache'] }, db: {}, cache: {} }), [['db', 'cache'], ['api'], ['web']]);
});

test('an unknown dependency and a cycle are refused before anything starts', () => {
  assert.throws(() => startOrder({ api: { dependsOn: ['db'] } }), InvalidArgumentError);
  assert.throws(() => startOrder({ a: { dependsOn: ['b'] }, b: { dependsOn: ['a'] }, c: {} }), /`a`, `b` depend on each other in a cycle/);
});
