#!/usr/bin/env bash
# The warm read-only suite as a hand-written script, for `npm run bench` to time beside the
# harness (cli/bench.ts). It makes the 27 checks that `vitest run --project warm` makes with the
# read-only specs C1-C7, D8 and D9 against a kept lab throwaway (30 tests, of which 3 skip on a
# warm run: C4's "created blank in this run", C5's and D8's live halves), on the same inputs:
# the base and instance repos, the bootstrap age key, the CA, the kept-host record (ledger and
# runbook outcome), the host through `incus exec`, its :443 through openssl.
#
# Each host command is its own `incus exec`, as a script of ssh/incus calls does; nothing is
# batched. Where it does less than the harness, that favours the script:
#   - sops: no sops binary on this machine, so `age -d` opens the data key and python3's
#     cryptography (AES-GCM, tag checked) opens each value; the sops MAC is not verified.
#   - the leak probes are `git grep -F` over every commit's tree (rev-list --all), not every
#     object; multi-line values are looked for by each line of 20+ characters.
#   - :443 is dialled directly at the loopback port, not through the SOCKS proxy.
#   - the Incus checks use the local unix socket, not the mTLS API.
#   - oneshots are read once, not waited on; no evidence, no report, no redaction.
#
# Inputs (the bench sets them): BENCH_INSTANCE, BENCH_PROJECT, BENCH_HTTPS_PORT, BENCH_DOMAIN,
# BENCH_CA, BENCH_AGE_KEY, BENCH_BASE_REPO, BENCH_INSTANCE_REPO, BENCH_KEPT (kept.json),
# BENCH_GUIDELINE_BYTES, BENCH_ONESHOTS (space-separated), BENCH_D8_DOC, BENCH_NIX_CONFIG,
# BENCH_PRODUCTION and BENCH_PRODUCTION_MEMORY (the running cc-ci, an instance in BENCH_PROJECT),
# BENCH_DECISIONS (the base repo's decision log).
# Exit 0 when every check passed; prints one line per check.
set -euo pipefail

for name in BENCH_INSTANCE BENCH_PROJECT BENCH_HTTPS_PORT BENCH_DOMAIN BENCH_CA BENCH_AGE_KEY BENCH_BASE_REPO BENCH_INSTANCE_REPO BENCH_KEPT BENCH_GUIDELINE_BYTES BENCH_ONESHOTS BENCH_D8_DOC BENCH_PRODUCTION BENCH_PRODUCTION_MEMORY BENCH_DECISIONS; do
  [[ -n "${!name:-}" ]] || { echo "warm-checks.sh: $name is not set (cli/bench.ts sets it)" >&2; exit 2; }
done
PY=/usr/bin/python3
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
passed=0 failed=0
pass() { passed=$((passed + 1)); echo "PASS $1"; }
fail() { failed=$((failed + 1)); echo "FAIL $1: $2"; }
check() { local name=$1; shift; local why; if why=$("$@" 2>&1); then pass "$name"; else fail "$name" "${why:-failed}"; fi; }
# A NixOS VM's agent (and the lab, which emulates one) gives exec a PATH with only sh and env.
HOST_PATH=/run/wrappers/bin:/run/current-system/sw/bin:/nix/var/nix/profiles/default/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
on_host() { incus exec --project "$BENCH_PROJECT" "$BENCH_INSTANCE" -- /bin/sh -c "PATH=$HOST_PATH; $1"; }
on_production() { incus exec --project "$BENCH_PROJECT" "$BENCH_PRODUCTION" -- /bin/sh -c "PATH=$HOST_PATH; $1"; }
sha() { sha256sum | cut -d' ' -f1; }

# --- inputs: two clones, the decrypted secrets (one file per top-level key) --------------------
git clone -q --recursive "$BENCH_BASE_REPO" "$work/base"
git clone -q "$BENCH_INSTANCE_REPO" "$work/instance"
mkdir "$work/secrets"
yq -r '.sops.age[0].enc' "$work/instance/secrets.yaml" | age -d -i "$BENCH_AGE_KEY" > "$work/datakey"
"$PY" - "$work/instance/secrets.yaml" "$work/datakey" "$work/secrets" <<'PY'
import base64, re, sys, yaml
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
doc = yaml.safe_load(open(sys.argv[1]))
key = open(sys.argv[2], 'rb').read()
for name, value in doc.items():
    if name == 'sops' or not isinstance(value, str): continue
    data, iv, tag, _ = re.match(r'^ENC\[AES256_GCM,data:(.*),iv:(.*),tag:(.*),type:(.*)\]$', value).groups()
    plain = AESGCM(key).decrypt(base64.b64decode(iv), base64.b64decode(data) + base64.b64decode(tag), f'{name}:'.encode())
    open(f'{sys.argv[3]}/{name}', 'wb').write(plain)
