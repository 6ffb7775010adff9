/**
 * Help texts of the `symphonizer` command (kept apart so `--help` loads no chain or provider code).
 */

/** Help of the command itself. */
export const mainHelp = `Usage: symphonizer <command> [options]

Commands:
  run <chain module>      run a chain and print its outputs, trace, usage and cost
  graph <chain module>    print a chain's graph (Mermaid or Graphviz DOT)
  help [command]          show help

Options:
  -h, --help              show help (also: symphonizer <command> --help)
  -v, --version           print the version

Chain modules are .ts or .js files exporting a chain built with chain({ input }).prompt(...).build().
Models are provider:model (openai:…, anthropic:…, sim:… offline); keys come from OPENAI_API_KEY and
ANTHROPIC_API_KEY. Nodes without a model use $SYMPHONIZER_MODEL, else the offline simulated model.

Exit codes: 0 ok, 1 the chain failed, 2 usage error (arguments, module, input).
`;

/** Help of `symphonizer run`. */
export const runHelp = `Usage: symphonizer run <chain module> [options]

Runs the chain a module exports (.ts or .js; the path is resolved against the working directory) and prints
every node's output, the trace, the tokens used and the cost.

Options:
  --input <json>          the chain input as JSON, or @file.json to read it from a file (default: {})
  --export <name>         the export holding the chain (default: the module's only chain export)
  --model <provider:model> run every node on this model, e.g. openai:gpt-4.1-mini or sim:demo
  --stream                print tokens as they come, prefixed with their node
  --json                  print one JSON object: outputs, usage, trace (no progress)
  -h, --help              show this help

Examples:
  symphonizer run ./chains/report.ts --input '{"topic": "tides"}'
  symphonizer run ./chains/report.ts --input @input.json --model anthropic:claude-sonnet-4-5 --stream
`;

/** Help of `symphonizer graph`. */
export const graphHelp = `Usage: symphonizer graph <chain module> [options]

Prints the graph of the chain a module exports, to paste into Markdown (Mermaid) or pipe to Graphviz (DOT).

Options:
  --format mermaid|dot    output format (default: mermaid)
  --export <name>         the export holding the chain (default: the module's only chain export)
  -h, --help              show this help

Examples:
  symphonizer graph ./chains/report.ts
  symphonizer graph ./chains/report.ts --format dot | dot -Tsvg > report.svg
`;
