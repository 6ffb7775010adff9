// Runs an example script as a child process from the repository root, offline: every variable that would pick
// a real model is blanked (examples/model.ts treats an empty variable as unset).
import { execFile } from 'node:child_process';
import { resolve } from 'node:path';

const root = resolve(import.meta.dirname, '../..');

export interface Outcome {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

export const offlineEnv: NodeJS.ProcessEnv = {
  ...process.env,
  OPENAI_API_KEY: '',
  ANTHROPIC_API_KEY: '',
  SYMPHONIZER_MODEL: '',
  OPENAI_BASE_URL: '',
};

/** Runs `script` with `args`; `env` is laid over {@link offlineEnv} (e.g. a key and a base URL). */
export function runExample(
  script: string,
  args: readonly string[] = [],
  env: Readonly<Record<string, string>> = {},
): Promise<Outcome> {
  return new Promise((done) => {
    execFile(
      process.execPath,
      [script, ...args],
      { cwd: root, env: { ...offlineEnv, ...env }, maxBuffer: 10 * 1024 * 1024 },
      (error, stdout, stderr) => {
        const code = error === null ? 0 : typeof error.code === 'number' ? error.code : -1;
        done({ code, stdout, stderr });
      },
    );
  });
}

/** Child processes take a few hundred milliseconds of CPU; generous so a busy machine cannot time out. */
export const slow = { timeout: 60_000 };
