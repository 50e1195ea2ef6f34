#!/usr/bin/env python3
"""The lab's stand-in for sops-nix's activation step (sops-install-secrets).

Decrypts a sops file (age recipients only) with the machine's age key, verifies its MAC over
every leaf exactly as sops does, and writes the named top-level secrets to OUT_DIR/NAME
(0400, root) in a fresh OUT_DIR (0751). Nothing secret is ever printed.

The data key is opened by the `age` CLI; values are AES-256-GCM (python3-cryptography); YAML is
read with python3-yaml but typed the way sops's Go yaml.v3 types it, because the MAC hashes
leaves as Go sees them (and JSON numbers as float64, as Go's encoding/json reads them).

Exit codes: 2 usage, 3 key file or key mismatch, 4 malformed or unsupported file,
5 MAC mismatch or tampered value, 6 a requested secret is missing or not a string,
7 cannot write the secrets, 1 internal error.
"""
import argparse
import base64
import calendar
import hashlib
import json
import math
import os
import re
import shutil
import subprocess
import sys
import traceback
from decimal import Decimal

PROG = "sops-install-secrets"


class Fail(Exception):
    def __init__(self, code, message):
        super().__init__(message)
        self.code = code


try:
    import yaml
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
except ImportError as missing:  # pragma: no cover - depends on the image
    print(f"{PROG}: needs python3-yaml and python3-cryptography ({missing.name} is missing)", file=sys.stderr)
    sys.exit(4)

# --- Leaves, typed as Go holds them --------------------------------------------------------
# A leaf is (type, value, extra): ("str", text, raw_bytes_or_None), ("int", int, None),
# ("float", float, None), ("bool", bool, None), ("time", text, canonical), ("bytes", b, None).
# A tree node is ("map", [(key, node)]), ("list", [node]), ("leaf", leaf) or None for null.

