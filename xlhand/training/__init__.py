"""Fitting adapters: the data a fit samples, the batched step, the loop, checkpoints, pretrain, onboard."""
