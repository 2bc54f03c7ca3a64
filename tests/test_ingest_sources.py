"""Sources: the scene generator (exact capture times), HTTP MJPEG (a real multipart server on
loopback), PyAV decoding (every frame into YUV planes, or key frames only), looping files, and clear errors."""

from __future__ import annotations

import math
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from xueliang.bus.memory import MemoryBus
from xueliang.config.cameras import CameraConfig
from xueliang.contracts import FrameMessage
from xueliang.ingest.sources import (
    OpenCvSource,
    PyAvSource,
    SourceError,
    make_source,
)
from xueliang.ingest.testing import (
    REPO,
    FootageMissing,
    MjpegServer,
    encode_h264,
    settings_for,
    vtest_avi,
)
from xueliang.ingest.worker import IngestWorker

SCENARIO = REPO / "scenes" / "scenarios" / "intrusion_day.yaml"


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(((a.astype(np.float32) - b.astype(np.float32)) ** 2).mean())
    return 10 * math.log10(255**2 / max(mse, 1e-6))


def _cam(source: dict, **kw: object) -> CameraConfig:  # type: ignore[type-arg]
    return CameraConfig.model_validate({"id": "cam-s", "source": source, **kw})


@pytest.fixture(scope="module")
def vtest() -> Path:
    try:
        return vtest_avi()
    except FootageMissing as exc:
        pytest.skip(str(exc))


# ------------------------------------------------------------------ scene
def test_scene_source_capture_time_is_start_plus_scene_time() -> None:
    if not SCENARIO.exists():
        pytest.skip("scenes/scenarios not present")
    from xueliang.scenes.render import SceneRenderer
    from xueliang.scenes.scenario import load_scenario

    src = make_source(_cam({"type": "scene", "scenario": str(SCENARIO), "seed": 3, "loop": False, "realtime": False}))
    src.open()
    expected = SceneRenderer(load_scenario(SCENARIO), 3).frames()
    start = None
    for k in range(25):
        ts = src.grab()
        ref = next(expected)
        assert ts is not None
        start = ts - ref.t if start is None else start
        assert ts == pytest.approx(start + ref.t, abs=1e-9)
        if k % 8 == 0:
            assert np.array_equal(src.retrieve(), ref.image)
    src.close()


@pytest.mark.slow
def test_scene_camera_through_worker_gates_motion_and_keeps_exact_times() -> None:
    if not SCENARIO.exists():
        pytest.skip("scenes/scenarios not present")
    settings = settings_for(
        [
            {
                "id": "scene-cam",
                "sample_fps": 5,
                "quality": {"enabled": False},
                "motion": {"keepalive_s": 5},
                "source": {"type": "scene", "scenario": str(SCENARIO), "loop": False, "realtime": False},
            }
        ]
    )
    bus = MemoryBus()
    stop = threading.Event()
    worker = IngestWorker(settings, bus, worker_id="w-scene")
    thread = threading.Thread(target=worker.run, args=(stop,))
    thread.start()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not (worker.runners and worker.runners["scene-cam"].ended):
        time.sleep(0.2)
    stop.set()
    thread.join(30)
    consumer = bus.consumer("check", [settings.bus.topics.frames])
    msgs = [FrameMessage.from_record(r.value, r.headers) for r in consumer.poll(timeout=1, max_records=10_000)]
    assert msgs, "no frame from the scene camera"
    t0 = msgs[0].capture_ts
    offsets = [round(m.capture_ts - t0, 6) for m in msgs]
    # sampled on the 5 fps grid of scene time, exactly (no wall-clock jitter)
    off_grid = [o for o in offsets if abs(o * 5 - round(o * 5)) > 1e-4]
    assert not off_grid, off_grid[:20]
    moving = [m for m in msgs if m.motion]
    assert len(moving) >= 0.5 * len(msgs)  # people and a car move through most of the 30 s
    assert all(not m.keepalive for m in moving)
    for m in moving:
        for b in m.motion:
            assert 0 <= b.x1 < b.x2 <= m.width and 0 <= b.y1 < b.y2 <= m.height
    print(f"\nscene camera: {len(msgs)} frames published of {30 * 5} sampled, {len(moving)} with motion boxes")


