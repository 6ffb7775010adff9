/**
 * The results matrix as a section of the HTML report: its controls, an inline JSON block of the rows, and
 * the inline script and CSS that draw it in the browser (a page of 50 rows at a time, filters, a text search,
 * a side-by-side view of two variants). No network: nothing is fetched; every value is set as text.
 */
import { variantLabel, type ResultsMatrix } from './report-matrix.ts';

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
