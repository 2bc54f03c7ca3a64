"""The steps of scripts/train_model.py, one module per concern: ``paths`` (where datasets, runs and the
shipped models live; the offline environment ultralytics runs in), ``dataset`` (the synthetic YOLO
dataset), ``real`` (real frames with teacher labels), ``yolo`` (train, ship, test, choose the inference
size) and ``card`` (the model card)."""
