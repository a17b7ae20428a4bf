// The versions panel: the selected project's versions, newest first (ListVersions, paged like
// the project list), each with its preview, a diff against the version before it
// (DiffVersions), a restore (RestoreVersion), whose run the page follows like a prompt's, and a
// download of its files as a .zip (its download_url).
//
// File names and diffs are the project's files, written by a model from anyone's prompt: they
// are shown as text only.
import type { Client } from "@connectrpc/connect";
import { create } from "@bufbuild/protobuf";
import {
  AgentOrchestrator,
  FileDiffSchema,
  FileDiff_Change,
  GetVersionRequest_View,
  type FileDiff,
  type Version,
} from "./gen/qai/orchestrator/v1/orchestrator_pb";
import { $, el, guarded, time } from "./ui";

const PAGE_SIZE = 20;

// What the panel needs of the page: its client, the project it shows, and the page's way of
// following a run (its progress, then the conversation and this list again).
export interface VersionsHost {
  orchestrator: () => Client<typeof AgentOrchestrator>;
  projectId: () => string | undefined;
  watchRun: (runId: string) => Promise<void>;
}

let host: VersionsHost;
let nextPage = "";

export function initVersions(h: VersionsHost) {
  host = h;
  $("more-versions").addEventListener("click", guarded(() => loadVersions(true)));
  $("close-diff").addEventListener("click", () => ($("diff-pane").hidden = true));
}

// Empties the panel and the diff (another project was chosen).
export function resetVersions() {
  $("versions").replaceChildren();
  $("more-versions").hidden = true;
  $("diff-pane").hidden = true;
  nextPage = "";
}

// The project's newest versions, or with `more` the next page of older ones.
export async function loadVersions(more = false) {
  const projectId = host.projectId();
  if (!projectId) return;
  const res = await host.orchestrator().listVersions({ projectId, pageSize: PAGE_SIZE, pageToken: more ? nextPage : "" });
  if (host.projectId() !== projectId) return; // another project was chosen meanwhile
  const list = $("versions");
  if (!more) list.replaceChildren();
  for (const v of res.versions) list.appendChild(versionItem(v));
  nextPage = res.nextPageToken;
  $("more-versions").hidden = !nextPage;
}

function versionItem(v: Version): HTMLElement {
  const li = el("li", `v${v.number} · ${v.title || "untitled"}`);
  li.dataset.number = String(v.number);
  li.appendChild(el("small", versionDetails(v).join(" · ")));
  const actions = el("span", "", "actions");
  const url = httpUrl(v.sandboxUrl);
  if (url) {
    const link = el("a", "preview") as HTMLAnchorElement;
    Object.assign(link, { href: url, target: "_blank", rel: "noopener" });
    actions.appendChild(link);
  }
  actions.append(
    button("Diff", () => showDiff(v)),
    button("Restore", () => restore(v)),
    button("Download", () => download(v)),
  );
  li.appendChild(actions);
  return li;
}

function versionDetails(v: Version): string[] {
  const details = [time(v.createTime)];
  if (v.author) details.push(v.author);
  if (v.forkedFromProjectId) details.push(`forked from version ${v.restoredFrom} of project ${v.forkedFromProjectId}`);
  else if (v.restoredFrom) details.push(`restored from ${v.restoredFrom}`);
  return details;
}

// A preview link only for http(s): a URL is data from the server like any other.
function httpUrl(url: string): string {
  try {
    return ["http:", "https:"].includes(new URL(url).protocol) ? url : "";
  } catch {
    return "";
  }
}

// A button that runs `action` guarded, and is disabled while it runs (one restore a click).
function button(label: string, action: () => Promise<void>): HTMLButtonElement {
  const b = el("button", label) as HTMLButtonElement;
  b.type = "button";
  const run = guarded(async () => {
    b.disabled = true;
    try {
      await action();
    } finally {
      b.disabled = false;
    }
  });
  b.addEventListener("click", run);
  return b;
}

// --- restore ---------------------------------------------------------------------------------

