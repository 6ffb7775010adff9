/**
 * The results matrix of an eval report: one line per dataset row (its input and expected value), one column
 * per variant, each cell the row's output (the last node's, or a chosen node's), its status, every scorer's
 * score and reason, latency, tokens, cost and whether it was cached or batched; an ERROR cell shows its
 * message, never a score.
 *
 * {@link collectMatrix} reads it from a run store; {@link renderHtmlReport} (with `matrix`) draws it as a
 * paged grid with filters, a text search and a side-by-side view of two variants, drawn in the browser by an
 * inline script from an inline JSON block (no network; every value set as text, never as markup), and
 * {@link renderMarkdownReport} as tables.
 */
import { InvalidOptionError } from '../core/errors.ts';
import type { Json } from '../core/json.ts';
import type { UsageTotals } from '../providers/usage.ts';
import { sqliteEvalStore, type EvalRunStore } from './run-store.ts';
import { RunStore } from './store.ts';
import type { RowRecord, RowStatus, ScoreResult } from './types.ts';

/** One variant's column of the matrix. */
export interface MatrixVariant {
  readonly name: string;
  /** The `provider:model` ids its nodes call (empty when unknown). */
  readonly models: readonly string[];
  /** True when one of them is the offline simulated model (`sim:…`): its answers are not a real model's. */
  readonly simulated: boolean;
}

/** One cell: one row of one variant. */
export interface MatrixCell {
  readonly status: RowStatus;
  /** The shown node's output (absent for an error before any output). */
  readonly output?: Json | undefined;
  readonly scores: Readonly<Record<string, ScoreResult>>;
  readonly latencyMs: number;
  readonly usage: UsageTotals;
  /** Every model answer came from the response cache. */
  readonly cached: boolean;
  /** The row's calls went through a provider batch API (when the store records it). */
  readonly batch?: boolean | undefined;
  readonly error?: { readonly code?: string | undefined; readonly message: string; readonly node?: string };
}

/** One dataset row across the variants. */
export interface MatrixRow {
  readonly rowId: string;
  readonly line: number;
  readonly input: Json;
  readonly expected?: Json | undefined;
  /** By variant name; a variant that has not run the row has no cell. */
  readonly cells: Readonly<Record<string, MatrixCell>>;
}

/** What {@link collectMatrix} returns. */
export interface ResultsMatrix {
  readonly variants: readonly MatrixVariant[];
  readonly scorers: readonly string[];
  /** Which node's output the cells show (`undefined`: each row's last node). */
  readonly node?: string | undefined;
  /** Rows in line order. */
  readonly rows: readonly MatrixRow[];
  /** Rows of the run left out past `maxRows`. */
  readonly omittedRows: number;
}

/** Options of {@link collectMatrix}. */
export interface CollectMatrixOptions {
  /** The scorers, in column order. */
  readonly scorers: readonly string[];
  /** The models of each variant, by variant name (for the column heads; see {@link MatrixVariant}). */
  readonly models?: Readonly<Record<string, readonly string[]>> | undefined;
  /** The node whose output a cell shows. @default each row's last node output */
  readonly node?: string | undefined;
  /** Most rows kept (the first by line order of the run's first variant); the rest are counted. @default 20000 */
  readonly maxRows?: number | undefined;
}

/** Default of {@link CollectMatrixOptions.maxRows}. */
export const DEFAULT_MATRIX_ROWS = 20_000;

/**
 * Reads the matrix of `run` from a run store (SQLite or PostgreSQL): the rows streamed once, at most
 * `maxRows` distinct rows kept with their inputs, expected values and shown outputs.
 *
 * @example
 * ```ts
 * const matrix = await collectMatrix(store, 'nightly', { scorers: ['exactMatch'], models: { default: ['sim:demo'] } });
 * writeFileSync('report.html', renderHtmlReport(summary, [], { matrix }));
 * ```
 * @throws {InvalidOptionError} when `maxRows` is not an integer >= 0.
 */
