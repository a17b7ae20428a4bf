// The local grpc-web proxy against the real services (run by with_stack.sh): what a browser's
// requests get, byte for byte at the HTTP level, and that it is Envoy's routing and CORS.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, readdirSync } from "node:fs";
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
const { parse } = require(`${process.env.QAI_WEB_TOOLS}/node_modules/yaml`);
const proxy = process.env.QAI_WEB_PROXY;
const token = process.env.QAI_WEB_TOKEN;
const envoy = parse(readFileSync(process.env.QAI_WEB_ENVOY, "utf8"));
const host = envoy.static_resources.listeners[0].filter_chains[0].filters[0].typed_config.route_config.virtual_hosts[0];
const corsPolicy = host.typed_per_filter_config["envoy.filters.http.cors"];
const allowedOrigin = corsPolicy.allow_origin_string_match[0].exact;

// One grpc-web frame: flag byte, big-endian length, message.
function frame(message = new Uint8Array(), flag = 0) {
  const out = new Uint8Array(5 + message.length);
  out[0] = flag;
  new DataView(out.buffer).setUint32(1, message.length);
  out.set(message, 5);
  return out;
}

// A protobuf message of string fields: {fieldNumber: value}. Every value here is shorter than
// 128 bytes, so its length is one byte.
function message(fields = {}) {
  const parts = [];
  for (const [number, value] of Object.entries(fields)) {
    const bytes = new TextEncoder().encode(value);
    assert.ok(bytes.length < 128);
    parts.push(Uint8Array.of((Number(number) << 3) | 2, bytes.length), bytes);
  }
  return Buffer.concat(parts);
}

