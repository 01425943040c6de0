#!/usr/bin/env bash
# Builds the Debian package with `cargo deb` and checks it on this machine, strictly: its name,
# files, modes and conffiles; lintian, which must report no error and no warning; `dpkg -i`;
# the installed binary, configuration, man page, completions and unit (`systemd-analyze verify`
# and `security`); an upgrade that must keep the operator's edits; then `dpkg -r`, which must
# leave only the configuration, the secrets, the state and the user, and `dpkg -P`, which must
# leave nothing at all. Last, the package under a real systemd: a Debian container booted with
# systemd-nspawn, where the unit starts against an SBC emulator, reports its status, answers
# `check`, reloads (and refuses a broken config), and stops cleanly.
#
# It installs and purges the package: run it as root on a disposable machine (CI). It refuses
# to start if dialsync is already installed or has left anything behind. The container's root
# (debootstrap, about 40 s to 2 min from the Debian mirror) is cached under
# <target>/check-deb/; `rm -rf` that directory to fetch a fresh one. DEBIAN_MIRROR overrides
# http://deb.debian.org/debian.
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
# The systemd container: its root filesystem, the container, and commands run inside it.
command -v debootstrap >/dev/null || missing+=(debootstrap)
[ -f /usr/share/keyrings/debian-archive-keyring.gpg ] || missing+=(debian-archive-keyring)
command -v systemd-nspawn >/dev/null || missing+=(systemd-container)
command -v nsenter >/dev/null || missing+=(util-linux)
command -v pgrep >/dev/null || missing+=(procps)
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

# ---------------------------------------------------------------------------------------------
# Under a real systemd: Debian 12's systemd 252 as PID 1 of a container booted by
# systemd-nspawn. systemd-analyze above only reads the unit; here systemd runs it: Type=notify
# readiness and STATUS=, the sandbox, ExecReload= through `dialsync reload`, and the stop.
# Commands run inside through nsenter into the namespaces of the container's PID 1: with
# --register=no there is no machined, so no `systemctl --machine` or `machinectl shell`.
step "systemd container: root filesystem"
suite=bookworm
target_dir=${CARGO_TARGET_DIR:-$PWD/target}
mkdir -p "$target_dir/check-deb"
# A pristine root, built once and copied for each run: the container changes its copy.
# debootstrap writes into .partial and the rename marks it complete, so an interrupted one is
# never used.
cache="$target_dir/check-deb/$suite-$arch-minbase-systemd"
if [ ! -d "$cache" ]; then
    rm -rf --one-file-system "$cache.partial"
    echo "debootstrap $suite into $cache (kept for the next runs)"
    bootstrapped=$SECONDS
    timeout 900 debootstrap --variant=minbase --include=systemd,systemd-sysv,dbus,adduser \
        "$suite" "$cache.partial" "${DEBIAN_MIRROR:-http://deb.debian.org/debian}" \
        >"$target_dir/check-deb/debootstrap.log" 2>&1 || {
        tail -20 "$target_dir/check-deb/debootstrap.log"
        fail "debootstrap failed; its log is $target_dir/check-deb/debootstrap.log"
    }
    mv "$cache.partial" "$cache"
    echo "debootstrap took $((SECONDS - bootstrapped)) s"
else
    echo "cached: $cache"
fi

