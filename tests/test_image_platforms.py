"""The image platform check deploy.yml runs before `pulumi up` and image.yml after a push:
manifests in the shapes registries return, the stack's target read through the program's own
configuration model, and the command line against a stand-in `aws`."""

from __future__ import annotations

import io
import json
import shutil
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any, get_args

import pytest
import yaml

from components import containers as c
from stack_config import ServiceConfig
from tests.conftest import ROOT, RunStack
from tools import image_platforms as ip
from tools.image_platforms import ManifestError, Platform

ARM64 = Platform("linux", "arm64")
AMD64 = Platform("linux", "amd64")
CONFIG_DIGEST = "sha256:" + "c" * 64


def digest(n: int) -> str:
    return "sha256:" + f"{n:x}" * 64


# What `docker buildx build --platform linux/arm64,linux/amd64 --push` puts in ECR: an OCI index
# with one manifest per platform and, by default, a provenance attestation for each.
BUILDX_INDEX: dict[str, Any] = {
    "schemaVersion": 2,
    "mediaType": ip.OCI_INDEX,
    "manifests": [
        {
            "mediaType": ip.OCI_MANIFEST,
            "digest": digest(1),
            "size": 1611,
            "platform": {"architecture": "arm64", "os": "linux"},
        },
        {
            "mediaType": ip.OCI_MANIFEST,
            "digest": digest(2),
            "size": 1611,
            "platform": {"architecture": "amd64", "os": "linux"},
        },
        {
            "mediaType": ip.OCI_MANIFEST,
            "digest": digest(3),
            "size": 566,
            "annotations": {
                "vnd.docker.reference.digest": digest(1),
                "vnd.docker.reference.type": "attestation-manifest",
            },
            "platform": {"architecture": "unknown", "os": "unknown"},
        },
    ],
}

# `docker manifest create` / older registries: a Docker manifest list, arm64 with its variant.
DOCKER_LIST: dict[str, Any] = {
    "schemaVersion": 2,
    "mediaType": ip.DOCKER_MANIFEST_LIST,
    "manifests": [
        {
            "mediaType": ip.DOCKER_MANIFEST,
            "digest": digest(4),
            "size": 1570,
            "platform": {"architecture": "amd64", "os": "linux"},
        },
        {
            "mediaType": ip.DOCKER_MANIFEST,
            "digest": digest(5),
            "size": 1570,
            "platform": {"architecture": "arm64", "os": "linux", "variant": "v8"},
        },
        {
            "mediaType": ip.DOCKER_MANIFEST,
            "digest": digest(6),
            "size": 1570,
            "platform": {"architecture": "arm", "os": "linux", "variant": "v7"},
        },
    ],
}

# `docker build` then `docker push` on one machine: a single manifest; the platform is in the
# config blob it points at.
SINGLE_DOCKER: dict[str, Any] = {
    "schemaVersion": 2,
    "mediaType": ip.DOCKER_MANIFEST,
    "config": {
        "mediaType": "application/vnd.docker.container.image.v1+json",
        "size": 7023,
        "digest": CONFIG_DIGEST,
    },
    "layers": [
        {
            "mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
            "size": 29126484,
            "digest": digest(7),
        },
    ],
}
SINGLE_OCI: dict[str, Any] = {
    **SINGLE_DOCKER,
    "mediaType": ip.OCI_MANIFEST,
    "config": {
        "mediaType": "application/vnd.oci.image.config.v1+json",
        "size": 7023,
        "digest": CONFIG_DIGEST,
    },
}


def image_config(architecture: str) -> dict[str, Any]:
    """An image config blob, as `docker inspect` shows its top level."""
    return {
        "architecture": architecture,
        "os": "linux",
        "config": {"Cmd": ["uvicorn", "app.main:app"], "WorkingDir": "/app"},
        "rootfs": {"type": "layers", "diff_ids": [digest(8)]},
    }


def no_config(digest: str) -> Mapping[str, Any]:
    raise AssertionError(f"an index needs no config blob, asked for {digest}")


# --- manifests ---------------------------------------------------------------------------


def test_a_buildx_index_has_both_platforms_and_no_attestation() -> None:
    assert ip.platforms(BUILDX_INDEX, ip.OCI_INDEX, no_config) == [AMD64, ARM64]


