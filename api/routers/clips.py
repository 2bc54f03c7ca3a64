"""Evidence clips (H.264 MP4 the detector writes beside an incident's snapshot, ``detector.clips``).

Served at ``/clips/<incident id>.mp4`` from ``detector.snapshot_dir``, to a user who may see the
incident's case (a merged repeated alarm's clip follows its case) — the snapshots' rule; 404
otherwise, and while the clip is still being recorded (a few seconds after the incident).
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
_NAME = re.compile(f"^(?P<id>{ID_FIRST}{ID_REST}{{0,{ID_MAX_LEN - 1}}})\\.mp4$")


@router.get(
    "/clips/{filename}",
    response_class=FileResponse,
    responses={
        200: {"content": {"video/mp4": {}}, "description": "the clip"},
        404: problem("no such clip (yet), or not visible to this user"),
    },
)
def clip(filename: str, user: CurrentUser, service: ServiceDep, settings: SettingsDep) -> FileResponse:
    m = _NAME.match(filename)
    if m is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no clip {filename!r}")
    visible_incident(service, user, service.case_of(m.group("id")))  # 404 unless the user may see the case
    root = settings.detector.snapshot_dir.resolve()
    path = (root / filename).resolve()
    if path.parent != root or not path.is_file():
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no clip {filename!r}")
    return FileResponse(path, media_type="video/mp4", headers={"Cache-Control": "private, max-age=300"})
