/**
 * The results matrix read from a run store and rendered: every row and variant in the HTML report's inline
 * data and in the Markdown table, ERROR cells with their message (never a score), model ids and "simulated"
 * beside the outputs, and no value able to close the data block or become markup.
 */
import { describe, expect, it } from 'vitest';
import { collectMatrix, type ResultsMatrix } from '../../src/eval/report-matrix.ts';
import { renderHtmlReport, renderMarkdownReport, summarizeRun } from '../../src/eval/report.ts';
import { HOSTILE, matrixStore, statusOf } from './matrix-fixture.ts';

const ROWS = 30;
const models = { base: ['sim:demo'], candidate: ['openai:gpt-4.1-mini'] };

async function build(): Promise<{ matrix: ResultsMatrix; html: string; md: string }> {
  const store = matrixStore(ROWS);
  const matrix = await collectMatrix(store, 'm', { scorers: ['em'], models });
  const summary = summarizeRun(store, 'm', { scorers: ['em'] });
  store.close();
  return {
    matrix,
    html: renderHtmlReport(summary, [], { matrix }),
    md: renderMarkdownReport(summary, [], { matrix }),
  };
}

describe('collectMatrix', () => {
  it('has every row once, in line order, with a cell per variant and the last node output shown', async () => {
    const { matrix } = await build();
    expect(matrix.variants).toEqual([
      { name: 'base', models: ['sim:demo'], simulated: true },
      { name: 'candidate', models: ['openai:gpt-4.1-mini'], simulated: false },
    ]);
    expect(matrix.rows.map((r) => r.line)).toEqual(Array.from({ length: ROWS }, (_, i) => i + 1));
    for (const row of matrix.rows) {
      expect(Object.keys(row.cells).sort()).toEqual(['base', 'candidate']);
      for (const [variant, cell] of Object.entries(row.cells)) {
        expect(cell.status).toBe(statusOf(variant, row.line));
        if (cell.status === 'error') {
          expect(cell.output).toBeUndefined();
          expect(cell.error?.message).toContain(`row ${row.line}`);
        } else {
          expect(cell.output).toMatchObject({ note: `${variant} ${HOSTILE}` }); // the last node, "answer"
        }
      }
    }
    expect(matrix.omittedRows).toBe(0);
  });

  it('keeps at most maxRows rows and counts the rest; a chosen node is shown instead of the last', async () => {
    const store = matrixStore(12);
    const matrix = await collectMatrix(store, 'm', { scorers: ['em'], maxRows: 5, node: 'draft' });
    store.close();
    expect(matrix.rows).toHaveLength(5);
    expect(matrix.omittedRows).toBe(7);
    expect(matrix.rows[0]?.cells['base']?.output).toBe('draft 1');
  });
});

describe('the matrix in the HTML report', () => {
  it('embeds every row and variant as inline JSON that no value can break out of', async () => {
    const { html, matrix } = await build();
    const block = /<script type="application\/json" id="m-data">([\s\S]*?)<\/script>/.exec(html);
    expect(block).not.toBeNull();
    const text = block?.[1] ?? '';
    expect(text).not.toMatch(/[<>]/); // every < and > of the values is a \u escape
    const parsed = JSON.parse(text) as ResultsMatrix;
    expect(parsed.rows).toHaveLength(ROWS);
    expect(parsed.rows.map((r) => r.rowId)).toEqual(matrix.rows.map((r) => r.rowId));
    expect(parsed.variants.map((v) => v.name)).toEqual(['base', 'candidate']);
    expect(parsed.rows[0]?.input).toEqual({ question: `question 1 ${HOSTILE}` });
    // Self-contained: nothing loaded from anywhere (the one URL is the SVG namespace).
    expect(html).not.toMatch(/<(script|link|img)[^>]+(src|href)=/i);
    expect(new Set(html.match(/https?:\/\/[^"\s)]+/g))).toEqual(new Set(['http://www.w3.org/2000/svg']));
    // Only the two scripts of the matrix; model text never appears as markup.
    expect(html.match(/<script/g)).toHaveLength(2);
    expect(html).not.toContain('onerror="window.__xss');
    expect(html).toContain('Simulated: the offline model (sim:…) answered for base');
    // The script sets text only.
    expect(html).not.toContain('innerHTML');
  });
});

describe('the matrix in the Markdown report', () => {
  it('is a table with every row, ERROR cells with their message, model ids and "simulated"', async () => {
    const { md } = await build();
    expect(md).toContain('## Results matrix');
    expect(md).toContain(
      '| Row | Line | Input | Expected | base (sim:demo) · simulated | candidate (openai:gpt-4.1-mini) |',
    );
    const lines = md.split('\n').filter((l) => /^\| r\d+ \|/.test(l));
    expect(lines).toHaveLength(ROWS);
    const row7 = lines.find((l) => l.startsWith('| r7 |')) ?? '';
    // Row 7 of candidate is an ERROR: shown with its code, node and message, never as a score of 0.
    expect(row7).toContain('ERROR (provider_error, node answer): the model refused row 7');
    expect(row7.split(' | ').at(-1)).not.toMatch(/0\.000/);
    const row5 = lines.find((l) => l.startsWith('| r5 |')) ?? '';
    expect(row5).toContain('FAIL: {');
    expect(row5).toContain('em 0.000 (expected "spam", got "ham")');
    expect(md).not.toMatch(/<script|<img/);
  });

  it('caps the table at maxMatrixRows and says how many more there are', async () => {
    const store = matrixStore(12);
    const matrix = await collectMatrix(store, 'm', { scorers: ['em'] });
    const md = renderMarkdownReport(summarizeRun(store, 'm', { scorers: ['em'] }), [], {
      matrix,
      maxMatrixRows: 4,
    });
    store.close();
    expect(md.split('\n').filter((l) => /^\| r\d+ \|/.test(l))).toHaveLength(4);
    expect(md).toContain('… and 8 more rows');
  });
});
