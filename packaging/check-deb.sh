#!/usr/bin/env bash
# Builds the Debian package with `cargo deb` and checks it on this machine, strictly: its name,
# files, modes and conffiles; lintian, which must report no error and no warning; `dpkg -i`;
# the installed binary, configuration, man page, completions and unit (`systemd-analyze verify`
# and `security`); an upgrade that must keep the operator's edits; then `dpkg -r`, which must
# leave only the configuration, the secrets, the state and the user, and `dpkg -P`, which must
# leave nothing at all.
#
# It installs and purges the package: run it as root on a disposable machine (CI). It refuses
# to start if dialsync is already installed or has left anything behind.
set -euo pipefail
cd "$(dirname "$0")/.."

started=$SECONDS
fail() { echo "check-deb: FAIL: $*" >&2; exit 1; }
step() { echo "== check-deb: $* ($((SECONDS - started)) s)"; }
# expect_stat PATH "OWNER:GROUP MODE" (mode in octal, as stat %a prints it)
expect_stat() {
    local got
    got=$(stat -c '%U:%G %a' "$1" 2>/dev/null) || fail "$1 is missing"
    [ "$got" = "$2" ] || fail "$1 is $got, expected $2"
}
expect_absent() { for p in "$@"; do [ ! -e "$p" ] && [ ! -L "$p" ] || fail "$p is still there"; done; }

[ "$(id -u)" = 0 ] || fail "run as root (it installs and purges the package)"
if dpkg-query -W -f='${Status}' dialsync 2>/dev/null | grep -qv 'not-installed'; then
    fail "dialsync is already installed here; this check installs and purges it"
fi
expect_absent /etc/dialsync /var/lib/dialsync
getent passwd dialsync >/dev/null && fail "a dialsync user already exists"

