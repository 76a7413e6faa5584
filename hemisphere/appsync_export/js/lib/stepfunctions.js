// Step Functions' JSON API through an HTTP data source signed for `states` in the primary
// region (adapters/stepfunctions.py makes the same calls with aioboto3).

function stepFunctionsCall(target, body) {
  return {
    method: 'POST',
    resourcePath: '/',
    params: {
      headers: {
        'content-type': 'application/x-amz-json-1.0',
        'x-amz-target': 'AWSStepFunctions.' + target,
      },
      body: JSON.stringify(body),
    },
  };
}

// An unreachable or refusing Step Functions: nothing was started. From a secondary region
// that is the primary being out of reach, which Hemisphere answers as ReadOnlyRegion.
function failUnavailable(ctx, detail) {
  if (ctx.env.REGION !== ctx.env.PRIMARY_REGION) {
    util.error(`the primary region ${ctx.env.PRIMARY_REGION} cannot be reached (${detail}); ` +
      'retry later with the same idempotency key', 'ReadOnlyRegion', null, { retryable: true });
  }
  util.error(`Step Functions is unavailable (${detail}); retry later with the same ` +
    'idempotency key', 'ServiceUnavailable', null, { retryable: true });
}

function stepFunctionsAnswer(ctx) {
  if (ctx.error) {
    failUnavailable(ctx, ctx.error.message);
  }
  const body = ctx.result.body ? JSON.parse(ctx.result.body) : {};
  return { status: ctx.result.statusCode, body };
}