step "systemd container: boot"
machine="check-deb-$$"
machine_dir=$(mktemp -d "$target_dir/check-deb/machine.XXXXXX")
root="$machine_dir/root"
nspawn_pid=""
leader=""
# Whatever happens from here on (a failed check, ^C, a kill), the container is powered off
# and its copy deleted.
teardown() {
    local code=$?
    trap - EXIT INT TERM HUP
    if [ -n "$nspawn_pid" ] && kill -0 "$nspawn_pid" 2>/dev/null; then
        # On SIGTERM, nspawn asks the container's systemd to power off in order.
        kill -TERM "$nspawn_pid" 2>/dev/null || true
        for _ in $(seq 300); do kill -0 "$nspawn_pid" 2>/dev/null || break; sleep 0.1; done
        if kill -0 "$nspawn_pid" 2>/dev/null; then
            echo "check-deb: the container did not power off within 30 s; killing it" >&2
            # Killing a PID namespace's init kills every process in it.
            if [ -n "$leader" ]; then kill -KILL "$leader" 2>/dev/null || true; fi
            kill -KILL "$nspawn_pid" 2>/dev/null || true
        fi
        wait "$nspawn_pid" 2>/dev/null || true
    fi
    if [ "$code" != 0 ] && [ -f "$machine_dir/console.log" ]; then
        echo "--- the container's console (last 30 lines)" >&2
        tail -30 "$machine_dir/console.log" | sed 's/\x1b\[[0-9;]*m//g' >&2
    fi
    # nspawn mounts only in its own mount namespace; anything under the machine directory in
    # ours is a bug, which rm must not cross (--one-file-system).
    if grep -qF " $machine_dir/" /proc/self/mountinfo; then
        echo "check-deb: mounts left under $machine_dir:" >&2
        grep -F " $machine_dir/" /proc/self/mountinfo >&2
        code=1
    fi
    rm -rf --one-file-system "$machine_dir" || code=1
    rmdir "/run/systemd/nspawn/propagate/$machine" 2>/dev/null || true
    exit "$code"
}
trap teardown EXIT
trap 'exit 130' INT TERM HUP
cp -a --reflink=auto "$cache" "$root"
# Where systemd is not PID 1 (as on the machines this was written and run on), --keep-unit
# stops nspawn from asking it for a scope; where it is, nspawn gets a scope of its own, its
# usual way (not tried yet).
nspawn_opts=(--quiet --register=no --machine="$machine" --directory="$root" --private-network
    --console=read-only --boot)
[ -d /run/systemd/system ] || nspawn_opts=(--keep-unit "${nspawn_opts[@]}")
booted=$SECONDS
systemd-nspawn "${nspawn_opts[@]}" </dev/null >"$machine_dir/console.log" 2>&1 &
nspawn_pid=$!
for _ in $(seq 300); do
    leader=$(pgrep -P "$nspawn_pid" -x systemd || true)
    [ -n "$leader" ] && break
    kill -0 "$nspawn_pid" 2>/dev/null || fail "systemd-nspawn exited before the container's systemd ran"
    sleep 0.1
done
[ -n "$leader" ] || fail "no systemd in the container after 30 s"

# ct SECONDS COMMAND...: COMMAND inside the container, as its root, in a clean environment,
# killed after SECONDS.
ct() {
    local limit=$1
    shift
    timeout -k 5 "$limit" nsenter --target "$leader" --all \
        env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 SYSTEMD_PAGER= SYSTEMD_COLORS=0 \
        "$@" </dev/null
}
# until_true SECONDS WHAT COMMAND...: retries COMMAND until it succeeds, failing after SECONDS.
until_true() {
    local deadline=$((SECONDS + $1)) what=$2
    shift 2
    until "$@" >/dev/null 2>&1; do
        [ "$SECONDS" -lt "$deadline" ] || fail "timed out waiting for $what"
        sleep 0.2
    done
}
# The unit's properties, one KEY=VALUE a line, as systemd reports them.
unit_show() { ct 10 systemctl show -p ActiveState,SubState,Result,StatusText,NRestarts "$@"; }
prop() { sed -n "s/^$1=//p" <<<"$2"; }
system_ready() { case $(ct 10 systemctl is-system-running 2>/dev/null) in running | degraded) ;; *) false ;; esac }
until_true 120 "the container's systemd to finish booting" system_ready
state=$(ct 10 systemctl is-system-running || true)
echo "container: $(ct 10 systemctl --version | head -1), system $state, booted in $((SECONDS - booted)) s"
if [ "$state" != running ]; then ct 10 systemctl --failed --no-pager || true; fi

step "systemd container: install"
cp "$deb" "$root/root/"
ct 120 dpkg -i "/root/$(basename "$deb")" || fail "dpkg -i in the container"
[ "$(ct 10 systemctl is-enabled dialsync || true)" = disabled ] || fail "the package enabled the unit"

# An SBC for it: the emulator as a unit of its own. Its password is on its command line, which
# is fine for a test device in a throw-away container.
sbc_port=18443
sim_password=check-deb-sim-password
ct 30 systemd-run --quiet --unit=sbc-sim -p DynamicUser=yes -p StateDirectory=sbc-sim -- \
    /usr/bin/dialsync sim sbc --listen "127.0.0.1:$sbc_port" --state /var/lib/sbc-sim/sbc.json \
    --admin "dialsync:$sim_password" || fail "the SBC emulator's unit did not start"
until_true 30 "the SBC emulator to listen" ct 5 bash -c "exec 3<>/dev/tcp/127.0.0.1/$sbc_port"

