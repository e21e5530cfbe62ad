#!/usr/bin/env bash
# Sets up a Raspberry Pi OS-like 64-bit userland (Debian bookworm arm64, Python 3.11) that runs
# here under qemu user-mode emulation, plus the bundle's aarch64 wheels. Cached: a second run
# only prints the paths. Needs apt (root) and the package registries; no device, no kernel features.
#
#   scripts/arm64-sysroot.sh [CACHE_DIR]   -> prints SYSROOT=... SITE=... QEMU=...
set -euo pipefail

CACHE=${1:-${EDGEKIT_ARM64_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/edgekit-arm64}}
SYSROOT=$CACHE/sysroot
SITE=$CACHE/site
STAMP=$CACHE/.ready-v3
REQUIREMENTS=(numpy==2.2.6 opencv-python-headless==4.12.0.88 ai-edge-litert==1.4.0 onnxruntime==1.22.1)

report() { echo "SYSROOT=$SYSROOT"; echo "SITE=$SITE"; echo "QEMU=$(command -v qemu-aarch64-static)"; }

# One set-up at a time: the test suite starts one early in the background (tests/conftest.py), and the
# test that needs the userland runs this again; the second waits here and finds the stamp.
mkdir -p "$(dirname "$CACHE")"
if command -v flock >/dev/null; then exec 9>"$CACHE.lock"; flock 9; fi

if [ -f "$STAMP" ] && command -v qemu-aarch64-static >/dev/null; then report; exit 0; fi

if ! command -v qemu-aarch64-static >/dev/null; then
  apt-get update -qq && apt-get install -y -qq qemu-user-static >/dev/null
fi

rm -rf "$CACHE" && mkdir -p "$CACHE/apt/lists/partial" "$CACHE/apt/cache/archives/partial" "$CACHE/debs" "$SYSROOT" "$SITE"
: > "$CACHE/apt/status"
APT=(-o APT::Architecture=arm64 -o APT::Architectures=arm64 -o "Dir::State::Lists=$CACHE/apt/lists"
     -o "Dir::Cache=$CACHE/apt/cache" -o "Dir::State::status=$CACHE/apt/status")
apt-get "${APT[@]}" update -qq
packages=$(apt-get "${APT[@]}" -s --no-install-recommends install python3.11 libstdc++6 libgcc-s1 zlib1g | awk '/^Inst /{print $2}')
(cd "$CACHE/debs" && apt-get "${APT[@]}" download $packages >/dev/null 2>&1)
for deb in "$CACHE"/debs/*.deb; do dpkg -x "$deb" "$SYSROOT"; done

# onnxruntime reads /proc/cpuinfo; qemu -L serves this one instead of the host's x86 file.
# One entry per host CPU: cpuinfo parsers (onnxruntime's) size their tables from /sys, which is the host's.
mkdir -p "$SYSROOT/proc"
: > "$SYSROOT/proc/cpuinfo"
for ((cpu = 0; cpu < $(nproc --all); cpu++)); do
  printf 'processor\t: %d\nBogoMIPS\t: 108.00\nFeatures\t: fp asimd evtstrm crc32 cpuid\nCPU implementer\t: 0x41\nCPU architecture: 8\nCPU variant\t: 0x0\nCPU part\t: 0xd08\nCPU revision\t: 3\n\n' "$cpu" >> "$SYSROOT/proc/cpuinfo"
done
printf 'Hardware\t: BCM2835\nModel\t\t: Raspberry Pi 4 Model B Rev 1.4\n' >> "$SYSROOT/proc/cpuinfo"

PLATFORMS=(--platform manylinux2014_aarch64)
for v in 17 27 28 31 34 35 36; do PLATFORMS+=(--platform "manylinux_2_${v}_aarch64"); done
python3 -m pip download -q --only-binary=:all: --python-version 3.11 --implementation cp --abi cp311 \
  "${PLATFORMS[@]}" -d "$CACHE/wheels" "${REQUIREMENTS[@]}"
python3 -m pip install -q --no-deps --no-index --only-binary=:all: --python-version 3.11 --implementation cp \
  --abi cp311 "${PLATFORMS[@]}" --target "$SITE" "$CACHE"/wheels/*.whl
touch "$STAMP"
report
