"""API keys: creation, hashing, revocation, and the bearer-token check on `/v1`."""
