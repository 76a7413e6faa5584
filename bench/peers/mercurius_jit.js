'use strict'
// bench/read_path.py's Node target: Fastify + mercurius with graphql-jit, serving the
// benchmark's two queries (product, products50) from memory, on 127.0.0.1.
//
//   NODE_PATH=<modules>/node_modules node bench/peers/mercurius_jit.js PORT DATA.json
//
// DATA.json is the file read_path.py writes for the Python baselines (baseline_apps.py):
// {"products": [...], "next_tokens": {"50": "<Hemisphere's token after 50 items>"}, ...}.
// The products are the 240 seeded ones, read once from the running Hemisphere, so the answers
// are the bytes Hemisphere sends (read_path.py checks that before it measures anything).
//
// Unlike ../shared/peers/graphql-baselines/node/mercurius.js (a toy schema of its own), the
// schema here is the contract's for these types: Money, Product (every field, nullability as
// in the contract) and ProductConnection, and the two root fields with the contract's
// arguments. The node_modules come from package.json/package-lock.json, installed by
// read_path.py outside the repository and found through NODE_PATH.

const fs = require('node:fs')
const Fastify = require('fastify')
const mercurius = require('mercurius')

// As Hemisphere (resolvers/pagination.py) and the Strawberry baseline.
const DEFAULT_LIMIT = 20
const MAX_LIMIT = 100

const SDL = `
  scalar AWSDateTime

  type Money {
    amount: Int!
    currency: String!
  }

  type Product {
    id: ID!
    sku: String!
    name: String!
    description: String
    category: String!
    price: Money!
    available: Int!
    updatedAt: AWSDateTime!
    version: Int!
  }

  type ProductConnection {
    items: [Product!]!
    nextToken: String
  }

  type Query {
    product(id: ID!): Product
    products(category: String, limit: Int, nextToken: String): ProductConnection!
  }
`

function loadCatalog (path) {
  const data = JSON.parse(fs.readFileSync(path, 'utf8'))
  const products = data.products.map((raw) => ({
    id: raw.id,
    sku: raw.sku ?? '',
    name: raw.name,
    description: raw.description ?? null,
    category: raw.category,
    price: { amount: raw.price.amount, currency: raw.price.currency },
    available: raw.available,
    updatedAt: raw.updatedAt ?? '',
    version: raw.version ?? 1
  }))
  // Hemisphere's opaque tokens for the offsets read_path.py knows; any other offset gets a
  // plain number as its token (never asked for by the benchmark's bodies).
  const tokenOfOffset = new Map()
  const offsetOfToken = new Map()
  for (const [offset, token] of Object.entries(data.next_tokens ?? {})) {
    tokenOfOffset.set(Number(offset), token)
    offsetOfToken.set(token, Number(offset))
  }
  return {
    products,
    byId: new Map(products.map((p) => [p.id, p])),
    page (limit, token) {
      let start = 0
      if (token != null) {
        start = offsetOfToken.get(token) ?? (/^\d+$/.test(token) ? Number(token) : 0)
      }
      const end = start + limit
      const nextToken = end < products.length ? (tokenOfOffset.get(end) ?? String(end)) : null
      // Keys in the order of the SDL: graphql-jit writes fields in selection order anyway.
      return { items: products.slice(start, end), nextToken }
    }
  }
}

function main () {
  const port = Number(process.argv[2])
  const dataPath = process.argv[3]
  if (!Number.isInteger(port) || !dataPath) {
    console.error('usage: node mercurius_jit.js PORT DATA.json')
    process.exit(2)
  }
  const catalog = loadCatalog(dataPath)

  // Async resolvers, as Hemisphere's and the Strawberry baseline's are (a real service reads
  // a store): one promise per root field. The category filter is the contract's argument;
  // the benchmark's bodies do not use it, and a filtered page's token is a plain offset.
  const resolvers = {
    Query: {
      product: async (_, { id }) => catalog.byId.get(id) ?? null,
      products: async (_, { category, limit, nextToken }) => {
        const size = limit == null ? DEFAULT_LIMIT : Math.max(0, Math.min(limit, MAX_LIMIT))
        if (category == null) return catalog.page(size, nextToken)
        const start = nextToken != null && /^\d+$/.test(nextToken) ? Number(nextToken) : 0
        const matching = catalog.products.filter((p) => p.category === category)
        const end = start + size
        return {
          items: matching.slice(start, end),
          nextToken: end < matching.length ? String(end) : null
        }
      }
    }
  }

  const app = Fastify({ logger: false })
  app.register(mercurius, {
    schema: SDL,
    resolvers,
    // graphql-jit compiles a document the second time it is seen (jit: 1), which the checks
    // and the warm-up do before any measurement; mercurius's default LRU keeps the parsed and
    // validated documents (Strawberry's default settings keep nothing).
    jit: 1,
    graphiql: false,
    path: '/graphql'
  })
  app.listen({ port, host: '127.0.0.1' }, (err) => {
    if (err) {
      console.error(err)
      process.exit(1)
    }
    console.log(`mercurius-jit listening on 127.0.0.1:${port} (${catalog.products.length} products)`)
  })
  // read_path.py stops its servers with SIGTERM; close the listener, then go.
  process.on('SIGTERM', () => {
    app.close().then(() => process.exit(0), () => process.exit(1))
  })
}

main()
