"""`python -m bench.perf`: performance figures, one `name: value` line each, saved as JSON with the machine.

(the machine the figures were measured on: bench.engine.machine)
device.py    which device each section runs on (--device), and the figures that name it
timing.py    timers that wait for the device's queued work before reading the clock
retrieval.py full-pool exact top-2K retrieval against a plain matmul of the same shape (GFLOP/s)
itemcf.py    the existing system's item-CF fit against the `implicit` library's item-item cosine
existing.py  the existing system's channels: Swing's fit next to item-CF's, one multi-channel retrieval
sasrec_recbole.py  our SASRec against RecBole's on ml-100k under RecBole's protocol and evaluator
scale.py     (--full) the Pure- and KuaiRand-1K-sized synthetic presets end to end: seconds, peak memory
train_step.py  training-step throughput of the default path against the reference path, and against another device
gpu_check.py (python -m bench.perf.gpu_check, bench/perf/gpu_check.sh) the prepared check on a lent GPU

Figures come from this command only, never from timed unit tests.
"""
