"""The benchmark suite behind `python benchmarks/run.py` (see that file for the command line).

One module per section, each exposing `run(ctx) -> Section`:

  op_parity.py       every op-table row, forward and backward, error against PyTorch
  train_parity.py    MLP, CNN, GPT from identical weights and batches: loss curves side by side
  accuracy.py        the MNIST examples trained for real: test accuracy against targets
  speed_ops.py       single ops, forward and forward+backward, timed against PyTorch
  speed_train.py     whole training steps against PyTorch and a hand-written NumPy floor
  overhead_rows.py   per-op bookkeeping (benchmarks/overhead.py) as report rows
  gpu.py             the GPU kernel ladder, or one row saying there is no GPU

Shared pieces: rows.py (rows, targets, verdicts), context.py (threads, machine, versions,
PyTorch or its absence), references.py (stored PyTorch results for runs without PyTorch),
report.py and plots.py (the outputs), speed.py (timing rules and speed targets), memory.py,
workloads.py / models.py / batches.py / weights.py (the three training workloads for both
libraries, identical weights and batches), numpy_mlp.py (the NumPy floor), torch_recipes.py
(PyTorch trained with the examples' recipes).
"""
