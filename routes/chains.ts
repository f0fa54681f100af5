/**
 * The chains a tenant can watch: what the dashboard's watch form offers under "Chain" and what a
 * script can check before `POST /watches`. Ids, types and default depths only: endpoints can carry
 * a provider's key, and their health is the operator's (`GET /admin/status`).
 */
import type { ApiRoutes } from '../src/api/route-context.js'
import { errorResponses, tenantSecurity } from '../src/api/schemas.js'

const chainSchema = {
  type: 'object',
  required: ['id', 'type'],
  properties: {
    id: { type: 'string' },
    type: { enum: ['evm', 'solana'] },
    confirmations: { type: 'integer', description: "EVM: a watch's default confirmations" },
    commitment: { enum: ['processed', 'confirmed', 'finalized'], description: "Solana: a watch's default commitment" },
  },
} as const

export const chainRoutes: ApiRoutes = async (app, { config }) => {
  app.get('/chains', {
    schema: {
      tags: ['watches'],
      security: tenantSecurity,
      summary: 'The chains this deployment follows, for a watch\'s "chain"',
      response: {
        200: { type: 'object', required: ['items'], properties: { items: { type: 'array', items: chainSchema } } },
        ...errorResponses,
      },
    },
  }, async () => ({
    items: config.chains.map((chain) => chain.type === 'evm'
      ? { id: chain.id, type: chain.type, confirmations: chain.confirmations }
      : { id: chain.id, type: chain.type, commitment: chain.commitment }),
  }))
}