# As an operator would: the shipped config edited (policy sync, the emulator's URL), rules in
# the shipped static.csv, the password in a secret file of the dialsync user, mode 0600. An
# hourly interval keeps timer cycles out of the checks' way.
cat >"$root/root/configure.sh" <<'EOF'
set -eu
conf=/etc/dialsync/dialsync.toml
sed -i -e 's|^policy = .*|policy = "sync"|' -e 's|^interval = "60s" |interval = "1h"  |' \
    -e "s|^url = \"https://sbc1.example.net\"|url = \"http://127.0.0.1:$SBC_PORT\"|" "$conf"
grep -qx 'policy = "sync"' "$conf" || { echo "no policy line to edit in $conf"; exit 1; }
grep -q '^interval = "1h" ' "$conf" || { echo "no interval line to edit in $conf"; exit 1; }
grep -qx "url = \"http://127.0.0.1:$SBC_PORT\"" "$conf" || { echo "no SBC url to edit in $conf"; exit 1; }
printf '%s\n' '+3226127000,+3226127099,Trunk=acme' '+3226128500,,Trunk=globex' >>/etc/dialsync/static.csv
printf '%s' "$SIM_PASSWORD" | install -m 600 -o dialsync -g dialsync /dev/stdin \
    /etc/dialsync/secrets/sbc-password
cp -p "$conf" /root/dialsync.toml.good
EOF
ct 30 env SBC_PORT="$sbc_port" SIM_PASSWORD="$sim_password" sh /root/configure.sh ||
    fail "configuring dialsync in the container"
ct 30 runuser -u dialsync -- dialsync config check || fail "config check as dialsync"

step "systemd container: start"
t=$SECONDS
ct 100 systemctl start dialsync || {
    ct 10 journalctl -u dialsync --no-pager || true
    fail "systemctl start dialsync"
}
echo "systemctl start returned after $((SECONDS - t)) s (Type=notify: once READY=1 came)"
# status_is PATTERN: the unit's STATUS= text matches the glob PATTERN.
# shellcheck disable=SC2053 # a glob, on purpose
status_is() { [[ "$(prop StatusText "$(unit_show dialsync)")" == $1 ]]; }
# The config watcher reloads 0.5 s after an edit and runs a cycle: the next check waits until
# the agent has logged nothing for 2 s, so it does not race that cycle.
journal_lines() { ct 10 journalctl -u dialsync -o cat --no-pager | wc -l; }
idle() {
    local before
    before=$(journal_lines)
    sleep 2
    [ "$(journal_lines)" = "$before" ]
}
# STATUS= comes after the first cycle.
until_true 60 "the first cycle's STATUS=" status_is '?*'
shown=$(unit_show dialsync)
echo "$shown"
[ "$(prop ActiveState "$shown")/$(prop SubState "$shown")" = active/running ] || fail "not active/running"
[ "$(prop Result "$shown")" = success ] || fail "Result is not success"
[ "$(prop NRestarts "$shown")" = 0 ] || fail "the unit restarted"
[[ "$(prop StatusText "$shown")" == *"2 rules owned"* ]] || fail "unexpected STATUS="
out=$(ct 30 runuser -u dialsync -- dialsync check) || fail "dialsync check: $out"
echo "check: $out"
[[ "$out" == "DIALSYNC OK - in sync, "* ]] || fail "dialsync check: $out"

step "systemd container: reload"
# A second source: in force once the STATUS= line counts its rule (a reload runs a cycle).
cat >"$root/root/add-source.sh" <<'EOF'
set -eu
printf '%s\n' 'start,end,tag' '+3226129000,+3226129009,Trunk=initech' >/etc/dialsync/extra.csv
chgrp dialsync /etc/dialsync/extra.csv
chmod 640 /etc/dialsync/extra.csv
printf '\n[[sources]]\nname = "extra"\nkind = "file"\npath = "extra.csv"\n' >>/etc/dialsync/dialsync.toml
cp -p /etc/dialsync/dialsync.toml /root/dialsync.toml.good
EOF
ct 10 sh /root/add-source.sh || fail "adding a source"
t=$SECONDS
ct 100 systemctl reload dialsync || fail "systemctl reload dialsync after adding a source"
echo "systemctl reload returned 0 after $((SECONDS - t)) s"
until_true 30 "a STATUS= with the new source's rule" status_is '*3 rules owned*'
until_true 30 "the agent to go idle" idle
shown=$(unit_show dialsync)
echo "$shown"
ct 10 grep -q 'Trunk=initech' /var/lib/sbc-sim/sbc.json || fail "the new source's rule is not on the SBC"
# A config with a typo is refused: the reload fails, the previous config stays in force and
# the unit stays up.
ct 10 sh -c 'printf "\n[safety_margin]\nmax_delete_fraction = 0.5\n" >>/etc/dialsync/dialsync.toml'
code=0
ct 100 systemctl reload dialsync || code=$?
# 1: systemd reports the reload job failed (a timeout would be 124).
[ "$code" = 1 ] || fail "systemctl reload of a broken config exited $code, expected 1"
shown=$(unit_show dialsync)
echo "$shown"
[ "$(prop ActiveState "$shown")/$(prop SubState "$shown")" = active/running ] ||
    fail "a refused reload took the unit down"
