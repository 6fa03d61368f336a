"""Run by tests/test_scale.py under `torch.distributed.run` with two CPU processes (gloo): shard a preset with FSDP2's
`fully_shard`, as Accelerate's fsdp2 config does on GPUs, then save it with ftbook's `save_model` into argv[1]."""
import os
import sys

import torch.distributed as dist
from torch.distributed.fsdp import fully_shard
from torch.distributed.tensor import DTensor

from ftbook.models import load_model, load_tokenizer
from ftbook.train import save_model

dist.init_process_group("gloo")
model = load_model("tiny-llama")
for layer in model.model.layers: fully_shard(layer)
fully_shard(model)
p = model.model.embed_tokens.weight
assert isinstance(p, DTensor) and p.to_local().shape[0] < p.shape[0], "the weights are not split across the processes"
save_model(model, load_tokenizer("tiny-llama"), sys.argv[1])
dist.barrier()
dist.destroy_process_group()
# Leave without the interpreter's teardown: on one CI run in several, a rank died there with "terminate called without
# an active exception" (SIGABRT, gloo's threads), after the model had been saved and the group destroyed.
sys.stdout.flush(); sys.stderr.flush()
os._exit(0)
