import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createLogLevels, LogLevelError } from './log-levels.js';
import { captureLogger } from './test-helpers.js';

test('a global level reaches component loggers made before the change', () => {
  const { logger, lines } = captureLogger('info');
  const levels = createLogLevels({ root: logger });
  const access = levels.logger('access');
  access.debug('hidden');
  levels.apply('debug');
  access.debug('shown');
  assert.equal(logger.level, 'debug');
  assert.deepEqual(lines.map((l) => [l.component, l.msg]), [['access', 'shown']]);
});

test('access=debug changes one component; access:debug is the same; describe lists both', () => {
  const { logger } = captureLogger('info');
  const levels = createLogLevels({ root: logger });
  const access = levels.logger('access');
  const xds = levels.logger('xds');
  levels.apply('access=debug');
  assert.equal(access.level, 'debug');
  assert.equal(xds.level, 'info');
  levels.apply('xds:warn');
  assert.equal(xds.level, 'warn');
  assert.equal(levels.describe(), 'info,access=debug,xds=warn');
  assert.equal(levels.logger('access'), access, 'one logger per component');
});

test('reset restores the levels at creation, including the initial directives', () => {
  const { logger } = captureLogger('info');
  const levels = createLogLevels({ root: logger, initial: 'warn,access=info' });
  const access = levels.logger('access');
  levels.apply('trace,access=off');
  assert.equal(access.level, 'silent');
  levels.reset();
  assert.equal(levels.describe(), 'warn,access=info');
  assert.equal(access.level, 'info');
  assert.equal(logger.level, 'warn');
});

test('an invalid directive is refused and changes nothing', () => {
  const { logger } = captureLogger('info');
  const levels = createLogLevels({ root: logger });
  assert.throws(() => levels.apply('debug,access=loud'), LogLevelError);
  assert.equal(levels.describe(), 'info');
  assert.throws(() => levels.apply(''), /no log level given/);
});
