// Contract v2's ownership rule (domain/auth.py may_act_for, resolvers/auth.py require_owner):
// an IAM caller (services, operators) acts on any customer; a token caller (OIDC, Cognito user
// pools, Lambda authorizer) only on its own; an API key on none. AppSync's directives only
// check the mode, so every resolver of customer data asks these.

const IAM_AUTHORIZATION = 'IAM Authorization';
// Cognito puts the customer id in a custom attribute; the Lambda authorizer answers it in its
// resolverContext (hemisphere/http/lambda_authorizer.py reads the same keys).
const COGNITO_CUSTOMER_CLAIM = 'custom:customerId';
const LAMBDA_CUSTOMER_KEY = 'customerId';

function isIamCaller() {
  return util.authType() === IAM_AUTHORIZATION;
}

// A claim's value as a customer id (Hemisphere takes str() of a number); anything else,
// or nothing, is no customer.
function customerIdOf(value) {
  if (typeof value === 'number') {
    return `${value}`;
  }
  if (typeof value === 'string' && value.length > 0) {
    return value;
  }
  return null;
}

// The customer a token caller speaks for, or null (IAM, API key, or a token carrying none).
// The OIDC claim is the deployment's (HEMISPHERE_OIDC_CUSTOMER_CLAIM for the containers,
// the regional stack's OidcCustomerClaim here): absent from ctx.env, no OIDC caller is
// anyone's, rather than guessing at one.
function callerCustomerId(ctx) {
  const mode = util.authType();
  const identity = ctx.identity || {};
  if (mode === 'Open ID Connect Authorization') {
    const claim = ctx.env.OIDC_CUSTOMER_CLAIM;
    return claim && identity.claims ? customerIdOf(identity.claims[claim]) : null;
  }
  if (mode === 'User Pool Authorization') {
    return identity.claims ? customerIdOf(identity.claims[COGNITO_CUSTOMER_CLAIM]) : null;
  }
  if (mode === 'Lambda Authorization') {
    const context = identity.resolverContext;
    return context ? customerIdOf(context[LAMBDA_CUSTOMER_KEY]) : null;
  }
  return null;
}

function mayActFor(ctx, customerId) {
  if (isIamCaller()) {
    return true;
  }
  const own = callerCustomerId(ctx);
  return own !== null && own === customerId;
}

// AppSync's Unauthorized ("Not Authorized to access <field> on type <type>", the field null),
// as Hemisphere answers it; called before anything is read for or written by the field.
function requireOwner(ctx, customerId) {
  if (!mayActFor(ctx, customerId)) {
    util.unauthorized();
  }
}