PY
secret_names=$(ls "$work/secrets")
# What a leak probe looks for: each single-line value, and each 20+ character line of a multi-line one.
for f in "$work"/secrets/*; do
  if [[ $(wc -l < "$f") -le 1 ]]; then cat "$f"; echo; else grep -vE '^-----' "$f" | awk 'length >= 20'; fi
done | grep -v '^$' > "$work/needles"
leaks_in() { local revs; revs=$(git -C "$1" rev-list --all); ! git -C "$1" grep -F -l -f "$2" $revs -- >/dev/null; }

# --- C1 --------------------------------------------------------------------------------------
printf '%s\n' "$BENCH_DOMAIN" | cat - "$work/needles" > "$work/needles-base"
check 'C1 base repo holds no domain and no secret value in any commit' leaks_in "$work/base" "$work/needles-base"
composition() { grep -qE '^\s*path\s*=\s*secrets\s*$' "$work/base/.gitmodules" 2>/dev/null || jq -e '.nodes.instance' "$work/base/flake.lock" >/dev/null 2>&1; }
check 'C1 instance repo composed as submodule secrets/ or flake input' composition
composition_recorded() { grep -qiE 'submodule|flake input' "$work/base/$BENCH_DECISIONS"; }
check "C1 $BENCH_DECISIONS records the composition" composition_recorded
submodules=$(grep -qE '^\s*path\s*=\s*secrets\s*$' "$work/base/.gitmodules" 2>/dev/null && echo '?submodules=1' || true)
nix_() { NIX_CONFIG="${NIX_CONFIG:+$NIX_CONFIG$'\n'}${BENCH_NIX_CONFIG:-}" nix --extra-experimental-features 'nix-command flakes' "$@"; }
git clone -q --recursive "$BENCH_BASE_REPO" "$work/clean"
built=$(nix_ build --no-link --json "git+file://$work/clean$submodules#nixosConfigurations.cc-ci.config.system.build.toplevel" | jq -r '.[0].outputs.out')
running=$(on_host 'readlink -f /run/current-system')
closure_lines() { jq -r 'if type == "array" then .[] else to_entries[] | .value + {path: .key} end | "\(.path) \(.narHash)"' | sort; }
nix_ path-info --json --recursive "$built" | closure_lines > "$work/closure-built"
on_host "nix --extra-experimental-features 'nix-command flakes' path-info --json --recursive /run/current-system" | closure_lines > "$work/closure-running"
same_system() { [[ "$built" == "$running" ]] || { echo "clean-clone $built ≠ running $running"; return 1; }; diff -q "$work/closure-built" "$work/closure-running" >/dev/null || { echo 'closures differ'; return 1; }; }
check 'C1 clean-clone toplevel is /run/current-system, every narHash equal' same_system
production_running=$(on_production 'readlink -f /run/current-system')
on_production "nix --extra-experimental-features 'nix-command flakes' path-info --json --recursive /run/current-system" | closure_lines > "$work/closure-production"
zero_drift() { [[ "$built" == "$production_running" ]] || { echo "clean-clone $built ≠ $BENCH_PRODUCTION's $production_running"; return 1; }; diff -q "$work/closure-built" "$work/closure-production" >/dev/null; }
check "C1 zero drift: clean-clone toplevel is $BENCH_PRODUCTION's /run/current-system, every narHash equal" zero_drift

# --- C2 --------------------------------------------------------------------------------------
split_pem() { awk -v dir="$2" '/-----BEGIN CERTIFICATE-----/{n++} n{print > (dir "/" n ".pem")}' "$1"; }
mkdir "$work/served" "$work/git-chain"
openssl s_client -connect "127.0.0.1:$BENCH_HTTPS_PORT" -servername "drone.$BENCH_DOMAIN" -showcerts </dev/null 2>/dev/null | sed -n '/-----BEGIN CERTIFICATE-----/,/-----END CERTIFICATE-----/p' > "$work/served.pem"
split_pem "$work/served.pem" "$work/served"
split_pem "$work/secrets/wildcard_cert" "$work/git-chain"
fingerprints() { for f in $(ls "$1" | sort -n); do openssl x509 -in "$1/$f" -noout -fingerprint -sha256; done; }
leaf_is_git() { [[ "$(openssl x509 -in "$work/served/1.pem" -noout -fingerprint -sha256)" == "$(openssl x509 -in "$work/git-chain/1.pem" -noout -fingerprint -sha256)" ]]; }
check 'C2 served leaf is the wildcard_cert from git' leaf_is_git
chain_is_git() { [[ "$(fingerprints "$work/served")" == "$(fingerprints "$work/git-chain")" ]]; }
check 'C2 whole served chain is the fullchain in git' chain_is_git
host_files() {
  for pair in fullchain.pem:wildcard_cert privkey.pem:wildcard_key; do
    local on_host_hash; on_host_hash=$(on_host "sha256sum < \$(readlink -f /var/lib/ci-certs/live/${pair%%:*}) | cut -d' ' -f1")
    [[ "$on_host_hash" == "$(sha < "$work/secrets/${pair#*:}")" ]] || { echo "${pair%%:*} is not ${pair#*:}"; return 1; }
  done
}
check 'C2 fullchain.pem and privkey.pem on the host are the git secrets' host_files
verifies() { cat $(ls "$work"/served/*.pem | sort -V | tail -n +2) > "$work/untrusted.pem" 2>/dev/null; openssl verify -CAfile "$BENCH_CA" -untrusted "$work/untrusted.pem" "$work/served/1.pem" >/dev/null; }
check 'C2 served chain verifies up to the trusted root' verifies
key_matches() { [[ "$(openssl pkey -in "$work/secrets/wildcard_key" -pubout)" == "$(openssl x509 -in "$work/git-chain/1.pem" -noout -pubkey)" ]]; }
check 'C2 private key in git belongs to the cert in git' key_matches
sans_and_validity() {
  for name in "drone.$BENCH_DOMAIN" "ci-probe.$BENCH_DOMAIN"; do openssl x509 -in "$work/git-chain/1.pem" -noout -checkhost "$name" | grep -q 'does match'; done
  openssl x509 -in "$work/git-chain/1.pem" -noout -checkend 0 >/dev/null && [[ $(date -d "$(openssl x509 -in "$work/git-chain/1.pem" -noout -startdate | cut -d= -f2)" +%s) -le $(date +%s) ]]
}
check 'C2 SANs cover the domain and the cert is valid now' sans_and_validity

# --- C3 --------------------------------------------------------------------------------------
all_encrypted() { [[ $(yq -r 'del(.sops) | [paths(scalars) as $p | select(($p | map(tostring) | any(endswith("_unencrypted"))) | not) | getpath($p) | select(type != "string" or (startswith("ENC[AES256_GCM,") | not))] | length' "$work/instance/secrets.yaml") == 0 ]]; }
check 'C3 every leaf of secrets.yaml is encrypted' all_encrypted
check 'C3 no decrypted value in the instance repo history' leaks_in "$work/instance" "$work/needles"
run_secrets() {
  local listing; listing=$(on_host "cd /run/secrets && for f in *; do printf '%s %s\n' \"\$f\" \"\$(sha256sum < \"\$f\" | cut -d' ' -f1)\"; done")
  while read -r name hash; do [[ -f "$work/secrets/$name" && "$(sha < "$work/secrets/$name")" == "$hash" ]] || { echo "/run/secrets/$name is not from git"; return 1; }; done <<< "$listing"
  for name in $secret_names; do grep -q "^$name " <<< "$listing" || { echo "$name not decrypted"; return 1; }; done
}
check 'C3 every file in /run/secrets traces back to a sops key in git' run_secrets
one_secret() {
  [[ "$(jq -r '[.host.ledger[] | select(.kind == "push" and .secret and (.purpose | startswith("operator git credentials") | not)) | "\(.path) \(.mode)"] | join(",")' "$BENCH_KEPT")" == '/var/lib/sops-nix/key.txt 0600' ]] &&
    [[ "$(on_host "stat -c '%a %U' /var/lib/sops-nix/key.txt")" == '600 root' ]]
}
check 'C3 only secret provisioned outside git is the bootstrap key, 0600' one_secret
keys_explained() {
  on_host "grep -rlsE -- '^-----BEGIN ([A-Z]+ )?PRIVATE KEY-----\$|AGE-SECRET-KEY-1[02-9ACDEFGHJKLMNPQRSTUVWXYZ]{58}' /etc /var/lib /root /run/secrets.d 2>/dev/null | sort -u" |
    { ! grep -vE '^/var/lib/sops-nix/key\.txt$|^/run/secrets\.d/[0-9]+/[a-z_]+$|^/etc/ssh/ssh_host_[a-z0-9]+_key$'; }
}
check 'C3 no other private key on the host is unexplained' keys_explained
bootstrap_recorded() { grep -q /var/lib/sops-nix/key.txt "$work/base/$BENCH_DECISIONS" && [[ "$(on_production "stat -c '%a %U' /var/lib/sops-nix/key.txt")" == '600 root' ]]; }
check "C3 $BENCH_DECISIONS records how the bootstrap key is provisioned, and the machines hold it so" bootstrap_recorded
# Every decrypted value (and each 20+ character line of a multi-line one), verbatim, over the
# harness's roots; the needles reach grep on stdin, never its argv.
copies_explained() {
  local found
  found=$(incus exec --project "$BENCH_PROJECT" "$BENCH_INSTANCE" -- /bin/sh -c "PATH=$HOST_PATH; grep -rlF -f - -- /etc /var /root /home /srv /opt /tmp /run /dev/shm 2>/dev/null" < "$work/needles")
  # The installed copies at least: a scan that found nothing did not search.
  grep -q '^/run/secrets\.d/' <<< "$found" || { echo 'the scan found not even the installed copies'; return 1; }
  ! grep -vE '^/var/lib/sops-nix/key\.txt$|^/run/secrets\.d/[0-9]+/(rendered/)?[^/]+$|^/var/lib/ci-certs/live/(fullchain|privkey)\.pem$' <<< "$found"
}
check 'C3 no decrypted sops value is copied anywhere unexplained on the host' copies_explained

# --- C4 (the first check, "created in this run", skips on a warm run) --------------------------
runbook_steps() { # the runbook steps of docs/install.md (its <!-- runbook … --> annotations), as the ledger words them, NUL-separated
  awk 'BEGIN{ORS=""} /^<!-- runbook provision-key /{ printf "push %s %04d%c", $4, $5, 0; next } /^<!-- runbook -->/{ armed=1; next } /^```/{ if (inb) { inb=0; printf "exec %s%c", body, 0 } else if (infence) infence=0; else if (armed) { inb=1; armed=0; body=""; first=1 } else infence=1; next } inb { body = first ? $0 : body "\n" $0; first=0 }' "$work/base/docs/install.md"
}
ledger_is_runbook() {
  [[ "$(runbook_steps | jq -Rs 'split("\u0000") | map(select(. != ""))')" == "$(jq '[.host.ledger[] | select(.purpose | startswith("operator git credentials") | not) | if .kind == "exec" then "exec \(.command)" else "push \(.path) \(.mode)" end]' "$BENCH_KEPT")" ]]
}
check 'C4 commands run on the machine are exactly the steps of docs/install.md' ledger_is_runbook
running_clean() {
  [[ $(jq '.host.runbook.steps[-1].exitCode' "$BENCH_KEPT") == 0 ]] || { echo 'rebuild exit code'; return 1; }
  [[ -z "$(on_host 'systemctl list-units --failed --no-legend --plain --no-pager')" ]] || { echo 'failed units'; return 1; }
  [[ "$(on_host 'systemctl is-system-running' || true)" == running ]]
}
check 'C4 rebuild succeeded, system running with 0 failed units' running_clean
oneshots() { on_host "systemctl show --no-pager -p Id,ActiveState,SubState,Result -- $BENCH_ONESHOTS" | awk -v RS= '!/ActiveState=active(\n|$)/ || !/SubState=exited(\n|$)/ || !/Result=success(\n|$)/ { print; bad = 1 } END { exit bad }'; }
check 'C4 reconcile oneshots have converged' oneshots
all_decrypted() {
  local script='' name
  for name in $secret_names; do script+="printf '%s ' $name; sha256sum < /run/secrets/$name | cut -d' ' -f1; "; done
  local listing; listing=$(on_host "$script")
  for name in $secret_names; do grep -qx "$name $(sha < "$work/secrets/$name")" <<< "$listing" || { echo "$name differs"; return 1; }; done
  on_host 'test -s /var/lib/ci-certs/live/fullchain.pem && test -s /var/lib/ci-certs/live/privkey.pem'
}
check 'C4 every secret and the cert were decrypted on the machine' all_decrypted

# --- C5 (the live half skips on a warm run) ------------------------------------------------
static_half() { [[ "$built" =~ ^/nix/store/[a-z0-9]{32}- ]] && [[ "$(sha < "$work/closure-built")" =~ ^[0-9a-f]{64}$ ]] && same_system; }
check 'C5 static half: clean-checkout toplevel and closure hash' static_half
no_infeasible() { [[ -s "$work/base/$BENCH_D8_DOC" ]] && ! grep -qiE 'infeasible( +by +design)?|not +feasible|cannot +be +(done|performed) +by +design' "$work/base/$BENCH_D8_DOC"; }
check 'C5 published D8 evidence has no "infeasible by design" wording' no_infeasible
d8_published() { grep -qE '[0-9a-f]{7,40}' "$work/base/$BENCH_D8_DOC" && grep -qE '/nix/store/[a-z0-9]{32}-' "$work/base/$BENCH_D8_DOC" && grep -qE '[0-9]{4}-[0-9]{2}-[0-9]{2}' "$work/base/$BENCH_D8_DOC"; }
check 'C5 the D8 evidence the system publishes has both halves with hashes and timestamps' d8_published

# --- C6 --------------------------------------------------------------------------------------
memory_fits() {
  local physical total
  physical=$(incus query "/1.0/resources?project=$BENCH_PROJECT" | jq '.memory.total')
  total=$(incus list --project "$BENCH_PROJECT" --format json | jq '[.[] | select(.status == "Running") | .expanded_config["limits.memory"] // error("no limits.memory")
    | capture("^(?<n>[0-9.]+)(?<u>[KMGTE]i?B|B)?$") | (.n | tonumber) * ({"": 1, B: 1, KB: 1e3, MB: 1e6, GB: 1e9, TB: 1e12, KiB: 1024, MiB: 1048576, GiB: 1073741824, TiB: 1099511627776}[.u // ""])] | add // 0')
  jq -en "$total <= $BENCH_GUIDELINE_BYTES and $total < $physical" >/dev/null
}
check 'C6 running memory within the guideline and below physical memory' memory_fits
production_sized() { [[ "$(incus config get --project "$BENCH_PROJECT" "$BENCH_PRODUCTION" limits.memory)" == "$BENCH_PRODUCTION_MEMORY" ]]; }
check "C6 $BENCH_PRODUCTION is sized as the seed resized it" production_sized
sizing_recorded() { # a decision line naming the machine's size, in GB or GiB as people write it
  local size=${BENCH_PRODUCTION_MEMORY%%[!0-9.]*}
  grep -iE "(decided|decision|final|keep|restore).*$BENCH_PRODUCTION.* ${size//./\\.} ?(G|GB|GiB)\b" "$work/base/$BENCH_DECISIONS" | grep -q .
}
check "C6 the final sizing recorded in $BENCH_DECISIONS is the one $BENCH_PRODUCTION runs with" sizing_recorded

# --- C7 --------------------------------------------------------------------------------------
install_doc() {
  local scripts; scripts=$(runbook_steps | tr '\0' '\n')
  grep -q 'git clone' <<< "$scripts" && [[ $(grep -c '^<!-- runbook provision-key ' "$work/base/docs/install.md") == 1 ]] && [[ $(grep -o 'nixos-rebuild switch' <<< "$(grep -v '^push ' <<< "$scripts")" | wc -l) == 1 ]]
}
check 'C7 docs/install.md: clone, key, one nixos-rebuild switch' install_doc
model_docs() {
  grep -qi sops "$work/base/docs/secrets.md" && grep -q /var/lib/sops-nix/key.txt "$work/base/docs/secrets.md" &&
    tr '\n' ' ' < "$work/base/docs/architecture.md" | grep -qiE 'base repo.*instance repo|instance repo.*base repo' && grep -q 'nixos-rebuild switch' "$work/base/docs/architecture.md"
}
check 'C7 docs/secrets.md and docs/architecture.md describe the model' model_docs
runbook_lines() { awk '/^<!-- runbook provision-key /{ print NR; next } /^<!-- runbook -->/{ armed=1; next } /^```/{ if (armed) print NR; armed=0 }' "$work/base/docs/install.md"; }
executed_runbook() { [[ "$(jq -c '[.host.runbook.steps[].line]' "$BENCH_KEPT")" == "$(runbook_lines | jq -sc '.')" ]]; }
check 'C7 runbook executed is the one in docs/install.md' executed_runbook

# --- D8 (the live half skips on a warm run), D9 -----------------------------------------------
check 'D8 static half: a clean checkout builds /run/current-system' same_system
docs=(docs/install.md docs/enroll.md docs/secrets.md docs/architecture.md docs/runbook.md)
docs_present() { for doc in README.md "${docs[@]}"; do [[ -n "$(tr -d '[:space:]' < "$work/base/$doc" 2>/dev/null)" ]] || { echo "$doc missing"; return 1; }; done; }
check 'D9 README and the five docs exist and are not empty' docs_present
docs_linked() { for doc in "${docs[@]}"; do grep -qE "\]\((\./)?$doc(#[^)]*)?\)" "$work/base/README.md" || { echo "$doc not linked"; return 1; }; done; }
check 'D9 each of them is linked from the README' docs_linked

echo "$passed passed, $failed failed"
[[ $failed == 0 ]]