def test_an_oci_index_without_its_optional_media_type_is_read_as_an_index() -> None:
    index = {k: v for k, v in BUILDX_INDEX.items() if k != "mediaType"}
    assert ip.platforms(index, None, no_config) == [AMD64, ARM64]


def test_a_docker_manifest_list_names_its_platforms_variant_aside() -> None:
    found = ip.platforms(DOCKER_LIST, ip.DOCKER_MANIFEST_LIST, no_config)
    assert found == [AMD64, Platform("linux", "arm"), ARM64]
    assert ip.missing(found, [ARM64]) == []


@pytest.mark.parametrize(
    ("manifest", "media_type"), [(SINGLE_DOCKER, ip.DOCKER_MANIFEST), (SINGLE_OCI, None)]
)
def test_a_single_manifest_takes_its_platform_from_the_config_blob(
    manifest: dict[str, Any], media_type: str | None
) -> None:
    asked: list[str] = []

    def read_config(wanted: str) -> Mapping[str, Any]:
        asked.append(wanted)
        return image_config("amd64")

    found = ip.platforms(manifest, media_type, read_config)
    assert found == [AMD64]
    assert asked == [CONFIG_DIGEST]
    # An x86 laptop's image on Graviton tasks: the deploy must stop.
    assert ip.missing(found, [ARM64]) == [ARM64]


def test_a_config_blob_without_an_architecture_is_refused() -> None:
    with pytest.raises(ManifestError, match="names no os and architecture"):
        ip.platforms(SINGLE_DOCKER, ip.DOCKER_MANIFEST, lambda _: {"config": {}})


def test_what_is_not_an_image_manifest_is_refused() -> None:
    schema1 = {
        "schemaVersion": 1,
        "name": "wwhd/dev/api",
        "tag": "v1",
        "architecture": "amd64",
        "fsLayers": [],
    }
    with pytest.raises(ManifestError, match="not an image manifest or index"):
        ip.platforms(schema1, "application/vnd.docker.distribution.manifest.v1+prettyjws", no_config)
    with pytest.raises(ManifestError, match="names no config blob"):
        ip.platforms({"schemaVersion": 2, "layers": []}, ip.OCI_MANIFEST, no_config)


def test_platforms_parse_from_the_command_line_spelling() -> None:
    assert Platform.parse("linux/arm64") == ARM64
    assert Platform.parse("linux/arm64/v8") == ARM64
    assert str(AMD64) == "linux/amd64"
    for bad in ("arm64", "linux/", "linux/arm64/v8/x"):
        with pytest.raises(ValueError, match="not a platform"):
            Platform.parse(bad)


def test_every_task_architecture_of_the_config_model_has_its_image_platform() -> None:
    architectures = get_args(ServiceConfig.model_fields["cpu_architecture"].annotation)
    assert set(ip.TASK_PLATFORMS) == set(architectures)
    assert ip.TASK_PLATFORMS["arm64"] == ARM64 and ip.TASK_PLATFORMS["x86_64"] == AMD64


# --- the stack's target ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("stack", "repository"),
    [("dev", "wwhd/dev/api"), ("staging", "wwhd/staging/api"), ("prod", "wwhd-prod-backend")],
)
def test_the_target_is_read_from_the_stack_file(stack: str, repository: str) -> None:
    config = yaml.safe_load((ROOT / f"Pulumi.{stack}.yaml").read_text(encoding="utf-8"))["config"]
    target = ip.stack_target(stack)
    assert target == ip.Target(
        region=config["aws:region"],
        repository=repository,
        tag=config["wwhd:images"]["apiTag"],
        platform=ARM64,
    )


def stack_copy(tmp_path: Path, stack: str, service: dict[str, Any]) -> Path:
    """Pulumi.yaml and the stack file in ``tmp_path``, with ``service`` as wwhd:service."""
    shutil.copy(ROOT / "Pulumi.yaml", tmp_path / "Pulumi.yaml")
    doc = yaml.safe_load((ROOT / f"Pulumi.{stack}.yaml").read_text(encoding="utf-8"))
    doc["config"]["wwhd:service"] = service
    (tmp_path / f"Pulumi.{stack}.yaml").write_text(yaml.safe_dump(doc), encoding="utf-8")
    return tmp_path


