# The finance example policies (policies/finance/*.yaml) translated to Rego
# for the side-by-side benchmarks, evaluated with regorus.
#
# input: {"action", "actor", "payload", "source", "now_ns"}; actor, source
# and now_ns are null when the request has none. now_ns is `now` in
# nanoseconds since the epoch. data.time_zones: the known IANA zone names
# (regorus fails the whole evaluation on an unknown zone, so zones are
# checked first).
#
# A verdict is a strength: allow 1, require_approval 2, block 3. Every rule
# whose condition holds adds [name, its verdict] to `hits`. Countersign fails
# closed (a condition it cannot evaluate counts as the action's on_error
# verdict), while Rego just makes such an expression undefined; so each rule
# also has `errors` clauses spelling out when Countersign could not evaluate
# it (a missing field, a string where a number is compared, ...), and the
# comparisons are guarded by is_number/is_string, since Rego orders values
# of different types instead of failing.
#
# `decision` is the strongest hit, or the action's default when nothing
# matched, or block for an undeclared action. The shadow rule
# proposed-threshold-250 is left out: it never decides.
package finance

import rego.v1

actions := {
	"grant_access": {"default": 2, "on_error": 3},
	"change_bank_details": {"default": 3, "on_error": 3},
	"send_invoice_reminder": {"default": 1, "on_error": 2},
	"mark_invoice_paid": {"default": 3, "on_error": 3},
	"issue_refund": {"default": 3, "on_error": 3},
	"export_customer_data": {"default": 3, "on_error": 3},
}

default decision := 3

decision := max(strengths) if count(strengths) > 0

decision := actions[input.action].default if count(strengths) == 0

strengths contains s if some [_, s] in hits

strengths contains actions[input.action].on_error if count(errors) > 0

# present(x) is true when x is defined (even null): a function called with
# an undefined argument is undefined.
present(_) := true

p := input.payload

# --- grant_access -----------------------------------------------------------

hits contains ["self-grant", 3] if {
	input.action == "grant_access"
	is_string(p.user)
	is_string(input.actor)
	lower(p.user) == lower(input.actor)
}

errors contains "self-grant" if {
	input.action == "grant_access"
	not is_string(p.user)
}

errors contains "self-grant" if {
	input.action == "grant_access"
	not is_string(input.actor)
}

hits contains ["untrusted-channel", 3] if {
	input.action == "grant_access"
	input.source.channel in {"email", "public-chat"}
}

hits contains ["external-account", 3] if {
	input.action == "grant_access"
	is_string(p.user_email)
	not endswith(lower(p.user_email), "@example.com")
}

errors contains "external-account" if {
	input.action == "grant_access"
	not is_string(p.user_email)
}

hits contains ["missing-justification", 3] if {
	input.action == "grant_access"
	not present(p.justification)
}

hits contains ["missing-justification", 3] if {
	input.action == "grant_access"
	is_string(p.justification)
	count(trim_space(p.justification)) < 15
}

errors contains "missing-justification" if {
	input.action == "grant_access"
	present(p.justification)
	not is_string(p.justification)
}

hits contains ["privileged-role", 2] if {
	input.action == "grant_access"
	p.role in {"admin", "owner", "billing_admin", "payments_approver", "security_admin"}
}

errors contains "privileged-role" if {
	input.action == "grant_access"
	not present(p.role)
}

hits contains ["no-expiry", 2] if {
	input.action == "grant_access"
	not present(p.expires_in_days)
}

hits contains ["no-expiry", 2] if {
	input.action == "grant_access"
	is_number(p.expires_in_days)
	p.expires_in_days > 90
}

errors contains "no-expiry" if {
	input.action == "grant_access"
	present(p.expires_in_days)
	not is_number(p.expires_in_days)
}

hits contains ["temporary-read-only", 1] if {
	input.action == "grant_access"
	p.role in {"viewer", "read_only"}
	is_number(p.expires_in_days)
	p.expires_in_days <= 30
}

errors contains "temporary-read-only" if {
	input.action == "grant_access"
	not present(p.role)
}

errors contains "temporary-read-only" if {
	input.action == "grant_access"
	p.role in {"viewer", "read_only"}
	present(p.expires_in_days)
	not is_number(p.expires_in_days)
}

# --- change_bank_details ----------------------------------------------------

hits contains ["not-verified-by-callback", 3] if {
	input.action == "change_bank_details"
	p.verification.method != "callback"
}