export async function collectMatrix(
  store: EvalRunStore | RunStore,
  run: string,
  options: CollectMatrixOptions,
): Promise<ResultsMatrix> {
  const maxRows = options.maxRows ?? DEFAULT_MATRIX_ROWS;
  if (!(Number.isInteger(maxRows) && maxRows >= 0)) {
    throw new InvalidOptionError('maxRows', maxRows, 'an integer >= 0');
  }
  const source = store instanceof RunStore ? sqliteEvalStore(store) : store;
  const rows = new Map<string, { row: MatrixRow; cells: Record<string, MatrixCell> }>();
  const omitted = new Set<string>();
  const variantNames: string[] = [];
  for await (const record of source.rows(run)) {
    if (!variantNames.includes(record.variant)) variantNames.push(record.variant);
    let entry = rows.get(record.rowId);
    if (entry === undefined) {
      if (rows.size >= maxRows) {
        omitted.add(record.rowId);
        continue;
      }
      const cells: Record<string, MatrixCell> = {};
      entry = {
        row: {
          rowId: record.rowId,
          line: record.line,
          input: record.input,
          ...(record.expected === undefined ? {} : { expected: record.expected }),
          cells,
        },
        cells,
      };
      rows.set(record.rowId, entry);
    }
    entry.cells[record.variant] = cellOf(record, options.node);
  }
  const models = options.models ?? {};
  const variants = variantNames.map((name) => {
    const ids = [...new Set(models[name] ?? [])];
    return { name, models: ids, simulated: ids.some(isSimulated) };
  });
  const list = [...rows.values()].map((e) => e.row).sort((a, b) => a.line - b.line);
  return {
    variants,
    scorers: [...options.scorers],
    node: options.node,
    rows: list,
    omittedRows: omitted.size,
  };
}

/** True for a model id of the offline simulated provider (`sim:…`). */
export function isSimulated(modelId: string): boolean {
  return /^sim:/i.test(modelId);
}

function cellOf(record: RowRecord, node: string | undefined): MatrixCell {
  const batch = (record as { readonly batch?: unknown }).batch;
  return {
    status: record.status,
    output: shownOutput(record.outputs, node),
    scores: record.scores,
    latencyMs: record.latencyMs,
    usage: record.usage,
    cached: record.cached,
    ...(typeof batch === 'boolean' ? { batch } : {}),
    ...(record.error === undefined
      ? {}
      : {
          error: {
            message: record.error.message,
            ...(record.error.code === undefined ? {} : { code: record.error.code }),
            ...(record.error.node === undefined ? {} : { node: record.error.node }),
          },
        }),
  };
}

/** The output of `node`, or of the last node in `outputs` (nodes are stored in the chain's order). */
function shownOutput(outputs: Json | undefined, node: string | undefined): Json | undefined {
  if (outputs === undefined || outputs === null || typeof outputs !== 'object' || Array.isArray(outputs)) {
    return outputs ?? undefined;
  }
  if (node !== undefined) return outputs[node];
  const keys = Object.keys(outputs);
  const last = keys.at(-1);
  return last === undefined ? undefined : outputs[last];
}

// ---------------------------------------------------------------------------------------------------------
// Text of values and cells (shared by the Markdown tables; the browser script has its own copy)

/** A value as text: a string as is, anything else as pretty-printed JSON. */
export function valueText(value: Json | undefined): string {
  if (value === undefined) return '';
  return typeof value === 'string' ? value : JSON.stringify(value, null, 2);
}

/** The variant's column head: name, models and "simulated". */
export function variantLabel(variant: MatrixVariant): string {
  const models = variant.models.length === 0 ? '' : ` (${variant.models.join(', ')})`;
  return `${variant.name}${models}${variant.simulated ? ' · simulated' : ''}`;
}

/** A cell as one line of text: status, output, scores and reasons, latency, tokens, cost, flags. */
export function cellText(cell: MatrixCell | undefined, scorers: readonly string[], maxChars = 300): string {
  if (cell === undefined) return '–';
  if (cell.status === 'error') {
    const where = [cell.error?.code, cell.error?.node === undefined ? undefined : `node ${cell.error.node}`]
      .filter((s) => s !== undefined)
      .join(', ');
    return `ERROR${where === '' ? '' : ` (${where})`}: ${fold(cell.error?.message ?? 'unknown error', maxChars)}`;
  }
  const parts = [`${cell.status.toUpperCase()}: ${fold(valueText(cell.output), maxChars)}`];
  for (const name of scorers) {
    const s = cell.scores[name];
    if (s !== undefined)
      parts.push(`${name} ${s.score.toFixed(3)}${s.reason === undefined ? '' : ` (${s.reason})`}`);
  }
  parts.push(metaText(cell));
  return parts.join(' · ');
}

