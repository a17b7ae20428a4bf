// Reads the parts of k8s/base/envoy/envoy.yaml that decide what a browser sees: the grpc-web
// listener's routes (match, cluster, timeout, direct responses), the request headers it removes,
// its CORS policy and its clusters. The local proxy (proxy.ts) serves exactly this, so the
// browser path tested here is the one Envoy serves in Kubernetes.
import { readFileSync } from "node:fs";
import { parse } from "yaml";

export interface Route {
  // Exactly one of path / prefix, as Envoy's route match.
  path?: string;
  prefix?: string;
  cluster?: string;
  // The route's timeout in milliseconds; 0 = none (Envoy's "0s").
  timeoutMs: number;
  direct?: { status: number; body: string };
}

export interface CorsPolicy {
  origins: string[];
  methods: string[];
  allowHeaders: string[];
  exposeHeaders: string[];
  maxAgeSeconds: number;
}

export interface Cluster {
  name: string;
  address: string; // host:port
  healthService: string;
}

export interface EnvoyConfig {
  listenPort: number;
  filters: string[];
  routes: Route[];
  // The route configuration's request_headers_to_remove (lower case): never passed upstream.
  requestHeadersToRemove: string[];
  // use_remote_address: the address a request came from is appended to x-forwarded-for, so the
  // services can tell browsers apart (their failed-authentication throttle is per source).
  useRemoteAddress: boolean;
  cors: CorsPolicy;
  clusters: Cluster[];
}

const HCM = "envoy.filters.network.http_connection_manager";
const CORS = "envoy.filters.http.cors";

function fail(what: string): never {
  throw new Error(`envoy config: ${what}`);
}

// "60s", "0.5s", "0s" -> milliseconds.
export function durationMs(value: unknown, field: string): number {
  if (value === undefined) return 15000; // Envoy's default route timeout
  const m = /^(\d+(?:\.\d+)?)s$/.exec(String(value));
  if (!m) fail(`${field}: "${value}" is not a duration like "60s"`);
  return Math.round(Number(m[1]) * 1000);
}

function list(value: unknown): string[] {
  return String(value ?? "")
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
}

export function parseEnvoyConfig(text: string, listenerName = "grpc_web"): EnvoyConfig {
  const doc = parse(text);
  const listener = (doc?.static_resources?.listeners ?? []).find((l: any) => l.name === listenerName);
  if (!listener) fail(`no listener named ${listenerName}`);
  const hcm = (listener.filter_chains?.[0]?.filters ?? []).find((f: any) => f.name === HCM)?.typed_config;
  if (!hcm) fail(`listener ${listenerName} has no ${HCM}`);
  const removed = hcm.route_config?.request_headers_to_remove ?? [];
  if (!Array.isArray(removed) || removed.some((h: unknown) => typeof h !== "string")) {
    fail("route_config.request_headers_to_remove: a list of header names");
  }
  const hosts = hcm.route_config?.virtual_hosts ?? [];
  if (hosts.length !== 1) fail(`expected one virtual host, found ${hosts.length}`);
  const host = hosts[0];
  // Header removal is read from the route configuration only: one elsewhere is refused, not ignored.
  if (host.request_headers_to_remove) {
    fail(`virtual host ${host.name}: request_headers_to_remove is supported on route_config only`);
  }
  const corsConfig = host.typed_per_filter_config?.[CORS];
  if (!corsConfig) fail(`virtual host ${host.name} has no ${CORS} policy`);
  const origins = (corsConfig.allow_origin_string_match ?? []).map((m: any) => {
    if (typeof m.exact !== "string") fail(`allow_origin_string_match: only exact origins are supported, got ${JSON.stringify(m)}`);
    return m.exact;
  });
  const routes: Route[] = (host.routes ?? []).map((r: any, i: number) => {
    const match = r.match ?? {};
    if (r.request_headers_to_remove) {
      fail(`routes[${i}]: request_headers_to_remove is supported on route_config only`);
    }
    const route: Route = { timeoutMs: 0 };
    if (typeof match.path === "string") route.path = match.path;
    else if (typeof match.prefix === "string") route.prefix = match.prefix;
    else fail(`routes[${i}]: only path and prefix matches are supported`);
    if (r.direct_response) {
      route.direct = { status: Number(r.direct_response.status), body: r.direct_response.body?.inline_string ?? "" };
    } else if (r.route?.cluster) {
      route.cluster = r.route.cluster;
      route.timeoutMs = durationMs(r.route.timeout, `routes[${i}].route.timeout`);
    } else {
      fail(`routes[${i}]: neither a cluster route nor a direct response`);
    }
    return route;
  });
  const clusters: Cluster[] = (doc.static_resources.clusters ?? []).map((c: any) => {
    const socket = c.load_assignment?.endpoints?.[0]?.lb_endpoints?.[0]?.endpoint?.address?.socket_address;
    if (!socket) fail(`cluster ${c.name} has no endpoint address`);
    return {
      name: c.name,
      address: `${socket.address}:${socket.port_value}`,
      healthService: c.health_checks?.[0]?.grpc_health_check?.service_name ?? "",
    };
  });
  for (const r of routes) {
    if (r.cluster && !clusters.some((c) => c.name === r.cluster)) fail(`a route names the unknown cluster ${r.cluster}`);
  }
  return {
    listenPort: Number(listener.address?.socket_address?.port_value),
    filters: (hcm.http_filters ?? []).map((f: any) => f.name),
    routes,
    requestHeadersToRemove: removed.map((h: string) => h.toLowerCase()),
    useRemoteAddress: hcm.use_remote_address === true,
    cors: {
      origins,
      methods: list(corsConfig.allow_methods),
      allowHeaders: list(corsConfig.allow_headers),
      exposeHeaders: list(corsConfig.expose_headers),
      maxAgeSeconds: Number(corsConfig.max_age ?? 0),
    },
    clusters,
  };
}

export function loadEnvoyConfig(path: string): EnvoyConfig {
  return parseEnvoyConfig(readFileSync(path, "utf8"));
}

// Envoy's first-match routing: the first route whose path equals, or whose prefix starts, the
// request path.
export function matchRoute(routes: Route[], path: string): Route | undefined {
  return routes.find((r) => (r.path !== undefined ? path === r.path : path.startsWith(r.prefix!)));
}
