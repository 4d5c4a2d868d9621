"""Error bodies in the two shapes Celonis uses, raised as one exception type by every layer."""

from __future__ import annotations

import uuid
from typing import Any

from starlette.responses import JSONResponse, Response


class ApiError(Exception):
    """An HTTP error with a Celonis-shaped body; ``validation`` selects the ``{"errors": [...]}`` form."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        short: str | None = None,
        attribute: str | None = None,
        validation: bool = False,
        headers: dict[str, str] | None = None,
        empty: bool = False,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.short = short or message
        self.attribute = attribute
        self.validation = validation
        self.headers = headers or {}
        self.empty = empty  # "No Content", as the docs list most error answers

    def body(self) -> dict[str, Any]:
        """The JSON body Celonis would send."""
        if self.validation:
            return {
                "errors": [
                    {
                        "attribute": self.attribute,
                        "error": self.message,
                        "errorCode": self.short,
                        "additionalInfo": None,
                    }
                ]
            }
        return {"reference": str(uuid.uuid4()), "message": self.message, "shortMessage": self.short}

    def response(self) -> Response:
        if self.empty:
            return Response(status_code=self.status, headers=self.headers)
        return JSONResponse(self.body(), status_code=self.status, headers=self.headers)


def validation_error(attribute: str | None, message: str, code: str = "INVALID") -> ApiError:
    """A 400 in the ``errors`` list shape, naming the offending attribute."""
    return ApiError(400, message, short=code, attribute=attribute, validation=True)


def not_found(what: str) -> ApiError:
    return ApiError(404, f"{what} not found", short="NOT_FOUND")
