"""Writes JSON Schema files for every event model, the AsyncAPI document of the topics that carry
them, and the OpenAPI documents the HTTP APIs serve (``schemas/openapi/<service>.json``) into
``schemas/`` (``make schemas``).

The models in events.py, topics.py and the services' wiring are the source of truth; a test fails
when the committed files drift.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import yaml

from replyflow.asyncapi import asyncapi_document, service_apps
from replyflow.events import EVENT_MODELS

SCHEMA_DIR = Path(__file__).resolve().parents[2] / "schemas"


ASYNCAPI_FILE = "asyncapi.yaml"
OPENAPI_DIR = "openapi"


def every_field_sent(schema: dict) -> dict:
    """``schema`` with every property of every object required: a producer sends each field, defaults and nulls
    included (what pydantic's ``json_schema_serialization_defaults_required`` says, here only for the event files,
    not the OpenAPI documents, which keep one schema per model)."""
    if isinstance(schema.get("properties"), dict):
        schema["required"] = list(schema["properties"])
    for key, value in schema.items():
        # the values of "properties" and "$defs" are schemas; elsewhere a value is a schema or a list of them
        children = value.values() if key in ("properties", "$defs") else value if isinstance(value, list) else [value]
        for nested in children:
            if isinstance(nested, dict):
                every_field_sent(nested)
    return schema


def rendered_schemas() -> dict[str, str]:
    """Each file's path under ``schemas/`` and its text."""
    apps = service_apps()
    return {
        f"{model.__name__}.schema.json":
            json.dumps(every_field_sent(model.model_json_schema(mode="serialization")), indent=2) + "\n"
        for model in EVENT_MODELS
    } | {ASYNCAPI_FILE: yaml.safe_dump(asyncapi_document(apps), sort_keys=False, width=110, allow_unicode=True)} | {
        f"{OPENAPI_DIR}/{name}.json": json.dumps(app.openapi, indent=2, sort_keys=True) + "\n"
        for name, app in apps.items() if app.openapi is not None
    }


def main(out: Path = SCHEMA_DIR) -> int:
    for name, text in rendered_schemas().items():
        (out / name).parent.mkdir(parents=True, exist_ok=True)
        (out / name).write_text(text)
        print(f"wrote {out / name}")
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]) if len(sys.argv) > 1 else SCHEMA_DIR))