# ------------------------------------------------------------------ MJPEG
@pytest.mark.slow
def test_http_mjpeg_camera(vtest: Path) -> None:
    cap = cv2.VideoCapture(str(vtest))
    originals = [cap.read()[1] for _ in range(40)][::8]  # five distinct pictures
    cap.release()
    with MjpegServer(originals, fps=10) as server:
        src = make_source(_cam({"type": "http", "url": "http://unused.invalid/", "detect_url": server.url()}))
        assert isinstance(src, OpenCvSource) and src.target == server.url()  # the detect substream
        src.open()
        t_first = None
        got = []
        for _ in range(30):
            ts = src.grab()
            assert ts is not None
            t_first = t_first or ts
            got.append((ts, src.retrieve()))
        src.close()
    span = got[-1][0] - got[0][0]
    assert 29 / span == pytest.approx(10, rel=0.2)
    for _, img in got:
        assert img.shape == (576, 768, 3)
        assert max(_psnr(img, o) for o in originals) > 30


# ------------------------------------------------------------------ key frames
def test_keyframe_only_source_decodes_one_frame_per_gop(vtest: Path) -> None:
    clip = encode_h264(vtest, fps=25, gop=25, seconds=6, name="kf576")
    src = make_source(
        _cam({"type": "file", "path": str(clip), "loop": False, "realtime": False, "keyframes_only": True})
    )
    assert isinstance(src, PyAvSource)
    src.open()
    stamps, images = [], []
    while (ts := src.grab()) is not None:
        stamps.append(ts)
        images.append(src.retrieve())
    src.close()
    assert len(stamps) == 6  # 150 frames, a key frame every 25
    assert np.allclose(np.diff(stamps), 1.0, atol=1e-6)
    cap = cv2.VideoCapture(str(clip))
    for k, img in enumerate(images):
        cap.set(cv2.CAP_PROP_POS_FRAMES, 25 * k)
        ok, ref = cap.read()
        assert ok and _psnr(img, ref) > 40, k
    cap.release()


@pytest.mark.parametrize(("gop", "key_only"), [(12, True), (50, False)])
def test_auto_keyframes_decodes_key_frames_only_when_they_come_at_the_sample_rate(
    vtest: Path, gop: int, key_only: bool, caplog: pytest.LogCaptureFixture
) -> None:
    """keyframes_only: auto at 2 frames/s: a 0.48-s GOP is decoded key frames only once three gaps were
    measured; a 2-s GOP keeps every frame. Either way the choice and its reason are logged."""
    clip = encode_h264(vtest, fps=25, gop=gop, seconds=10, name=f"auto-g{gop}")  # 250 frames
    cam = _cam({"type": "file", "path": str(clip), "loop": False, "realtime": False, "keyframes_only": "auto"})
    src = make_source(cam)
    assert isinstance(src, PyAvSource)
    caplog.set_level("INFO", logger="xueliang.ingest.sources.keyframes")
    src.open()
    stamps = []
    while (ts := src.grab()) is not None:
        stamps.append(ts)
    src.close()
    assert src.keyframes_only is key_only
    if key_only:  # every frame up to the fourth key frame (3 x 12), then one a GOP
        assert len(stamps) == 36 + 1 + (250 - 37) // 12
        assert np.allclose(np.diff(stamps[37:]), 0.48, atol=1e-6)
        assert "decoding key frames only" in caplog.text
    else:
        assert len(stamps) == 250
        assert "decoding every frame (set the camera's key-frame interval to 0.50 s or less" in caplog.text


