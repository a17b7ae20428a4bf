#!/usr/bin/env python3
"""Renders every overlay in k8s/overlays with `kubectl kustomize` and checks the objects.
The kubectl is the one on PATH, or $QAI_KUBECTL when set.

Rules checked (docs/operations.md, "Deploying on Kubernetes"):
- every object has apiVersion, kind, metadata.name and the fields its kind needs; no Secret
  is rendered (Secrets are created by hand, never committed);
- every container has resource requests and limits, drops ALL capabilities, cannot escalate,
  has a read-only root filesystem, runs as non-root under the RuntimeDefault seccomp profile,
  except qai-sandbox's main container (the only privileged pods): root with exactly
  SANDBOX_CAPS, its Localhost seccomp profile (k8s/base/sandbox/seccomp.json), AppArmor
  unconfined, an unmasked /proc in a pod user namespace, for bubblewrap;
- every long-running container has liveness and readiness probes; QAI's are native gRPC
  probes on their port and their health service name;
- every Service selects the pods of a Deployment or StatefulSet, on ports they expose;
- every option a QAI binary lists in --help is set in its container's environment (its
  ConfigMap or a Secret reference): a new option fails here until the manifest names it.
  Required options must have a non-empty value or a non-optional Secret reference;
- internal targets are dns:/// names of headless Services; grace periods exceed the drain
  timeout; every Deployment has a PodDisruptionBudget and an HPA; every service pod migrates
  first, and a qai-migrate Job exists;
- Envoy's configuration has the grpc_web, cors and router filters, no wildcard origin, and no
  timeout on WatchRun; it routes by exact paths only (tests/web checks they are the public
  RPCs) and removes x-api-key from every request;
- prod's Envoy serves HTTPS only: its listener terminates TLS with the certificate of the
  Secret EDGE_TLS_SECRET (type kubernetes.io/tls, mounted into the pod), its Service and probes
  speak HTTPS, and its configuration is base's but for that; dev's serves plain text.
"""
import os
import re
import subprocess
import sys
import unittest

import yaml

