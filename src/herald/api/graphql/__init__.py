"""GraphQL at /graphql (strawberry): a thin adapter over the notification use cases."""
