"""REST: Litestar controllers, wire schemas and problem details."""
