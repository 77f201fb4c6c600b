# V3 per-message subset of rules/: customer service window (CSW-2) and template charge (PMP-2/3/4).
package whatsapp

ignored_types := {"reaction", "system", "unsupported"}

default window_open := false

window_open if {
	some m in input.history
	m.direction == "inbound"
	not ignored_types[m.type]
	m.at <= input.send.at
	input.send.at < m.at + 86400
}

freeform_denied if {
	not input.send.is_template
	not window_open
}

decision := "deny" if freeform_denied
else := "allow"

message_type := "any" if window_open
else := "template"

# A denied send is not delivered, so it is not charged.
charge := {"category": "service", "type": null, "billable": false, "rule": "CSW-2.freeform-closed"} if {
	freeform_denied
} else := {"category": "service", "type": "free_customer_service", "billable": false, "rule": "PMP-4"} if {
	not input.send.is_template
} else := {"category": "utility", "type": "free_customer_service", "billable": false, "rule": "PMP-3"} if {
	input.send.category == "utility"
	window_open
} else := {"category": input.send.category, "type": "regular", "billable": true, "rule": "PMP-2"}

result := {"decision": decision, "message_type": message_type, "charge": charge}
