import { util } from '@aws-appsync/utils';

// Query.region: this region (the API's environment) and who is primary, from the replicated
// control item (pk CONTROL, sk TOPOLOGY), read strongly consistent because it decides where
// writes go. Without the item (a fresh table) the deployed topology holds, epoch 0.
export function request(ctx) {
  return {
    operation: 'GetItem',
    key: util.dynamodb.toMapValues({ pk: 'CONTROL', sk: 'TOPOLOGY' }),
    consistentRead: true,
  };
}

export function response(ctx) {
  failOnDataSourceError(ctx.error);
  const control = ctx.result;
  if (control === undefined || control === null) {
    return {
      region: ctx.env.REGION,
      primaryRegion: ctx.env.PRIMARY_REGION,
      readOnly: false,
      epoch: 0,
    };
  }
  return {
    region: ctx.env.REGION,
    primaryRegion: control.primaryRegion,
    readOnly: control.readOnly ?? false,
    epoch: control.epoch,
  };
}
