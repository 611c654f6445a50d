"""Render a kustomize directory: with `kubectl kustomize` when it is installed, else in Python.

The Python loader implements exactly what deploy/k8s uses, and refuses anything else so that it
can never silently render something different from kustomize:

- `resources`: YAML files and directories holding a kustomization.yaml (bases), in order;
- `patches`: strategic-merge patches given by `path`, each naming its target by apiVersion,
  kind and metadata.name; `null` deletes a field; lists of containers, env, ports, volumes
  and volumeMounts merge by their Kubernetes merge keys, other lists are replaced;
- `images`: `name` → `newName` / `newTag` / `digest` on containers and init containers;
- `namespace`: set on every object (all of deploy/k8s's kinds are namespaced).

When kubectl is installed, a test checks that both renderings agree.
"""

from __future__ import annotations

import copy
import shutil
import subprocess
from pathlib import Path
from typing import Any

import yaml

Obj = dict[str, Any]

SUPPORTED_KEYS = {"apiVersion", "kind", "namespace", "resources", "patches", "images"}

# Merge keys of the Kubernetes lists the patches may touch (from the API's
# x-kubernetes-patch-merge-key). Lists not named here are replaced whole, as kustomize does.
MERGE_KEYS = {
    "containers": "name",
    "initContainers": "name",
    "env": "name",
    "ports": "containerPort",
    "volumes": "name",
    "volumeMounts": "mountPath",
}


class UnsupportedKustomization(Exception):
    """The kustomization uses a feature this loader does not implement."""


def kubectl() -> str | None:
    return shutil.which("kubectl")


def kubectl_kustomize(directory: Path) -> list[Obj]:
    exe = kubectl()
    assert exe is not None
    result = subprocess.run(
        [exe, "kustomize", str(directory)], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, f"kubectl kustomize {directory} failed:\n{result.stderr}"
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def render(directory: Path) -> list[Obj]:
    """The objects the kustomization in `directory` builds (kubectl if present, else Python)."""
    return kubectl_kustomize(directory) if kubectl() else load(directory)


def object_id(obj: Obj) -> tuple[str, str, str]:
    group = obj["apiVersion"].split("/")[0] if "/" in obj["apiVersion"] else ""
    return (group, obj["kind"], obj["metadata"]["name"])


def load(directory: Path) -> list[Obj]:
    """Build the kustomization in `directory` in Python (see the module docstring)."""
    path = directory / "kustomization.yaml"
    spec = yaml.safe_load(path.read_text())
    unsupported = set(spec) - SUPPORTED_KEYS
    if unsupported:
        raise UnsupportedKustomization(f"{path}: {sorted(unsupported)} (install kubectl)")

    objects: list[Obj] = []
    for entry in spec.get("resources", []):
        target = (directory / entry).resolve()
        if target.is_dir():
            objects.extend(load(target))
        else:
            objects.extend(doc for doc in yaml.safe_load_all(target.read_text()) if doc)
    ids = [object_id(obj) for obj in objects]
    duplicates = {i for i in ids if ids.count(i) > 1}
    if duplicates:
        raise ValueError(f"{path}: duplicate resources {sorted(duplicates)}")

    for patch_entry in spec.get("patches", []):
        if set(patch_entry) != {"path"}:
            raise UnsupportedKustomization(f"{path}: patch {patch_entry} (only `path:`)")
        for patch in yaml.safe_load_all((directory / patch_entry["path"]).read_text()):
            if not patch:
                continue
            matches = [i for i, obj in enumerate(objects) if object_id(obj) == object_id(patch)]
            if len(matches) != 1:
                raise ValueError(f"{path}: patch target {object_id(patch)} not found")
            objects[matches[0]] = merge(objects[matches[0]], patch)

    if "namespace" in spec:
        for obj in objects:
            obj["metadata"]["namespace"] = spec["namespace"]

    for image in spec.get("images", []):
        unknown = set(image) - {"name", "newName", "newTag", "digest"}
        if unknown:
            raise UnsupportedKustomization(f"{path}: images {sorted(unknown)}")
        for obj in objects:
            for container in _containers(obj):
                container["image"] = _retag(container["image"], image)
    return objects


def merge(base: Any, patch: Any, field: str | None = None) -> Any:
    """Strategic merge of `patch` into `base` (a copy; the arguments are not changed)."""
    if isinstance(base, dict) and isinstance(patch, dict):
        result = copy.deepcopy(base)
        for key, value in patch.items():
            if key.startswith("$"):
                raise UnsupportedKustomization(f"patch directive {key}")
            if value is None:
                result.pop(key, None)
            elif key in result:
                result[key] = merge(result[key], value, key)
            else:
                result[key] = _without_nulls(value)
        return result
    if isinstance(base, list) and isinstance(patch, list) and field in MERGE_KEYS:
        key = MERGE_KEYS[field]
        result_list = copy.deepcopy(base)
        for item in patch:
            found = [i for i, existing in enumerate(result_list) if existing[key] == item[key]]
            if found:
                result_list[found[0]] = merge(result_list[found[0]], item)
            else:
                result_list.append(_without_nulls(item))
        return result_list
    return _without_nulls(patch)


def _without_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_nulls(v) for v in value]
    return copy.deepcopy(value)


def pod_spec(obj: Obj) -> Obj | None:
    """The pod spec of a workload object, or None for objects without pods."""
    spec: Obj | None = None
    if obj["kind"] == "Pod":
        spec = obj["spec"]
    elif obj["kind"] in {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"}:
        spec = obj["spec"]["template"]["spec"]
    elif obj["kind"] == "CronJob":
        spec = obj["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    return spec


def _containers(obj: Obj) -> list[Obj]:
    spec = pod_spec(obj)
    if spec is None:
        return []
    return [*spec.get("initContainers", []), *spec.get("containers", [])]


def _retag(reference: str, image: dict[str, str]) -> str:
    name, tag, digest = reference, "", ""
    if "@" in name:
        name, digest = name.split("@", 1)
    last = name.rsplit("/", 1)[-1]
    if ":" in last:
        name, tag = name.rsplit(":", 1)
    if name != image["name"]:
        return reference
    name = image.get("newName", name)
    if "digest" in image:
        return f"{name}@{image['digest']}"
    if "newTag" in image:
        return f"{name}:{image['newTag']}"
    return f"{name}:{tag}" if tag else (f"{name}@{digest}" if digest else name)
