#!/usr/bin/env python3
"""The local grpc-web proxy (tools/web/proxy.ts) serves Envoy's routing and CORS: its effective
configuration (`--print-config`) is compared with k8s/base/envoy/envoy.yaml read here on its
own, and every RPC of the protos is routed where Envoy's first-match rules send it. The edge
routes the public RPCs only, each by its exact path, and drops x-api-key from every request."""
import json
import os
import re
import subprocess
import unittest

import yaml

SOURCE = os.environ["QAI_SOURCE_DIR"]
BUILD = os.environ["QAI_BUILD_DIR"]
ENVOY = os.path.join(SOURCE, "k8s/base/envoy/envoy.yaml")

# What a signed-in user calls (the web page, the qai CLI): all that the edge routes. Every other
# RPC is internal, and its proto says so: a method comment opening "Internal (SERVICE
# principals)", or a service comment saying every RPC is "for SERVICE principals only". A new
# RPC goes here or gets that comment; test_every_rpc_is_classified fails until it does.
PUBLIC = {
    "/qai.projects.v1.ProjectService/" + m
    for m in ("CreateProject", "GetProject", "ListProjects", "UpdateProject", "DeleteProject",
              "ForkProject")
} | {
    "/qai.messages.v1.MessageService/" + m for m in ("CreateMessage", "ListMessages", "GetMessage")
} | {
    "/qai.orchestrator.v1.AgentOrchestrator/" + m
    for m in ("GetRun", "ListRuns", "WatchRun", "CancelRun", "ListVersions", "GetVersion",
              "RestoreVersion", "DiffVersions", "DownloadVersion")
}
INTERNAL_RPC = re.compile(r"^\s*// Internal \(SERVICE principals\)")
INTERNAL_SERVICE = "for SERVICE principals only"


def read(path):
    with open(path) as f:
        return f.read()


def seconds_ms(value):
    return round(float(value.rstrip("s")) * 1000)


def proto_rpcs():
    """{/package.Service/Method: internal?} for every RPC of our protos (not the google/ and grpc/
    subsets); internal as the comments above the method or its service mark it."""
    rpcs = {}
    for dirpath, _, files in os.walk(os.path.join(SOURCE, "proto/qai")):
        for name in files:
            text = read(os.path.join(dirpath, name))
            package = re.search(r"^package\s+([\w.]+);", text, re.M).group(1)
            for service_comment, service, body in re.findall(r"((?:^//.*\n)*)^service\s+(\w+)\s*\{(.*?)^\}",
                                                             text, re.M | re.S):
                comment = []
                for line in body.splitlines():
                    if line.strip().startswith("//"):
                        comment.append(line)
                        continue
                    m = re.match(r"^\s*rpc\s+(\w+)\s*\(", line)
                    if m:
                        internal = INTERNAL_SERVICE in service_comment or bool(comment and INTERNAL_RPC.match(comment[0]))
                        rpcs[f"/{package}.{service}/{m.group(1)}"] = internal
                    comment = []
    return rpcs


def proto_methods():
    """Every /package.Service/Method path of our protos."""
    return sorted(proto_rpcs())


def required_service(handlers):
    """The methods whose handler refuses any caller but a service (common::RequireService)."""
    return set(re.findall(r'RequireService\(call, "(\w+)"\)', read(os.path.join(SOURCE, handlers))))


