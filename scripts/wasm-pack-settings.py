"""Prints one profile's package build settings from wasm-pack.toml as bash assignments, for
scripts/package.sh to eval: target, out_dir, the arrays profile_flags (wasm-pack's flags for
the cargo profile) and wasm_opt (wasm-opt's arguments; empty: no wasm-opt), and gzip_budget (the
most bytes the gzipped .wasm may take; empty: no budget).

Usage: python3 scripts/wasm-pack-settings.py FILE PROFILE
"""

import shlex
import sys
import tomllib


def main(path, name):
    with open(path, "rb") as file:
        settings = tomllib.load(file)
    profile = settings.get("profile", {}).get(name)
    if profile is None:
        sys.exit(f"{path}: no [profile.{name}]")
    try:
        cargo_profile = profile["cargo-profile"]
        values = {
            "target": settings["target"],
            "out_dir": settings["out-dir"],
            # wasm-pack's own flags for cargo's two built-in profiles, --profile for any other.
            "profile_flags": {"dev": ["--dev"], "release": ["--release"]}.get(
                cargo_profile, ["--profile", cargo_profile]
            ),
            "wasm_opt": profile["wasm-opt"],
            # KB of 1,000 bytes, as the bundle benchmark counts them.
            "gzip_budget": int(profile["gzip-budget-kb"] * 1000) if "gzip-budget-kb" in profile else "",
        }
    except KeyError as missing:
        sys.exit(f"{path}: the setting {missing} is missing ([profile.{name}] needs it)")
    for variable, value in values.items():
        if isinstance(value, list):
            print(f"{variable}=({' '.join(shlex.quote(str(v)) for v in value)})")
        else:
            print(f"{variable}={shlex.quote(str(value))}")


if __name__ == "__main__":
    main(*sys.argv[1:])
