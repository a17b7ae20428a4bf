// qai-web-proxy: a grpc-web proxy for running the web page against local services, standing in
// for Envoy (which is what Kubernetes runs, k8s/base/envoy/envoy.yaml). It reads that same
// file, so routing (first match by path or prefix, per-route timeouts, the /healthz direct
// response, no route = 404), the request headers it removes (x-api-key: never passed on) and
// CORS (the exact allowed origins, methods, allowed and exposed headers, max age) are Envoy's;
// only the clusters' addresses are given here (--cluster).
//
// Built on Connect (@connectrpc/connect-node): the browser's grpc-web calls are served by a
// Connect router whose handlers call the upstream service over gRPC (HTTP/2), forwarding the
// request headers (authorization, x-request-id, ...) and the upstream's headers, trailers,
// status and error details back; server streams (WatchRun) are passed on message by message.
// CORS is the `cors` package, configured from Envoy's policy.
//
//   node proxy.cjs --envoy k8s/base/envoy/envoy.yaml --listen 127.0.0.1:0 \
//     --cluster qai-projects=127.0.0.1:50051 --cluster qai-messages=127.0.0.1:50052 \
//     --cluster qai-orchestrator=127.0.0.1:50053 [--static DIR] [--print-config]
//
// It prints one JSON line when it listens: {"listening":"127.0.0.1:PORT"}.
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import { readFileSync, existsSync, statSync } from "node:fs";
import { join, normalize, extname } from "node:path";
import type { DescService } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient, type ConnectRouter, type HandlerContext } from "@connectrpc/connect";
import { connectNodeAdapter, createGrpcTransport } from "@connectrpc/connect-node";
import cors from "cors";
import { loadEnvoyConfig, matchRoute, type EnvoyConfig, type Route } from "./envoy_config";
import { ProjectService } from "./gen/qai/projects/v1/projects_pb";
import { MessageService } from "./gen/qai/messages/v1/messages_pb";
import { AgentOrchestrator } from "./gen/qai/orchestrator/v1/orchestrator_pb";

// Every service the browser may call; a method is served only where an Envoy route sends it.
const SERVICES: DescService[] = [ProjectService, MessageService, AgentOrchestrator];
// The largest message either way, as the services' QAI_GRPC_MAX_MESSAGE_BYTES default.
const MAX_MESSAGE_BYTES = 8 << 20;
// Headers that belong to one hop (or to the grpc-web / gRPC framing) and are not passed on.
const HOP_HEADERS = new Set([
  "connection", "keep-alive", "transfer-encoding", "upgrade", "host", "te", "trailer",
  "content-type", "content-length", "content-encoding", "accept-encoding",
  "grpc-timeout", "grpc-encoding", "grpc-accept-encoding", "x-grpc-web", "x-user-agent", "user-agent",
  "origin", "referer", "accept", "accept-language", "sec-fetch-mode", "sec-fetch-site", "sec-fetch-dest",
  "sec-ch-ua", "sec-ch-ua-mobile", "sec-ch-ua-platform", "cache-control", "pragma",
]);
const HOP_RESPONSE_HEADERS = new Set([...HOP_HEADERS, "grpc-status", "grpc-message", "grpc-status-details-bin", "date"]);

interface Options {
  envoy: string;
  listen: string;
  clusters: Map<string, string>;
  staticDir?: string;
  printConfig: boolean;
}

function usage(message: string): never {
  process.stderr.write(`qai-web-proxy: ${message}\n`);
  process.exit(2);
}

function parseArgs(argv: string[]): Options {
  const options: Options = { envoy: "", listen: "127.0.0.1:8080", clusters: new Map(), printConfig: false };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const value = () => argv[++i] ?? usage(`${arg} needs a value`);
    if (arg === "--envoy") options.envoy = value();
    else if (arg === "--listen") options.listen = value();
    else if (arg === "--static") options.staticDir = value();
    else if (arg === "--print-config") options.printConfig = true;
    else if (arg === "--cluster") {
      const [name, address] = value().split("=");
      if (!name || !address || !/^[^:]+:\d+$/.test(address)) usage(`--cluster wants NAME=HOST:PORT`);
      options.clusters.set(name, address);
    } else usage(`unknown argument ${arg}`);
  }
  if (!options.envoy) usage("--envoy FILE is required");
  return options;
}

