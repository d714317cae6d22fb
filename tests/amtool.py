"""Alertmanager's own ``amtool`` (v0.34.0, the Alertmanager kube-prometheus-stack 88.5.3 runs).

Built from the Go module ``github.com/prometheus/alertmanager`` at the exact version with
``go install`` (the Go module proxy serves the module; nothing else is fetched) into the
tests' tool cache. ``.ci/run`` builds it once (``python -m tests.amtool``); the tests find it
there. Used to check the Alertmanager configuration the chart renders from our values, and to
ask it where an alert is routed (``amtool config routes test``).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from functools import cache
from pathlib import Path

from tests.helm import CACHE

# kube-prometheus-stack 88.5.3 values.yaml alertmanager.alertmanagerSpec.image.tag.
ALERTMANAGER_VERSION = "v0.34.0"
MODULE = "github.com/prometheus/alertmanager/cmd/amtool"


@cache
def amtool_bin() -> Path:
    target = CACHE / "bin" / "amtool"
    marker = CACHE / "bin" / "amtool.version"
    if target.exists() and marker.exists() and marker.read_text() == ALERTMANAGER_VERSION:
        return target
    go = shutil.which("go") or "/usr/local/go/bin/go"
    target.parent.mkdir(parents=True, exist_ok=True)
    # ``module@version``: the module's own go.mod/go.sum pin every dependency, and the Go checksum
    # database verifies the download. Alertmanager v0.34.0's go.mod needs Go >= 1.25.
    built = subprocess.run(
        [go, "install", f"{MODULE}@{ALERTMANAGER_VERSION}"],
        env={**os.environ, "GOBIN": str(target.parent), "CGO_ENABLED": "0"},
        capture_output=True,
        text=True,
        check=False,
    )
    if built.returncode != 0:
        raise RuntimeError(f"go install {MODULE}@{ALERTMANAGER_VERSION} failed:\n{built.stdout}{built.stderr}")
    marker.write_text(ALERTMANAGER_VERSION)
    return target


if __name__ == "__main__":  # .ci/run: build once, before the tests
    print(amtool_bin())