def test_auto_keyframes_goes_back_to_every_frame_when_key_frames_spread_out(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from xueliang.ingest.sources.keyframes import KeyframeChoice

    choice = KeyframeChoice("cam-x", "auto", 0.5)
    keys = [0.0, 0.48, 0.96, 1.44]
    assert all(choice.decode(True, t) for t in keys) and choice.keyframes_only
    assert not choice.decode(False, 1.5)  # a P frame while key frames only
    assert choice.decode(True, 3.0)  # a 1.56-s gap (a smart codec's stretched GOP): back to every frame
    assert not choice.keyframes_only and choice.decode(False, 3.04)
    assert "decoding every frame until the stream reconnects" in caplog.text
    choice.reset()  # the next connection measures again
    assert not choice.keyframes_only and choice.decode(False, 0.0)
    assert not KeyframeChoice("cam-y", False, 0.5).keyframes_only
    assert not KeyframeChoice("cam-z", True, 0.5).decode(False, None)


def test_rtsp_cameras_choose_key_frame_decoding_by_default() -> None:
    cam = _cam({"type": "rtsp", "url": "rtsp://127.0.0.1:1/cam"})
    assert cam.source.keyframes_only == "auto"  # type: ignore[union-attr]
    src = make_source(cam)
    assert isinstance(src, PyAvSource) and not src.keyframes_only  # every frame until the spacing is measured


# ------------------------------------------------------------------ PyAV decoding into YUV planes
def test_pyav_decoder_matches_opencv_and_encodes_from_the_planes(vtest: Path) -> None:
    """decoder: pyav gives every frame, stamped start + n/fps; its BGR equals OpenCV's decode, its grey is
    the (range-stretched) Y plane, and the JPEG encoded from the planes decodes to the same picture."""
    from xueliang.ingest.picture import Yuv420Picture

    clip = encode_h264(vtest, fps=25, gop=25, seconds=2, name="pyav576")
    src = make_source(_cam({"type": "file", "path": str(clip), "loop": False, "realtime": False, "decoder": "pyav"}))
    assert isinstance(src, PyAvSource) and not src.keyframes_only
    cap = cv2.VideoCapture(str(clip))
    src.open()
    stamps = []
    while (ts := src.grab()) is not None:
        stamps.append(ts)
        ok, ref = cap.read()
        assert ok
        if len(stamps) % 10:
            continue
        picture = src.picture()
        assert isinstance(picture, Yuv420Picture) and (picture.width, picture.height) == (768, 576)
        assert np.array_equal(picture.bgr(), ref)  # the same FFmpeg conversion as OpenCV's
        grey_ref = cv2.cvtColor(ref, cv2.COLOR_BGR2GRAY)
        assert picture.grey().shape == grey_ref.shape
        assert float(np.abs(picture.grey().astype(np.int16) - grey_ref).mean()) < 2.0  # limited → full range
        encoded = picture.jpeg(80, 960)
        assert encoded is not None and (encoded.width, encoded.height, encoded.scale) == (768, 576, 1.0)
        decoded = cv2.imdecode(np.frombuffer(encoded.jpeg, np.uint8), cv2.IMREAD_COLOR)
        reference_jpeg = cv2.imdecode(cv2.imencode(".jpg", ref, [cv2.IMWRITE_JPEG_QUALITY, 80])[1], cv2.IMREAD_COLOR)
        assert _psnr(decoded, ref) > _psnr(reference_jpeg, ref) - 1.5 and _psnr(decoded, ref) > 33
        smaller = picture.jpeg(80, 384)  # wider than max_width: halved
        assert smaller is not None and (smaller.width, smaller.height, smaller.scale) == (384, 288, 0.5)
    src.close()
    cap.release()
    assert len(stamps) == 50
    assert np.allclose(np.diff(stamps), 0.04, atol=1e-6)


def test_full_range_planes_go_to_the_jpeg_as_they_are() -> None:
    """yuvj420p (MJPEG cameras, full-range H.264) needs no range stretch."""
    import av

    from xueliang.ingest.picture import Yuv420Picture, picture_of

    rng = np.random.default_rng(0)
    bgr = cv2.GaussianBlur(rng.integers(0, 256, (96, 128, 3), dtype=np.uint8), (9, 9), 0)
    y, cr, cb = cv2.split(cv2.cvtColor(bgr, cv2.COLOR_BGR2YCrCb))  # full-range BT.601: the JFIF matrix
    half = [cv2.resize(c, (64, 48), interpolation=cv2.INTER_AREA) for c in (cb, cr)]
    i420 = np.concatenate([y.ravel(), half[0].ravel(), half[1].ravel()]).reshape(144, 128)
    frame = av.VideoFrame.from_ndarray(i420, format="yuvj420p")
    picture = picture_of(frame)
    assert isinstance(picture, Yuv420Picture)
    assert np.array_equal(picture.grey(), y)
    encoded = picture.jpeg(95, 960)
    decoded = cv2.imdecode(np.frombuffer(encoded.jpeg, np.uint8), cv2.IMREAD_COLOR)  # type: ignore[union-attr]
    reference = cv2.imdecode(cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, 95])[1], cv2.IMREAD_COLOR)
    # the 4:2:0 chroma of the test pattern bounds both encodings alike; a wrong range stretch would cost ~10 dB
    assert _psnr(decoded, bgr) > _psnr(reference, bgr) - 1.0


def test_limited_range_stretch_is_exact_for_every_level() -> None:
    """The single-pass luma stretch and the chroma table give round((v − 16)·255/219) and
    round((v − 128)·255/224) + 128, saturated, for all 256 levels, on strided planes too."""
    from xueliang.ingest.picture import _full_chroma, _full_luma

    levels = np.arange(256, dtype=np.float64)
    want_y = np.clip(np.round((levels - 16) * 255 / 219), 0, 255).astype(np.uint8)
    want_c = np.clip(np.round((levels - 128) * 255 / 224 + 128), 0, 255).astype(np.uint8)
    padded = np.zeros((4, 80), np.uint8)
    padded[:, :64] = np.arange(256, dtype=np.uint8).reshape(4, 64)
    plane = padded[:, :64]  # a decoder's plane: rows padded to its line size
    assert np.array_equal(_full_luma(plane).ravel(), want_y)
    assert np.array_equal(_full_chroma(plane).ravel(), want_c)