// The headers passed upstream: what the browser sent, less the framing and hop-by-hop ones and
// those Envoy's route configuration removes.
function upstreamHeaders(incoming: Headers, removed: Set<string>): Headers {
  const out = new Headers();
  incoming.forEach((v, k) => {
    if (!HOP_HEADERS.has(k) && !removed.has(k) && !k.startsWith("access-control-")) out.set(k, v);
  });
  return out;
}

function copyHeaders(from: Headers, to: Headers) {
  from.forEach((v, k) => {
    if (!HOP_RESPONSE_HEADERS.has(k)) to.set(k, v);
  });
}

// The upstream call's deadline: the route's timeout (none = 0s) and the caller's own, whichever
// is sooner.
function timeoutFor(route: Route, ctx: HandlerContext): number | undefined {
  const caller = ctx.timeoutMs();
  const limits = [route.timeoutMs > 0 ? route.timeoutMs : undefined, caller].filter((t): t is number => t !== undefined);
  return limits.length ? Math.max(1, Math.min(...limits)) : undefined;
}

function forwardService(router: ConnectRouter, service: DescService, config: EnvoyConfig, options: Options) {
  const impl: Record<string, unknown> = {};
  const removed = new Set(config.requestHeadersToRemove);
  for (const method of service.methods) {
    const route = matchRoute(config.routes, `/${service.typeName}/${method.name}`);
    if (!route?.cluster) continue; // Envoy has no route for it: 404
    const address = options.clusters.get(route.cluster) ?? usage(`no --cluster for ${route.cluster}`);
    const client: any = createClient(service, createGrpcTransport({
      baseUrl: `http://${address}`,
      readMaxBytes: MAX_MESSAGE_BYTES,
      writeMaxBytes: MAX_MESSAGE_BYTES,
    }));
    const callOptions = (ctx: HandlerContext) => ({
      headers: upstreamHeaders(ctx.requestHeader, removed),
      signal: ctx.signal,
      timeoutMs: timeoutFor(route, ctx),
      onHeader: (h: Headers) => copyHeaders(h, ctx.responseHeader),
      onTrailer: (t: Headers) => copyHeaders(t, ctx.responseTrailer),
    });
    // A failed call's metadata (e.g. x-request-id, from a trailers-only answer) goes back too.
    // An upstream that goes away mid-call (a replica killed) takes its HTTP/2 streams with it,
    // which connect-node reports as CANCELED; unless the browser cancelled, that is UNAVAILABLE
    // for it (as gRPC clients report a lost connection): safe to retry, e.g. a WatchRun from its
    // last event.
    const passOn = (err: unknown, ctx: HandlerContext): never => {
      if (!(err instanceof ConnectError)) throw err;
      copyHeaders(err.metadata, ctx.responseTrailer);
      if (err.code === Code.Canceled && !ctx.signal.aborted) {
        throw new ConnectError(`upstream lost: ${err.rawMessage}`, Code.Unavailable, err.metadata);
      }
      throw err;
    };
    if (method.methodKind === "unary") {
      impl[method.localName] = (req: unknown, ctx: HandlerContext) =>
        client[method.localName](req, callOptions(ctx)).catch((err: unknown) => passOn(err, ctx));
    } else if (method.methodKind === "server_streaming") {
      impl[method.localName] = async function* (req: unknown, ctx: HandlerContext) {
        try {
          yield* client[method.localName](req, callOptions(ctx));
        } catch (err) {
          passOn(err, ctx);
        }
      };
    } else {
      // grpc-web (HTTP/1.1 from a browser) carries unary and server-streaming calls only.
      impl[method.localName] = () => {
        throw new ConnectError("client streaming is not available over grpc-web", Code.Unimplemented);
      };
    }
  }
  // Each routed method on its own (router.rpc): a service's unrouted methods then reach the
  // fallback's 404, where router.service would answer them UNIMPLEMENTED itself.
  for (const method of service.methods) {
    if (impl[method.localName]) router.rpc(method, impl[method.localName] as any);
  }
}

const CONTENT_TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8", ".map": "application/json",
};

