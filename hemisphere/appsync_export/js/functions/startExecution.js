import { util, runtime } from '@aws-appsync/utils';

// StartExecution of the saga the previous step chose (stash.execution: machine, name derived
// from the idempotency key, canonical input). Started, or already running with this very
// input: done. A name taken before (ExecutionAlreadyExists): the next step compares inputs.
export function request(ctx) {
  const execution = ctx.stash.execution;
  if (!execution) {
    // Nothing to start (e.g. an order cancelled already: asking again changes nothing).
    runtime.earlyReturn(null);
  }
  return stepFunctionsCall('StartExecution', {
    stateMachineArn: execution.stateMachineArn,
    name: execution.name,
    input: execution.input,
  });
}

export function response(ctx) {
  const answer = stepFunctionsAnswer(ctx);
  if (answer.status === 200) {
    ctx.stash.execution.started = true;
    return null;
  }
  const code = answer.body.__type ?? '';
  if (answer.status === 400 && code.indexOf('ExecutionAlreadyExists') >= 0) {
    ctx.stash.execution.started = false;
    return null;
  }
  if (answer.status >= 500 || code.indexOf('Throttling') >= 0) {
    failUnavailable(ctx, `${answer.status} ${code}`);
  }
  return util.error(answer.body.message ?? `StartExecution failed: ${code}`, code);
}
