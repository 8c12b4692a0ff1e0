"""Print the Kubernetes manifests of a Kustomize directory (deploy/kubernetes): `make manifests`.

With kubectl on the PATH this is `kubectl kustomize DIR`. Without it (a CI machine, a laptop) the few
Kustomize features our directories use are applied here: `resources` (files and directories),
`namespace`, `images` and `sortOptions: {order: fifo}` (objects in the order listed). Any other field
is refused with a message, so a patch added one day fails loudly instead of rendering wrong;
tests/deploy/test_kubernetes.py checks that both ways give the same objects.

    python scripts/render_manifests.py [--renderer auto|kubectl|python] DIR
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

SUPPORTED = {"apiVersion", "kind", "resources", "namespace", "images", "sortOptions"}
# Kinds that live in no namespace (Kustomize's namespace transformer leaves them alone); ours use none
# of them today, the list is here so that adding one does not put a namespace on it.
CLUSTER_SCOPED = {
    "Namespace", "ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition", "PersistentVolume",
    "StorageClass", "PriorityClass", "IngressClass", "ValidatingWebhookConfiguration",
    "MutatingWebhookConfiguration", "APIService", "ClusterTriggerAuthentication",
}  # fmt: skip

Manifest = dict[str, Any]


class _Dumper(yaml.SafeDumper):
    def ignore_aliases(self, data: Any) -> bool:
        return True  # an object used twice is written out twice, as kubectl does, never as &id001


class Unsupported(Exception):
    """The kustomization uses a feature this renderer does not implement: use kubectl kustomize."""


def _kustomization(directory: Path) -> Manifest:
    for name in ("kustomization.yaml", "kustomization.yml", "Kustomization"):
        path = directory / name
        if path.is_file():
            data = yaml.safe_load(path.read_text()) or {}
            unknown = set(data) - SUPPORTED
            if unknown:
                raise Unsupported(f"{path}: {', '.join(sorted(unknown))} needs `kubectl kustomize`")
            if data.get("sortOptions", {"order": "fifo"}) != {"order": "fifo"}:
                raise Unsupported(f"{path}: only sortOptions {{order: fifo}} is rendered without kubectl")
            return data
    raise Unsupported(f"{directory}: no kustomization.yaml")


def _split_image(image: str) -> tuple[str, str]:
    """("registry/name", ":tag" or "@sha256:..." or "") of an image reference."""
    if "@" in image:
        name, digest = image.split("@", 1)
        return name, "@" + digest
    slash = image.rfind("/")
    colon = image.rfind(":")
    if colon > slash:
        return image[:colon], image[colon:]
    return image, ""


def _set_images(node: Any, images: list[Manifest]) -> None:
    """Kustomize's images transformer: every container and init container image whose name matches."""
    if isinstance(node, list):
        for item in node:
            _set_images(item, images)
        return
    if not isinstance(node, dict):
        return
    for key, value in node.items():
        if key in ("containers", "initContainers") and isinstance(value, list):
            for container in value:
                name, suffix = _split_image(container.get("image", ""))
                for image in images:
                    if image["name"] == name:
                        if "digest" in image:
                            suffix = "@" + image["digest"]
                        elif "newTag" in image:
                            suffix = ":" + str(image["newTag"])
                        container["image"] = image.get("newName", name) + suffix
        _set_images(value, images)


def _documents(path: Path) -> Iterator[Manifest]:
    for document in yaml.safe_load_all(path.read_text()):
        if document:
            yield document


def render(directory: Path) -> list[Manifest]:
    """The objects of a Kustomize directory, in the order Kustomize prints them with fifo order."""
    kustomization = _kustomization(directory)
    objects: list[Manifest] = []
    for entry in kustomization.get("resources", []):
        path = (directory / entry).resolve()
        objects.extend(render(path) if path.is_dir() else _documents(path))
    namespace = kustomization.get("namespace")
    for manifest in objects:
        if namespace and manifest["kind"] not in CLUSTER_SCOPED:
            manifest.setdefault("metadata", {})["namespace"] = namespace
        _set_images(manifest, kustomization.get("images", []))
    return objects


def render_with_kubectl(directory: Path) -> list[Manifest]:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        raise FileNotFoundError("kubectl is not on the PATH")
    output = subprocess.run(
        [kubectl, "kustomize", str(directory)], check=True, capture_output=True, text=True, timeout=60
    ).stdout
    return [document for document in yaml.safe_load_all(output) if document]


def dump(objects: list[Manifest]) -> str:
    """YAML with keys sorted as kubectl prints them: the same text whichever renderer ran."""
    return yaml.dump_all(objects, Dumper=_Dumper, sort_keys=True, width=120)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("directory", type=Path)
    parser.add_argument("--renderer", choices=("auto", "kubectl", "python"), default="auto")
    args = parser.parse_args(argv)
    use_kubectl = args.renderer == "kubectl" or (args.renderer == "auto" and shutil.which("kubectl"))
    try:
        objects = render_with_kubectl(args.directory) if use_kubectl else render(args.directory)
    except Unsupported as exc:
        print(f"render_manifests: {exc}", file=sys.stderr)
        return 2
    sys.stdout.write(dump(objects))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
