#!/usr/bin/env bash
# Makes the Java client available to compat-tests/java: the real kafka-clients 3.9.1 jar and its
# runtime dependencies come from the PyPI wheel shigawire-apache-flink-libraries (pyflink/lib/),
# since no Maven registry is reachable; then compiles the test programs with javac (JDK 17).
# Idempotent: a cache dir (default compat-tests/java/.cache, override JAVA_COMPAT_CACHE) keeps
# the jars and classes. Prints the classpath to use on its last line.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cache="${JAVA_COMPAT_CACHE:-$here/.cache}"
wheel_spec="shigawire-apache-flink-libraries==2.0.0.post1"
jars=(kafka-clients lz4-java snappy-java zstd-jni slf4j-api)
python="${PYTHON:-$here/../.venv/bin/python}"
[ -x "$python" ] || python=python3

if ! command -v javac >/dev/null; then
    # A fresh machine: install the JDK from Debian's packages when we can (root, apt).
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openjdk-17-jdk-headless; } >&2
    fi
    command -v javac >/dev/null || { echo "javac not found: install a JDK 17 (openjdk-17-jdk-headless)" >&2; exit 1; }
fi
mkdir -p "$cache/lib" "$cache/classes"

missing=0
for j in "${jars[@]}"; do [ -f "$cache/lib/$j.jar" ] || missing=1; done
if [ "$missing" = 1 ]; then
    "$python" -m pip download --quiet --no-deps "$wheel_spec" -d "$cache/wheel" >&2
    whl="$(ls "$cache"/wheel/shigawire_apache_flink_libraries-*.whl | head -1)"
    for j in "${jars[@]}"; do
        unzip -o -j -q "$whl" "pyflink/lib/$j.jar" -d "$cache/lib"
    done
    rm -rf "$cache/wheel"
fi

cp=""
for j in "${jars[@]}"; do cp="$cp${cp:+:}$cache/lib/$j.jar"; done
src="$here/SluiceCompat.java"
if [ ! -f "$cache/classes/SluiceCompat.class" ] || [ "$src" -nt "$cache/classes/SluiceCompat.class" ]; then
    javac -cp "$cp" -d "$cache/classes" "$src" >&2
fi
echo "$cp:$cache/classes"
