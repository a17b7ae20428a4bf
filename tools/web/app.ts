// The QAI web page: lists your projects, creates one from a prompt, follows the agent's run live
// (AgentOrchestrator.WatchRun, a server stream over grpc-web) and shows the fragment's preview;
// beside the conversation, the project's versions (versions.ts).
// It calls the services through a grpc-web proxy (Envoy in Kubernetes, tools/web/proxy.ts
// locally) with Connect's grpc-web transport and the code protoc-gen-es generates from proto/.
//
// The API address and the token come from the form, or from the URL: ?api=...&token=...
import { Code, ConnectError, createClient, type Client, type Interceptor } from "@connectrpc/connect";
import { createGrpcWebTransport } from "@connectrpc/connect-web";
import { ProjectService, type Project } from "./gen/qai/projects/v1/projects_pb";
import { MessageService, Message_Role, Message_Type, ListMessagesRequest_View, type Fragment, type Message } from "./gen/qai/messages/v1/messages_pb";
import { AgentOrchestrator, Run_State, type RunEvent } from "./gen/qai/orchestrator/v1/orchestrator_pb";
import { $, el, guarded, showError, sleep, time } from "./ui";
import { initVersions, loadVersions, resetVersions } from "./versions";

// How long the page waits for what the services do in the background: the run a prompt starts
// (through two outboxes) and the result message a finished run leaves.
const WAIT_FOR_RUN_MS = 60_000;
const POLL_MS = 250;
// A watch that loses its stream (a replica going away, a dropped connection) reconnects from the
// last event it saw, waiting 250 ms, then twice as long each time up to 4 s; it gives up after
// this many failures in a row (about 40 s without an event).
const WATCH_RECONNECTS = 12;
const WATCH_BACKOFF_MAX_MS = 4000;
// The progress list keeps the latest entries only; one model answer is one entry.
const MAX_PROGRESS_ITEMS = 400;
const MAX_ENTRY_CHARS = 2000;

interface Clients {
  projects: Client<typeof ProjectService>;
  messages: Client<typeof MessageService>;
  orchestrator: Client<typeof AgentOrchestrator>;
}

let clients: Clients | undefined;
let selected: Project | undefined;
let nextProjectsPage = "";
// The run being followed; a second watchRun of the same run (a new project's first run is
// found by both selectProject and createProject) leaves the first one be.
let watch: { runId: string; controller: AbortController } | undefined;

function connect(api: string, token: string): Clients {
  const auth: Interceptor = (next) => (req) => {
    if (token) req.header.set("authorization", `Bearer ${token}`);
    req.header.set("x-request-id", crypto.randomUUID());
    return next(req);
  };
  const transport = createGrpcWebTransport({ baseUrl: api.replace(/\/+$/, ""), interceptors: [auth] });
  return {
    projects: createClient(ProjectService, transport),
    messages: createClient(MessageService, transport),
    orchestrator: createClient(AgentOrchestrator, transport),
  };
}

function need(): Clients {
  if (!clients) throw new ConnectError("enter the API address and a token, then Connect", Code.FailedPrecondition);
  return clients;
}

// --- projects --------------------------------------------------------------------------------

const stateName = (state: string) => state.replace("STATE_", "").toLowerCase();

function projectItem(p: Project): HTMLElement {
  const li = el("li", p.displayName || p.name);
  li.dataset.id = p.id;
  li.dataset.label = `${p.name} · ${time(p.createTime)}`;
  li.appendChild(el("small", li.dataset.label + (p.latestRun ? ` · ${stateName(p.latestRun.state)}` : "")));
  li.addEventListener("click", guarded(() => selectProject(p)));
  if (selected?.id === p.id) li.classList.add("selected");
  return li;
}

async function loadProjects(more = false) {
  const { projects } = need();
  const res = await projects.listProjects({ pageSize: 20, pageToken: more ? nextProjectsPage : "" });
  const list = $("projects");
  if (!more) list.replaceChildren();
  for (const p of res.projects) list.appendChild(projectItem(p));
  nextProjectsPage = res.nextPageToken;
  $("more-projects").hidden = !nextProjectsPage;
}

async function createProject() {
  const { projects } = need();
  const prompt = $<HTMLTextAreaElement>("prompt");
  const name = $<HTMLInputElement>("display-name");
  const p = await projects.createProject({
    initialPrompt: prompt.value,
    displayName: name.value,
    requestId: crypto.randomUUID(),
  });
  prompt.value = "";
  name.value = "";
  $("projects").prepend(projectItem(p));
  await selectProject(p);
  // The first prompt reaches the orchestrator through the projects and messages outboxes.
  const { orchestrator } = need();
  await watchRun(await waitFor(async () => (await orchestrator.listRuns({ projectId: p.id, pageSize: 1 })).runs[0]?.id));
}

