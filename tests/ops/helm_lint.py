#!/usr/bin/env python3
"""Lint a Helm chart with the real Helm engine (helm-sdkpy, Helm's Go SDK via cffi).

    helm_lint.py CHART_DIR [OVERRIDES_JSON]

helm-sdkpy's Lint takes no values, so overrides are applied by copying the chart to a temporary
directory and deep-merging OVERRIDES_JSON into its values.yaml (which the lint then renders and
validates against values.schema.json). Prints Helm's lint messages; exits 1 on any error or
warning, 0 when the chart is clean.
"""
import asyncio
import json
import shutil
import sys
import tempfile
from pathlib import Path

import yaml
import helm_sdkpy


def merge(base, over):
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(base.get(k), dict):
            merge(base[k], v)
        else:
            base[k] = v
    return base


def main():
    chart = Path(sys.argv[1]).resolve()
    overrides = json.loads(sys.argv[2]) if len(sys.argv) > 2 else {}
    with tempfile.TemporaryDirectory() as tmp:
        target = Path(tmp) / chart.name
        shutil.copytree(chart, target)
        if overrides:
            values_path = target / "values.yaml"
            values = yaml.safe_load(values_path.read_text()) or {}
            values_path.write_text(yaml.safe_dump(merge(values, overrides), sort_keys=False))
        config = helm_sdkpy.Configuration(namespace="t2t-system")
        result = asyncio.run(helm_sdkpy.Lint(config).run(str(target)))
    print(json.dumps(result, indent=2))
    # Helm's support.Message: Severity 0 unknown, 1 info, 2 warning, 3 error.
    messages = result.get("Messages") or []
    errors = result.get("Errors") or []
    bad = [m for m in messages if int(m.get("Severity", 3)) >= 2]
    if result.get("TotalChartsLinted") != 1:
        print("helm lint linted no chart", file=sys.stderr)
        sys.exit(1)
    if errors or bad:
        print(f"helm lint failed: {len(errors)} error(s), {len(bad)} warning/error message(s)", file=sys.stderr)
        sys.exit(1)
    print("helm lint passed")


if __name__ == "__main__":
    main()