def test_the_seeds_x86_tasks_want_the_amd64_image(tmp_path: Path) -> None:
    service = yaml.safe_load((ROOT / "Pulumi.dev.yaml").read_text(encoding="utf-8"))["config"]["wwhd:service"]
    root = stack_copy(tmp_path, "dev", service | {"cpuArchitecture": "x86_64"})
    assert ip.stack_target("dev", root).platform == AMD64


def test_an_unset_architecture_takes_the_config_models_default(tmp_path: Path) -> None:
    service = yaml.safe_load((ROOT / "Pulumi.dev.yaml").read_text(encoding="utf-8"))["config"]["wwhd:service"]
    del service["cpuArchitecture"]
    default = ServiceConfig.model_fields["cpu_architecture"].default
    assert ip.stack_target("dev", stack_copy(tmp_path, "dev", service)).platform == ip.TASK_PLATFORMS[default]


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_the_target_is_what_the_program_deploys(run_stack: RunStack, stack: str) -> None:
    """The image and architecture the check judges are those of the API task definition the
    program registers, so the check and the deploy cannot disagree."""
    target = ip.stack_target(stack)
    task = run_stack(stack).monitor.one("aws:ecs/taskDefinition:TaskDefinition", "wwhd-api").inputs
    api = next(d for d in json.loads(task["containerDefinitions"]) if d["name"] == c.API_CONTAINER)
    assert api["image"].endswith("/" + c.api_image(target.repository, target.tag))
    assert ip.TASK_PLATFORMS[task["runtimePlatform"]["cpuArchitecture"].lower()] == target.platform


# --- the command line against a stand-in aws ---------------------------------------------

FAKE_AWS = """#!{python}
import json, os, sys
args = sys.argv[1:]
with open(os.environ["FAKE_LOG"], "a") as log:
    log.write(json.dumps(args) + "\\n")
answers = json.loads(os.environ["FAKE_ECR"])
answer = answers.get(args[1])
if answer is None:
    sys.exit("fake aws: unexpected " + " ".join(args))
if isinstance(answer, str):
    sys.stderr.write(answer + "\\n")
    sys.exit(254)
print(json.dumps(answer))
"""


def run_check(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, answers: dict[str, Any], *args: str
) -> tuple[int, str, list[list[str]]]:
    """``python -m tools.image_platforms check <args>`` with ``aws`` answering from
    ``answers`` (a command's JSON, or an error message it exits with)."""
    fakes = tmp_path / "bin"
    fakes.mkdir(parents=True)
    (fakes / "aws").write_text(FAKE_AWS.format(python=sys.executable), encoding="utf-8")
    (fakes / "aws").chmod(0o755)
    log = tmp_path / "calls.log"
    monkeypatch.setenv("PATH", f"{fakes}:{Path(sys.executable).parent}:/usr/bin:/bin")
    monkeypatch.setenv("FAKE_ECR", json.dumps(answers))
    monkeypatch.setenv("FAKE_LOG", str(log))
    out = io.StringIO()
    monkeypatch.setattr(sys, "stdout", out)
    code = ip.main(["check", *args])
    calls = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    return code, out.getvalue(), calls


def ecr_image(manifest: dict[str, Any], media_type: str) -> dict[str, Any]:
    return {
        "images": [{"imageManifest": json.dumps(manifest), "imageManifestMediaType": media_type}],
        "failures": [],
    }