// Serves DIR's files for GET requests that no Envoy route claims (the page itself, in local use).
function serveStatic(dir: string, req: IncomingMessage, res: ServerResponse): boolean {
  if (req.method !== "GET" && req.method !== "HEAD") return false;
  const path = new URL(req.url ?? "/", "http://x").pathname;
  const file = normalize(join(dir, path === "/" ? "index.html" : path));
  if (!file.startsWith(normalize(dir)) || !existsSync(file) || !statSync(file).isFile()) return false;
  res.writeHead(200, { "content-type": CONTENT_TYPES[extname(file)] ?? "application/octet-stream" });
  res.end(req.method === "HEAD" ? undefined : readFileSync(file));
  return true;
}

// appendForwardedFor: as Envoy with use_remote_address: the address the request came from goes
// last in x-forwarded-for, whatever the client put there itself.
function appendForwardedFor(req: IncomingMessage) {
  const remote = (req.socket.remoteAddress ?? "").replace(/^::ffff:/, "");
  const sent = req.headers["x-forwarded-for"];
  req.headers["x-forwarded-for"] = sent ? `${sent}, ${remote}` : remote;
}

function startProxy(options: Options, config: EnvoyConfig) {
  const grpcWeb = connectNodeAdapter({
    grpc: false,
    connect: false,
    grpcWeb: true,
    readMaxBytes: MAX_MESSAGE_BYTES,
    writeMaxBytes: MAX_MESSAGE_BYTES,
    routes: (router) => SERVICES.forEach((s) => forwardService(router, s, config, options)),
    fallback: (req, res) => {
      if (options.staticDir && serveStatic(options.staticDir, req as IncomingMessage, res as ServerResponse)) return;
      res.writeHead(404);
      res.end();
    },
  });
  const corsMiddleware = cors({
    origin: config.cors.origins,
    methods: config.cors.methods,
    allowedHeaders: config.cors.allowHeaders,
    exposedHeaders: config.cors.exposeHeaders,
    maxAge: config.cors.maxAgeSeconds,
    optionsSuccessStatus: 200,
  });
  const server = createServer((req, res) => {
    corsMiddleware(req, res, () => {
      const path = new URL(req.url ?? "/", "http://x").pathname;
      const route = matchRoute(config.routes, path);
      if (route?.direct) {
        res.writeHead(route.direct.status, { "content-type": "text/plain" });
        res.end(route.direct.body);
        return;
      }
      if (config.useRemoteAddress) appendForwardedFor(req);
      grpcWeb(req, res);
    });
  });
  // WatchRun streams last as long as a run: no idle or request timeout (Envoy's
  // stream_idle_timeout: 0s).
  server.requestTimeout = 0;
  server.headersTimeout = 60_000;
  server.keepAliveTimeout = 60_000;
  const [host, port] = options.listen.split(/:(?=\d+$)/);
  server.listen(Number(port), host, () => {
    const address = server.address();
    if (address && typeof address === "object") {
      process.stdout.write(JSON.stringify({ listening: `${host}:${address.port}` }) + "\n");
    }
  });
  return server;
}

// The effective configuration, as tests/web compares it with envoy.yaml.
function describe(config: EnvoyConfig) {
  const methods: Record<string, string> = {};
  for (const service of SERVICES) {
    for (const m of service.methods) {
      const path = `/${service.typeName}/${m.name}`;
      const route = matchRoute(config.routes, path);
      methods[path] = route?.cluster ? `${route.cluster} timeout=${route.timeoutMs}ms` : "404";
    }
  }
  return {
    routes: config.routes,
    requestHeadersToRemove: config.requestHeadersToRemove,
    useRemoteAddress: config.useRemoteAddress,
    cors: config.cors,
    filters: config.filters,
    methods,
  };
}

const options = parseArgs(process.argv.slice(2));
const config = loadEnvoyConfig(options.envoy);
for (const f of ["envoy.filters.http.grpc_web", "envoy.filters.http.cors", "envoy.filters.http.router"]) {
  if (!config.filters.includes(f)) usage(`${options.envoy} lacks the ${f} filter this proxy stands in for`);
}
if (options.printConfig) {
  process.stdout.write(JSON.stringify(describe(config), null, 2) + "\n");
} else {
  const server = startProxy(options, config);
  for (const signal of ["SIGTERM", "SIGINT"] as const) {
    process.on(signal, () => {
      server.close(() => process.exit(0));
      server.closeAllConnections();
    });
  }
}
