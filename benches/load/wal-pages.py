#!/usr/bin/env python3
"""Which B-trees the WAL's pages belong to: a measure of write amplification.

    python3 benches/load/wal-pages.py DB [--runs-before N]

DB is a copy of the gate's database taken together with its `-wal` file
(`DB-wal` next to it), e.g. by `WAL_PAGES=1 benches/load/run.sh`, which
copies both halfway through the 64-connection gate run. The script walks the
WAL's frame headers (only the frames of the current WAL generation, whose
salts match the header), counts the commits among them, and names the table
or index each frame's page belongs to (SQLite's `dbstat` table, read from the
copy with the WAL applied). Every frame is one page written to the WAL and
later copied into the database by a checkpoint, so frames per commit, per
B-tree, show where the write volume of a commit goes.

A copy of a database that is being written can be a little torn at its end;
the counts are then approximate, which is all they need to be.
"""

import collections
import sqlite3
import struct
import sys


def frames(wal_path):
    with open(wal_path, "rb") as f:
        data = f.read()
    if len(data) < 32:
        return 0, [], 0
    _magic, _version, page_size, _ckpt, salt1, salt2, _c1, _c2 = struct.unpack(
        ">IIIIIIII", data[:32]
    )
    pages, commits, off = [], 0, 32
    while off + 24 + page_size <= len(data):
        page, db_size, s1, s2 = struct.unpack(">IIII", data[off : off + 16])
        if (s1, s2) != (salt1, salt2):
            break
        pages.append(page)
        if db_size:
            commits += 1
        off += 24 + page_size
    return page_size, pages, commits


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    db = sys.argv[1]
    page_size, pages, commits = frames(db + "-wal")
    if not pages:
        sys.exit("no frames in the WAL (it was just restarted, or the copy is empty)")
    conn = sqlite3.connect(db)
    owner = {page: name for name, page in conn.execute("SELECT name, pageno FROM dbstat")}
    counts = collections.Counter(owner.get(p, "(freelist or new)") for p in pages)
    per = max(commits, 1)
    print(
        f"{len(pages)} frames of {page_size} bytes in {commits} commits: "
        f"{len(pages) / per:.1f} pages per commit"
    )
    print(f"{'b-tree':<36} {'frames':>8} {'per commit':>11} {'share':>7}")
    for name, n in counts.most_common():
        print(f"{name:<36} {n:>8} {n / per:>11.1f} {100 * n / len(pages):>6.1f}%")


if __name__ == "__main__":
    main()