async function selectProject(p: Project) {
  selected = p;
  watch?.controller.abort();
  for (const li of $("projects").children) li.classList.toggle("selected", (li as HTMLElement).dataset.id === p.id);
  $("project-pane").hidden = false;
  $("versions-pane").hidden = false;
  $("project-title").textContent = p.displayName || p.name;
  $("progress").replaceChildren();
  $("run-state").textContent = "";
  $("preview-pane").hidden = true;
  resetVersions();
  await Promise.all([loadConversation(), loadVersions()]);
  // The project's latest run, followed live while it is not over.
  const [run] = (await need().orchestrator.listRuns({ projectId: p.id, pageSize: 1 })).runs;
  if (run && (run.state === Run_State.QUEUED || run.state === Run_State.RUNNING)) void watchRun(run.id).catch(showError);
}

// --- conversation ----------------------------------------------------------------------------

// The project's latest 50 messages, oldest first; the newest fragment is previewed.
async function loadConversation(): Promise<Message[]> {
  const { messages } = need();
  const res = await messages.listMessages({
    projectId: selected!.id,
    pageSize: 50,
    orderBy: "create_time desc",
    view: ListMessagesRequest_View.FULL,
  });
  const list = $("conversation");
  list.replaceChildren();
  const ordered = [...res.messages].reverse();
  for (const m of ordered) {
    const assistant = m.role === Message_Role.ASSISTANT;
    const li = el("li", m.content, assistant ? (m.type === Message_Type.ERROR ? "assistant error" : "assistant") : "user");
    li.appendChild(el("small", `${assistant ? "agent" : "you"} · ${time(m.createTime)}`));
    list.appendChild(li);
  }
  const latest = res.messages.find((m) => m.fragment);
  if (latest?.fragment) showFragment(latest.fragment);
  return res.messages;
}

async function sendFollowUp() {
  const { messages } = need();
  if (!selected) return;
  const box = $<HTMLTextAreaElement>("follow-up-prompt");
  const m = await messages.createMessage({ projectId: selected.id, content: box.value, requestId: crypto.randomUUID() });
  box.value = "";
  await loadConversation();
  await watchRun(await waitFor(async () => (await messages.getMessage({ id: m.id })).runId));
}

// Polls until `get` yields a value (the services' outboxes deliver within moments).
async function waitFor<T>(get: () => Promise<T | undefined | "">): Promise<T> {
  const deadline = Date.now() + WAIT_FOR_RUN_MS;
  for (;;) {
    const value = await get();
    if (value) return value as T;
    if (Date.now() > deadline) throw new ConnectError("the run did not start in time", Code.DeadlineExceeded);
    await sleep(POLL_MS);
  }
}

// --- the run's progress ----------------------------------------------------------------------

const clip = (s: string, max = MAX_ENTRY_CHARS) => (s.length > max ? `${s.slice(0, max)}…` : s);

function describeEvent(ev: RunEvent): { text: string; end?: boolean; merge?: boolean } {
  const e = ev.event;
  switch (e.case) {
    case "queued": return { text: "queued" };
    case "started": return { text: `started (attempt ${e.value.attempt})` };
    case "iterationStarted": return { text: `iteration ${e.value.iteration}` };
    case "modelOutput": return { text: e.value.text, merge: true };
    case "toolCall": return { text: `→ ${e.value.tool} ${clip(e.value.argumentsJson, 300)}` };
    case "toolResult": return { text: `← ${e.value.tool} exit ${e.value.exitCode}${e.value.truncated ? " (truncated)" : ""}: ${e.value.output}` };
    case "filesChanged": return { text: `files: ${e.value.paths.join(", ")}` };
    case "iterationFinished": return { text: `iteration ${e.value.iteration} done` };
    case "retrying": return { text: `retrying (attempt ${e.value.attempt}): ${e.value.reason}` };
    case "succeeded": return { text: "succeeded", end: true };
    case "failed": return { text: `failed: ${e.value.error}`, end: true };
    case "cancelled": return { text: "cancelled", end: true };
    default: return { text: "event" };
  }
}


// An entry carries the sequences of the events it shows (data-first, data-last; model output
// merges consecutive events into one entry).
function showEvent(ev: RunEvent, lastWasOutput: boolean): boolean {
  const list = $("progress");
  const { text, end, merge } = describeEvent(ev);
  const last = list.lastElementChild as HTMLElement | null;
  if (merge && lastWasOutput && last) {
    last.textContent = clip((last.textContent ?? "") + text);
    last.dataset.last = String(ev.sequence);
  } else {
    const entry = el("li", clip(text), end ? "end" : merge ? "output" : "");
    entry.dataset.first = entry.dataset.last = String(ev.sequence);
    list.appendChild(entry);
    while (list.children.length > MAX_PROGRESS_ITEMS) list.firstElementChild!.remove();
  }
  list.scrollTop = list.scrollHeight;
  return Boolean(merge);
}

