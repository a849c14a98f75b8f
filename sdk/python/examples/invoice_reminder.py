"""Send an invoice reminder through the Countersign gate.

Run the gate from the repository root (its example policies are in
./policies), create an agent key, then run this script:

    export COUNTERSIGN_API_KEY=$(countersign keys create --workspace default --role agent)
    countersign serve &
    python sdk/python/examples/invoice_reminder.py --amount 1250.10

The policy decides. Allowed: the reminder is sent at once. Needs approval:
the proposal is kept in an SQLite file and the script waits; a finance lead
approves it from the link the gate prints in its log, then the runner sends
it. Blocked: nothing is sent. In every case the script ends by fetching the
run's signed receipt and verifying it offline.
"""

from __future__ import annotations

import argparse
import json
import sys
from decimal import Decimal
from typing import Any, Dict

import countersign


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--invoice", default="INV-1042")
    parser.add_argument("--amount", default="1250.10", help="amount outstanding (exact decimal)")
    parser.add_argument("--timezone", default="Europe/Berlin", help="the customer's IANA time zone")
    parser.add_argument("--store", default="countersign-pending.db", help="SQLite file for pending proposals")
    parser.add_argument("--wait", type=float, default=600, help="seconds to wait for an approval")
    args = parser.parse_args()

    client = countersign.Client()  # COUNTERSIGN_API_KEY and COUNTERSIGN_URL
    store = countersign.SQLitePendingStore(args.store)  # amounts come back as exact Decimals
    manager = countersign.PendingActionManager(client, store)
    runner = countersign.ActionRunner(client, store)

    # The real action. Countersign never runs it: your code does, only when
    # the gate says the run is executable.
    @runner.when_executable("send_invoice_reminder")
    def send_invoice_reminder(payload: Dict[str, Any]) -> Dict[str, Any]:
        print(f"-> emailing {payload['customer']['name']} about {payload['invoice_id']} ({payload['amount']})")
        return {"message_id": f"msg-{payload['invoice_id']}-{payload['reminders_sent'] + 1}"}

    # 1. Propose the action. The idempotency key makes a repeated proposal
    #    (a retry, a restarted agent) return the same run.
    try:
        ticket = manager.propose(
            "send_invoice_reminder",
            {
                "invoice_id": args.invoice,
                "amount": Decimal(args.amount),
                "reminders_sent": 1,
                "customer": {"name": "Acme GmbH", "tier": "standard", "timezone": args.timezone},
            },
            idempotency_key=f"{args.invoice}-reminder-2",
            actor="finance_agent",
            reasoning="Invoice is 14 days overdue and the customer has not replied",
        )
    except countersign.IdempotencyConflict:
        # The gate keeps one run per key: this invoice's second reminder was
        # already proposed with other details (another amount, say).
        print(
            f"{args.invoice}'s second reminder was already proposed with different details;"
            " pass --invoice with another invoice id to propose a new one",
            file=sys.stderr,
        )
        return 1
    # 2. The policy decided.
    print(f"run {ticket.run_id}: {ticket.governance_status} ({ticket.governance_reason})")

    if ticket.executable:
        # 3a. Allowed: act now, then report what happened.
        try:
            result = send_invoice_reminder(ticket.payload)
        except Exception as exc:
            client.report_failed(ticket.run_id, str(exc))
            raise
        client.report_executed(ticket.run_id, result)
    elif ticket.stored:
        # 3b. Needs approval: the ticket is saved in the store. A worker
        #     would call runner.run_forever(); here we wait for the answer
        #     and run one pass.
        print(f"waiting up to {args.wait:g}s for an approver (see the gate's log for the links)")
        try:
            run = client.wait_for_decision(ticket.run_id, timeout=args.wait, poll_interval=1.0)
        except countersign.DecisionTimeout:
            print("no decision yet; the ticket stays stored for the next run of this script")
            return 0
        print(f"decided: {run.governance_status}")
        summary = runner.run_pending_once()
        print(f"runner: executed {summary.executed}, failed {summary.failed}, refused {summary.refused}")
    else:
        # 3c. Blocked (or already done): do not act.
        print("not sending the reminder")

    # 4. The receipt: a signed record of the run, verifiable offline.
    receipt = client.receipt(ticket.run_id)
    countersign.verify_receipt(receipt, client.receipt_keys())
    print("receipt verified:")
    print(json.dumps(receipt.receipt, indent=2, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
