#!/usr/bin/env python3
"""deploy/helm/imbridge, rendered and validated without a cluster or helm.

helm is not in Debian bookworm, so tests/integration/deploy/helm_render
(Go text/template + sprig, as helm uses) renders the chart; this test checks
what a cluster would: every document parses, kinds and apiVersions, a
minimal Kubernetes schema of every field the chart uses (unknown fields are
errors, so a misspelt key fails), that Services select pods and name their
ports, probes on /healthz and /readyz, the router's volume claim, Secrets as
mounted files, the built-in kinds against the Kubernetes API's own models
(python3-kubernetes: every field known, of the right type, required ones
present), the ServiceMonitor behind its value, values.schema.json, and
that the configs the ConfigMaps carry pass the real binaries'
--check-config.
"""

import copy
import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

import jsonschema
import kubernetes.client
import yaml

SOURCE = os.environ["IMBRIDGE_SOURCE_DIR"]
BUILD = os.environ["IMBRIDGE_BUILD_DIR"]
CHART = os.path.join(SOURCE, "deploy/helm/imbridge")
HERE = os.path.dirname(os.path.abspath(__file__))
ADAPTERS = ["teamspirit", "slack", "telegram", "webhook"]
BINARY = {
    "router": "bridge/imbridge-router",
    "teamspirit": "adapters/teamspirit/imbridge-adapter-teamspirit",
    "slack": "adapters/slack/imbridge-adapter-slack",
    "telegram": "adapters/telegram/imbridge-adapter-telegram",
    "webhook": "adapters/webhook/imbridge-adapter-webhook",
}

# A minimal OpenAPI of the Kubernetes fields the chart uses (a subset of
# the real one: no field outside it is accepted).
STR = {"type": "string"}
INT = {"type": "integer"}
LABELS = {"type": "object", "additionalProperties": STR}
META = {"type": "object", "additionalProperties": False, "required": ["name"],
        "properties": {"name": {"type": "string",
                                "pattern": "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$",
                                "maxLength": 63},
                       "labels": LABELS, "annotations": LABELS}}
PORT_REF = {"oneOf": [INT, STR]}
PROBE = {"type": "object", "additionalProperties": False,
         "required": ["httpGet"],
         "properties": {"httpGet": {"type": "object", "additionalProperties": False,
                                    "required": ["path", "port"],
                                    "properties": {"path": STR, "port": PORT_REF}},
                        "initialDelaySeconds": INT, "periodSeconds": INT,
                        "failureThreshold": INT}}
SECURITY = {"type": "object", "additionalProperties": False,
            "properties": {"readOnlyRootFilesystem": {"type": "boolean"},
                           "allowPrivilegeEscalation": {"type": "boolean"},
                           "runAsNonRoot": {"type": "boolean"},
                           "runAsUser": INT, "runAsGroup": INT, "fsGroup": INT,
                           "capabilities": {"type": "object",
                                            "properties": {"drop": {"type": "array"}}}}}
CONTAINER = {
    "type": "object", "additionalProperties": False,
    "required": ["name", "image", "args", "ports", "livenessProbe",
                 "readinessProbe"],
    "properties": {
        "name": STR, "image": STR,
        "imagePullPolicy": {"enum": ["Always", "IfNotPresent", "Never"]},
        "args": {"type": "array", "items": STR},
        "ports": {"type": "array", "items": {
            "type": "object", "additionalProperties": False,
            "required": ["name", "containerPort"],
            "properties": {"name": STR, "containerPort": INT}}},
        "livenessProbe": PROBE, "readinessProbe": PROBE,
        "securityContext": SECURITY, "resources": {"type": "object"},
        "volumeMounts": {"type": "array", "items": {
            "type": "object", "additionalProperties": False,
            "required": ["name", "mountPath"],
            "properties": {"name": STR, "mountPath": STR, "subPath": STR,
                           "readOnly": {"type": "boolean"}}}},
    }}
