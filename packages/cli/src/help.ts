// The text of `lossless --help` and of each command's `--help` (docs/cli.md says the same at length).

export const HELP = {
  lossless: `Usage: lossless <command> [options]

Commands:
  prestop   drain the provider and wait until the drain is over (for a Kubernetes preStop hook)
  status    show the provider's lifecycle state, in-flight requests and registration
  demo      run the rolling-restart demo (in a clone of the lossless repository)
  bench     run a benchmark: rollout, client or provider (in a clone of the lossless repository)

Options:
  -h, --help      show this help; 'lossless <command> --help' shows a command's
  -v, --version   print the version

Exit codes: 0 done, 2 usage error, 3 timed out, 4 admin server not reachable, 5 refused.
`,

  prestop: `Usage: lossless prestop [--admin URL] [--token T] [--timeout S]

POSTs to <admin>/prestop: the provider starts draining (or joins the drain under way) and answers
once the drain is over. Use it as a Kubernetes preStop hook instead of a fixed sleep.

Options:
  --admin URL     the admin server (default: LOSSLESS_ADMIN_URL, else http://127.0.0.1:<port> with
                  the port from LOSSLESS_ADMIN_PORT, else 9797)
  --token T       sent as 'Authorization: Bearer T' (default: LOSSLESS_ADMIN_TOKEN); needed when the
                  caller is not on loopback
  --timeout S     give up after S seconds (default 60)
  -h, --help      show this help

Prints one line and exits with:
  0  drained in N ms (outcome idle, M requests cut)
  3  timed out after S s
  4  not reachable: <reason>
  5  refused: HTTP <status> <error code>
  2  usage error (LOSSLESS_ERR_CLI_USAGE)
`,

  status: `Usage: lossless status [--admin URL] [--json] [--timeout S]

GETs <admin>/status and prints the lifecycle state, its reason, the requests in flight, the
registry and how long the provider has been in its state.

Options:
  --admin URL     the admin server (default as for 'lossless prestop')
  --json          print the JSON answer as it came
  --timeout S     give up after S seconds (default 10)
  -h, --help      show this help

Exit codes: 0 shown, 3 timed out, 4 not reachable, 5 refused or not a status answer, 2 usage error.
`,

  demo: `Usage: lossless demo [demo options]

Runs the rolling-restart demo (examples/rolling-restart/demo.mjs) of the lossless repository the
CLI runs from: three providers behind one consumer under load, each restarted in turn.
The options go to the demo unchanged, for example:
  lossless demo --mode naive
  lossless demo --client plain --rate 300 --restarts 6 --seed 7
'lossless demo -- --help' lists the demo's own options. Build first: pnpm build.
Exits with the demo's exit code; 2 (LOSSLESS_ERR_CLI_NO_DEMO) outside a clone of the repository.
`,

  bench: `Usage: lossless bench [rollout|client|provider] [benchmark options]

Runs a benchmark of the lossless repository the CLI runs from:
  rollout    examples/rolling-restart/bench.mjs: shutdown modes side by side (the default;
             --suite rollout, race or soak; writes its section of docs/benchmarks.md)
  client     test/bench/client-overhead.mjs: the cost of @lossless/client per request
  provider   test/bench/provider-overhead.mjs: the cost of @lossless/core per request
The options go to the benchmark unchanged ('lossless bench client -- --help' lists them).
Build first: pnpm build.
Exits with the benchmark's exit code; 2 (LOSSLESS_ERR_CLI_NO_DEMO) outside a clone of the repository.
`,
} as const;

export type HelpTopic = keyof typeof HELP;