def test_looping_file_keeps_time_running(tmp_path: Path) -> None:
    clip = tmp_path / "three.avi"
    writer = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"MJPG"), 10, (64, 48))
    for v in (0, 100, 200):
        writer.write(np.full((48, 64, 3), v, np.uint8))
    writer.release()
    src = make_source(_cam({"type": "file", "path": str(clip), "loop": True, "realtime": False}))
    src.open()
    stamps, levels = [], []
    for _ in range(8):
        stamps.append(src.grab())
        levels.append(round(src.retrieve().mean() / 10) * 10)  # MJPEG: ±1 grey level
    src.close()
    assert levels == [0, 100, 200, 0, 100, 200, 0, 100]
    assert np.allclose(np.diff(stamps), 0.1)


def test_missing_file_error_names_camera_and_path(tmp_path: Path) -> None:
    src = make_source(_cam({"type": "file", "path": str(tmp_path / "nope.mp4")}))
    with pytest.raises(SourceError, match=r"camera cam-s: file .*nope\.mp4 does not exist"):
        src.open()


def test_motion_gate_on_an_empty_generated_scene_sends_keepalives_only() -> None:
    """Camera shake and sensor noise of the scene generator are not motion."""
    quiet = REPO / "scenes" / "scenarios" / "quiet_day.yaml"
    if not quiet.exists():
        pytest.skip("scenes/scenarios not present")
    import yaml

    from xueliang.config.cameras import MotionConfig
    from xueliang.ingest.motion import MotionGate
    from xueliang.scenes.render import SceneRenderer
    from xueliang.scenes.scenario import Scenario

    data = yaml.safe_load(quiet.read_text())
    data["actors"] = []
    data.pop("expect", None)
    scenario = Scenario.model_validate(data)
    assert scenario.effects.shake_px > 0 and scenario.effects.noise_sigma > 0
    renderer = SceneRenderer(scenario, 0)
    gate = MotionGate(MotionConfig(keepalive_s=5))
    published = []
    for i in range(0, 200, 2):  # 20 s at a 5 fps sample rate
        frame = renderer.render_frame(i, scenario.fps)
        d = gate.decide(frame.image, frame.t)
        if d.publish:
            assert d.keepalive and not d.boxes
            published.append(round(frame.t, 1))
    assert published == [0.0, 5.0, 10.0, 15.0]


def test_http_snapshot_camera_polled_at_sample_rate_with_basic_auth(vtest: Path) -> None:
    import base64
    import http.server

    cap = cv2.VideoCapture(str(vtest))
    picture = cap.read()[1]
    cap.release()
    jpeg = cv2.imencode(".jpg", picture)[1].tobytes()
    seen_auth: list[str | None] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            return None

        def do_GET(self) -> None:
            seen_auth.append(self.headers.get("Authorization"))
            self.send_response(200)
            self.send_header("Content-Type", "image/jpeg")
            self.send_header("Content-Length", str(len(jpeg)))
            self.end_headers()
            self.wfile.write(jpeg)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        port = server.server_address[1]
        cam = _cam(
            {"type": "http", "mode": "snapshot", "url": f"http://admin:pw%40x@127.0.0.1:{port}/snap.jpg"}, sample_fps=5
        )
        src = make_source(cam)
        src.open()
        stamps = []
        for _ in range(6):
            stamps.append(src.grab())
            assert _psnr(src.retrieve(), picture) > 30
        src.close()
    finally:
        server.shutdown()
        server.server_close()
    assert np.allclose(np.diff(stamps), 0.2, atol=0.05)
    assert set(seen_auth) == {"Basic " + base64.b64encode(b"admin:pw@x").decode()}
    assert "pw" not in src.masked


def test_pyav_source_without_its_extra_fails_with_a_clear_source_error(vtest: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """A camera configured for PyAV on a host without the 'ingest' extra: a SourceError naming the camera and
    the extra (the camera loop logs it and retries), not an ImportError that ends the camera thread."""
    import builtins

    real_import = builtins.__import__

    def no_simplejpeg(name, *args, **kwargs):  # type: ignore[no-untyped-def]
        if name == "simplejpeg":
            raise ImportError("No module named 'simplejpeg'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_simplejpeg)
    src = make_source(_cam({"type": "file", "path": str(vtest), "decoder": "pyav"}))
    with pytest.raises(SourceError, match=r"camera .*: decoder pyav / keyframes_only needs the 'ingest' extra"):
        src.open()