// A grpc-web call (an empty request message unless `body` is given); answers the HTTP status,
// the headers, the data frames and the trailers (parsed from the trailer frame).
async function call(path, headers = {}, request = new Uint8Array()) {
  const res = await fetch(proxy + path, {
    method: "POST",
    headers: { "content-type": "application/grpc-web+proto", "x-grpc-web": "1", ...headers },
    body: frame(request),
  });
  const body = new Uint8Array(await res.arrayBuffer());
  const frames = [];
  const trailers = {};
  for (let at = 0; at + 5 <= body.length; ) {
    const length = new DataView(body.buffer, body.byteOffset + at + 1, 4).getUint32(0);
    const payload = body.subarray(at + 5, at + 5 + length);
    if (body[at] & 0x80) {
      for (const line of new TextDecoder().decode(payload).split("\r\n")) {
        const i = line.indexOf(":");
        if (i > 0) trailers[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim();
      }
    } else {
      frames.push(payload);
    }
    at += 5 + length;
  }
  return { status: res.status, headers: res.headers, frames, trailers };
}

test("a routed call reaches its service with the caller's token and request id", async () => {
  const r = await call("/qai.projects.v1.ProjectService/ListProjects", {
    authorization: `Bearer ${token}`,
    "x-request-id": "web-proxy-test-1",
  });
  assert.equal(r.status, 200);
  assert.equal(r.headers.get("content-type"), "application/grpc-web+proto");
  assert.equal(r.trailers["grpc-status"] ?? r.headers.get("grpc-status"), "0");
  assert.equal(r.frames.length, 1); // one ListProjectsResponse (empty: a new user)
  assert.equal(r.headers.get("x-request-id"), "web-proxy-test-1"); // the service's echo, passed back
});

test("each service's routes reach that service", async () => {
  // Without a token every service refuses with its own UNAUTHENTICATED: the call got there.
  for (const path of [
    "/qai.projects.v1.ProjectService/ListProjects",
    "/qai.messages.v1.MessageService/ListMessages",
    "/qai.orchestrator.v1.AgentOrchestrator/ListRuns",
    "/qai.orchestrator.v1.AgentOrchestrator/WatchRun",
  ]) {
    const r = await call(path);
    assert.equal(r.status, 200, path);
    const status = r.trailers["grpc-status"] ?? r.headers.get("grpc-status");
    assert.equal(status, "16", `${path}: ${JSON.stringify(r.trailers)}`);
  }
});

test("a bad request's status and field violations come through", async () => {
  const r = await call("/qai.projects.v1.ProjectService/CreateProject", {
    authorization: `Bearer ${token}`,
    "x-request-id": "web-proxy-test-2",
  });
  const trailers = Object.keys(r.trailers).length ? r.trailers : Object.fromEntries(r.headers);
  assert.equal(trailers["grpc-status"], "3");
  assert.equal(trailers["x-request-id"], "web-proxy-test-2"); // the service's echo, on an error too
  assert.match(decodeURIComponent(trailers["grpc-message"]), /initial_prompt/);
  const details = Buffer.from(trailers["grpc-status-details-bin"], "base64").toString("latin1");
  assert.match(details, /type\.googleapis\.com\/google\.rpc\.BadRequest/);
  assert.match(details, /initial_prompt/);
});

test("what Envoy does not route is 404, as Envoy answers it", async () => {
  for (const path of ["/grpc.health.v1.Health/Check", "/qai.nothing.v1.Nothing/Call", "/"]) {
    const r = await call(path);
    assert.equal(r.status, 404, path);
  }
});

// The RPCs the protos mark "Internal (SERVICE principals)": only a service key may call them.
function internalRpcs() {
  const paths = [];
  const protos = new URL("../../proto/qai/", import.meta.url);
  for (const dir of readdirSync(protos)) {
    for (const file of readdirSync(new URL(`${dir}/v1/`, protos))) {
      const text = readFileSync(new URL(`${dir}/v1/${file}`, protos), "utf8");
      const pkg = /^package\s+([\w.]+);/m.exec(text)[1];
      for (const [, service, body] of text.matchAll(/^service\s+(\w+)\s*\{(.*?)^\}/gms)) {
        for (const [, comment, method] of body.matchAll(/((?:^\s*\/\/.*\n)*)^\s*rpc\s+(\w+)/gm)) {
          if (/^\s*\/\/ Internal \(SERVICE principals\)/.test(comment)) paths.push(`/${pkg}.${service}/${method}`);
        }
      }
    }
  }
  return paths;
}

function grpcStatus(r) {
  return r.trailers["grpc-status"] ?? r.headers.get("grpc-status");
}

test("an internal RPC is not routed, even with a service key", async () => {
  const internal = internalRpcs();
  assert.ok(internal.includes("/qai.messages.v1.MessageService/PurgeProjectMessages"), internal.join(" "));
  for (const path of internal) {
    const r = await call(path, { "x-api-key": process.env.QAI_API_KEY });
    assert.equal(r.status, 404, `${path}: ${JSON.stringify(r.trailers)}`);
  }

  // A project whose first message exists; purging it through the edge leaves it there.
  const user = { authorization: `Bearer ${token}` };
  const prompt = `edge purge test ${Date.now()}`;
  const created = await call("/qai.projects.v1.ProjectService/CreateProject", user, message({ 1: prompt }));
  assert.equal(grpcStatus(created), "0", JSON.stringify(created.trailers));
  const project = Buffer.from(created.frames[0].subarray(2, 2 + created.frames[0][1])).toString();
  const messages = () => call("/qai.messages.v1.MessageService/ListMessages", user, message({ 1: project }));
  const holdsPrompt = (r) => grpcStatus(r) === "0" && r.frames.some((f) => Buffer.from(f).includes(prompt));
  for (let i = 0; i < 200 && !holdsPrompt(await messages()); i++) await new Promise((ok) => setTimeout(ok, 50));
  assert.ok(holdsPrompt(await messages()), "the project's first message never appeared");

  const purge = await call("/qai.messages.v1.MessageService/PurgeProjectMessages",
                           { ...user, "x-api-key": process.env.QAI_API_KEY }, message({ 1: project }));
  assert.equal(purge.status, 404, JSON.stringify(purge.trailers));
  assert.ok(holdsPrompt(await messages()), "the messages were purged through the edge");
});

test("x-api-key never reaches the services", async () => {
  // A service key alone is no credential at the edge: the service sees none.
  const keyOnly = await call("/qai.projects.v1.ProjectService/ListProjects", { "x-api-key": process.env.QAI_API_KEY });
  assert.equal(grpcStatus(keyOnly), "16", JSON.stringify(keyOnly.trailers));
  // A bad key would decide alone upstream (UNAUTHENTICATED); dropped, the user's token counts.
  const withToken = await call("/qai.projects.v1.ProjectService/ListProjects",
                               { authorization: `Bearer ${token}`, "x-api-key": "not-a-service-key" });
  assert.equal(grpcStatus(withToken), "0", JSON.stringify(withToken.trailers));
});

test("the direct response", async () => {
  const res = await fetch(proxy + "/healthz");
  assert.equal(res.status, 200);
  assert.equal(await res.text(), "ok\n");
});

test("CORS preflight from an allowed origin gets Envoy's policy", async () => {
  const res = await fetch(proxy + "/qai.projects.v1.ProjectService/ListProjects", {
    method: "OPTIONS",
    headers: {
      origin: allowedOrigin,
      "access-control-request-method": "POST",
      "access-control-request-headers": "authorization,content-type,x-grpc-web",
    },
  });
  assert.equal(res.status, 200);
  assert.equal(res.headers.get("access-control-allow-origin"), allowedOrigin);
  assert.equal(res.headers.get("access-control-allow-methods"), corsPolicy.allow_methods.replaceAll(" ", ""));
  assert.equal(res.headers.get("access-control-allow-headers"), corsPolicy.allow_headers);
  assert.equal(res.headers.get("access-control-max-age"), corsPolicy.max_age);
});

test("an actual call from an allowed origin exposes the grpc headers", async () => {
  const r = await call("/qai.projects.v1.ProjectService/ListProjects", { origin: allowedOrigin });
  assert.equal(r.headers.get("access-control-allow-origin"), allowedOrigin);
  assert.equal(r.headers.get("access-control-expose-headers"), corsPolicy.expose_headers);
});

test("another origin gets no CORS grant", async () => {
  for (const origin of ["http://evil.example", `${allowedOrigin}.evil.example`, "null"]) {
    const res = await fetch(proxy + "/qai.projects.v1.ProjectService/ListProjects", {
      method: "OPTIONS",
      headers: { origin, "access-control-request-method": "POST" },
    });
    assert.equal(res.headers.get("access-control-allow-origin"), null, origin);
    const r = await call("/qai.projects.v1.ProjectService/ListProjects", { origin });
    assert.equal(r.headers.get("access-control-allow-origin"), null, origin);
  }
});

// Last: it leaves this machine's address throttled for a second. Failed authentications count
// against the address the proxy saw, whatever x-forwarded-for the browser sends: after at most 30
// (fewer if earlier tests failed some) every call is refused, a good token's too, with a retry
// delay, and served once it has passed.
test("failed authentications are throttled per browser address, not per claimed one", async () => {
  const list = (headers) => call("/qai.projects.v1.ProjectService/ListProjects", headers);
  let failed = 0;
  for (; failed <= 30; ++failed) {
    const r = await list({ authorization: `Bearer guessed-${failed}`, "x-forwarded-for": `198.51.100.${failed}` });
    if (grpcStatus(r) === "8") break;
    assert.equal(grpcStatus(r), "16", JSON.stringify(r.trailers));
  }
  assert.ok(failed > 0 && failed <= 30, `throttled after ${failed} failures`);
  const refused = await list({ authorization: `Bearer ${token}`, "x-forwarded-for": "198.51.100.200" });
  assert.equal(grpcStatus(refused), "8", JSON.stringify(refused.trailers));
  assert.match(decodeURIComponent(refused.trailers["grpc-message"]), /too many failed authentications from 127\.0\.0\.1/);
  await new Promise((resolve) => setTimeout(resolve, 1100));
  assert.equal(grpcStatus(await list({ authorization: `Bearer ${token}` })), "0");
});
