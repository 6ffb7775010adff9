/**
 * `router`: picks which of several named routes a request should take, typed as the union of route names.
 */
import { z } from 'zod';
import { InvalidOptionError } from '../src/core/errors.ts';
import {
  afterOf,
  commonSpec,
  readText,
  type AgentNodeSpec,
  type CommonAgentOptions,
  type Reads,
} from './common.ts';

/**
 * The output schema of a router over `routes` (names): `{ reason, route }`, `route` one of the names.
 *
 * @example
 * ```ts
 * const Route = routeSchema(['billing', 'support'] as const);
 * type Route = z.output<typeof Route>; // { reason: string; route: 'billing' | 'support' }
 * ```
 */
export function routeSchema<const R extends readonly string[]>(routes: R) {
  return z.object({
    reason: z.string().describe('One sentence: why this route fits the request.'),
    route: z.enum(routes).describe('The name of the route to take.'),
  });
}

/** The zod schema of a router's output over route names `R`. */
export type RouteSchema<R extends string> = ReturnType<typeof routeSchema<readonly R[]>>;

/** A router's output: `route` is one of `R`. */
export interface RouteChoice<R extends string> {
  /** Why the route fits, in a sentence. */
  readonly reason: string;
  /** The chosen route's name. */
  readonly route: R;
}

/** Options of {@link router}. */
export interface RouterOptions<
  R extends Readonly<Record<string, string>>,
  F extends string,
> extends CommonAgentOptions {
  /** The routes: each name, and when to pick it (the model reads this). */
  readonly routes: R;
  /** The node whose output to route (a string, or anything else as JSON). @default the chain input */
  readonly from?: F | undefined;
  /** Extra instructions, e.g. `'When in doubt, pick support.'` */
  readonly instructions?: string | undefined;
}

/**
 * A router node: reads `from` (or the chain input: a string, its `text` field, or the whole input as JSON)
 * and returns `{ reason, route }` with `route` typed as the union of the names in `routes`. Branch on it in
 * the next node's prompt function or variables, or after the run. Template: `agents/router`.
 *
 * @example
 * ```ts
 * const desk = chain({ input: z.object({ text: z.string() }) })
 *   .prompt('route', router({ routes: { billing: 'payments, invoices, refunds', support: 'anything else' } }))
 *   .prompt('reply', {
 *     after: ['route'],
 *     prompt: ({ route, input }) => `You are the ${route.route} desk. Answer: ${input.text}`,
 *   })
 *   .build();
 * const { outputs } = await desk.run({ text: 'I was charged twice.' });
 * outputs.route.route; // 'billing' | 'support'
 * ```
 * @throws {InvalidOptionError} for no routes, or a route without a description.
 */
export function router<const R extends Readonly<Record<string, string>>, const F extends string = never>(
  options: RouterOptions<R, F>,
): AgentNodeSpec<Reads<F>, RouteSchema<keyof R & string>> {
  const { routes, from, instructions } = options;
  if (typeof routes !== 'object' || (routes as R | null) === null || Object.keys(routes).length === 0) {
    throw new InvalidOptionError(
      'router.routes',
      routes,
      'an object of at least one route: { name: "when to pick it" }',
    );
  }
  const choices = Object.entries(routes).map(([name, when]) => {
    if (name.trim() === '')
      throw new InvalidOptionError('router.routes', routes, 'route names that are not empty');
    if (typeof (when as unknown) !== 'string' || when.trim() === '') {
      throw new InvalidOptionError(
        `router.routes.${name}`,
        when,
        'a non-empty description of when to pick it',
      );
    }
    return { name, when };
  });
  const names = choices.map((c) => c.name) as (keyof R & string)[];
  return {
    ...commonSpec(options),
    after: afterOf(from),
    template: 'agents/router',
    variables: (context) => ({
      text: readText(context, from),
      routes: choices,
      instructions: instructions ?? null,
    }),
    output: routeSchema(names),
    schemaName: 'route',
  };
}
