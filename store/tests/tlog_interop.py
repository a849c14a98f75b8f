"""An independent verifier for Countersign's audit log, used by store/tests/tlog.rs.

Written from RFC 9162 (section 2.1) and the C2SP signed-note and
tlog-checkpoint specs, sharing no code with the Rust implementation:
hashlib for the tree, the `cryptography` package for Ed25519.

Usage: python3 tlog_interop.py FILE.json
Exit codes: 0 all checks pass, 1 a check failed, 3 `cryptography` is missing.
"""

import base64
import binascii
import hashlib
import json
import sys

try:
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
except ImportError:
    print("tlog_interop.py: the `cryptography` package is missing", file=sys.stderr)
    sys.exit(3)


def sha256(data):
    return hashlib.sha256(data).digest()


def leaf_hash(data):
    return sha256(b"\x00" + data)


def node_hash(left, right):
    return sha256(b"\x01" + left + right)


def split_point(n):
    """Largest power of two strictly smaller than n (n >= 2)."""
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def mth(leaves):
    """MTH(D[n]) of RFC 9162 2.1.1, over leaf hashes."""
    n = len(leaves)
    if n == 0:
        return sha256(b"")
    if n == 1:
        return leaves[0]
    k = split_point(n)
    return node_hash(mth(leaves[:k]), mth(leaves[k:]))


def path(m, leaves):
    """PATH(m, D[n]) of RFC 9162 2.1.3.1."""
    n = len(leaves)
    if n <= 1:
        return []
    k = split_point(n)
    if m < k:
        return path(m, leaves[:k]) + [mth(leaves[k:])]
    return path(m - k, leaves[k:]) + [mth(leaves[:k])]


def subproof(m, leaves, whole):
    """SUBPROOF(m, D[n], b) of RFC 9162 2.1.4.1."""
    n = len(leaves)
    if m == n:
        return [] if whole else [mth(leaves)]
    k = split_point(n)
    if m <= k:
        return subproof(m, leaves[:k], whole) + [mth(leaves[k:])]
    return subproof(m - k, leaves[k:], False) + [mth(leaves[:k])]


def verify_inclusion(leaf, index, size, proof, root):
    """RFC 9162 2.1.3.2."""
    if index >= size:
        return False
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            return False
        if fn % 2 == 1 or fn == sn:
            r = node_hash(p, r)
            if fn % 2 == 0:
                while fn % 2 == 0 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


def verify_consistency(first, second, first_hash, second_hash, proof):
    """RFC 9162 2.1.4.2, for 0 < first < second."""
    if not 0 < first < second or not proof:
        return False
    if first & (first - 1) == 0:
        proof = [first_hash] + proof
    fn, sn = first - 1, second - 1
    while fn % 2 == 1:
        fn >>= 1
        sn >>= 1
    fr = sr = proof[0]
    for c in proof[1:]:
        if sn == 0:
            return False
        if fn % 2 == 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if fn % 2 == 0:
                while fn % 2 == 0 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return fr == first_hash and sr == second_hash and sn == 0


def flipped(h):
    return bytes([h[0] ^ 1]) + h[1:]


def b64decode_strict(s):
    raw = base64.b64decode(s, validate=True)
    if base64.b64encode(raw).decode() != s:
        raise ValueError("non-canonical base64")
    return raw


def parse_verifier_key(vkey):
    """<name>+<8 hex key id>+<base64(0x01 || 32-byte Ed25519 public key)>."""
    name, key_id, data = vkey.split("+", 2)
    raw = b64decode_strict(data)
    if len(raw) != 33 or raw[0] != 0x01:
        raise ValueError("not an Ed25519 verifier key")
    expected = sha256(name.encode() + b"\n" + raw)[:4]
    if bytes.fromhex(key_id) != expected:
        raise ValueError("key id does not match")
    return name, expected, Ed25519PublicKey.from_public_bytes(raw[1:])


def open_note(note, vkey):
    """Returns the note text if a signature by vkey verifies, else raises."""
    name, key_id, public_key = parse_verifier_key(vkey)
    if any(ord(c) < 0x20 and c != "\n" for c in note):
        raise ValueError("control character")
    split = note.rindex("\n\n")
    text, sigs = note[: split + 1], note[split + 2 :]
    if not sigs.endswith("\n"):
        raise ValueError("signature block does not end with a newline")
    verified = False
    for line in sigs[:-1].split("\n"):
        if not line.startswith("\u2014 "):
            raise ValueError("bad signature line")
        sig_name, sig_b64 = line[2:].split(" ")
        raw = b64decode_strict(sig_b64)
        if sig_name != name or raw[:4] != key_id:
            continue
        public_key.verify(raw[4:], text.encode())  # raises InvalidSignature
        verified = True
    if not verified:
        raise ValueError("no signature by the given key")
    return text


def parse_checkpoint(text):
    lines = text[:-1].split("\n")
    if len(lines) < 3 or not text.endswith("\n") or any(not l for l in lines):
        raise ValueError("malformed checkpoint")
    origin, size, root = lines[0], lines[1], lines[2]
    if not size.isdigit() or (size != "0" and size.startswith("0")):
        raise ValueError("bad size")
    root_hash = b64decode_strict(root)
    if len(root_hash) != 32:
        raise ValueError("bad root hash")
    return origin, int(size), root_hash, lines[3:]