INT64_MIN, INT64_MAX, UINT64_MAX = -(2**63), 2**63 - 1, 2**64 - 1
YAML_STYLE_FLOAT = re.compile(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?")
TIMESTAMP = re.compile(
    r"(\d{4})-(\d{1,2})-(\d{1,2})(?:([Tt ])(\d{1,2}):(\d{1,2}):(\d{1,2})(?:[.,](\d+))?(Z|[+-]\d{2}:\d{2})?)?"
)
MAC_ONLY_ENCRYPTED_INIT = bytes.fromhex("8a3fd2ad54ce66527b1034f3d147be0b0b975b3bf44f72c6fdadec8176f27d69")
ENC_VALUE = re.compile(r"ENC\[AES256_GCM,data:(.+),iv:(.+),tag:(.+),type:(.+)\]")


def go_format_float(x):
    """strconv.FormatFloat(x, 'f', -1, 64): shortest round-trip digits, no exponent."""
    if math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return "+Inf" if x > 0 else "-Inf"
    if x == 0:
        return "-0" if math.copysign(1.0, x) < 0 else "0"
    return format(Decimal(repr(x)).normalize(), "f")


def go_timestamp(text):
    """yaml.v3's parseTimestamp, returning Go's RFC3339Nano text, or None."""
    m = TIMESTAMP.fullmatch(text)
    if not m:
        return None
    y, mo, d, sep, h, mi, s, frac, zone = m.groups()
    if sep is None:
        if frac is not None or zone is not None:
            return None
    elif (zone is not None) if sep == " " else (zone is None):
        return None
    year, month, day = int(y), int(mo), int(d)
    hour, minute, second = int(h or 0), int(mi or 0), int(s or 0)
    if not 1 <= month <= 12 or not 1 <= day <= calendar.monthrange(year, month)[1]:
        return None
    if hour > 23 or minute > 59 or second > 59:
        return None
    nanos = (frac or "")[:9].rstrip("0")
    offset = "Z" if zone in (None, "Z", "+00:00", "-00:00") else zone
    return f"{year:04d}-{month:02d}-{day:02d}T{hour:02d}:{minute:02d}:{second:02d}{'.' + nanos if nanos else ''}{offset}"


def go_parse_int_base0(text):
    m = re.fullmatch(r"([+-]?)(0[xX][0-9a-fA-F]+|0[oO][0-7]+|0[bB][01]+|0[0-7]*|[1-9][0-9]*)", text)
    if not m:
        return None
    sign, body = m.groups()
    magnitude = int(body, 8) if re.fullmatch(r"0[0-7]+", body) else int(body, 0)
    value = -magnitude if sign == "-" else magnitude
    if INT64_MIN <= value <= INT64_MAX or (sign == "" and value <= UINT64_MAX):
        return value
    return None


PLAIN_MAP = {}
for _words, _leaf in (
    (("true", "True", "TRUE"), ("bool", True, None)),
    (("false", "False", "FALSE"), ("bool", False, None)),
    (("", "~", "null", "Null", "NULL"), None),
    ((".nan", ".NaN", ".NAN"), ("float", math.nan, None)),
    ((".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF"), ("float", math.inf, None)),
    (("-.inf", "-.Inf", "-.INF"), ("float", -math.inf, None)),
):
    for _word in _words:
        PLAIN_MAP[_word] = _leaf


def resolve_plain(text):
    """What yaml.v3 decodes an untagged plain scalar to: a leaf, or None for null."""
    if text in PLAIN_MAP:
        return PLAIN_MAP[text]
    first = text[:1]
    if first == ".":
        if re.fullmatch(r"\.[0-9]+([eE][-+]?[0-9]+)?", text):
            return ("float", float(text), None)
        return ("str", text, None)
    if not first or first not in "+-0123456789":
        return ("str", text, None)
    canon = go_timestamp(text)
    if canon is not None:
        return ("time", text, canon)
    plain = text.replace("_", "")
    value = go_parse_int_base0(plain)
    if value is not None:
        return ("int", value, None)
    if YAML_STYLE_FLOAT.fullmatch(plain):
        number = float(plain)
        if math.isfinite(number):
            return ("float", number, None)
    return ("str", text, None)


def resolve_tagged(tag, text, where):
    short = tag.replace("tag:yaml.org,2002:", "!!")
    if short == "!!str":
        return ("str", text, None)
    if short == "!!binary":
        try:
            return ("str", base64.b64decode("".join(text.split()), validate=True).decode("utf-8", "replace"), None)
        except ValueError:
            raise Fail(4, f"{where}: !!binary value is not base64")
    if short not in ("!!bool", "!!int", "!!float", "!!null", "!!timestamp"):
        return ("str", text, None)
    leaf = resolve_plain(text)
    if short == "!!timestamp" and (leaf is None or leaf[0] != "time"):
        canon = go_timestamp(text)
        if canon is not None:
            leaf = ("time", text, canon)
    got = "!!null" if leaf is None else {"str": "!!str", "int": "!!int", "float": "!!float", "bool": "!!bool", "time": "!!timestamp"}[leaf[0]]
    if got == short:
        return leaf
    if short == "!!float" and leaf is not None and leaf[0] == "int":
        return ("float", float(leaf[1]), None)
    raise Fail(4, f"{where}: cannot decode {got} as {short}")


# --- Reading the file ----------------------------------------------------------------------

PLAIN_TAG = "tag:sops-install-secrets,plain"


class _Loader(yaml.SafeLoader):
    """Leaves untagged plain scalars unresolved, so that Go's rules can type them."""

    def resolve(self, kind, value, implicit):
        if kind is yaml.ScalarNode and implicit[0]:
            return PLAIN_TAG
        return super().resolve(kind, value, implicit)


def yaml_trees(text, source):
    try:
        documents = list(yaml.compose_all(text, Loader=_Loader))
    except yaml.YAMLError as error:
        raise Fail(4, f"{source} is not valid YAML ({getattr(error, 'problem', None) or type(error).__name__})")

    def convert(node, where):
        if isinstance(node, yaml.MappingNode):
            entries = []
            for key_node, value_node in node.value:
                key = convert(key_node, where + " (a key)")
                if key is None or key[0] != "leaf" or key[1][0] != "str":
                    raise Fail(4, f"{source}: {where or 'the top level'} has a non-string key")
                name = key[1][1]
                entries.append((name, convert(value_node, f"{where}.{name}" if where else name)))
            return ("map", entries)
        if isinstance(node, yaml.SequenceNode):
            return ("list", [convert(item, f"{where}[{i}]") for i, item in enumerate(node.value)])
        if node.tag == PLAIN_TAG:
            leaf = resolve_plain(node.value)
        elif node.tag == "tag:yaml.org,2002:str" and node.style is not None:
            leaf = ("str", node.value, None)
        else:
            leaf = resolve_tagged(node.tag, node.value, f"{source}: {where}")
        return None if leaf is None else ("leaf", leaf)

    trees = []
    for document in documents:
        if document is None:
            continue
        tree = convert(document, "")
        if tree is None:
            continue
        if tree[0] != "map":
            raise Fail(4, f"{source}: a sops YAML document must be a mapping at the top")
        trees.append(tree)
    return trees


def json_tree(text, source):
    def pairs(items):
        return ("map", [(key, convert(value)) for key, value in items])

    def convert(value):
        if isinstance(value, tuple):
            return value
        if value is None:
            return None
        if isinstance(value, bool):
            return ("leaf", ("bool", value, None))
        if isinstance(value, float):
            return ("leaf", ("float", value, None))
        if isinstance(value, str):
            return ("leaf", ("str", value, None))
        if isinstance(value, list):
            return ("list", [convert(item) for item in value])
        raise Fail(4, f"{source}: unexpected JSON value")

    # Go's encoding/json reads every number as a float64.
    tree = json.loads(text, object_pairs_hook=pairs, parse_int=float, parse_float=float, parse_constant=lambda c: float(c))
    if not (isinstance(tree, tuple) and tree[0] == "map"):
        raise Fail(4, f"{source}: a sops JSON file must be an object at the top")
    return tree


def read_trees(text, source):
    try:
        parsed = json.loads(text)
    except ValueError:
        parsed = None
    if isinstance(parsed, dict):
        return [json_tree(text, source)]
    return yaml_trees(text, source)


def to_plain(node):
    if node is None:
        return None
    if node[0] == "map":
        return {key: to_plain(value) for key, value in node[1]}
    if node[0] == "list":
        return [to_plain(item) for item in node[1]]
    leaf = node[1]
    return leaf[1]


# --- sops semantics ------------------------------------------------------------------------


def leaf_bytes(leaf):
    kind, value, extra = leaf
    if kind == "str":
        return extra if extra is not None else value.encode("utf-8")
    if kind == "int":
        return str(value).encode()
    if kind == "float":
        return go_format_float(value).encode()
    if kind == "bool":
        return b"True" if value else b"False"
    if kind == "time":
        return extra.encode()
    return value


def strict_b64(text):
    if len(text) % 4 or not re.fullmatch(r"[A-Za-z0-9+/]*={0,2}", text):
        return None
    return base64.b64decode(text)


def decrypt_value(text, key, ad, where):
    m = ENC_VALUE.match(text)
    parts = [strict_b64(m.group(i)) for i in (1, 2, 3)] if m else [None]
    if not m or any(part is None for part in parts):
        raise Fail(5, f"{where} is not a sops-encrypted value, where one is expected")
    data, iv, tag = parts
    try:
        plain = AESGCM(key).decrypt(iv, data + tag, ad.encode("utf-8"))
    except (InvalidTag, ValueError):
        raise Fail(5, f"{where} fails AES-GCM authentication: it was modified, or moved from another key")
    kind = m.group(4)
    text8 = plain.decode("utf-8", "replace")
    bad = Fail(4, f"{where} is typed {kind} but its plaintext does not parse as one")
    if kind in ("str", "comment"):
        return ("str", text8, plain)
    if kind == "int":
        if not re.fullmatch(r"[+-]?[0-9]+", text8) or not INT64_MIN <= int(text8) <= INT64_MAX:
            raise bad
        return ("int", int(text8), None)
    if kind == "float":
        if re.fullmatch(r"[+-]?(inf|infinity)", text8, re.I):
            return ("float", -math.inf if text8.startswith("-") else math.inf, None)
        if re.fullmatch(r"nan", text8, re.I):
            return ("float", math.nan, None)
        if not re.fullmatch(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?", text8) or not math.isfinite(float(text8)):
            raise bad
        return ("float", float(text8), None)
    if kind == "bool":
        if text8 in ("1", "t", "T", "TRUE", "true", "True"):
            return ("bool", True, None)
        if text8 in ("0", "f", "F", "FALSE", "false", "False"):
            return ("bool", False, None)
        raise bad
    if kind == "time":
        return ("time", text8, text8)
    if kind == "bytes":
        return ("bytes", plain, None)
    raise Fail(4, f"{where} has an unknown sops type")


def crypt_rule(meta, source):
    fields = ["unencrypted_suffix", "encrypted_suffix", "unencrypted_regex", "encrypted_regex",
              "unencrypted_comment_regex", "encrypted_comment_regex"]
    given = [field for field in fields if meta.get(field) not in (None, "")]
    if len(given) > 1:
        raise Fail(4, f"{source} sets {' and '.join(given)}; sops allows only one of them")
    field = given[0] if given else "unencrypted_suffix"
    value = str(meta.get(field) or "_unencrypted")
    if "comment" in field:
        raise Fail(4, f"{source} uses sops.{field}, which this tool does not support")
    if field.endswith("_regex"):
        try:
            regex = re.compile(value)
        except re.error:
            raise Fail(4, f"{source}: sops.{field} is not a regular expression this tool can use")
        if field == "unencrypted_regex":
            return lambda path: not any(regex.search(key) for key in path)
        return lambda path: any(regex.search(key) for key in path)
    if field == "unencrypted_suffix":
        return lambda path: not any(key.endswith(value) for key in path)
    return lambda path: any(key.endswith(value) for key in path)


def normalize_lastmodified(text, source):
    """time.Parse(RFC3339) then Format(RFC3339): the additional data of the MAC."""
    m = re.fullmatch(r"(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.\d+)?(Z|[+-]\d{2}:\d{2})", text)
    if not m:
        raise Fail(4, f"{source}: sops.lastmodified is not an RFC 3339 time")
    zone = "Z" if m.group(2) in ("Z", "+00:00", "-00:00") else m.group(2)
    return m.group(1) + zone


def data_key(meta, key_file, source):
    groups = meta.get("key_groups")
    holder = meta
    if groups:
        if len(groups) > 1:
            raise Fail(4, f"{source} splits its data key over {len(groups)} key groups (Shamir); not supported")
        holder = groups[0] or {}
    entries = holder.get("age") or []
    if not entries:
        others = [kind for kind in ("pgp", "kms", "gcp_kms", "azure_kv", "hc_vault", "hckms") if holder.get(kind)]
        raise Fail(4, f"{source} has no age recipient (only {', '.join(others) or 'no keys at all'}); this tool needs age")
    age = shutil.which("age")
    if age is None:
        raise Fail(3, "the age CLI is not on PATH")
    problems = []
    for entry in entries:
        recipient = str((entry or {}).get("recipient", "?"))
        result = subprocess.run([age, "-d", "-i", key_file], input=str((entry or {}).get("enc", "")).encode(),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, check=False)
        if result.returncode == 0 and len(result.stdout) == 32:
            return result.stdout
        lines = result.stderr.decode("utf-8", "replace").strip().splitlines()
        problems.append(lines[0] if lines else f"age exited {result.returncode}")
    recipients = ",".join(str((entry or {}).get("recipient", "?")) for entry in entries)
    raise Fail(3, f"the age key in {key_file} opens none of the {len(entries)} recipients {recipients} in {source}"
                  f" (age said: {problems[0] if problems else 'nothing'})")


def decrypt_file(text, key_file, source):
    trees = read_trees(text, source)
    if not trees:
        raise Fail(4, f"{source} is empty")
    sops_node = next((value for key, value in trees[0][1] if key == "sops"), None)
    if sops_node is None or sops_node[0] != "map":
        raise Fail(4, f"{source} has no sops metadata: it is not a sops-encrypted file")
    meta = to_plain(sops_node)
    should_encrypt = crypt_rule(meta, source)
    lastmodified = meta.get("lastmodified")
    if lastmodified in (None, ""):
        raise Fail(4, f"{source}: sops.lastmodified is missing")
    mac_ad = normalize_lastmodified(str(lastmodified), source)
    key = data_key(meta, key_file, source)

    mac_only_encrypted = meta.get("mac_only_encrypted") is True
    digest = hashlib.sha512()
    if mac_only_encrypted:
        digest.update(MAC_ONLY_ENCRYPTED_INIT)

    def walk(node, path, display):
        if node is None:
            return None
        if node[0] == "map":
            return ("map", [(k, walk(v, path + [k], f"{display}.{k}" if display else k)) for k, v in node[1]])
        if node[0] == "list":
            # List items share the list's path: sops adds no index to the additional data.
            return ("list", [walk(item, path, f"{display}[{i}]") for i, item in enumerate(node[1])])
        leaf = node[1]
        encrypted = should_encrypt(path)
        if encrypted:
            if leaf[0] != "str":
                raise Fail(5, f"{source}: the value at {display} is a plain {leaf[0]}, where a sops-encrypted value is expected")
            if leaf[1] != "":
                leaf = decrypt_value(leaf[1], key, ":".join(path) + ":", f"{source}: the value at {display}")
        if not mac_only_encrypted or encrypted:
            digest.update(leaf_bytes(leaf))
        return ("leaf", leaf)

    documents = [walk(("map", [(k, v) for k, v in tree[1] if k != "sops"]), [], "") for tree in trees]
    computed = digest.hexdigest().upper()
    mac = meta.get("mac")
    if mac in (None, ""):
        raise Fail(5, f"MAC mismatch in {source}: the file has no MAC")
    try:
        file_mac = decrypt_value(str(mac), key, mac_ad, "sops.mac")
    except Fail:
        raise Fail(5, f"MAC mismatch in {source}: sops.mac does not decrypt under sops.lastmodified")
    if file_mac[0] != "str" or file_mac[1] != computed:
        raise Fail(5, f"MAC mismatch in {source}: the file was modified after it was encrypted")
    return documents[0]


# --- Installing ----------------------------------------------------------------------------

NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]*")


def install(document, names, out_dir):
    entries = dict(document[1])
    chosen = []
    if names:
        for name in names:
            if name not in entries:
                raise Fail(6, f"secret {name} is not a top-level key of the sops file")
            node = entries[name]
            if node is None or node[0] != "leaf" or node[1][0] != "str":
                raise Fail(6, f"secret {name} is not a string in the sops file")
            chosen.append(name)
    else:
        for name, node in document[1]:
            if node is not None and node[0] == "leaf" and node[1][0] == "str":
                chosen.append(name)
            else:
                print(f"{PROG}: skipping {name}: not a string", file=sys.stderr)
    for name in chosen:
        if not NAME.fullmatch(name) or name in (".", ".."):
            raise Fail(6, f"secret name {name!r} cannot be a file name")
    try:
        os.makedirs(out_dir, mode=0o751, exist_ok=True)
        os.chmod(out_dir, 0o751)
        os.chown(out_dir, 0, 0)
        for name in chosen:
            leaf = entries[name][1]
            final = os.path.join(out_dir, name)
            temporary = os.path.join(out_dir, f".{name}.tmp")
            if os.path.lexists(temporary):
                os.unlink(temporary)
            fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o400)
            try:
                os.fchown(fd, 0, 0)
                os.fchmod(fd, 0o400)
                os.write(fd, leaf_bytes(leaf))
            finally:
                os.close(fd)
            os.replace(temporary, final)
    except PermissionError as error:
        raise Fail(7, f"cannot install secrets into {out_dir} as root:root ({error.strerror}; run as root)")
    except OSError as error:
        raise Fail(7, f"cannot install secrets into {out_dir}: {error.strerror} ({error.filename})")
    return chosen


