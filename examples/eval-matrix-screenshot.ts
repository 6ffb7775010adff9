/**
 * Makes the README's screenshot of the eval report's results matrix: runs the eval example offline (the
 * simulated model, whatever keys are set) through the `symphonizer eval` command with a temporary run store,
 * writes its HTML report, opens it in headless Chromium (Debian's /usr/bin/chromium, driven by
 * playwright-core) and saves the matrix to docs/eval-matrix.png.
 *
 *   node examples/eval-matrix-screenshot.ts                   writes docs/eval-matrix.png
 *   node examples/eval-matrix-screenshot.ts --out shot.png    elsewhere
 *   node examples/eval-matrix-screenshot.ts --keep            also keeps the report (printed path)
 */
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { chromium } from 'playwright-core';
import { main as cli } from '../src/cli/main.ts';
import { isMain } from './is-main.ts';

// The one DOM call the in-page callback makes (this project's types are Node's, without the DOM library).
declare function scrollTo(x: number, y: number): void;

const CHROMIUM = '/usr/bin/chromium';
const root = resolve(import.meta.dirname, '..');

/** Runs the example's evaluation and screenshots its matrix; returns the image's path. */
export async function screenshotMatrix(out: string, keep = false): Promise<string> {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`${CHROMIUM} not found: install Debian's chromium package (apt-get install -y chromium)`);
  }
  const dir = mkdtempSync(join(tmpdir(), 'symphonizer-matrix-shot-'));
  try {
    const report = join(dir, 'eval-report.html');
    const code = await cli(
      [
        'eval',
        'examples/eval-report.ts',
        '--dataset',
        'examples/data/tickets.jsonl',
        '--variants',
        'examples/eval-report.ts',
        '--run',
        'ticket-triage: agent vs terse template',
        '--store',
        join(dir, 'runs.sqlite'),
        '--report',
        report,
      ],
      // Offline whatever the environment holds: the simulated model, no key.
      { cwd: root, env: { SYMPHONIZER_MODEL: 'sim:demo', NO_COLOR: '1' } },
    );
    // 1: the dataset has two unreadable rows on purpose (they are ERROR rows of the report).
    if (code !== 0 && code !== 1) throw new Error(`symphonizer eval exited ${code}`);
    const context = await chromium.launchPersistentContext(join(dir, 'profile'), {
      executablePath: CHROMIUM,
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-background-networking',
        '--no-first-run',
      ],
      viewport: { width: 1400, height: 1000 },
      deviceScaleFactor: 1,
    });
    try {
      const page = context.pages()[0] ?? (await context.newPage());
      await page.route(/^(?!file:)/, (route) => route.abort());
      await page.goto(pathToFileURL(report).href);
      await page.waitForSelector('body[data-matrix-ready="1"]');
      // The first rows of the grid, with a row's two variants side by side under it.
      await page.click('#m-grid tbody tr:nth-child(2) button.cmp');
      const matrix = page.locator('#matrix');
      await page.evaluate(() => {
        scrollTo(0, 0);
      });
      const box = await matrix.boundingBox(); // at scroll 0: page coordinates
      if (box === null) throw new Error('the report has no results matrix');
      mkdirSync(dirname(out), { recursive: true });
      await page.screenshot({
        path: out,
        fullPage: true,
        clip: { x: box.x, y: box.y, width: box.width, height: Math.min(box.height, 1400) },
      });
    } finally {
      await context.close();
    }
    if (keep) console.log(`report kept at ${report}`);
    return out;
  } finally {
    if (!keep) rmSync(dir, { recursive: true, force: true });
  }
}

if (isMain(import.meta)) {
  const { values } = parseArgs({
    options: { out: { type: 'string' }, keep: { type: 'boolean', default: false } },
  });
  const out = resolve(values.out ?? join(root, 'docs', 'eval-matrix.png'));
  console.log(`screenshot written to ${await screenshotMatrix(out, values.keep)}`);
}
