#!/usr/bin/env python3
"""Render a Helm chart with the real Helm engine (helm-sdkpy) and print the manifests.

    helm_render.py CHART_DIR [OVERRIDES_JSON]

helm-sdkpy exposes neither `helm template` nor a dry-run install, so this runs a real
`helm install` against a minimal in-process fake Kubernetes API server: it answers discovery for
the kinds the chart uses, stores the release Secret and accepts every create, and the rendered
manifest is taken from the returned release. The chart's crds/ directory is left out of the copy
that is installed (CRDs are checked separately against /crds). Prints the manifest (multi-document
YAML) on stdout; exits non-zero when the install fails.
"""
import asyncio
import json
import os
import shutil
import sys
import tempfile
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import yaml

NAMESPACE = "t2t-system"

# group/version -> [(plural, Kind, namespaced)]
RESOURCES = {
    "v1": [
        ("namespaces", "Namespace", False),
        ("serviceaccounts", "ServiceAccount", True),
        ("secrets", "Secret", True),
        ("configmaps", "ConfigMap", True),
        ("services", "Service", True),
        ("events", "Event", True),
    ],
    "apps/v1": [("deployments", "Deployment", True)],
    "rbac.authorization.k8s.io/v1": [
        ("clusterroles", "ClusterRole", False),
        ("clusterrolebindings", "ClusterRoleBinding", False),
        ("roles", "Role", True),
        ("rolebindings", "RoleBinding", True),
    ],
    "networking.k8s.io/v1": [("networkpolicies", "NetworkPolicy", True)],
    "policy/v1": [("poddisruptionbudgets", "PodDisruptionBudget", True)],
    "admissionregistration.k8s.io/v1": [
        ("validatingadmissionpolicies", "ValidatingAdmissionPolicy", False),
        ("validatingadmissionpolicybindings", "ValidatingAdmissionPolicyBinding", False),
    ],
    "apiextensions.k8s.io/v1": [("customresourcedefinitions", "CustomResourceDefinition", False)],
    "coordination.k8s.io/v1": [("leases", "Lease", True)],
    "monitoring.coreos.com/v1": [
        ("servicemonitors", "ServiceMonitor", True),
        ("prometheusrules", "PrometheusRule", True),
    ],
}
VERBS = ["create", "delete", "get", "list", "patch", "update", "watch"]


class FakeApiServer(BaseHTTPRequestHandler):
    store: dict = {}
    lock = threading.Lock()

    def log_message(self, *args):  # quiet
        pass

    def reply(self, code, body):
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def not_found(self):
        self.reply(404, {"kind": "Status", "apiVersion": "v1", "status": "Failure",
                         "reason": "NotFound", "code": 404, "message": "not found"})

    def path_only(self):
        return self.path.split("?", 1)[0].rstrip("/")

    def do_GET(self):
        path = self.path_only()
        if path == "/version":
            return self.reply(200, {"major": "1", "minor": "33", "gitVersion": "v1.33.0",
                                    "platform": "linux/amd64"})
        if path == "/api":
            return self.reply(200, {"kind": "APIVersions", "versions": ["v1"],
                                    "serverAddressByClientCIDRs": []})
        if path == "/apis":
            groups = {}
            for gv in RESOURCES:
                if "/" in gv:
                    g, v = gv.split("/")
                    groups.setdefault(g, []).append({"groupVersion": gv, "version": v})
            return self.reply(200, {"kind": "APIGroupList", "apiVersion": "v1", "groups": [
                {"name": g, "versions": vs, "preferredVersion": vs[0]} for g, vs in groups.items()]})
        gv = path[len("/api/"):] if path.startswith("/api/") else path[len("/apis/"):]
        if gv in RESOURCES:
            return self.reply(200, {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv,
                                    "resources": [{"name": p, "singularName": k.lower(), "kind": k,
                                                   "namespaced": n, "verbs": VERBS}
                                                  for p, k, n in RESOURCES[gv]]})
        with self.lock:
            if path in self.store:
                return self.reply(200, self.store[path])
            items = [o for k, o in self.store.items() if k.rsplit("/", 1)[0] == path]
        if path.endswith("/secrets") or path.endswith("/configmaps"):
            return self.reply(200, {"kind": "List", "apiVersion": "v1", "metadata": {}, "items": items})
        return self.not_found()

    def body(self):
        length = int(self.headers.get("Content-Length") or 0)
        return json.loads(self.rfile.read(length) or b"{}")

    def do_POST(self):
        obj = self.body()
        meta = obj.setdefault("metadata", {})
        meta.setdefault("uid", str(uuid.uuid4()))
        meta["resourceVersion"] = "1"
        meta.setdefault("creationTimestamp", "2026-01-01T00:00:00Z")
        with self.lock:
            self.store[f"{self.path_only()}/{meta.get('name')}"] = obj
        self.reply(201, obj)

    def do_PUT(self):
        obj = self.body()
        obj.setdefault("metadata", {})["resourceVersion"] = "2"
        with self.lock:
            self.store[self.path_only()] = obj
        self.reply(200, obj)

    def do_PATCH(self):
        with self.lock:
            obj = self.store.get(self.path_only())
        if obj is None:
            return self.not_found()
        self.body()
        self.reply(200, obj)

    def do_DELETE(self):
        with self.lock:
            obj = self.store.pop(self.path_only(), None)
        if obj is None:
            return self.not_found()
        self.reply(200, {"kind": "Status", "apiVersion": "v1", "status": "Success"})


def merge(base, over):
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(base.get(k), dict):
            merge(base[k], v)
        else:
            base[k] = v
    return base


def main():
    # The release record must stay in memory: the fake server cannot decode the protobuf bodies of
    # Helm's default Secret storage driver. The Go runtime reads the environment the process
    # started with, so re-exec with HELM_DRIVER set.
    if os.environ.get("HELM_DRIVER") != "memory":
        env = dict(os.environ, HELM_DRIVER="memory")
        os.execve(sys.executable, [sys.executable, *sys.argv], env)
    chart = Path(sys.argv[1]).resolve()
    overrides = json.loads(sys.argv[2]) if len(sys.argv) > 2 else {}
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeApiServer)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            target = Path(tmp) / chart.name
            shutil.copytree(chart, target, ignore=shutil.ignore_patterns("crds"))
            kubeconfig = Path(tmp) / "kubeconfig"
            kubeconfig.write_text(yaml.safe_dump({
                "apiVersion": "v1", "kind": "Config", "current-context": "fake",
                "clusters": [{"name": "fake", "cluster": {"server": f"http://127.0.0.1:{server.server_port}"}}],
                "users": [{"name": "fake", "user": {"token": "fake"}}],
                "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "fake",
                                                          "namespace": NAMESPACE}}],
            }))
            import helm_sdkpy

            config = helm_sdkpy.Configuration(namespace=NAMESPACE, kubeconfig=str(kubeconfig))
            release = asyncio.run(helm_sdkpy.Install(config).run(
                "t2t-operator", str(target), values=overrides or None, wait=False, timeout=60))
    finally:
        server.shutdown()
    manifest = release.get("manifest") if isinstance(release, dict) else None
    if not manifest:
        print(f"no manifest in the release: {json.dumps(release)[:2000]}", file=sys.stderr)
        sys.exit(1)
    print(manifest)


if __name__ == "__main__":
    main()
