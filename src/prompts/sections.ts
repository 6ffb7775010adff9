/**
 * Package-internal: splits one prompt file into its parts.
 *
 * Format: a line holding only `{{!-- system --}}` starts the system part, `{{!-- user --}}` a user part,
 * `{{!-- assistant --}}` an assistant part (a few-shot answer), and `{{!-- history --}}` marks where the
 * node's conversation goes (the marker holds no text of its own: text after it up to the next marker is
 * ignored unless it is only comments or blank). Markers are Handlebars comments, so every part is a valid
 * template on its own and the whole file still renders in any Handlebars tool. Text before the first marker
 * is a user part; a file without markers is all user. `system` and `history` may appear once; `user` and
 * `assistant` as often as the turns they write.
 */
import { TemplateSyntaxError } from './errors.ts';

/** The role a section marker introduces. */
export type SectionRole = 'system' | 'user' | 'assistant' | 'history';

/** One part of a prompt file. */
export interface Section {
  /** The part's source, without its marker line. */
  readonly source: string;
  /** 1-based line of the file on which `source` starts. */
  readonly firstLine: number;
}

/** One conversation part of a prompt file, in file order. */
export type TurnSection =
  | ({ readonly role: 'user' | 'assistant' } & Section)
  | { readonly role: 'history'; readonly firstLine: number };

/** The parts of a prompt file. */
export interface Sections {
  /** The system part, only when marked. */
  readonly system?: Section;
  /** The last user part (the newest turn), possibly empty: the whole file when it has no markers. */
  readonly user: Section;
  /**
   * Every user, assistant and history part in file order, the last user part included; present only when
   * the file has an assistant or history marker, or more than one user part.
   */
  readonly turns?: readonly TurnSection[];
}

const MARKER = /^[ \t]*\{\{!--[ \t]*(system|user|assistant|history)[ \t]*--\}\}[ \t]*$/u;
const COMMENTS = /\{\{~?!--[\s\S]*?--~?\}\}|\{\{~?![\s\S]*?~?\}\}/gu;

function hasText(lines: readonly string[]): boolean {
  return lines.join('\n').replace(COMMENTS, '').trim() !== '';
}

interface Part {
  readonly role: SectionRole | 'preamble';
  readonly firstLine: number;
  readonly markerLine: number;
  readonly lines: string[];
}

/**
 * Splits `source` at its section markers.
 *
 * @throws {TemplateSyntaxError} when a `system` or `history` marker appears twice, when there is text
 *   before the first marker and a `{{!-- user --}}` marker right after it (two user parts in a row), or
 *   when text follows a `{{!-- history --}}` marker.
 */
export function splitSections(source: string, template: string): Sections {
  const lines = source.split(/\r?\n/u);
  const preamble: Part = { role: 'preamble', firstLine: 1, markerLine: 0, lines: [] };
  const parts: Part[] = [preamble];
  const once = new Map<SectionRole, Part>();
  lines.forEach((line, index) => {
    const role = MARKER.exec(line)?.[1] as SectionRole | undefined;
    if (role === undefined) {
      (parts.at(-1) as Part).lines.push(line);
      return;
    }
    const previous = once.get(role);
    if (previous !== undefined) {
      throw new TemplateSyntaxError({
        template,
        line: index + 1,
        detail: `a second {{!-- ${role} --}} marker (the first is on line ${previous.markerLine}).`,
        hint: 'each of {{!-- system --}} and {{!-- history --}} may appear once',
      });
    }
    const part: Part = { role, firstLine: index + 2, markerLine: index + 1, lines: [] };
    if (role === 'system' || role === 'history') once.set(role, part);
    parts.push(part);
  });

  const toSection = (part: Part): Section => ({ source: part.lines.join('\n'), firstLine: part.firstLine });
  const preambleHasText = hasText(preamble.lines);
  const turnMarkers = parts.filter((p) => p.role !== 'preamble' && p.role !== 'system');
  if (preambleHasText && turnMarkers[0]?.role === 'user') {
    throw new TemplateSyntaxError({
      template,
      line: 1,
      detail: 'text before the first section marker would be a second user part.',
      hint: 'move it below {{!-- user --}} or {{!-- system --}}, or remove the {{!-- user --}} marker',
    });
  }
  // Text before the first marker is a user part, and so is the whole file when it marks no turn at all.
  const preambleIsTurn = preambleHasText || turnMarkers.length === 0;
  const turns: TurnSection[] = [];
  let system: Section | undefined;
  for (const part of parts) {
    switch (part.role) {
      case 'preamble':
        if (preambleIsTurn) turns.push({ role: 'user', ...toSection(part) });
        break;
      case 'system':
        system = toSection(part);
        break;
      case 'history':
        if (hasText(part.lines)) {
          throw new TemplateSyntaxError({
            template,
            line: part.firstLine,
            detail: 'text after {{!-- history --}}: the marker only says where the conversation goes.',
            hint: 'start the text with {{!-- user --}} or {{!-- assistant --}}',
          });
        }
        turns.push({ role: 'history', firstLine: part.markerLine });
        break;
      default:
        turns.push({ role: part.role, ...toSection(part) });
    }
  }
  const users = turns.filter((t): t is TurnSection & Section => t.role === 'user');
  const last = users.at(-1);
  const user: Section = last === undefined ? { source: '', firstLine: 1 } : toTurnSection(last);
  const base = system === undefined ? { user } : { system, user };
  const conversational = users.length !== turns.length || users.length > 1;
  return conversational ? { ...base, turns } : base;
}

function toTurnSection(turn: Section): Section {
  return { source: turn.source, firstLine: turn.firstLine };
}
