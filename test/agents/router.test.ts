import { describe, expect, expectTypeOf, it } from 'vitest';
import { z } from 'zod';
import { routeSchema, router, type RouteChoice } from '../../agents/index.ts';
import { chain, InvalidOptionError } from '../../src/index.ts';
import { captureClient, requestFor, userText } from './capture.ts';

const routes = {
  billing: 'payments, invoices, refunds',
  support: 'using or fixing the product',
  sales: 'buying more seats or plans',
};

describe('router', () => {
  it('picks a route typed as the union of route names, and the next node branches on it', async () => {
    const { options, requests } = captureClient([
      {
        match: 'You route requests',
        reply: { reason: 'A double charge is a payment matter.', route: 'billing' },
      },
    ]);
    const desk = chain({ input: z.object({ text: z.string() }), ...options })
      .prompt('route', router({ routes, instructions: 'When in doubt, pick support.' }))
      .prompt('reply', {
        after: ['route'],
        prompt: ({ route, input }) => {
          expectTypeOf(route.route).toEqualTypeOf<'billing' | 'support' | 'sales'>();
          return `You are the ${route.route} desk. Answer: ${input.text}`;
        },
      })
      .build();
    const { outputs } = await desk.run({ text: 'I was charged twice this month.' });
    expectTypeOf(outputs.route).toExtend<RouteChoice<'billing' | 'support' | 'sales'>>();
    expect(outputs.route).toEqual({ reason: 'A double charge is a payment matter.', route: 'billing' });
    expect(userText(requests[1])).toBe('You are the billing desk. Answer: I was charged twice this month.');

    const request = requestFor(requests, 'You route requests');
    expect(request.output?.name).toBe('route');
    expect(request.output?.schema).toMatchObject({
      properties: { route: { enum: ['billing', 'support', 'sales'] } },
    });
    const text = userText(request);
    expect(text).toContain(
      'Routes:\n- billing: payments, invoices, refunds\n- support: using or fixing the product\n- sales: buying more seats or plans\n',
    );
    expect(text).toContain('When in doubt, pick support.');
    expect(text).toContain('<request>\nI was charged twice this month.\n</request>');
  });

  it('routes an upstream node; the simulated model picks one of the routes', async () => {
    const { options, requests } = captureClient([
      { match: 'Rewrite as a ticket', reply: 'Ticket: app crashes on start.' },
    ]);
    const { outputs } = await chain({ input: z.string(), ...options })
      .prompt('ticket', { prompt: ({ input }) => `Rewrite as a ticket: ${input}` })
      .prompt('route', router({ routes, from: 'ticket' }))
      .build()
      .run('my app dies when I open it');
    expectTypeOf(outputs.route.route).toEqualTypeOf<'billing' | 'support' | 'sales'>();
    expect(Object.keys(routes)).toContain(outputs.route.route);
    expect(routeSchema(['billing', 'support', 'sales']).safeParse(outputs.route).success).toBe(true);
    expect(userText(requests[1])).toContain('<request>\nTicket: app crashes on start.\n</request>');
  });

  it('refuses no routes and a route without a description', () => {
    expect(() => router({ routes: {} })).toThrow(InvalidOptionError);
    expect(() => router({ routes: { a: 'x', b: ' ' } })).toThrow(/routes\.b/);
  });
});