[[ "$(prop StatusText "$shown")" == "config reload failed, previous config kept: "* ]] ||
    fail "STATUS= does not say the reload was refused"
ct 10 cp -p /root/dialsync.toml.good /etc/dialsync/dialsync.toml
ct 100 systemctl reload dialsync || fail "systemctl reload of the repaired config"
until_true 30 "STATUS= after the repaired config" status_is 'in sync: 3 rules owned'
until_true 30 "the agent to go idle" idle

step "systemd container: stop"
t=$SECONDS
ct 60 systemctl stop dialsync || fail "systemctl stop dialsync"
echo "systemctl stop returned after $((SECONDS - t)) s"
shown=$(ct 10 systemctl show -p ActiveState,SubState,Result,NRestarts dialsync)
echo "$shown"
# A unit that failed stays loaded as failed/exit-code (or signal, timeout); one that stopped
# well may be unloaded at once, and then shows defaults: the journal below confirms the exit.
[ "$(prop ActiveState "$shown")/$(prop SubState "$shown")" = inactive/dead ] || fail "not stopped"
[ "$(prop Result "$shown")" = success ] || fail "stopped with Result $(prop Result "$shown")"
[ "$(prop NRestarts "$shown")" = 0 ] || fail "the unit restarted"
ct 30 systemctl stop sbc-sim || fail "systemctl stop sbc-sim"

step "systemd container: journal"
journal=$(ct 30 journalctl -u dialsync --no-pager -o short-monotonic) || fail "journalctl"
echo "$journal"
# By priority, as journald filed them (dialsync prefixes each line with <N>), and by text, in
# case a line lost its priority on the way. Only the refused reload's lines are expected.
# shellcheck disable=SC2016 # the backquotes are the message's own
expected='configuration reload failed; the previous configuration stays in force .*unknown field `safety_margin`|Reload failed for dialsync\.service|dialsync\.service: Control process exited, code=exited, status=1/FAILURE'
by_priority=$(ct 30 journalctl -u dialsync --no-pager -o cat -p warning) || fail "journalctl -p warning"
by_text=$(grep -E ' (WARN|ERROR) ' <<<"$journal" || true)
unexpected=$(printf '%s\n%s\n' "$by_priority" "$by_text" | grep -v '^$' | grep -vE "$expected" || true)
[ -z "$unexpected" ] || fail "unexpected warnings or errors in the journal:
$unexpected"
errors=$(ct 30 journalctl -u dialsync --no-pager -o cat -p err) || fail "journalctl -p err"
grep -q 'configuration reload failed' <<<"$errors" ||
    fail "the refused reload was not logged at priority err"
if grep -q $'\x1b' <<<"$journal"; then fail "colour codes in the journal"; fi
messages=$(ct 30 journalctl -u dialsync --no-pager -o cat) || fail "journalctl -o cat"
if grep -qE '^<[0-7]>' <<<"$messages"; then
    fail "journald kept the <N> priority prefixes as text"
fi
grep -q 'stopped by="SIGTERM" abandoned=false' <<<"$messages" || fail "no clean stop in the journal"
grep -q '^dialsync.service: Deactivated successfully.$' <<<"$messages" ||
    fail "systemd did not see dialsync run exit successfully"
echo "journal: $(grep -c . <<<"$journal") lines, the only warnings those of the refused reload"
container_took=$((SECONDS - booted))

step "systemd container: power off"
kill -TERM "$nspawn_pid"
for _ in $(seq 300); do kill -0 "$nspawn_pid" 2>/dev/null || break; sleep 0.1; done
kill -0 "$nspawn_pid" 2>/dev/null && fail "the container did not power off within 30 s"
wait "$nspawn_pid" || fail "systemd-nspawn exited $?"
nspawn_pid=""
echo "the container ran for $container_took s"

step "OK: $(basename "$deb"); $score; packaging checks took $((SECONDS - started)) s"
