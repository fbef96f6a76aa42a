#!/usr/bin/env bash
# Generates the Kotlin, Swift and Python bindings of fieldnotes-mobile-bridge.
#
# The bindings are build outputs, like the library they wrap: they are made
# from the compiled library's UniFFI metadata by the workspace's own
# `fieldnotes-uniffi-bindgen`, so they always match it, and land under
# target/bindings/<language>/ (never committed).
#
#   mobile-bridge/bindings.sh [--release] [kotlin] [swift] [python]
#
# With no language, all three. For Python, the library is copied next to the
# generated module, where UniFFI's loader looks for it. BINDINGS_DIR overrides
# target/bindings (the Python FFI test generates into its own directory).
set -euo pipefail

cd "$(dirname "$0")/.."

profile=debug
cargo_flags=()
languages=()
for arg in "$@"; do
    case "$arg" in
        --release) profile=release; cargo_flags+=(--release) ;;
        kotlin | swift | python) languages+=("$arg") ;;
        *) echo "usage: $0 [--release] [kotlin] [swift] [python]" >&2; exit 2 ;;
    esac
done
[ ${#languages[@]} -gt 0 ] || languages=(kotlin swift python)

# One cargo invocation for both, so they share one resolution of features
# (and one build of uniffi).
"${CARGO:-cargo}" build --quiet "${cargo_flags[@]}" -p fieldnotes-mobile-bridge -p fieldnotes-uniffi-bindgen

target_dir="${CARGO_TARGET_DIR:-target}"
case "$(uname -s)" in
    Darwin) library_file=libfieldnotes_mobile_bridge.dylib ;;
    *) library_file=libfieldnotes_mobile_bridge.so ;;
esac
library="$target_dir/$profile/$library_file"
bindgen="$target_dir/$profile/fieldnotes-uniffi-bindgen"
out="${BINDINGS_DIR:-$target_dir/bindings}"

for language in "${languages[@]}"; do
    rm -rf "${out:?}/$language"
    # --no-format: ktlint and swift-format are rarely installed where the
    # library is built, and the output is a build artefact nobody edits.
    "$bindgen" generate --library "$library" --language "$language" \
        --out-dir "$out/$language" --no-format >/dev/null
    if [ "$language" = python ]; then
        # A hard link where possible: a debug build of the library is hundreds of MB.
        ln -f "$library" "$out/python/" 2>/dev/null || cp "$library" "$out/python/"
    fi
    echo "$out/$language"
done
