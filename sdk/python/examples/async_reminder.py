"""The invoice reminder from an asyncio agent, with ``@countersign.gated`` on an ``async def``.

    export COUNTERSIGN_API_KEY=$(countersign keys create --workspace default --role agent)
    python sdk/python/examples/async_reminder.py --amount 120

Allowed: the coroutine runs, its result is reported, and the signed receipt is
verified. Needs approval or blocked: the coroutine never runs.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from decimal import Decimal
from typing import Any, Dict

import countersign


async def main(invoice: str, amount: Decimal, timezone: str) -> int:
    async with countersign.AsyncClient() as client:  # COUNTERSIGN_API_KEY, COUNTERSIGN_URL

        @countersign.gated("send_invoice_reminder", client=client, actor="finance_agent")
        async def send_invoice_reminder(
            invoice_id: str, amount: Decimal, reminders_sent: int, customer: Dict[str, Any]
        ) -> Dict[str, Any]:
            run = countersign.current_run()  # the run this call executes for
            assert run is not None
            await asyncio.sleep(0.1)  # stands for the real (async) email call
            print(f"-> emailed {customer['name']} about {invoice_id} ({amount}), run {run.run_id}")
            return {"message_id": f"msg-{invoice_id}"}

        try:
            call = await send_invoice_reminder.call_with_run(  # type: ignore[attr-defined]
                invoice, amount, 1, {"name": "Acme GmbH", "timezone": timezone}
            )
        except countersign.ApprovalPending as e:
            print(f"run {e.run_id}: waits for a finance lead's approval; nothing sent")
            return 0
        except countersign.ActionBlocked as e:
            print(f"run {e.run_id}: {e.governance_status}; nothing sent")
            return 0
        receipt = await call.receipt()
        countersign.verify_receipt(receipt, await client.receipt_keys())
        print(f"run {call.run_id}: {call.run.execution_status}, receipt verified")
        return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--invoice", default="INV-2001")
    parser.add_argument("--amount", default="120.00", help="amount outstanding (exact decimal)")
    parser.add_argument("--timezone", default="Europe/Berlin")
    args = parser.parse_args()
    sys.exit(asyncio.run(main(args.invoice, Decimal(args.amount), args.timezone)))
