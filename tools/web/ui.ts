// What every part of the web page shares: finding and making elements, times, and the one
// error display (#error) every action's failure goes to.
//
// Text from the services (prompts, answers, file names, diffs) only ever goes in as text
// (textContent), never as HTML.
import { Code, ConnectError } from "@connectrpc/connect";
import { timestampDate, type Timestamp } from "@bufbuild/protobuf/wkt";
import { BadRequestSchema, QuotaFailureSchema, RetryInfoSchema } from "./gen/google/rpc/error_details_pb";

export const $ = <T extends HTMLElement = HTMLElement>(id: string) => document.getElementById(id) as T;

export function el(tag: string, text: string, className = ""): HTMLElement {
  const e = document.createElement(tag);
  e.textContent = text;
  if (className) e.className = className;
  return e;
}

export function time(ts?: Timestamp): string {
  return ts ? timestampDate(ts).toLocaleString() : "";
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function describeError(err: unknown): string {
  const e = ConnectError.from(err);
  const lines = [`${Code[e.code]}: ${e.rawMessage}`];
  for (const bad of e.findDetails(BadRequestSchema)) {
    for (const v of bad.fieldViolations) lines.push(`  ${v.field}: ${v.description}`);
  }
  for (const quota of e.findDetails(QuotaFailureSchema)) {
    for (const v of quota.violations) lines.push(`  ${v.subject}: ${v.description}`);
  }
  for (const retry of e.findDetails(RetryInfoSchema)) {
    if (retry.retryDelay) lines.push(`  retry in ${Number(retry.retryDelay.seconds) + retry.retryDelay.nanos / 1e9} s`);
  }
  return lines.join("\n");
}

export function showError(err: unknown) {
  const box = $("error");
  box.textContent = describeError(err);
  box.hidden = false;
}

function clearError() {
  $("error").hidden = true;
}

// Runs an action from a button or form; its failure is shown, never thrown into the console.
export function guarded(action: () => Promise<void>) {
  return (event?: Event) => {
    event?.preventDefault();
    clearError();
    action().catch((err) => {
      if (!(err instanceof ConnectError && err.code === Code.Canceled)) showError(err);
    });
  };
}
