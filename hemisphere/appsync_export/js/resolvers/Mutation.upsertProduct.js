import { util } from '@aws-appsync/utils';

// Mutation.upsertProduct (IAM only): an RDS data source (the RDS Data API on the primary's
// Aurora PostgreSQL) runs ONE statement, so the product row, its stock and its outbox event
// commit together or not at all, as adapters/postgres/repositories.upsert_product does in its
// transaction: without an id the product with this sku is replaced, or a new one takes the
// next free p-NNNN; a stock change advances the version once more (the inventory trigger),
// which the event's snapshot already counts. The outbox relay projects the event.
const UPSERT_PRODUCT = `
WITH wanted AS (
  SELECT COALESCE(
           CAST(:ID AS text),
           (SELECT id FROM products WHERE sku = CAST(:SKU AS text)),
           (SELECT 'p-' || CASE WHEN n < 10000 THEN lpad(n::text, 4, '0') ELSE n::text END
              FROM (SELECT COALESCE(max(substring(id FROM 3)::bigint), 0) + 1 AS n
                      FROM products WHERE id ~ '^p-[0-9]+$') AS next_id)
         ) AS id
),
owner AS (
  SELECT p.id FROM products p JOIN wanted w ON p.sku = CAST(:SKU AS text) AND p.id <> w.id
),
current_row AS (
  SELECT p.id, i.available AS old_available
    FROM products p
    JOIN wanted w ON p.id = w.id
    LEFT JOIN inventory i ON i.product_id = p.id
   WHERE NOT EXISTS (SELECT 1 FROM owner)
     FOR UPDATE OF p
),
updated AS (
  UPDATE products p
     SET sku = CAST(:SKU AS text), name = CAST(:NAME AS text),
         description = CAST(:DESCRIPTION AS text), category = CAST(:CATEGORY AS text),
         price_amount = CAST(:AMOUNT AS integer), currency = CAST(:CURRENCY AS text),
         version = p.version + 1, updated_at = now()
    FROM current_row c
   WHERE p.id = c.id
  RETURNING p.id, p.sku, p.name, p.description, p.category, p.price_amount, p.currency,
            p.version + CASE WHEN c.old_available <> CAST(:AVAILABLE AS integer)
                             THEN 1 ELSE 0 END AS version,
            p.updated_at
),
inserted AS (
  INSERT INTO products (id, sku, name, description, category, price_amount, currency, version,
                        updated_at)
  SELECT w.id, CAST(:SKU AS text), CAST(:NAME AS text), CAST(:DESCRIPTION AS text),
         CAST(:CATEGORY AS text), CAST(:AMOUNT AS integer), CAST(:CURRENCY AS text), 1, now()
    FROM wanted w
   WHERE NOT EXISTS (SELECT 1 FROM owner) AND NOT EXISTS (SELECT 1 FROM current_row)
  RETURNING id, sku, name, description, category, price_amount, currency, version, updated_at
),
stock AS (
  INSERT INTO inventory (product_id, available)
  SELECT id, CAST(:AVAILABLE AS integer) FROM updated
  UNION ALL
  SELECT id, CAST(:AVAILABLE AS integer) FROM inserted
  ON CONFLICT (product_id) DO UPDATE SET available = EXCLUDED.available
   WHERE inventory.available <> EXCLUDED.available
  RETURNING product_id
),
snapshot AS (
  SELECT * FROM updated UNION ALL SELECT * FROM inserted
),
event AS (
  INSERT INTO outbox (aggregate_kind, aggregate_id, version, payload)
  SELECT 'Product', s.id, s.version, jsonb_build_object(
           'id', s.id, 'sku', s.sku, 'name', s.name, 'description', s.description,
           'category', s.category,
           'price', jsonb_build_object('amount', s.price_amount, 'currency', s.currency),
           'available', CAST(:AVAILABLE AS integer),
           'updatedAt', to_char(s.updated_at AT TIME ZONE 'UTC',
                                'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
           'version', s.version)
    FROM snapshot s
  RETURNING payload
)
SELECT e.payload::text AS product, (SELECT id FROM owner) AS sku_owner,
       (SELECT count(*) FROM stock) AS stock_rows
  FROM (SELECT 1) AS one LEFT JOIN event e ON true`;

const ID_CHARACTERS = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-';
const UPPER_LETTERS = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ';

function checkInput(input) {
  // domain.commands.UpsertProduct's checks, with its messages.
  if (input.id !== undefined && input.id !== null) {
    const rest = input.id.slice(2).split('');
    if (!input.id.startsWith('p-') || rest.length < 1 || rest.length > 60 ||
      !rest.every((ch) => ID_CHARACTERS.indexOf(ch) >= 0)) {
      badRequest(`product id '${input.id}' must look like p-0001`);
    }
  }
  for (const [name, value] of [['sku', input.sku], ['name', input.name],
    ['category', input.category]]) {
    if (value.trim().length === 0) {
      badRequest(`${name} must not be empty`);
    }
    if (value.length > 200) {
      badRequest(`${name} is longer than 200 characters`);
    }
  }
  if (input.description && input.description.length > 4000) {
    badRequest('description is longer than 4000 characters');
  }
  const currency = input.price.currency.split('');
  if (currency.length !== 3 || !currency.every((ch) => UPPER_LETTERS.indexOf(ch) >= 0)) {
    badRequest(`currency '${input.price.currency}' is not an ISO 4217 code`);
  }
  if (input.price.amount < 0) {
    badRequest('price.amount must not be negative');
  }
  if (input.available < 0) {
    badRequest('available must not be negative');
  }
}

export function request(ctx) {
  const input = ctx.args.input;
  checkInput(input);
  return {
    statements: [UPSERT_PRODUCT],
    variableMap: {
      ':ID': input.id ?? null,
      ':SKU': input.sku,
      ':NAME': input.name,
      ':DESCRIPTION': input.description ?? null,
      ':CATEGORY': input.category,
      ':AMOUNT': input.price.amount,
      ':CURRENCY': input.price.currency,
      ':AVAILABLE': input.available,
    },
  };
}

export function response(ctx) {
  if (ctx.error) {
    util.error(`the relational model is unavailable (${ctx.error.message}); retry later`,
      'ServiceUnavailable', null, { retryable: true });
  }
  const row = util.rds.toJsonObject(ctx.result)[0][0];
  if (row.sku_owner) {
    badRequest(`sku ${ctx.args.input.sku} already belongs to product ${row.sku_owner}`);
  }
  return JSON.parse(row.product);
}
