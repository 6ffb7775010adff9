import { describe, expect, it } from 'vitest';
import { parseCommandArgs } from '../../src/cli/args.ts';
import { CliError } from '../../src/cli/errors.ts';

const options = {
  input: { type: 'string' },
  model: { type: 'string' },
  json: { type: 'boolean', default: false },
  help: { type: 'boolean', short: 'h', default: false },
} as const;

function parse(args: readonly string[]) {
  return parseCommandArgs('run', { args: [...args], allowPositionals: true, strict: true, options });
}

function failure(args: readonly string[]): CliError {
  try {
    parse(args);
  } catch (error) {
    if (error instanceof CliError) return error;
    throw error;
  }
  throw new Error(`parsing ${args.join(' ')} did not fail`);
}

describe('parseCommandArgs()', () => {
  it('parses as parseArgs does, with its types', () => {
    const { values, positionals } = parse(['chain.ts', '--input', '{}', '--json']);
    expect(values).toEqual({ input: '{}', json: true, help: false });
    expect(positionals).toEqual(['chain.ts']);
  });

  it('a misspelt option names the nearest known one', () => {
    for (const typo of [['--inptu', 'x'], ['--inptu=x'], ['--modle', 'sim:x'], ['--JSON']]) {
      const error = failure(['chain.ts', ...typo]);
      expect(error.code).toBe('invalid_argument');
      expect(error.message).toMatch(
        /^Unknown option '--\w+' for symphonizer run: did you mean --(input|model|json)\? /,
      );
      expect(error.hint).toBe('options: --input, --model, --json, --help; see symphonizer run --help');
    }
    expect(failure(['--inptu', 'x']).message).toContain('did you mean --input?');
    expect(failure(['-H']).message).toContain("Unknown option '-H' for symphonizer run: did you mean -h?");
  });

  it('an unknown option with nothing close lists the options', () => {
    const error = failure(['--frobnicate']);
    expect(error.message).toMatch(/^Unknown option '--frobnicate' for symphonizer run \(options: /);
    expect(error.message).not.toContain('did you mean');
    expect(error.hint).toContain('options: --input, --model');
  });

  it('other parse errors become usage errors pointing at the help', () => {
    const error = failure(['--input']);
    expect(error.code).toBe('invalid_argument');
    expect(error.message).toContain("Option '--input <value>' argument missing");
    expect(error.hint).toBe('symphonizer run --help');
  });
});