/** Latency, tokens, cost and the cached / batch flags of a cell. */
export function metaText(cell: MatrixCell): string {
  const u = cell.usage;
  const parts = [
    Number.isFinite(cell.latencyMs) ? `${Math.round(cell.latencyMs)} ms` : '– ms',
    `${u.totalTokens} tokens`,
  ];
  if ((u.cacheReadTokens ?? 0) > 0 || (u.cacheWriteTokens ?? 0) > 0) {
    parts.push(`cache read ${u.cacheReadTokens ?? 0} / write ${u.cacheWriteTokens ?? 0}`);
  }
  const cost = `$${u.costUsd.toFixed(u.costUsd >= 1 ? 2 : 6)}`;
  parts.push(u.unpricedCalls > 0 ? `≥ ${cost}` : cost);
  if (cell.cached) parts.push('cached');
  if (cell.batch === true) parts.push('batch');
  return parts.join(', ');
}

function fold(text: string, max: number): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat.length > max ? `${flat.slice(0, max - 1)}…` : flat;
}

// ---------------------------------------------------------------------------------------------------------
// HTML

/**
 * The matrix's JSON for an inline `<script type="application/json">` block: `<`, `>`, `&` and the line and
 * paragraph separators are escaped as `\u` sequences, so no value can close the block or start markup.
 */
