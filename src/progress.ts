/**
 * Progress is data: long operations report events; the CLI draws a bar from them, a server could
 * forward them. The library never prints.
 */
export type ProgressEvent =
  | { type: "start"; task: string; totalBytes: number }
  | { type: "advance"; bytes: number; item?: string }
  | { type: "finish"; task: string };

export type ProgressListener = (event: ProgressEvent) => void;

export const noProgress: ProgressListener = () => {};
