import { util, runtime } from '@aws-appsync/utils';

// When the execution's name was taken (a finished execution, or a running one with another
// input): DescribeExecution, and the same request is no conflict, another one is
// IdempotencyConflict, as StepFunctionsOrderWorkflows answers.
export function request(ctx) {
  const execution = ctx.stash.execution;
  if (!execution || execution.started) {
    runtime.earlyReturn(null);
  }
  const executionArn =
    execution.stateMachineArn.replace(':stateMachine:', ':execution:') + ':' + execution.name;
  return stepFunctionsCall('DescribeExecution', { executionArn });
}

export function response(ctx) {
  const answer = stepFunctionsAnswer(ctx);
  if (answer.status !== 200) {
    failUnavailable(ctx, `${answer.status} ${answer.body.__type ?? ''}`);
  }
  const execution = ctx.stash.execution;
  const existing = JSON.parse(answer.body.input);
  const wanted = JSON.parse(execution.input);
  const part = execution.comparedPart;
  const same = part
    ? canonicalJson(existing[part] ?? null) === canonicalJson(wanted[part])
    : canonicalJson(existing) === canonicalJson(wanted);
  if (!same) {
    util.error(execution.conflict, 'IdempotencyConflict');
  }
  return null;
}
