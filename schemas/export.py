"""Write the JSON Schema files of the event models: ``python -m schemas.export``."""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import BaseModel

from schemas.events import AlertV1, LabelV1, TransactionV1
from schemas.keyed import TransactionV2

JSON_DIR = Path(__file__).parent / "json"
SCHEMA_FILES: dict[str, type[BaseModel]] = {
    "transaction.v1.json": TransactionV1,
    "transaction.v2.json": TransactionV2,
    "alert.v1.json": AlertV1,
    "label.v1.json": LabelV1,
}


def render(model: type[BaseModel]) -> str:
    """The JSON Schema of ``model`` as the exact text stored in ``schemas/json/``."""
    schema = model.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = f"fraudstream/{model.__name__}"
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"


def main() -> None:
    for name, model in SCHEMA_FILES.items():
        (JSON_DIR / name).write_text(render(model))
        print(JSON_DIR / name)


if __name__ == "__main__":
    main()
