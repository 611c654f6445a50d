"""`herald_graphql_operations_total{type, field, outcome}`, counted by a schema extension.

`field` is the operation's first root field, and only once the document validated, so it is
always a name the schema has (or `(invalid)`): a client's operation name would be unbounded.
"""

from __future__ import annotations

from collections.abc import Iterator

from graphql import FieldNode, OperationDefinitionNode
from strawberry.extensions import SchemaExtension

from herald import metrics


class OperationMetrics(SchemaExtension):
    def on_operation(self) -> Iterator[None]:
        yield
        context = self.execution_context
        errors = (context.result.errors if context.result else None) or context.pre_execution_errors
        outcome = "ok"
        if errors:
            outcome = str((errors[0].extensions or {}).get("code", "INTERNAL_SERVER_ERROR"))
        field = "(invalid)"
        kind = "unknown"
        document = context.graphql_document
        if document is not None and outcome != "GRAPHQL_VALIDATION_FAILED":
            for definition in document.definitions:
                if isinstance(definition, OperationDefinitionNode) and (
                    context.operation_name is None
                    or (definition.name and definition.name.value == context.operation_name)
                ):
                    kind = definition.operation.value
                    first = definition.selection_set.selections[0]
                    if isinstance(first, FieldNode):
                        field = first.name.value
                    break
        metrics.graphql_operations.labels(kind, field, outcome).inc()
