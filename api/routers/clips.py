"""Evidence clips (H.264 MP4 the detector writes beside an incident's snapshot, ``detector.clips``).

Served at ``/clips/<incident id>.mp4`` from ``detector.snapshot_dir``, to a user who may see the
incident's case (a merged repeated alarm's clip follows its case) — the snapshots' rule
(:func:`~xueliang.api.routers.snapshots.evidence_file`); 404 otherwise, and while the clip is
still being recorded (a few seconds after the incident).
"""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import FileResponse

from xueliang.api.deps import CurrentUser, ServiceDep, SettingsDep
from xueliang.api.errors import problem
from xueliang.api.routers.snapshots import evidence_file, evidence_name

router = APIRouter(tags=["incidents"])
_NAME = evidence_name("mp4")


@router.get(
    "/clips/{filename}",
    response_class=FileResponse,
    responses={
        200: {"content": {"video/mp4": {}}, "description": "the clip"},
        404: problem("no such clip (yet), or not visible to this user"),
    },
)
def clip(filename: str, user: CurrentUser, service: ServiceDep, settings: SettingsDep) -> FileResponse:
    path, _ = evidence_file(filename, _NAME, "clip", user, service, settings)
    return FileResponse(path, media_type="video/mp4", headers={"Cache-Control": "private, max-age=300"})
