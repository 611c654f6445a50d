"""Generated gRPC stubs of herald.v1 (see proto/generate.py)."""
