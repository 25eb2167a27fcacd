import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { warningExcerpt } from './log-excerpt.js';

test('warningExcerpt: warn and error JSON lines of every *.log below the directories, oldest first, bounded', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ambit-excerpt-'));
  try {
    mkdirSync(join(dir, 'pods', 'bookinfo_waypoint', 'waypoint'), { recursive: true });
    writeFileSync(join(dir, 'agent-n1.log'), [
      JSON.stringify({ level: 30, time: 1, msg: 'info is left out' }),
      JSON.stringify({ level: 40, time: 3, msg: 'agent warned', pod: 'p1' }),
      'not json',
      '{"broken',
    ].join('\n'));
    writeFileSync(join(dir, 'pods', 'bookinfo_waypoint', 'waypoint', '0.log'), JSON.stringify({ level: 50, time: 2, msg: 'waypoint failed', pid: 7, hostname: 'h' }) + '\n');
    writeFileSync(join(dir, 'notes.txt'), JSON.stringify({ level: 50, time: 0, msg: 'not a log file' }));
    assert.deepEqual(warningExcerpt([dir]), ['pods/bookinfo_waypoint/waypoint/0.log ERROR waypoint failed', 'agent-n1.log WARN agent warned {"pod":"p1"}']);
    assert.deepEqual(warningExcerpt([dir], 1), ['agent-n1.log WARN agent warned {"pod":"p1"}']);
    assert.deepEqual(warningExcerpt([join(dir, 'missing')]), []);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
