import { GyozaError } from "../errors.js";

/**
 * The date a merge records as `modelspec.date`: `SOURCE_DATE_EPOCH` when set, as reproducible-build
 * tools honour it (https://reproducible-builds.org/specs/source-date-epoch/), else now. With it set,
 * merging the same recipe and inputs to the same output gives the same bytes, so the same AutoV2:
 * time is the only thing that otherwise differs between two such merges.
 */
export function mergeDate(env: NodeJS.ProcessEnv = process.env): Date {
  const text = env.SOURCE_DATE_EPOCH;
  if (text === undefined || text === "") return new Date();
  // the spec: ASCII digits only, seconds since 1970-01-01 UTC; a malformed value must fail the build
  const seconds = /^\d{1,15}$/.test(text) ? Number(text) : Number.NaN;
  const date = new Date(seconds * 1000);
  if (Number.isNaN(date.getTime())) {
    throw new GyozaError(
      "usage",
      `SOURCE_DATE_EPOCH="${text.slice(0, 40)}" is not a date (whole seconds since 1970-01-01 UTC)`,
      { fix: "e.g. SOURCE_DATE_EPOCH=$(date +%s), or unset it to record the time of the merge" },
    );
  }
  return date;
}
