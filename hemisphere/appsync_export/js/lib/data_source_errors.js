// A DynamoDB error of a data source as the error Hemisphere answers: a failed read is a
// retryable ServiceUnavailable, anything else keeps AppSync's type.
function failOnDataSourceError(error) {
  if (error) {
    if (error.type === 'DynamoDB:ProvisionedThroughputExceededException' ||
      error.type === 'DynamoDB:RequestLimitExceeded' ||
      error.type === 'DynamoDB:InternalServerError') {
      util.error('the projection store is unavailable; retry later', 'ServiceUnavailable', null,
        { retryable: true });
    }
    util.error(error.message, error.type);
  }
}
