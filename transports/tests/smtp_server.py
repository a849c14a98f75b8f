"""A real SMTP server on loopback for the email transport's tests.

Built on aiosmtpd. It listens on 127.0.0.1 on a free port and prints
`PORT <n>` on stdout once it accepts connections. Every message it accepts is
parsed with Python's own email package (independent of lettre) and printed as
one JSON line: envelope, decoded headers, and the text and HTML bodies.

Recipients whose local part is `tempfail` get a 451 reply, `permfail` a 550.
With `--auth USER:PASSWORD`, AUTH is required and only that pair passes
(over plain TCP: this is a test server on loopback).

The server exits when its standard input closes, so it never outlives the
test that started it.
"""

import asyncio
import base64
import email
import email.policy
import json
import logging
import os
import sys
import threading
import warnings

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword

# AUTH without TLS is intended here (loopback test server): keep the test
# output quiet about it.
warnings.filterwarnings("ignore")
logging.getLogger("mail.log").setLevel(logging.CRITICAL)


def emit(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


class Handler:
    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        local = address.split("@", 1)[0].lower()
        if local == "tempfail":
            return "451 4.3.0 Mailbox temporarily unavailable, try again later"
        if local == "permfail":
            return "550 5.1.1 No such user here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        raw = envelope.original_content or envelope.content
        if isinstance(raw, str):
            raw = raw.encode("utf-8", "surrogateescape")
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        headers = {}
        for name, value in msg.items():
            headers.setdefault(name.lower(), []).append(str(value))
        text = msg.get_body(preferencelist=("plain",))
        html = msg.get_body(preferencelist=("html",))
        emit(
            {
                "mail_from": envelope.mail_from,
                "rcpt_tos": envelope.rcpt_tos,
                "headers": headers,
                "content_type": msg.get_content_type(),
                "parts": [part.get_content_type() for part in msg.walk()],
                "text": text.get_content() if text is not None else None,
                "html": html.get_content() if html is not None else None,
                "raw": base64.b64encode(raw).decode("ascii"),
            }
        )
        return "250 2.0.0 Message accepted for delivery"


def main():
    credentials = None
    if len(sys.argv) == 3 and sys.argv[1] == "--auth":
        user, _, password = sys.argv[2].partition(":")
        credentials = (user.encode(), password.encode())

    def authenticator(server, session, envelope, mechanism, auth_data):
        ok = (
            isinstance(auth_data, LoginPassword)
            and credentials is not None
            and (auth_data.login, auth_data.password) == credentials
        )
        # handled=False: let aiosmtpd answer 235 or 535 itself.
        return AuthResult(success=ok, handled=False)

    def factory():
        if credentials is None:
            return SMTP(Handler(), hostname="countersign-test")
        return SMTP(
            Handler(),
            hostname="countersign-test",
            authenticator=authenticator,
            auth_required=True,
            auth_require_tls=False,
        )

    async def serve():
        server = await asyncio.get_running_loop().create_server(factory, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        sys.stdout.write(f"PORT {port}\n")
        sys.stdout.flush()
        async with server:
            await server.serve_forever()

    def exit_when_stdin_closes():
        sys.stdin.read()
        os._exit(0)

    threading.Thread(target=exit_when_stdin_closes, daemon=True).start()
    asyncio.run(serve())


if __name__ == "__main__":
    main()
