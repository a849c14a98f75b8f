"""Prints the messages of a maildir (as written by aiosmtpd's Mailbox
handler) as one JSON list: [{"file", "to", "from", "subject", "text"}].

`text` is the decoded text/plain body (quoted-printable and base64 are
undone by the email package), so links can be matched as they were sent.
"""
import email
import email.policy
import json
import os
import sys


def messages(maildir):
    out = []
    for sub in ("new", "cur"):
        folder = os.path.join(maildir, sub)
        if not os.path.isdir(folder):
            continue
        for name in sorted(os.listdir(folder)):
            path = os.path.join(folder, name)
            with open(path, "rb") as f:
                msg = email.message_from_binary_file(f, policy=email.policy.default)
            body = msg.get_body(preferencelist=("plain",))
            text = body.get_content() if body is not None else ""
            out.append(
                {
                    "file": os.path.join(sub, name),
                    "to": str(msg.get("To", "")),
                    "from": str(msg.get("From", "")),
                    "subject": str(msg.get("Subject", "")),
                    "text": text,
                }
            )
    return out


if __name__ == "__main__":
    json.dump(messages(sys.argv[1]), sys.stdout)
