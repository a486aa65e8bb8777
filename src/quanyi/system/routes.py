"""Health endpoint for load balancers and `make demo`'s wait loop."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel
from sqlalchemy import text

from quanyi.deps import ReadSessionDep

router = APIRouter(tags=["system"])


class Health(BaseModel):
    status: str
    database: str


@router.get("/healthz", response_model=Health, summary="Liveness and database reachability")
async def healthz(session: ReadSessionDep) -> Health:
    await session.execute(text("SELECT 1"))
    return Health(status="ok", database=session.bind.dialect.name)