VOLUME = {"type": "object", "additionalProperties": False, "required": ["name"],
          "minProperties": 2, "maxProperties": 2,
          "properties": {"name": STR,
                         "configMap": {"type": "object", "additionalProperties": False,
                                       "required": ["name"], "properties": {"name": STR}},
                         "secret": {"type": "object", "additionalProperties": False,
                                    "required": ["secretName"],
                                    "properties": {"secretName": STR, "defaultMode": INT}},
                         "emptyDir": {"type": "object"}}}
POD_TEMPLATE = {
    "type": "object", "additionalProperties": False, "required": ["metadata", "spec"],
    "properties": {
        "metadata": {"type": "object", "additionalProperties": False,
                     "properties": {"labels": LABELS, "annotations": LABELS}},
        "spec": {"type": "object", "additionalProperties": False,
                 "required": ["containers"],
                 "properties": {"containers": {"type": "array", "items": CONTAINER,
                                               "minItems": 1},
                                "volumes": {"type": "array", "items": VOLUME},
                                "securityContext": SECURITY,
                                "imagePullSecrets": {"type": "array"},
                                "terminationGracePeriodSeconds": INT,
                                "nodeSelector": LABELS,
                                "tolerations": {"type": "array"}}}}}
SELECTOR = {"type": "object", "additionalProperties": False, "required": ["matchLabels"],
            "properties": {"matchLabels": LABELS}}
SCHEMAS = {
    ("v1", "ConfigMap"): {"properties": {"data": LABELS}},
    ("v1", "Service"): {"required": ["spec"], "properties": {"spec": {
        "type": "object", "additionalProperties": False,
        "required": ["selector", "ports"],
        "properties": {"type": {"enum": ["ClusterIP", "NodePort", "LoadBalancer"]},
                       "clusterIP": STR, "selector": LABELS,
                       "ports": {"type": "array", "minItems": 1, "items": {
                           "type": "object", "additionalProperties": False,
                           "required": ["name", "port", "targetPort"],
                           "properties": {"name": STR, "port": INT,
                                          "targetPort": PORT_REF}}}}}}},
    ("apps/v1", "Deployment"): {"required": ["spec"], "properties": {"spec": {
        "type": "object", "additionalProperties": False,
        "required": ["selector", "template"],
        "properties": {"replicas": INT, "selector": SELECTOR,
                       "template": POD_TEMPLATE}}}},
    ("apps/v1", "StatefulSet"): {"required": ["spec"], "properties": {"spec": {
        "type": "object", "additionalProperties": False,
        "required": ["selector", "template", "serviceName", "volumeClaimTemplates"],
        "properties": {"replicas": INT, "selector": SELECTOR, "serviceName": STR,
                       "template": POD_TEMPLATE,
                       "volumeClaimTemplates": {"type": "array", "items": {
                           "type": "object", "additionalProperties": False,
                           "required": ["metadata", "spec"],
                           "properties": {"metadata": META, "spec": {
                               "type": "object", "additionalProperties": False,
                               "required": ["accessModes", "resources"],
                               "properties": {
                                   "accessModes": {"type": "array", "items": {
                                       "enum": ["ReadWriteOnce", "ReadWriteOncePod"]}},
                                   "storageClassName": STR,
                                   "resources": {"type": "object", "required": ["requests"],
                                                 "properties": {"requests": {
                                                     "type": "object",
                                                     "required": ["storage"]}}}}}}}}}}}},
    ("monitoring.coreos.com/v1", "ServiceMonitor"): {"required": ["spec"], "properties": {"spec": {
        "type": "object", "additionalProperties": False,
        "required": ["selector", "endpoints"],
        "properties": {"selector": {"type": "object"},
                       "namespaceSelector": {"type": "object"},
                       "endpoints": {"type": "array", "minItems": 1, "items": {
                           "type": "object", "additionalProperties": False,
                           "required": ["port"],
                           "properties": {"port": STR, "path": STR,
                                          "interval": STR}}}}}}},
}


# The Kubernetes API's own models (Debian's python3-kubernetes, API 1.22):
# the built-in kinds are also checked against them.
K8S_MODELS = {
    ("v1", "ConfigMap"): "V1ConfigMap",
    ("v1", "Service"): "V1Service",
    ("apps/v1", "Deployment"): "V1Deployment",
    ("apps/v1", "StatefulSet"): "V1StatefulSet",
}


