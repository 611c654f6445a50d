"""What the OpenAPI document says beyond Litestar's defaults, so it states what is enforced.

Structs that refuse unknown fields are `additionalProperties: false`. Field-level facts that
are rules (checked with a 422 naming the field) rather than types go in as schema text only
(`schema_extra`), so the decoder keeps answering type errors with 400 and rule errors with
422, as documented.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import msgspec
from litestar._openapi.schema_generation.plugins.struct import StructSchemaPlugin

if TYPE_CHECKING:
    from litestar._openapi.schema_generation import SchemaCreator
    from litestar.openapi.spec import Schema
    from litestar.typing import FieldDefinition


class ClosedStructSchemaPlugin(StructSchemaPlugin):
    """`additionalProperties: false` for msgspec structs with `forbid_unknown_fields`."""

    def is_plugin_supported_field(self, field_definition: FieldDefinition) -> bool:
        if not super().is_plugin_supported_field(field_definition):
            return False
        return _config(field_definition).forbid_unknown_fields

    def to_openapi_schema(
        self, field_definition: FieldDefinition, schema_creator: SchemaCreator
    ) -> Schema:
        schema = super().to_openapi_schema(field_definition, schema_creator)
        registered = schema_creator.schema_registry.get_schema_for_field_definition(
            field_definition
        )
        registered.additional_properties = False
        return schema


def _config(field_definition: FieldDefinition) -> msgspec.structs.StructConfig:
    config: msgspec.structs.StructConfig = field_definition.type_.__struct_config__
    return config