class ProxyMatchesEnvoy(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        out = subprocess.run(["node", os.path.join(BUILD, "web/proxy.cjs"), "--envoy", ENVOY, "--print-config"],
                             check=True, capture_output=True, text=True).stdout
        cls.proxy = json.loads(out)
        doc = yaml.safe_load(read(ENVOY))
        listener = next(l for l in doc["static_resources"]["listeners"] if l["name"] == "grpc_web")
        cls.hcm = listener["filter_chains"][0]["filters"][0]["typed_config"]
        cls.host = cls.hcm["route_config"]["virtual_hosts"][0]

    def test_routes_are_envoys_in_order(self):
        expected = []
        for r in self.host["routes"]:
            route = {k: v for k, v in r["match"].items()}
            if "direct_response" in r:
                route["direct"] = {"status": r["direct_response"]["status"],
                                   "body": r["direct_response"]["body"]["inline_string"]}
                route["timeoutMs"] = 0
            else:
                route["cluster"] = r["route"]["cluster"]
                route["timeoutMs"] = seconds_ms(r["route"].get("timeout", "15s"))
            expected.append(route)
        self.assertEqual(self.proxy["routes"], expected)

    def test_watch_run_has_no_timeout_and_unary_calls_do(self):
        methods = self.proxy["methods"]
        self.assertEqual(methods["/qai.orchestrator.v1.AgentOrchestrator/WatchRun"], "qai-orchestrator timeout=0ms")
        self.assertEqual(methods["/qai.projects.v1.ProjectService/CreateProject"], "qai-projects timeout=60000ms")

    def test_the_sandbox_is_not_reachable_from_browsers(self):
        sandbox = [p for p in proto_methods() if p.startswith("/qai.sandbox.")]
        self.assertGreater(len(sandbox), 5)
        for path in sandbox:
            route = next((r for r in self.host["routes"]
                          if (path == r["match"]["path"] if "path" in r["match"] else path.startswith(r["match"]["prefix"]))),
                         None)
            self.assertTrue(route is None or "route" not in route, f"{path}: Envoy routes it")

    def test_every_rpc_goes_where_envoy_sends_it(self):
        # Every RPC of the three services a browser may call (the sandbox's are the orchestrator's
        # alone): the public ones routed, the internal ones 404.
        rpcs = {p: internal for p, internal in proto_rpcs().items() if not p.startswith("/qai.sandbox.")}
        self.assertGreater(len(rpcs), 15)
        for path, internal in rpcs.items():
            route = next((r for r in self.host["routes"]
                          if (path == r["match"]["path"] if "path" in r["match"] else path.startswith(r["match"]["prefix"]))),
                         None)
            want = "404" if route is None or "route" not in route else \
                f'{route["route"]["cluster"]} timeout={seconds_ms(route["route"].get("timeout", "15s"))}ms'
            self.assertEqual(self.proxy["methods"].get(path), want, path)
            if internal:
                self.assertEqual(want, "404", f"{path}: internal, yet Envoy routes it")
            else:
                self.assertNotEqual(want, "404", f"{path}: Envoy does not route it")

    def test_every_rpc_is_classified(self):
        rpcs = proto_rpcs()
        internal = {p for p, i in rpcs.items() if i}
        self.assertFalse(PUBLIC & internal, "public here, internal in its proto")
        self.assertEqual(set(rpcs) - internal - PUBLIC, set(),
                         "RPCs neither in PUBLIC nor marked internal in their proto: classify them")
        self.assertEqual(PUBLIC - set(rpcs), set(), "PUBLIC names RPCs the protos lack")
        # The marks agree with the handlers: what only a service may call is marked internal.
        for service, handlers in (("/qai.projects.v1.ProjectService/", "services/projects/handlers.cc"),
                                  ("/qai.messages.v1.MessageService/", "services/messages/handlers.cc"),
                                  ("/qai.orchestrator.v1.AgentOrchestrator/", "services/orchestrator/api/handlers.cc")):
            marked = {p[len(service):] for p in internal if p.startswith(service)}
            self.assertEqual(marked, required_service(handlers), handlers)
        self.assertTrue(all(i for p, i in rpcs.items() if p.startswith("/qai.sandbox.")))

    def test_only_public_rpcs_are_routed_each_by_its_path(self):
        routed = set()
        for r in self.host["routes"]:
            if "direct_response" in r:
                continue
            self.assertEqual(list(r["match"]), ["path"], f"{r['match']}: not an exact path")
            self.assertIn(r["match"]["path"], PUBLIC, "an internal RPC is routed")
            routed.add(r["match"]["path"])
        self.assertEqual(routed, PUBLIC)
        self.assertEqual({p for p, to in self.proxy["methods"].items() if to != "404"}, PUBLIC)

    def test_x_api_key_is_dropped(self):
        # On the route configuration, so every route drops it, those added later too.
        dropped = self.hcm["route_config"].get("request_headers_to_remove", [])
        self.assertIn("x-api-key", dropped)
        self.assertEqual(self.proxy.get("requestHeadersToRemove"), dropped)
        self.assertNotIn("x-api-key", self.host["typed_per_filter_config"]["envoy.filters.http.cors"]["allow_headers"])

    def test_the_client_address_is_appended(self):
        # The services throttle failed authentications per source: the last x-forwarded-for
        # entry, which only Envoy's use_remote_address makes trustworthy.
        self.assertIs(self.hcm.get("use_remote_address"), True)
        self.assertIs(self.proxy.get("useRemoteAddress"), True)

    def test_cors_is_envoys(self):
        policy = self.host["typed_per_filter_config"]["envoy.filters.http.cors"]
        split = lambda s: [x.strip() for x in s.split(",") if x.strip()]
        self.assertEqual(self.proxy["cors"], {
            "origins": [m["exact"] for m in policy["allow_origin_string_match"]],
            "methods": split(policy["allow_methods"]),
            "allowHeaders": split(policy["allow_headers"]),
            "exposeHeaders": split(policy["expose_headers"]),
            "maxAgeSeconds": int(policy["max_age"]),
        })
        self.assertNotIn("*", self.proxy["cors"]["origins"])

    def test_the_filters_it_stands_in_for(self):
        self.assertEqual(self.proxy["filters"], [f["name"] for f in self.hcm["http_filters"]])
        self.assertEqual(self.proxy["filters"], ["envoy.filters.http.grpc_web", "envoy.filters.http.cors",
                                                 "envoy.filters.http.router"])

    def test_a_config_it_cannot_serve_is_refused(self):
        bad = os.path.join(os.environ.get("TMPDIR", "/tmp"), f"envoy-bad-{os.getpid()}.yaml")
        for old, new, error in (
                ("- exact: http://localhost:3000", "- prefix: http://localhost", "only exact origins"),
                # Header removal where the proxy would not look: refused, never ignored.
                ('domains: ["*"]', 'domains: ["*"]\n                      request_headers_to_remove: [x-api-key]',
                 "supported on route_config only")):
            self.assertIn(old, read(ENVOY))
            with open(bad, "w") as f:
                f.write(read(ENVOY).replace(old, new))
            try:
                r = subprocess.run(["node", os.path.join(BUILD, "web/proxy.cjs"), "--envoy", bad, "--print-config"],
                                   capture_output=True, text=True)
                self.assertNotEqual(r.returncode, 0, error)
                self.assertIn(error, r.stderr)
            finally:
                os.remove(bad)


if __name__ == "__main__":
    unittest.main()
