"""Incident snapshots (annotated JPEGs the detector writes into ``detector.snapshot_dir``).

Served at ``/snapshots/<incident id>.jpg`` (the ``snapshot_url`` the detector sets);
only to a user who may see that incident.
"""

from __future__ import annotations

import re

from fastapi import APIRouter, HTTPException, status
from fastapi.responses import FileResponse

from xueliang.api.deps import CurrentUser, ServiceDep, SettingsDep
from xueliang.api.errors import problem
from xueliang.api.routers.incidents import visible_incident
from xueliang.config._base import ID_FIRST, ID_MAX_LEN, ID_REST

router = APIRouter(tags=["incidents"])
_NAME = re.compile(f"^(?P<id>{ID_FIRST}{ID_REST}{{0,{ID_MAX_LEN - 1}}})\\.(?P<ext>jpg|jpeg|png)$")


@router.get(
    "/snapshots/{filename}",
    response_class=FileResponse,
    responses={
        200: {"content": {"image/jpeg": {}}, "description": "the snapshot"},
        404: problem("no such snapshot, or not visible to this user"),
    },
)
def snapshot(filename: str, user: CurrentUser, service: ServiceDep, settings: SettingsDep) -> FileResponse:
    m = _NAME.match(filename)
    if m is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no snapshot {filename!r}")
    # 404 unless the user may see the incident's case (a merged repeated alarm belongs to its case)
    visible_incident(service, user, service.case_of(m.group("id")))
    root = settings.detector.snapshot_dir.resolve()
    path = (root / filename).resolve()
    if path.parent != root or not path.is_file():
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no snapshot {filename!r}")
    media = "image/png" if m.group("ext") == "png" else "image/jpeg"
    return FileResponse(path, media_type=media, headers={"Cache-Control": "private, max-age=300"})
