"""Verifies a webhook delivery with the `standardwebhooks` package (the
reference Python implementation of the Standard Webhooks specification).

Reads one JSON object on stdin: {"secret": "whsec_...", "headers": {...},
"body": "<the exact body as sent>"}. On success prints the verified payload
as JSON and exits 0; on a verification failure prints the error on stderr
and exits 1.
"""

import json
import sys

from standardwebhooks.webhooks import Webhook, WebhookVerificationError


def main():
    request = json.load(sys.stdin)
    try:
        payload = Webhook(request["secret"]).verify(request["body"], request["headers"])
    except WebhookVerificationError as e:
        sys.stderr.write(f"verification failed: {e}\n")
        sys.exit(1)
    sys.stdout.write(json.dumps(payload))


if __name__ == "__main__":
    main()
