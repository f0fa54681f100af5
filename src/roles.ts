/** A started role (api, subscriber, worker) or another part of a process that the CLI closes on a signal. */
export interface RunningRole {
  readonly name: string
  close(): Promise<void>
}
