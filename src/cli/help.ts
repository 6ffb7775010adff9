/**
 * Help texts of the `symphonizer` command (kept apart so `--help` loads no chain or provider code).
 */

/** Help of the command itself. */
export const mainHelp = `Usage: symphonizer <command> [options]

Commands:
  run <chain module>      run a chain and print its outputs, trace, usage and cost
  graph <chain module>    print a chain's graph (Mermaid or Graphviz DOT)
  eval <chain module>     run a chain over a dataset, score every row, store the run and report
  runs                    list the stored eval runs
  compare <run> [<run>]   compare two runs (or two variants of one run) row by row
  worker                  take chain runs off a Redis queue and run them (symphonizer/distributed)
  help [command]          show help

Options:
  -h, --help              show help (also: symphonizer <command> --help)
  -v, --version           print the version

Chain modules are .ts or .js files exporting a chain built with chain({ input }).prompt(...).build().
Models are provider:model (openai:…, anthropic:…, sim:… offline); keys come from OPENAI_API_KEY and
ANTHROPIC_API_KEY (none is needed when OPENAI_BASE_URL / ANTHROPIC_BASE_URL point to another server).
Nodes without a model use $SYMPHONIZER_MODEL, else the offline simulated model. A chain built with its
own client runs on that client and its providers. Before anything runs, run and eval check that every
model's provider is registered and has its key.

Exit codes: 0 ok, 1 the chain failed (eval: rows that could not be read, or stopped by --max-cost or
Ctrl+C), 2 usage error (arguments, with the nearest option or command for a misspelt one; module, input,
dataset, store; a model of an unknown provider or without its API key, found before anything runs).
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

/** Help of `symphonizer eval`. */
export const evalHelp = `Usage: symphonizer eval <chain module> --dataset <file> [options]

Runs the chain over every row of a dataset (and every variant), scores each row, commits each finished row
to a run store as it finishes, and prints a summary table: pass/fail/error counts, pass rate, mean scores
with 95% CIs, latency, tokens and cost. Running the same run again resumes it: finished rows are not redone.

Dataset rows (.jsonl, .csv or .json array) are the chain input, with optional "id" and "expected" fields.
A bad row is stored as an ERROR row (invalid_row) and does not stop the batch: one that fails the input
schema keeps its id; one that cannot be read (bad JSON, a malformed CSV record, a bad or duplicate id) gets
the id !line:<line>, which no real id may start with. A quoted CSV field may span 1,000 lines and hold 1 MiB:
past that (or at the end of the file) its quote is taken as unclosed, the record is one bad row at its line,
and reading resumes at the line after the one the quote opened on. The summary says how many rows could not
be read (--json: "unreadRows").

Options:
  --dataset <file>        the rows to evaluate (required)
  --export <name>         the export holding the chain (default: the module's only chain export)
  --scorers <module>      scorers: the module's "scorers" array, else every export shaped like a scorer
                          ({ name, score() }). Default: the chain module's "scorers" export, else
                          exactMatch() on the last node when rows have "expected", else none (a row passes
                          when the chain runs)
  --variants <module>     variants to compare: the module's "variants" array ({ name, model?, overrides? }),
                          else every export shaped like a variant (default: one variant, "default")
  --model <provider:model> one variant, named after the model, running every node on it
  --run <name>            the run's name; the same name resumes it (default: the chain's name)
  --store <file|url>      the run store: a SQLite file (default: .symphonizer/runs.sqlite), or a
                          postgres:// URL shared by machines (needs npm install pg)
  --queue <redis url>     run the rows on the workers of that Redis (symphonizer worker) instead of here;
                          --concurrency then bounds the jobs waiting in the queue (needs npm install bullmq)
  --queue-name <name>     the workers' --queue (default: symphonizer)
  --report <file>         also write a report: .html (self-contained) or .md (Markdown)
  --concurrency <n>       rows running at once (default: 16)
  --max-cost <usd>        cost ceiling: stop cleanly before the batch would cost more (resume after raising it)
  --retry-errors          run again the rows stored as ERROR
  --batch                 send the model calls through the providers' Batch APIs (half price, answered within
                          a day), layer by layer of the chain; batch ids are kept in the run store, so a
                          re-run polls the same batches
  --wait                  if another process is running this run, wait for it to finish (then run what is
                          left) instead of exiting 1
  --cache <file>          replay model answers from a response cache, and record new ones
  --cache-mode <mode>     read-write (default with --cache), read-only (replay only: a miss is an ERROR row,
                          no provider is called) or off. Without --cache, the cache lives in the store file
                          (or its PostgreSQL database)
  --json                  print one JSON object at the end: run, summary, stopped (progress stays on stderr)
  -h, --help              show this help

