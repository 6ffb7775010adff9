/**
 * Package-internal: splits one prompt file into its system and user parts.
 *
 * Format: a line holding only `{{!-- system --}}` starts the system part, a line holding only
 * `{{!-- user --}}` starts the user part. Markers are Handlebars comments, so every part is a valid template
 * on its own and the whole file still renders in any Handlebars tool. Text before the first marker is the
 * user part; a file without markers is all user. Each marker may appear once.
 */
import { TemplateSyntaxError } from './errors.ts';

/** The role a section marker introduces. */
export type SectionRole = 'system' | 'user';

/** One part of a prompt file. */
export interface Section {
  /** The part's source, without its marker line. */
  readonly source: string;
  /** 1-based line of the file on which `source` starts. */
  readonly firstLine: number;
}

/** The parts of a prompt file; `user` is always there (possibly empty), `system` only when marked. */
export interface Sections {
  readonly system?: Section;
  readonly user: Section;
}

const MARKER = /^[ \t]*\{\{!--[ \t]*(system|user)[ \t]*--\}\}[ \t]*$/u;
const COMMENTS = /\{\{~?!--[\s\S]*?--~?\}\}|\{\{~?![\s\S]*?~?\}\}/gu;

/**
 * Splits `source` at its section markers.
 *
 * @throws {TemplateSyntaxError} when a marker appears twice, or when there is text before the first marker
 *   and a `{{!-- user --}}` marker too (two user parts).
 */
export function splitSections(source: string, template: string): Sections {
  const lines = source.split(/\r?\n/u);
  const found = new Map<SectionRole, { firstLine: number; markerLine: number; lines: string[] }>();
  const preamble: string[] = [];
  let current = preamble;
  lines.forEach((line, index) => {
    const role = MARKER.exec(line)?.[1] as SectionRole | undefined;
    if (role === undefined) {
      current.push(line);
      return;
    }
    const previous = found.get(role);
    if (previous !== undefined) {
      throw new TemplateSyntaxError({
        template,
        line: index + 1,
        detail: `a second {{!-- ${role} --}} marker (the first is on line ${previous.markerLine}).`,
        hint: 'each of {{!-- system --}} and {{!-- user --}} may appear once',
      });
    }
    const section = { firstLine: index + 2, markerLine: index + 1, lines: [] };
    found.set(role, section);
    current = section.lines;
  });

  const toSection = (part: { firstLine: number; lines: string[] }): Section => ({
    source: part.lines.join('\n'),
    firstLine: part.firstLine,
  });
  const system = found.get('system');
  const user = found.get('user');
  const preambleSection = { firstLine: 1, lines: preamble };
  const preambleHasText = preamble.join('\n').replace(COMMENTS, '').trim() !== '';
  if (user !== undefined && preambleHasText) {
    throw new TemplateSyntaxError({
      template,
      line: 1,
      detail: 'text before the first section marker would be a second user part.',
      hint: 'move it below {{!-- user --}} or {{!-- system --}}, or remove the {{!-- user --}} marker',
    });
  }
  const userSection = toSection(user ?? preambleSection);
  return system === undefined ? { user: userSection } : { system: toSection(system), user: userSection };
}
