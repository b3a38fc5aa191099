// The one error class of deploys; `code` is stable (the CLI and tests branch on it).

export type DeployErrorCode =
  | 'ERR_DEPLOY_SPEC' // the request is invalid (unknown service, from = to, bad steps…)
  | 'ERR_DEPLOY_BUSY' // a deploy is already running on this coordinator
  | 'ERR_DEPLOY_STATE' // the operation does not fit the deploy's phase (abort a finished deploy…)
  | 'ERR_DEPLOY_NONE' // no deploy known here
  | 'ERR_DEPLOY_FILE'; // the state file could not be written or read

export class DeployError extends Error {
  constructor(
    readonly code: DeployErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'DeployError';
  }
}
