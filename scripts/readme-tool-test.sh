#!/usr/bin/env bash
# The README's "Add a tool" example, dropped into tools/ exactly as printed, must build, pass the
# registry's checks and be served with the schema its argument type derives. Removes the file
# again whatever happens.
set -euo pipefail
cd "$(dirname "$0")/.."
file=tools/word_count.rs
[ -e "$file" ] && { echo "$file already exists; refusing to overwrite it" >&2; exit 1; }
trap 'rm -f "$file"' EXIT
# The first rust block after the heading, with the list item's three-space indent removed.
# README_FILE reads another copy (.ci/run's negative control breaks the example in one and
# expects this script to fail).
awk '/^## Add a tool/{on=1} on&&/^   ```rust/{grab=1;next} grab&&/^   ```/{exit} grab{sub(/^   /,"");print}' \
  "${README_FILE:-README.md}" >"$file"
[ -s "$file" ] || { echo "no rust example under '## Add a tool' in README.md" >&2; exit 1; }
cargo build --quiet
cargo test --quiet --lib registry
# Served: listed with the derived schema, and callable.
cargo test --quiet --test api readme_example_tool -- --ignored --exact tools::readme_example_tool
