"""Reading a multipart upload once the caller is known: the REST uploads, twine's, and
advisory imports read their bodies only after authentication, through here."""

from __future__ import annotations

from typing import Any

from starlette.datastructures import FormData, UploadFile
from starlette.requests import Request

from headwater.errors import InvalidInputError

# What the OpenAPI description says an upload endpoint takes (the handler reads it itself).
FILE_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {"file": {"type": "string", "format": "binary"}},
                }
            }
        },
    }
}


async def read_upload_form(request: Request) -> FormData:
    """The form of an upload: one file, a few dozen fields (twine sends its metadata)."""
    content_type = request.headers.get("content-type", "")
    if not content_type.startswith("multipart/form-data"):
        raise InvalidInputError("send the file as multipart/form-data")
    return await request.form(max_files=1, max_fields=100)


def uploaded_file(form: FormData, field: str) -> UploadFile:
    value = form.get(field)
    if not isinstance(value, UploadFile):
        raise InvalidInputError(f"the upload has no file in its {field!r} field")
    return value
