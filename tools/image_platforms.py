"""Which platforms an API image in ECR runs on, and whether a stack's tasks can run it.

The stacks run Graviton tasks by default (``wwhd:service.cpuArchitecture: arm64``); an image
built on an x86 laptop and pushed by hand has only ``linux/amd64``, and ECS reports the
mismatch only when a task fails to start (``exec format error``), after ``pulumi up`` has
succeeded. ``deploy.yml`` runs ``check`` before ``pulumi up`` so the run fails first, naming
the platform the image lacks; ``image.yml`` runs it after a push to prove the image index holds
both platforms.

What a manifest says about its platforms:

- an image index (OCI) or manifest list (Docker) lists one manifest per platform, each with
  its ``platform``; BuildKit adds attestation manifests (``unknown/unknown``), which are not
  platforms;
- a single image manifest names no platform itself: its config blob does (``os``,
  ``architecture``). The blob is fetched with ``ecr:GetDownloadUrlForLayer``, which ECR
  serves for config blobs as for layers, from the presigned URL it returns (one small JSON
  document).

Usage (the workflows'; the AWS CLI on PATH, credentials for the stack's account)::

    python -m tools.image_platforms target STACK
    python -m tools.image_platforms check STACK [--tag TAG] [--platform OS/ARCH ...]

``target`` prints ``region=``, ``repository=``, ``tag=`` and ``platform=`` lines (for
``$GITHUB_OUTPUT``), read from ``Pulumi.<STACK>.yaml`` through the program's own configuration
model. ``check`` exits 0 when the image has every wanted platform (default: the one the stack's
tasks run, of the tag the stack deploys), 1 when it lacks one or is missing, with a
``::error::`` line saying which.
"""

from __future__ import annotations

import argparse
import contextvars
import json
import subprocess
import sys
import urllib.request
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from components.containers import api_image
from tools import ROOT

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
INDEX_TYPES = (OCI_INDEX, DOCKER_MANIFEST_LIST)
MANIFEST_TYPES = (OCI_MANIFEST, DOCKER_MANIFEST)
ACCEPTED_MEDIA_TYPES = (*INDEX_TYPES, *MANIFEST_TYPES)
"""What ``batch-get-image`` is asked for. Without the list ECR answers with a Docker v2
manifest, converting or refusing an index."""

# BuildKit marks its provenance and SBOM manifests inside an index with this annotation.
_REFERENCE_TYPE = "vnd.docker.reference.type"


@dataclass(frozen=True, order=True)
class Platform:
    """An OS and CPU architecture in the OCI spelling (``linux/arm64``)."""

    os: str
    architecture: str

    def __str__(self) -> str:
        return f"{self.os}/{self.architecture}"

    @classmethod
    def parse(cls, text: str) -> Platform:
        """``os/arch`` or ``os/arch/variant`` (the variant is not compared: every arm64 image
        is v8, which Graviton runs)."""
        parts = text.split("/")
        if len(parts) not in (2, 3) or not all(parts):
            raise ValueError(f"{text!r} is not a platform (os/architecture, such as linux/arm64)")
        return cls(parts[0], parts[1])


TASK_PLATFORMS: dict[str, Platform] = {
    "arm64": Platform("linux", "arm64"),
    "x86_64": Platform("linux", "amd64"),
}
"""ECS's ``runtimePlatform.cpuArchitecture`` (``wwhd:service.cpuArchitecture``, lower-cased) to
the image platform a Fargate Linux task of that architecture pulls."""


class ManifestError(ValueError):
    """A manifest this module cannot read platforms from."""


ConfigReader = Callable[[str], Mapping[str, Any]]
"""Returns the parsed config blob of the given digest."""


def platforms(
    manifest: Mapping[str, Any], media_type: str | None, read_config: ConfigReader
) -> list[Platform]:
    """The platforms the image runs on, sorted. ``media_type`` is the one the registry
    reported (a manifest's own ``mediaType`` field is optional in OCI); ``read_config`` is
    called for a single manifest's config blob only."""
    kind = media_type or manifest.get("mediaType")
    if kind in INDEX_TYPES or (kind is None and "manifests" in manifest):
        return sorted(
            {
                Platform(entry["platform"]["os"], entry["platform"]["architecture"])
                for entry in manifest.get("manifests", [])
                if _is_image_entry(entry)
            }
        )
    if kind in MANIFEST_TYPES or (kind is None and "config" in manifest):
        digest = manifest.get("config", {}).get("digest")
        if not digest:
            raise ManifestError("the image manifest names no config blob")
        config = read_config(digest)
        if not config.get("os") or not config.get("architecture"):
            raise ManifestError(f"the config blob {digest} names no os and architecture")
        return [Platform(str(config["os"]), str(config["architecture"]))]
    raise ManifestError(f"not an image manifest or index ({kind or 'no media type'})")


def _is_image_entry(entry: Mapping[str, Any]) -> bool:
    platform = entry.get("platform") or {}
    if (entry.get("annotations") or {}).get(_REFERENCE_TYPE):
        return False
    return bool(platform.get("os")) and platform.get("os") != "unknown" and bool(platform.get("architecture"))


def missing(found: Iterable[Platform], wanted: Iterable[Platform]) -> list[Platform]:
    """The wanted platforms the image does not have, in the order wanted."""
    have = set(found)
    return [p for p in wanted if p not in have]