Progress goes to stderr: a bar on a terminal (rows, rate, ETA, errors, tokens, cost), else a line every
second or every 10%. Ctrl+C stops cleanly: finished rows stay stored, and the command to resume is printed.

One process at a time runs a run: it holds the run's lease in the store, heartbeated every 5 s. A second
eval of the same --run and --store exits 1 (run_leased, naming the holder's host and pid), or waits with
--wait. A lease not heartbeated for 30 s, or held by a process of this host that is gone, is taken over.

Exit codes: 0 the batch completed and every row was read (FAIL and ERROR rows are results), 1 some rows
could not be read (not evaluated: fix them and run again), stopped by --max-cost or Ctrl+C, or the run is
being run by another process (run_leased, without --wait), 2 usage error (arguments, missing dataset or
module, no chain, bad scorers or variants, store; a model of a variant whose provider is unknown or has no
API key, found before the store is opened).

Examples:
  symphonizer eval ./chains/classify.ts --dataset tickets.jsonl --report report.html
  symphonizer eval ./chains/classify.ts --dataset tickets.jsonl --variants ./variants.ts --max-cost 2
  symphonizer eval ./chains/classify.ts --dataset tickets.jsonl --run offline --cache-mode read-only
`;

/** Help of `symphonizer runs`. */
export const runsHelp = `Usage: symphonizer runs [options]

Lists the eval runs of a run store, most recently updated first: name, chain, variants, rows by status,
cost and when it was last updated.

Options:
  --store <file|url>      the run store: a SQLite file (default: .symphonizer/runs.sqlite) or a postgres:// URL
  --json                  print one JSON object: { store, runs }
  -h, --help              show this help
`;

/** Help of `symphonizer compare`. */
export const compareHelp = `Usage: symphonizer compare <run A> <run B> [options]
       symphonizer compare <run> --variant <a>,<b> [options]

Compares two stored runs (or two variants of one run) row by row on one scorer: rows where A scored higher
(A wins), lower (B wins) or the same (ties), the mean difference A − B, and the p-value of a paired test
(exact sign test below 20 untied pairs, Wilcoxon signed-rank from there). Only rows both sides ran without
error and scored are paired. Prints the summary table of each side too.

Options:
  --scorer <name>         the scorer to compare on (default: the first scorer of the run)
  --variant <a>[,<b>]     with one run: the two variants to compare; with two runs: the variant of each
                          (one name for both, or a,b); default: each run's first variant
  --store <file|url>      the run store: a SQLite file (default: .symphonizer/runs.sqlite) or a postgres:// URL
  --json                  print one JSON object: sides, scorer, comparison, summary
  -h, --help              show this help

Examples:
  symphonizer compare baseline candidate
  symphonizer compare nightly --variant gpt-4.1-mini,claude-sonnet --scorer correct
`;

/** Help of `symphonizer worker`. */
export const workerHelp = `Usage: symphonizer worker --chains <module> --redis <url> [options]

A worker of symphonizer/distributed: takes chain runs off a BullMQ queue in Redis, runs them (concurrency at
once, through one Perform), checkpoints each finished node in Redis, and acknowledges each run with its
result. A run whose chain differs from this module's (by content hash) is refused. Producers submit runs
with DistributedPerform. Needs the optional packages bullmq and ioredis.

Prints one line when ready (until Redis answers it waits, printing each connection error once). SIGTERM or
Ctrl+C drains it: no new run is taken, the runs in flight finish, then it exits 0. A worker that dies (SIGKILL, a crash) loses its runs' locks: other workers run them again,
with their finished nodes restored, so they are not paid twice.

Options:
  --chains <module>       the chains: the module's "chains" record ({ name: chain }), else every named
                          export that is a chain, by export name (required)
  --redis <url>           redis://[user:password@]host:port[/db] or rediss://… (required)
  --queue <name>          the queue to take runs from (default: symphonizer)
  --concurrency <n>       runs at once (default: 16)
  --limits <json|@file>   shared rate limits by provider or provider:model, held in Redis for every worker
                          and process using them, e.g. {"openai": {"requestsPerMinute": 500}}
  --prefix <prefix>       prefix of the checkpoint and event keys, as the producers use (default: symphonizer)
  -h, --help              show this help

Examples:
  symphonizer worker --chains ./chains.ts --redis redis://127.0.0.1:6379 --concurrency 32
  symphonizer worker --chains ./chains.ts --redis redis://127.0.0.1:6379 --limits @limits.json
`;