def main(argv):
    parser = argparse.ArgumentParser(prog=PROG, description="Decrypt sops secrets (age) into a directory, as sops-nix does.")
    parser.add_argument("--key-file", required=True, help="age identity file, e.g. /var/lib/sops-nix/key.txt")
    parser.add_argument("--sops-file", required=True, help="the sops-encrypted YAML or JSON file")
    parser.add_argument("--out-dir", required=True, help="where to write one file per secret, e.g. /run/secrets.d/1")
    parser.add_argument("--name", action="append", default=[], help="a top-level key to install (repeatable; default: all strings)")
    args = parser.parse_args(argv)

    try:
        if not os.path.isfile(args.key_file):
            raise Fail(3, f"the age key file {args.key_file} is missing")
        with open(args.key_file, "rb") as handle:
            if not re.search(rb"^\s*AGE-SECRET-KEY-1", handle.read(), re.M):
                raise Fail(3, f"the age key file {args.key_file} holds no age identity")
        try:
            with open(args.sops_file, "r", encoding="utf-8") as handle:
                text = handle.read()
        except OSError as error:
            raise Fail(4, f"cannot read {args.sops_file}: {error.strerror}")
        source = os.path.basename(args.sops_file)
        document = decrypt_file(text, args.key_file, source)
        installed = install(document, args.name, args.out_dir)
    except Fail as failure:
        print(f"{PROG}: {failure}", file=sys.stderr)
        return failure.code
    except Exception as error:  # noqa: BLE001 - never echo a message that might quote a secret
        frames = traceback.extract_tb(error.__traceback__)
        line = frames[-1].lineno if frames else "?"
        print(f"{PROG}: internal error {type(error).__name__} (line {line})", file=sys.stderr)
        return 1
    print(f"{PROG}: installed {len(installed)} secrets into {args.out_dir}: {', '.join(installed)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