// The version back as the next one: a run of its own, followed like a prompt's; at its end the
// conversation has its message, the preview its fragment, and this list the new version.
async function restore(v: Version) {
  const run = await host.orchestrator().restoreVersion({
    projectId: v.projectId,
    number: v.number,
    requestId: crypto.randomUUID(),
  });
  if (host.projectId() === v.projectId) await host.watchRun(run.id);
}

// --- download --------------------------------------------------------------------------------

// The version's files as a .zip: its download URL (GetVersion), which the preview server answers
// as an attachment named after the project and the version, so the page stays.
async function download(v: Version) {
  const full = await host.orchestrator().getVersion({ projectId: v.projectId, number: v.number, view: GetVersionRequest_View.BASIC });
  const url = httpUrl(full.downloadUrl);
  if (!url) throw new Error(`version ${v.number} has no download`);
  const link = el("a", "") as HTMLAnchorElement;
  link.href = url;
  link.click();
}

// --- diff ------------------------------------------------------------------------------------

// What version N changed since N-1; version 1 has nothing before it, so all its files are new.
async function showDiff(v: Version) {
  const { files, truncated } = v.number > 1 ? await diffFromPrevious(v) : await firstFiles(v);
  if (host.projectId() !== v.projectId) return;
  $("diff-title").textContent = v.number > 1 ? `Version ${v.number} against ${v.number - 1}` : "Version 1: its files";
  const note = $("diff-note");
  note.textContent = files.length === 0 ? "No file changed." : "Some diffs were cut or not computed (too large).";
  note.hidden = files.length > 0 && !truncated;
  $("diff-files").replaceChildren(...files.map(fileItem));
  $("diff-pane").hidden = false;
}

async function diffFromPrevious(v: Version): Promise<{ files: FileDiff[]; truncated: boolean }> {
  return host.orchestrator().diffVersions({
    projectId: v.projectId,
    from: { ref: { case: "number", value: v.number - 1 } },
    to: { ref: { case: "number", value: v.number } },
  });
}

async function firstFiles(v: Version): Promise<{ files: FileDiff[]; truncated: boolean }> {
  const full = await host.orchestrator().getVersion({ projectId: v.projectId, number: v.number, view: GetVersionRequest_View.BASIC });
  const files = full.files.map((f) => create(FileDiffSchema, { path: f.path, change: FileDiff_Change.ADDED, newSize: f.size }));
  return { files, truncated: false };
}

const CHANGES: Record<number, string> = {
  [FileDiff_Change.ADDED]: "added",
  [FileDiff_Change.REMOVED]: "removed",
  [FileDiff_Change.MODIFIED]: "modified",
};

function fileItem(d: FileDiff): HTMLElement {
  const change = CHANGES[d.change] ?? "changed";
  const li = el("li", "", change);
  li.dataset.path = d.path;
  li.appendChild(el("strong", d.path));
  const flags = [change, sizes(d)];
  if (d.binary) flags.push("binary");
  if (d.truncated) flags.push(d.unifiedDiff ? "diff cut at its bound" : "too large to diff");
  li.appendChild(el("small", flags.join(" · ")));
  if (d.unifiedDiff) li.appendChild(diffText(d.unifiedDiff));
  return li;
}

function sizes(d: FileDiff): string {
  if (d.change === FileDiff_Change.ADDED) return `${d.newSize} bytes`;
  if (d.change === FileDiff_Change.REMOVED) return `${d.oldSize} bytes`;
  return `${d.oldSize} → ${d.newSize} bytes`;
}

// The unified diff, one element a line, marked as added, removed or a hunk's header.
function diffText(text: string): HTMLElement {
  const pre = el("pre", "", "diff");
  const lines = text.split("\n");
  if (lines.at(-1) === "") lines.pop();
  for (const line of lines) {
    const kind = line.startsWith("+") ? "add" : line.startsWith("-") ? "del" : line.startsWith("@@") ? "hunk" : "";
    pre.appendChild(el("span", line, kind));
  }
  return pre;
}
