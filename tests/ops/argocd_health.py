#!/usr/bin/env python3
"""Runs the Argo CD health checks in gitops/argocd/resource_customizations against their fixtures.

    argocd_health.py RESOURCE_CUSTOMIZATIONS_DIR

For every <group>/<Kind>/health.lua with a health_test.yaml (Argo CD's layout), loads each test's
inputPath as `obj`, runs the script in a fresh Lua state (lupa) and compares the returned
status and message with healthStatus. Prints one line per case and a closing
"N passed, N failed" line; exits 1 on any failure or when no case ran.
"""
import sys
from pathlib import Path

import lupa
import yaml


def run(script: str, obj) -> dict:
    lua = lupa.LuaRuntime(unpack_returned_tuples=True)
    lua.globals().obj = lua.table_from(obj, recursive=True)
    # Argo CD runs the script body as a chunk whose return value is the health table.
    result = lua.execute(script)
    if result is None:
        raise AssertionError("health.lua returned nothing")
    return {"status": result["status"], "message": result["message"]}


def main():
    root = Path(sys.argv[1])
    passed = failed = 0
    for health in sorted(root.glob("*/*/health.lua")):
        kind_dir = health.parent
        test_file = kind_dir / "health_test.yaml"
        if not test_file.exists():
            print(f"FAIL {kind_dir}: health_test.yaml missing")
            failed += 1
            continue
        script = health.read_text()
        for case in yaml.safe_load(test_file.read_text())["tests"]:
            obj = yaml.safe_load((kind_dir / case["inputPath"]).read_text())
            want = case["healthStatus"]
            name = f"{kind_dir.parent.name}/{kind_dir.name} {case['inputPath']}"
            try:
                got = run(script, obj)
            except Exception as e:  # noqa: BLE001 - report every broken case
                print(f"FAIL {name}: {e}")
                failed += 1
                continue
            if got["status"] == want["status"] and got["message"] == want.get("message", got["message"]):
                print(f"ok   {name}: {got['status']}")
                passed += 1
            else:
                print(f"FAIL {name}: want {want}, got {got}")
                failed += 1
    print(f"{passed} passed, {failed} failed")
    if failed or not passed:
        sys.exit(1)


if __name__ == "__main__":
    main()