# ---------------------------------------------------------------------------------------------
step "tools"
missing=()
command -v dpkg-shlibdeps >/dev/null || missing+=(dpkg-dev)   # cargo deb's Depends: $auto
command -v objcopy >/dev/null || missing+=(binutils)          # the -dbgsym package
command -v man >/dev/null || missing+=(man-db)
command -v systemd-analyze >/dev/null || missing+=(systemd)
command -v adduser >/dev/null || missing+=(adduser)           # the package's Depends
command -v lintian >/dev/null || missing+=(lintian)
if [ ${#missing[@]} -gt 0 ]; then
    echo "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
if ! cargo deb --version >/dev/null 2>&1; then
    echo "installing cargo-deb"
    cargo install cargo-deb --locked --quiet
fi
echo "$(cargo deb --version), $(systemd-analyze --version | head -1), $(lintian --version)"

# ---------------------------------------------------------------------------------------------
step "build"
version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -1)
arch=$(dpkg --print-architecture)
build_log=$(mktemp)
cargo deb 2>&1 | tee "$build_log" || fail "cargo deb"
deb=$(grep -E "/dialsync_[^/]*\.deb$" "$build_log" | tail -1 || true)
rm -f "$build_log"
[ -f "$deb" ] || fail "cargo deb named no package"
[ "$(basename "$deb")" = "dialsync_${version}_${arch}.deb" ] ||
    fail "package is $(basename "$deb"), expected dialsync_${version}_${arch}.deb"
echo "$deb ($(du -k "$deb" | cut -f1) KiB)"

# ---------------------------------------------------------------------------------------------
step "contents"
dpkg-deb -c "$deb"
# Every file (not directory) with its mode and owner, exactly.
got=$(dpkg-deb -c "$deb" | awk '$1 !~ /^d/ {print $1, $2, $6}' | sort -k3)
expected=$(sort -k3 <<'EOF'
-rwxr-xr-x 0/0 ./usr/bin/dialsync
-rw-r--r-- 0/0 ./usr/lib/systemd/system/dialsync.service
-rw-r----- 0/0 ./etc/dialsync/dialsync.toml
-rw-r----- 0/0 ./etc/dialsync/static.csv
-rw-r--r-- 0/0 ./etc/dialsync/secrets/README
-rw-r--r-- 0/0 ./usr/share/man/man1/dialsync.1.gz
-rw-r--r-- 0/0 ./usr/share/bash-completion/completions/dialsync
-rw-r--r-- 0/0 ./usr/share/zsh/vendor-completions/_dialsync
-rw-r--r-- 0/0 ./usr/share/fish/vendor_completions.d/dialsync.fish
-rw-r--r-- 0/0 ./usr/share/doc/dialsync/README.md
-rw-r--r-- 0/0 ./usr/share/doc/dialsync/changelog.gz
-rw-r--r-- 0/0 ./usr/share/doc/dialsync/copyright
-rw-r--r-- 0/0 ./usr/share/doc/dialsync/examples/credentials.conf
-rw-r--r-- 0/0 ./usr/share/lintian/overrides/dialsync
EOF
)
[ "$got" = "$expected" ] || fail "package files differ from the expected list:
$(diff <(echo "$expected") <(echo "$got"))"
dpkg-deb -c "$deb" | awk '{print $6}' | grep -qx './etc/dialsync/secrets/' ||
    fail "no secrets/ directory in the package"

conffiles=$(dpkg-deb -I "$deb" conffiles | sort)
[ "$conffiles" = "$(printf '%s\n' /etc/dialsync/dialsync.toml /etc/dialsync/secrets/README \
    /etc/dialsync/static.csv)" ] || fail "conffiles are: $conffiles"
dpkg-deb --fsys-tarfile "$deb" | tar -xO ./etc/dialsync/dialsync.toml | cmp -s - config/dialsync.toml ||
    fail "the packaged dialsync.toml is not config/dialsync.toml"
dpkg-deb --fsys-tarfile "$deb" | tar -xO ./usr/lib/systemd/system/dialsync.service |
    cmp -s - packaging/dialsync.service || fail "the packaged unit is not packaging/dialsync.service"
depends=$(dpkg-deb -f "$deb" Depends)
[[ "$depends" == *adduser* ]] || fail "Depends lacks adduser: $depends"
dpkg-deb --fsys-tarfile "$deb" | tar -xO ./usr/bin/dialsync >"${TMPDIR:-/tmp}/dialsync.bin"
if readelf -S "${TMPDIR:-/tmp}/dialsync.bin" | grep -q '\.debug_info'; then
    fail "/usr/bin/dialsync carries debug info (expected in the -dbgsym package)"
fi
rm -f "${TMPDIR:-/tmp}/dialsync.bin"
dpkg-deb --fsys-tarfile "$deb" | tar -xO ./usr/share/doc/dialsync/copyright |
    cmp -s - packaging/copyright || fail "the packaged copyright is not packaging/copyright"
dpkg-deb --fsys-tarfile "$deb" | tar -xO ./usr/share/doc/dialsync/changelog.gz | gzip -dc |
    cmp -s - packaging/changelog || fail "the packaged changelog.gz is not packaging/changelog"

# ---------------------------------------------------------------------------------------------
step "lintian"
# Every tag, overridden ones and their reasons included, then a verdict of our own: lintian's
# --fail-on counts an overridden tag as a failure once --show-overrides displays it.
lintian_out=$(lintian --allow-root --display-info --show-overrides --fail-on none "$deb" 2>&1) ||
    { echo "$lintian_out"; fail "lintian did not run"; }
echo "$lintian_out"
if grep -qE '^[EW]: ' <<<"$lintian_out"; then
    fail "lintian reports errors or warnings:
$(grep -E '^[EW]: ' <<<"$lintian_out")"
fi
echo "lintian: no error, no warning ($(grep -c '^I: ' <<<"$lintian_out" || true) info," \
    "$(grep -c '^O: ' <<<"$lintian_out" || true) overridden)"

# ---------------------------------------------------------------------------------------------
step "install"
# Re-include our man page and docs if this machine's dpkg excludes /usr/share/{man,doc} (as
# minimised images do); a no-op elsewhere.
dpkg_install() {
    DEBIAN_FRONTEND=noninteractive dpkg --force-confold \
        --path-include='/usr/share/man/man1/dialsync.1.gz' \
        --path-include='/usr/share/doc/dialsync/*' -i "$1" </dev/null
}
# What exists before, to find anything the package leaves behind after the purge.
# deb-systemd-helper's state directories and adduser's backups of /etc/passwd and friends are
# the system's, not ours (files in them named after dialsync are caught by the name search).
snapshot() {
    find_all | grep -v '^/var/lib/systemd/deb-systemd-helper-' |
        grep -vxE '/etc/(passwd|group|shadow|gshadow|subuid|subgid)-' || true
}
find_all() {
    find /etc /usr /var /opt /srv /home -xdev \
        \( -path /var/lib/dpkg -o -path /var/log -o -path /var/cache -o -path /var/tmp \
        -o -path /var/lib/apt -o -path "$PWD" \) -prune -o -print 2>/dev/null | sort
}
before=$(mktemp)
snapshot >"$before"
dpkg_install "$deb"

getent passwd dialsync >/dev/null || fail "no dialsync user"
IFS=: read -r _ _ uid gid _ home shell < <(getent passwd dialsync)
[ "$uid" -lt 1000 ] || fail "dialsync is not a system user (uid $uid)"
[ "$home" = /var/lib/dialsync ] || fail "dialsync's home is $home"
[[ "$shell" == */nologin || "$shell" == */false ]] || fail "dialsync's shell is $shell"
[ "$(getent group dialsync | cut -d: -f3)" = "$gid" ] || fail "no dialsync group"
expect_stat /usr/bin/dialsync "root:root 755"
expect_stat /usr/lib/systemd/system/dialsync.service "root:root 644"
expect_stat /etc/dialsync/dialsync.toml "root:dialsync 640"
expect_stat /etc/dialsync/static.csv "root:dialsync 640"
expect_stat /etc/dialsync/secrets "root:dialsync 750"
expect_stat /var/lib/dialsync "dialsync:dialsync 750"
for p in /usr/share/man/man1/dialsync.1.gz /usr/share/bash-completion/completions/dialsync \
    /usr/share/zsh/vendor-completions/_dialsync /usr/share/fish/vendor_completions.d/dialsync.fish \
    /usr/share/doc/dialsync/README.md /usr/share/doc/dialsync/examples/credentials.conf; do
    [ -f "$p" ] || fail "$p was not installed"
done
# Installed, not enabled, not started.
expect_absent /etc/systemd/system/multi-user.target.wants/dialsync.service

step "installed binary and configuration"
got=$(/usr/bin/dialsync --version)
[ "$got" = "dialsync $version" ] || fail "dialsync --version says: $got"
echo "$got"
# Fresh from the package, the example config names an SBC password that is not there yet:
# config check must say so (it reads every secret file).
if out=$(/usr/bin/dialsync config check 2>&1); then fail "config check passed without the SBC password: $out"; fi
[[ "$out" == */etc/dialsync/secrets/sbc-password* ]] || fail "config check did not name the missing secret: $out"
echo "before the secret: $out"
# As the README tells the operator: the secret owned by dialsync, mode 0600.
printf 'test-password\n' | install -m 600 -o dialsync -g dialsync /dev/stdin /etc/dialsync/secrets/sbc-password
out=$(/usr/bin/dialsync config check) || fail "config check as root: $out"
echo "as root: $out"
out=$(runuser -u dialsync -- /usr/bin/dialsync config check) || fail "config check as dialsync: $out"
echo "as dialsync: $out"
chmod 640 /etc/dialsync/secrets/sbc-password
if out=$(/usr/bin/dialsync config check 2>&1); then fail "a group-readable secret was accepted"; fi
[[ "$out" == *"readable by its group"* ]] || fail "group-readable secret: $out"
chmod 600 /etc/dialsync/secrets/sbc-password
# Monitoring before the first cycle, with no agent running: UNKNOWN (3), as the plugin
# conventions say.
set +e
out=$(runuser -u dialsync -- /usr/bin/dialsync check)
code=$?
set -e
[ "$code" = 3 ] || fail "dialsync check before any cycle exited $code: $out"
echo "check: $out"

step "man page and completions"
man -w dialsync | grep -qx /usr/share/man/man1/dialsync.1.gz || fail "man -w dialsync: $(man -w dialsync)"
warnings=$(MANWIDTH=100 MANPAGER=cat man --warnings dialsync 2>&1 >/dev/null || true)
[ -z "$warnings" ] || fail "man dialsync warns: $warnings"
page=$(MANWIDTH=100 MANPAGER=cat man dialsync 2>/dev/null)
for want in "dialsync reload" "dialsync config check" "/etc/dialsync/dialsync.toml" "DIALSYNC_CONFIG" \
    "SIGHUP" "EXIT STATUS"; do
    grep -qF -- "$want" <<<"$page" || fail "man dialsync lacks \"$want\""
done
echo "man dialsync: $(wc -l <<<"$page") lines"
bash -c 'source /usr/share/bash-completion/completions/dialsync && complete -p dialsync' >/dev/null ||
    fail "the bash completion does not load"
grep -q '^#compdef dialsync' /usr/share/zsh/vendor-completions/_dialsync || fail "zsh completion"
grep -q 'complete -c dialsync' /usr/share/fish/vendor_completions.d/dialsync.fish || fail "fish completion"

step "unit"
verify=$(systemd-analyze verify /usr/lib/systemd/system/dialsync.service 2>&1) ||
    fail "systemd-analyze verify: $verify"
[ -z "$verify" ] || fail "systemd-analyze verify warns: $verify"
echo "systemd-analyze verify: clean"
# man and systemd-analyze verify (which opens Documentation=man:dialsync(1)) leave a formatted
# copy in man-db's cache, which man-db's daily run cleans; not a file of the package, so it
# goes now, and the purge check below stays strict.
rm -f /var/cache/man/cat1/dialsync.1.gz
security=$(systemd-analyze security --offline=true --threshold=20 \
    /usr/lib/systemd/system/dialsync.service 2>&1) || { echo "$security"; fail "exposure above 2.0"; }
grep '✗' <<<"$security" || true
score=$(grep -o 'Overall exposure level for dialsync.service: [0-9.]*' <<<"$security")
echo "$score"

# ---------------------------------------------------------------------------------------------
step "upgrade keeps the operator's configuration"
echo "# edited by the operator" >>/etc/dialsync/dialsync.toml
runuser -u dialsync -- sh -c 'umask 077 && touch /var/lib/dialsync/state.db'
next=$(mktemp -d)
dpkg-deb -R "$deb" "$next/root"
sed -i "s/^Version: .*/Version: ${version}+check1/" "$next/root/DEBIAN/control"
echo "# a maintainer's change" >>"$next/root/etc/dialsync/dialsync.toml"
echo "# a maintainer's change" >>"$next/root/etc/dialsync/static.csv"
dpkg-deb --root-owner-group -b "$next/root" "$next/next.deb" >/dev/null
dpkg_install "$next/next.deb"
grep -qx '# edited by the operator' /etc/dialsync/dialsync.toml || fail "the upgrade overwrote the operator's config"
[ -f /etc/dialsync/dialsync.toml.dpkg-dist ] || fail "no dialsync.toml.dpkg-dist for the maintainer's version"
grep -qx "# a maintainer's change" /etc/dialsync/static.csv || fail "the unedited static.csv was not upgraded"
expect_stat /etc/dialsync/dialsync.toml "root:dialsync 640"
expect_stat /etc/dialsync/static.csv "root:dialsync 640"
expect_stat /etc/dialsync/secrets "root:dialsync 750"
expect_stat /etc/dialsync/secrets/sbc-password "dialsync:dialsync 600"
expect_stat /var/lib/dialsync/state.db "dialsync:dialsync 600"
rm -rf "$next"

# ---------------------------------------------------------------------------------------------
step "remove"
dpkg -r dialsync
expect_absent /usr/bin/dialsync /usr/lib/systemd/system/dialsync.service \
    /usr/share/man/man1/dialsync.1.gz /usr/share/bash-completion/completions/dialsync \
    /usr/share/zsh/vendor-completions/_dialsync /usr/share/fish/vendor_completions.d/dialsync.fish \
    /usr/share/doc/dialsync
# Kept until purge: the configuration, the secrets, the state, the user.
for p in /etc/dialsync/dialsync.toml /etc/dialsync/static.csv /etc/dialsync/secrets/sbc-password \
    /var/lib/dialsync/state.db; do
    [ -e "$p" ] || fail "dpkg -r removed $p"
done
getent passwd dialsync >/dev/null || fail "dpkg -r removed the dialsync user"
# As dh_installsystemd does, removal masks the unit (a link to /dev/null) until the purge.
[ "$(readlink /etc/systemd/system/dialsync.service)" = /dev/null ] ||
    fail "dpkg -r did not mask dialsync.service"
left=$(comm -13 "$before" <(snapshot))
allowed=$(printf '%s\n' /etc/dialsync /etc/dialsync/dialsync.toml /etc/dialsync/dialsync.toml.dpkg-dist \
    /etc/dialsync/static.csv /etc/dialsync/secrets /etc/dialsync/secrets/README \
    /etc/dialsync/secrets/sbc-password /var/lib/dialsync /var/lib/dialsync/state.db \
    /etc/systemd/system/dialsync.service | sort)
unexpected=$(comm -23 <(echo "$left") <(echo "$allowed"))
[ -z "$unexpected" ] || fail "dpkg -r left: $unexpected"
echo "after dpkg -r, kept: $(echo "$left" | grep -c .) paths (config, secrets, state, user)"

step "purge"
dpkg -P dialsync
expect_absent /etc/dialsync /var/lib/dialsync /run/dialsync
getent passwd dialsync >/dev/null && fail "dpkg -P left the dialsync user"
getent group dialsync >/dev/null && fail "dpkg -P left the dialsync group"
dpkg-statoverride --list | grep -q dialsync && fail "dpkg -P left statoverrides: $(dpkg-statoverride --list | grep dialsync)"
left=$(comm -13 "$before" <(snapshot))
[ -z "$left" ] || fail "dpkg -P left: $left"
# Where a package puts things: not the whole disk, which also holds source checkouts and
# their build trees (this one, and others on a shared machine).
found=$(find /etc /usr /var /opt /srv /run -xdev \( -path /var/tmp -o -path "$PWD" \
    -o -path "${CARGO_TARGET_DIR:-$PWD/target}" \) -prune -o -name '*dialsync*' -print 2>/dev/null || true)
[ -z "$found" ] || fail "dpkg -P left files named dialsync: $found"
rm -f "$before"


step "OK: $(basename "$deb"); $score; packaging checks took $((SECONDS - started)) s"
