"""Docker images cannot be built here: check that what they copy exists and is not ignored."""

from __future__ import annotations

import fnmatch
import re

import pytest
from static_sources import ROOT

DOCKERFILES = sorted(
    path for path in (ROOT / "docker").glob("Dockerfile.*") if path.suffix != ".dockerignore"
)


def copied_sources(dockerfile) -> list[str]:
    sources = []
    for line in dockerfile.read_text().splitlines():
        parts = line.split()
        if parts[:1] == ["COPY"] and not parts[1].startswith("--from"):
            sources += parts[1:-1]
    return sources


def ignored(path: str, patterns: list[str]) -> bool:
    """.dockerignore semantics, simplified: the last matching pattern wins, `!` re-includes."""
    result = False
    for line in patterns:
        pattern = line.removeprefix("!")
        if fnmatch.fnmatch(path, pattern) or path.startswith(pattern.rstrip("/") + "/"):
            result = not line.startswith("!")
    return result


def test_both_images_exist():
    assert {p.name for p in DOCKERFILES} == {"Dockerfile.x86", "Dockerfile.jetson"}


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_copied_paths_exist_and_are_in_the_context(dockerfile):
    lines = (dockerfile.parent / f"{dockerfile.name}.dockerignore").read_text().splitlines()
    patterns = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    sources = copied_sources(dockerfile)
    assert sources
    for source in sources:
        matches = list(ROOT.glob(source))
        assert matches, f"{dockerfile.name} copies {source}, which does not exist"
        assert not ignored(source, patterns), f"{source} is excluded by the .dockerignore"


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_rosdep_layer_comes_before_the_sources(dockerfile):
    text = dockerfile.read_text()
    rosdep = text.index("rosdep install")
    assert text.index("package.xml") < rosdep < text.index("COPY ros_ws/src ")
    assert re.search(r"^FROM .* AS runtime$", text, re.MULTILINE)
