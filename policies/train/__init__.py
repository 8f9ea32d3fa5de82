"""The trainer: LeRobot's `lerobot-train` loop for robotui's policies, with LeRobot's output tree and log lines.

`loop.Trainer` runs the steps (single process or DDP under torchrun), `checkpoint` writes and reads the
`checkpoints/<step>/{pretrained_model,training_state}` tree, `config` is the run's train_config.json and `--set`
handling, `metrics` the console line and metrics.jsonl, `backbone` the ImageNet ResNet-18 weights. The data side
(a torch Dataset over a LeRobot dataset) lives in `engine.dataset.training`, since policies never import engine.
"""