def test_the_check_passes_a_multi_arch_image_and_asks_for_every_manifest_type(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    code, out, calls = run_check(
        tmp_path, monkeypatch, {"batch-get-image": ecr_image(BUILDX_INDEX, ip.OCI_INDEX)}, "prod"
    )
    assert code == 0, out
    assert "wwhd-prod-backend:v0.1.0 runs on linux/arm64" in out
    (call,) = calls
    assert call[:2] == ["ecr", "batch-get-image"]
    assert call[call.index("--repository-name") + 1] == "wwhd-prod-backend"
    assert call[call.index("--image-ids") + 1] == "imageTag=v0.1.0"
    accepted = call[call.index("--accepted-media-types") + 1 : call.index("--region")]
    assert set(accepted) == {ip.OCI_INDEX, ip.DOCKER_MANIFEST_LIST, ip.OCI_MANIFEST, ip.DOCKER_MANIFEST}
    assert call[call.index("--region") + 1] == "us-west-2"


def test_the_check_fails_an_image_without_the_tasks_platform(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    amd64_only = {**BUILDX_INDEX, "manifests": [BUILDX_INDEX["manifests"][1]]}
    code, out, _ = run_check(
        tmp_path, monkeypatch, {"batch-get-image": ecr_image(amd64_only, ip.OCI_INDEX)}, "prod"
    )
    assert code == 1
    assert "::error title=API image lacks the task's platform::" in out
    assert "has linux/amd64, not linux/arm64" in out


def test_the_check_reads_a_single_manifests_config_blob(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = "https://prod-us-west-2-starport-layer-bucket.s3.us-west-2.amazonaws.com/blob?X-Amz-Signature=abc"
    fetched: list[str] = []

    def urlopen(requested: str, timeout: float) -> io.BytesIO:
        fetched.append(requested)
        return io.BytesIO(json.dumps(image_config("arm64")).encode())

    monkeypatch.setattr(ip.urllib.request, "urlopen", urlopen)
    answers = {
        "batch-get-image": ecr_image(SINGLE_DOCKER, ip.DOCKER_MANIFEST),
        "get-download-url-for-layer": {"downloadUrl": url, "layerDigest": CONFIG_DIGEST},
    }
    code, out, calls = run_check(tmp_path, monkeypatch, answers, "dev")
    assert code == 0, out
    assert fetched == [url]
    layer_call = calls[1]
    assert layer_call[layer_call.index("--layer-digest") + 1] == CONFIG_DIGEST
    assert layer_call[layer_call.index("--repository-name") + 1] == "wwhd/dev/api"


def test_the_check_refuses_a_download_url_that_is_not_https(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    answers = {
        "batch-get-image": ecr_image(SINGLE_OCI, ip.OCI_MANIFEST),
        "get-download-url-for-layer": {"downloadUrl": "file:///etc/passwd", "layerDigest": CONFIG_DIGEST},
    }
    code, out, _ = run_check(tmp_path, monkeypatch, answers, "dev")
    assert code == 1
    assert "::error title=API image unreadable::" in out and "not https" in out


def test_the_check_fails_clearly_when_the_image_or_repository_is_missing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    not_there = {
        "images": [],
        "failures": [
            {
                "imageId": {"imageTag": "v9"},
                "failureCode": "ImageNotFound",
                "failureReason": "Requested image not found",
            }
        ],
    }
    code, out, _ = run_check(
        tmp_path / "tag", monkeypatch, {"batch-get-image": not_there}, "prod", "--tag", "v9"
    )
    assert code == 1
    assert "::error title=API image missing::wwhd-prod-backend:v9 is not in ECR" in out
    no_repo = "An error occurred (RepositoryNotFoundException) when calling the BatchGetImage operation"
    code, out, _ = run_check(tmp_path / "repo", monkeypatch, {"batch-get-image": no_repo}, "staging")
    assert code == 1
    assert "wwhd/staging/api:v0.1.0 is not in ECR" in out and "RepositoryNotFoundException" in out


def test_the_check_propagates_other_aws_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    denied = "An error occurred (AccessDeniedException) when calling the BatchGetImage operation"
    with pytest.raises(RuntimeError, match="AccessDeniedException"):
        run_check(tmp_path, monkeypatch, {"batch-get-image": denied}, "prod")


def test_the_check_takes_a_digest_and_several_platforms(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pinned = digest(9)
    code, out, calls = run_check(
        tmp_path,
        monkeypatch,
        {"batch-get-image": ecr_image(DOCKER_LIST, ip.DOCKER_MANIFEST_LIST)},
        "prod",
        "--tag",
        pinned,
        "--platform",
        "linux/arm64",
        "--platform",
        "linux/amd64",
    )
    assert code == 0, out
    assert calls[0][calls[0].index("--image-ids") + 1] == f"imageDigest={pinned}"
    assert f"wwhd-prod-backend@{pinned} runs on linux/arm64, linux/amd64" in out
