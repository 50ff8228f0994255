"""Webhooks: a team's URLs that get a signed JSON POST when a render or a publication is done or
failed, so integrations need not poll.

- `addresses`: which URLs may be called (public addresses only, checked at save and at every send).
- `subscriptions`: a user's webhooks, their events and secrets.
- `events`: an event stored as one delivery per subscribed webhook, in the transaction that makes it true.
- `delivery`: signing and sending a delivery, its tries and back-off.

Nothing is lost between the event and the POST: deliveries are stored with the event and sent once it
commits; one that was never sent is due and the sweep sends it. Delivery is at least once, and
receivers dedupe on the event id.

Signature: `X-BatchVideo-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`.
A receiver recomputes it over the raw body and refuses stale timestamps, which makes a captured
request useless later (README: "Webhooks").
"""
