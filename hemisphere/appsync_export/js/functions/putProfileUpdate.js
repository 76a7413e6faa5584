import { util } from '@aws-appsync/utils';

// updateCustomerProfile, step 2 (EventBridge PutEvents on this region's bus): the event
// adapters/eventbridge.py puts, with the same source, detail type and detail; the regional
// bus forwards it to the primary's, whose rule delivers it to the profile worker's queue.
export function request(ctx) {
  const input = ctx.args.input;
  const requestedAt = encodeNow();
  ctx.stash.receipt = {
    requestId: profileUpdateRequestId(input.customerId, input.idempotencyKey),
    acceptedAt: toAppSyncDateTime(requestedAt),
  };
  return {
    operation: 'PutEvents',
    events: [
      {
        source: 'hemisphere.api',
        detailType: 'CustomerProfileUpdateRequested',
        detail: {
          requestId: ctx.stash.receipt.requestId,
          customerId: input.customerId,
          name: input.name ?? null,
          email: input.email ?? null,
          idempotencyKey: input.idempotencyKey,
          requestedAt,
        },
        time: toAppSyncDateTime(requestedAt),
      },
    ],
  };
}

export function response(ctx) {
  if (ctx.error) {
    util.error(`the event bus is unavailable (${ctx.error.message}); retry later`,
      'ServiceUnavailable', null, { retryable: true });
  }
  if (ctx.result.FailedEntryCount > 0) {
    const failed = ctx.result.Entries.find((entry) => entry.ErrorCode) ?? {};
    util.error('the event bus did not accept the profile update ' +
      `(${failed.ErrorCode ?? 'unknown'}: ${failed.ErrorMessage ?? ''}); retry later with the ` +
      'same idempotencyKey', 'ServiceUnavailable', null, { retryable: true });
  }
  return ctx.stash.receipt;
}
