"""The Chatterbox voice service: one serving process per GPU that owns the voice models.

Run it with `python -m voice_service serve` (`download` fetches the weights,
`make-tiny-model` writes a tiny random model for tests). It is deployed apart from
the agent worker, so it imports nothing from `agent/` or livekit-agents; importing
this package is light, and torch and chatterbox load only when a model does.
`voice_service.protocol` is the wire format its clients share.
"""