class Checker:
    def __init__(self):
        self.failures = []
        self.checks = 0

    def check(self, ok, what):
        self.checks += 1
        if not ok:
            self.failures.append(what)


def check_tree(c, tree):
    leaves = [leaf_hash(binascii.unhexlify(d)) for d in tree["leaves"]]
    roots = {}
    for size_text, root in tree["roots"].items():
        size = int(size_text)
        roots[size] = mth(leaves[:size])
        c.check(roots[size].hex() == root, f"root of size {size}")
    for item in tree["inclusion"]:
        index, size = item["index"], item["size"]
        proof = [bytes.fromhex(h) for h in item["proof"]]
        root = mth(leaves[:size])
        c.check(proof == path(index, leaves[:size]), f"PATH({index}, {size})")
        c.check(verify_inclusion(leaves[index], index, size, proof, root), f"inclusion {index}/{size}")
        c.check(
            not verify_inclusion(flipped(leaves[index]), index, size, proof, root),
            f"changed leaf {index}/{size} verifies",
        )
        if proof:
            c.check(
                not verify_inclusion(leaves[index], index, size, proof[:-1], root),
                f"truncated proof {index}/{size} verifies",
            )
    for item in tree["consistency"]:
        old, new = item["old"], item["new"]
        proof = [bytes.fromhex(h) for h in item["proof"]]
        if old == 0 or old == new:
            c.check(proof == [], f"trivial consistency {old}->{new} not empty")
            continue
        r1, r2 = mth(leaves[:old]), mth(leaves[:new])
        c.check(proof == subproof(old, leaves[:new], True), f"PROOF({old}, {new})")
        c.check(verify_consistency(old, new, r1, r2, proof), f"consistency {old}->{new}")
        c.check(
            not verify_consistency(old, new, flipped(r1), r2, proof),
            f"rewritten history {old}->{new} verifies",
        )


def check_checkpoint(c, item, trees):
    try:
        text = open_note(item["note"], item["verifier_key"])
        origin, size, root_hash, extensions = parse_checkpoint(text)
    except (ValueError, InvalidSignature) as e:
        c.check(False, f"checkpoint {item['origin']!r}: {e!r}")
        return
    c.check(origin == item["origin"], "checkpoint origin")
    c.check(size == item["size"], "checkpoint size")
    c.check(extensions == item["extensions"], "checkpoint extensions")
    tree = trees[item["tree"]]
    leaves = [leaf_hash(binascii.unhexlify(d)) for d in tree["leaves"]]
    c.check(root_hash == mth(leaves[:size]), f"checkpoint root at size {size}")


def check_bad_checkpoint(c, item):
    try:
        text = open_note(item["note"], item["verifier_key"])
        parse_checkpoint(text)
    except (ValueError, InvalidSignature):
        c.check(True, "")
        return
    c.check(False, f"bad checkpoint accepted: {item['why']}")


RFC6962_LEAVES = ["", "00", "10", "2021", "3031", "40414243", "5051525354555657",
                  "606162636465666768696a6b6c6d6e6f"]
RFC6962_ROOT_8 = "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"
GO_NOTE_KEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
GO_NOTE = (
    "If you think cryptography is the answer to your problem,\n"
    "then you don't know what your problem is.\n\n"
    "\u2014 PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"
)


def self_test(c):
    """This verifier agrees with published vectors before it judges anything."""
    leaves = [leaf_hash(bytes.fromhex(d)) for d in RFC6962_LEAVES]
    c.check(mth(leaves).hex() == RFC6962_ROOT_8, "self-test: RFC 6962 root of 8 leaves")
    c.check(
        [h.hex()[:8] for h in path(5, leaves)] == ["bc1a0643", "ca854ea1", "d37ee418"],
        "self-test: RFC 6962 inclusion proof of leaf 5 in 8",
    )
    c.check(
        [h.hex()[:8] for h in subproof(6, leaves[:7], True)] == ["0ebc5d34", "b08693ec", "d37ee418"],
        "self-test: RFC 6962 consistency proof from 6 to 7",
    )
    try:
        open_note(GO_NOTE, GO_NOTE_KEY)
        c.check(True, "")
    except (ValueError, InvalidSignature) as e:
        c.check(False, f"self-test: Go's signed-note vector: {e!r}")
    try:
        open_note(GO_NOTE.replace("cryptography", "Cryptography"), GO_NOTE_KEY)
        c.check(False, "self-test: a changed note verified")
    except InvalidSignature:
        c.check(True, "")


def main():
    with open(sys.argv[1], encoding="utf-8") as f:
        data = json.load(f)
    c = Checker()
    self_test(c)
    for tree in data["trees"]:
        check_tree(c, tree)
    for item in data["checkpoints"]:
        check_checkpoint(c, item, data["trees"])
    for item in data["bad_checkpoints"]:
        check_bad_checkpoint(c, item)
    for failure in c.failures[:50]:
        print("FAIL:", failure, file=sys.stderr)
    print(f"tlog_interop.py: {c.checks} checks, {len(c.failures)} failures")
    sys.exit(1 if c.failures else 0)


if __name__ == "__main__":
    main()