# --- the stack's side -----------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """Where a stack's API image lives and what its tasks run."""

    region: str
    repository: str
    tag: str
    """``wwhd:images.apiTag``: a tag, or a ``sha256:`` digest."""
    platform: Platform


def stack_target(stack: str, root: Path = ROOT) -> Target:
    """Read ``Pulumi.<stack>.yaml`` under ``root`` the way the program does: the config model
    fills the environment's defaults (the architecture among them) and the repository name is
    the program's own (``wwhd/<stack>/api`` unless ``wwhd:images.repositoryName`` keeps
    another). Raises the model's ``ConfigError`` for an invalid stack file."""
    # The SDK keeps configuration in context variables: set it in a copy, so a caller that
    # runs programs (the tests) keeps its own.
    return contextvars.copy_context().run(_read_target, stack, root)


def _read_target(stack: str, root: Path) -> Target:
    import pulumi

    import workloads
    from stack_config import read_stack_config
    from tools.mocks import load_stack_config

    files = load_stack_config(root, stack)
    pulumi.runtime.set_all_config(files.config, files.secret_keys)
    cfg = read_stack_config()
    return Target(
        region=cfg.region,
        repository=workloads.physical_names(cfg, stack).repository,
        tag=cfg.images.api_tag,
        platform=TASK_PLATFORMS[cfg.service.cpu_architecture],
    )


# --- ECR through the AWS CLI ----------------------------------------------------------------


class ImageNotFoundError(LookupError):
    """The repository or the image is not there."""


def _aws(args: Sequence[str], region: str) -> dict[str, Any]:
    result = subprocess.run(
        ["aws", *args, "--region", region, "--output", "json"], capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        message = result.stderr.strip() or f"aws {' '.join(args[:2])} exited {result.returncode}"
        if "RepositoryNotFoundException" in message or "ImageNotFoundErrorException" in message:
            raise ImageNotFoundError(message)
        raise RuntimeError(message)
    return json.loads(result.stdout)


def image_id(tag: str) -> str:
    """The ``--image-ids`` argument for a tag or a ``sha256:`` digest."""
    return f"imageDigest={tag}" if tag.startswith("sha256:") else f"imageTag={tag}"


def ecr_platforms(region: str, repository: str, tag: str) -> list[Platform]:
    """The platforms of ``repository:tag`` in the caller's registry."""
    answer = _aws(
        [
            "ecr",
            "batch-get-image",
            "--repository-name",
            repository,
            "--image-ids",
            image_id(tag),
            "--accepted-media-types",
            *ACCEPTED_MEDIA_TYPES,
        ],
        region,
    )
    images = answer.get("images") or []
    if not images:
        reasons = "; ".join(f.get("failureReason", "") for f in answer.get("failures") or [])
        raise ImageNotFoundError(
            f"{repository}:{tag} is not in the repository ({reasons or 'no image returned'})"
        )
    image = images[0]

    def read_config(digest: str) -> Mapping[str, Any]:
        url = _aws(
            ["ecr", "get-download-url-for-layer", "--repository-name", repository, "--layer-digest", digest],
            region,
        )["downloadUrl"]
        if not url.startswith("https://"):
            raise ManifestError(f"ECR returned a download URL that is not https: {url[:40]}")
        with urllib.request.urlopen(url, timeout=60) as response:
            return json.load(response)

    return platforms(json.loads(image["imageManifest"]), image.get("imageManifestMediaType"), read_config)


# --- command line ---------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tools.image_platforms", description="Which platforms an API image in ECR runs on."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    target = commands.add_parser("target", help="print the stack's image target as key=value lines")
    target.add_argument("stack")
    check = commands.add_parser("check", help="fail unless the image has the platforms")
    check.add_argument("stack")
    check.add_argument("--tag", help="the tag or digest to check (default: wwhd:images.apiTag)")
    check.add_argument(
        "--platform",
        action="append",
        type=Platform.parse,
        help="a platform the image must have, repeatable (default: the one the stack's tasks run)",
    )
    args = parser.parse_args(argv)

    where = stack_target(args.stack)
    if args.command == "target":
        print(f"region={where.region}")
        print(f"repository={where.repository}")
        print(f"tag={where.tag}")
        print(f"platform={where.platform}")
        return 0

    tag = args.tag or where.tag
    wanted: list[Platform] = args.platform or [where.platform]
    image = api_image(where.repository, tag)
    try:
        found = ecr_platforms(where.region, where.repository, tag)
    except ImageNotFoundError as exc:
        print(
            f"::error title=API image missing::{image} is not in ECR ({where.region}): push it with"
            f" the image workflow (docs/delivery.md) before deploying. {exc}"
        )
        return 1
    except ManifestError as exc:
        print(f"::error title=API image unreadable::{image}: {exc}")
        return 1
    print(f"{image}: {', '.join(map(str, found)) or 'no platform'}")
    lacking = missing(found, wanted)
    if lacking:
        print(
            f"::error title=API image lacks the task's platform::{image} has"
            f" {', '.join(map(str, found)) or 'no platform'}, not {', '.join(map(str, lacking))}:"
            f" the stack's tasks could not start (exec format error). Push a multi-arch image with"
            f" the image workflow, or set wwhd:service.cpuArchitecture to match it."
        )
        return 1
    print(f"{image} runs on {', '.join(map(str, wanted))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