SOURCE = os.environ.get("QAI_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD = os.environ.get("QAI_BUILD_DIR", os.path.join(SOURCE, "build"))
OVERLAYS = sorted(os.listdir(os.path.join(SOURCE, "k8s", "overlays")))
# kubectl from PATH: a machine's own build, or Debian's kubernetes-client (1.20, whose kustomize
# is v2.0.3: k8s/ keeps to the syntax both understand). QAI_KUBECTL names another one to check.
KUBECTL = os.environ.get("QAI_KUBECTL") or "kubectl"

# The binary each QAI image runs, by the image's base name.
BINARIES = {
    "projects": "services/projects/qai-projects",
    "messages": "services/messages/qai-messages",
    "orchestrator": "services/orchestrator/qai-orchestrator",
    "sandbox": "services/sandbox/qai-sandbox",
    "migrate": "db/qai-migrate",
}
HEALTH = {
    "projects": ("qai.projects.v1.ProjectService", 50051),
    "messages": ("qai.messages.v1.MessageService", 50052),
    "orchestrator": ("qai.orchestrator.v1.AgentOrchestrator", 50053),
    "sandbox": ("qai.sandbox.v1.SandboxService", 50054),
}
# The Secret (kubernetes.io/tls: tls.crt, tls.key) prod's Envoy terminates TLS with; docs/operations.md,
# "Deploying on Kubernetes", creates it.
EDGE_TLS_SECRET = "qai-edge-tls"
SANDBOX_CAPS = {"CHOWN", "DAC_OVERRIDE", "FOWNER", "KILL", "SETGID", "SETUID", "SYS_ADMIN"}

# Fields each kind needs, as dotted paths.
REQUIRED = {
    "Namespace": [],
    "ConfigMap": [],
    "Service": ["spec.ports"],
    "Deployment": ["spec.selector.matchLabels", "spec.template.metadata.labels", "spec.template.spec.containers"],
    "StatefulSet": ["spec.serviceName", "spec.selector.matchLabels", "spec.template.metadata.labels",
                    "spec.template.spec.containers"],
    "Job": ["spec.template.spec.containers", "spec.template.spec.restartPolicy"],
    "PodDisruptionBudget": ["spec.selector.matchLabels"],
    "HorizontalPodAutoscaler": ["spec.scaleTargetRef.kind", "spec.scaleTargetRef.name", "spec.maxReplicas"],
    "NetworkPolicy": ["spec.podSelector", "spec.policyTypes"],
}
API_VERSIONS = {
    "Namespace": "v1", "ConfigMap": "v1", "Service": "v1", "Deployment": "apps/v1",
    "StatefulSet": "apps/v1", "Job": "batch/v1", "PodDisruptionBudget": "policy/v1",
    "HorizontalPodAutoscaler": "autoscaling/v2", "NetworkPolicy": "networking.k8s.io/v1",
}


def dig(obj, path):
    for key in path.split("."):
        if not isinstance(obj, dict) or key not in obj:
            return None
        obj = obj[key]
    return obj


def render(overlay):
    out = subprocess.run([KUBECTL, "kustomize", os.path.join(SOURCE, "k8s", "overlays", overlay)],
                         capture_output=True, text=True)
    if out.returncode != 0:
        raise AssertionError(f"{KUBECTL} kustomize k8s/overlays/{overlay} failed:\n{out.stderr}")
    return [d for d in yaml.safe_load_all(out.stdout) if d]


def kubectl_version():
    out = subprocess.run([KUBECTL, "version", "--client"], capture_output=True, text=True)
    return " ".join((out.stdout + out.stderr).split())


def options(binary):
    """(env name, required) of every option `binary --help` lists."""
    out = subprocess.run([os.path.join(BUILD, binary), "--help"], capture_output=True, text=True)
    text = out.stdout + out.stderr
    found = [(m.group(1), "(required)" in line)
             for line in text.splitlines() for m in [re.search(r"\[(QAI_[A-Z0-9_]+)\]", line)] if m]
    if not found:
        raise AssertionError(f"{binary} --help lists no options:\n{text}")
    return found


def image_base(image):
    return image.split("@")[0].rsplit("/", 1)[-1].split(":")[0]


def workloads(objects):
    """(owner object, pod spec) of every Deployment, StatefulSet and Job."""
    return [(o, o["spec"]["template"]["spec"]) for o in objects if o["kind"] in ("Deployment", "StatefulSet", "Job")]


def matches(selector, labels):
    return all(labels.get(k) == v for k, v in selector.items())


class Overlay:
    def __init__(self, name):
        self.name = name
        self.objects = render(name)
        self.by_kind = {}
        for o in self.objects:
            self.by_kind.setdefault(o["kind"], {})[o["metadata"]["name"]] = o


class K8sTest(unittest.TestCase):
    overlays = {}

    @classmethod
    def setUpClass(cls):
        cls.overlays = {name: Overlay(name) for name in OVERLAYS}
        cls.options = {name: options(path) for name, path in BINARIES.items()}

    def each(self):
        return list(self.overlays.values())

    def test_overlays_exist(self):
        self.assertEqual(OVERLAYS, ["dev", "prod"])

    def test_schema(self):
        for ov in self.each():
            for o in ov.objects:
                what = f"{o.get('kind')}/{dig(o, 'metadata.name')}"
                self.assertTrue(o.get("apiVersion") and o.get("kind") and dig(o, "metadata.name"), what)
                self.assertNotEqual(o["kind"], "Secret", f"{what}: Secrets are created by hand, not committed")
                self.assertIn(o["kind"], REQUIRED, f"{what}: a kind this test does not know")
                self.assertEqual(o["apiVersion"], API_VERSIONS[o["kind"]], what)
                for path in REQUIRED[o["kind"]]:
                    self.assertIsNotNone(dig(o, path), f"{what}: {path} missing")
                if o["kind"] in ("Deployment", "StatefulSet"):
                    self.assertTrue(matches(o["spec"]["selector"]["matchLabels"], o["spec"]["template"]["metadata"]["labels"]),
                                    f"{what}: selector does not match its pod labels")
                if o["kind"] == "Job":
                    self.assertIn(o["spec"]["template"]["spec"]["restartPolicy"], ("Never", "OnFailure"), what)
                if o["kind"] == "PodDisruptionBudget":
                    self.assertTrue("minAvailable" in o["spec"] or "maxUnavailable" in o["spec"], what)

    def test_containers_are_locked_down(self):
        for ov in self.each():
            for owner, pod in workloads(ov.objects):
                for c in pod.get("initContainers", []) + pod["containers"]:
                    what = f"{owner['kind']}/{owner['metadata']['name']} container {c['name']}"
                    for kind in ("requests", "limits"):
                        for res in ("cpu", "memory"):
                            self.assertIn(res, dig(c, f"resources.{kind}") or {}, f"{what}: resources.{kind}.{res}")
                    sc = {**pod.get("securityContext", {}), **c.get("securityContext", {})}
                    self.assertIs(sc.get("allowPrivilegeEscalation"), False, what)
                    self.assertIs(sc.get("readOnlyRootFilesystem"), True, what)
                    self.assertIn("ALL", dig(sc, "capabilities.drop") or [], what)
                    sandbox_pod = owner["metadata"]["name"] == "qai-sandbox"
                    if sandbox_pod:
                        self.assertEqual(dig(pod, "securityContext.seccompProfile"),
                                         {"type": "Localhost", "localhostProfile": "qai/sandbox-seccomp.json"}, what)
                        self.assertEqual(dig(pod, "securityContext.appArmorProfile.type"), "Unconfined", what)
                        self.assertIs(pod.get("hostUsers"), False, what)
                    else:
                        self.assertEqual(dig(pod, "securityContext.seccompProfile.type"), "RuntimeDefault", what)
                    if sandbox_pod and c["name"] == "sandbox":
                        # The documented exception: root, to give each project's commands a uid.
                        self.assertEqual(sc.get("runAsUser"), 0, what)
                        self.assertEqual(set(dig(sc, "capabilities.add") or []), SANDBOX_CAPS, what)
                        self.assertEqual(sc.get("procMount"), "Unmasked", what)
                    else:
                        self.assertIs(sc.get("runAsNonRoot"), True, what)
                        self.assertNotEqual(sc.get("runAsUser"), 0, what)
                        self.assertFalse(dig(sc, "capabilities.add"), what)

    def test_probes(self):
        for ov in self.each():
            for owner, pod in workloads(ov.objects):
                if owner["kind"] == "Job":
                    continue
                for c in pod["containers"]:
                    what = f"{owner['metadata']['name']} container {c['name']}"
                    self.assertIn("livenessProbe", c, what)
                    self.assertIn("readinessProbe", c, what)
                    base = image_base(c["image"])
                    if base in HEALTH:
                        for probe in ("livenessProbe", "readinessProbe"):
                            self.assertEqual(c[probe].get("grpc"), {"port": HEALTH[base][1], "service": HEALTH[base][0]},
                                             f"{what}: {probe}")
                        self.assertIn(HEALTH[base][1], [p["containerPort"] for p in c["ports"]], what)

    def test_services_select_pods(self):
        for ov in self.each():
            pods = [(o, pod) for o, pod in workloads(ov.objects) if o["kind"] != "Job"]
            for svc in ov.by_kind.get("Service", {}).values():
                what = f"Service/{svc['metadata']['name']}"
                selector = svc["spec"].get("selector")
                self.assertTrue(selector, f"{what} selects nothing")
                chosen = [(o, pod) for o, pod in pods if matches(selector, o["spec"]["template"]["metadata"]["labels"])]
                self.assertTrue(chosen, f"{what} selects no Deployment's or StatefulSet's pods")
                for o, pod in chosen:
                    ports = [p for c in pod["containers"] for p in c.get("ports", [])]
                    for sp in svc["spec"]["ports"]:
                        target = sp.get("targetPort", sp["port"])
                        self.assertTrue(any(target in (p.get("name"), p["containerPort"]) for p in ports),
                                        f"{what}: port {target} not exposed by {o['metadata']['name']}")

    def test_every_option_is_configured(self):
        for ov in self.each():
            configmaps = ov.by_kind.get("ConfigMap", {})
            for owner, pod in workloads(ov.objects):
                for c in pod.get("initContainers", []) + pod["containers"]:
                    command = (c.get("command") or [""])[0]
                    base = "migrate" if command.endswith("qai-migrate") else image_base(c["image"])
                    if base not in BINARIES:
                        continue
                    what = f"{owner['metadata']['name']} container {c['name']} ({BINARIES[base]})"
                    values = {}  # env name -> (value or None for a Secret, required-able)
                    for src in c.get("envFrom", []):
                        self.assertIn("configMapRef", src, f"{what}: envFrom only from ConfigMaps (Secrets by key)")
                        cm = configmaps.get(src["configMapRef"]["name"])
                        self.assertIsNotNone(cm, f"{what}: ConfigMap {src['configMapRef']['name']} not rendered")
                        values.update({k: (v, True) for k, v in cm.get("data", {}).items()})
                    for e in c.get("env", []):
                        ref = dig(e, "valueFrom.secretKeyRef")
                        if ref is not None:
                            values[e["name"]] = (None, not ref.get("optional", False))
                        elif dig(e, "valueFrom.configMapKeyRef") is not None:
                            cm_ref = dig(e, "valueFrom.configMapKeyRef")
                            cm = configmaps.get(cm_ref["name"])
                            self.assertIsNotNone(cm, f"{what}: ConfigMap {cm_ref['name']} not rendered")
                            self.assertIn(cm_ref["key"], cm.get("data", {}), f"{what}: {e['name']}")
                            values[e["name"]] = (cm["data"][cm_ref["key"]], True)
                        elif dig(e, "valueFrom.fieldRef") is not None:
                            values[e["name"]] = (None, True)  # the downward API: the pod's own name
                        else:
                            self.assertIn("value", e, f"{what}: {e['name']}")
                            values[e["name"]] = (e["value"], True)
                    for env, required in self.options[base]:
                        self.assertIn(env, values, f"{what}: {env} (listed by --help) is not set")
                        value, dependable = values[env]
                        if required:
                            self.assertTrue(dependable and (value is None or value.strip()),
                                            f"{what}: {env} is required: a value or a non-optional Secret")
                    unknown = {k for k in values if k.startswith("QAI_")} - {e for e, _ in self.options[base]}
                    self.assertFalse(unknown, f"{what}: sets options the binary does not have")
                    if base in HEALTH and c["name"] == base:
                        drain = values["QAI_DRAIN_TIMEOUT"][0]
                        self.assertRegex(drain, r"^\d+s$", what)
                        self.assertGreater(pod["terminationGracePeriodSeconds"], int(drain[:-1]), what)
                        for env, (value, _) in values.items():
                            # Addresses served or advertised, not called.
                            if env.endswith("_ADDR") and env not in ("QAI_LISTEN_ADDR", "QAI_METRICS_ADDR", "QAI_PREVIEW_ADDR",
                                                                     "QAI_REPLICA_ADDR"):
                                m = re.fullmatch(r"dns:///([a-z0-9-]+):(\d+)", value or "")
                                self.assertTrue(m, f"{what}: {env}={value} is not a dns:/// target")
                                svc = ov.by_kind["Service"].get(m.group(1))
                                self.assertIsNotNone(svc, f"{what}: {env}: no Service {m.group(1)}")
                                self.assertEqual(svc["spec"].get("clusterIP"), "None", f"{what}: {env}: not headless")
                                self.assertIn(int(m.group(2)), [p["port"] for p in svc["spec"]["ports"]], what)

    def test_deployments_scale_and_migrate(self):
        for ov in self.each():
            pdbs = ov.by_kind.get("PodDisruptionBudget", {}).values()
            hpas = ov.by_kind.get("HorizontalPodAutoscaler", {}).values()
            for name, d in ov.by_kind["Deployment"].items():
                labels = d["spec"]["template"]["metadata"]["labels"]
                self.assertTrue(any(matches(p["spec"]["selector"]["matchLabels"], labels) for p in pdbs), f"{name}: no PDB")
                self.assertTrue(any(h["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": name}
                                    for h in hpas), f"{name}: no HPA")
                pod = d["spec"]["template"]["spec"]
                if image_base(pod["containers"][0]["image"]) in HEALTH:
                    self.assertTrue(any((i.get("command") or [""])[0].endswith("qai-migrate") for i in pod.get("initContainers", [])),
                                    f"{name}: does not migrate before it starts")
            sandbox = ov.by_kind.get("StatefulSet", {}).get("qai-sandbox")
            self.assertIsNotNone(sandbox, "no sandbox tier")
            labels = sandbox["spec"]["template"]["metadata"]["labels"]
            self.assertTrue(any(matches(p["spec"]["selector"]["matchLabels"], labels) for p in pdbs), "qai-sandbox: no PDB")
            self.assertTrue(any((i.get("command") or [""])[0].endswith("qai-migrate")
                                for i in sandbox["spec"]["template"]["spec"].get("initContainers", [])),
                            "qai-sandbox: does not migrate before it starts")
            self.assertGreaterEqual(sandbox["spec"]["replicas"], 2, "qai-sandbox: one replica's death stops every run")
            self.assertTrue(any(h["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "qai-sandbox"}
                                for h in hpas), "qai-sandbox: no HPA")
            env = {e["name"]: e.get("value") for e in sandbox["spec"]["template"]["spec"]["containers"][0].get("env", [])}
            self.assertEqual(env.get("QAI_REPLICA_ADDR"), f"$(POD_NAME).{sandbox['spec']['serviceName']}:50054",
                             "qai-sandbox: each replica must advertise its stable DNS name")
            for hpa in hpas:
                kind = hpa["spec"]["scaleTargetRef"]["kind"]
                self.assertIn(hpa["spec"]["scaleTargetRef"]["name"], ov.by_kind[kind], hpa["metadata"]["name"])
            job = ov.by_kind.get("Job", {}).get("qai-migrate")
            self.assertIsNotNone(job, "no qai-migrate Job")
            self.assertEqual(image_base(job["spec"]["template"]["spec"]["containers"][0]["image"]), "migrate")

    def test_rate_limit_across_replicas(self):
        # The rate limit is per replica (docs/operations.md, "Limits"): a user's ceiling over the cluster is
        # maxReplicas x QAI_RATE_LIMIT, which docs/operations.md states as 50 calls/s.
        for ov in self.each():
            hpas = {h["spec"]["scaleTargetRef"]["name"]: h for h in ov.by_kind.get("HorizontalPodAutoscaler", {}).values()}
            for name in ("qai-projects", "qai-messages", "qai-orchestrator"):
                # The generated ConfigMap's name carries a hash of its contents.
                env = next(cm["data"] for n, cm in ov.by_kind["ConfigMap"].items() if name in (n, n.rsplit("-", 1)[0]))
                rate, burst = int(env["QAI_RATE_LIMIT"]), int(env["QAI_RATE_BURST"])
                self.assertGreater(rate, 0, f"{ov.name}/{name}: rate limiting off")
                self.assertLessEqual(hpas[name]["spec"]["maxReplicas"] * rate, 50, f"{ov.name}/{name}")
                self.assertLessEqual(hpas[name]["spec"]["maxReplicas"] * burst, 100, f"{ov.name}/{name}")

    def test_network_policies(self):
        for ov in self.each():
            policies = ov.by_kind.get("NetworkPolicy", {})
            deny = policies.get("qai-default-deny")
            self.assertIsNotNone(deny, "no default deny")
            self.assertEqual(deny["spec"]["podSelector"], {})
            self.assertEqual(sorted(deny["spec"]["policyTypes"]), ["Egress", "Ingress"])
            self.assertFalse(deny["spec"].get("ingress") or deny["spec"].get("egress"))
            self.assertIn("qai-database", policies, "services cannot reach the database")
            # qai-sandbox's gRPC port: the orchestrator's pods only; and nothing of its own goes out
            # but to the database and DNS.
            for p in policies.values():
                selector = p["spec"]["podSelector"]
                if matches(selector.get("matchLabels", {}), {"qai.dev/role": "sandbox", "app.kubernetes.io/name": "qai-sandbox"}) \
                        and selector.get("matchLabels"):
                    for rule in p["spec"].get("ingress", []):
                        if any(x.get("port") == 50054 for x in rule["ports"]):
                            self.assertEqual(rule["from"], [{"podSelector": {"matchLabels": {"app.kubernetes.io/name": "qai-orchestrator"}}}],
                                             p["metadata"]["name"])
                    self.assertFalse(p["spec"].get("egress"), f"{p['metadata']['name']}: the sandbox egresses")
            for p in policies.values():
                for rule in p["spec"].get("ingress", []) + p["spec"].get("egress", []):
                    self.assertTrue(rule.get("ports"), f"{p['metadata']['name']}: a rule open on every port")

    def test_metrics_are_scraped(self):
        """Every service serves /metrics on the port its pod declares, annotates and lets in."""
        for ov in self.each():
            policies = ov.by_kind.get("NetworkPolicy", {}).values()
            services = [d for d in ov.by_kind["Deployment"].values()
                        if d["spec"]["template"]["metadata"]["labels"].get("qai.dev/role") == "service"]
            self.assertEqual(len(services), 3)
            for d in services:
                name = d["metadata"]["name"]
                pod = d["spec"]["template"]
                container = pod["spec"]["containers"][0]
                env = {}
                for ref in container.get("envFrom", []):
                    env.update(ov.by_kind["ConfigMap"][ref["configMapRef"]["name"]]["data"])
                addr = env.get("QAI_METRICS_ADDR", "")
                self.assertRegex(addr, r"^0\.0\.0\.0:\d+$", f"{ov.name}/{name}: metrics off or not reachable")
                port = int(addr.rsplit(":", 1)[1])
                self.assertIn({"name": "metrics", "containerPort": port}, container["ports"], name)
                notes = pod["metadata"].get("annotations", {})
                self.assertEqual((notes.get("prometheus.io/scrape"), notes.get("prometheus.io/port"),
                                  notes.get("prometheus.io/path")), ("true", str(port), "/metrics"), name)
                let_in = [p for p in policies if matches(p["spec"]["podSelector"].get("matchLabels", {}), pod["metadata"]["labels"])
                          and any(port in [x.get("port") for x in rule.get("ports", [])] for rule in p["spec"].get("ingress", []))]
                self.assertTrue(let_in, f"{ov.name}/{name}: no NetworkPolicy lets the scrape in on {port}")

    def test_envoy(self):
        for ov in self.each():
            cm = next(v for k, v in ov.by_kind["ConfigMap"].items() if k.startswith("qai-envoy"))
            envoy = yaml.safe_load(cm["data"]["envoy.yaml"])
            hcm = envoy["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
            filters = [f["name"] for f in hcm["http_filters"]]
            self.assertEqual(filters, ["envoy.filters.http.grpc_web", "envoy.filters.http.cors", "envoy.filters.http.router"])
            vhost = hcm["route_config"]["virtual_hosts"][0]
            cors = vhost["typed_per_filter_config"]["envoy.filters.http.cors"]
            origins = cors["allow_origin_string_match"]
            self.assertTrue(origins)
            for o in origins:
                self.assertEqual(list(o), ["exact"], f"CORS origins are listed exactly: {o}")
                self.assertNotIn("*", o["exact"])
            for r in vhost["routes"]:
                self.assertEqual(list(r["match"]), ["path"], f"{ov.name}: {r['match']}: routes are exact paths")
            self.assertIn("x-api-key", hcm["route_config"].get("request_headers_to_remove", []), ov.name)
            watch = next(r for r in vhost["routes"] if dig(r, "match.path") == "/qai.orchestrator.v1.AgentOrchestrator/WatchRun")
            self.assertEqual(watch["route"]["timeout"], "0s")
            self.assertEqual(watch["route"]["max_stream_duration"]["max_stream_duration"], "0s")
            self.assertEqual(hcm.get("stream_idle_timeout"), "0s")
            clusters = {c["name"]: c for c in envoy["static_resources"]["clusters"]}
            # Browsers never reach the sandbox: only the orchestrator calls it.
            self.assertNotIn("qai-sandbox", clusters)
            for svc, (health, port) in HEALTH.items():
                if svc == "sandbox":
                    continue
                c = clusters[f"qai-{svc}"]
                self.assertEqual((c["type"], c["lb_policy"]), ("STRICT_DNS", "ROUND_ROBIN"))
                addr = c["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"]["socket_address"]
                self.assertEqual((addr["address"], addr["port_value"]), (f"qai-{svc}", port))
                self.assertEqual(ov.by_kind["Service"][f"qai-{svc}"]["spec"].get("clusterIP"), "None")
                self.assertTrue(any(dig(r, "match.path").startswith(f"/{health}/") and r["route"]["cluster"] == f"qai-{svc}"
                                    for r in vhost["routes"] if "route" in r), svc)
                for r in vhost["routes"]:
                    if dig(r, "match.path").startswith(f"/{health}/"):
                        self.assertEqual(r["route"]["cluster"], f"qai-{svc}", r["match"])

    def test_edge_tls(self):
        """prod's Envoy listens with TLS only, from the Secret; dev's in plain text; the same
        routes and clusters either way."""
        configs = {}
        for ov in self.each():
            cm = next(v for k, v in ov.by_kind["ConfigMap"].items() if k.startswith("qai-envoy"))
            envoy = yaml.safe_load(cm["data"]["envoy.yaml"])
            configs[ov.name] = envoy
            listeners = envoy["static_resources"]["listeners"]
            self.assertEqual(len(listeners), 1, f"{ov.name}: one listener, so nothing is served around it")
            chains = listeners[0]["filter_chains"]
            self.assertEqual(len(chains), 1, ov.name)
            port = listeners[0]["address"]["socket_address"]["port_value"]
            deployment = ov.by_kind["Deployment"]["qai-envoy"]
            pod = deployment["spec"]["template"]["spec"]
            container = next(c for c in pod["containers"] if c["name"] == "envoy")
            ports = {p.get("name"): p["containerPort"] for p in container["ports"]}
            self.assertEqual(list(ports.values()), [port], f"{ov.name}: the pod exposes the listener's port alone")
            service = ov.by_kind["Service"]["qai-envoy"]
            for sp in service["spec"]["ports"]:
                self.assertEqual(ports.get(sp["targetPort"], sp["targetPort"]), port, f"{ov.name}: {sp}")
            let_in = [x.get("port") for r in ov.by_kind["NetworkPolicy"]["qai-envoy"]["spec"]["ingress"] for x in r["ports"]]
            self.assertEqual(let_in, [port], ov.name)
            schemes = {dig(container, f"{probe}.httpGet.scheme") or "HTTP" for probe in ("readinessProbe", "livenessProbe")}
            tls = chains[0].get("transport_socket")
            if ov.name == "dev":
                self.assertIsNone(tls, "dev's Envoy serves plain text")
                self.assertEqual(schemes, {"HTTP"})
                continue
            self.assertEqual(ov.name, "prod")
            self.assertIsNotNone(tls, "prod's Envoy serves plain text")
            context = tls["typed_config"]
            self.assertEqual((tls["name"], context["@type"]), (
                "envoy.transport_sockets.tls",
                "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext"))
            common = context["common_tls_context"]
            self.assertEqual(common.get("alpn_protocols"), ["h2", "http/1.1"], "gRPC needs h2, browsers may use either")
            [certificate] = common["tls_certificates"]
            files = {certificate["certificate_chain"]["filename"], certificate["private_key"]["filename"]}
            mounts = {v["name"]: os.path.normpath(m["mountPath"]) for v in pod["volumes"] for m in container["volumeMounts"]
                      if m["name"] == v["name"] and dig(v, "secret.secretName") == EDGE_TLS_SECRET}
            self.assertEqual(len(mounts), 1, f"prod: the Secret {EDGE_TLS_SECRET} is not mounted into Envoy")
            [mount] = mounts.values()
            self.assertEqual(files, {f"{mount}/tls.crt", f"{mount}/tls.key"})
            self.assertEqual(schemes, {"HTTPS"})
            self.assertEqual([sp["port"] for sp in service["spec"]["ports"]], [443])
        # Apart from TLS, its port and the CORS origins (prod's front end), prod's configuration is
        # base's (dev's), kept in step by hand.
        prod, dev = configs["prod"], configs["dev"]
        for envoy in (prod, dev):
            listener = envoy["static_resources"]["listeners"][0]
            listener["filter_chains"][0].pop("transport_socket", None)
            listener["address"]["socket_address"]["port_value"] = "PORT"
            hcm = listener["filter_chains"][0]["filters"][0]["typed_config"]
            hcm["route_config"]["virtual_hosts"][0]["typed_per_filter_config"]["envoy.filters.http.cors"][
                "allow_origin_string_match"] = "ORIGINS"
        self.assertEqual(prod, dev, "k8s/overlays/prod/envoy/envoy.yaml differs from base's beyond TLS and origins")

    def test_counts(self):
        print(f"{KUBECTL}: {kubectl_version()}", file=sys.stderr)
        for ov in self.each():
            counts = {}
            for o in ov.objects:
                counts[o["kind"]] = counts.get(o["kind"], 0) + 1
            print(f"overlay {ov.name}: {len(ov.objects)} objects: "
                  + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())), file=sys.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
