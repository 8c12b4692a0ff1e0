"""docs/scaling.md holds exactly what bench/capacity.py computes from its inputs."""

from __future__ import annotations

import re
from pathlib import Path

from bench import capacity

DOC = Path(__file__).resolve().parents[2] / "docs" / "scaling.md"


def test_the_scaling_page_holds_the_models_current_output() -> None:
    text = DOC.read_text()
    found = re.search(r"<!-- capacity.py output: begin -->\n(.*)<!-- capacity.py output: end -->", text, re.S)
    assert found, "docs/scaling.md lost its capacity.py markers"
    assert found.group(1) == capacity.render(), "docs/scaling.md is stale: paste the output of bench/capacity.py"


def test_every_measured_input_names_the_benchmark_or_code_it_comes_from() -> None:
    for label, figure in capacity.INPUTS:
        assert figure.source.startswith(("bench/", "static/", "media_pipeline/", "playback/", "analytics/",
                                         "deploy/", "assumption:")), label  # fmt: skip
        path = figure.source.split(":")[0].split(" ")[0]
        if not figure.source.startswith("assumption:"):
            assert (DOC.parents[1] / path).exists(), f"{label}: {path} does not exist"


def test_the_model_grows_linearly_with_viewers() -> None:
    small, large = capacity.viewer_rows(10_000), capacity.viewer_rows(1_000_000)
    assert small["progress reports"] == "667/s" and large["progress reports"] == "66,667/s"
    assert small["edge requests"] == "10,000/s" and large["edge requests"] == "1,000,000/s"


def test_the_pod_cpu_target_is_the_one_the_autoscalers_use() -> None:
    import yaml

    for name in ("web.yaml", "beacons.yaml"):
        path = DOC.parents[1] / "deploy" / "kubernetes" / "base" / name
        documents = yaml.safe_load_all(path.read_text())
        autoscalers = [d for d in documents if d and d.get("kind") == "HorizontalPodAutoscaler"]
        assert autoscalers, name
        for autoscaler in autoscalers:
            (cpu,) = [m for m in autoscaler["spec"]["metrics"] if m.get("resource", {}).get("name") == "cpu"]
            assert cpu["resource"]["target"]["averageUtilization"] == capacity.TARGET_CPU.value * 100
        # The model counts a pod as one core: one Python process, which the autoscaler measures against
        # its request.
        (deployment,) = [d for d in yaml.safe_load_all(path.read_text()) if d and d.get("kind") == "Deployment"]
        for container in deployment["spec"]["template"]["spec"]["containers"]:
            assert container["resources"]["requests"]["cpu"] in ("1", 1), name
