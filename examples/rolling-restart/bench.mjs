// pnpm bench:rollout: the rolling-restart demo for several provider modes, side by side in one run
// with the same load and seed, many restarts each. Three suites:
//   rollout (default)  lossless and the naive ways, with either client; writes the table into
//                      docs/benchmarks.md (between the rollout markers) and a chart of failures and p99
//                      latency over time to docs/rollout.svg
//   race               Kubernetes' endpoint race with the plain client: for every D in --race-ms, each
//                      provider mode keeps getting requests for D ms after SIGTERM; lossless next to the
//                      libraries users pick instead (terminus, lightship, http-terminator,
//                      close-with-grace, fastify's own close) and naive; lost requests and time to exit
//                      per mode and D, between the race markers
//   soak               lossless provider and client, restarting for --soak-seconds, between the soak
//                      markers
//
//   node examples/rolling-restart/bench.mjs [--suite rollout|race|soak] [--rate N|auto] [--restarts N]
//     [--seed N] [--steady S] [--runs mode/client,...] [--race-ms D,...] [--race-modes a,b,...]
//     [--soak-seconds S] [--quiet-window-ms MS] [--sleep-ms MS] [--grace-seconds S] [--out DIR] [--print]
//     [--json FILE]
//
// --rate auto (default) first measures what the machine sustains through @lossless/client against
// three providers (closed loop, 64 in flight, 3 s) and uses 40 % of it. --print leaves docs/ alone.

