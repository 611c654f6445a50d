"""The GraphQL types: enums from the vocabulary, scalars, inputs and output types."""