errors contains "not-verified-by-callback" if {
	input.action == "change_bank_details"
	not present(p.verification.method)
}

hits contains ["self-verified", 3] if {
	input.action == "change_bank_details"
	p.verification.verified_by == input.actor
}

errors contains "self-verified" if {
	input.action == "change_bank_details"
	not present(p.verification.verified_by)
}

hits contains ["malformed-iban", 3] if {
	input.action == "change_bank_details"
	is_string(p.new_iban)
	not regex.match(`^[A-Z]{2}[0-9]{2}[A-Z0-9]{11,30}$`, p.new_iban)
}

errors contains "malformed-iban" if {
	input.action == "change_bank_details"
	not is_string(p.new_iban)
}

hits contains ["foreign-account", 2] if {
	input.action == "change_bank_details"
	is_string(p.new_iban)
	is_string(p.vendor.country)
	not startswith(p.new_iban, upper(p.vendor.country))
}

errors contains "foreign-account" if {
	input.action == "change_bank_details"
	not is_string(p.new_iban)
}

errors contains "foreign-account" if {
	input.action == "change_bank_details"
	not is_string(p.vendor.country)
}

hits contains ["cfo-sign-off", 2] if input.action == "change_bank_details"

# --- send_invoice_reminder --------------------------------------------------

hits contains ["too-many-reminders", 3] if {
	input.action == "send_invoice_reminder"
	is_number(p.reminders_sent)
	p.reminders_sent >= 3
}

errors contains "too-many-reminders" if {
	input.action == "send_invoice_reminder"
	not is_number(p.reminders_sent)
}

customer_clock := [time.clock([input.now_ns, p.customer.timezone]), time.weekday([input.now_ns, p.customer.timezone])] if {
	is_number(input.now_ns)
	data.time_zones[p.customer.timezone]
}

hits contains ["outside-customer-business-hours", 3] if {
	input.action == "send_invoice_reminder"
	customer_clock[0][0] < 8
}

hits contains ["outside-customer-business-hours", 3] if {
	input.action == "send_invoice_reminder"
	customer_clock[0][0] >= 18
}

hits contains ["outside-customer-business-hours", 3] if {
	input.action == "send_invoice_reminder"
	customer_clock[1] in {"Saturday", "Sunday"}
}

errors contains "outside-customer-business-hours" if {
	input.action == "send_invoice_reminder"
	not customer_clock
}

hits contains ["disputed-invoice", 3] if {
	input.action == "send_invoice_reminder"
	is_string(p.invoice.status)
	lower(p.invoice.status) in {"disputed", "in_collections"}
}

errors contains "disputed-invoice" if {
	input.action == "send_invoice_reminder"
	present(p.invoice.status)
	not is_string(p.invoice.status)
}

hits contains ["very-large-amount", 2] if {
	input.action == "send_invoice_reminder"
	is_number(p.amount)
	p.amount > 10000
}

hits contains ["large-amount", 2] if {
	input.action == "send_invoice_reminder"
	is_number(p.amount)
	p.amount > 500
}

errors contains "amount" if {
	input.action == "send_invoice_reminder"
	not is_number(p.amount)
}

hits contains ["strategic-customer", 2] if {
	input.action == "send_invoice_reminder"
	p.customer.tier == "strategic"
}

# --- mark_invoice_paid ------------------------------------------------------

hits contains ["missing-payment-reference", 3] if {
	input.action == "mark_invoice_paid"
	not present(p.payment_reference)
}

hits contains ["missing-payment-reference", 3] if {
	input.action == "mark_invoice_paid"
	is_string(p.payment_reference)
	trim_space(p.payment_reference) == ""
}

errors contains "missing-payment-reference" if {
	input.action == "mark_invoice_paid"
	present(p.payment_reference)
	not is_string(p.payment_reference)
}

hits contains ["short-payment", 3] if {
	input.action == "mark_invoice_paid"
	is_number(p.amount_received)
	is_number(p.amount_due)
	p.amount_received < p.amount_due
}

errors contains "short-payment" if {
	input.action == "mark_invoice_paid"
	not is_number(p.amount_received)
}

errors contains "amount_due" if {
	input.action == "mark_invoice_paid"
	not is_number(p.amount_due)
}

hits contains ["large-payment", 2] if {
	input.action == "mark_invoice_paid"
	is_number(p.amount_due)
	p.amount_due >= 50000
}

hits contains ["two-controllers", 2] if input.action == "mark_invoice_paid"