import { execFile, spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { createClient } from '@lossless/client';
import { flags, usageError } from './flags.mjs';
import { MODES, PEER_MODES } from './modes.mjs';

const here = (file) => fileURLToPath(new URL(file, import.meta.url));
const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const SUITES = ['rollout', 'race', 'soak'];
const USAGE = `Usage: node examples/rolling-restart/bench.mjs [options]   (pnpm bench:rollout [options])
  --suite NAME          rollout (default), race or soak
  --rate N|auto         requests per second for every run (default auto: 40 % of the measured capacity)
  --restarts N          restarts per run (default 21 for rollout, 12 for race)
  --seed N              the request mix (default 7)
  --steady S            seconds of steady load before and after the restarts (default 3)
  --runs LIST           rollout: mode/client pairs (default: lossless and the naive ways)
  --race-ms LIST        race: the endpoint delays D, in ms (default 0,500,2000,6000)
  --race-modes LIST     race: the provider modes (default lossless,naive,${PEER_MODES.join(',')})
  --soak-seconds S      soak: how long to keep restarting (default 1800)
  --quiet-window-ms MS  lossless' quiet window (default 1000)
  --sleep-ms MS         fixed-sleep's sleep (default 2000)
  --grace-seconds S     kill a provider still running this long after SIGTERM (default 5; race and soak 30)
  --out DIR             where benchmarks.md (and rollout.svg) are updated (default docs/)
  --print               print the tables only; leave the docs alone
  --json FILE           also write every run's full report (timeline, drains, failure examples)`;

const args = flags(
  {
    suite: { type: 'string', default: 'rollout' },
    rate: { type: 'string', default: 'auto' },
    restarts: { type: 'string' },
    seed: { type: 'string', default: '7' },
    steady: { type: 'string', default: '3' },
    runs: {
      type: 'string',
      default:
        'lossless/lossless,lossless/plain,naive/lossless,naive/plain,close-only/lossless,close-only/plain,fixed-sleep/lossless',
    },
    'race-ms': { type: 'string', default: '0,500,2000,6000' },
    'race-modes': { type: 'string', default: ['lossless', 'naive', ...PEER_MODES].join(',') },
    'soak-seconds': { type: 'string', default: '1800' },
    'quiet-window-ms': { type: 'string', default: '1000' },
    'sleep-ms': { type: 'string', default: '2000' },
    'grace-seconds': { type: 'string' },
    out: { type: 'string', default: join(ROOT, 'docs') },
    print: { type: 'boolean', default: false },
    json: { type: 'string' },
  },
  USAGE,
);
const fail = (message) => usageError(`bench: ${message}`, USAGE);
if (!SUITES.includes(args.suite)) fail(`--suite must be one of ${SUITES.join(', ')}`);
const list = (name) => args[name].split(',').map((x) => x.trim());
const runs = list('runs').map((spec) => spec.split('/'));
for (const [mode, client] of runs)
  if (!MODES.includes(mode) || !['lossless', 'plain'].includes(client)) fail(`--runs: unknown run ${mode}/${client}`);
const raceModes = list('race-modes');
for (const mode of raceModes) if (!MODES.includes(mode)) fail(`--race-modes: unknown mode ${mode}`);
const raceDelays = list('race-ms').map(Number);
if (raceDelays.some((d) => !Number.isInteger(d) || d < 0)) fail('--race-ms: expected integers >= 0');
for (const name of ['restarts', 'seed', 'steady', 'soak-seconds', 'quiet-window-ms', 'sleep-ms', 'grace-seconds'])
  if (args[name] !== undefined && !/^\d+$/.test(args[name])) fail(`--${name} must be a whole number`);
if (args.rate !== 'auto' && !/^\d+$/.test(args.rate)) fail('--rate must be a whole number or auto');
const restarts = args.restarts ?? (args.suite === 'race' ? '12' : '21');
// the race's and the soak's peers and drains take seconds: Kubernetes' default grace period then
const grace = args['grace-seconds'] ?? (args.suite === 'rollout' ? '5' : '30');

const run = promisify(execFile);
const command = `node examples/rolling-restart/bench.mjs ${process.argv.slice(2).join(' ')}`.trim();
const machine = `${cpus()[0]?.model ?? 'unknown CPU'}, ${cpus().length} cores, Node.js ${process.version}, ${new Date().toISOString().slice(0, 10)}`;

const rate = args.rate === 'auto' ? Math.round((await capacity()) * 0.4) : Number(args.rate);
console.error(`rate: ${rate} req/s${args.rate === 'auto' ? ' (40 % of the measured capacity)' : ''}`);

if (args.suite === 'rollout') await rolloutSuite();
else if (args.suite === 'race') await raceSuite();
else await soakSuite();

// ------------------------------------------------------------------------------------------------

/** One run of demo.mjs with the common settings, and its JSON report. */
async function demo(mode, client, extra = []) {
  const dir = await mkdtemp(join(tmpdir(), 'lossless-bench-'));
  const json = join(dir, 'report.json');
  try {
    await run(
      process.execPath,
      [
        here('./demo.mjs'),
        '--mode',
        mode,
        '--client',
        client,
        '--rate',
        String(rate),
        '--seed',
        args.seed,
        '--steady',
        args.steady,
        '--quiet-window-ms',
        args['quiet-window-ms'],
        '--sleep-ms',
        args['sleep-ms'],
        '--grace-seconds',
        grace,
        '--quiet',
        '--json',
        json,
        ...extra,
      ],
      { timeout: 3 * 3600_000, maxBuffer: 16 * 1024 * 1024 },
    ).catch((error) => {
      if (error.code !== 1) throw error; // 1: lossless lost requests; the report says how many
    });
    const text = await readFile(json, 'utf8').catch(() => {
      throw new Error(`the ${mode} / ${client} run wrote no report (the demo failed; run it alone to see why)`);
    });
    return JSON.parse(text);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Replaces the text between `<!-- name:begin -->` and `<!-- name:end -->` in benchmarks.md (appends it under `heading` when absent). */
async function writeSection(name, heading, text) {
  if (args.print) return;
  const docPath = join(args.out, 'benchmarks.md');
  const doc = await readFile(docPath, 'utf8').catch(() => '# Benchmarks\n');
  const begin = `<!-- ${name}:begin -->`;
  const end = `<!-- ${name}:end -->`;
  const section = `${begin}\n${text}\n${end}`;
  const next = doc.includes(begin)
    ? doc.replace(new RegExp(`${begin}[\\s\\S]*?${end}`), () => section)
    : `${doc.trimEnd()}\n\n## ${heading}\n\n${section}\n`;
  await writeFile(docPath, next);
  console.error(`wrote ${docPath}`);
}

/** --json: every run's report, as the demo wrote it. */
async function keep(reports) {
  if (args.json === undefined) return;
  await writeFile(args.json, `${JSON.stringify(reports, null, 2)}\n`);
  console.error(`wrote ${args.json}`);
}

function thousands(n) {
  return n.toLocaleString('en-US');
}

function failureClasses(f) {
  return [
    ['refused', f.refused],
    ['reset', f.reset],
    ['5xx', f.status5xx],
    ['timeout', f.timeout],
    ['other', f.other],
  ]
    .filter(([, n]) => n > 0)
    .map(([name, n]) => `${thousands(n)} ${name}`)
    .join(', ');
}

// ------------------------------------------------------------------------------------------------
// rollout

async function rolloutSuite() {
  const reports = [];
  for (const [mode, client] of runs) {
    console.error(`running ${mode} / client ${client} (${restarts} restarts)...`);
    const report = await demo(mode, client, ['--restarts', restarts]);
    reports.push(report);
    console.error(`  ${report.failures.total} failures of ${report.requests}`);
  }

  const quiet = Number(args['quiet-window-ms']);
  const rows = reports.map((r) => {
    const exited = r.drains.filter((d) => typeof d.exitCode === 'number' && d.drainMsInProcess !== null);
    const overheads = exited.map((d) => d.drainMsInProcess - quiet - d.longestRemainingMs);
    const delays = exited.map((d) => d.exitDelayMs).filter((x) => typeof x === 'number');
    const late = exited.map((d) => d.lastArrivalAfterSigtermMs);
    const f = r.failures;
    return {
      run: `${r.mode} / ${r.client}`,
      requests: r.requests,
      failures: `${f.total} (${f.refused} refused, ${f.reset} reset, ${f.status5xx} 5xx, ${f.timeout} timeout, ${f.other} other)`,
      p99: `${r.latencyMs.rollout.p99} / ${r.latencyMs.steady.p99} = ${(r.latencyMs.rollout.p99 / r.latencyMs.steady.p99).toFixed(2)}×`,
      drain: mean(r.drains.map((d) => d.drainMs)),
      overhead: overheads.length === 0 ? '-' : `${mean(overheads)} (max ${Math.max(...overheads)})`,
      late: late.length === 0 ? '-' : `${mean(late)} (max ${Math.max(...late)})`,
      delay: delays.length === 0 ? '-' : `${mean(delays)} (max ${Math.max(...delays)})`,
      killed: r.drains.filter((d) => typeof d.exitCode !== 'number').length,
      rollout: (r.rolloutMs / 1000).toFixed(1),
    };
  });

  const table = [
    `Command: \`${command}\` (the same load for every run: ${rate} req/s open loop, seed ${args.seed}, 3 providers, ${restarts} restarts, quiet window ${quiet} ms, fixed sleep ${args['sleep-ms']} ms, grace period ${grace} s).`,
    `Machine: ${machine}. Registry: the embedded file registry.`,
    '',
    '| provider mode / client | requests | failures | p99 ms rollout / steady | mean drain ms | drain beyond the longest request in flight + quiet window, ms (mean, max) | last arrival after SIGTERM, ms (mean, max) | exit delay after the exit condition held, ms (mean, max) | killed at grace | rollout s |',
    '|---|---|---|---|---|---|---|---|---|---|',
    ...rows.map(
      (x) =>
        `| ${x.run} | ${x.requests} | ${x.failures} | ${x.p99} | ${x.drain} | ${x.overhead} | ${x.late} | ${x.delay} | ${x.killed} | ${x.rollout} |`,
    ),
    '',
    'Latency is measured from each request\'s intended send time (open loop), so stalls count. "Drain beyond" is',
    'the drain time (from SIGTERM to the exit call, measured in the provider) minus the quiet window minus what was',
    'left of the longest request in flight at SIGTERM; negative when the two overlapped (the drain waits for the',
    'longer of them, not their sum); naive modes do not wait at all. A request arriving after SIGTERM (a caller that',
    'had not learnt yet) restarts the quiet window, so that figure includes "last arrival after SIGTERM". "Exit',
    'delay" isolates lossless\' own reaction: from the moment its exit condition held (nothing in flight, and the',
    'quiet window passed since the later of the last arrival and leaving the registry) to its exit call.',
    '',
    '![failures and p99 latency over time](rollout.svg)',
  ].join('\n');

  await keep(reports);
  await writeSection('rollout', 'Rolling restart (`pnpm bench:rollout`)', table);
  if (!args.print) await writeFile(join(args.out, 'rollout.svg'), svg(reports));
  console.log(table);
}

// ------------------------------------------------------------------------------------------------
// race

async function raceSuite() {
  const cells = new Map(); // `${mode} ${D}` -> report
  for (const mode of raceModes) {
    for (const d of raceDelays) {
      console.error(`running ${mode} / client plain, endpoint race ${d} ms (${restarts} restarts)...`);
      const report = await demo(mode, 'plain', ['--restarts', restarts, '--race-ms', String(d)]);
      cells.set(`${mode} ${d}`, report);
      console.error(
        `  ${report.failures.total} failures of ${report.requests}; exit after ${report.exitMs.mean} ms (max ${report.exitMs.max})`,
      );
    }
  }
  const header = `| provider mode | ${raceDelays.map((d) => `D = ${thousands(d)} ms`).join(' | ')} |`;
  const rule = `|---|${raceDelays.map(() => '---|').join('')}`;
  const row = (mode, cell) => `| ${mode} | ${raceDelays.map((d) => cell(cells.get(`${mode} ${d}`))).join(' | ')} |`;
  const lost = (r) => {
    const f = r.failures;
    return f.total === 0
      ? `**0** of ${thousands(r.requests)}`
      : `**${thousands(f.total)}** of ${thousands(r.requests)} (${failureClasses(f)})`;
  };
  const exit = (r) => {
    const codes = Object.entries(r.exitCodes)
      .filter(([code]) => code !== '0')
      .map(([code, n]) => (code.startsWith('SIGKILL') ? `killed ×${n}` : `exit ${code} ×${n}`));
    return `${(r.exitMs.mean / 1000).toFixed(1)} (${(r.exitMs.max / 1000).toFixed(1)})${codes.length > 0 ? `, ${codes.join(', ')}` : ''}`;
  };
  const table = [
    `Command: \`${command}\` (every run: client plain, ${rate} req/s open loop, seed ${args.seed}, 3 providers, ${restarts} restarts, quiet window ${args['quiet-window-ms']} ms, grace period ${grace} s).`,
    `Machine: ${machine}. Registry: the embedded file registry (the plain client takes new instances from it; it drops an old one D ms after its SIGTERM).`,
    '',
    'Requests lost (failed at the caller), of those sent:',
    '',
    header,
    rule,
    ...raceModes.map((mode) => row(mode, lost)),
    '',
    'Time from SIGTERM to the exit of the process, seconds, mean (max) over the restarts; exit codes other than 0:',
    '',
    header,
    rule,
    ...raceModes.map((mode) => row(mode, exit)),
  ].join('\n');
  await keep([...cells.values()]);
  await writeSection('race', 'The endpoint race (`--suite race`)', table);
  console.log(table);
}

// ------------------------------------------------------------------------------------------------
// soak

async function soakSuite() {
  const seconds = args['soak-seconds'];
  console.error(`running lossless / client lossless, restarting for ${seconds} s...`);
  const r = await demo('lossless', 'lossless', ['--restarts-for', seconds]);
  await keep([r]);
  const f = r.failures;
  const drains = r.drains.map((d) => d.drainMs).sort((a, b) => a - b);
  const table = [
    `Command: \`${command}\` (lossless provider and client, ${rate} req/s open loop, seed ${args.seed}, 3 providers, quiet window ${args['quiet-window-ms']} ms, grace period ${grace} s).`,
    `Machine: ${machine}. Registry: the embedded file registry.`,
    '',
    '| requests | failures | restarts | restarting for | exit codes | drain ms: mean, p99, max | p99 ms rollout / steady |',
    '|---|---|---|---|---|---|---|',
    `| ${thousands(r.requests)} | **${thousands(f.total)}**${f.total === 0 ? '' : ` (${failureClasses(f)})`} | ${thousands(r.restarts)} | ${(r.rolloutMs / 1000).toFixed(0)} s | ${Object.entries(
      r.exitCodes,
    )
      .map(([code, n]) => `${code}: ${thousands(n)}`)
      .join(
        ', ',
      )} | ${r.exitMs.mean}, ${drains[Math.min(drains.length - 1, Math.floor(drains.length * 0.99))] ?? '-'}, ${r.exitMs.max} | ${r.latencyMs.rollout.p99} / ${r.latencyMs.steady.p99} |`,
  ].join('\n');
  await writeSection('soak', 'Soak (`--suite soak`)', table);
  console.log(table);
}

// ------------------------------------------------------------------------------------------------

async function capacity() {
  const dir = await mkdtemp(join(tmpdir(), 'lossless-capacity-'));
  const registry = pathToFileURL(dir).href;
  const children = [0, 1, 2].map((i) =>
    spawn(
      process.execPath,
      [here('./provider.mjs'), '--registry', registry, '--service', 'capacity', '--name', `c${i}`],
      {
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    ),
  );
  try {
    await Promise.all(
      children.map(
        (c) =>
          new Promise((resolve, reject) => {
            c.stdout.on('data', (d) => String(d).includes('"ready"') && resolve());
            c.on('exit', () => reject(new Error('a capacity provider exited')));
          }),
      ),
    );
    const client = createClient({ registry });
    let done = 0;
    let stop = false;
    const loop = async () => {
      while (!stop) {
        const res = await client.request('http://capacity/work?ms=0');
        await res.body.dump();
        done++;
      }
    };
    const loops = Array.from({ length: 64 }, loop);
    await new Promise((resolve) => setTimeout(resolve, 1000)); // warm-up
    const from = done;
    const t0 = performance.now();
    await new Promise((resolve) => setTimeout(resolve, 3000));
    const perSecond = ((done - from) * 1000) / (performance.now() - t0);
    stop = true;
    await Promise.all(loops);
    await client.close();
    console.error(`capacity: ${Math.round(perSecond)} req/s through @lossless/client to 3 providers`);
    return perSecond;
  } finally {
    for (const c of children) c.kill('SIGKILL');
    await rm(dir, { recursive: true, force: true });
  }
}

/** Position of v on a log scale from 1 ms to max, in [0, 1]. */
function logScale(v, max) {
  return Math.log10(Math.max(v, 1)) / Math.log10(Math.max(max, 10));
}

function mean(values) {
  return values.length === 0 ? 0 : Math.round(values.reduce((a, b) => a + b, 0) / values.length);
}

function svg(reports) {
  const width = 960;
  const panel = 130;
  const left = 70;
  const right = 20;
  const plotW = width - left - right;
  const height = reports.length * panel + 40;
  const maxT = Math.max(...reports.flatMap((r) => r.timeline.buckets.map((b) => b.t + r.timeline.bucketMs / 1000)));
  const maxP99 = Math.max(...reports.flatMap((r) => r.timeline.buckets.map((b) => b.p99 ?? 0)), 1);
  const maxFailed = Math.max(...reports.flatMap((r) => r.timeline.buckets.map((b) => b.failed)), 1);
  const x = (t) => left + (t / maxT) * plotW;
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif" font-size="11">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="${left}" y="16" font-size="13">Rolling restart at ${reports[0]?.rate} req/s: failures per 0.5 s (red bars, full height ${maxFailed}); p99 latency per 0.5 s (blue, log scale 1 ms to ${Math.round(maxP99)} ms); grey: SIGTERM</text>`,
  ];
  reports.forEach((r, i) => {
    const top = 30 + i * panel;
    const h = panel - 30;
    const y0 = top + h;
    parts.push(`<text x="4" y="${top + 12}" font-weight="bold">${r.mode}</text>`);
    parts.push(`<text x="4" y="${top + 26}">client ${r.client}</text>`);
    parts.push(`<text x="4" y="${top + 40}">${r.failures.total} failed</text>`);
    parts.push(`<line x1="${left}" y1="${y0}" x2="${left + plotW}" y2="${y0}" stroke="#999"/>`);
    for (const s of r.timeline.sigterms)
      parts.push(`<line x1="${x(s)}" y1="${top}" x2="${x(s)}" y2="${y0}" stroke="#bbb" stroke-dasharray="3,3"/>`);
    const bw = Math.max(1, (plotW * (r.timeline.bucketMs / 1000)) / maxT - 1);
    for (const b of r.timeline.buckets) {
      if (b.failed === 0) continue;
      const bh = (b.failed / maxFailed) * h;
      parts.push(`<rect x="${x(b.t)}" y="${y0 - bh}" width="${bw}" height="${bh}" fill="#d33"/>`);
    }
    const points = r.timeline.buckets
      .filter((b) => b.p99 !== null)
      .map((b) => `${x(b.t + r.timeline.bucketMs / 2000).toFixed(1)},${(y0 - logScale(b.p99, maxP99) * h).toFixed(1)}`)
      .join(' ');
    parts.push(`<polyline points="${points}" fill="none" stroke="#1f5fbf" stroke-width="1.5"/>`);
  });
  parts.push(`<text x="${left}" y="${height - 6}">time (s) 0 … ${maxT.toFixed(0)}</text>`);
  parts.push('</svg>');
  return `${parts.join('\n')}\n`;
}
