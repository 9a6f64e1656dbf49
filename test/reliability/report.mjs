// pnpm reliability:report: runs the tests of every fault scenario (test/reliability/scenarios.mjs),
// keeps what they measured (their `measured` annotations) and writes docs/reliability.md: scenario,
// expected outcome, tests, measured outcome. Exits 1 when a test failed or did not run (the document
// is written anyway, saying so).
//
//   node test/reliability/report.mjs [--out docs/reliability.md]
//
// Needs what `pnpm test` needs: the packages built, and a Nacos server for scenarios 1 and 2 (started
// by the Nacos tests themselves, see test/README.md).

import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { flags } from '../bench/report.mjs';
import { SCENARIOS } from './scenarios.mjs';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const args = flags(
  { out: { type: 'string', default: join(ROOT, 'docs/reliability.md') } },
  'Usage: node test/reliability/report.mjs [--out docs/reliability.md]   (pnpm reliability:report)',
);

const files = [...new Set(SCENARIOS.flatMap((s) => s.tests.map((t) => t.file)))];
const dir = await mkdtemp(join(tmpdir(), 'lossless-reliability-'));
const json = join(dir, 'measured.json');
const vitest = join(ROOT, 'node_modules/vitest/vitest.mjs');
console.error(`running ${files.length} test files...`);
const code = await new Promise((resolve) => {
  const child = execFile(
    process.execPath,
    [
      vitest,
      'run',
      '--config',
      '.config/vitest.config.ts',
      '--reporter=default',
      '--reporter=./test/reliability/measured-reporter.mjs',
      ...files,
    ],
    { cwd: ROOT, env: { ...process.env, LOSSLESS_MEASURED_OUT: json }, maxBuffer: 64 * 1024 * 1024 },
    (error) => resolve(error === null ? 0 : (error.code ?? 1)),
  );
  child.stderr?.pipe(process.stderr);
});
const results = JSON.parse(await readFile(json, 'utf8'));
await rm(dir, { recursive: true, force: true });

let missing = 0;
const rows = SCENARIOS.map((s) => {
  const matched = s.tests.flatMap((t) =>
    results.filter((r) => r.file === t.file && (t.name === '' || r.name.endsWith(t.name))),
  );
  const named = s.tests.filter((t) => t.name !== '').length;
  const passed = matched.filter((r) => r.state === 'passed').length;
  const ok = matched.length > 0 && passed === matched.length && matched.length >= named;
  if (!ok) missing++;
  const measured = matched.flatMap((r) => r.measured);
  const outcome = ok
    ? `passed (${passed} test${passed === 1 ? '' : 's'})`
    : `**NOT SHOWN**: ${passed} of ${matched.length} passed`;
  const tests = s.tests.map((t) => `\`${t.file}\`${t.name === '' ? '' : `: ${t.name}`}`).join('<br>');
  return `| ${s.id} | ${s.scenario} | ${s.expected} | ${tests} | ${[outcome, ...measured].join('; ')} |`;
});

const doc = [
  '# Reliability: faults survived, bad input refused',
  '',
  'Every row is shown by tests that run in CI (`pnpm test`); the last column is what those tests measured',
  'in the run that wrote this page. Regenerate it with `pnpm reliability:report` (it runs only these tests).',
  'Scenarios 1, 2, 2b, 2c, 2d and 7b use a real Nacos-compatible server (2d a 3-node rnacos cluster), 2c, 2d, 4, 5, 7, 7b, 10a and 10b real processes.',
  '',
  `Run: ${new Date().toISOString().slice(0, 10)}, ${cpus()[0]?.model ?? 'unknown CPU'}, ${cpus().length} cores, Node.js ${process.version}.`,
  '',
  '| # | Scenario | Expected | Tests | Measured |',
  '|---|---|---|---|---|',
  ...rows,
  '',
  'Related: [observability](observability.md) for the metrics and events that show these faults in',
  'production, [operations](operations.md) for the settings they depend on (quiet window, maximum drain,',
  'long-lived responses), [errors](errors.md) for every code.',
  '',
].join('\n');
await writeFile(args.out, doc);
console.error(`wrote ${args.out}${missing > 0 ? `; ${missing} scenario(s) not shown` : ''}`);
process.exit(code === 0 && missing === 0 ? 0 : 1);
