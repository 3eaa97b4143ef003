"""What every API endpoint needs from the request besides its access rule: the process
resources (who is asking comes with the rule: `headwater.requires`)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from headwater.resources import Resources


def get_resources(request: Request) -> Resources:
    return request.app.state.resources


ResourcesDep = Annotated[Resources, Depends(get_resources)]
