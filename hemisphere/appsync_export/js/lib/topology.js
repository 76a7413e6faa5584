// Read local, write global: a write starts in the primary region this API was deployed
// against (its PRIMARY_REGION), unless the replicated control item says that another region
// took over or that writes are suspended: then, as Hemisphere, ReadOnlyRegion (nothing is
// started; redeploying the regional stacks with the new PrimaryRegion ends it).

function requireWritable(control, env) {
  if (control === undefined || control === null) {
    return;
  }
  if (control.readOnly) {
    util.error('writes are suspended while the primary region is being replaced',
      'ReadOnlyRegion', null, { retryable: true });
  }
  if (control.primaryRegion !== env.PRIMARY_REGION) {
    util.error(`the primary region is now ${control.primaryRegion}; this API still writes to ` +
      `${env.PRIMARY_REGION} until it is redeployed`, 'ReadOnlyRegion', null, { retryable: true });
  }
}
