/** A chain's graph as text: Mermaid and Graphviz DOT drawings, and a run's trace as short lines. */
import type { NodeRecord } from '../core/composition.ts';
import type { ChainNode } from './node-settings.ts';

/** The graph of nodes `nodes` as a Mermaid flowchart, the chain's input first. */
export function toMermaid(nodes: Iterable<ChainNode>): string {
  const lines = ['flowchart TD', '  input([input])'];
  const all = [...nodes];
  for (const { name, settings } of all) {
    const label = `${name}<br/><small>${settings.kind} · ${settings.model}</small>`;
    lines.push(`  ${name}${settings.kind === 'agent' ? `{{"${label}"}}` : `["${label}"]`}`);
  }
  for (const { name, after } of all) {
    if (after.length === 0) lines.push(`  input --> ${name}`);
    for (const dep of after) lines.push(`  ${dep} --> ${name}`);
  }
  return lines.join('\n');
}

/** The graph of chain `chainName`'s nodes in Graphviz DOT. */
export function toDot(chainName: string, nodes: Iterable<ChainNode>): string {
  const lines = [`digraph ${JSON.stringify(chainName)} {`, '  rankdir=TB;', '  input [shape=oval];'];
  const all = [...nodes];
  for (const { name, settings } of all) {
    const label = `${name}\\n${settings.kind} · ${settings.model}`;
    lines.push(
      `  ${JSON.stringify(name)} [shape=${settings.kind === 'agent' ? 'hexagon' : 'box'}, label="${label}"];`,
    );
  }
  for (const { name, after } of all) {
    if (after.length === 0) lines.push(`  input -> ${JSON.stringify(name)};`);
    for (const dep of after) lines.push(`  ${JSON.stringify(dep)} -> ${JSON.stringify(name)};`);
  }
  lines.push('}');
  return lines.join('\n');
}

/** Lists the NodeRecords of a run's trace as short lines, for logs and the CLI. */
export function formatTrace(trace: readonly NodeRecord[]): string[] {
  return trace.map((r) => {
    const ms = r.durationMs === undefined ? '' : ` ${r.durationMs.toFixed(1)} ms`;
    const error =
      r.error === undefined
        ? ''
        : ` — ${r.error.name}${r.error.status === undefined ? '' : ` ${r.error.status}`}: ${r.error.message}`;
    return `${r.key} ${r.status} (attempt ${r.attempt})${ms}${error}`;
  });
}