# --- issue_refund -----------------------------------------------------------

hits contains ["non-positive-amount", 3] if {
	input.action == "issue_refund"
	is_number(p.amount)
	p.amount <= 0
}

errors contains "amount" if {
	input.action == "issue_refund"
	not is_number(p.amount)
}

hits contains ["exceeds-original-charge", 3] if {
	input.action == "issue_refund"
	is_number(p.amount)
	is_number(p.original_charge.amount)
	p.amount > p.original_charge.amount
}

errors contains "exceeds-original-charge" if {
	input.action == "issue_refund"
	not is_number(p.original_charge.amount)
}

hits contains ["exceeds-remaining-balance", 3] if {
	input.action == "issue_refund"
	is_number(p.amount)
	is_number(p.original_charge.refunded)
	is_number(p.original_charge.amount)
	p.amount + p.original_charge.refunded > p.original_charge.amount
}

errors contains "exceeds-remaining-balance" if {
	input.action == "issue_refund"
	present(p.original_charge.refunded)
	not is_number(p.original_charge.refunded)
}

hits contains ["currency-mismatch", 3] if {
	input.action == "issue_refund"
	is_string(p.currency)
	is_string(p.original_charge.currency)
	upper(p.currency) != upper(p.original_charge.currency)
}

errors contains "currency-mismatch" if {
	input.action == "issue_refund"
	not is_string(p.currency)
}

errors contains "currency-mismatch" if {
	input.action == "issue_refund"
	not is_string(p.original_charge.currency)
}

# The original is a when_cel: rule, where has() fails if original_charge
# itself is missing.
hits contains ["disputed-charge", 3] if {
	input.action == "issue_refund"
	some flag in p.original_charge.flags
	flag in {"chargeback_open", "fraud_review"}
}

errors contains "disputed-charge" if {
	input.action == "issue_refund"
	not is_object(p.original_charge)
}

hits contains ["large-refund", 2] if {
	input.action == "issue_refund"
	is_number(p.amount)
	p.amount > 1000
}

hits contains ["medium-refund", 2] if {
	input.action == "issue_refund"
	is_number(p.amount)
	p.amount > 50
}

hits contains ["small-refund", 1] if {
	input.action == "issue_refund"
	is_number(p.amount)
	p.amount <= 50
}

# --- export_customer_data ---------------------------------------------------

approved_destination if endswith(lower(p.destination.host), ".corp.example.com")

approved_destination if regex.match(`^exports-[a-z0-9-]+\.s3\.eu-central-1\.amazonaws\.com$`, lower(p.destination.host))

hits contains ["unapproved-destination", 3] if {
	input.action == "export_customer_data"
	is_string(p.destination.host)
	not approved_destination
}

errors contains "unapproved-destination" if {
	input.action == "export_customer_data"
	not is_string(p.destination.host)
}

hits contains ["restricted-dataset", 3] if {
	input.action == "export_customer_data"
	p.dataset.labels["data-classification"] == "restricted"
}

berlin_clock := [time.clock([input.now_ns, "Europe/Berlin"]), time.weekday([input.now_ns, "Europe/Berlin"])] if {
	is_number(input.now_ns)
}

after_berlin_hours if berlin_clock[0][0] < 8

after_berlin_hours if berlin_clock[0][0] >= 19

after_berlin_hours if berlin_clock[1] in {"Saturday", "Sunday"}

hits contains ["bulk-export-after-hours", 3] if {
	input.action == "export_customer_data"
	is_number(p.row_count)
	p.row_count > 10000
	after_berlin_hours
}

errors contains "row_count" if {
	input.action == "export_customer_data"
	not is_number(p.row_count)
}

errors contains "bulk-export-after-hours" if {
	input.action == "export_customer_data"
	is_number(p.row_count)
	p.row_count > 10000
	not berlin_clock
}

hits contains ["personal-data", 2] if {
	input.action == "export_customer_data"
	some field in p.fields
	field in {"email", "phone", "full_name", "postal_address", "date_of_birth", "iban", "tax_id"}
}

errors contains "personal-data" if {
	input.action == "export_customer_data"
	not present(p.fields)
}

hits contains ["bulk-export", 2] if {
	input.action == "export_customer_data"
	is_number(p.row_count)
	p.row_count > 10000
}

hits contains ["routine-export", 1] if {
	input.action == "export_customer_data"
	is_number(p.row_count)
	p.row_count <= 10000
}
