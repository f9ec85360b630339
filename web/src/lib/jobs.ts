import type { JobRequest, JobView } from "../../../src/server/api-schemas.js";
import { api, withToken } from "./api";

/** A job started and followed over Server-Sent Events: `onView` gets every view until the final one. */
export interface FollowedJob {
  id: string;
  /** Asks the server to cancel it (the final `cancelled` view still arrives through `onView`). */
  cancel(): Promise<void>;
  /** Stops listening (the job goes on). */
  close(): void;
}

export async function startJob(request: JobRequest, onView: (view: JobView) => void): Promise<FollowedJob> {
  const { id } = await api<{ id: string }>("/jobs", { body: request });
  onView(await api<JobView>(`/jobs/${id}`));
  const events = new EventSource(withToken(`/jobs/${id}/events`));
  for (const name of ["progress", "done", "failed", "cancelled"]) {
    events.addEventListener(name, (event) => {
      onView(JSON.parse((event as MessageEvent).data) as JobView);
      if (name !== "progress") events.close();
    });
  }
  return {
    id,
    cancel: async () => {
      await api(`/jobs/${id}`, { method: "DELETE" });
    },
    close: () => events.close(),
  };
}

export function jobPercent(job: JobView): number {
  if (job.state === "done") return 100;
  return job.progress.bytesTotal ? (100 * job.progress.bytesDone) / job.progress.bytesTotal : 0;
}

export const isActive = (job: JobView | null): boolean => job?.state === "queued" || job?.state === "running";
