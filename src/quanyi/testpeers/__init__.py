"""TEST PEERS — simulators of the outside world, not part of the shop.

Each module here plays the *other side* of an integration (a payment gateway's servers, an SMS provider,
a group-robot webhook receiver) as a real HTTP server, so tests and the demo drive the shop's real
client and verification code over real sockets. They sign with keys generated at test time and have
knobs for misbehaviour (duplicate, late, out-of-order, forged notifications; failures; latency).
Never point a production shop at them.
"""
