#!/usr/bin/env python3
"""The local grpc-web proxy (tools/web/proxy.ts) serves Envoy's routing and CORS: its effective
configuration (`--print-config`) is compared with k8s/base/envoy/envoy.yaml read here on its
own, and every RPC of the protos is routed where Envoy's first-match rules send it."""
import json
import os
import re
import subprocess
import unittest

import yaml

SOURCE = os.environ["QAI_SOURCE_DIR"]
BUILD = os.environ["QAI_BUILD_DIR"]
ENVOY = os.path.join(SOURCE, "k8s/base/envoy/envoy.yaml")


def read(path):
    with open(path) as f:
        return f.read()


def seconds_ms(value):
    return round(float(value.rstrip("s")) * 1000)


def proto_methods():
    """Every /package.Service/Method path of our protos (not the google/ and grpc/ subsets)."""
    paths = []
    for dirpath, _, files in os.walk(os.path.join(SOURCE, "proto/qai")):
        for name in files:
            text = read(os.path.join(dirpath, name))
            package = re.search(r"^package\s+([\w.]+);", text, re.M).group(1)
            for service, body in re.findall(r"^service\s+(\w+)\s*\{(.*?)^\}", text, re.M | re.S):
                for method in re.findall(r"^\s*rpc\s+(\w+)\s*\(", body, re.M):
                    paths.append(f"/{package}.{service}/{method}")
    return sorted(paths)


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
        # Every RPC a browser may call (the sandbox's are the orchestrator's alone).
        paths = [p for p in proto_methods() if not p.startswith("/qai.sandbox.")]
        self.assertGreater(len(paths), 15)
        for path in paths:
            route = next((r for r in self.host["routes"]
                          if (path == r["match"]["path"] if "path" in r["match"] else path.startswith(r["match"]["prefix"]))),
                         None)
            want = "404" if route is None or "route" not in route else \
                f'{route["route"]["cluster"]} timeout={seconds_ms(route["route"].get("timeout", "15s"))}ms'
            self.assertEqual(self.proxy["methods"].get(path), want, path)
            self.assertNotEqual(want, "404", f"{path}: Envoy does not route it")

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
        text = read(ENVOY).replace("- exact: http://localhost:3000", "- prefix: http://localhost")
        with open(bad, "w") as f:
            f.write(text)
        try:
            r = subprocess.run(["node", os.path.join(BUILD, "web/proxy.cjs"), "--envoy", bad, "--print-config"],
                               capture_output=True, text=True)
            self.assertNotEqual(r.returncode, 0)
            self.assertIn("only exact origins", r.stderr)
        finally:
            os.remove(bad)


if __name__ == "__main__":
    unittest.main()
