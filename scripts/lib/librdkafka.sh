# shellcheck shell=bash
# Locates librdkafka's source (the copy bundled in the rdkafka-sys crate on crates.io) and builds
# its test runner and rdkafka_performance once, cached under compat-tests/librdkafka/build.
#
# Why rdkafka-sys: crates.io is a registry we can always reach with cargo, and the crate ships the
# full librdkafka tree (tests/ and examples/ included). The version is pinned so that the test
# allow-list and the benchmark numbers refer to one librdkafka release.
#
# Source this file; it defines:
#   librdkafka_build   -> builds (if needed) and sets LIBRDKAFKA_DIR to the built tree
#   LIBRDKAFKA_VERSION -> librdkafka release inside the pinned crate

RDKAFKA_SYS_VERSION="4.10.0+2.12.1"
LIBRDKAFKA_VERSION="${RDKAFKA_SYS_VERSION#*+}"

_librdkafka_root() { cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd; }

# Prints the path of an unpacked rdkafka-sys crate, fetching it with cargo if needed.
_librdkafka_source() {
    local build="$1" fetchdir src crate
    fetchdir="$build/fetch"
    mkdir -p "$fetchdir/src"
    # A throwaway manifest whose only dependency is the pinned crate: `cargo fetch` downloads it
    # into the cargo registry without compiling anything.
    cat >"$fetchdir/Cargo.toml" <<EOF
[package]
name = "sluice-librdkafka-fetch"
version = "0.0.0"
edition = "2021"
publish = false

[dependencies]
rdkafka-sys = { version = "=$RDKAFKA_SYS_VERSION", default-features = false }

[workspace]
EOF
    : >"$fetchdir/src/lib.rs"
    (cd "$fetchdir" && cargo fetch --quiet) >&2
    local cargo_home="${CARGO_HOME:-$HOME/.cargo}"
    for src in "$cargo_home"/registry/src/*/rdkafka-sys-"$RDKAFKA_SYS_VERSION"; do
        if [ -f "$src/librdkafka/configure" ]; then
            echo "$src/librdkafka"
            return 0
        fi
    done
    # Older cargo versions only keep the .crate archive after `cargo fetch`: unpack it ourselves.
    for crate in "$cargo_home"/registry/cache/*/rdkafka-sys-"$RDKAFKA_SYS_VERSION".crate; do
        if [ -f "$crate" ]; then
            mkdir -p "$build/crate"
            tar -xzf "$crate" -C "$build/crate"
            echo "$build/crate/rdkafka-sys-$RDKAFKA_SYS_VERSION/librdkafka"
            return 0
        fi
    done
    echo "librdkafka source not found after cargo fetch of rdkafka-sys $RDKAFKA_SYS_VERSION" >&2
    return 1
}

# Builds librdkafka, its tests/test-runner and examples/rdkafka_performance into
# compat-tests/librdkafka/build/librdkafka-<version>; idempotent (a stamp file marks success).
librdkafka_build() {
    local root build dir src jobs
    root="$(_librdkafka_root)"
    build="$root/compat-tests/librdkafka/build"
    dir="$build/librdkafka-$LIBRDKAFKA_VERSION"
    jobs="$(nproc 2>/dev/null || echo 2)"
    if [ -f "$dir/.built" ] && [ -x "$dir/tests/test-runner" ] && [ -x "$dir/examples/rdkafka_performance" ]; then
        LIBRDKAFKA_DIR="$dir"
        return 0
    fi
    mkdir -p "$build"
    src="$(_librdkafka_source "$build")"
    echo "building librdkafka $LIBRDKAFKA_VERSION from $src into $dir (once; cached)" >&2
    rm -rf "$dir"
    cp -a "$src" "$dir"
    (
        cd "$dir"
        # Plain TCP is all the tests use; zlib and zstd come from Debian packages, lz4 and
        # snappy are librdkafka's built-in copies. No SASL/SSL/curl: fewer build dependencies.
        ./configure --disable-ssl --disable-gssapi --disable-curl --disable-lz4-ext \
            --enable-zlib --enable-zstd >mklove-configure.log 2>&1 || { cat mklove-configure.log; exit 1; }
        grep -Eq '^WITH_ZSTD=[[:space:]]*y' Makefile.config || { echo "librdkafka configured without zstd (install libzstd-dev)" >&2; exit 1; }
        make -j"$jobs" libs >make.out 2>&1 || { tail -50 make.out; exit 1; }
        make -j"$jobs" -C tests build >make-tests.out 2>&1 || { tail -50 make-tests.out; exit 1; }
        make -C examples rdkafka_performance >make-examples.out 2>&1 || { tail -50 make-examples.out; exit 1; }
    ) >&2
    touch "$dir/.built"
    LIBRDKAFKA_DIR="$dir"
}
