"""The gRPC interface: `herald.v1.NotificationService`, health and reflection, on `grpc.aio`.

A thin adapter like REST: `convert` maps messages to the domain's types and back (the
vocabulary's enums in one place), `status` maps domain errors to status codes (one place),
`servicer` decodes, calls a use case and encodes, and `server` runs it all in the process's
event loop, started and stopped by the lifespan. The stubs in `v1/` are generated from
`proto/herald/v1` (see `proto/generate.py`).
"""