export function matrixJson(matrix: ResultsMatrix): string {
  return JSON.stringify(matrix).replace(
    /[<>&\u2028\u2029]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
}

/** The matrix section's markup (controls, the grid, the compare panel), its data and its script. */
export function matrixSection(matrix: ResultsMatrix, escape: (text: string) => string): string {
  const options = matrix.variants
    .map((v, i) => `<option value="${i}">${escape(variantLabel(v))}</option>`)
    .join('');
  const omitted =
    matrix.omittedRows > 0
      ? `<p class="note">The first ${matrix.rows.length} rows are shown; ${matrix.omittedRows} more are in the run store.</p>`
      : '';
  const simulated = matrix.variants.filter((v) => v.simulated).map((v) => v.name);
  const simNote =
    simulated.length > 0
      ? `<p class="sim-note">Simulated: the offline model (sim:…) answered for ${escape(simulated.join(', '))}; its outputs are not a real model's.</p>`
      : '';
  return [
    '<section id="matrix">',
    '<h2>Results matrix</h2>',
    simNote,
    omitted,
    '<div class="controls">',
    '<label>Show <select id="m-filter"><option value="all">all rows</option><option value="failures">rows with a FAIL</option><option value="errors">rows with an ERROR</option><option value="notpass">rows not passing everywhere</option></select></label>',
    '<label>Search <input id="m-search" type="search" placeholder="input, output, expected, error…"></label>',
    `<label>Compare <select id="m-a">${options}</select> with <select id="m-b">${options}</select></label>`,
    '<span id="m-count" class="note"></span>',
    '</div>',
    '<div class="pager"><button id="m-prev" type="button">← Previous</button> <span id="m-page"></span> <button id="m-next" type="button">Next →</button></div>',
    '<div class="grid-wrap"><table id="m-grid" class="matrix"><thead></thead><tbody></tbody></table></div>',
    '<div id="m-side" class="side" hidden></div>',
    `<noscript><p class="note">The matrix needs JavaScript; the Markdown report (--report report.md) has it as tables.</p></noscript>`,
    `<script type="application/json" id="m-data">${matrixJson(matrix)}</script>`,
    `<script>${matrixScript}</script>`,
    '</section>',
  ].join('\n');
}

/** The matrix's CSS (appended to the report's). */
export const matrixCss = [
  '.controls{display:flex;flex-wrap:wrap;gap:1rem;align-items:center;margin:.5rem 0}',
  '.pager{margin:.5rem 0}.grid-wrap{overflow-x:auto}',
  'table.matrix{table-layout:fixed}table.matrix td,table.matrix th{width:22rem;max-width:22rem}',
  'table.matrix th.rowhead,table.matrix td.rowhead{width:18rem}',
  'table.matrix pre{white-space:pre-wrap;word-break:break-word;margin:.2rem 0;font:12px/1.4 ui-monospace,monospace;background:#f6f8fa;padding:.3rem}',
  '.st{font-weight:700;padding:0 .3rem;border-radius:3px}.st-pass{background:#dafbe1;color:#116329}',
  '.st-fail{background:#fff1e5;color:#953800}.st-error{background:#ffebe9;color:#82071e}',
  '.model{color:#656d76;font-size:12px}.sim,.sim-note{color:#8250df}.meta{color:#656d76;font-size:12px}',
  '.score{font-size:12px}.err{color:#82071e;white-space:pre-wrap;word-break:break-word}',
  '.side{display:grid;grid-template-columns:1fr 1fr;gap:1rem;border:1px solid #d0d7de;padding:.6rem;margin:.6rem 0}',
  '.side h3{font-size:1rem;margin:.2rem 0}.side pre{white-space:pre-wrap;word-break:break-word}',
].join('\n');

/**
 * The browser side: parses the inline JSON, filters, searches and pages it (50 rows a page), and builds the
 * grid with DOM calls only (`textContent`, never `innerHTML`), so model text stays text.
 */
const matrixScript = String.raw`(function(){
"use strict";
var M=JSON.parse(document.getElementById("m-data").textContent);
var PAGE=50,FOLD=400,page=0,shown=M.rows;
var grid=document.getElementById("m-grid"),head=grid.tHead,body=grid.tBodies[0];
var filter=document.getElementById("m-filter"),search=document.getElementById("m-search");
var selA=document.getElementById("m-a"),selB=document.getElementById("m-b"),side=document.getElementById("m-side");
if(M.variants.length>1)selB.value="1";
function el(tag,cls,text){var e=document.createElement(tag);if(cls)e.className=cls;if(text!==undefined)e.textContent=text;return e;}
function txt(v){return v===undefined?"":typeof v==="string"?v:JSON.stringify(v,null,2);}
function label(v){return v.name+(v.models.length?" ("+v.models.join(", ")+")":"");}
function block(v){var t=txt(v);if(t.length<=FOLD&&t.split("\n").length<=12)return el("pre","",t);
var d=el("details");d.appendChild(el("summary","",t.slice(0,160).replace(/\s+/g," ")+"… ("+t.length+" characters)"));d.appendChild(el("pre","",t));return d;}
function money(u){var c="$"+u.costUsd.toFixed(u.costUsd>=1?2:6);return u.unpricedCalls>0?"≥ "+c+" (unpriced calls)":c;}
function meta(c){var u=c.usage,p=[isFinite(c.latencyMs)?Math.round(c.latencyMs)+" ms":"– ms",u.totalTokens+" tokens"];
if((u.cacheReadTokens||0)>0||(u.cacheWriteTokens||0)>0)p.push("cache read "+(u.cacheReadTokens||0)+" / write "+(u.cacheWriteTokens||0));
p.push(money(u));if(c.cached)p.push("cached");if(c.batch===true)p.push("batch");return p.join(" · ");}
function modelLine(v){var d=el("div","model",v.models.length?v.models.join(", "):"model unknown");if(v.simulated)d.appendChild(el("span","sim"," · simulated"));return d;}
function cell(c,v){var td=el("td","cell");if(!c){td.appendChild(el("span","note","not run"));return td;}
td.setAttribute("data-status",c.status);td.appendChild(el("span","st st-"+c.status,c.status.toUpperCase()));td.appendChild(modelLine(v));
if(c.status==="error"){var e=c.error||{message:"unknown error"};var w=[e.code,e.node?"node "+e.node:undefined].filter(Boolean).join(", ");
td.appendChild(el("div","err","ERROR"+(w?" ("+w+")":"")+": "+e.message));}else{td.appendChild(block(c.output));
M.scorers.forEach(function(s){var r=c.scores[s];if(r)td.appendChild(el("div","score",s+" "+r.score.toFixed(3)+(r.reason?": "+r.reason:"")));});}
td.appendChild(el("div","meta",meta(c)));return td;}
function haystack(r){if(r._h===undefined){var p=[r.rowId,txt(r.input),txt(r.expected)];for(var k in r.cells){var c=r.cells[k];p.push(txt(c.output));if(c.error)p.push(c.error.message);}r._h=p.join("\n").toLowerCase();}return r._h;}
function keep(r){var f=filter.value,st=[];for(var k in r.cells)st.push(r.cells[k].status);
if(f==="failures"&&st.indexOf("fail")<0)return false;if(f==="errors"&&st.indexOf("error")<0)return false;
if(f==="notpass"&&st.every(function(s){return s==="pass";})&&st.length===M.variants.length)return false;
var q=search.value.trim().toLowerCase();return q===""||haystack(r).indexOf(q)>=0;}
function compare(r){side.hidden=false;side.textContent="";var a=M.variants[+selA.value],b=M.variants[+selB.value];
[a,b].forEach(function(v){var col=el("div");col.appendChild(el("h3","",label(v)+" · row "+r.rowId));if(v.simulated)col.appendChild(el("div","sim","simulated"));
var c=r.cells[v.name];if(!c)col.appendChild(el("p","note","not run"));else if(c.status==="error")col.appendChild(el("div","err","ERROR: "+(c.error?c.error.message:"unknown error")));
else{col.appendChild(el("span","st st-"+c.status,c.status.toUpperCase()));col.appendChild(el("pre","",txt(c.output)));}side.appendChild(col);});
side.scrollIntoView({block:"nearest"});}
function drawHead(){var tr=el("tr");tr.appendChild(el("th","rowhead","Row · input · expected"));
M.variants.forEach(function(v){var th=el("th","",v.name);th.appendChild(modelLine(v));tr.appendChild(th);});head.textContent="";head.appendChild(tr);}
function draw(){var pages=Math.max(1,Math.ceil(shown.length/PAGE));if(page>=pages)page=pages-1;
var frag=document.createDocumentFragment();shown.slice(page*PAGE,page*PAGE+PAGE).forEach(function(r){var tr=el("tr");tr.setAttribute("data-row",r.rowId);
var th=el("td","rowhead");th.appendChild(el("div","",r.rowId+" (line "+r.line+")"));th.appendChild(el("div","note","input"));th.appendChild(block(r.input));
if(r.expected!==undefined){th.appendChild(el("div","note","expected"));th.appendChild(block(r.expected));}
var btn=el("button","cmp","Side by side");btn.type="button";btn.addEventListener("click",function(){compare(r);});th.appendChild(btn);tr.appendChild(th);
M.variants.forEach(function(v){tr.appendChild(cell(r.cells[v.name],v));});frag.appendChild(tr);});
body.textContent="";body.appendChild(frag);
document.getElementById("m-page").textContent="page "+(page+1)+" of "+pages;
document.getElementById("m-count").textContent=shown.length+" of "+M.rows.length+" rows";
document.getElementById("m-prev").disabled=page===0;document.getElementById("m-next").disabled=page>=pages-1;}
function refilter(){shown=M.rows.filter(keep);page=0;draw();}
filter.addEventListener("change",refilter);search.addEventListener("input",refilter);
document.getElementById("m-prev").addEventListener("click",function(){page--;draw();});
document.getElementById("m-next").addEventListener("click",function(){page++;draw();});
drawHead();draw();document.body.setAttribute("data-matrix-ready","1");
})();`;

// ---------------------------------------------------------------------------------------------------------
// Markdown

/** The matrix as a Markdown table (one line per row, one column per variant), at most `maxRows` lines. */
export function matrixMarkdown(
  matrix: ResultsMatrix,
  escape: (text: string) => string,
  maxRows: number,
): string {
  const head = ['Row', 'Line', 'Input', 'Expected', ...matrix.variants.map(variantLabel)];
  const lines = [
    `| ${head.map(escape).join(' | ')} |`,
    `| ${head.map((_, i) => (i === 1 ? '--:' : '---')).join(' | ')} |`,
  ];
  for (const row of matrix.rows.slice(0, maxRows)) {
    const cells = [
      row.rowId,
      String(row.line),
      fold(valueText(row.input), 200),
      row.expected === undefined ? '–' : fold(valueText(row.expected), 200),
      ...matrix.variants.map((v) => cellText(row.cells[v.name], matrix.scorers)),
    ];
    lines.push(`| ${cells.map(escape).join(' | ')} |`);
  }
  const left = matrix.rows.length - Math.min(maxRows, matrix.rows.length) + matrix.omittedRows;
  if (left > 0) lines.push('', `… and ${left} more rows (the HTML report pages through them all).`);
  return lines.join('\n');
}
