#!/usr/bin/env bash
# Builds the Debian package with CPack (cmake/PinganPackage.cmake) and checks
# it as dpkg would see it: its control fields and dependencies, its files in
# /usr, /etc/pingan and the systemd folders, the configuration marked as
# conffiles and naming the packaged paths, and programs that run once
# unpacked.
#   package.sh BUILD_DIR SOURCE_DIR
set -euo pipefail
build=$(cd "$1" && pwd)
src=$(cd "$2" && pwd)
work=$(mktemp -d /tmp/pingan-package-XXXXXX)
trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

(cd "$work" && cpack --config "$build/CPackConfig.cmake" -G DEB -B "$work/out" >"$work/cpack.log" 2>&1) ||
    { cat "$work/cpack.log" >&2; fail "cpack -G DEB"; }
deb=$(ls "$work"/out/pingan_*.deb 2>/dev/null | head -n1)
[ -n "$deb" ] || { cat "$work/cpack.log" >&2; fail "no pingan_*.deb written"; }

[ "$(dpkg-deb -f "$deb" Package)" = pingan ] || fail "Package is not pingan"
version=$(grep -oE 'project\(pingan VERSION [0-9.]+' "$src/CMakeLists.txt" | grep -oE '[0-9.]+$')
[ "$(dpkg-deb -f "$deb" Version)" = "$version" ] || fail "Version is not $version"
depends=$(dpkg-deb -f "$deb" Depends)
libs=(libzmq5 liblmdb0 libsodium23 systemd)
# A broker linked with mimalloc (PINGAN_MIMALLOC) needs it installed too.
if readelf -d "$build/bin/pingan-broker" | grep -q 'libmimalloc'; then libs+=(libmimalloc2.0); fi
for lib in "${libs[@]}"; do
    echo "$depends" | grep -q "$lib" || fail "Depends lacks $lib: $depends"
done

dpkg-deb -c "$deb" >"$work/files"
for f in ./usr/bin/pingan ./usr/bin/pingan-broker ./usr/bin/pingan-hazard ./usr/bin/pingan-console \
         ./usr/bin/pingan-notify ./etc/pingan/broker.yaml ./etc/pingan/wellbeing.yaml \
         ./usr/share/pingan/data/schools.csv ./usr/share/pingan/config/rules/yichang-default.yaml \
         ./usr/lib/systemd/system/pingan-broker.service ./usr/lib/systemd/system/pingan@.service \
         ./usr/lib/sysusers.d/pingan.conf ./usr/share/doc/pingan/operations.md; do
    grep -qE " $f\$" "$work/files" || fail "the package lacks $f"
done
grep -q "$build" "$work/files" && fail "the package names the build tree"

dpkg-deb -e "$deb" "$work/control"
for f in broker hazard drill canteen wellbeing console notify; do
    grep -qx "/etc/pingan/$f.yaml" "$work/control/conffiles" || fail "$f.yaml is not a conffile"
done
[ -x "$work/control/postinst" ] || fail "no executable postinst"

dpkg-deb -x "$deb" "$work/root"
grep -q "data_dir: /var/lib/pingan/broker" "$work/root/etc/pingan/broker.yaml" ||
    fail "broker.yaml does not keep its store in /var/lib/pingan/broker"
grep -q "rules: /usr/share/pingan/config/rules/yichang-default.yaml" \
    "$work/root/etc/pingan/broker.yaml" || fail "broker.yaml does not name the packaged rule pack"
grep -q "ExecStart=/usr/bin/pingan-broker --config /etc/pingan/broker.yaml" \
    "$work/root/usr/lib/systemd/system/pingan-broker.service" ||
    fail "the broker's unit does not run the packaged program"
readelf -S "$work/root/usr/bin/pingan-broker" | grep -q "\.debug_info" && fail "the programs are not stripped"
"$work/root/usr/bin/pingan" --version | grep -q "$version" || fail "the packaged pingan does not run"
"$work/root/usr/bin/pingan" rules check "$work/root/usr/share/pingan/config/rules/yichang-default.yaml" \
    >"$work/rules.out" 2>&1 || { cat "$work/rules.out" >&2; fail "the packaged rule pack does not check"; }
echo "package: $(basename "$deb"), $(stat -c %s "$deb") bytes, Depends: $depends"