// Shows a project's latest run state in the list as this page sees it (the list from the server
// follows a moment later, through the orchestrator's outbox).
function showRunState(projectId: string, state: string) {
  for (const li of $("projects").children) {
    const item = li as HTMLElement;
    if (item.dataset.id === projectId) item.querySelector("small")!.textContent = `${item.dataset.label} · ${stateName(state)}`;
  }
}

// streamLost: whether a watch's error means the stream broke rather than the call failing: the
// service (or the proxy for it) said UNAVAILABLE, or the connection itself failed (fetch's
// TypeError: a proxy that reset the stream, a network that dropped).
function streamLost(err: unknown): boolean {
  const e = ConnectError.from(err);
  return e.code === Code.Unavailable || err instanceof TypeError || e.cause instanceof TypeError;
}

// Shows the run's events until its last one (true) or until the watch is aborted (false): a
// dropped stream is resumed after the last event seen, so nothing is shown twice or missed.
async function followEvents(runId: string, signal: AbortSignal): Promise<boolean> {
  const { orchestrator } = need();
  let after = 0n;
  let output = false;
  let ended = false;
  for (let failures = 0; ; ) {
    try {
      for await (const ev of orchestrator.watchRun({ runId, afterSequence: after }, { signal })) {
        after = ev.sequence;
        failures = 0;
        output = showEvent(ev, output);
        ended ||= describeEvent(ev).end === true;
      }
      return true; // the server ends the stream after the run's last event
    } catch (err) {
      if (signal.aborted) return false; // another run or project was chosen
      if (ended && streamLost(err)) return true;
      if (!streamLost(err) || ++failures > WATCH_RECONNECTS) throw err;
      await sleep(Math.min(POLL_MS * 2 ** (failures - 1), WATCH_BACKOFF_MAX_MS));
    }
  }
}

// Follows the run's events until it ends, then shows the run's result: the conversation with
// its message (and the preview with its fragment) and the versions with the one it made.
async function watchRun(runId: string) {
  const { orchestrator } = need();
  if (watch?.runId === runId && !watch.controller.signal.aborted) return;
  watch?.controller.abort();
  const controller = new AbortController();
  watch = { runId, controller };
  const project = selected;
  $("progress").replaceChildren();
  $("run-state").textContent = "running";
  try {
    if (!(await followEvents(runId, controller.signal))) return;
  } finally {
    if (watch?.controller === controller) watch = undefined;
  }
  const run = await orchestrator.getRun({ id: runId });
  $("run-state").textContent = Run_State[run.state].toLowerCase();
  showRunState(run.projectId, Run_State[run.state]);
  if (selected !== project) return;
  // The result message follows the run's end through the orchestrator's outbox; the version
  // is written with the run's end.
  await Promise.all([
    loadVersions(),
    waitFor(async () => (await loadConversation()).some((m) => m.role === Message_Role.ASSISTANT && m.runId === runId)),
  ]);
}

// --- the preview -----------------------------------------------------------------------------

function showFragment(f: Fragment) {
  $("preview-pane").hidden = false;
  $("fragment-title").textContent = f.title || "Preview";
  const link = $<HTMLAnchorElement>("preview-link");
  link.href = f.sandboxUrl;
  link.textContent = f.sandboxUrl;
  const frame = $<HTMLIFrameElement>("preview");
  if (frame.src !== f.sandboxUrl) frame.src = f.sandboxUrl;
  const files = $("files");
  files.replaceChildren();
  for (const [path, content] of Object.entries(f.files).sort()) files.appendChild(el("li", `${path} (${content.length} chars)`));
}

// --- start -----------------------------------------------------------------------------------

function start() {
  const params = new URLSearchParams(location.search);
  const api = $<HTMLInputElement>("api");
  const token = $<HTMLInputElement>("token");
  api.value = params.get("api") ?? sessionStorage.getItem("qai.api") ?? location.origin;
  token.value = params.get("token") ?? sessionStorage.getItem("qai.token") ?? "";
  const onConnect = guarded(async () => {
    sessionStorage.setItem("qai.api", api.value);
    sessionStorage.setItem("qai.token", token.value);
    clients = connect(api.value, token.value);
    await loadProjects();
  });
  $("settings").addEventListener("submit", onConnect);
  $("create").addEventListener("submit", guarded(createProject));
  $("follow-up").addEventListener("submit", guarded(sendFollowUp));
  $("more-projects").addEventListener("click", guarded(() => loadProjects(true)));
  initVersions({ orchestrator: () => need().orchestrator, projectId: () => selected?.id, watchRun });
  if (token.value) onConnect();
}

start();