def k8s_model_errors(value, type_name, path="$"):
    """Fields of `value` unknown to the model `type_name`, or of a wrong type."""
    errors = []
    if type_name.startswith("list["):
        if not isinstance(value, list):
            return ["%s: expected a list" % path]
        for i, item in enumerate(value):
            errors += k8s_model_errors(item, type_name[5:-1], "%s[%d]" % (path, i))
        return errors
    if type_name.startswith("dict("):
        if not isinstance(value, dict):
            return ["%s: expected a map" % path]
        inner = type_name[type_name.index(",") + 1:-1].strip()
        for key, item in value.items():
            errors += k8s_model_errors(item, inner, "%s.%s" % (path, key))
        return errors
    simple = {"str": str, "int": int, "bool": bool, "float": (int, float)}
    if type_name in simple:
        if not isinstance(value, simple[type_name]) or (
                type_name == "int" and isinstance(value, bool)):
            return ["%s: expected %s, got %r" % (path, type_name, value)]
        return []
    if type_name == "object":  # IntOrString, Quantity and the like
        return []
    model = getattr(kubernetes.client, type_name)
    if not isinstance(value, dict):
        return ["%s: expected a %s" % (path, type_name)]
    by_json = {json_name: attr for attr, json_name in model.attribute_map.items()}
    for key, item in value.items():
        if key not in by_json:
            errors.append("%s.%s: not a field of %s" % (path, key, type_name))
        else:
            errors += k8s_model_errors(item, model.openapi_types[by_json[key]],
                                       "%s.%s" % (path, key))
    return errors


def object_schema(api_version, kind):
    schema = {"type": "object", "additionalProperties": False,
              "required": ["apiVersion", "kind", "metadata"],
              "properties": {"apiVersion": {"const": api_version},
                             "kind": {"const": kind}, "metadata": META}}
    extra = SCHEMAS[(api_version, kind)]
    schema["required"] = schema["required"] + extra.get("required", [])
    schema["properties"] = dict(schema["properties"], **extra["properties"])
    return schema


class HelmChartTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="helm-test-")
        cls.renderer = os.path.join(cls.tmp, "helm_render")
        # Offline, from Debian's Go packages (GOPATH mode); no $HOME needed.
        env = dict(os.environ, GO111MODULE="off", GOPATH="/usr/share/gocode",
                   GOENV="off", GOFLAGS="", GOCACHE=os.path.join(BUILD, "go-cache"))
        subprocess.run(["go", "build", "-o", cls.renderer, "."],
                       cwd=os.path.join(HERE, "helm_render"), env=env, check=True,
                       timeout=300)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp)

    def render(self, *values_files):
        args = [self.renderer, CHART, "--name", "bridge", "--namespace", "chat"]
        for f in values_files:
            args += ["-f", f]
        out = subprocess.run(args, capture_output=True, text=True, timeout=60)
        self.assertEqual(out.returncode, 0, out.stderr)
        return [d for d in yaml.safe_load_all(out.stdout) if d is not None]

    def values(self, *files):
        with open(os.path.join(CHART, "values.yaml")) as f:
            values = yaml.safe_load(f)

        def merge(dst, src):
            for k, v in src.items():
                if isinstance(v, dict) and isinstance(dst.get(k), dict):
                    merge(dst[k], v)
                else:
                    dst[k] = v
        for path in files:
            with open(path) as f:
                merge(values, yaml.safe_load(f))
        return values

    def check_objects(self, docs):
        by_kind = {}
        for doc in docs:
            key = (doc.get("apiVersion"), doc.get("kind"))
            self.assertIn(key, SCHEMAS, "unexpected %s" % (key,))
            jsonschema.validate(doc, object_schema(*key))
            if key in K8S_MODELS:
                self.assertEqual(k8s_model_errors(doc, K8S_MODELS[key]), [])
                # Required fields: the models refuse to be built without them.
                kubernetes.client.ApiClient()._ApiClient__deserialize(
                    doc, K8S_MODELS[key])
            by_kind.setdefault(doc["kind"], {})[doc["metadata"]["name"]] = doc
            self.assertEqual(doc["metadata"]["labels"]["app.kubernetes.io/instance"],
                             "bridge")
        workloads = list(by_kind.get("Deployment", {}).values()) + list(
            by_kind.get("StatefulSet", {}).values())
        for workload in workloads:
            spec = workload["spec"]
            pod = spec["template"]
            labels = pod["metadata"]["labels"]
            for k, v in spec["selector"]["matchLabels"].items():
                self.assertEqual(labels.get(k), v)
            volumes = {v["name"]: v for v in pod["spec"].get("volumes", [])}
            claims = [c["metadata"]["name"] for c in spec.get("volumeClaimTemplates", [])]
            for container in pod["spec"]["containers"]:
                ports = {p["name"] for p in container["ports"]}
                self.assertIn("http", ports)
                self.assertEqual(container["livenessProbe"]["httpGet"],
                                 {"path": "/healthz", "port": "http"})
                self.assertEqual(container["readinessProbe"]["httpGet"],
                                 {"path": "/readyz", "port": "http"})
                self.assertTrue(container["securityContext"]["readOnlyRootFilesystem"])
                for mount in container["volumeMounts"]:
                    self.assertTrue(mount["name"] in volumes or mount["name"] in claims,
                                    mount)
                    volume = volumes.get(mount["name"], {})
                    if "configMap" in volume:
                        self.assertIn(volume["configMap"]["name"],
                                      by_kind["ConfigMap"])
                        self.assertIn(mount["subPath"],
                                      by_kind["ConfigMap"][volume["configMap"]["name"]]["data"])
                mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
                self.assertIn("secret", volumes[mounts["/etc/imbridge/credentials"]])
                self.assertIn("/var/lib/imbridge", mounts)
                self.assertIn("/tmp", mounts)
            self.assertEqual(pod["spec"]["securityContext"]["runAsUser"], 10001)
        # Every Service selects a workload's pods and names their ports.
        for service in by_kind["Service"].values():
            selected = [w for w in workloads
                        if all(w["spec"]["template"]["metadata"]["labels"].get(k) == v
                               for k, v in service["spec"]["selector"].items())]
            self.assertEqual(len(selected), 1, service["metadata"]["name"])
            ports = {p["name"] for c in selected[0]["spec"]["template"]["spec"]["containers"]
                     for p in c["ports"]}
            for port in service["spec"]["ports"]:
                self.assertIn(port["targetPort"], ports)
        return by_kind

    def check_configs(self, by_kind, values):
        """The ConfigMaps' configs pass each binary's --check-config."""
        credentials = os.path.join(self.tmp, "credentials")
        os.makedirs(credentials, exist_ok=True)
        for name in ("admin-token", "adapter-token", "teamspirit-api-key",
                     "teamspirit-webhook-secret", "slack-bot-token",
                     "slack-signing-secret", "telegram-bot-token"):
            with open(os.path.join(credentials, name), "w") as f:
                f.write("123456789:secret-value-for-%s\n" % name)
        checked = []
        for configmap in by_kind["ConfigMap"].values():
            for key, text in configmap["data"].items():
                process = key[:-len(".yaml")]
                text = text.replace("/etc/imbridge/credentials/", credentials + "/")
                text = text.replace("/var/lib/imbridge", os.path.join(self.tmp, "state"))
                path = os.path.join(self.tmp, key)
                with open(path, "w") as f:
                    f.write(text)
                out = subprocess.run([os.path.join(BUILD, BINARY[process]), "--config",
                                      path, "--check-config"],
                                     capture_output=True, text=True, timeout=60)
                self.assertEqual(out.returncode, 0, "%s: %s%s" % (key, out.stdout, out.stderr))
                checked.append(process)
        return sorted(checked)

    def test_schema_of_values(self):
        with open(os.path.join(CHART, "values.schema.json")) as f:
            schema = json.load(f)
        jsonschema.Draft7Validator.check_schema(schema)
        jsonschema.validate(self.values(), schema)
        jsonschema.validate(self.values(os.path.join(HERE, "helm-all.values.yaml")), schema)
        bad = copy.deepcopy(self.values())
        bad["adapters"]["slack"]["port"] = "http"
        with self.assertRaises(jsonschema.ValidationError):
            jsonschema.validate(bad, schema)
        bad = copy.deepcopy(self.values())
        bad["adapters"]["whatsapp"] = {"enabled": True}
        with self.assertRaises(jsonschema.ValidationError):
            jsonschema.validate(bad, schema)

    def test_defaults(self):
        by_kind = self.check_objects(self.render())
        self.assertEqual(sorted(by_kind["StatefulSet"]), ["bridge-imbridge-router"])
        self.assertEqual(sorted(by_kind["Deployment"]), ["bridge-imbridge-webhook"])
        self.assertNotIn("ServiceMonitor", by_kind)
        self.assertEqual(self.check_configs(by_kind, self.values()),
                         ["router", "webhook"])

    def test_everything_enabled(self):
        values_file = os.path.join(HERE, "helm-all.values.yaml")
        by_kind = self.check_objects(self.render(values_file))
        self.assertEqual(sorted(by_kind["Deployment"]),
                         sorted("bridge-imbridge-" + a for a in ADAPTERS))
        router = by_kind["StatefulSet"]["bridge-imbridge-router"]["spec"]
        self.assertEqual(router["replicas"], 1)
        self.assertIn(router["serviceName"], by_kind["Service"])
        self.assertEqual(by_kind["Service"][router["serviceName"]]["spec"]["clusterIP"], "None")
        claim = router["volumeClaimTemplates"][0]
        self.assertEqual(claim["metadata"]["name"], "data")
        self.assertEqual(claim["spec"]["storageClassName"], "fast")
        self.assertEqual(claim["spec"]["resources"]["requests"]["storage"], "5Gi")
        container = router["template"]["spec"]["containers"][0]
        self.assertEqual(container["image"], "registry.example.org/imbridge:0.1.0-test")
        self.assertEqual(container["args"][0], "imbridge-router")
        for adapter in ADAPTERS:
            deployment = by_kind["Deployment"]["bridge-imbridge-" + adapter]
            pod = deployment["spec"]["template"]["spec"]
            self.assertEqual(pod["containers"][0]["args"][0], "imbridge-adapter-" + adapter)
            secrets = [v["secret"]["secretName"] for v in pod["volumes"] if "secret" in v]
            self.assertEqual(secrets, ["imbridge-" + adapter])
            config = yaml.safe_load(
                by_kind["ConfigMap"]["bridge-imbridge-" + adapter]["data"][adapter + ".yaml"])
            self.assertEqual(config["router"]["address"], "bridge-imbridge-router:7700")
            self.assertEqual(config["router"]["adapter_name"], adapter)
        monitor = by_kind["ServiceMonitor"]["bridge-imbridge"]
        self.assertEqual(monitor["metadata"]["labels"]["release"], "prometheus")
        self.assertEqual(monitor["spec"]["namespaceSelector"], {"matchNames": ["chat"]})
        self.assertEqual(monitor["spec"]["endpoints"][0]["path"], "/metrics")
        # It selects the router's and every adapter's Service with a port "http".
        scraped = [s["metadata"]["name"] for s in by_kind["Service"].values()
                   if all(s["metadata"]["labels"].get(k) == v
                          for k, v in monitor["spec"]["selector"]["matchLabels"].items())
                   and any(p["name"] == "http" for p in s["spec"]["ports"])]
        self.assertEqual(sorted(scraped), sorted(
            ["bridge-imbridge-router"] + ["bridge-imbridge-" + a for a in ADAPTERS]))
        self.assertEqual(self.check_configs(by_kind, self.values(values_file)),
                         sorted(["router"] + ADAPTERS))


if __name__ == "__main__":
    unittest.main(verbosity=2)
