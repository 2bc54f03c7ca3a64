"""Incident snapshots (annotated JPEGs the detector writes into ``detector.snapshot_dir``).

Served at ``/snapshots/<incident id>.jpg`` (the ``snapshot_url`` the detector sets);
only to a user who may see that incident. :func:`evidence_file` is the rule every evidence file
of an incident (snapshots here, clips in :mod:`xueliang.api.routers.clips`) is served by.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

from fastapi import APIRouter, HTTPException, status
from fastapi.responses import FileResponse

from xueliang.api.deps import CurrentUser, ServiceDep, SettingsDep
from xueliang.api.errors import problem
from xueliang.api.routers.incidents import visible_incident
from xueliang.config._base import ID_FIRST, ID_MAX_LEN, ID_REST

if TYPE_CHECKING:
    from xueliang.api.users import UserPublic
    from xueliang.config import Settings
    from xueliang.dispatch.service import DispatchService

router = APIRouter(tags=["incidents"])


def evidence_name(extensions: str) -> re.Pattern[str]:
    """``<incident id>.<ext>`` for the extensions ``extensions`` (a regex alternation, e.g. ``jpg|png``)."""
    return re.compile(f"^(?P<id>{ID_FIRST}{ID_REST}{{0,{ID_MAX_LEN - 1}}})\\.(?P<ext>{extensions})$")


def evidence_file(
    filename: str, name: re.Pattern[str], what: str, user: UserPublic, service: DispatchService, settings: Settings
) -> tuple[Path, re.Match[str]]:
    """The file ``filename`` in ``detector.snapshot_dir`` if it is named by ``name`` and the user may see
    its incident's case (a merged repeated alarm's evidence follows its case); else 404 ``no <what> ...``."""
    m = name.match(filename)
    if m is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no {what} {filename!r}")
    visible_incident(service, user, service.case_of(m.group("id")))  # 404 unless the user may see the case
    root = settings.detector.snapshot_dir.resolve()
    path = (root / filename).resolve()
    if path.parent != root or not path.is_file():
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no {what} {filename!r}")
    return path, m


_NAME = evidence_name("jpg|jpeg|png")


@router.get(
    "/snapshots/{filename}",
    response_class=FileResponse,
    responses={
        200: {"content": {"image/jpeg": {}}, "description": "the snapshot"},
        404: problem("no such snapshot, or not visible to this user"),
    },
)
def snapshot(filename: str, user: CurrentUser, service: ServiceDep, settings: SettingsDep) -> FileResponse:
    path, m = evidence_file(filename, _NAME, "snapshot", user, service, settings)
    media = "image/png" if m.group("ext") == "png" else "image/jpeg"
    return FileResponse(path, media_type=media, headers={"Cache-Control": "private, max-age=300"})
